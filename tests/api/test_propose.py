"""`vidseg propose`: windows of S-CNN §3.1, scored by the proposal network, against brute
force; sliding windows; short videos; bad checkpoints."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from vidseg_cli import store
from vidseg_cli.stages.windows import multiscale_windows, sample_clip_indices

torch.set_num_threads(1)


def write_frames(path, t, h=24, w=32, seed=0, fps=10.0):
    rng = np.random.default_rng(seed)
    frames = rng.integers(0, 256, (t, h, w, 3), dtype=np.uint8)
    with store.FramesWriter(path, height=h, width=w, video_id=path.name.split(".")[0], fps=fps,
                            command="test") as fw:
        for i, f in enumerate(frames):
            fw.append(f, i / fps)
    return frames


def tiny_network(path, stage, classes, seed=0, **cfg):
    """A small S-CNN checkpoint: 24 x 32 frames, whole-frame crop, width 1/16."""
    from vidseg_cli.models import MODELS
    from vidseg_cli.models.checkpoint.format import save_checkpoint
    from vidseg_cli.train import scnn  # noqa: F401  registers "scnn"

    torch.manual_seed(seed)
    m = MODELS.build("scnn", stage=stage, num_classes=len(classes), width=1 / 16, frame_size=[32, 24],
                     crop_size=[24, 32], pixel_mean=128.0, pixel_scale=1 / 64, **cfg)
    with torch.no_grad():  # make the scores spread out
        m.fc8.weight.normal_(0, 1.0)
    save_checkpoint(path, m, classes)
    return m.eval()


def brute_force_probs(model, frames, windows):
    out = []
    for s, e in windows:
        clip = frames[sample_clip_indices(int(s), int(e))]  # 16 x H x W x 3 (already at frame_size)
        x = torch.from_numpy(clip.transpose(3, 0, 1, 2).copy())[None]
        with torch.no_grad():
            out.append(torch.softmax(model(x), 1)[0].numpy())
    return np.array(out)


@pytest.fixture
def video(tmp_path):
    p = tmp_path / "v1.frames.h5"
    return p, write_frames(p, 70)


def test_sliding_writes_every_window(cli, video, tmp_path):
    path, _ = video
    r = cli("propose", path, "--method", "sliding", "-o", tmp_path / "out.h5", "-q")
    assert r.exit_code == 0, r.stderr
    rec = store.read_proposals(tmp_path / "out.h5")
    np.testing.assert_array_equal(rec["segments"], multiscale_windows(70))  # 16, 32, 64 windows
    assert (rec["scores"] == 1).all() and rec.attrs["num_windows"] == len(rec["segments"])
    assert rec.attrs["inputs"][0]["uid"] == store.read_frames(path).uid


def test_proposal_network_scores_against_brute_force(cli, video, tmp_path):
    path, frames = video
    model = tiny_network(tmp_path / "pro.ckpt", "proposal", ["background", "action"])
    probs = brute_force_probs(model, frames, multiscale_windows(70))[:, 1]
    thr = float(np.median(probs))
    r = cli("propose", path, "--weights", tmp_path / "pro.ckpt", "--threshold", thr, "--batch-size", 5,
            "-o", tmp_path / "out", "-q")
    assert r.exit_code == 0, r.stderr
    rec = store.read_proposals(tmp_path / "out" / "v1.proposals.h5")
    keep = probs >= thr
    assert 0 < keep.sum() < len(keep)
    np.testing.assert_array_equal(rec["segments"], multiscale_windows(70)[keep])
    np.testing.assert_allclose(rec["scores"], probs[keep], rtol=1e-5)
    assert rec.attrs["threshold"] == pytest.approx(thr) and rec.attrs["num_windows"] == len(keep)


def test_short_video_gives_an_empty_file_and_a_warning(cli, tmp_path):
    p = tmp_path / "short.frames.h5"
    write_frames(p, 12)
    tiny_network(tmp_path / "pro.ckpt", "proposal", ["background", "action"])
    r = cli("propose", p, "--weights", tmp_path / "pro.ckpt", "-o", tmp_path / "s.h5", "-q")
    assert r.exit_code == 0
    assert "warning" in r.stderr and "12 frames" in r.stderr
    rec = store.read_proposals(tmp_path / "s.h5")
    assert rec["segments"].shape == (0, 2) and rec.num_frames == 12


def test_wrong_stage_and_bad_inputs(cli, video, tmp_path):
    path, _ = video
    tiny_network(tmp_path / "loc.ckpt", "localization", ["background", "a", "b"])
    r = cli("propose", path, "--weights", tmp_path / "loc.ckpt", "-o", tmp_path / "o.h5")
    assert r.exit_code == 2
    assert r.stderr.strip() == (f"vidseg propose: error: {tmp_path / 'loc.ckpt'}: checkpoint is the S-CNN "
                                "localization network; this needs the proposal network")
    r = cli("propose", path, "-o", tmp_path / "o.h5")
    assert r.exit_code == 2 and "--weights" in r.stderr
    # One bad input of two: the other is done, exit 1.
    tiny_network(tmp_path / "pro.ckpt", "proposal", ["background", "action"])
    bad = tmp_path / "bad.frames.h5"
    bad.write_text("not hdf5")
    r = cli("propose", path, bad, "--weights", tmp_path / "pro.ckpt", "-o", tmp_path / "many", "-q")
    assert r.exit_code == 1
    assert (tmp_path / "many" / "v1.proposals.h5").is_file()
    assert not (tmp_path / "many" / "bad.proposals.h5").exists()
    assert f"vidseg propose: error: {bad}: not a readable HDF5 file" in r.stderr
