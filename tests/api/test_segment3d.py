"""segment-3d: exact temporal tiling of 3DFCN, Sep3D clip averaging, the scores files it
writes, and one-line errors for bad checkpoints and frames too small for the network."""

from __future__ import annotations

import json
import pickle

import numpy as np
import pytest
import torch

from vidseg_cli import store
from vidseg_cli.api.segment3d import Options, Segment3D
from vidseg_cli.infer.fcn_tiling import (
    fcn_trunk_bytes_per_frame,
    temporal_reach,
    tile_plan,
    upsample_frames,
)
from vidseg_cli.models import MODELS, save_checkpoint

torch.set_num_threads(1)
PRE = {"mean": [127.5] * 3, "std": [64.0] * 3, "short_side": None, "clip_len": 8}
CLASSES = ["background", "a", "b"]


def _segmenter(name, **opts):
    torch.manual_seed(0)
    cfg = {"crop_size": 32} if name == "sep3d" else {}
    m = MODELS.build(name, num_classes=3, width=1 / 16, **cfg).eval()
    return Segment3D(m, CLASSES, PRE, Options(model=name, weights="", **opts), torch.device("cpu"))


def _frames(t, h, w, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (t, h, w, 3), dtype=np.uint8)


@pytest.mark.parametrize("name", ["3dfcn-32s", "3dfcn-8s"])
def test_temporal_reach_is_exactly_what_a_cell_depends_on(name):
    seg = _segmenter(name)
    s, lo, hi = temporal_reach(seg.model)
    assert s == (16 if name == "3dfcn-32s" else 4)
    h = seg.model.min_input[1]
    fr = _frames(130, h, h)
    a = seg.fcn_score_map(fr)
    fr[70] = 0  # one frame changes
    b = seg.fcn_score_map(fr)
    changed = ((a - b).abs().amax(dim=(0, 1, 3, 4)) > 0).nonzero().flatten().tolist()
    assert changed == [j for j in range(a.shape[2]) if j * s + lo <= 70 <= j * s + hi]


@pytest.mark.parametrize("name,t,tiles", [("3dfcn-32s", 203, (1,)), ("3dfcn-8s", 118, (90,))])
def test_tiled_equals_untiled(name, t, tiles):
    seg = _segmenter(name)
    h = seg.model.min_input[1]
    fr = _frames(t, h, h + 9, seed=1)
    whole = seg.fcn_score_map(fr)
    n = whole.shape[2]
    for tile in tiles:
        plan = tile_plan(t, n, temporal_reach(seg.model), tile)
        assert len(plan) > 1 and plan[-1][1] == t
        tiled = seg.fcn_score_map(fr, max_frames=tile)
        # float32: conv sums over a different input length round differently (He-initialized
        # scores are O(1)); a tiling error would be O(1).
        torch.testing.assert_close(tiled, whole, rtol=1e-5, atol=1e-5)
    # through predict(): a tiny memory budget forces tiles, posteriors agree
    tiny = _segmenter(name, max_memory=fcn_trunk_bytes_per_frame(seg.model, h, h + 9) * 100)
    np.testing.assert_allclose(tiny.predict(fr), seg.predict(fr), atol=1e-5)


@pytest.mark.parametrize("name", ["3dfcn-32s", "3dfcn-8s"])
def test_upsampling_in_frame_chunks_is_exact(name):
    m = _segmenter(name).model
    for t in (13, 77):
        score = torch.randn(1, 3, m.map_size((t, 130, 150))[0], 2, 3)
        full = m.upsample(score, (t, 130, 150))
        for f0, f1 in [(0, 1), (0, 16), (5, 12), (30, 46), (t - 3, t)]:
            f0, f1 = min(f0, t - 1), min(f1, t)
            torch.testing.assert_close(upsample_frames(m, score, (t, 130, 150), f0, f1), full[:, :, f0:f1],
                                       rtol=0, atol=0)


def test_sep3d_overlapping_clips_are_averaged():
    seg = _segmenter("sep3d", clip_stride=4, batch_size=3)
    fr = _frames(13, 32, 40, seed=2)
    got = seg.predict(fr)  # T x C x H x W
    x = seg._input(fr)[0]  # 3 x T x H x W
    acc, cnt = np.zeros_like(got), np.zeros(13)
    with torch.no_grad():
        for s in (0, 4, 5):  # every 4 frames, the last clip ending on the last frame
            p = torch.softmax(seg.model(x[None, :, s : s + 8]), 1)[0].transpose(0, 1).numpy()
            acc[s : s + 8] += p
            cnt[s : s + 8] += 1
    np.testing.assert_allclose(got, acc / cnt[:, None, None, None], atol=1e-5)
    np.testing.assert_allclose(got.sum(axis=1), 1.0, atol=1e-5)


def test_out_stride_averages_blocks_and_resize_back():
    seg = _segmenter("sep3d")
    fr = _frames(8, 34, 45, seed=3)
    full = seg.predict(fr)
    seg.opts.out_stride = 4
    coarse = seg.predict(fr)
    assert coarse.shape == (8, 3, 9, 12)  # ceil(34/4), ceil(45/4)
    np.testing.assert_allclose(coarse[:, :, 2, 3], full[:, :, 8:12, 12:16].mean(axis=(2, 3)), atol=1e-6)
    np.testing.assert_allclose(coarse[:, :, 8, 11], full[:, :, 32:, 44:].mean(axis=(2, 3)), atol=1e-6)
    seg.opts.out_stride = 1
    seg.preprocess = {**seg.preprocess, "short_side": 48}  # run at 48 x 63, posteriors back at 34 x 45
    assert seg.network_size(34, 45) == (48, 64)
    assert seg.predict(fr).shape == (8, 3, 34, 45)


# -- the command -------------------------------------------------------------------------
@pytest.fixture
def ckpts(tmp_path):
    out = {}
    for name in ("3dfcn-32s", "sep3d"):
        torch.manual_seed(0)
        cfg = {"crop_size": 32} if name == "sep3d" else {}
        m = MODELS.build(name, num_classes=3, width=1 / 16, **cfg)
        m.preprocess = PRE
        out[name] = save_checkpoint(tmp_path / f"{name}.ckpt", m, CLASSES)
    return out


def _write_frames(path, t, h, w, seed=0, vid=None):
    with store.FramesWriter(path, height=h, width=w, video_id=vid or path.stem.split(".")[0], fps=10.0) as fw:
        for i, f in enumerate(_frames(t, h, w, seed)):
            fw.append(f, i / 10)
    return path


def test_cli_writes_scores_with_provenance(cli, tmp_path, ckpts):
    f1 = _write_frames(tmp_path / "v1.frames.h5", 20, 100, 120)
    f2 = _write_frames(tmp_path / "v2.frames.h5", 11, 100, 110, seed=1)
    res = cli("segment-3d", f1, f2, "--model", "3dfcn-32s", "--weights", ckpts["3dfcn-32s"],
              "-o", tmp_path / "out", "--out-stride", "2", "--device", "cpu", "-q")
    assert res.exit_code == 0, res.output
    rec = store.read_scores(tmp_path / "out" / "v1.scores.h5")
    assert rec["probs"].shape == (20, 3, 50, 60) and rec.attrs["spatial_stride"] == 2
    assert rec.class_names == CLASSES and rec.video_id == "v1"
    assert rec.attrs["inputs"][0]["uid"] == store.read_frames(f1).uid
    np.testing.assert_allclose(rec["probs"].sum(axis=1), 1.0, atol=1e-5)
    assert json.loads(rec.attrs["segment3d_preprocess"])["mean"] == PRE["mean"]
    from vidseg_cli.datasets.masks import read_scores_file

    assert read_scores_file(tmp_path / "out" / "v2.scores.h5", size=(100, 110)).masks.shape == (11, 100, 110)


def _error_line(res):
    lines = [ln for ln in res.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, res.stderr
    assert lines[0].startswith("vidseg segment-3d: error: ")
    return lines[0]


def test_bad_checkpoints_are_one_line(cli, tmp_path, ckpts):
    f = _write_frames(tmp_path / "v.frames.h5", 8, 100, 100)
    out = tmp_path / "o.h5"
    res = cli("segment-3d", f, "--model", "3dfcn-8s", "--weights", ckpts["sep3d"], "-o", out)
    assert res.exit_code == 2 and "is for model 'sep3d'" in _error_line(res)

    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    evil = tmp_path / "evil.ckpt"
    evil.write_bytes(pickle.dumps({"vidseg_checkpoint": 1, "x": Evil()}))
    res = cli("segment-3d", f, "--model", "sep3d", "--weights", evil, "-o", out)
    assert res.exit_code == 2 and "refused to load" in _error_line(res) and "pwned" not in res.stdout

    ck = torch.load(ckpts["sep3d"], weights_only=True)
    ck["state_dict"]["extra.weight"] = ck["state_dict"].pop("decoder.classifier.weight")
    bad = tmp_path / "keys.ckpt"
    torch.save(ck, bad)
    res = cli("segment-3d", f, "--model", "sep3d", "--weights", bad, "-o", out)
    line = _error_line(res)
    assert res.exit_code == 2 and "missing keys [decoder.classifier.weight]" in line
    assert "unexpected keys [extra.weight]" in line and not out.exists()


def test_frames_smaller_than_the_network_fail_alone(cli, tmp_path, ckpts):
    small = _write_frames(tmp_path / "small.frames.h5", 20, 64, 80)
    good = _write_frames(tmp_path / "good.frames.h5", 12, 100, 100)
    res = cli("segment-3d", small, "--model", "3dfcn-32s", "--weights", ckpts["3dfcn-32s"], "-o", tmp_path / "one.h5")
    line = _error_line(res)
    assert res.exit_code == 2 and "small.frames.h5: 20 frames of 80x64" in line and "minimum input" in line
    assert "97x97" in line and not (tmp_path / "one.h5").exists()
    res = cli("segment-3d", small, good, "--model", "3dfcn-32s", "--weights", ckpts["3dfcn-32s"],
              "-o", tmp_path / "many", "-q")
    assert res.exit_code == 1
    assert (tmp_path / "many" / "good.scores.h5").exists() and not (tmp_path / "many" / "small.scores.h5").exists()


@pytest.mark.parametrize("name", ["3dfcn-32s", "sep3d"])
def test_a_frames_file_of_no_frames_gives_a_warning_and_an_empty_valid_scores_file(cli, tmp_path, ckpts, name):
    f = _write_frames(tmp_path / "z.frames.h5", 0, 100, 120)
    out = tmp_path / "z.scores.h5"
    res = cli("segment-3d", f, "--model", name, "--weights", ckpts[name], "-o", out)
    assert res.exit_code == 0, res.stderr
    assert f"vidseg segment-3d: warning: {f}: no frames; wrote an empty scores file" in res.stderr
    rec = store.read_scores(out)
    assert rec["probs"].shape == (0, 3, 100, 120) and rec.num_frames == 0 and rec.class_names == CLASSES
