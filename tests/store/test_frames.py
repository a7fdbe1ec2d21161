"""Frames files, schema 2 (store/frames.py): JPEG frames as variable-length uint8 read
back as (T, H, W, 3) RGB, the lossless codecs, schema-1 files, and the errors a broken
file gives."""

from __future__ import annotations

import os

import cv2
import h5py
import numpy as np
import pytest

from vidseg_cli import store
from vidseg_cli.store import StoreError


def _video(t=12, h=48, w=64, seed=0):
    """Smooth moving gradients (JPEG-friendly, as camera frames are), uint8 RGB."""
    y, x = np.mgrid[0:h, 0:w]
    out = np.empty((t, h, w, 3), np.uint8)
    for i in range(t):
        out[i, ..., 0] = (x * 3 + i * 5) % 256
        out[i, ..., 1] = (y * 4 + seed) % 256
        out[i, ..., 2] = 128 + 60 * np.sin((x + y + i) / 9)
    return out


def _write(path, frames, **kw):
    t, h, w, _ = frames.shape
    with store.FramesWriter(path, height=h, width=w, video_id="v", fps=10, **kw) as fw:
        for i in range(t):
            fw.append(frames[i], i / 10)
    return path


def _psnr(a, b):
    with np.errstate(divide="ignore"):  # equal frames: infinite
        return 10 * np.log10(255**2 / np.mean((a.astype(np.float64) - b) ** 2))


def test_jpeg_roundtrip_reads_like_an_array(tmp_path):
    src = _video()
    p = _write(tmp_path / "v.h5", src, codec="jpeg", quality=92)
    with h5py.File(p) as f:  # the layout a plain h5py user finds
        ds = f["frames"]
        assert ds.shape == (12,) and h5py.check_vlen_dtype(ds.dtype) == np.uint8
        assert dict(ds.attrs) == {"codec": "jpeg", "quality": 92, "height": 48, "width": 64}
        assert f.attrs["vidseg_schema"] == 2
        bgr = cv2.imdecode(ds[3], cv2.IMREAD_COLOR)  # a standard JPEG, decoded by anyone
    rec = store.read_frames(p, load_frames=True)
    frames = rec["frames"]
    assert frames.shape == (12, 48, 64, 3) and frames.dtype == np.uint8
    np.testing.assert_array_equal(frames[3], bgr[..., ::-1])
    assert _psnr(frames, src) > 38
    with store.open_record(p, "frames") as r:
        a = r["frames"]
        assert a.shape == (12, 48, 64, 3) and len(a) == 12 and a.codec == "jpeg"
        np.testing.assert_array_equal(a[()], frames)
        np.testing.assert_array_equal(a[...], frames)
        np.testing.assert_array_equal(a[-1], frames[-1])
        np.testing.assert_array_equal(a[2:11:4], frames[2:11:4])
        np.testing.assert_array_equal(a[[9, 1, 9, 4]], frames[[9, 1, 9, 4]])
        np.testing.assert_array_equal(a[np.array([5, 6])], frames[5:7])
        np.testing.assert_array_equal(a[4, 10:20, :, 1], frames[4, 10:20, :, 1])
        np.testing.assert_array_equal(a[1:3, ::2], frames[1:3, ::2])
        np.testing.assert_array_equal(np.asarray(a), frames)
        assert a[5:5].shape == (0, 48, 64, 3)
        with pytest.raises(IndexError):
            a[12]


def test_batch_decode_in_threads_equals_one_by_one(tmp_path):
    src = np.concatenate([_video(40, seed=s) for s in range(2)])
    p = _write(tmp_path / "v.h5", src, codec="jpeg")
    with store.open_record(p, "frames") as r:
        a = r["frames"]
        one = np.stack([a[i] for i in range(len(a))])
        np.testing.assert_array_equal(a[:], one)
        idx = np.random.default_rng(0).integers(0, 80, 50)
        np.testing.assert_array_equal(a[idx], one[idx])


@pytest.mark.parametrize("codec", ["lz4", "lzf", "gzip", "none"])
def test_lossless_codecs_are_exact(tmp_path, codec):
    src = _video(5)
    p = _write(tmp_path / "v.h5", src, codec=codec)
    rec = store.read_frames(p, load_frames=True)
    np.testing.assert_array_equal(rec["frames"], src)
    with store.open_record(p, "frames") as r:
        assert r["frames"].codec == codec and r["frames"].dataset.chunks == (1, 48, 64, 3)
        np.testing.assert_array_equal(r["frames"][[4, 0, 4]], src[[4, 0, 4]])


def test_bgr_frames_are_stored_as_rgb(tmp_path):
    src = _video(3)
    for codec in ("jpeg", "lz4"):
        p = tmp_path / f"{codec}.h5"
        with store.FramesWriter(p, height=48, width=64, video_id="v", fps=10, codec=codec) as fw:
            for i in range(3):
                fw.append(np.ascontiguousarray(src[i, ..., ::-1]), i / 10, bgr=True)
        assert _psnr(store.read_frames(p, load_frames=True)["frames"], src) > 38


def test_schema_1_files_still_read(tmp_path):
    # Schema 1: the lossless layout, no codec attributes on `frames`.
    src = _video(4)
    p = _write(tmp_path / "v.h5", src, codec="lz4")
    with h5py.File(p, "a") as f:
        for k in ("codec", "height", "width"):
            del f["frames"].attrs[k]
        f.attrs["vidseg_schema"] = 1
    rec = store.read_frames(p, load_frames=True)
    assert rec.attrs["vidseg_schema"] == 1
    np.testing.assert_array_equal(rec["frames"], src)


def test_newer_frames_schema_refused(tmp_path):
    p = _write(tmp_path / "v.h5", _video(2), codec="jpeg")
    with h5py.File(p, "a") as f:
        f.attrs["vidseg_schema"] = 3
    with pytest.raises(StoreError, match="schema 3 is newer .*a frames file of schema <= 2"):
        store.read_frames(p)


def test_broken_jpeg_files_name_file_and_frame(tmp_path):
    p = _write(tmp_path / "v.h5", _video(3), codec="jpeg")
    with h5py.File(p, "a") as f:
        f["frames"][1] = np.frombuffer(b"not a jpeg", np.uint8)
    with store.open_record(p, "frames") as r:
        r["frames"][0]
        with pytest.raises(StoreError, match=r"v\.h5: frame 1: not a 64x48 JPEG"):
            r["frames"][0:3]
    with h5py.File(p, "a") as f:
        del f["frames"].attrs["height"]
    with pytest.raises(StoreError, match="need integer 'height' and 'width'"):
        store.read_frames(p)
    with h5py.File(p, "a") as f:
        f["frames"].attrs["codec"] = "webp"
    with pytest.raises(StoreError, match="unknown codec 'webp'"):
        store.read_frames(p)


def test_wrong_frame_count_is_named(tmp_path):
    p = _write(tmp_path / "v.h5", _video(3), codec="jpeg")
    with h5py.File(p, "a") as f:
        f.attrs["num_frames"] = 4
    with pytest.raises(StoreError, match=r"expected shape \(T=4, H, W, 3\), found \(3, 48, 64, 3\)"):
        store.read_frames(p)


def test_writer_refuses_bad_codec_and_quality(tmp_path):
    for kw in ({"codec": "webp"}, {"codec": "jpeg", "quality": 0}):
        with pytest.raises(ValueError):
            store.FramesWriter(tmp_path / "v.h5", height=4, width=4, video_id="v", fps=1, **kw)
    assert list(tmp_path.iterdir()) == []


def test_failed_jpeg_write_leaves_nothing(tmp_path):
    src = _video(30)
    with pytest.raises(RuntimeError, match="interrupted"):
        with store.FramesWriter(tmp_path / "v.h5", height=48, width=64, video_id="v", fps=10,
                                codec="jpeg") as fw:
            for i in range(30):
                fw.append(src[i], i / 10)
            raise RuntimeError("interrupted")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_decode_threads_work_in_a_forked_worker(tmp_path):
    # --jobs forks workers: the codec threads of the parent do not exist in the child.
    src = _video(20)
    p = _write(tmp_path / "v.h5", src, codec="jpeg")
    with store.open_record(p, "frames") as r:
        parent = r["frames"][:]  # starts the parent's codec threads
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            with store.open_record(p, "frames") as r:
                code = 0 if np.array_equal(r["frames"][:], parent) else 3
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
