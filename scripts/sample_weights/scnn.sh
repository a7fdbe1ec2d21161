#!/usr/bin/env bash
# Small S-CNN weights for the demo (docs/scnn.md): the proposal and localization networks
# of the CPU-sized recipe, trained on a seeded synthetic set. Plain vidseg commands; the
# same seed gives the same set, and the training data order is seeded too.
#
#   scripts/sample_weights/scnn.sh [WORK_DIR]     (default runs/sample_weights/scnn)
#
# Writes sample_data/weights/scnn_proposal_synth.ckpt and scnn_localization_synth.ckpt.
# About 20 minutes on 2 CPU cores (docs/scnn.md records the run). THREADS=N sets torch's
# CPU threads per training run (default 1: on a
# shared 2-core machine one thread per process is faster than two).
set -euo pipefail
cd "$(dirname "$0")/../.."
WORK=${1:-runs/sample_weights/scnn}
THREADS=${THREADS:-1}
COMMON=(--data "$WORK/synth" --recipe synthetic --cache "$WORK/cache" --seed 0 --threads "$THREADS" --device cpu)

vidseg synth -o "$WORK/synth" --seed 0 --train 96 --test 16 --overwrite -q
vidseg train scnn --stage proposal       "${COMMON[@]}" -o "$WORK/proposal" --iterations 400
vidseg train scnn --stage classification "${COMMON[@]}" -o "$WORK/classification" --iterations 1000
vidseg train scnn --stage localization   "${COMMON[@]}" -o "$WORK/localization" --iterations 400 \
    --init "$WORK/classification/best.ckpt"

mkdir -p sample_data/weights
cp "$WORK/proposal/best.ckpt" sample_data/weights/scnn_proposal_synth.ckpt
cp "$WORK/localization/best.ckpt" sample_data/weights/scnn_localization_synth.ckpt
chmod 644 sample_data/weights/scnn_*_synth.ckpt  # checkpoints are written 0600
ls -l sample_data/weights/scnn_*_synth.ckpt
