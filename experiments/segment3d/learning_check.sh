#!/usr/bin/env bash
# The segment-3d learning check (docs/segment3d.md): CPU-sized Sep3D and 3DFCN-8s trained with
# the synthetic recipe on the default `vidseg synth` set, then scored on its 16 held-out
# test videos: extract-frames -> segment-3d (last.ckpt) -> evaluate, and the same scores
# through crf-refine (3DFCN §3.6, its defaults) -> evaluate. Appends one JSON line per
# model (command, wall time, load before/after, metrics) to OUT/learning.jsonl.
# Usage: experiments/segment3d/learning_check.sh OUT [MODEL...]   (default: sep3d 3dfcn-8s)
# SYNTH_OPTS adds `vidseg synth` options (e.g. "--fps 25"), TRAIN_OPTS `vidseg train
# segment` options on top of the recipe (e.g. "--class-weights 1,1"), TAG names the run
# (OUT/run_MODEL_TAG) so variants sit side by side.
set -euo pipefail
REPO=$(cd "$(dirname "$0")/../.." && pwd)
OUT=${1:?output folder}; shift
MODELS=${*:-sep3d 3dfcn-8s}
mkdir -p "$OUT"
[ -f "$OUT/synth/gt.json" ] || vidseg synth -o "$OUT/synth" ${SYNTH_OPTS:-} -q
[ -d "$OUT/frames" ] || vidseg extract-frames "$OUT"/synth/videos/synth_test_*.mp4 -o "$OUT/frames" -q
for M in $MODELS; do
  N="$M${TAG:+_$TAG}"
  RUN="$OUT/run_$N"; rm -rf "$RUN" "$OUT/scores_$N" "$OUT/crf_$N"
  CMD="vidseg train segment --model $M --data $OUT/synth -o $RUN --recipe synthetic --val-videos 2 --device cpu ${TRAIN_OPTS:-} -q"
  LOAD0=$(cut -d' ' -f1-3 /proc/loadavg); T0=$(date +%s.%N)
  nice -n 5 $CMD
  T1=$(date +%s.%N); LOAD1=$(cut -d' ' -f1-3 /proc/loadavg)
  vidseg segment-3d "$OUT"/frames/*.frames.h5 --model "$M" --weights "$RUN/last.ckpt" -o "$OUT/scores_$N" --device cpu -q
  vidseg evaluate "$OUT/scores_$N" --gt "$OUT/synth/labels" --json "$OUT/eval_$N.json" > /dev/null 2>&1 || true
  vidseg crf-refine "$OUT/scores_$N" --frames "$OUT/frames" -o "$OUT/crf_$N" -j 2 -q
  vidseg evaluate "$OUT/crf_$N" --gt "$OUT/synth/labels" --json "$OUT/eval_crf_$N.json" > /dev/null 2>&1 || true
  PYTHONPATH="$REPO${PYTHONPATH:+:$PYTHONPATH}" python - "$N" "$M" "$CMD" "$T0" "$T1" "$LOAD0" "$LOAD1" "$RUN" "$OUT" <<'PY'
import json, sys
from experiments.records import portable
n, m, cmd, t0, t1, l0, l1, run, out = sys.argv[1:]

def ev(path):
    e = json.load(open(path))
    return e.get("results", e) if isinstance(e, dict) else e

log = [json.loads(x) for x in open(f"{run}/log.jsonl")]
cfg = json.load(open(f"{run}/config.json"))
rec = {"model": m, "run": n, "command": cmd, "train_seconds": round(float(t1) - float(t0), 1),
       "load_before": l0, "load_after": l1, "epochs": len(log), "steps": log[-1]["step"],
       "loss_first_epoch": log[0]["loss"], "loss_last_epoch": log[-1]["loss"],
       "val_per_epoch": [r.get("val", {}).get("foreground_iou") for r in log],
       "model_config": cfg["model_config"], "evaluate_test_last_ckpt": ev(f"{out}/eval_{n}.json"),
       "evaluate_test_last_ckpt_crf_refine": ev(f"{out}/eval_crf_{n}.json"),
       "synth": json.load(open(f"{out}/synth/synth.json"))["command"]}
rec = portable(rec, out)
with open(f"{out}/learning.jsonl", "a") as f:
    f.write(json.dumps(rec) + "\n")
print(json.dumps({k: rec[k] for k in ("run", "train_seconds", "load_before", "load_after", "steps", "val_per_epoch")}))
print("test fg IoU", rec["evaluate_test_last_ckpt"]["foreground_iou"],
      "after crf-refine", rec["evaluate_test_last_ckpt_crf_refine"]["foreground_iou"])
PY
done
