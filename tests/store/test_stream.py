"""store.ScoresWriter: scores streamed into their file slice by slice, atomic like every
write (nothing under the final name unless complete and valid), and hmm-smooth /
crf-refine writing through it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from vidseg_cli import store
from vidseg_cli.stages.hmm.smooth import smooth
from vidseg_cli.stages.hmm.tiles import file_reserve, plan_tiles
from vidseg_cli.store import StoreError

NAMES = ["background", "walk", "run"]
META = dict(video_id="v", fps=25.0, class_names=NAMES)


def _probs(t, c, h, w, seed=0):
    p = np.random.default_rng(seed).dirichlet(np.ones(c), size=(t, h, w)).astype(np.float32)
    return np.moveaxis(p, -1, 1)  # T x C x H x W


def test_streams_frames_and_tiles(tmp_path):
    p = _probs(5, 3, 7, 9)
    with store.ScoresWriter(tmp_path / "a.h5", p.shape, attrs={"spatial_stride": 4}, **META) as w:
        for t in range(5):
            w[t] = p[t]
    rec = store.read_scores(tmp_path / "a.h5")
    np.testing.assert_array_equal(rec["probs"], p)
    assert rec.num_frames == 5 and rec.class_names == NAMES and rec.attrs["spatial_stride"] == 4
    for attr in store.base.REQUIRED_ATTRS:
        assert attr in rec.attrs

    # Tiles of rows into chunks of the same shape; float16 is kept as write_scores keeps it.
    half = p.astype(np.float16)
    with store.ScoresWriter(tmp_path / "b.h5", p.shape, dtype=np.float16, chunks=(1, 3, 3, 9),
                            **META) as w:
        for y in range(0, 7, 3):
            w[:, :, y : y + 3] = half[:, :, y : y + 3]
    with store.open_record(tmp_path / "b.h5", "scores") as rec:
        assert rec["probs"].dtype == np.float16 and rec["probs"].chunks == (1, 3, 3, 9)
        assert rec["probs"].compression == "lzf"
        np.testing.assert_array_equal(rec["probs"][()], half)


def test_failed_write_leaves_nothing(tmp_path):
    with pytest.raises(RuntimeError, match="interrupted"):
        with store.ScoresWriter(tmp_path / "a.h5", (4, 3, 2, 2), **META) as w:
            w[0] = _probs(1, 3, 2, 2)[0]
            raise RuntimeError("interrupted")
    assert list(tmp_path.iterdir()) == []


def test_incomplete_write_is_refused(tmp_path):
    w = store.ScoresWriter(tmp_path / "a.h5", (4, 3, 2, 2), **META)
    w[:3] = _probs(3, 3, 2, 2)
    with pytest.raises(StoreError, match=r"a.h5: incomplete scores: 3 of 4 chunks"):
        w.close()
    assert list(tmp_path.iterdir()) == []


def test_bad_shape_or_class_names_before_anything_is_written(tmp_path):
    with pytest.raises(StoreError, match="3 classes in the scores, 2 class names"):
        store.ScoresWriter(tmp_path / "a.h5", (4, 3, 2, 2), video_id="v", fps=25.0,
                           class_names=NAMES[:2])
    with pytest.raises(StoreError, match=r"shape \(T, C, H, W\)"):
        store.ScoresWriter(tmp_path / "a.h5", (4, 3, 2), **META)
    assert list(tmp_path.iterdir()) == []


def test_killed_writer_leaves_no_file_under_the_final_name(tmp_path):
    """A process killed mid-write (SIGKILL: no clean-up runs) can leave its temporary
    file, never a file that the next stage would trust."""
    code = textwrap.dedent(f"""
        import os, signal, numpy as np
        from vidseg_cli import store
        w = store.ScoresWriter({str(tmp_path / "a.h5")!r}, (4, 3, 2, 2), video_id="v",
                               fps=25.0, class_names={NAMES!r})
        w[0] = np.full((3, 2, 2), 1 / 3, np.float32)
        w.probs.file.flush()
        os.kill(os.getpid(), signal.SIGKILL)
    """)
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env={**os.environ, "PYTHONPATH": os.getcwd()})
    assert res.returncode == -signal.SIGKILL, res.stderr
    assert not (tmp_path / "a.h5").exists()
    assert all(p.name.startswith(".vidseg-tmp-a.h5.") for p in tmp_path.iterdir())


def test_smooth_writes_into_the_writer_tile_by_tile(tmp_path):
    """smooth with the writer's dataset as `out`: never an array of the whole
    output, and the same numbers as in memory."""
    p = _probs(6, 3, 11, 13, seed=1)
    prior, trans = np.array([0.6, 0.3, 0.1]), np.full((3, 3), 0.1) + np.eye(3) * 0.7
    budget = plan_tiles(p.shape, 4, None).bytes_per_pixel * 13 * 3  # 3 rows a tile
    plan = plan_tiles(p.shape, 4, budget)
    with store.ScoresWriter(tmp_path / "s.h5", p.shape, chunks=(1, 3, plan.rows, plan.cols),
                            **META) as w:
        smooth(p, prior, trans, out=w.probs, max_memory=budget)
    got = store.read_scores(tmp_path / "s.h5")["probs"]
    np.testing.assert_array_equal(got, smooth(p, prior, trans))


def test_hmm_smooth_cli_streams_with_chunks_of_its_tiles(cli, tmp_path):
    p = _probs(6, 3, 10, 12, seed=2)
    prior, trans = [0.5, 0.3, 0.2], np.full((3, 3), 0.4 / 3) + np.eye(3) * 0.6
    store.write_scores(tmp_path / "v.scores.h5", p, num_frames=6, **META)
    store.write_hmm(tmp_path / "hmm.h5", prior, trans, NAMES)
    res = cli("hmm-smooth", tmp_path / "v.scores.h5", "--hmm", tmp_path / "hmm.h5", "-o",
              tmp_path / "o.h5", "--max-memory", "4K", "--json", "-")
    assert res.exit_code == 0, res.stderr
    with store.open_record(tmp_path / "v.scores.h5", "scores") as rec:
        reserve = file_reserve(rec["probs"])  # the input's chunk, decompressed and cached
    assert reserve == 2 * 3 * 10 * 12 * 4
    plan = plan_tiles(p.shape, 4, 4096, out_itemsize=4, reserve=reserve)
    assert plan.count > 1
    with store.open_record(tmp_path / "o.h5", "scores") as rec:
        assert rec["probs"].chunks == (1, 3, plan.rows, plan.cols)
        assert rec.attrs["postprocess"] == "hmm-smooth"
        np.testing.assert_allclose(rec["probs"][()], smooth(p, prior, trans), atol=1e-6)


def test_crf_refine_keep_probs_streams_and_leaves_nothing_on_error(cli, tmp_path):
    with store.FramesWriter(tmp_path / "v.frames.h5", height=8, width=8, video_id="v",
                            fps=25.0) as fw:
        for i in range(3):
            fw.append(np.full((8, 8, 3), 40 * i, np.uint8), i / 25.0)
    p = _probs(3, 3, 8, 8, seed=3)
    store.write_scores(tmp_path / "s.scores.h5", p, num_frames=3, **META)
    out = tmp_path / "out"
    res = cli("crf-refine", tmp_path / "s.scores.h5", "--frames", tmp_path / "v.frames.h5",
              "-o", out, "--keep-probs", "--iterations", "0")
    assert res.exit_code == 0, res.stderr
    with store.open_record(out / "v.scores.h5", "scores") as rec:
        assert rec["probs"].chunks == (1, 3, 8, 8)  # one frame per chunk, as written
        np.testing.assert_allclose(rec["probs"][()], p, atol=1e-6)  # 0 iterations: the scores

    p[2, :, 4, 4] = np.nan  # found only after two frames went into the writer
    store.write_scores(tmp_path / "s.scores.h5", p, num_frames=3, **META)
    res = cli("crf-refine", tmp_path / "s.scores.h5", "--frames", tmp_path / "v.frames.h5",
              "-o", tmp_path / "bad", "--keep-probs")
    assert res.exit_code == 2 and "frame 2: NaN" in res.stderr
    assert list((tmp_path / "bad").iterdir()) == []


def test_crf_refine_keep_probs_keeps_the_action_scores(cli, tmp_path):
    """The refined marginals carry a Sep3D head's per-frame action scores unchanged; the
    labels file, which has no scores, gets none of it."""
    with store.FramesWriter(tmp_path / "v.frames.h5", height=8, width=8, video_id="v",
                            fps=25.0) as fw:
        for i in range(3):
            fw.append(np.full((8, 8, 3), 40 * i, np.uint8), i / 25.0)
    acts = np.random.default_rng(1).random((3, 2)).astype(np.float32)
    store.write(tmp_path / "s.scores.h5", "scores", {"probs": _probs(3, 3, 8, 8), "action_scores": acts},
                num_frames=3, attrs={"action_names": ["walk", "run"]}, **META)
    res = cli("crf-refine", tmp_path / "s.scores.h5", "--frames", tmp_path / "v.frames.h5",
              "-o", tmp_path / "out", "--keep-probs")
    assert res.exit_code == 0, res.stderr
    with store.open_record(tmp_path / "out" / "v.scores.h5", "scores") as rec:
        np.testing.assert_array_equal(rec["action_scores"][()], acts)
        assert list(rec.attrs["action_names"]) == ["walk", "run"]
    with store.open_record(tmp_path / "out" / "v.labels.h5", "labels") as rec:
        assert "action_names" not in rec.attrs and "action_scores" not in rec


@pytest.mark.parametrize("dtype", [np.float64, np.float16])
def test_streamed_and_whole_scores_files_are_laid_out_alike(tmp_path, dtype):
    # One rule for both writers (store.scores_layout): float16 kept, anything else float32,
    # one-frame lzf chunks; write_scores' optional datasets (a Sep3D head's action_scores).
    import h5py

    p = _probs(4, 3, 5, 6).astype(dtype)
    acts = np.random.default_rng(1).random((4, 2)).astype(np.float32)
    store.write_scores(tmp_path / "whole.h5", p, extra={"action_scores": acts},
                       attrs={"action_names": ["a", "b"]}, num_frames=4, **META)
    with store.ScoresWriter(tmp_path / "stream.h5", p.shape, dtype=p.dtype, **META) as w:
        w[:] = p
    with h5py.File(tmp_path / "whole.h5") as a, h5py.File(tmp_path / "stream.h5") as b:
        for f in (a, b):
            d = f["probs"]
            assert (d.dtype, d.chunks, d.compression) == (np.dtype(np.float16 if dtype == np.float16 else np.float32),
                                                          (1, 3, 5, 6), "lzf")
        np.testing.assert_array_equal(a["probs"][:], b["probs"][:])
        np.testing.assert_array_equal(a["action_scores"][:], acts)
