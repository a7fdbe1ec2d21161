#!/usr/bin/env bash
# WFSN against random segments (docs/fsn.md "WFSN"), on two synthetic sets: the default one
# (each video's actions cycle through all 4 classes) and one action class per video
# (`--classes-per-video 1`, as in most THUMOS14 videos). Per set: flow features from the
# FSN check's backbone (sample_data/weights/backbone_synth.ckpt, trained with frame labels
# on the default set's training videos: the features come from supervised training, as the
# paper's WFSN uses TSN fine-tuned on UCF101; the temporal network sees video labels only),
# `train wfsn` for each seed, and localize with the outer-inner contrast (wfsn's default)
# and with FSN §4.2's mean score.
#
#   experiments/fsn/wfsn_check.sh [WORK_DIR] [SEEDS]   (default runs/fsn_wfsn, "0 1 2")
#
# Writes WORK_DIR/times.json (wall seconds, load averages); then
# `python -m experiments.fsn.learning wfsn WORK_DIR` records the results.
set -euo pipefail
cd "$(dirname "$0")/../.."
WORK=${1:-runs/fsn_wfsn}
SEEDS=${2:-0 1 2}
BACKBONE=sample_data/weights/backbone_synth.ckpt
mkdir -p "$WORK"
TIMES="$WORK/times.json"
echo "{" > "$TIMES"

children_cpu() {  # user + system seconds of this shell's finished children, from `times`
    times > "$WORK/.times"
    awk 'END { s = 0; for (i = 1; i <= 2; i++) { split($i, a, "m"); s += a[1] * 60 + a[2] } print s }' "$WORK/.times"
}

step() {  # step NAME COMMAND...: run under nice; record wall and CPU seconds, load averages
    local name=$1
    shift
    local before t0 c0
    before=$(cut -d' ' -f1-3 /proc/loadavg)
    t0=$(date +%s.%N)
    children_cpu > "$WORK/.c0"
    nice -n 5 "$@"
    children_cpu > "$WORK/.c1"  # here, not in $(...): a subshell's `times` starts from zero
    printf '  "%s": {"wall_s": %.1f, "cpu_s": %.1f, "load_before": "%s", "load_after": "%s"},\n' \
        "$name" "$(echo "$(date +%s.%N) - $t0" | bc)" "$(echo "$(cat "$WORK/.c1") - $(cat "$WORK/.c0")" | bc)" \
        "$before" "$(cut -d' ' -f1-3 /proc/loadavg)" >> "$TIMES"
}

for set in default one_class; do
    D="$WORK/$set"
    extra=()
    [ "$set" = one_class ] && extra=(--classes-per-video 1)
    step "$set synth" vidseg synth -o "$D/synth" --seed 0 "${extra[@]}" --overwrite -q
    step "$set extract-frames" vidseg extract-frames "$D"/synth/videos/*.mp4 -o "$D/frames" -q
    step "$set extract-features" vidseg extract-features "$D/frames" --weights "$BACKBONE" -o "$D/features" -q
    for seed in $SEEDS; do
        step "$set train wfsn seed $seed" vidseg train wfsn "$D/features" --gt "$D/synth" --lr 0.01 \
            --schedule cosine --epochs 10 --steps-per-epoch 50 --seed "$seed" -o "$D/wfsn_seed$seed" -q
        test=("$D"/features/synth_test_*.features.h5)
        w="$D/wfsn_seed$seed/last.ckpt"
        vidseg localize "${test[@]}" --method wfsn --weights "$w" -o "$D/loc_contrast_seed$seed" -q
        vidseg localize "${test[@]}" --method wfsn --weights "$w" --segment-score mean \
            -o "$D/loc_mean_seed$seed" -q
        vidseg localize "${test[@]}" --method wfsn --weights "$w" --video-threshold 0.1 \
            -o "$D/loc_contrast_video0.1_seed$seed" -q
    done
done
printf '  "nproc": %d\n}\n' "$(nproc)" >> "$TIMES"
rm -f "$WORK/.times" "$WORK/.c0" "$WORK/.c1"
