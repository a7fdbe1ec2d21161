"""The SLURM client commands vidseg uses: sbatch, scontrol, squeue, scancel. Never sacct,
which needs an accounting database that many clusters don't run (cluster.md §2).

Every failure to reach SLURM is a PlanError with one line naming the command and
SLURM_CONF, so `vidseg submit` exits 2 with nothing submitted.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

from vidseg_cli.cluster.plan import PlanError

TIMEOUT = 60  # seconds for one client call; a hung controller is an error, not a hang


def _conf() -> str:
    return f"SLURM_CONF={os.environ['SLURM_CONF']}" if os.environ.get("SLURM_CONF") else "SLURM_CONF unset"


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise PlanError(f"{name}: not found on PATH (not a SLURM login node? --local runs the "
                        "tasks here; --dry-run prints the script)")
    return path


def _run(args: list[str], check: bool = True) -> subprocess.CompletedProcess:
    try:
        res = subprocess.run([_tool(args[0]), *args[1:]], capture_output=True, text=True,
                             timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        raise PlanError(f"{args[0]}: no answer from SLURM in {TIMEOUT} s ({_conf()})") from None
    if check and res.returncode != 0:
        raise PlanError(f"{' '.join(args[:3])}: {_first_line(res)} ({_conf()})")
    return res


def _first_line(res: subprocess.CompletedProcess) -> str:
    lines = [ln.strip() for ln in (res.stderr or res.stdout or "").splitlines() if ln.strip()]
    return lines[0] if lines else f"exit status {res.returncode}"


def config() -> dict[str, str]:
    """`scontrol show config` as a dict: also the check that the controller answers."""
    _tool("sbatch")
    res = _run(["scontrol", "show", "config"], check=False)
    if res.returncode != 0:
        raise PlanError(f"SLURM not reachable: scontrol show config: {_first_line(res)} ({_conf()})")
    out = {}
    for line in res.stdout.splitlines():
        key, sep, value = line.partition("=")
        if sep:
            out[key.strip()] = value.strip()
    return out


def max_array_size(conf: dict[str, str]) -> int:
    try:
        return int(conf.get("MaxArraySize", "1001"))
    except ValueError:
        return 1001


def sbatch(script: Path, cwd: str) -> str:
    """Submit `script`; its job id (`--parsable` prints `id` or `id;cluster`)."""
    res = _run(["sbatch", "--parsable", str(script)], check=False)
    if res.returncode != 0:
        raise PlanError(f"sbatch {script}: {_first_line(res)} ({_conf()})")
    return res.stdout.strip().split(";")[0]


def job_known(job_id: str) -> bool:
    """Whether SLURM knows the job (sbatch silently treats a dependency on an unknown id as
    satisfied: cluster.md §2)."""
    res = _run(["scontrol", "show", "job", str(job_id)], check=False)
    return res.returncode == 0 and "JobId=" in res.stdout


_TASK = re.compile(r"^(\d+)_(\d+|\[[^\]]*\])$")


def _expand(spec: str) -> list[int]:
    spec = spec.strip("[]").split("%")[0]
    out = []
    for part in spec.split(","):
        if "-" in part:
            a, b = part.split("-")[:2]
            out.extend(range(int(a), int(b) + 1))
        elif part:
            out.append(int(part))
    return out


def task_states(job_id: str) -> dict[int, str]:
    """Array task -> state (PENDING, RUNNING, COMPLETED, FAILED, CANCELLED, ...) for the
    tasks squeue still knows (finished ones for MinJobAge); a plain job is task 0."""
    res = _run(["squeue", "-h", "-r", "--states=all", "-j", str(job_id), "-o", "%i %T"],
               check=False)
    states: dict[int, str] = {}
    if res.returncode != 0:
        return states
    for line in res.stdout.splitlines():
        parts = line.split()
        if len(parts) != 2:
            continue
        m = _TASK.match(parts[0])
        if m:
            for t in _expand(m.group(2)):
                states[t] = parts[1]
        elif parts[0] == str(job_id):
            states[0] = parts[1]
    return states


def scancel(job_id: str) -> None:
    _run(["scancel", str(job_id)])
