"""extract-features: snippet centres, features equal to the backbone on the right inputs,
file attributes, public weights and cross-modality init, short videos, bad weights, resume."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from vidseg_cli import store
from vidseg_cli.api.extract_features import Options, _save_partial, load
from vidseg_cli.datasets.fsn_data import rgb_to_input
from vidseg_cli.infer.features import c3d_clip_indices, snippet_center_frames
from vidseg_cli.models import MODELS, save_checkpoint
from vidseg_cli.video.flow import FlowComputer, flow_stack

torch.set_num_threads(1)
CLASSES = ["background", "a", "b"]


def _frames(path, n=23, h=40, w=48, seed=0):
    """A frames file of n frames: a bright square moving right over noise."""
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 120, (h, w, 3), dtype=np.uint8)
    frames = []
    with store.FramesWriter(path, height=h, width=w, video_id=path.name.split(".")[0], fps=10.0) as fw:
        for t in range(n):
            f = base.copy()
            f[10:22, 2 + t:14 + t] = 250
            fw.append(f, t / 10)
            frames.append(f)
    return np.stack(frames)


def _ckpt(path, name="resnet18", **cfg):
    torch.manual_seed(0)
    model = MODELS.build(name, **cfg)
    save_checkpoint(path, model, CLASSES)
    return model.eval()


def test_snippet_centers():
    assert snippet_center_frames(12, 5, 5).tolist() == [2, 7]
    assert snippet_center_frames(4, 5, 5).tolist() == []
    assert snippet_center_frames(3, 1, 1).tolist() == [0, 1, 2]
    assert snippet_center_frames(10, 4, 2).tolist() == [1, 3, 5, 7]
    assert c3d_clip_indices(2, 10).tolist() == [0] * 7 + list(range(1, 10))
    assert len(c3d_clip_indices(50, 100)) == 16 and c3d_clip_indices(50, 100)[0] == 42


def test_rgb_features_are_the_backbone_on_centre_frames(tmp_path, cli):
    frames = _frames(tmp_path / "v1.frames.h5")
    model = _ckpt(tmp_path / "bb.ckpt", num_classes=3, width=0.0625)
    out = tmp_path / "v1.features.h5"
    r = cli("extract-features", tmp_path / "v1.frames.h5", "--weights", tmp_path / "bb.ckpt", "-o", out,
            "--batch-size", "3", "-q")
    assert r.exit_code == 0, r.output
    rec = store.read_features(out)
    assert rec["centers"].tolist() == [2, 7, 12, 17]  # 23 frames: 4 snippets of 5
    a = rec.attrs
    assert (a["snippet"], a["stride"], a["backbone"], a["stream"], a["flow_method"]) == (5, 5, "resnet18", "rgb", "none")
    assert a["feature_dim"] == rec["features"].shape[1] == model.feature_dim
    with torch.no_grad():
        want = model.forward_features(torch.from_numpy(rgb_to_input(frames[[2, 7, 12, 17]]))).numpy()
    np.testing.assert_allclose(rec["features"], want, rtol=1e-4, atol=1e-5)
    # rerun: skipped, exit 0
    r = cli("extract-features", tmp_path / "v1.frames.h5", "--weights", tmp_path / "bb.ckpt", "-o", out)
    assert r.exit_code == 0 and "skipped" in r.output


def test_flow_stream_from_checkpoint(tmp_path, cli):
    frames = _frames(tmp_path / "v2.frames.h5", n=12)
    model = _ckpt(tmp_path / "flow.ckpt", num_classes=3, width=0.0625, in_channels=10)
    out = tmp_path / "v2.features.h5"
    r = cli("extract-features", tmp_path / "v2.frames.h5", "--weights", tmp_path / "flow.ckpt",
            "--flow", "farneback", "-o", out, "-q")
    assert r.exit_code == 0, r.output
    rec = store.read_features(out)
    assert rec.attrs["stream"] == "flow" and rec.attrs["flow_method"] == "farneback"
    x = flow_stack(frames, 7, FlowComputer("farneback"))[None]  # 1 x 10 x H x W
    with torch.no_grad():
        want = model.forward_features(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(rec["features"][1:2], want, rtol=1e-4, atol=1e-5)
    # the checkpoint says flow: asking for rgb is an error naming the weights
    r = cli("extract-features", tmp_path / "v2.frames.h5", "--weights", tmp_path / "flow.ckpt",
            "--stream", "rgb", "-o", tmp_path / "x.h5")
    assert r.exit_code == 2 and "flow.ckpt" in r.output and "10-channel" in r.output


def test_public_resnet_weights_rgb_and_flow(tmp_path, cli):
    _frames(tmp_path / "v3.frames.h5", n=11)
    torch.manual_seed(1)
    sd = MODELS.build("resnet18", num_classes=1000).state_dict()  # torchvision's keys
    torch.save(sd, tmp_path / "resnet18-imagenet.pth")
    r = cli("extract-features", tmp_path / "v3.frames.h5", "--weights", tmp_path / "resnet18-imagenet.pth",
            "--backbone", "resnet18", "-o", tmp_path / "rgb.h5", "-q")
    assert r.exit_code == 0, r.output
    rec = store.read_features(tmp_path / "rgb.h5")
    assert rec["features"].shape == (2, 512) and rec.attrs["weights_kind"] == "torchvision-resnet"
    # flow from RGB weights: TSN cross-modality init of conv1 (the RGB filters' mean, replicated)
    ex = load(Options(weights=str(tmp_path / "resnet18-imagenet.pth"), backbone="resnet18",
                      stream="flow", flow="farneback", device="cpu"))
    w = ex.model.conv1.weight.detach()
    assert w.shape[1] == 10
    torch.testing.assert_close(w, sd["conv1.weight"].mean(1, keepdim=True).expand_as(w))
    ex.run({"frames": str(tmp_path / "v3.frames.h5")}, {"features": tmp_path / "flow.h5"})
    rec = store.read_features(tmp_path / "flow.h5")
    assert rec.attrs["stream"] == "flow" and rec["features"].shape == (2, 512)
    # public weights need --backbone; weights of another network are refused, naming the file
    r = cli("extract-features", tmp_path / "v3.frames.h5", "--weights", tmp_path / "resnet18-imagenet.pth",
            "-o", tmp_path / "y.h5")
    assert r.exit_code == 2 and "--backbone" in r.output
    r = cli("extract-features", tmp_path / "v3.frames.h5", "--weights", tmp_path / "resnet18-imagenet.pth",
            "--backbone", "resnet50", "-o", tmp_path / "y.h5")
    assert r.exit_code == 2 and "resnet18-imagenet.pth" in r.output and "resnet50" in r.output
    (tmp_path / "junk.pth").write_bytes(b"not a torch file")
    r = cli("extract-features", tmp_path / "v3.frames.h5", "--weights", tmp_path / "junk.pth",
            "--backbone", "resnet18", "-o", tmp_path / "y.h5")
    assert r.exit_code == 2 and r.output.strip().startswith("vidseg extract-features: error:")
    assert "junk.pth" in r.output and not (tmp_path / "y.h5").exists()


def test_c3d_fc7_of_centred_clip(tmp_path, cli):
    frames = _frames(tmp_path / "v4.frames.h5", n=10)
    model = _ckpt(tmp_path / "c3d.ckpt", "c3d", num_classes=3, width=0.0625)
    r = cli("extract-features", tmp_path / "v4.frames.h5", "--weights", tmp_path / "c3d.ckpt",
            "-o", tmp_path / "c.h5", "-q")
    assert r.exit_code == 0, r.output
    rec = store.read_features(tmp_path / "c.h5")
    assert rec.attrs["backbone"] == "c3d" and rec.attrs["clip_length"] == 16
    assert rec["features"].shape == (2, model.feature_dim)
    import cv2  # the clip: short side to 112, centre crop

    clip = np.stack([cv2.resize(f, (134, 112))[:, 11:123] for f in frames[c3d_clip_indices(2, 10)]])
    x = torch.from_numpy(clip.transpose(3, 0, 1, 2)[None].astype(np.float32))
    with torch.no_grad():
        np.testing.assert_allclose(rec["features"][:1], model.forward_features(x).numpy(), rtol=1e-4, atol=1e-5)


def test_short_video_is_a_warning_and_an_empty_file(tmp_path, cli):
    _frames(tmp_path / "short.frames.h5", n=3)
    _frames(tmp_path / "ok.frames.h5", n=6)
    _ckpt(tmp_path / "bb.ckpt", num_classes=3, width=0.0625)
    r = cli("extract-features", tmp_path / "short.frames.h5", tmp_path / "ok.frames.h5",
            "--weights", tmp_path / "bb.ckpt", "-o", tmp_path / "out", "-q")
    assert r.exit_code == 0 and "warning" in r.output and "shorter than one snippet" in r.output
    rec = store.read_features(tmp_path / "out" / "short.features.h5")
    assert rec["features"].shape == (0, 32) and rec["centers"].shape == (0,)
    assert store.read_features(tmp_path / "out" / "ok.features.h5")["features"].shape == (1, 32)


def test_resumes_a_long_video_from_partial_progress(tmp_path):
    _frames(tmp_path / "v5.frames.h5", n=30)
    _ckpt(tmp_path / "bb.ckpt", num_classes=3, width=0.0625)
    ex = load(Options(weights=str(tmp_path / "bb.ckpt"), device="cpu", batch_size=2))
    out = tmp_path / "v5.features.h5"
    full = ex.run({"frames": str(tmp_path / "v5.frames.h5")}, {"features": out}).to_json()
    assert full["snippets"] == 6
    ref = store.read_features(out)["features"]
    out.unlink()
    # a partial file from an interrupted run (2 snippets done) is picked up, then removed
    uid = store.read_frames(tmp_path / "v5.frames.h5").uid
    fake = ref[:2] + 100.0
    partial = tmp_path / ".v5.features.h5.partial.npz"
    _save_partial(partial, ex._partial_key(uid), fake, 2)
    ex.run({"frames": str(tmp_path / "v5.frames.h5")}, {"features": out})
    got = store.read_features(out)["features"]
    np.testing.assert_allclose(got[:2], fake)
    np.testing.assert_allclose(got[2:], ref[2:], rtol=1e-5, atol=1e-6)
    assert not partial.exists()
    # a partial made with other settings is ignored
    _save_partial(partial, ex._partial_key("another-uid"), fake, 2)
    out.unlink()
    ex.run({"frames": str(tmp_path / "v5.frames.h5")}, {"features": out})
    np.testing.assert_allclose(store.read_features(out)["features"], ref, rtol=1e-5, atol=1e-6)


def test_features_file_contract(tmp_path):
    # the store refuses features whose centres do not match the features' count
    with pytest.raises(store.StoreError):
        store.write_features(tmp_path / "f.h5", np.zeros((3, 4)), np.zeros(2), video_id="v",
                             num_frames=10, fps=10.0)


def test_runner_from_python_returns_its_summary(tmp_path):
    """load(Options).run(inputs, outputs): the dataclass, the file, and the --json record."""
    from vidseg_cli.api.extract_features import FeaturesSummary

    _frames(tmp_path / "v6.frames.h5", n=3)
    _ckpt(tmp_path / "bb.ckpt", num_classes=3, width=0.0625)
    ex = load(Options(weights=str(tmp_path / "bb.ckpt"), device="cpu"))
    out = tmp_path / "v6.features.h5"
    s = ex.run({"frames": tmp_path / "v6.frames.h5"}, {"features": out})
    assert isinstance(s, FeaturesSummary) and s.output == str(out) and s.snippets == 0
    assert len(s.warnings) == 1 and "shorter than one snippet" in s.warnings[0]
    assert sorted(s.to_json()) == ["feature_dim", "input", "output", "seconds", "snippets"]
    assert store.read_features(out)["features"].shape == (0, 32)
