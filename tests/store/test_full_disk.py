"""A full disk never crashes a writer: every kind of file vidseg writes fails with one
OutputError line naming it, leaves no temporary file, and a batch goes on.

Two ways to run out of room: a per-process file-size limit (RLIMIT_FSIZE: writes past it
fail with EFBIG, no root needed, always run), and a real full file system (a small tmpfs:
ENOSPC; needs root, runs under `make check`)."""

from __future__ import annotations

import os
import resource
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

LIMIT = 4 * 2**20  # bytes any file of the child may reach

WRITERS = {
    "scores": "store.write_scores(OUT, rng.random((40, 3, 120, 160), np.float32), "
              "class_names=['background', 'a', 'b'], video_id='v', num_frames=40, fps=10.0)",
    "labels": "store.write_labels(OUT, rng.integers(0, 3, (100, 480, 640)).astype(np.uint8), "
              "class_names=['background', 'a', 'b'], video_id='v', num_frames=100, fps=10.0)",
    "features": "store.write_features(OUT, rng.normal(size=(2000, 1024)).astype(np.float32), "
                "np.arange(2000), video_id='v', num_frames=10000, fps=10.0)",
    "frames": textwrap.dedent("""\
        w = store.FramesWriter(OUT, height=240, width=320, video_id='v', fps=10.0, codec='none')
        try:
            for t in range(200):
                w.append(rng.integers(0, 255, (240, 320, 3), dtype=np.uint8), t / 10)
            w.close()
        except BaseException as e:
            w.abort(e)
            raise"""),
    "jpeg frames": textwrap.dedent("""\
        w = store.FramesWriter(OUT, height=240, width=320, video_id='v', fps=10.0, codec='jpeg')
        try:
            for t in range(200):
                w.append(rng.integers(0, 255, (240, 320, 3), dtype=np.uint8), t / 10)
            w.close()
        except BaseException as e:
            w.abort(e)
            raise"""),
    "streamed scores": textwrap.dedent("""\
        with store.ScoresWriter(OUT, (60, 3, 120, 160), class_names=['background', 'a', 'b'],
                                video_id='v', fps=10.0) as w:
            for t in range(60):
                w[t] = rng.random((3, 120, 160), np.float32)"""),
    "checkpoint": textwrap.dedent("""\
        from vidseg_cli.models import MODELS
        from vidseg_cli.models.checkpoint.format import save_checkpoint
        m = MODELS.build('fsn', in_features=2048, num_classes=3, hidden=1024)
        save_checkpoint(OUT, m, ['background', 'a', 'b'])"""),
    "text": "from vidseg_cli.core.fs import write_text\nwrite_text(OUT, 'x' * (8 * 2**20))",
}


def _limit():
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # EFBIG from write(), not a kill
    resource.setrlimit(resource.RLIMIT_FSIZE, (LIMIT, LIMIT))


def _write_in_child(body: str, out: Path, preexec=_limit):
    code = ("import numpy as np\nfrom vidseg_cli import store\nfrom vidseg_cli.errors import OutputError\n"
            f"OUT = {str(out)!r}\nrng = np.random.default_rng(0)\ntry:\n"
            + textwrap.indent(body, "    ")
            + "\nexcept OutputError as e:\n    print('OUTPUT_ERROR', e)\n")
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          preexec_fn=preexec, timeout=300)


@pytest.mark.parametrize("kind", sorted(WRITERS))
def test_every_writer_fails_cleanly_past_the_file_size_limit(tmp_path, kind):
    out = tmp_path / "out.h5"
    res = _write_in_child(WRITERS[kind], out)
    assert res.returncode == 0, f"child died ({res.returncode}): {res.stderr[-2000:]}"
    line = [ln for ln in res.stdout.splitlines() if ln.startswith("OUTPUT_ERROR")]
    assert line == [f"OUTPUT_ERROR {out}: file too large"], res.stdout + res.stderr
    assert "HDF5-DIAG" not in res.stderr
    assert list(tmp_path.iterdir()) == []


def test_a_batch_goes_on_past_an_output_that_does_not_fit(tmp_path, bikes, carphone):
    res = subprocess.run(
        [sys.executable, "-m", "vidseg_cli.cli.main", "extract-frames", str(bikes), str(carphone),
         "-o", str(tmp_path / "out"), "--codec", "none", "--size", "64x48"],
        capture_output=True, text=True, preexec_fn=_limit, timeout=300)
    # bikes: 250 frames of 64x48x3 = 2.3 MB; carphone: 120 frames, 1.1 MB; both fit in 4 MB
    assert res.returncode == 0, res.stderr
    res = subprocess.run(
        [sys.executable, "-m", "vidseg_cli.cli.main", "extract-frames", str(bikes), str(carphone),
         "-o", str(tmp_path / "big"), "--codec", "none", "--size", "160x120"],
        capture_output=True, text=True, preexec_fn=_limit, timeout=300)
    # now bikes needs 14 MB and fails; carphone (6.9 MB) too: every input failed -> exit 2
    errors = [ln for ln in res.stderr.splitlines() if ": error: " in ln]
    assert res.returncode == 2 and len(errors) == 2, res.stderr
    assert errors[0] == f"vidseg extract-frames: error: {tmp_path / 'big' / 'bikes.frames.h5'}: file too large"
    assert not [p for p in (tmp_path / "big").iterdir()]


FULL = os.environ.get("VIDSEG_FULL_CHECK") == "1"


@pytest.fixture
def tiny_tmpfs(tmp_path):
    if not FULL:
        pytest.skip("needs root to mount a small tmpfs: run `make check`")
    mnt = tmp_path / "full"
    mnt.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=12m", "tmpfs", str(mnt)], check=True)
    try:
        yield mnt
    finally:
        subprocess.run(["umount", str(mnt)], check=False)


def test_a_real_full_disk_is_one_line_per_input_and_the_batch_goes_on(tiny_tmpfs, bikes, carphone):
    res = subprocess.run([sys.executable, "-m", "vidseg_cli.cli.main", "extract-frames", str(bikes),
                          str(carphone), "-o", str(tiny_tmpfs / "out"), "--codec", "lz4"],
                         capture_output=True, text=True, timeout=300)
    assert res.returncode == 1, res.stderr  # bikes (60 MB) fails, carphone (8 MB) fits
    errors = [ln for ln in res.stderr.splitlines() if ": error: " in ln]
    assert errors == [f"vidseg extract-frames: error: {tiny_tmpfs / 'out' / 'bikes.frames.h5'}: "
                      "no space left on device"]
    assert sorted(p.name for p in (tiny_tmpfs / "out").iterdir()) == ["carphone_pristine.frames.h5"]
    for kind in sorted(WRITERS):
        out = tiny_tmpfs / "w.h5"
        (tiny_tmpfs / "fill").write_bytes(b"\0" * (3 * 2**20))  # leave too little for any writer
        r = _write_in_child(WRITERS[kind], out, preexec=None)
        assert r.returncode == 0, f"{kind}: child died ({r.returncode}): {r.stderr[-2000:]}"
        assert f"OUTPUT_ERROR {out}: no space left on device" in r.stdout, (kind, r.stdout, r.stderr)
        (tiny_tmpfs / "fill").unlink()
        assert sorted(p.name for p in tiny_tmpfs.iterdir()) == ["carphone_pristine.frames.h5", "out"] \
            or sorted(p.name for p in tiny_tmpfs.iterdir()) == ["out"], kind
