#!/usr/bin/env bash
# Issue #22 on a GPU machine in one call (docs/gpu.md gives the exact `run` call):
#   benchmarks/gpu/run.sh OUT_DIR [--dry-run]
# 1. installs vidseg (--no-deps) into a folder for the Python there (python3, or $PYTHON),
#    with the wheels of benchmarks/gpu/wheels.sh from $VIDSEG_WHEELS (default
#    runs/gpu/wheels), and builds pydensecrf2 from its source in the background;
# 2. runs the CUDA tests, tests/gpu/test_cuda_*.py, with VIDSEG_CUDA_CHECK=1 (a missing
#    GPU fails them instead of skipping them), at most 1 minute;
# 3. measures the figures (benchmarks/gpu/figures.py), at most 2 minutes;
# 4. runs the 3DFCN-8s learning check at scale (benchmarks/gpu/learning.py), at most 2.5
#    minutes;
# 5. writes OUT_DIR/gpu.json (benchmarks/gpu/collect.py): device, commit, every step's exit
#    status and time, the tests' counts, the figures, the learning check.
# The commit is $VIDSEG_COMMIT, else `git rev-parse HEAD` where the checkout has its .git.
# --dry-run: the same steps on the CPU at tiny sizes in a few tens of seconds (the test
# tests/gpu/test_run.py runs it): no wheels, the CUDA tests skip, tiny figures, a 2-step
# training. Work files go to $VIDSEG_GPU_WORK (default: a fresh folder under /tmp);
# OUT_DIR gets at most 8 files, as a `run` call brings back. VIDSEG_GPU_STEPS names the
# steps to run after the install (default "cuda_tests figures learning"), for a rerun of
# one step inside what is left of a device budget.
set -uo pipefail
OUT=${1:?usage: benchmarks/gpu/run.sh OUT_DIR [--dry-run]}
DRY=0
[ "${2:-}" = "--dry-run" ] && DRY=1
REPO=$(cd "$(dirname "$0")/../.." && pwd)
PY=${PYTHON:-python3}
WORK=${VIDSEG_GPU_WORK:-$(mktemp -d /tmp/vidseg-gpu.XXXXXX)}
WHEELS=${VIDSEG_WHEELS:-$REPO/runs/gpu/wheels}
SITE=$WORK/site
mkdir -p "$OUT" "$SITE"
OUT=$(cd "$OUT" && pwd)
LOG=$OUT/run.log
STEPS=$OUT/steps.jsonl
: > "$STEPS"
export PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1
WANTED=" ${VIDSEG_GPU_STEPS:-cuda_tests figures learning} "
want() { [[ "$WANTED" == *" $1 "* ]]; }

step() {  # step NAME CAP_SECONDS CMD...: run CMD under a time cap, log it, record rc and seconds
  local name=$1 cap=$2; shift 2
  local t0 rc
  echo "== $name (cap ${cap}s): $*" | tee -a "$LOG"
  t0=$(date +%s%N)
  timeout --kill-after=10 "$cap" "$@" >>"$LOG" 2>&1
  rc=$?
  printf '{"step": "%s", "rc": %d, "seconds": %d.%02d, "cap": %d}\n' "$name" "$rc" \
    $(( ($(date +%s%N) - t0) / 1000000000 )) $(( ($(date +%s%N) - t0) / 10000000 % 100 )) "$cap" >>"$STEPS"
  echo "   rc=$rc" | tee -a "$LOG"
  return 0
}

# 1. vidseg from a copy of its sources (the build writes nothing into the checkout).
mkdir -p "$WORK/src"
cp -r "$REPO/pyproject.toml" "$REPO/README.md" "$REPO/vidseg_cli" "$WORK/src/"
WHL=()
if [ $DRY = 0 ] && [ -d "$WHEELS" ]; then
  WHL=("$WHEELS"/*.whl)
fi
step install 60 "$PY" -m pip install -q --no-deps --no-index --no-build-isolation --no-compile \
  --disable-pip-version-check --target "$SITE" "$WORK/src" "${WHL[@]}"
export PYTHONPATH=$SITE
CRF_PID=
if [ $DRY = 0 ] && want learning && compgen -G "$WHEELS/pydensecrf2-*.tar.gz" >/dev/null; then
  # The sdist's own Cython-generated C++ (Cython hidden: the image's Cython 3 is not the one
  # pydensecrf2 pins); its .so files are built in place and the folder goes on PYTHONPATH.
  mkdir -p "$WORK/crf"
  tar xzf "$WHEELS"/pydensecrf2-*.tar.gz -C "$WORK/crf" --strip-components=1
  (cd "$WORK/crf" && timeout 240 "$PY" -c "import sys; sys.modules['Cython'] = None; \
sys.argv = ['setup.py', 'build_ext', '--inplace', '-j', '8']; exec(compile(open('setup.py').read(), 'setup.py', 'exec'))" \
    >"$WORK/crf-build.log" 2>&1; echo "{\"step\": \"build_pydensecrf2\", \"rc\": $?}" >>"$STEPS") &
  CRF_PID=$!
fi

# 2. CUDA tests (they skip on a CPU, and in the dry run).
CHECK=1
[ $DRY = 1 ] && CHECK=0
want cuda_tests && (cd "$REPO" && step cuda_tests 60 env VIDSEG_CUDA_CHECK=$CHECK "$PY" -m pytest -q -p no:cacheprovider \
  --junitxml="$OUT/cuda_tests.xml" tests/gpu/test_cuda_models.py tests/gpu/test_cuda_paths.py)

# 3. Figures.
TINY=()
[ $DRY = 1 ] && TINY=(--tiny)
want figures && step figures 120 "$PY" "$REPO/benchmarks/gpu/figures.py" --out "$OUT/figures.json" --budget 100 "${TINY[@]}"

# 4. The learning check, once pydensecrf is built (it is needed only at its end; the build
#    runs beside the tests and figures).
if [ -n "$CRF_PID" ]; then
  wait "$CRF_PID"
  export PYTHONPATH=$SITE:$WORK/crf
  tail -3 "$WORK/crf-build.log" >>"$LOG"
fi
DEV=(--device cuda)
[ $DRY = 1 ] && DEV=(--device cpu --jobs 2)
want learning && step learning 150 "$PY" "$REPO/benchmarks/gpu/learning.py" --work "$WORK/learning" \
  --out "$OUT/learning.json" --budget 135 "${DEV[@]}" "${TINY[@]}"
[ -f "$WORK/learning/learning.log" ] && tail -c 200000 "$WORK/learning/learning.log" >"$OUT/learning.log"

# 5. One record.
COMMIT=${VIDSEG_COMMIT:-$(git -C "$REPO" rev-parse HEAD 2>/dev/null || echo unknown)}
"$PY" "$REPO/benchmarks/gpu/collect.py" "$OUT" --commit "$COMMIT" $([ $DRY = 1 ] && echo --dry-run) 2>&1 | tee -a "$LOG"
