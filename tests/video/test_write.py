"""Writing an mp4 where there is no room: OpenCV's writer drops failed writes without a
word, so the failure is found after the fact and reported as the write failure it is."""

from __future__ import annotations

import resource
import signal
import subprocess
import sys

LIMIT = 100_000  # bytes any file of the child may reach


def _limit():
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # EFBIG from write(), not a kill
    resource.setrlimit(resource.RLIMIT_FSIZE, (LIMIT, LIMIT))


def test_synth_past_the_file_size_limit_reports_the_write_failure(tmp_path):
    out = tmp_path / "set"
    res = subprocess.run(
        [sys.executable, "-m", "vidseg_cli.cli.main", "synth", "-o", str(out), "--train", "1",
         "--test", "0", "--duration", "20", "--size", "160x120"],
        capture_output=True, text=True, preexec_fn=_limit, timeout=300)
    # 200 frames of 160x120 mp4v: about 1 MB
    video = out / "videos" / "synth_train_0000.mp4"
    assert res.returncode == 2 and res.stderr.count("\n") == 1, res.stderr
    assert res.stderr == f"vidseg synth: error: {video}: file too large\n"
    assert list((out / "videos").iterdir()) == []
