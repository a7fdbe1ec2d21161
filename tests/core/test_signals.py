"""Ctrl-C, SIGTERM and SIGHUP mid-write: exit 130 / 143 / 129 with one line, no output and
no temporary file left, whether or not the first exception was swallowed by a weakref
callback (core/signals.py)."""

from __future__ import annotations

import signal
import subprocess
import sys
import time

import pytest


def _default_dispositions() -> None:
    """In the child: the three signals at their defaults, whatever the test run inherited
    (a background job ignores SIGINT, `nohup` SIGHUP), which vidseg would keep ignoring."""
    for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(s, signal.SIG_DFL)


@pytest.mark.parametrize("sig,code,word", [(signal.SIGINT, 130, "interrupted"),
                                           (signal.SIGTERM, 143, "SIGTERM"),
                                           (signal.SIGHUP, 129, "SIGHUP")])
def test_signal_mid_write_removes_the_temporary_file(bikes, tmp_path, sig, code, word):
    out = tmp_path / "b.h5"
    # gzip frames: slow enough that the signal lands while frames are being written
    proc = subprocess.Popen(
        [sys.executable, "-m", "vidseg_cli.cli.main", "extract-frames", str(bikes), "-o", str(out),
         "--codec", "gzip"],
        stderr=subprocess.PIPE, text=True,
        preexec_fn=_default_dispositions)
    deadline = time.time() + 30
    while time.time() < deadline and not list(tmp_path.glob(".vidseg-tmp-*")):
        time.sleep(0.01)
    assert list(tmp_path.glob(".vidseg-tmp-*")), "the writer never started"
    proc.send_signal(sig)
    err = proc.communicate(timeout=60)[1]
    assert proc.returncode == code, err
    assert err.strip().splitlines()[-1].startswith("vidseg: ") and word in err
    assert "Traceback" not in err and "Exception ignored" not in err
    assert not out.exists()
    assert list(tmp_path.iterdir()) == []
