"""OUT/gpu.json from what benchmarks/gpu/run.sh left in OUT: steps.jsonl (each step's exit
status and seconds), cuda_tests.xml (pytest's JUnit report), figures.json, learning.json;
and a short table on stdout (the end of a `run` call's output).

    python benchmarks/gpu/collect.py OUT --commit SHA [--dry-run]

Exit status 0 when every step exited 0, else 1. Copy OUT/gpu.json to benchmarks/gpu.json
when it comes from a real GPU run.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path


def tests_summary(xml: Path) -> dict:
    """Counts and the failed or skipped tests (with pytest's message) of a JUnit report."""
    if not xml.exists():
        return {"error": f"{xml.name} not written"}
    root = ET.parse(xml).getroot()
    out = {"tests": 0, "passed": 0, "failed": 0, "errors": 0, "skipped": 0, "seconds": 0.0,
           "not_passed": []}
    for case in root.iter("testcase"):
        out["tests"] += 1
        out["seconds"] += float(case.get("time", 0) or 0)
        kind = next((c.tag for c in case if c.tag in ("failure", "error", "skipped")), None)
        if kind is None:
            out["passed"] += 1
            continue
        out[{"failure": "failed", "error": "errors", "skipped": "skipped"}[kind]] += 1
        el = next(c for c in case if c.tag == kind)
        out["not_passed"].append({"test": f"{case.get('classname')}::{case.get('name')}", "outcome": kind,
                                  "message": (el.get("message") or "")[:300]})
    out["seconds"] = round(out["seconds"], 2)
    return out


def load(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as e:
        return {"error": f"{path.name}: {e}"}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out", type=Path)
    ap.add_argument("--commit", default="unknown")
    ap.add_argument("--dry-run", action="store_true")
    args = ap.parse_args(argv)
    steps = [json.loads(x) for x in (args.out / "steps.jsonl").read_text().splitlines() if x.strip()]
    figures = load(args.out / "figures.json")
    record = {
        "created": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "commit": args.commit,
        "dry_run": args.dry_run,
        "machine": figures.get("machine"),
        "steps": steps,
        "cuda_tests": tests_summary(args.out / "cuda_tests.xml"),
        "figures": figures,
        "learning": load(args.out / "learning.json"),
    }
    (args.out / "gpu.json").write_text(json.dumps(record, indent=1) + "\n")
    print(f"commit {args.commit}  device {(record['machine'] or {}).get('name')}")
    for s in steps:
        print(f"  {s['step']:<18} rc={s['rc']:<4} {s.get('seconds', '')} s")
    t = record["cuda_tests"]
    print(f"  cuda tests: {t.get('passed')} passed, {t.get('failed')} failed, {t.get('errors')} errors, "
          f"{t.get('skipped')} skipped")
    for name, f in (figures.get("figures") or {}).items():
        keys = {k: v["median_ms"] for k, v in f.items() if isinstance(v, dict) and "median_ms" in v}
        print(f"  {name:<16} " + ", ".join(f"{k} {v} ms" for k, v in keys.items()))
    lt = record["learning"].get("test")
    print(f"  learning: {lt}  {record['learning'].get('error', '')}")
    return 0 if all(s["rc"] == 0 for s in steps) else 1


if __name__ == "__main__":
    sys.exit(main())
