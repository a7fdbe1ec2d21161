# make paper-*: each paper's whole pipeline from one target (docs/papers.md).
#
#   make paper-fsn THUMOS14=/data/thumos14 R50=resnet50-0676ba61.pth     the paper's settings
#   make paper-fsn SMALL=1                seeded synthetic set, CPU recipe, ranges checked
#   make paper-fsn SMALL=1 SLURM=1        every step through `vidseg submit` (SUBMIT_OPTS=...)
#
# Each step is one rule running scripts/papers/step.py, which runs the stage here or submits
# it (SLURM=1). Locally Make's own dependency tracking makes reruns incremental (stamps
# under WORK/.done); under SLURM=1 every per-video step asks submit again, which submits
# nothing for outputs that exist, and its stamp moves only when it submitted something.
# Outputs go to $(PAPERS_OUT)/<paper>[-small]/ (PAPERS_OUT=runs/papers by default).

PAPERS_OUT ?= runs/papers
PAPERS_PY  ?= $(if $(wildcard $(BIN)/python),$(BIN)/python,python3)
VIDSEG     ?= $(PAPERS_PY) -m vidseg_cli.cli.main
export VIDSEG SLURM SUBMIT_OPTS
SIZE_TAG   := $(if $(filter-out 0,$(SMALL)),-small)
IS_SMALL   := $(filter-out 0,$(SMALL))
# Under SLURM=1 the per-video steps always run (submit decides what is left to do).
PAPER_FORCE := $(if $(filter-out 0,$(SLURM)),paper-force)
STEP        = PAPER_WORK=$(W) $(PAPERS_PY) scripts/papers/step.py
TABLE       = $(PAPERS_PY) scripts/papers/table.py $(if $(filter 0,$(RANGES)),--no-ranges)
# need VAR,what it is,where to get it: stop with exit 2 before any work when VAR is unset
# or names no file.
need = @if [ -z "$($(1))" ]; then echo "make: $(1)=PATH is missing: $(2); $(3)" >&2; exit 2; \
       elif [ ! -e "$($(1))" ]; then echo "make: $(1)=$($(1)): no such file or folder ($(2); $(3))" >&2; exit 2; fi

.PHONY: paper-3dfcn paper-sep3d paper-scnn paper-fsn paper-segment-tube papers-small paper-force
paper-force:

papers-small:
	for p in fsn scnn sep3d 3dfcn segment-tube; do $(MAKE) paper-$$p SMALL=1 || exit 1; done

# ---------------------------------------------------------------- FSN (THUMOS14)
# The paper: TSN two-stream backbones (RGB + 5-stack optical flow, ImageNet init), the
# temporal CNN on 7-snippet clips (§3.5), fused streams, NMS 0.4 (§4.2), THUMOS14 scorer
# at tIoU 0.3..0.7 (Table 2) and frame-level AP (Table 1).

paper-fsn: $(PAPERS_OUT)/fsn$(SIZE_TAG)/results.md $(PAPERS_OUT)/fsn$(SIZE_TAG)/report/index.html
	@cat $<

FSN_W := $(PAPERS_OUT)/fsn$(SIZE_TAG)
$(FSN_W)/%: W := $(FSN_W)
ifneq ($(IS_SMALL),)
FSN_GT       := $(FSN_W)/synth
FSN_VIDEOS   := $(FSN_W)/synth/videos
FSN_TEST     := synth_test_
FSN_EVAL     := --subset testing --protocol activitynet --tiou 0.3,0.4,0.5,0.6,0.7
FSN_EVAL_FRAMES := --subset testing
FSN_EXPECT   := experiments/papers/fsn-small.expected.json
# The CPU recipe of scripts/sample_weights/fsn.sh (docs/fsn.md, "Learning check"): flow
# stream only, backbone width 0.25 from scratch.
FSN_BACKBONE := --stream flow --flow farneback --width 0.25 --epochs 4 --steps-per-epoch 75 \
                --schedule cosine --seed 0
FSN_TEMPORAL := --lr 0.01 --schedule cosine --epochs 10 --steps-per-epoch 100 --seed 0
$(FSN_W)/synth/gt.json:
	$(VIDSEG) synth -o $(FSN_W)/synth --seed 0 $(FSN_SYNTH_OPTS) --overwrite -q
$(FSN_W)/.done/dataset: $(FSN_W)/synth/gt.json
	$(VIDSEG) check-dataset $(FSN_GT) -q && mkdir -p $(@D) && touch $@
else
FSN_GT       := $(THUMOS14)/annotations
FSN_VIDEOS   := $(THUMOS14)/videos
FSN_TEST     := video_test_
FSN_EVAL     := --subset test --protocol thumos14 --tiou 0.3,0.4,0.5,0.6,0.7
FSN_EVAL_FRAMES := --subset test
FSN_EXPECT   := experiments/papers/fsn.expected.json
FSN_BACKBONE := --stream flow --flow tvl1 --arch resnet50 --init $(R50) --epochs 80 \
                --steps-per-epoch 500 --schedule cosine --seed 0 --subset val --val-subset test
FSN_TEMPORAL := --lr 0.0001 --epochs 30 --steps-per-epoch 1000 --seed 0 --subset val --val-subset test
$(FSN_W)/.done/dataset:
	$(call need,THUMOS14,the THUMOS14 folder: annotations/ (per-class txt of val and test) and videos/ (video_validation_*.mp4 and video_test_*.mp4),see docs/datasets.md)
	$(call need,R50,ImageNet ResNet-50 weights in torchvision's layout,torchvision ResNet50_Weights.IMAGENET1K_V1 (resnet50-0676ba61.pth; docs/models.md))
	$(VIDSEG) check-dataset $(FSN_GT) --videos $(FSN_VIDEOS) -q && mkdir -p $(@D) && touch $@
endif

$(FSN_W)/.done/frames: $(FSN_W)/.done/dataset $(PAPER_FORCE)
	$(STEP) frames --in '$(FSN_VIDEOS)/*.mp4' --stamp $@ -- extract-frames -o $(FSN_W)/frames -q
$(FSN_W)/backbone/best.ckpt: $(FSN_W)/.done/frames
	$(STEP) backbone --in $(FSN_W)/frames --after frames -- train backbone --gt $(FSN_GT) \
	    $(FSN_BACKBONE) -o $(FSN_W)/backbone -q
$(FSN_W)/.done/features: $(FSN_W)/backbone/best.ckpt $(PAPER_FORCE)
	$(STEP) features --in $(FSN_W)/frames --follow frames --stamp $@ -- extract-features \
	    --weights $(FSN_W)/backbone/best.ckpt -o $(FSN_W)/features -q
$(FSN_W)/fsn/best.ckpt: $(FSN_W)/.done/features
	$(STEP) fsn --in $(FSN_W)/features --after features -- train fsn --gt $(FSN_GT) \
	    $(FSN_TEMPORAL) -o $(FSN_W)/fsn -q
$(FSN_W)/.done/localize: $(FSN_W)/fsn/best.ckpt $(PAPER_FORCE)
	$(STEP) localize --in '$(FSN_W)/features/$(FSN_TEST)*.features.h5' --stamp $@ -- localize \
	    --method fsn --weights $(FSN_W)/fsn/best.ckpt --nms-iou 0.4 -o $(FSN_W)/localize -q
$(FSN_W)/eval_detections.json: $(FSN_W)/.done/localize
	$(STEP) eval-det --in '$(FSN_W)/localize/*.detections.h5' --after-any localize -- evaluate \
	    --gt $(FSN_GT) $(FSN_EVAL) --json $@
$(FSN_W)/eval_frames.json: $(FSN_W)/.done/localize
	$(STEP) eval-frames --in '$(FSN_W)/localize/*.frame_scores.h5' --after-any localize -- evaluate \
	    --gt $(FSN_GT) $(FSN_EVAL_FRAMES) --json $@
$(FSN_W)/results.md: $(FSN_W)/eval_detections.json $(FSN_W)/eval_frames.json $(FSN_EXPECT)
	$(TABLE) $(FSN_EXPECT) detections=$(FSN_W)/eval_detections.json \
	    frames=$(FSN_W)/eval_frames.json -o $@ $(if $(IS_SMALL),--small)
$(FSN_W)/report/index.html: $(FSN_W)/results.md
	$(VIDSEG) report $(FSN_W) -o $(FSN_W)/report --exclude $(FSN_W)/synth -q

# ---------------------------------------------------------------- Sep3D (DAVIS 2016)
# The paper (§4): R(2+1)D-18 encoder from Kinetics, separable 3D pyramid and decoder, Adam
# 1e-4 decayed 0.95 a epoch, 384 crops (`--recipe paper`); unsupervised DAVIS J/F (Table 1).
# SEP3D_TRAIN_OPTS, SEP3D_FRAMES_OPTS and SEP3D_SEG_OPTS add options to those steps.
paper-sep3d: $(PAPERS_OUT)/sep3d$(SIZE_TAG)/results.md $(PAPERS_OUT)/sep3d$(SIZE_TAG)/report/index.html
	@cat $<

SEP3D_W := $(PAPERS_OUT)/sep3d$(SIZE_TAG)
$(SEP3D_W)/%: W := $(SEP3D_W)
ifneq ($(IS_SMALL),)
SEP3D_DATA   := $(SEP3D_W)/synth
SEP3D_GT     := $(SEP3D_W)/synth/labels
SEP3D_INPUTS := '$(SEP3D_W)/synth/videos/synth_test_*.mp4'
SEP3D_TRAIN  := --recipe synthetic --val-videos 2 --device cpu
SEP3D_EXPECT := experiments/papers/sep3d-small.expected.json
$(SEP3D_W)/synth/gt.json:
	$(VIDSEG) synth -o $(SEP3D_W)/synth --seed 0 --overwrite -q
$(SEP3D_W)/.done/dataset: $(SEP3D_W)/synth/gt.json
	$(VIDSEG) check-dataset $(SEP3D_DATA) -q && mkdir -p $(@D) && touch $@
else
SEP3D_DATA   := $(DAVIS)
SEP3D_GT     := $(DAVIS)
SEP3D_INPUTS := '$(DAVIS)/JPEGImages/480p/*'
SEP3D_TRAIN  := --recipe paper --init $(R2P1D)
SEP3D_EXPECT := experiments/papers/sep3d.expected.json
$(SEP3D_W)/.done/dataset:
	$(call need,DAVIS,the DAVIS 2016 folder: JPEGImages/480p/SEQ/*.jpg and Annotations/480p/SEQ/*.png,see docs/datasets.md)
	$(call need,R2P1D,Kinetics R(2+1)D-18 weights in torchvision's layout,torchvision R2Plus1D_18_Weights.KINETICS400_V1 (r2plus1d_18-91a641e6.pth; docs/models.md))
	$(VIDSEG) check-dataset $(SEP3D_DATA) -q && mkdir -p $(@D) && touch $@
endif

$(SEP3D_W)/run/best.ckpt: $(SEP3D_W)/.done/dataset
	$(STEP) train -- train segment --model sep3d --data $(SEP3D_DATA) $(SEP3D_TRAIN) \
	    $(SEP3D_TRAIN_OPTS) -o $(SEP3D_W)/run -q
$(SEP3D_W)/.done/frames: $(SEP3D_W)/run/best.ckpt $(PAPER_FORCE)
	$(STEP) frames --in $(SEP3D_INPUTS) --stamp $@ -- extract-frames $(SEP3D_FRAMES_OPTS) \
	    -o $(SEP3D_W)/frames -q
$(SEP3D_W)/.done/scores: $(SEP3D_W)/.done/frames $(PAPER_FORCE)
	$(STEP) scores --in $(SEP3D_W)/frames --follow frames --stamp $@ -- segment-3d --model sep3d \
	    --weights $(SEP3D_W)/run/best.ckpt $(SEP3D_SEG_OPTS) -o $(SEP3D_W)/scores -q
$(SEP3D_W)/eval.json: $(SEP3D_W)/.done/scores
	$(STEP) eval --in '$(SEP3D_W)/scores/*.scores.h5' --after-any scores -- evaluate \
	    --gt $(SEP3D_GT) --json $@
$(SEP3D_W)/results.md: $(SEP3D_W)/eval.json $(SEP3D_EXPECT)
	$(TABLE) $(SEP3D_EXPECT) pixel=$(SEP3D_W)/eval.json -o $@ $(if $(IS_SMALL),--small)
$(SEP3D_W)/report/index.html: $(SEP3D_W)/results.md
	$(VIDSEG) report $(SEP3D_W) -o $(SEP3D_W)/report --exclude $(SEP3D_W)/synth -q

# ---------------------------------------------------------------- 3DFCN (J-HMDB)
# The paper (§4.2): 3DFCN-8s fine-tuned from C3D Sports-1M, weighted loss 0.1/10, SGD
# momentum 0.99, lr 1e-6, batch 1 (`--recipe paper`); HMM (§3.5) and dense CRF (§3.6)
# after it; foreground and localization IoU on J-HMDB split 1 (Table 1), each row:
# 3DFCN-8s, + HMM, + CRFs, + HMM + CRFs. FCN3D_TRAIN_OPTS adds training options.
paper-3dfcn: $(PAPERS_OUT)/3dfcn$(SIZE_TAG)/results.md $(PAPERS_OUT)/3dfcn$(SIZE_TAG)/report/index.html
	@cat $<

FCN3D_W := $(PAPERS_OUT)/3dfcn$(SIZE_TAG)
$(FCN3D_W)/%: W := $(FCN3D_W)
ifneq ($(IS_SMALL),)
FCN3D_DATA   := $(FCN3D_W)/synth
FCN3D_GT     := $(FCN3D_W)/synth/labels
FCN3D_HMM_GT := $(FCN3D_W)/synth/labels/synth_train_*.labels.h5 --foreground
FCN3D_INPUTS := '$(FCN3D_W)/synth/videos/synth_test_*.mp4'
# The synthetic recipe of scripts/sample_weights/segment.sh (3DFCN-8s, width 1/16).
FCN3D_TRAIN  := --recipe synthetic --val-videos 1 --device cpu
FCN3D_EXPECT := experiments/papers/3dfcn-small.expected.json
$(FCN3D_W)/synth/gt.json:
	$(VIDSEG) synth -o $(FCN3D_W)/synth --seed 0 --overwrite -q
$(FCN3D_W)/.done/dataset: $(FCN3D_W)/synth/gt.json
	$(VIDSEG) check-dataset $(FCN3D_DATA) -q && mkdir -p $(@D) && touch $@
else
FCN3D_DATA   := $(JHMDB)
FCN3D_GT     := $(JHMDB)/puppet_mask
FCN3D_HMM_GT := $(JHMDB)/puppet_mask
# Split 1's test videos (splits/<Class>_test_split1.txt: `name.avi 2`).
FCN3D_INPUTS = $(shell for f in $(JHMDB)/splits/*_test_split1.txt; do c=$$(basename $$f _test_split1.txt); \
                 awk -v c=$$c -v r=$(JHMDB) '$$2 == 2 { sub(/\.avi$$/, "", $$1); print r "/Rename_Images/" c "/" $$1 }' $$f; done)
FCN3D_TRAIN  := --recipe paper --init $(C3D) --split 1
FCN3D_EXPECT := experiments/papers/3dfcn.expected.json
$(FCN3D_W)/.done/dataset:
	$(call need,JHMDB,the J-HMDB folder: Rename_Images/ puppet_mask/ splits/,see docs/datasets.md)
	$(call need,C3D,C3D Sports-1M weights (the PyTorch port),c3d.pickle from the README of github.com/DavideA/c3d-pytorch (docs/models.md))
	$(VIDSEG) check-dataset $(FCN3D_DATA) -q && mkdir -p $(@D) && touch $@
endif

$(FCN3D_W)/run/best.ckpt: $(FCN3D_W)/.done/dataset
	$(STEP) train -- train segment --model 3dfcn-8s --data $(FCN3D_DATA) $(FCN3D_TRAIN) \
	    $(FCN3D_TRAIN_OPTS) -o $(FCN3D_W)/run -q
$(FCN3D_W)/hmm.h5: $(FCN3D_W)/.done/dataset
	$(STEP) hmm-fit -- hmm-fit $(FCN3D_HMM_GT) -o $@ -q
$(FCN3D_W)/.done/frames: $(FCN3D_W)/run/best.ckpt $(PAPER_FORCE)
	$(STEP) frames --in $(FCN3D_INPUTS) --stamp $@ -- extract-frames -o $(FCN3D_W)/frames -q
$(FCN3D_W)/.done/scores: $(FCN3D_W)/.done/frames $(PAPER_FORCE)
	$(STEP) scores --in $(FCN3D_W)/frames --follow frames --stamp $@ -- segment-3d --model 3dfcn-8s \
	    --weights $(FCN3D_W)/run/best.ckpt -o $(FCN3D_W)/scores -q
$(FCN3D_W)/.done/hmm: $(FCN3D_W)/.done/scores $(FCN3D_W)/hmm.h5 $(PAPER_FORCE)
	$(STEP) hmm --in $(FCN3D_W)/scores --follow scores --stamp $@ -- hmm-smooth \
	    --hmm $(FCN3D_W)/hmm.h5 -o $(FCN3D_W)/hmm -q
$(FCN3D_W)/.done/crf: $(FCN3D_W)/.done/scores $(PAPER_FORCE)
	$(STEP) crf --in $(FCN3D_W)/scores --follow scores --stamp $@ -- crf-refine \
	    --frames $(FCN3D_W)/frames -o $(FCN3D_W)/crf -q
$(FCN3D_W)/.done/hmm_crf: $(FCN3D_W)/.done/hmm $(PAPER_FORCE)
	$(STEP) hmm_crf --in $(FCN3D_W)/hmm --follow hmm --stamp $@ -- crf-refine \
	    --frames $(FCN3D_W)/frames -o $(FCN3D_W)/hmm_crf -q
$(FCN3D_W)/eval_%.json: $(FCN3D_W)/.done/%
	$(STEP) eval-$* --in '$(FCN3D_W)/$*/*.h5' --after-any $* -- evaluate --gt $(FCN3D_GT) --json $@
$(FCN3D_W)/results.md: $(foreach s,scores hmm crf hmm_crf,$(FCN3D_W)/eval_$(s).json) $(FCN3D_EXPECT)
	$(TABLE) $(FCN3D_EXPECT) $(foreach s,scores hmm crf hmm_crf,$(s)=$(FCN3D_W)/eval_$(s).json) \
	    -o $@ $(if $(IS_SMALL),--small)
$(FCN3D_W)/report/index.html: $(FCN3D_W)/results.md
	$(VIDSEG) report $(FCN3D_W) -o $(FCN3D_W)/report --exclude $(FCN3D_W)/synth -q

# ---------------------------------------------------------------- S-CNN (THUMOS14)
# The paper (§3, §4.2): C3D from Sports-1M, multi-scale windows (16..512 frames, 75%
# overlap), proposal, classification and localization networks (30K iterations each,
# overlap loss α 0.25), NMS, THUMOS14 scorer at θ 0.1..0.5 (Table 2).
paper-scnn: $(PAPERS_OUT)/scnn$(SIZE_TAG)/results.md $(PAPERS_OUT)/scnn$(SIZE_TAG)/report/index.html
	@cat $<

SCNN_W := $(PAPERS_OUT)/scnn$(SIZE_TAG)
$(SCNN_W)/%: W := $(SCNN_W)
ifneq ($(IS_SMALL),)
SCNN_TRAIN_DATA := --data $(SCNN_W)/synth
SCNN_GT      := $(SCNN_W)/synth
SCNN_INPUTS  := '$(SCNN_W)/synth/videos/synth_test_*.mp4'
SCNN_EVAL    := --subset testing --protocol activitynet --tiou 0.1,0.2,0.3,0.4,0.5
# scripts/sample_weights/scnn.sh's recipe on half its training videos and about half its
# iterations, to fit SMALL's 15 minutes.
SCNN_TRAIN   := --recipe synthetic --cache $(SCNN_W)/cache --seed 0 --threads 1 --device cpu
SCNN_ITERS   := 200 500 200
SCNN_EXPECT  := experiments/papers/scnn-small.expected.json
$(SCNN_W)/synth/gt.json:
	$(VIDSEG) synth -o $(SCNN_W)/synth --seed 0 --train 48 --test 16 --overwrite -q
$(SCNN_W)/.done/dataset: $(SCNN_W)/synth/gt.json
	$(VIDSEG) check-dataset $(SCNN_GT) -q && mkdir -p $(@D) && touch $@
else
SCNN_TRAIN_DATA := --gt $(THUMOS14)/annotations --videos $(THUMOS14)/videos --subset val
SCNN_GT      := $(THUMOS14)/annotations
SCNN_INPUTS  := '$(THUMOS14)/videos/video_test_*.mp4'
SCNN_EVAL    := --subset test --protocol thumos14 --tiou 0.1,0.2,0.3,0.4,0.5
SCNN_TRAIN   := --recipe paper --cache $(SCNN_W)/cache --seed 0
SCNN_ITERS   := 30000 30000 30000
SCNN_EXPECT  := experiments/papers/scnn.expected.json
$(SCNN_W)/.done/dataset:
	$(call need,THUMOS14,the THUMOS14 folder: annotations/ and videos/,see docs/datasets.md)
	$(call need,C3D,C3D Sports-1M weights (the PyTorch port),c3d.pickle from the README of github.com/DavideA/c3d-pytorch (docs/models.md))
	$(VIDSEG) check-dataset $(SCNN_GT) --videos $(THUMOS14)/videos -q && mkdir -p $(@D) && touch $@
endif
SCNN_INIT := $(if $(IS_SMALL),,--init $(C3D))

$(SCNN_W)/proposal/best.ckpt: $(SCNN_W)/.done/dataset
	$(STEP) proposal -- train scnn --stage proposal $(SCNN_TRAIN_DATA) $(SCNN_TRAIN) $(SCNN_INIT) \
	    --iterations $(word 1,$(SCNN_ITERS)) -o $(SCNN_W)/proposal -q
$(SCNN_W)/classification/best.ckpt: $(SCNN_W)/.done/dataset
	$(STEP) classification -- train scnn --stage classification $(SCNN_TRAIN_DATA) $(SCNN_TRAIN) \
	    $(SCNN_INIT) --iterations $(word 2,$(SCNN_ITERS)) -o $(SCNN_W)/classification -q
$(SCNN_W)/localization/best.ckpt: $(SCNN_W)/classification/best.ckpt
	$(STEP) localization -- train scnn --stage localization $(SCNN_TRAIN_DATA) $(SCNN_TRAIN) \
	    --iterations $(word 3,$(SCNN_ITERS)) --init $< -o $(SCNN_W)/localization -q
$(SCNN_W)/.done/frames: $(SCNN_W)/proposal/best.ckpt $(SCNN_W)/localization/best.ckpt $(PAPER_FORCE)
	$(STEP) frames --in $(SCNN_INPUTS) --stamp $@ -- extract-frames -o $(SCNN_W)/frames -q
$(SCNN_W)/.done/proposals: $(SCNN_W)/.done/frames $(PAPER_FORCE)
	$(STEP) proposals --in $(SCNN_W)/frames --follow frames --stamp $@ -- propose \
	    --weights $(SCNN_W)/proposal/best.ckpt -o $(SCNN_W)/proposals -q
$(SCNN_W)/.done/localize: $(SCNN_W)/.done/proposals $(PAPER_FORCE)
	$(STEP) localize --in $(SCNN_W)/proposals --follow proposals --stamp $@ -- localize --method scnn \
	    --frames $(SCNN_W)/frames --weights $(SCNN_W)/localization/best.ckpt -o $(SCNN_W)/localize -q
$(SCNN_W)/eval.json: $(SCNN_W)/.done/localize
	$(STEP) eval --in '$(SCNN_W)/localize/*.detections.h5' --after-any localize -- evaluate \
	    --gt $(SCNN_GT) $(SCNN_EVAL) --json $@
$(SCNN_W)/results.md: $(SCNN_W)/eval.json $(SCNN_EXPECT)
	$(TABLE) $(SCNN_EXPECT) detections=$(SCNN_W)/eval.json -o $@ $(if $(IS_SMALL),--small)
$(SCNN_W)/report/index.html: $(SCNN_W)/results.md
	$(VIDSEG) report $(SCNN_W) -o $(SCNN_W)/report --exclude $(SCNN_W)/synth -q

# ---------------------------------------------------------------- Segment-tube
# The paper (§2): C3D trunk, two peephole LSTMs (256 states), α_t threshold γ (Eq. 4),
# superpixel graph cut (Eq. 5-7) alternated for 3 rounds; THUMOS14 mAP at 0.3..0.5 (Table
# 1) and pixel IoU on the action frames of ActSeg (Table 3; ActSeg is not public: the full
# target scores the temporal table only).
paper-segment-tube: $(PAPERS_OUT)/segment-tube$(SIZE_TAG)/results.md $(PAPERS_OUT)/segment-tube$(SIZE_TAG)/report/index.html
	@cat $<

ST_W := $(PAPERS_OUT)/segment-tube$(SIZE_TAG)
$(ST_W)/%: W := $(ST_W)
ifneq ($(IS_SMALL),)
ST_TRAIN_DATA := --data $(ST_W)/synth
ST_GT     := $(ST_W)/synth
ST_INPUTS := '$(ST_W)/synth/videos/synth_test_*.mp4'
ST_EVAL   := --subset testing --protocol activitynet --tiou 0.3,0.4,0.5
# experiments/segment_tube/learning_check.sh's recipe: the frozen C3D trunk of the sample
# S-CNN weights (our stand-in for Sports-1M C3D), 64 LSTM states as the sample weights.
ST_TRAIN  := --recipe synthetic --init sample_data/weights/scnn_localization_synth.ckpt \
             --hidden 64 --threads 2 --device cpu
ST_EXPECT := experiments/papers/segment-tube-small.expected.json
ST_PIXEL  := $(ST_W)/eval_pixel.json
$(ST_W)/synth/gt.json:
	$(VIDSEG) synth -o $(ST_W)/synth --seed 11 --train 48 --test 16 --classes-per-video 1 --overwrite -q
$(ST_W)/.done/dataset: $(ST_W)/synth/gt.json
	$(VIDSEG) check-dataset $(ST_GT) -q && mkdir -p $(@D) && touch $@
else
ST_TRAIN_DATA := --gt $(THUMOS14)/annotations --videos $(THUMOS14)/videos --subset val
ST_GT     := $(THUMOS14)/annotations
ST_INPUTS := '$(THUMOS14)/videos/video_test_*.mp4'
ST_EVAL   := --subset test --protocol thumos14 --tiou 0.3,0.4,0.5
ST_TRAIN  := --recipe paper --init $(C3D)
ST_EXPECT := experiments/papers/segment-tube.expected.json
ST_PIXEL  :=
$(ST_W)/.done/dataset:
	$(call need,THUMOS14,the THUMOS14 folder: annotations/ and videos/,see docs/datasets.md)
	$(call need,C3D,C3D Sports-1M weights (the PyTorch port),c3d.pickle from the README of github.com/DavideA/c3d-pytorch (docs/models.md))
	$(VIDSEG) check-dataset $(ST_GT) --videos $(THUMOS14)/videos -q && mkdir -p $(@D) && touch $@
endif

$(ST_W)/run/best.ckpt: $(ST_W)/.done/dataset
	$(STEP) train -- train segment-tube $(ST_TRAIN_DATA) $(ST_TRAIN) -o $(ST_W)/run -q
$(ST_W)/.done/frames: $(ST_W)/run/best.ckpt $(PAPER_FORCE)
	$(STEP) frames --in $(ST_INPUTS) --stamp $@ -- extract-frames -o $(ST_W)/frames -q
$(ST_W)/.done/tubes: $(ST_W)/.done/frames $(PAPER_FORCE)
	$(STEP) tubes --in $(ST_W)/frames --follow frames --stamp $@ -- segment-tube \
	    --weights $(ST_W)/run/best.ckpt --device cpu -o $(ST_W)/tubes -q
$(ST_W)/eval_detections.json: $(ST_W)/.done/tubes
	$(STEP) eval-det --in '$(ST_W)/tubes/*.detections.h5' --after-any tubes -- evaluate \
	    --gt $(ST_GT) $(ST_EVAL) --json $@
$(ST_W)/eval_pixel.json: $(ST_W)/.done/tubes
	$(STEP) eval-pixel --in '$(ST_W)/tubes/*.labels.h5' --after-any tubes -- evaluate \
	    --gt $(ST_W)/synth/labels --pixel-frames gt-action --json $@
$(ST_W)/results.md: $(ST_W)/eval_detections.json $(ST_PIXEL) $(ST_EXPECT)
	$(TABLE) $(ST_EXPECT) detections=$(ST_W)/eval_detections.json \
	    $(if $(ST_PIXEL),pixel=$(ST_PIXEL)) -o $@ $(if $(IS_SMALL),--small)
$(ST_W)/report/index.html: $(ST_W)/results.md
	$(VIDSEG) report $(ST_W) -o $(ST_W)/report --exclude $(ST_W)/synth -q
