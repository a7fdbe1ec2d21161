"""Kill sweep (#15): stop vidseg commands at random moments and check that nothing is lost.

Each trial starts one command (extract-frames, segment-3d, hmm-smooth, crf-refine, train
segment; extract-frames, hmm-smooth and crf-refine with `--jobs 2`, so that worker
processes are in play), sends its process SIGKILL, SIGTERM, SIGINT or SIGHUP after a
random delay (a seeded fraction of the command's full run time: the shortest of two runs
beforehand, lowered whenever a trial's command finishes before its signal, as it does when
the machine gets less busy), then checks:

- no process of the command outlives it by more than a few seconds (its session's
  processes: workers, loky's resource tracker), and no output appears after it exited;
- every file under a final name is whole: an .h5 file validates (store's `describe`, the
  code of `vidseg inspect`) and every dataset reads through, a checkpoint loads
  (`read_checkpoint`), a .json/.jsonl file parses;
- after a signal the command can handle (SIGTERM, SIGINT, SIGHUP) no temporary file
  (`.vidseg-tmp-*`, `*.tmp`) nor run lock is left;
- the same command run again (train: with `--resume` when the run folder holds a
  last.ckpt, `--overwrite` when it holds other run files, as the refusal says) exits 0,
  leaves no temporary file, and its outputs are all there and whole.

The exit status is recorded beside the status the signal should give (128 + its number,
-9 for SIGKILL, 0 when the command finished first) and counted apart from the checks
above: a signal that lands once the work is done (loky shutting its workers down, the
interpreter finishing) leaves exit 0 or Python's own status with every output whole, and
one that lands while Python is still starting gives Python's own status. An exit 0 with
an output missing is a failed check.

    python -m experiments.reliability.kill_sweep [--trials 25] [--seed 0] [--work DIR]

writes experiments/reliability/kill_sweep.json (`--record`), with the work folder written
as OUT. The inputs are made from sample_data/ in the work folder (a temporary one unless
--work): frames, 3DFCN-8s scores, crf labels, an HMM fitted on them, a small synthetic set.
"""

from __future__ import annotations

import argparse
import datetime
import json
import math
import os
import platform
import random
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
SAMPLE = REPO / "sample_data"
RECORD = Path(__file__).with_name("kill_sweep.json")

SIGNALS = {"SIGKILL": signal.SIGKILL, "SIGTERM": signal.SIGTERM, "SIGINT": signal.SIGINT,
           "SIGHUP": signal.SIGHUP}
HANDLED = ("SIGTERM", "SIGINT", "SIGHUP")
TIMEOUT = 300  # seconds a command may take before the trial calls it hung
GRACE = 15.0  # seconds a command's other processes may take to follow it (a loaded CPU slows their exit)
TMP_PREFIX = ".vidseg-tmp-"
RUN_FILES = ("last.ckpt", "best.ckpt", "log.jsonl", "config.json", "summary.json")


@dataclass
class Stage:
    """One command under test. `args` name the trial's output folder as {out}; `outputs`
    are the files it leaves there when it completes."""

    name: str
    args: list[str]
    outputs: list[str]
    run_folder: str | None = None  # train: the run folder, relative to {out}
    seconds: float = 0.0  # a full run, measured by `calibrate`

    def command(self, out: Path) -> list[str]:
        return [a.replace("{out}", str(out)) for a in self.args]

    def rerun(self, out: Path) -> list[str]:
        cmd = self.command(out)
        if self.run_folder:
            run = out / self.run_folder
            if (run / "last.ckpt").exists():
                cmd.append("--resume")
            elif any((run / n).exists() for n in RUN_FILES):
                cmd.append("--overwrite")
        return cmd


def vidseg(*args: Any) -> list[str]:
    return [sys.executable, "-m", "vidseg_cli.cli.main", *map(str, args)]


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), *filter(None, [env.get("PYTHONPATH")])])
    env["CUDA_VISIBLE_DEVICES"] = ""  # the sweep is about files and processes, not speed
    return env


def _default_signals() -> None:
    """In the child: the signals under test at their defaults, whatever this process
    inherited (a background job or nohup starts with SIGINT or SIGHUP ignored, and an
    ignored signal stays ignored across exec)."""
    for s in SIGNALS.values():
        if s != signal.SIGKILL:
            signal.signal(s, signal.SIG_DFL)


def _run(cmd: Sequence[str], cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, cwd=cwd, env=_env(), stdout=subprocess.DEVNULL,
                          stderr=subprocess.PIPE, text=True, timeout=TIMEOUT,
                          preexec_fn=_default_signals)


def _must(cmd: Sequence[str], cwd: Path) -> None:
    res = _run(cmd, cwd)
    if res.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)}: exit {res.returncode}\n{res.stderr}")


# -- the stages and their inputs ------------------------------------------------------
def pipeline_stages(inputs: Path) -> list[Stage]:
    """The five commands on inputs made from sample_data/ (about a minute on 2 cores)."""
    inputs.mkdir(parents=True, exist_ok=True)
    videos = SAMPLE / "videos"
    weights = SAMPLE / "weights" / "3dfcn8s_synth.ckpt"
    # named by video id, the name every stage gives its outputs
    c, d = inputs / "carphone_pristine.frames.h5", inputs / "bikes.frames.h5"
    cs, ds = inputs / "carphone_pristine.scores.h5", inputs / "bikes.scores.h5"
    labels = inputs / "carphone_pristine.labels.h5"
    steps = [  # (what it makes, the command), skipped when a kept --work folder has it
        (c, vidseg("extract-frames", videos / "carphone_pristine.mp4", "-o", c, "--end", "1.4",
                   "-q")),
        (d, vidseg("extract-frames", videos / "bikes.mp4", "-o", d, "--end", "1.0",
                   "--size", "176x144", "-q")),
        (ds, vidseg("segment-3d", c, d, "--model", "3dfcn-8s", "--weights", weights,
                    "-o", inputs, "--device", "cpu", "-q")),
        (labels, vidseg("crf-refine", cs, "--frames", c, "-o", labels, "-q")),
        (inputs / "hmm.h5", vidseg("hmm-fit", labels, "-o", inputs / "hmm.h5", "-q")),
        (inputs / "synth", vidseg("synth", "-o", inputs / "synth", "--size", "64x48",
                                  "--duration", "6,8", "--action-length", "2,3", "--train", "2",
                                  "--test", "1", "-q")),
    ]
    for made, cmd in steps:
        if not made.exists():
            _must(cmd, inputs)
    return [
        Stage("extract-frames",
              vidseg("extract-frames", videos / "bikes.mp4", videos / "carphone_pristine.mp4",
                     "-o", "{out}", "--jobs", "2", "-q"),
              ["bikes.frames.h5", "carphone_pristine.frames.h5"]),
        Stage("segment-3d",
              vidseg("segment-3d", c, "--model", "3dfcn-8s", "--weights", weights, "-o", "{out}",
                     "--device", "cpu", "-q"),
              ["carphone_pristine.scores.h5"]),
        Stage("hmm-smooth",
              vidseg("hmm-smooth", cs, ds, "--hmm", inputs / "hmm.h5", "-o", "{out}",
                     "--device", "cpu", "--jobs", "2", "-q"),
              ["carphone_pristine.scores.h5", "bikes.scores.h5"]),
        Stage("crf-refine",
              vidseg("crf-refine", cs, "--frames", c, "-o", "{out}", "--jobs", "2", "-q"),
              ["carphone_pristine.labels.h5"]),
        Stage("train",
              vidseg("train", "segment", "--model", "sep3d", "--data", inputs / "synth",
                     "--recipe", "synthetic", "--epochs", "8", "--clips-per-video", "1",
                     "--batch-size", "2", "--clip-len", "8", "--crop", "32", "--val-videos", "1",
                     "--device", "cpu", "-o", "{out}/run", "-q"),
              ["run/last.ckpt", "run/best.ckpt", "run/log.jsonl", "run/config.json"],
              run_folder="run"),
    ]


def light_stages(inputs: Path) -> list[Stage]:
    """extract-frames and hmm-smooth on small inputs made in a few seconds (the slow test)."""
    import numpy as np

    from vidseg_cli import store

    inputs.mkdir(parents=True, exist_ok=True)
    videos = []
    for i in range(2):
        v = inputs / f"v{i}.mp4"
        if not v.exists():
            v.symlink_to(SAMPLE / "videos" / "carphone_pristine.mp4")
        videos.append(v)
    names = ["background", "walk", "run"]
    rng = np.random.default_rng(0)
    scores = []
    for vid in ("s0", "s1"):
        probs = np.moveaxis(rng.dirichlet(np.ones(3), size=(48, 72, 96)).astype(np.float32), -1, 1)
        path = inputs / f"{vid}.scores.h5"
        store.write_scores(path, probs, class_names=names, video_id=vid, num_frames=len(probs),
                           fps=25.0)
        scores.append(path)
    store.write_hmm(inputs / "hmm.h5", [0.6, 0.2, 0.2],
                    [[0.9, 0.05, 0.05], [0.1, 0.85, 0.05], [0.1, 0.05, 0.85]], names)
    return [
        Stage("extract-frames",
              vidseg("extract-frames", *videos, "-o", "{out}", "--codec", "gzip", "--jobs", "2",
                     "-q"),
              ["v0.frames.h5", "v1.frames.h5"]),
        Stage("hmm-smooth",
              vidseg("hmm-smooth", *scores, "--hmm", inputs / "hmm.h5", "-o", "{out}",
                     "--device", "cpu", "--jobs", "2", "-q"),
              ["s0.scores.h5", "s1.scores.h5"]),
    ]


# -- what a folder holds --------------------------------------------------------------
def is_temporary(p: Path) -> bool:
    return p.name.startswith(TMP_PREFIX) or p.name.endswith(".tmp") or p.name == ".vidseg-run.lock"


def listing(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file()) if folder.exists() else []


def problem_with(path: Path) -> str | None:
    """Why a file under a final name is not whole, or None."""
    try:
        if path.suffix == ".h5":
            import h5py

            from vidseg_cli.store.describe import describe

            describe(path, stats=False)
            with h5py.File(path, "r") as f:
                f.visititems(lambda _, obj: obj[()] if isinstance(obj, h5py.Dataset) else None)
        elif path.suffix == ".ckpt":
            from vidseg_cli.models.checkpoint.format import read_checkpoint

            read_checkpoint(path)
        elif path.suffix == ".json":
            json.loads(path.read_text())
        elif path.suffix == ".jsonl":
            for line in path.read_text().splitlines():
                json.loads(line)
    except Exception as e:  # any failure to read it back is the finding
        return f"{e.__class__.__name__}: {e}"
    return None


def check_folder(out: Path) -> tuple[list[str], list[dict[str, str]]]:
    """The temporary files under `out`, and the final files that are not whole."""
    files = listing(out)
    temps = [str(p.relative_to(out)) for p in files if is_temporary(p)]
    broken = [{"file": str(p.relative_to(out)), "problem": why}
              for p in files if not is_temporary(p) and (why := problem_with(p))]
    return temps, broken


# -- processes ------------------------------------------------------------------------
def session_processes(sid: int) -> list[dict[str, Any]]:
    """Live processes of session `sid` (a command started with start_new_session)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            cmd = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if int(fields[3]) == sid and fields[0] != "Z":
            found.append({"pid": int(entry.name), "command": cmd.strip()[:160]})
    return found


def outlivers(sid: int, grace: float = GRACE) -> list[dict[str, Any]]:
    """Processes of the session still running `grace` seconds on; they are then killed."""
    deadline = time.monotonic() + grace
    left = session_processes(sid)
    while left and time.monotonic() < deadline:
        time.sleep(0.1)
        left = session_processes(sid)
    for p in left:
        try:
            os.kill(p["pid"], signal.SIGKILL)
        except ProcessLookupError:
            pass
    return left


# -- one trial ------------------------------------------------------------------------
@dataclass
class Trial:
    index: int
    stage: str
    signal: str
    fraction: float  # of the stage's full run
    delay: float = 0.0  # seconds
    result: dict[str, Any] = field(default_factory=dict)


def expected_exit(sig: str, finished_first: bool) -> int:
    if finished_first:
        return 0
    return -signal.SIGKILL if sig == "SIGKILL" else 128 + SIGNALS[sig]


def run_trial(stage: Stage, sig: str, delay: float, folder: Path) -> dict[str, Any]:
    """Start `stage`, send `sig` after `delay` seconds, check, rerun, check again."""
    out = folder / "out"
    folder.mkdir(parents=True, exist_ok=True)
    problems: list[str] = []
    with open(folder / "stderr.txt", "w") as err:
        t0 = time.monotonic()
        proc = subprocess.Popen(stage.command(out), cwd=folder, env=_env(), stdin=subprocess.DEVNULL,
                                stdout=subprocess.DEVNULL, stderr=err, start_new_session=True,
                                preexec_fn=_default_signals)
        try:
            proc.wait(timeout=delay)
            finished_first = True
        except subprocess.TimeoutExpired:
            finished_first = False
            proc.send_signal(SIGNALS[sig])
        try:
            rc: int | None = proc.wait(timeout=TIMEOUT)
        except subprocess.TimeoutExpired:
            rc = None
            problems.append(f"no exit within {TIMEOUT} s of {sig}")
        seconds = time.monotonic() - t0
    before = {p for p in listing(out) if not is_temporary(p)}
    survivors = outlivers(proc.pid)  # once they are all gone, nothing more can appear
    if survivors:
        problems.append(f"{len(survivors)} process(es) outlived the command")
    appeared = sorted(str(p.relative_to(out)) for p in listing(out)
                      if not is_temporary(p) and p not in before)
    if appeared:
        problems.append(f"outputs appeared after the command exited: {appeared}")
    temps, broken = check_folder(out)
    if broken:
        problems.append(f"not whole: {[b['file'] for b in broken]}")
    done = [o for o in stage.outputs if (out / o).exists()]
    if rc == 0 and len(done) < len(stage.outputs):
        problems.append(f"exit 0 with outputs missing: {sorted(set(stage.outputs) - set(done))}")
    if temps and sig in HANDLED and not finished_first:
        problems.append(f"temporary files after {sig}: {temps}")
    stderr = (folder / "stderr.txt").read_text(errors="replace").strip().splitlines()

    rerun = stage.rerun(out)
    t0 = time.monotonic()
    res = _run(rerun, folder)
    rerun_seconds = time.monotonic() - t0
    temps2, broken2 = check_folder(out)
    missing = [o for o in stage.outputs if not (out / o).exists()]
    if res.returncode != 0:
        problems.append(f"rerun exit {res.returncode}: {res.stderr.strip()[-300:]}")
    if temps2:
        problems.append(f"temporary files after the rerun: {temps2}")
    if missing or broken2:
        problems.append(f"rerun outputs missing {missing} or not whole {[b['file'] for b in broken2]}")
    return {
        "finished_before_signal": finished_first,
        "seconds_to_exit": round(seconds, 2),
        "exit": rc,
        "expected_exit": expected_exit(sig, finished_first),
        "last_stderr_line": stderr[-1] if stderr else "",
        "outputs_after_signal": done,
        "outlived": survivors,
        "appeared_after_exit": appeared,
        "temporary_after_signal": temps,
        "not_whole_after_signal": broken,
        "rerun": {
            "added": rerun[len(stage.command(out)):],
            "exit": res.returncode,
            "seconds": round(rerun_seconds, 2),
            "notices": [ln for ln in res.stderr.splitlines() if "removed" in ln][:10],
            "temporary": temps2,
            "missing": missing,
            "not_whole": broken2,
        },
        "outcome": "ok" if not problems else "; ".join(problems),
    }


# -- the sweep ------------------------------------------------------------------------
def calibrate(stages: Sequence[Stage], work: Path, runs: int = 2) -> None:
    """Run each command to the end `runs` times: the shortest run bounds the trials' delays
    (the first also fills caches: numba's compiled kernels, the page cache)."""
    for st in stages:
        times = []
        for r in range(runs):
            folder = work / "calibrate" / f"{st.name}.{r}"
            folder.mkdir(parents=True, exist_ok=True)
            t0 = time.monotonic()
            res = _run(st.command(folder / "out"), folder)
            times.append(time.monotonic() - t0)
            missing = [o for o in st.outputs if not (folder / "out" / o).exists()]
            if res.returncode != 0 or missing:
                raise RuntimeError(f"{st.name}: exit {res.returncode}, missing {missing}\n"
                                   f"{res.stderr}")
        st.seconds = round(min(times), 2)


def schedule(stages: Sequence[Stage], trials: int, seed: int) -> list[Trial]:
    """`trials` trials spread over the stages; per stage the signals cycle SIGKILL, SIGTERM,
    SIGKILL, SIGTERM, then SIGINT or SIGHUP (alternating between stages); the delay a fraction,
    uniform in 5-100%, of the stage's full run; the order shuffled. All from `seed`."""
    rng = random.Random(seed)
    per = math.ceil(trials / len(stages))
    plan = []
    for k, st in enumerate(stages):
        cycle = ["SIGKILL", "SIGTERM", "SIGKILL", "SIGTERM", "SIGINT" if k % 2 == 0 else "SIGHUP"]
        for j in range(per):
            sig = cycle[j % len(cycle)] if j < len(cycle) else rng.choice(list(SIGNALS))
            plan.append((st.name, sig, round(rng.uniform(0.05, 1.0), 3)))
    rng.shuffle(plan)
    return [Trial(i, *p) for i, p in enumerate(plan[:trials])]


def sweep(stages: Sequence[Stage], trials: int, seed: int, work: Path,
          log: Callable[[str], None] = lambda s: None) -> list[Trial]:
    by_name = {st.name: st for st in stages}
    plan = schedule(stages, trials, seed)
    for t in plan:
        st = by_name[t.stage]
        t.delay = round(t.fraction * st.seconds, 3)
        t.result = run_trial(st, t.signal, t.delay, work / f"trial{t.index:03d}")
        if t.result["finished_before_signal"]:  # a full run: the load of the machine now
            st.seconds = min(st.seconds, t.result["seconds_to_exit"])
        log(f"trial {t.index}: {t.stage} {t.signal} at {t.delay:.2f}s: exit {t.result['exit']}, "
            f"{t.result['outcome']}")
    return plan


def summary(plan: Sequence[Trial]) -> dict[str, Any]:
    by_signal: dict[str, int] = {}
    by_stage: dict[str, int] = {}
    for t in plan:
        by_signal[t.signal] = by_signal.get(t.signal, 0) + 1
        by_stage[t.stage] = by_stage.get(t.stage, 0) + 1
    return {
        "trials": len(plan),
        "ok": sum(t.result["outcome"] == "ok" for t in plan),
        "by_signal": by_signal,
        "by_stage": by_stage,
        "finished_before_signal": sum(t.result["finished_before_signal"] for t in plan),
        "temporary_files_left_by_sigkill": sum(bool(t.result["temporary_after_signal"])
                                               for t in plan if t.signal == "SIGKILL"),
        "stale_temporary_files_removed_by_rerun": sum(bool(t.result["rerun"]["notices"])
                                                      for t in plan),
        "exit_not_as_expected": [
            {"trial": t.index, "stage": t.stage, "signal": t.signal, "delay": t.delay,
             "exit": t.result["exit"], "expected": t.result["expected_exit"]}
            for t in plan if t.result["exit"] != t.result["expected_exit"]],
        "problems": [{"trial": t.index, "stage": t.stage, "signal": t.signal,
                      "outcome": t.result["outcome"]} for t in plan if t.result["outcome"] != "ok"],
    }


def _commit() -> tuple[str, bool]:
    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True).stdout.strip()

    return git("rev-parse", "HEAD"), bool(git("status", "--porcelain", "--", "vidseg_cli"))


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--trials", type=int, default=25)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--work", type=Path, help="Work folder (kept); a temporary one by default.")
    ap.add_argument("--light", action="store_true",
                    help="extract-frames and hmm-smooth on small inputs only (the slow test's).")
    ap.add_argument("--record", type=Path, default=RECORD)
    a = ap.parse_args(argv)
    from experiments.records import portable

    with tempfile.TemporaryDirectory(prefix="kill_sweep.") as tmp:
        work = (a.work or Path(tmp)).resolve()
        work.mkdir(parents=True, exist_ok=True)
        started = datetime.datetime.now(datetime.timezone.utc)
        stages = (light_stages if a.light else pipeline_stages)(work / "inputs")
        calibrate(stages, work)
        calibrated = {st.name: st.seconds for st in stages}
        plan = sweep(stages, a.trials, a.seed, work, log=lambda s: print(s, flush=True))
        commit, dirty = _commit()
        record = {
            "what": "kill -9 / SIGTERM / SIGINT / SIGHUP sweep over vidseg commands (#15); "
                    "see experiments/reliability/kill_sweep.py",
            "command": "python -m experiments.reliability.kill_sweep "
                       + " ".join(argv if argv is not None else sys.argv[1:]),
            "date": started.isoformat(timespec="seconds"),
            "commit": commit,
            "vidseg_cli_modified": dirty,
            "host": {"cpus": os.cpu_count(), "python": platform.python_version(),
                     "system": platform.platform()},
            "seed": a.seed,
            "stages": {st.name: {"command": " ".join(st.command(Path("TRIAL/out"))),
                                 "full_run_seconds": calibrated[st.name],
                                 "full_run_seconds_at_the_end": st.seconds,
                                 "outputs": st.outputs}
                       for st in stages},
            "summary": summary(plan),
            "trials": [{"trial": t.index, "stage": t.stage, "signal": t.signal,
                        "fraction": t.fraction, "delay": t.delay, **t.result} for t in plan],
        }
        record = portable(portable(record, work), REPO, "REPO")
        record = json.loads(json.dumps(record).replace(sys.executable, "python"))
        a.record.write_text(json.dumps(record, indent=2) + "\n")
    s = record["summary"]
    print(f"{s['ok']} of {s['trials']} trials ok; record: {a.record}")
    return 0 if s["ok"] == s["trials"] else 1


if __name__ == "__main__":
    sys.exit(main())
