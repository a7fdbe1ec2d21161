#!/usr/bin/env bash
# The RGB stream's FSN learning check (docs/fsn.md "Learning check"): the flow check's recipe
# on the synthetic set whose actors' look carries their class (`vidseg synth --appearance
# class`, seed 0, other options default: the same timelines and ground truth as the default
# set), tuned in two places: the backbone trains 600 steps instead of 300, and the FSN's
# clips are 15 snippets (7.5 s at 10 fps) instead of 7. Plain vidseg commands, all seeded:
#
#   synth -> extract-frames -> train backbone (--stream rgb) -> extract-features -> train fsn
#         -> localize -> evaluate (activitynet, 16 test videos)
#
#   experiments/fsn/rgb_check.sh [WORK_DIR] [APPEARANCE]   (default runs/fsn_rgb_class, class)
#
# APPEARANCE random runs the same recipe on the default, motion-only set, for comparison.
#
# Writes WORK_DIR/times.json (wall seconds and load averages before and after each step);
# `python -m experiments.fsn.learning rgb WORK_DIR` turns the run into learning.json's record.
# The sample weights are not touched. About 7 minutes on 2 CPU cores (docs/fsn.md records the run).
set -euo pipefail
cd "$(dirname "$0")/../.."
WORK=${1:-runs/fsn_rgb_class}
APPEARANCE=${2:-class}
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

step synth vidseg synth -o "$WORK/synth" --seed 0 --appearance "$APPEARANCE" --overwrite -q
step extract-frames vidseg extract-frames "$WORK"/synth/videos/*.mp4 -o "$WORK/frames" -q
step train-backbone vidseg train backbone "$WORK/frames" --gt "$WORK/synth" --stream rgb --width 0.25 \
    --epochs 8 --steps-per-epoch 75 --schedule cosine --seed 0 -o "$WORK/bb_rgb" -q
step extract-features vidseg extract-features "$WORK/frames" --weights "$WORK/bb_rgb/best.ckpt" \
    -o "$WORK/feat_rgb" -q
step train-fsn vidseg train fsn "$WORK/feat_rgb" --gt "$WORK/synth" --lr 0.01 --schedule cosine \
    --epochs 10 --steps-per-epoch 100 --clip-snippets 15 --seed 0 -o "$WORK/fsn_rgb" -q
step localize vidseg localize "$WORK"/feat_rgb/synth_test_*.features.h5 --weights "$WORK/fsn_rgb/best.ckpt" \
    -o "$WORK/loc_rgb" -q
step evaluate vidseg evaluate "$WORK"/loc_rgb/*.detections.h5 --gt "$WORK/synth" --subset testing --protocol activitynet \
    --tiou 0.3,0.5,0.7 --json "$WORK/eval_det.json"
vidseg evaluate "$WORK"/loc_rgb/*.frame_scores.h5 --gt "$WORK/synth" --subset testing --protocol activitynet \
    --json "$WORK/eval_frames.json"
printf '  "nproc": %d\n}\n' "$(nproc)" >> "$TIMES"
rm -f "$WORK/.times" "$WORK/.c0" "$WORK/.c1"
