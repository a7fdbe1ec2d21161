#!/usr/bin/env bash
# The Segment-tube learning check (docs/segment_tube.md, "Learning check"; issue 16 item 6):
# `vidseg synth --seed 11 --train 48 --test 16 --classes-per-video 1`, `vidseg train
# segment-tube` (synthetic recipe) on the frozen trunk of
# sample_data/weights/scnn_localization_synth.ckpt, γ chosen on the run's held-out training
# videos (experiments/segment_tube/gamma.py), extract-frames -> segment-tube (the default 3
# rounds, with frame scores, at that γ) on the 16 test videos, and the same with --rounds 1
# and --rounds 2 for every round's figures. Each part's wall time and the load averages go
# to OUT/times.jsonl; then `python -m experiments.segment_tube.learning OUT` scores the
# outputs and writes experiments/segment_tube/learning.json.
# Usage: experiments/segment_tube/learning_check.sh OUT   (THREADS: torch threads, default 2;
#   CLIP_MASK=soft|hard|none: the clips' mask in training and in segment-tube, default soft;
#   RECORD: the JSON record's name under experiments/segment_tube/, default learning.json)
set -euo pipefail
REPO=$(cd "$(dirname "$0")/../.." && pwd)
OUT=${1:?output folder}
THREADS=${THREADS:-2}
CLIP_MASK=${CLIP_MASK:-soft}
RECORD=${RECORD:-learning.json}
mkdir -p "$OUT"; : > "$OUT/times.jsonl"

part() {  # part NAME COMMAND...: run it niced, append {part, command, seconds, loads} to times.jsonl
  local name=$1; shift
  local l0 t0 t1 l1
  l0=$(cut -d' ' -f1-3 /proc/loadavg); t0=$(date +%s.%N)
  nice -n 5 "$@"
  t1=$(date +%s.%N); l1=$(cut -d' ' -f1-3 /proc/loadavg)
  PYTHONPATH="$REPO${PYTHONPATH:+:$PYTHONPATH}" python - "$OUT" "$name" "$t0" "$t1" "$l0" "$l1" "$*" <<'PY'
import json, sys
from experiments.records import portable
out, name, t0, t1, l0, l1, cmd = sys.argv[1:]
rec = {"part": name, "command": cmd, "seconds": round(float(t1) - float(t0), 1),
       "load_before": l0, "load_after": l1}
with open(f"{out}/times.jsonl", "a") as f:
    f.write(json.dumps(portable(rec, out)) + "\n")
print(json.dumps(portable(rec, out)))
PY
}

rm -rf "$OUT/synth" "$OUT/run" "$OUT/frames" "$OUT/gamma" "$OUT"/st_r*
part synth vidseg synth -o "$OUT/synth" --seed 11 --train 48 --test 16 --classes-per-video 1 -q
part train vidseg train segment-tube --data "$OUT/synth" -o "$OUT/run" --recipe synthetic \
  --init "$REPO/sample_data/weights/scnn_localization_synth.ckpt" --threads "$THREADS" --clip-mask "$CLIP_MASK" -q
part gamma env PYTHONPATH="$REPO${PYTHONPATH:+:$PYTHONPATH}" python -m experiments.segment_tube.gamma "$OUT"
GAMMA=$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["gamma"])' "$OUT/gamma/choice.json")
part extract_frames vidseg extract-frames "$OUT"/synth/videos/synth_test_*.mp4 -o "$OUT/frames" -q
part segment_tube vidseg segment-tube "$OUT"/frames/*.frames.h5 --weights "$OUT/run/best.ckpt" \
  -o "$OUT/st_r3" --frame-scores --gamma "$GAMMA" --clip-mask "$CLIP_MASK" --device cpu -q
for R in 1 2; do
  part "segment_tube_rounds_$R" vidseg segment-tube "$OUT"/frames/*.frames.h5 --weights "$OUT/run/best.ckpt" \
    -o "$OUT/st_r$R" --frame-scores --gamma "$GAMMA" --clip-mask "$CLIP_MASK" --rounds "$R" --device cpu -q
done
cd "$REPO" && python -m experiments.segment_tube.learning "$OUT" --record "$RECORD"
