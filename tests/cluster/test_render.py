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
