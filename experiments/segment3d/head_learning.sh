#!/usr/bin/env bash
# Learning record of Sep3D's action head (docs/segment3d.md, "The action head"): train the
# head with its default recipe on the default `vidseg synth` set (32 train videos) on top
# of sample_data/weights/sep3d_synth.ckpt, then on the 16 held-out test videos: the head's
# accuracy with ground-truth masks, and extract-frames -> segment-3d -> evaluate (frame-mAP
# at IoU 0.5 of the boxes around the predicted masks' largest regions, Sep3D Table 3).
# Writes OUT/head_learning.json (command, seconds, load averages, metrics).
# Usage: experiments/segment3d/head_learning.sh OUT [CKPT=best]
# HEAD_OPTS adds `train sep3d-head` options, e.g. HEAD_OPTS=--joint (the joint fine-tune).
set -euo pipefail
OUT=${1:?output folder}
CKPT=${2:-best}
SEG=sample_data/weights/sep3d_synth.ckpt
mkdir -p "$OUT"
[ -f "$OUT/synth/gt.json" ] || vidseg synth -o "$OUT/synth" -q
[ -d "$OUT/frames" ] || vidseg extract-frames "$OUT"/synth/videos/synth_test_*.mp4 -o "$OUT/frames" -q
RUN="$OUT/run_head"; rm -rf "$RUN" "$OUT/scores_head"
CMD="vidseg train sep3d-head --segmenter $SEG --data $OUT/synth -o $RUN --device cpu ${HEAD_OPTS:-} -q"
LOAD0=$(cut -d' ' -f1-3 /proc/loadavg); T0=$(date +%s.%N)
nice -n 5 $CMD
T1=$(date +%s.%N); LOAD1=$(cut -d' ' -f1-3 /proc/loadavg)
S0=$(date +%s.%N)
nice -n 5 vidseg segment-3d "$OUT"/frames/*.frames.h5 --model sep3d --weights "$RUN/$CKPT.ckpt" \
  -o "$OUT/scores_head" --device cpu -q
S1=$(date +%s.%N)
vidseg evaluate "$OUT/scores_head" --gt "$OUT/synth/labels" --json "$OUT/eval_head.json" > "$OUT/eval_head.txt" 2>&1
nice -n 5 python -m experiments.segment3d.head_record "$CMD" "$T0" "$T1" "$S0" "$S1" "$LOAD0" "$LOAD1" "$RUN" "$OUT" "$CKPT"
