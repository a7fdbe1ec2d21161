"""One step of a `make paper-*` pipeline (makefiles/papers.mk), run here or through
`vidseg submit` (SLURM=1), so that each Make rule stays one line.

    python scripts/papers/step.py NAME [--in PATH...]... [--follow UP] [--after UP]...
        [--after-any UP]... [--stamp FILE] -- STAGE [STAGE OPTIONS]

Here (SLURM unset or 0): `vidseg STAGE INPUTS OPTIONS`; a training whose run folder holds
last.ckpt continues with --resume (a run folder with no checkpoint yet starts again with
--overwrite), so an interrupted `make` picks up where it stopped. Then --stamp is touched.

SLURM=1: `vidseg submit --folder WORK/slurm/NAME-<time> ...`, where UP names an earlier
step of the same run (WORK is PAPER_WORK). Per-video stages follow UP's submission of this
make run task by task (--follow) when UP submitted one, else take INPUTS as a plain submit
does (only the inputs still lacking outputs are submitted: a rerun submits nothing);
whole-set stages (train, evaluate) start after UP's jobs (--after: afterok, --after-any:
afterany) and are waited for (--wait), since what comes next reads their outputs. A step
that submitted something writes WORK/slurm/NAME.folder (what later steps follow) and
touches --stamp; one that had nothing to do removes NAME.folder and leaves the stamp, so
Make does not redo what depends on it. SUBMIT_OPTS adds submit options (--partition,
--gpus, ...; `--local` runs the same tasks here).
"""

from __future__ import annotations

import argparse
import fnmatch
import glob
import json
import os
import shlex
import subprocess
import sys
import time
from pathlib import Path

SET_STAGES = ("train", "evaluate", "hmm-fit", "export")


def vidseg() -> list[str]:
    return shlex.split(os.environ.get("VIDSEG", f"{sys.executable} -m vidseg_cli.cli.main"))


def _option(words: list[str], *names: str) -> str | None:
    for i, w in enumerate(words):
        for n in names:
            if w == n and i + 1 < len(words):
                return words[i + 1]
            if w.startswith(n + "="):
                return w.split("=", 1)[1]
    return None


def _stage_len(words: list[str]) -> int:
    return 2 if words[0] == "train" else 1


def expand(patterns: list[str], predicted: list[str]) -> list[str]:
    """--in values: a pattern holding `*` or `?` (quoted in the Makefile, so the shell left
    it) becomes the files that match it now, plus, under SLURM=1, the outputs that this
    run's upstream submissions will write and that match it (not there yet)."""
    out: list[str] = []
    for p in patterns:
        if not any(c in p for c in "*?["):
            out.append(p)
            continue
        found = {os.path.abspath(f) for f in glob.glob(p)}
        found |= {f for f in predicted if fnmatch.fnmatch(f, os.path.abspath(p))}
        out.extend(sorted(found))
    return out


def local(args, words: list[str]) -> int:
    n = _stage_len(words)
    cmd = [*vidseg(), *words[:n], *expand(args.inputs, []), *words[n:]]
    if words[0] == "train" and "--resume" not in words and "--overwrite" not in words:
        run = Path(_option(words, "-o", "--output") or "")
        if (run / "last.ckpt").exists():
            cmd.append("--resume")
        elif run.is_dir() and any(run.iterdir()):
            cmd.append("--overwrite")  # a run stopped before its first checkpoint
    print("+", shlex.join(cmd), flush=True)
    return subprocess.call(cmd)


def slurm(args, words: list[str]) -> int:
    work = Path(os.environ.get("PAPER_WORK", "."))
    subs = work / "slurm"
    subs.mkdir(parents=True, exist_ok=True)
    marker = subs / f"{args.name}.folder"
    marker.unlink(missing_ok=True)
    folder = subs / f"{args.name}-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}"
    n = _stage_len(words)
    cmd = [*vidseg(), "submit", "--folder", str(folder),
           *shlex.split(os.environ.get("SUBMIT_OPTS", ""))]
    up = _submitted(subs, args.follow) if args.follow else None
    ups = [f for name in [args.follow, *args.after, *args.after_any] if name
           for f in [_submitted(subs, name)] if f]
    inputs = expand(args.inputs, [o for f in ups for o in _predicted(f)])
    whole_set = words[0] in SET_STAGES
    if up and not whole_set:
        cmd += ["--follow", up, *words]
    else:
        for kind, names in (("--after", args.after), ("--after-any", args.after_any)):
            for name in names:
                f = _submitted(subs, name)
                if f:
                    cmd += [kind, f]
        if whole_set and "--local" not in cmd:
            cmd.append("--wait")
        cmd += [*words[:n], *inputs, *words[n:]]
    print("+", shlex.join(cmd), flush=True)
    rc = subprocess.call(cmd)
    if rc == 0 and (folder / "submit.json").exists():
        marker.write_text(str(folder.absolute()) + "\n")
        if args.stamp:
            _touch(args.stamp)
    elif rc == 0 and args.stamp and not Path(args.stamp).exists():
        _touch(args.stamp)  # every output existed before this make run
    return rc


def _submitted(subs: Path, name: str) -> str | None:
    """The folder that step `name` submitted in this make run, if it submitted one."""
    m = subs / f"{name}.folder"
    return m.read_text().strip() if m.exists() else None


def _predicted(folder: str) -> list[str]:
    """Every output a submission folder's record predicts."""
    doc = json.loads((Path(folder) / "submit.json").read_text())
    return [o for item in doc.get("items", []) for o in item.get("outputs", [])]


def _touch(path: str) -> None:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).touch()


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if "--" not in argv:
        print("step.py: usage: step.py NAME [...] -- STAGE [OPTIONS]", file=sys.stderr)
        return 2
    cut = argv.index("--")
    ap = argparse.ArgumentParser(prog="step.py")
    ap.add_argument("name")
    ap.add_argument("--in", dest="inputs", action="extend", nargs="+", default=[])
    ap.add_argument("--follow")
    ap.add_argument("--after", action="append", default=[])
    ap.add_argument("--after-any", dest="after_any", action="append", default=[])
    ap.add_argument("--stamp")
    args = ap.parse_args(argv[:cut])
    words = argv[cut + 1:]
    if not words:
        print("step.py: no stage given", file=sys.stderr)
        return 2
    if os.environ.get("SLURM", "0") not in ("", "0"):
        return slurm(args, words)
    rc = local(args, words)
    if rc == 0 and args.stamp:
        _touch(args.stamp)
    return rc


if __name__ == "__main__":
    sys.exit(main())
