"""Run every benchmark and print each figure as a ratio measured side by side in one run.

A benchmark is a module `benchmarks/<area>/bench_<name>.py` (or `benchmarks/bench_<name>.py`)
with `run(quick: bool) -> list[dict]`; each dict is one figure:

    {"name": "extract-frames vs bare decode", "ratio": 1.21, "target": "<= 1.5",
     "ok": True, "detail": {...}}

`ratio` compares two things measured in the same run (never a wall-clock threshold);
`ok` says whether it meets `target`. The record goes to runs/bench/bench.json.

    python -m benchmarks.run [--quick] [--only SUBSTRING] [--json FILE]
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import platform
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent


def discover(only: str | None) -> list[str]:
    mods = []
    for p in sorted(ROOT.rglob("bench_*.py")):
        mod = ".".join(p.relative_to(ROOT.parent).with_suffix("").parts)
        if only is None or only in mod:
            mods.append(mod)
    return mods


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="smaller inputs, fewer repeats")
    ap.add_argument("--only", default=None, help="run benchmarks whose module name contains this")
    ap.add_argument("--json", default="runs/bench/bench.json", help="where to write the record")
    args = ap.parse_args(argv)

    from rich.console import Console
    from rich.table import Table

    console = Console()
    record = {
        "created": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "machine": {"python": platform.python_version(), "platform": platform.platform(),
                    "cpus": os.cpu_count()},
        "figures": [],
    }
    failed_modules = []
    for mod in discover(args.only):
        console.print(f"[bold]{mod}[/bold] ...")
        # The 1-minute load average around each benchmark: a reader can tell a noisy run.
        load = {"before": round(os.getloadavg()[0], 2)}
        try:
            figures = importlib.import_module(mod).run(quick=args.quick)
        except Exception as e:  # a broken benchmark is reported, the others still run
            console.print(f"  [red]failed: {e.__class__.__name__}: {e}[/red]")
            failed_modules.append(mod)
            continue
        load["after"] = round(os.getloadavg()[0], 2)
        console.print(f"  load average {load['before']} before, {load['after']} after")
        for fig in figures:
            fig["module"] = mod
            fig["load_avg_1min"] = load
            record["figures"].append(fig)

    table = Table(title="vidseg benchmarks (ratios measured side by side in this run)")
    for col in ("benchmark", "figure", "ratio", "target", "met"):
        table.add_column(col)
    for fig in record["figures"]:
        ok = fig.get("ok")
        table.add_row(
            fig["module"].split(".")[-1],
            fig["name"],
            f"{fig['ratio']:.3g}" if isinstance(fig.get("ratio"), (int, float)) else str(fig.get("ratio")),
            str(fig.get("target", "")),
            "[green]yes[/green]" if ok else ("[red]no[/red]" if ok is False else "-"),
        )
    console.print(table)
    out = Path(args.json)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(record, indent=2, default=str) + "\n")
    console.print(f"record written to {out}")
    return 1 if failed_modules else 0


if __name__ == "__main__":
    sys.exit(main())
