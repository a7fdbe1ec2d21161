"""Run folders: a folder that holds a run is refused unless --resume or --overwrite, the
folder is checked before any data loads, and one training at a time writes it."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from vidseg_cli.core.fs import HOST

TRAIN = ["train", "segment", "--model", "sep3d", "--data"]


def _train(cli, run, *extra, data="no/such/dataset"):
    return cli(*TRAIN, data, "-o", run, *extra)


def test_a_folder_holding_a_run_is_refused_and_left_alone(cli, tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / "best.ckpt").write_bytes(b"weights")
    (run / "log.jsonl").write_text('{"epoch": 1}\n')
    res = _train(cli, run)
    assert res.exit_code == 2 and res.stderr.count("\n") == 1
    assert "holds a run (best.ckpt, log.jsonl); use --resume" in res.stderr
    assert (run / "best.ckpt").read_bytes() == b"weights"
    assert (run / "log.jsonl").read_text() == '{"epoch": 1}\n'


def test_overwrite_starts_again(cli, tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / "last.ckpt").write_bytes(b"old")
    res = _train(cli, run, "--overwrite")  # the run folder is cleared, then the data fails
    assert res.exit_code == 2 and "no/such/dataset" in res.stderr
    assert not (run / "last.ckpt").exists() and not (run / ".vidseg-run.lock").exists()
    res = _train(cli, run, "--overwrite", "--resume")
    assert res.exit_code == 2 and "exclusive" in res.stderr


def test_the_folder_is_checked_before_the_data(cli, tmp_path):
    a_file = tmp_path / "f"
    a_file.write_text("x")
    res = _train(cli, a_file / "run")
    assert res.exit_code == 2 and res.stderr.count("\n") == 1
    assert "cannot create the run folder" in res.stderr and "dataset" not in res.stderr


def test_a_live_lock_refuses_and_a_dead_one_is_taken_over(cli, tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / ".vidseg-run.lock").write_text(f"{os.getpid()}@{HOST}\n")
    res = _train(cli, run)
    assert res.exit_code == 2 and "another training" in res.stderr
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    (run / ".vidseg-run.lock").write_text(f"{dead.pid}@{HOST}\n")
    res = _train(cli, run)
    assert "another training" not in res.stderr and "no/such/dataset" in res.stderr
    assert not (run / ".vidseg-run.lock").exists()


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_a_read_only_parent_is_one_line(cli, tmp_path):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    res = _train(cli, ro / "run")
    assert res.exit_code == 2 and "cannot create the run folder" in res.stderr


def test_a_rerun_removes_the_stale_temporary_files_of_its_run_folder(cli, tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / "last.ckpt").write_bytes(b"old")
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    stale = run / f".vidseg-tmp-best.ckpt.pid{dead.pid}@{HOST}.abc123"
    live = run / f".vidseg-tmp-last.ckpt.pid{os.getpid()}@{HOST}.def456"
    stale.write_bytes(b"half")
    live.write_bytes(b"being written")
    res = _train(cli, run, "--resume")  # the data fails after the folder is taken
    assert f"{stale}: removed, the temporary file of an interrupted run (pid {dead.pid}" in res.stderr
    assert not stale.exists() and live.exists()
