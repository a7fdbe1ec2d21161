"""docs/cluster.md's worked example, run as written against the session's local SLURM
(conftest.py): the fenced block under "A worked example" is read from the doc, each command
runs with bash in a scratch folder laid out like a checkout (sample_data/ beside it), and
`vidseg` on PATH is this checkout's. Where a step's comment says "Later", the test waits
until SLURM has no job left. The doc's conventions are checked: the `#>` lines under a
command are what it prints (`...` any text), a trailing `# exits N` its exit status (0
otherwise). Because the test reads the doc, the doc stays true."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from dataclasses import dataclass, field

from tests.conftest import ROOT

DOC = ROOT / "docs" / "cluster.md"


@dataclass
class Step:
    command: str
    exit_code: int = 0
    expected: list[str] = field(default_factory=list)  # lines of output, `...` any text
    wait_before: bool = False  # a "Later" comment precedes it: the jobs must have ended


def example_lines(text: str) -> list[str]:
    after = text.split("## A worked example", 1)[1]
    match = re.search(r"```sh\n(.*?)```", after, re.S)
    assert match, f"{DOC}: no ```sh block under 'A worked example'"
    return match.group(1).splitlines()


def parse_example(lines: list[str]) -> list[Step]:
    steps: list[Step] = []
    later = False
    pending = ""
    for raw in lines:
        line = pending + raw.strip() if pending else raw
        pending = ""
        if line.endswith("\\"):
            pending = line[:-1].rstrip() + " "
            continue
        if line.startswith("#>"):
            assert steps, f"{DOC}: an output line before any command: {line}"
            steps[-1].expected.append(line[2:].strip())
        elif line.startswith("#"):
            later = later or re.search(r"\blater\b", line, re.I) is not None
        elif line.strip():
            command, _, comment = line.partition("  # ")
            code = 0
            if comment:
                match = re.fullmatch(r"exits (\d+)", comment.strip())
                assert match, f"{DOC}: a command's comment is `# exits N` or nothing: {line}"
                code = int(match.group(1))
            steps.append(Step(command.strip(), code, [], later))
            later = False
    return steps


def _pattern(expected: str) -> re.Pattern:
    return re.compile(".*".join(re.escape(part) for part in expected.split("...")))


def check_output(step: Step, output: str) -> None:
    """Every expected line matches a whole output line, in the doc's order."""
    lines = [ln.strip() for ln in output.splitlines()]
    at = 0
    for expected in step.expected:
        pattern = _pattern(expected)
        while at < len(lines) and not pattern.fullmatch(lines[at]):
            at += 1
        assert at < len(lines), (f"`{step.command}` printed no line like\n  {expected}\n"
                                 f"(in order) but:\n{output}")
        at += 1


def wait_for_queue(timeout: float = 300.0) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        res = subprocess.run(["squeue", "-h", "-o", "%i %T"], capture_output=True, text=True)
        if res.returncode == 0 and not res.stdout.strip():
            return
        time.sleep(0.5)
    raise AssertionError(f"SLURM jobs still queued after {timeout:.0f} s: {res.stdout}")


def test_the_example_follows_the_conventions_the_test_reads():
    steps = parse_example(example_lines(DOC.read_text(encoding="utf-8")))
    assert sum(s.wait_before for s in steps) >= 2  # status after the run, then after retry
    assert any(s.exit_code == 1 for s in steps)  # a failure shows
    assert steps[-1].command.startswith("vidseg jobs status") and steps[-1].exit_code == 0
    assert all(s.expected for s in steps if s.command.startswith("vidseg jobs status"))
    assert not any("--gpus" in s.command for s in steps)  # it runs on CPU-only clusters


def test_the_worked_example_runs_as_written(slurm_cluster, tmp_path):
    steps = parse_example(example_lines(DOC.read_text(encoding="utf-8")))
    work, bin_dir = tmp_path / "checkout", tmp_path / "bin"
    work.mkdir()
    bin_dir.mkdir()
    (work / "sample_data").symlink_to(ROOT / "sample_data")
    shim = bin_dir / "vidseg"
    shim.write_text(f'#!/bin/sh\nexec {sys.executable} -m vidseg_cli.cli.main "$@"\n')
    shim.chmod(0o755)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PATH": f"{bin_dir}:{os.environ['PATH']}"}
    for step in steps:
        if step.wait_before:
            wait_for_queue()
        res = subprocess.run(["bash", "-c", step.command], cwd=work, env=env, capture_output=True,
                             text=True, timeout=300)
        assert res.returncode == step.exit_code, (
            f"`{step.command}` exited {res.returncode}, the doc says {step.exit_code}\n"
            f"{res.stdout}{res.stderr}")
        check_output(step, res.stdout)
    # The retried chain is complete: a scores file for every video, the fixed one included.
    scores = sorted(p.name for p in (work / "runs/p1/scores").glob("*.scores.h5"))
    videos = sorted(p.stem for p in (work / "runs/p1/data/videos").glob("*.mp4"))
    assert scores == [f"{v}.scores.h5" for v in videos] and "broken" in videos


def test_output_lines_match_whole_lines_in_order_with_dots_for_any_text():
    step = Step("x", 0, ["a: ... done", "b [task 0]..."])
    check_output(step, "a: 5 done\n  b [task 0] (log: l)\n")
    for wrong in ("a: 5 done, 1 failed\nb [task 0]\n", "b [task 0]\na: 5 done\n"):
        try:
            check_output(step, wrong)
        except AssertionError:
            continue
        raise AssertionError(f"matched {wrong!r}")
