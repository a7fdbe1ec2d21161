#!/usr/bin/env bash
# Small synthetic-trained segment-3d weights for the demo (docs/segment3d.md):
#   sample_data/weights/sep3d_synth.ckpt    Sep3D, width 1/8, synthetic recipe (16-frame clips, 26 epochs, ~2 MB)
#   sample_data/weights/3dfcn8s_synth.ckpt  3DFCN-8s, width 1/16, synthetic recipe (20 epochs, ~1.3 MB)
# The same training commands as the learning check (experiments/segment3d/learning_check.sh)
# on the seed-0 synthetic set; best.ckpt (best validation foreground IoU, no optimizer
# state) is copied. Seeded: a rerun gives the same files up to floating-point differences
# between machines and memory layouts (the shipped Sep3D file was trained in the default
# layout at commit a03421d, the 3DFCN-8s file channels-last at commit 6a47af4; on a CPU the
# models run channels-last from commit 9827984 on). About 7 (Sep3D) + 10
# (3DFCN-8s) minutes on 2 idle CPU cores.
# Usage: scripts/sample_weights/segment.sh [WORK_DIR]   (default runs/sample_weights)
set -euo pipefail
cd "$(dirname "$0")/../.."
WORK=${1:-runs/sample_weights}
mkdir -p "$WORK" sample_data/weights
[ -f "$WORK/synth/gt.json" ] || vidseg synth -o "$WORK/synth" --seed 0 -q
rm -rf "$WORK/run_sep3d" "$WORK/run_3dfcn-8s"  # fresh runs (train appends to log.jsonl)
vidseg train segment --model sep3d --data "$WORK/synth" -o "$WORK/run_sep3d" --recipe synthetic --val-videos 2 --device cpu -q
# 3DFCN validates on one video: its whole-video validation (8 x 64 x 64 pixels of mirrored
# context around 192 x 256 frames) takes ~10 s a video, and two every epoch would take the
# run past the learning check's 10 minutes.
vidseg train segment --model 3dfcn-8s --data "$WORK/synth" -o "$WORK/run_3dfcn-8s" --recipe synthetic --val-videos 1 --device cpu -q
cp "$WORK/run_sep3d/best.ckpt" sample_data/weights/sep3d_synth.ckpt
cp "$WORK/run_3dfcn-8s/best.ckpt" sample_data/weights/3dfcn8s_synth.ckpt
ls -l sample_data/weights/sep3d_synth.ckpt sample_data/weights/3dfcn8s_synth.ckpt
