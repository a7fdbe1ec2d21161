#!/usr/bin/env bash
# Small Segment-tube weights for the demo (docs/segment_tube.md):
#   sample_data/weights/segment_tube_synth.ckpt  the two peephole LSTM networks (64 hidden
#   states a layer, not the paper's 256, to keep the file small) on the frozen C3D trunk of
#   sample_data/weights/scnn_localization_synth.ckpt (embedded in the checkpoint), trained
#   with the synthetic (CPU) recipe on a seed-0 set of one action class per video, as the
#   method assumes. Run after scripts/sample_weights/scnn.sh (the trunk); `make
#   sample-weights` runs the scripts in that order. About 3 minutes on 2 idle CPU cores.
# Usage: scripts/sample_weights/segment_tube.sh [WORK_DIR]   (default runs/sample_weights/segment_tube)
set -euo pipefail
cd "$(dirname "$0")/../.."
WORK=${1:-runs/sample_weights/segment_tube}
THREADS=${THREADS:-2}
mkdir -p "$WORK" sample_data/weights
vidseg synth -o "$WORK/synth" --seed 0 --train 48 --test 8 --classes-per-video 1 --overwrite -q
vidseg train segment-tube --data "$WORK/synth" -o "$WORK/run" --recipe synthetic --hidden 64 \
    --init sample_data/weights/scnn_localization_synth.ckpt --threads "$THREADS" --device cpu --overwrite -q
cp "$WORK/run/best.ckpt" sample_data/weights/segment_tube_synth.ckpt
chmod 644 sample_data/weights/segment_tube_synth.ckpt  # checkpoints are written 0600
ls -l sample_data/weights/segment_tube_synth.ckpt
