#!/usr/bin/env bash
# Small FSN weights for the demo (docs/fsn.md): a flow backbone (ResNet-18 layout, width
# 0.25, TSN-style frame classifier on 5 stacked Farneback flow fields) and the FSN temporal
# CNN on its features, trained on the seeded default synthetic set. Plain vidseg commands;
# the same seed gives the same set, and initialization and data order are seeded too.
#
#   scripts/sample_weights/fsn.sh [WORK_DIR]     (default runs/sample_weights/fsn)
#
# Writes sample_data/weights/backbone_synth.ckpt and sample_data/weights/fsn_synth.ckpt
# (each < 3 MB). About 8 minutes on 2 shared CPU cores (docs/fsn.md records the run).
set -euo pipefail
cd "$(dirname "$0")/../.."
WORK=${1:-runs/sample_weights/fsn}

vidseg synth -o "$WORK/synth" --seed 0 --overwrite -q
vidseg extract-frames "$WORK"/synth/videos/*.mp4 -o "$WORK/frames" -q
vidseg train backbone "$WORK/frames" --gt "$WORK/synth" --stream flow --flow farneback --width 0.25 \
    --epochs 4 --steps-per-epoch 75 --schedule cosine --seed 0 -o "$WORK/backbone" -q
vidseg extract-features "$WORK/frames" --weights "$WORK/backbone/best.ckpt" -o "$WORK/features" -q
vidseg train fsn "$WORK/features" --gt "$WORK/synth" --lr 0.01 --schedule cosine --epochs 10 \
    --steps-per-epoch 100 --seed 0 -o "$WORK/fsn" -q

mkdir -p sample_data/weights
cp "$WORK/backbone/best.ckpt" sample_data/weights/backbone_synth.ckpt
cp "$WORK/fsn/best.ckpt" sample_data/weights/fsn_synth.ckpt
chmod 644 sample_data/weights/backbone_synth.ckpt sample_data/weights/fsn_synth.ckpt
ls -l sample_data/weights/backbone_synth.ckpt sample_data/weights/fsn_synth.ckpt
