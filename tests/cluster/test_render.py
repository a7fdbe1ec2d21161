"""The rendered sbatch scripts, against golden files (VIDSEG_REGEN_GOLDEN=1 rewrites them
after a deliberate change; review the diff)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from vidseg_cli.cluster import render
from vidseg_cli.cluster.render import Settings

GOLDEN = Path(__file__).parent / "golden"
RUN = Path("/runs/p1/_slurm/x")
ENTRY = ["/opt/venv/bin/vidseg"]


def _check(name: str, text: str) -> None:
    # where this checkout and its interpreter lie
    text = text.replace(sys.executable, "<PYTHON>").replace(render.package_root(), "<ROOT>")
    path = GOLDEN / name
    if os.environ.get("VIDSEG_REGEN_GOLDEN") == "1":
        path.write_text(text)
    assert text == path.read_text(), f"{name} differs from its golden file"
    # Every script is valid bash.
    assert subprocess.run(["bash", "-n"], input=text, text=True).returncode == 0


def test_array_with_throttle_dependency_and_site_options():
    s = Settings(time="1:00:00", mem="8G", cpus=4, gpus=1, partition="gpu", account="lab",
                 requeue=True, parallel=3, site_args=["--qos=normal"],
                 extra=["--constraint=a100"])
    text = render.render_array(RUN, "/home/u/p", "segment-3d", 2,
                               ["--model", "3dfcn-8s", "--weights", "w b.ckpt", "-o", "scores"],
                               s, "0-4%3", "aftercorr:41", ENTRY, add_jobs=False, add_quiet=True)
    _check("array.sbatch", text)


def test_set_stage_is_one_job_with_its_args_verbatim():
    text = render.render_single(RUN, "/home/u/p", "evaluate", ["dets", "--gt", "gt.json"],
                                Settings(), "afterany:41:42", ENTRY, add_json=True,
                                add_quiet=False)
    _check("evaluate.sbatch", text)


def test_training_on_one_node_uses_standalone_torchrun_and_resumes():
    text = render.render_single(RUN, "/home/u/p", "train fsn", ["f", "--gt", "g", "-o", "run"],
                                Settings(gpus=4, procs_per_node=4, cpus=16), None, ENTRY,
                                add_json=True, add_quiet=True, resume_from="/home/u/p/run")
    _check("train_one_node.sbatch", text)
    assert "--standalone --nproc-per-node=4 --no-python /opt/venv/bin/vidseg train fsn" in text


def test_training_on_several_nodes_is_srun_torchrun_with_a_port_from_the_job_id():
    text = render.render_single(RUN, "/home/u/p", "train segment", ["--data", "d", "-o", "run"],
                                Settings(gpus=8, nodes=2, procs_per_node=8), "afterok:5",
                                ["/usr/bin/python3", "-m", "vidseg_cli.cli.main"],
                                add_json=True, add_quiet=True)
    _check("train_two_nodes.sbatch", text)
    assert "--rdzv-endpoint=\"$HEAD:$PORT\"" in text and "PORT=$((29500 + SLURM_JOB_ID % 1000))" in text


@pytest.mark.parametrize("task,expected", [(0, ["a", "b"]), (1, ["c d", "e"]), (2, ["f"])])
def test_a_task_reads_its_slice_of_the_manifest(tmp_path, task, expected):
    (tmp_path / "manifest.txt").write_text("a\nb\nc d\ne\nf\n")
    text = render.render_array(tmp_path, str(tmp_path), "extract-frames", 2, ["-o", "o"],
                               Settings(), "0-2", None, ["printf"], add_jobs=False,
                               add_quiet=False)
    # The entry point replaced by printf: the script prints the words it would run.
    text = text.replace("exec printf extract-frames", "exec printf '%s\\n' extract-frames")
    res = subprocess.run(["bash", "-c", text], env={**os.environ, "SLURM_ARRAY_TASK_ID": str(task)},
                         capture_output=True, text=True)
    words = res.stdout.splitlines()[1:]
    assert res.returncode == 0, res.stderr
    assert words == ["extract-frames", *expected, "-o", "o", "--json",
                     f"{tmp_path}/summaries/{task}.json"]


def test_requeue_before_signals_the_batch_shell_and_implies_requeue():
    s = Settings(time="2:00:00", requeue_before=300)
    text = render.render_array(RUN, "/home/u/p", "extract-frames", 4, ["-o", "frames"], s, "0-9",
                               None, ENTRY, add_jobs=True, add_quiet=True)
    _check("array_requeue.sbatch", text)
    assert "#SBATCH --requeue\n#SBATCH --signal=B:USR1@300\n" in text
    assert "exec " not in text  # the stage runs in the background, the shell waits for it
    text = render.render_single(RUN, "/home/u/p", "train fsn", ["f", "--gt", "g", "-o", "run"],
                                Settings(requeue_before=60), None, ENTRY, add_json=True,
                                add_quiet=True, resume_from="/home/u/p/run")
    _check("train_requeue.sbatch", text)


# A stand-in stage: it says it started, handles SIGTERM as vidseg does (exit 143 after its
# cleanup), or finishes after `FAKE_SECONDS`.
FAKE_STAGE = """\
import os, signal, sys, time
mark = os.environ["MARK"]
def stop(signum, frame):
    time.sleep(0.3)  # a cleanup that takes a while: the script must wait for it
    open(mark + "/stopped", "w").write(signal.Signals(signum).name)
    sys.exit(128 + signum)
signal.signal(signal.SIGTERM, stop)
open(mark + "/args", "w").write("\\n".join(sys.argv[1:]))
open(mark + "/started", "w").close()
time.sleep(float(os.environ.get("FAKE_SECONDS", "60")))
"""


def _fake_task(tmp_path, requeue_before=120):
    """The array script with the stand-in stage, a `scontrol` on PATH that records its
    arguments, and the environment of task 0 of job 77."""
    (tmp_path / "manifest.txt").write_text("a\nb\n")
    (tmp_path / "stage.py").write_text(FAKE_STAGE)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "scontrol").write_text(f'#!/bin/sh\necho "$@" > {tmp_path}/scontrol\n')
    (bin_dir / "scontrol").chmod(0o755)
    text = render.render_array(tmp_path, str(tmp_path), "extract-frames", 2, ["-o", "o"],
                               Settings(requeue_before=requeue_before), "0", None,
                               [sys.executable, str(tmp_path / "stage.py")], add_jobs=False,
                               add_quiet=False)
    (tmp_path / "job.sbatch").write_text(text)
    env = {**os.environ, "SLURM_ARRAY_TASK_ID": "0", "SLURM_JOB_ID": "77", "MARK": str(tmp_path),
           "PATH": f"{bin_dir}:{os.environ['PATH']}"}
    return ["bash", str(tmp_path / "job.sbatch")], env


def _started(proc, tmp_path):
    import time

    end = time.monotonic() + 30
    while not (tmp_path / "started").exists():
        assert proc.poll() is None and time.monotonic() < end, proc.communicate()
        time.sleep(0.02)


def test_usr1_stops_the_stage_cleanly_then_requeues_the_job(tmp_path):
    import signal

    cmd, env = _fake_task(tmp_path)
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True)
    _started(proc, tmp_path)
    proc.send_signal(signal.SIGUSR1)  # what --signal=B:USR1@N sends: the shell alone
    out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 143, out
    assert (tmp_path / "stopped").read_text() == "SIGTERM"  # its cleanup ran to the end
    assert (tmp_path / "scontrol").read_text().split() == ["requeue", "77"]
    assert "requeueing job 77" in out
    assert (tmp_path / "args").read_text().split("\n")[:3] == ["extract-frames", "a", "b"]


def test_sigterm_to_the_task_is_waited_for_and_requeues_nothing(tmp_path):
    """SLURM's time limit, scancel or preemption: every process of the task gets SIGTERM
    (here, as the --local backend stops a task, its process group)."""
    import signal

    cmd, env = _fake_task(tmp_path)
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, start_new_session=True)
    _started(proc, tmp_path)
    os.killpg(proc.pid, signal.SIGTERM)
    out, _ = proc.communicate(timeout=30)
    # The shell outlived the stage's cleanup (a shell gone first would let slurmstepd kill
    # it half-way) and ended with its status.
    assert proc.returncode == 143 and (tmp_path / "stopped").exists(), out
    assert not (tmp_path / "scontrol").exists()


def test_a_stage_that_finishes_ends_the_task_with_its_status_and_no_requeue(tmp_path):
    cmd, env = _fake_task(tmp_path)
    res = subprocess.run(cmd, env={**env, "FAKE_SECONDS": "0"}, capture_output=True, text=True,
                         timeout=30)
    assert res.returncode == 0, res.stdout + res.stderr
    assert not (tmp_path / "scontrol").exists() and not (tmp_path / "stopped").exists()
