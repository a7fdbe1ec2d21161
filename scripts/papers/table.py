"""The results table of a `make paper-*` run: our figures beside the paper's, and under
SMALL=1 each figure checked against the range recorded from real runs.

    python scripts/papers/table.py EXPECTED.json NAME=EVAL.json... -o RESULTS.md [--small]

EXPECTED.json (experiments/papers/<paper>.expected.json) lists `figures`, each with
`name`, `eval` (the NAME of the evaluate --json record it is read from), `key` (the path
to it inside that record), `paper` (the paper's number, in %, or null where the paper
reports none) and `small` ([low, high] in %, the range a SMALL=1 run must land in).
Writes RESULTS.md and RESULTS.json beside it (atomically), prints the table, and exits 1
with one line per figure outside its range (SMALL=1), 2 on a missing or unreadable record.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from vidseg_cli.core.fs import write_text  # noqa: E402


def lookup(record, key: list[str]):
    for k in key:
        if not isinstance(record, dict) or k not in record:
            return None
        record = record[k]
    return record if isinstance(record, (int, float)) else None


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="table.py")
    ap.add_argument("expected")
    ap.add_argument("evals", nargs="+", metavar="NAME=EVAL.json")
    ap.add_argument("-o", "--output", required=True)
    ap.add_argument("--small", action="store_true")
    ap.add_argument("--no-ranges", action="store_true",
                    help="print the ranges but do not check them (a shortened recipe)")
    args = ap.parse_args(argv)
    exp = json.loads(Path(args.expected).read_text())
    records = {}
    for item in args.evals:
        name, _, path = item.partition("=")
        try:
            records[name] = json.loads(Path(path).read_text())
        except (OSError, ValueError) as e:
            print(f"{path}: cannot read the evaluate record ({e})", file=sys.stderr)
            return 2
    rows, bad = [], []
    for f in exp["figures"]:
        if f["eval"] not in records:
            print(f"{args.expected}: figure {f['name']} needs the record {f['eval']}=...",
                  file=sys.stderr)
            return 2
        v = lookup(records[f["eval"]], f["key"])
        ours = None if v is None else round(100.0 * v, 1)
        lo, hi = f.get("small") or (None, None)
        verdict = ""
        if args.small and args.no_ranges:
            verdict = "not checked"
        elif args.small and lo is None:
            verdict = "no range recorded"
        elif args.small:
            ok = ours is not None and lo <= ours <= hi
            verdict = "ok" if ok else "OUT OF RANGE"
            if not ok:
                bad.append(f"{f['name']}: {ours} outside the recorded range [{lo}, {hi}]")
        rows.append({"figure": f["name"], "ours": ours, "paper": f.get("paper"),
                     "source": f.get("source", ""), "range": [lo, hi] if args.small else None,
                     "check": verdict})
    head = "SMALL=1 (synthetic set, CPU recipe)" if args.small else "full"
    lines = [f"# {exp['title']}: {head}", "",
             "| figure | ours (%) | paper (%) | paper's table |"
             + (" SMALL range | check |" if args.small else ""),
             "|---|---|---|---|" + ("---|---|" if args.small else "")]
    for r in rows:
        cell = "-" if r["ours"] is None else f"{r['ours']:.1f}"
        paper = "-" if r["paper"] is None else f"{r['paper']:.1f}"
        line = f"| {r['figure']} | {cell} | {paper} | {r['source']} |"
        if args.small:
            lo, hi = r["range"]
            line += f" {'-' if lo is None else f'{lo}..{hi}'} | {r['check']} |"
        lines.append(line)
    if args.small:
        lines += ["", "The paper's numbers are on its real dataset; SMALL=1 runs the same "
                      "chain on a seeded synthetic set, so only the ranges are checked."]
    text = "\n".join(lines) + "\n"
    out = Path(args.output)
    print(text, end="")
    for b in bad:
        print(f"{args.output}: {b}", file=sys.stderr)
    if bad:
        return 1
    write_text(out.with_suffix(".json"), json.dumps({"paper": exp["title"], "small": args.small,
                                                      "rows": rows}, indent=1) + "\n")
    write_text(out, text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
