"""The --local backend: the very script SLURM would run, as local processes, at most
`parallel` at a time, each with SLURM_ARRAY_TASK_ID and SLURM_CPUS_PER_TASK set as an
array task sees them and its log in logs/local_<task>.log. A Makefile written for a
cluster then runs on a laptop, and tests exercise the same scripts as the cluster does.

Each task runs in a session of its own and is stopped by signalling its process group:
the script and the stage it runs both get SIGTERM, as SLURM signals every process of a
task (a script that runs its stage in the background, for --requeue-before, waits while
the stage stops cleanly).

A --follow task whose upstream outputs are missing is not started (as `aftercorr` with
--kill-on-invalid-dep cancels it on a cluster); its log says why.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

from vidseg_cli.cluster.record import Record


def log_path(folder: Path, task: int) -> Path:
    return folder / "logs" / f"local_{task}.log"


def run_tasks(record: Record, script: Path, tasks: list[int], cpus: int,
              parallel: int | None, blocked: dict[int, str] | None = None) -> dict[int, int]:
    """Run `tasks` of `script`; task -> exit status (None never: every task is waited for;
    a blocked task counts as cancelled, status 1)."""
    blocked = blocked or {}
    width = parallel or max(1, (os.cpu_count() or 1) // max(1, cpus))
    queue = [t for t in tasks]
    running: dict[int, tuple[subprocess.Popen, object]] = {}
    codes: dict[int, int] = {}
    try:
        while queue or running:
            while queue and len(running) < width:
                task = queue.pop(0)
                log = open(log_path(record.folder, task), "a", encoding="utf-8")  # noqa: SIM115
                if task in blocked:
                    log.write(f"vidseg task {task}: not started: {blocked[task]}\n")
                    log.close()
                    codes[task] = 1
                    continue
                env = {**os.environ, "SLURM_ARRAY_TASK_ID": str(task),
                       "SLURM_CPUS_PER_TASK": str(cpus)}
                proc = subprocess.Popen(["bash", str(script)], cwd=record.cwd, env=env,
                                        stdout=log, stderr=subprocess.STDOUT,
                                        stdin=subprocess.DEVNULL, start_new_session=True)
                running[task] = (proc, log)
            for task, (proc, log) in list(running.items()):
                if proc.poll() is not None:
                    codes[task] = proc.returncode
                    log.close()
                    del running[task]
            if running:
                time.sleep(0.05)
    finally:
        for proc, log in running.values():  # interrupted: the tasks end with us
            _signal_group(proc, signal.SIGTERM)
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                _signal_group(proc, signal.SIGKILL)
                proc.wait()
            log.close()
    return codes


def _signal_group(proc: subprocess.Popen, signum: int) -> None:
    """The task's process group, led by the script we started (its PID)."""
    try:
        os.killpg(proc.pid, signum)
    except ProcessLookupError:  # every process of the group has ended
        pass
