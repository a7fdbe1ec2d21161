"""`vidseg submit --requeue-before` on a real single-node SLURM (conftest.py's session
cluster): a training gets the USR1 that `--signal=B:USR1@N` sends before its time limit
(here at once, with `scancel --signal=USR1 --batch`), stops at a step, requeues itself and
resumes from last.ckpt, keeping the epochs it had finished. Assertions read squeue,
scontrol and the submission and run folders, never sacct."""

from __future__ import annotations

import json
import subprocess
import time

from tests.cluster.test_slurm import synth_features, vidseg

EPOCHS = 8


def _state(job_id: str) -> str:
    """The job's state as squeue lists it, "" once it has left the queue (squeue failing
    for a moment, as a busy slurmctld may, is asked again)."""
    for _ in range(20):
        res = subprocess.run(["squeue", "-h", "-j", job_id, "-o", "%T"], capture_output=True,
                             text=True)
        if res.returncode == 0:
            return res.stdout.strip()
        time.sleep(0.5)
    raise AssertionError(f"squeue keeps failing: {res.stderr}")


def _until(what: str, ok, timeout: float = 120.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        got = ok()
        if got:
            return got
        time.sleep(0.2)
    raise AssertionError(f"{what}: not within {timeout:.0f} s")


def _release(job: str) -> None:
    """SLURM holds a requeued job until a begin time about two minutes on: start it now.
    Not in the second of the requeue, though: slurmd refuses a job whose credential was
    revoked no earlier than the new one was made ("Job credential revoked"; whole
    seconds), which is what SLURM's hold guards against."""
    time.sleep(2)

    def started() -> bool:
        if _state(job) != "PENDING":
            return True
        subprocess.run(["scontrol", "update", f"JobId={job}", "StartTime=now"],
                       capture_output=True)
        time.sleep(0.5)
        return False

    _until("the requeued job started", started)


def _log(folder, job: str) -> str:
    path = folder / "logs" / f"{job}.log"
    return path.read_text() if path.exists() else "(no log)"


def _records(run):
    return [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]


def test_a_training_requeues_itself_on_usr1_and_resumes_from_its_checkpoint(slurm_cluster,
                                                                             tmp_path):
    d, x = synth_features(tmp_path, "12")
    run, folder = tmp_path / "run", tmp_path / "r"
    res = vidseg("submit", "--requeue-before", "60", "--time", "30:00", "--folder", "r",
                 "--parsable", "train", "fsn", x, "--gt", d, "--hidden", "16", "--epochs", EPOCHS,
                 "--steps-per-epoch", "20", "--batch-size", "4", "--min-action-frames", "0",
                 "-o", "run", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    job = res.stdout.strip()
    assert "#SBATCH --signal=B:USR1@60" in (folder / "job.sbatch").read_text()

    # An epoch is done (last.ckpt) and more are to come: the time limit "nears".
    _until("a first checkpoint", lambda: (run / "last.ckpt").exists())
    assert _state(job) == "RUNNING", "the training ended before it could be stopped"
    subprocess.run(["scancel", "--signal=USR1", "--batch", job], check=True)

    def requeued():
        state = _state(job)
        assert state, f"the job ended instead of requeueing: {_log(folder, job)}"
        return state == "PENDING"

    _until("the job requeued and pending", requeued)
    kept = _records(run)
    assert 1 <= len(kept) < EPOCHS, kept  # stopped part-way, its finished epochs kept
    _release(job)
    _until("the requeued job ended", lambda: _state(job) == "", timeout=300)

    log = _log(folder, job)
    assert "restart 0" in log and "restart 1" in log, log
    assert f"requeueing job {job}" in log and "resuming from" in log, log
    assert log.index("requeueing job") < log.index("restart 1") < log.index("resuming from")
    # It continued: the epochs of the first attempt are those it had written (their own
    # timings: a training started over would have measured new ones), then the rest.
    final = _records(run)
    assert [r["epoch"] for r in final] == list(range(1, EPOCHS + 1))
    assert final[:len(kept)] == kept
    summary = json.loads((folder / "summaries" / "0.json").read_text())
    assert summary["history"][:len(kept)] == kept and len(summary["history"]) == EPOCHS
    assert not list(run.glob(".vidseg-tmp-*"))  # the stop left no half-written file
    st = vidseg("jobs", "status", "r", cwd=tmp_path)
    assert st.returncode == 0, st.stdout + st.stderr
