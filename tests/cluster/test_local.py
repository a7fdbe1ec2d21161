"""The --local backend stops its tasks as SLURM does, by signalling every process of the
task: a --requeue-before script, which runs its stage in the background and waits, sees
its stage stop cleanly before it ends (the stand-in stage of test_render.py)."""

from __future__ import annotations

import signal
import time

import pytest

from tests.cluster.test_render import _fake_task
from vidseg_cli.cluster import local
from vidseg_cli.cluster.record import Record


class _Interrupted(Exception):
    pass


def test_an_interrupted_local_run_stops_the_stage_in_the_background_cleanly(tmp_path):
    _, env = _fake_task(tmp_path)  # job.sbatch with its stage run in the background
    (tmp_path / "logs").mkdir()
    record = Record(folder=tmp_path, stage="extract-frames", scope="video", argv=[],
                    cwd=str(tmp_path), chunk=2)

    def interrupt(signum, frame):
        if (tmp_path / "started").exists():
            raise _Interrupted  # as Ctrl-C or SIGTERM reaches `vidseg submit --local`
        signal.alarm(1)

    old = signal.signal(signal.SIGALRM, interrupt)
    signal.alarm(1)
    t0 = time.monotonic()
    try:
        with pytest.MonkeyPatch.context() as mp:
            for k, v in env.items():
                mp.setenv(k, v)
            mp.delenv("SLURM_JOB_ID")  # a local task
            with pytest.raises(_Interrupted):
                local.run_tasks(record, tmp_path / "job.sbatch", [0], 1, None)
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)
    # The stage got SIGTERM and its cleanup ran to the end before run_tasks returned,
    # with no wait for the 15 s after which a task is killed.
    assert (tmp_path / "stopped").read_text() == "SIGTERM"
    assert time.monotonic() - t0 < 12
    assert "vidseg task 0" in (tmp_path / "logs" / "local_0.log").read_text()
