#!/usr/bin/env bash
# The wheels vidseg needs on the GPU machine besides what its image holds (its python3 is
# CPython 3.12 with torch, numpy, h5py, scipy, numba, scikit-learn, click, rich, joblib and
# opencv-python-headless; /work/.library/device/KINDS.md), for `run --carry`: that machine
# reaches no package registry. Run here, once, with network access; they land in an
# ignored folder (runs/ is in .gitignore) that benchmarks/gpu/run.sh installs from.
#   hdf5plugin 4.0.1   Blosc-LZ4 filters: store/io.py imports it on every HDF5 read. 4.0.1,
#                      the oldest release vidseg accepts, is a 17 MB wheel; 4.1 and later
#                      are 41-46 MB, too much of the 64 MiB a `run` call carries
#   pydensecrf2 1.1    crf-refine's dense CRF (the learning check scores through it): PyPI
#                      has only its source, which run.sh builds there (Cython, numpy and
#                      g++ are in the image) while the CUDA tests run
# opencv-contrib-python-headless is left out on purpose: it shares the cv2 module with the
# image's opencv-python-headless, and nothing run.sh runs needs the contrib modules (TV-L1
# flow, SLIC, saliency).
# Usage: benchmarks/gpu/wheels.sh [DIR]   (default runs/gpu/wheels)
set -euo pipefail
DIR=${1:-runs/gpu/wheels}
PY=${PYTHON:-python3}
mkdir -p "$DIR"
PLATFORMS=()
for p in manylinux_2_28_x86_64 manylinux_2_27_x86_64 manylinux_2_17_x86_64 manylinux2014_x86_64 \
         manylinux1_x86_64 manylinux_2_24_x86_64 manylinux_2_31_x86_64 manylinux_2_34_x86_64; do
  PLATFORMS+=(--platform "$p")
done
"$PY" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
  "${PLATFORMS[@]}" -d "$DIR" hdf5plugin==4.0.1
"$PY" -m pip download -q --no-deps --no-binary=:all: -d "$DIR" pydensecrf2==1.1
ls -l "$DIR"
