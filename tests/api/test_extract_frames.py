"""extract-frames end to end on real videos and frame folders, and on bad input."""

from __future__ import annotations

import os
import subprocess
import sys

import cv2
import numpy as np
import pytest

from vidseg_cli import store
from vidseg_cli.store.frames import DEFAULT_JPEG_QUALITY


def _frames(path):
    return store.read_frames(path, load_frames=True)


def _psnr(a, b) -> float:
    """Peak signal-to-noise ratio of two uint8 images, dB."""
    return float(10 * np.log10(255**2 / np.mean((a.astype(np.float64) - b) ** 2)))


def test_bikes_native(cli, bikes, tmp_path):
    out = tmp_path / "b.h5"
    res = cli("extract-frames", bikes, "-o", out)
    assert res.exit_code == 0, res.output
    rec = store.read_frames(out)
    assert rec.num_frames == 250 and rec.fps == 25.0
    assert rec.attrs["source_size"] == [640, 272] and rec.attrs["source_fps"] == 25.0
    np.testing.assert_allclose(rec["timestamps"], np.arange(250) / 25.0)
    # JPEG by default, at the quality recorded in the file, close to a plain OpenCV decode
    # in RGB order; each frame read alone or in a batch decodes the same.
    cap = cv2.VideoCapture(str(bikes))
    with store.open_record(out, "frames") as r:
        ds = r["frames"].dataset
        assert ds.attrs["codec"] == "jpeg" and ds.attrs["quality"] == DEFAULT_JPEG_QUALITY
        assert ds.shape == (250,)
        assert (ds.attrs["height"], ds.attrs["width"]) == (272, 640)
        batch = r["frames"][0:5]
        for i in range(5):
            ok, bgr = cap.read()
            assert ok
            np.testing.assert_array_equal(r["frames"][i], batch[i])
            assert _psnr(batch[i], bgr[:, :, ::-1]) > 38
    # Half a megabyte a frame decoded; a JPEG of it at quality 89 is a few tens of kB.
    assert out.stat().st_size < 250 * 60_000


def test_lossless_codec_is_pixel_exact(cli, bikes, tmp_path):
    out = tmp_path / "b.h5"
    res = cli("extract-frames", bikes, "-o", out, "--codec", "lz4", "--end", "0.2")
    assert res.exit_code == 0, res.output
    cap = cv2.VideoCapture(str(bikes))
    with store.open_record(out, "frames") as r:
        assert r.num_frames == 5 and r.attrs["vidseg_schema"] == 2
        for i in range(5):
            ok, bgr = cap.read()
            assert ok
            np.testing.assert_array_equal(r["frames"][i], bgr[:, :, ::-1])
        ds = r["frames"].dataset
        assert ds.chunks == (1, 272, 640, 3) and "32001" in ds._filters
        assert ds.attrs["codec"] == "lz4" and "quality" not in ds.attrs


def test_quality_is_recorded_and_sizes_follow(cli, bikes, tmp_path):
    assert f"[default: {DEFAULT_JPEG_QUALITY}," in cli("extract-frames", "--help").stdout
    sizes = {}
    for q in (50, 95):
        out = tmp_path / f"q{q}.h5"
        assert cli("extract-frames", bikes, "-o", out, "--quality", q, "--end", "1").exit_code == 0
        with store.open_record(out, "frames") as r:
            assert r["frames"].dataset.attrs["quality"] == q
        sizes[q] = out.stat().st_size
    assert sizes[50] < 0.6 * sizes[95]
    res = cli("extract-frames", bikes, "-o", tmp_path / "x.h5", "--codec", "lz4", "--quality", "80")
    assert res.exit_code == 2 and "--quality is for --codec jpeg" in res.stderr
    res = cli("extract-frames", bikes, "-o", tmp_path / "x.h5", "--quality", "101")
    assert res.exit_code == 2 and not (tmp_path / "x.h5").exists()


def test_inspect_reports_frames(cli, bikes, tmp_path):
    out = tmp_path / "b.h5"
    cli("extract-frames", bikes, "-o", out)
    res = cli("inspect", "--json", out)
    assert res.exit_code == 0
    import json

    rep = json.loads(res.stdout)
    assert rep["kind"] == "frames" and rep["attrs"]["num_frames"] == 250 and rep["attrs"]["fps"] == 25
    assert rep["datasets"]["frames"]["shape"] == [250, 272, 640, 3]
    assert "vidseg_version" in rep["attrs"] and rep["attrs"]["inputs"][0]["path"].endswith("bikes.mp4")
    table = cli("inspect", out)
    assert "250" in table.stdout and "frames" in table.stdout


def test_fps_resampling_by_timestamps(cli, bikes, tmp_path):
    out = tmp_path / "b10.h5"
    assert cli("extract-frames", bikes, "--fps", "10", "-o", out).exit_code == 0
    rec = _frames(out)
    assert rec.num_frames == 100 and rec.fps == 10.0
    np.testing.assert_allclose(rec["timestamps"], np.arange(100) / 10.0)
    full = tmp_path / "full.h5"
    cli("extract-frames", bikes, "-o", full)
    ref = _frames(full)["frames"]
    # Output time k/10 s lies in source frame floor(k * 25 / 10)'s display interval.
    for k in (0, 1, 7, 99):
        np.testing.assert_array_equal(rec["frames"][k], ref[int(np.floor(k * 2.5 + 1e-9))])


def test_upsampling_repeats_frames(cli, carphone, tmp_path):
    out = tmp_path / "c.h5"
    assert cli("extract-frames", carphone, "--fps", "60", "-o", out).exit_code == 0
    rec = store.read_frames(out)
    assert rec.num_frames == pytest.approx(120 / 29.97 * 60, abs=1)
    assert np.all(np.diff(rec["timestamps"]) > 0)


def test_resize_and_time_range(cli, bikes, tmp_path):
    a = tmp_path / "a.h5"
    assert cli("extract-frames", bikes, "--size", "160x120", "--start", "2", "--end", "3", "-o", a).exit_code == 0
    rec = _frames(a)
    assert rec["frames"].shape == (25, 120, 160, 3)
    np.testing.assert_allclose(rec["timestamps"], 2 + np.arange(25) / 25.0)
    b = tmp_path / "b.h5"
    assert cli("extract-frames", bikes, "--short-side", "68", "-o", b).exit_code == 0
    assert _frames(b)["frames"].shape[1:] == (68, 160, 3)


def test_frame_folders_jhmdb_and_davis(cli, refdata, tmp_path):
    jh = refdata / "jhmdb" / "frames" / "Goal_Keeping_Tips_catch_f_cm_np1_fr_med_2"
    dv = refdata / "davis2016" / "JPEGImages" / "480p" / "blackswan"
    res = cli("extract-frames", jh, dv, "-o", tmp_path, "--jobs", "2")
    assert res.exit_code == 0, res.output
    j = _frames(tmp_path / "Goal_Keeping_Tips_catch_f_cm_np1_fr_med_2.frames.h5")
    assert j["frames"].shape == (40, 240, 320, 3) and j.fps == 30.0
    first = cv2.imread(str(jh / "00001.png"))[:, :, ::-1]
    assert _psnr(j["frames"][0], first) > 38  # PNG frames stored as JPEG by default
    d = store.read_frames(tmp_path / "blackswan.frames.h5")
    assert d.num_frames == 50 and d.attrs["source_size"] == [854, 480]


def test_existing_output_skipped_unless_overwrite(cli, carphone, tmp_path):
    out = tmp_path / "c.h5"
    assert cli("extract-frames", carphone, "-o", out).exit_code == 0
    uid = store.read_frames(out).uid
    res = cli("extract-frames", carphone, "-o", out)
    assert res.exit_code == 0 and "exists, skipped" in res.stderr
    assert store.read_frames(out).uid == uid
    assert cli("extract-frames", carphone, "-o", out, "--overwrite").exit_code == 0
    assert store.read_frames(out).uid != uid


# -- bad input -------------------------------------------------------------------------
def _bad_inputs(tmp_path, bikes):
    text = tmp_path / "notes.mp4"
    text.write_text("this is not a video\n")
    half = tmp_path / "half.mp4"
    data = bikes.read_bytes()
    half.write_bytes(data[: len(data) // 2])
    zero = tmp_path / "zero.mp4"
    w = cv2.VideoWriter(str(zero), cv2.VideoWriter_fourcc(*"mp4v"), 25, (64, 48))
    w.release()
    empty_avi = tmp_path / "empty.avi"
    w = cv2.VideoWriter(str(empty_avi), cv2.VideoWriter_fourcc(*"MJPG"), 25, (64, 48))
    w.release()
    return {"missing": tmp_path / "missing.mp4", "text": text, "half": half, "zero": zero,
            "empty_avi": empty_avi}


@pytest.mark.parametrize("case,message", [
    ("missing", "no such file"),
    ("text", "not a video file"),
    ("half", "truncated"),
    ("zero", "zero frames"),
    ("empty_avi", "no frames decoded"),
])
def test_single_bad_input(cli, bikes, tmp_path, case, message):
    bad = _bad_inputs(tmp_path, bikes)[case]
    out = tmp_path / "out" / "x.h5"
    res = cli("extract-frames", bad, "-o", out)
    assert res.exit_code == 2
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1, res.stderr
    assert lines[0].startswith(f"vidseg extract-frames: error: {bad}: ") and message in lines[0]
    assert list((tmp_path / "out").iterdir()) == []  # nothing half-written


def test_batch_with_failures_processes_the_rest(cli, bikes, carphone, tmp_path):
    bad = _bad_inputs(tmp_path, bikes)
    out = tmp_path / "out"
    res = cli("extract-frames", bad["text"], carphone, bad["half"], "-o", out, "--jobs", "2")
    assert res.exit_code == 1
    assert "2 of 3 inputs failed" in res.stderr
    assert str(bad["text"]) in res.stderr and str(bad["half"]) in res.stderr
    assert sorted(p.name for p in out.iterdir()) == ["carphone_pristine.frames.h5"]
    assert store.read_frames(out / "carphone_pristine.frames.h5").num_frames == 120


def test_unwritable_output_folder(cli, carphone, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("a file where a folder should be")
    res = cli("extract-frames", carphone, "-o", blocker / "sub" / "c.h5")
    assert res.exit_code == 2
    assert res.stderr.count("\n") == 1 and "cannot create output folder" in res.stderr
    if os.geteuid() != 0:  # root writes anywhere; the mode check only means something for users
        ro = tmp_path / "ro"
        ro.mkdir()
        ro.chmod(0o500)
        res = cli("extract-frames", carphone, "-o", ro / "c.h5")
        assert res.exit_code == 2 and "not writable" in res.stderr


def test_bad_options(cli, carphone, tmp_path):
    res = cli("extract-frames", carphone, "-o", tmp_path / "a.h5", "--size", "12by3")
    assert res.exit_code == 2 and "WxH" in res.output
    res = cli("extract-frames", carphone, "-o", tmp_path / "a.h5", "--size", "8x8", "--short-side", "4")
    assert res.exit_code == 2 and "exclusive" in res.stderr
    res = cli("extract-frames", carphone, "-o", tmp_path / "a.h5", "--start", "3", "--end", "2")
    assert res.exit_code == 2 and "not after" in res.stderr


def test_interrupted_run_leaves_no_output(bikes, tmp_path):
    # Kill the process mid-write: neither the final file nor a trusted partial file remains.
    out = tmp_path / "b.h5"
    proc = subprocess.Popen([sys.executable, "-m", "vidseg_cli.cli.main", "extract-frames", str(bikes),
                             "-o", str(out)], stderr=subprocess.DEVNULL)
    import time

    deadline = time.time() + 20
    while time.time() < deadline and not any(p.name.startswith(".vidseg-tmp") for p in tmp_path.iterdir()):
        time.sleep(0.01)
    proc.kill()
    proc.wait()
    assert not out.exists()


def test_memory_flat_in_video_length(tmp_path):
    """Peak Python-side memory does not grow with the number of frames."""
    import tracemalloc

    from vidseg_cli.api import extract_frames as api

    def make(n):
        p = tmp_path / f"v{n}.avi"
        w = cv2.VideoWriter(str(p), cv2.VideoWriter_fourcc(*"MJPG"), 25, (160, 120))
        rng = np.random.default_rng(n)
        for _ in range(n):
            w.write(rng.integers(0, 255, (120, 160, 3), dtype=np.uint8))
        w.release()
        return p

    peaks = []
    for n in (60, 480):
        src = make(n)
        tracemalloc.start()
        api.load(api.Options()).run({"video": src}, {"frames": tmp_path / f"o{n}.h5"})
        peaks.append(tracemalloc.get_traced_memory()[1])
        tracemalloc.stop()
        assert store.read_frames(tmp_path / f"o{n}.h5").num_frames == n
    frame_bytes = 160 * 120 * 3
    # The reader queue (16) and write buffer (8) bound what is held, whatever the length.
    assert peaks[1] < 40 * frame_bytes, peaks
    assert peaks[1] < 0.1 * 480 * frame_bytes, peaks


@pytest.mark.parametrize("argv,frames", [(["--fps", "0.5"], 3), (["--start", "3.9"], 3)])
def test_sources_and_ranges_of_fewer_than_eight_frames(cli, carphone, tmp_path, argv, frames):
    # carphone: 120 frames at 29.97 fps (4.004 s): 0.5 fps keeps t = 0, 2, 4 s
    res = cli("extract-frames", carphone, "-o", tmp_path / "c.h5", *argv)
    assert res.exit_code == 0, res.output
    assert store.read_frames(tmp_path / "c.h5").num_frames == frames


def test_folder_of_three_frames(cli, tmp_path):
    folder = tmp_path / "three"
    folder.mkdir()
    for i in range(3):
        cv2.imwrite(str(folder / f"{i:05d}.png"), np.full((32, 48, 3), 40 * i, np.uint8))
    res = cli("extract-frames", folder, "-o", tmp_path / "t.h5")
    assert res.exit_code == 0, res.output
    rec = store.read_frames(tmp_path / "t.h5", load_frames=True)
    assert rec.num_frames == 3 and rec["frames"][2].mean() == pytest.approx(80)


def test_upsampling_more_than_four_times_warns(cli, carphone, tmp_path):
    res = cli("extract-frames", carphone, "-o", tmp_path / "c.h5", "--fps", "150", "--end", "0.2")
    assert res.exit_code == 0
    assert "warning" in res.stderr and "5.0 frames per source frame" in res.stderr
    res = cli("extract-frames", carphone, "-o", tmp_path / "d.h5", "--fps", "60", "--end", "0.2")
    assert "warning" not in res.stderr
