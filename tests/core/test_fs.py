"""core/fs.py: temporary files name their writer; a rerun removes only those whose
writer is gone (on this host), and says so."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from vidseg_cli.core import fs


def _dead_pid() -> int:
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


def test_temporary_name_records_pid_and_host(tmp_path):
    with fs.atomic_path(tmp_path / "a.h5") as tmp:
        assert tmp.name.startswith(f".vidseg-tmp-a.h5.pid{os.getpid()}@{fs.HOST}.")
        tmp.write_text("x")
    assert (tmp_path / "a.h5").read_text() == "x" and not list(tmp_path.glob(".vidseg-tmp-*"))


def test_only_temporary_files_of_dead_writers_on_this_host_are_stale(tmp_path):
    dead = _dead_pid()
    stale = tmp_path / f".vidseg-tmp-a[1].h5.pid{dead}@{fs.HOST}.x1"
    live = tmp_path / f".vidseg-tmp-a[1].h5.pid{os.getpid()}@{fs.HOST}.x2"
    remote = tmp_path / f".vidseg-tmp-a[1].h5.pid{dead}@another-node.x3"
    other_output = tmp_path / f".vidseg-tmp-b.h5.pid{dead}@{fs.HOST}.x4"
    for f in (stale, live, remote, other_output):
        f.write_text("partial")
    assert fs.remove_stale_temps(tmp_path / "a[1].h5") == [(stale, dead)]
    assert not stale.exists() and live.exists() and remote.exists() and other_output.exists()


def test_a_rerun_removes_a_dead_writers_leftover_and_says_so(cli, carphone, tmp_path):
    leftover = tmp_path / f".vidseg-tmp-c.h5.pid{_dead_pid()}@{fs.HOST}.abc"
    leftover.write_bytes(b"\0" * 1000)
    res = cli("extract-frames", carphone, "-o", tmp_path / "c.h5")
    assert res.exit_code == 0, res.output
    assert not leftover.exists() and (tmp_path / "c.h5").exists()
    assert f"{leftover}: removed, the temporary file of an interrupted run" in res.stderr


@pytest.mark.parametrize("mode", ["w", "wb"])
def test_exception_inside_the_block_leaves_nothing(tmp_path, mode):
    with pytest.raises(RuntimeError), fs.atomic_write(tmp_path / "t", mode) as f:
        f.write("x" if mode == "w" else b"x")
        raise RuntimeError
    assert list(tmp_path.iterdir()) == []
