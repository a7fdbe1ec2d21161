"""`make demo`: run every stage that exists on the bundled sample data, as a user would
(each step is a `vidseg` command line), and record what ran in runs/demo/summary.json.

    python scripts/demo.py [--out runs/demo]
"""

from __future__ import annotations

import argparse
import json
import shlex
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "sample_data"


def steps(out: Path) -> list[tuple[str, Callable[[], list[str]], str | None]]:
    """(name, vidseg arguments (built when the step runs, so a step can use what earlier
    steps made), where the step's JSON result goes: a file in `out`, "stdout" or None)."""
    synth, frames = out / "synth", out / "frames"
    bikes = str(SAMPLE / "videos" / "bikes.mp4")

    def synth_videos() -> list[str]:
        return sorted(str(p) for p in (synth / "videos").glob("*.mp4"))

    return [
        ("synth: a small labelled synthetic set",
         lambda: ["synth", "-o", str(synth), "--train", "2", "--test", "2", "--overwrite", "--quiet"],
         None),
        ("extract-frames: a real video (bikes.mp4, 250 frames at 25 fps)",
         lambda: ["extract-frames", bikes, "-o", str(frames / "bikes.frames.h5"), "--overwrite",
                  "--json", str(out / "extract_bikes.json")],
         "extract_bikes.json"),
        ("extract-frames: the synthetic videos, resampled to 10 fps, 2 jobs",
         lambda: ["extract-frames", *synth_videos(), "--fps", "10", "-o", str(frames), "--jobs", "2",
                  "--overwrite", "--json", str(out / "extract_synth.json")],
         "extract_synth.json"),
        ("inspect: the real video's frames file",
         lambda: ["inspect", "--json", str(frames / "bikes.frames.h5")],
         "stdout"),
    ]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default="runs/demo", help="output folder")
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    vidseg = Path(sys.executable).with_name("vidseg")
    summary = {"started": time.strftime("%Y-%m-%dT%H:%M:%S"), "steps": [], "metrics": {}}
    for name, make_argv, result in steps(out):
        argv = make_argv()
        cmd = [str(vidseg), *argv]
        print(f"\n== {name}\n$ {shlex.join(['vidseg', *argv])}", flush=True)
        t0 = time.perf_counter()
        proc = subprocess.run(cmd, capture_output=result == "stdout", text=True)
        secs = round(time.perf_counter() - t0, 3)
        step = {"name": name, "command": shlex.join(["vidseg", *argv]), "exit_code": proc.returncode,
                "seconds": secs}
        if result == "stdout" and proc.returncode == 0:
            step["result"] = json.loads(proc.stdout)
            print(json.dumps(step["result"].get("summary", {}), indent=1))
        elif result and (out / result).exists():
            step["result"] = json.loads((out / result).read_text())
        summary["steps"].append(step)
        if proc.returncode != 0:
            if result == "stdout":
                sys.stderr.write(proc.stderr)
            print(f"demo: step failed (exit {proc.returncode}): {name}", file=sys.stderr)
            (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
            return proc.returncode
    bikes = next(s for s in summary["steps"] if "bikes" in s["name"])["result"]["results"][0]
    summary["metrics"]["bikes_frames"] = bikes["num_frames"]
    summary["metrics"]["bikes_fps"] = bikes["fps"]
    summary["finished"] = time.strftime("%Y-%m-%dT%H:%M:%S")
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    print(f"\ndemo: all {len(summary['steps'])} steps done; summary in {out / 'summary.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
