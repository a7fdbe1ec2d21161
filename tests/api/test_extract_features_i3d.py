"""extract-features --backbone i3d: the clips I3D sees (frames, resize + centre crop,
[-1, 1], 2-channel flow), the backbone's defaults, rgb+flow concatenation, streaming (chunks
equal one pass, memory flat), bad weights as one line, and a run on the bundled real videos
with weights of the port's layout (seeded values)."""

from __future__ import annotations

import sys

import cv2
import numpy as np
import pytest
import torch

from tests.models.i3d_weights import seeded_i3d_state_dict
from vidseg_cli import store
from vidseg_cli.api.extract_features import Options, load, snippet_defaults
from vidseg_cli.infer.i3d_clips import clip_frames, crop_offset, frame_hw
from vidseg_cli.models import MODELS, load_public_weights
from vidseg_cli.video.flow import FlowComputer

torch.set_num_threads(1)
CROP = 32  # small crops keep the CPU forward passes short; 224 is the default


@pytest.fixture(scope="module")
def weights(tmp_path_factory) -> dict[str, str]:
    """The port's layout with seeded values, saved as plain state_dicts (as the port's files)."""
    d = tmp_path_factory.mktemp("i3d_weights")
    out = {}
    for stream, seed in (("rgb", 0), ("flow", 1)):
        out[stream] = str(d / f"{stream}_seeded.pt")
        torch.save(seeded_i3d_state_dict(stream, seed), out[stream])
    return out


def model(stream: str) -> torch.nn.Module:
    m = MODELS.build("i3d", in_channels=3 if stream == "rgb" else 2)
    load_public_weights(seeded_i3d_state_dict(stream, 0 if stream == "rgb" else 1), m)
    return m.eval()


def _frames(path, n=24, h=30, w=44, seed=0) -> np.ndarray:
    """n frames: a bright square moving right and down over noise."""
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 120, (h, w, 3), dtype=np.uint8)
    frames = []
    with store.FramesWriter(path, height=h, width=w, video_id=path.name.split(".")[0], fps=30.0) as fw:
        for t in range(n):
            f = base.copy()
            f[4 + t // 3:14 + t // 3, 2 + t:12 + t] = 250
            fw.append(f, t / 30)
            frames.append(f)
    return np.stack(frames)


def by_hand(images: np.ndarray, crop: int) -> np.ndarray:
    """(n, H, W, C) -> (n, crop, crop, C): cv2 resize to 340x256 x crop/224, centre crop."""
    h, w = frame_hw(crop)
    y0, x0 = crop_offset(crop)
    # the 30x44 test frames grow, so OpenCV's linear interpolation (area only when shrinking)
    return np.stack([cv2.resize(f, (w, h), interpolation=cv2.INTER_LINEAR)[y0:y0 + crop, x0:x0 + crop]
                     for f in images])


def test_geometry_of_the_published_features():
    assert frame_hw(224) == (256, 340) and crop_offset(224) == (16, 58)  # rows 16:240, cols 58:282
    assert snippet_defaults("i3d", None, None) == (16, 4)
    assert snippet_defaults("resnet18", None, None) == (5, 5)
    assert snippet_defaults("i3d", 8, None) == (8, 4)
    assert clip_frames(7, 16, 100).tolist() == list(range(16))
    assert clip_frames(7, 16, 10).tolist() == list(range(10)) + [9] * 6


def test_rgb_features_are_i3d_on_the_snippets_frames(tmp_path, cli, weights):
    frames = _frames(tmp_path / "v.frames.h5")
    out = tmp_path / "v.features.h5"
    r = cli("extract-features", tmp_path / "v.frames.h5", "--backbone", "i3d", "--weights", weights["rgb"],
            "--crop-size", CROP, "-o", out, "-q")
    assert r.exit_code == 0, r.output
    rec = store.read_features(out)
    assert rec["centers"].tolist() == [7, 11, 15]  # 24 frames: starts 0, 4, 8 (16 frames, stride 4)
    a = rec.attrs
    assert (a["snippet"], a["stride"], a["backbone"], a["stream"], a["feature_dim"]) == (16, 4, "i3d", "rgb", 1024)
    assert (a["clip_length"], a["crop_size"], a["weights_kind"]) == (16, CROP, "pytorch-i3d")
    clips = np.stack([by_hand(frames[s:s + 16], CROP) for s in (0, 4, 8)])  # B x 16 x h x w x 3
    x = torch.from_numpy((clips.astype(np.float32) / 255 * 2 - 1).transpose(0, 4, 1, 2, 3).copy())
    with torch.no_grad():
        want = model("rgb").forward_features(x).numpy()
    np.testing.assert_allclose(rec["features"], want, rtol=0, atol=1e-4)


def test_flow_and_rgb_plus_flow(tmp_path, weights):
    frames = _frames(tmp_path / "f.frames.h5", n=20)
    base = dict(weights=weights["rgb"], backbone="i3d", crop_size=CROP, flow="farneback", device="cpu")
    ex = load(Options(**{**base, "weights": weights["flow"]}))
    assert ex.stream == "flow" and ex.dim == 1024  # the stream follows from the weights' first conv
    ex.run({"frames": str(tmp_path / "f.frames.h5")}, {"features": tmp_path / "flow.h5"})
    flow = store.read_features(tmp_path / "flow.h5")
    assert flow["centers"].tolist() == [7, 11] and flow.attrs["flow_method"] == "farneback"
    # by hand: frame t's field is the flow t -> t+1 (the last frame, 19, takes the pair
    # 18 -> 19), clipped to +-20 pixels, / 20, resized and cropped like the frames
    fc = FlowComputer("farneback")
    fields = np.stack([np.clip(fc(frames[t], frames[t + 1]), -20, 20) / 20 for t in range(19)])
    clips = [by_hand(fields[[min(t, 18) for t in range(s, s + 16)]], CROP) for s in (0, 4)]
    x = torch.from_numpy(np.stack(clips).transpose(0, 4, 1, 2, 3).astype(np.float32).copy())
    with torch.no_grad():
        want = model("flow").forward_features(x).numpy()
    np.testing.assert_allclose(flow["features"], want, rtol=0, atol=1e-4)

    ex = load(Options(**base, flow_weights=weights["flow"]))
    assert ex.stream == "rgb+flow" and ex.dim == 2048
    ex.run({"frames": str(tmp_path / "f.frames.h5")}, {"features": tmp_path / "both.h5"})
    both = store.read_features(tmp_path / "both.h5")
    load(Options(**base)).run({"frames": str(tmp_path / "f.frames.h5")}, {"features": tmp_path / "rgb.h5"})
    rgb = store.read_features(tmp_path / "rgb.h5")
    np.testing.assert_allclose(both["features"], np.concatenate([rgb["features"], flow["features"]], 1),
                               rtol=0, atol=1e-5)
    assert both.attrs["stream"] == "rgb+flow" and both.attrs["feature_dim"] == 2048
    assert both.attrs["flow_weights"].endswith("flow_seeded.pt")


def test_chunks_equal_one_pass_and_memory_stays_flat(tmp_path, weights):
    """A long video read a snippet at a time gives the features of one pass over it, and
    holds no more frames than one batch of snippets needs."""
    _frames(tmp_path / "long.frames.h5", n=60, h=20, w=24)
    base = dict(weights=weights["rgb"], backbone="i3d", crop_size=16, snippet=8, device="cpu")
    one = load(Options(**base, batch_size=64))
    one.run({"frames": str(tmp_path / "long.frames.h5")}, {"features": tmp_path / "one.h5"})
    chunked = load(Options(**base, batch_size=2))
    held: list[int] = []  # frames in the cache right after each batch's forward pass
    encode = chunked.encoder.encode

    def watch(video, centers):
        out = encode(video, centers)
        held.append(len(chunked.encoder._clips._cache))
        return out

    chunked.encoder.encode = watch
    chunked.run({"frames": str(tmp_path / "long.frames.h5")}, {"features": tmp_path / "chunks.h5"})
    a, b = store.read_features(tmp_path / "one.h5"), store.read_features(tmp_path / "chunks.h5")
    assert len(a["centers"]) == (60 - 8) // 4 + 1 == 2 * len(held)
    assert a["centers"].tolist() == b["centers"].tolist()
    np.testing.assert_allclose(a["features"], b["features"], rtol=0, atol=1e-5)
    # a batch of 2 snippets (8 frames, stride 4) spans 12 frames; the cache never holds more
    assert max(held) == 12 and chunked.encoder._clips is None  # forgotten at the video's end


def test_bad_weights_and_options_are_one_line(tmp_path, cli, weights):
    _frames(tmp_path / "b.frames.h5", n=18)
    args = ["extract-features", tmp_path / "b.frames.h5", "--backbone", "i3d", "--crop-size", CROP]
    sd = seeded_i3d_state_dict("rgb", 0)
    sd["Mixed_3c.b2b.conv3d.weihgt"] = sd.pop("Mixed_3c.b2b.conv3d.weight")
    torch.save(sd, tmp_path / "typo.pt")
    cases = [
        (["--weights", tmp_path / "typo.pt"], ["typo.pt", "missing keys [Mixed_3c.b2b.conv3d.weight]",
                                               "unexpected keys [Mixed_3c.b2b.conv3d.weihgt]"]),
        (["--weights", weights["rgb"], "--stream", "flow"], ["rgb_seeded.pt", "not the flow stream"]),
        (["--weights", weights["rgb"], "--stream", "rgb+flow"], ["--flow-weights"]),
        (["--weights", weights["rgb"], "--flow-weights", weights["rgb"]], ["rgb_seeded.pt", "not the flow stream"]),
    ]
    for extra, say in cases:
        r = cli(*args, *extra, "-o", tmp_path / "x.h5")
        lines = r.output.strip().splitlines()
        assert r.exit_code == 2 and len(lines) == 1, r.output
        assert lines[0].startswith("vidseg extract-features: error:")
        assert all(s in lines[0] for s in say), (lines[0], say)
        assert not (tmp_path / "x.h5").exists()
    r = cli("extract-features", tmp_path / "b.frames.h5", "--backbone", "resnet18", "--weights", weights["rgb"],
            "--flow-weights", weights["flow"], "-o", tmp_path / "x.h5")
    assert r.exit_code == 2 and "--backbone i3d" in r.output


def test_help_says_defaults_depend_on_the_backbone(cli):
    r = cli("extract-features", "--help")
    assert r.exit_code == 0
    text = " ".join(r.output.split())
    assert "Default depends on the backbone: 16 for i3d, else 5" in text
    assert "4 for i3d" in text and "--flow-weights" in text


def test_bundled_real_videos(tmp_path, bikes, carphone, weights):
    """The CLI as a user runs it: extract-frames on the bundled videos (short, small), then
    extract-features --backbone i3d with both streams of the port's layout."""
    import subprocess

    py = [sys.executable, "-m", "vidseg_cli.cli.main"]
    frames = tmp_path / "frames"
    subprocess.run([*py, "extract-frames", str(bikes), str(carphone), "--short-side", "48", "--end", "1",
                    "-o", str(frames), "-q"], check=True)
    r = subprocess.run([*py, "extract-features", str(frames), "--backbone", "i3d", "--weights", weights["rgb"],
                        "--flow-weights", weights["flow"], "--crop-size", "48", "-o", str(tmp_path / "feats"),
                        "-q", "--json", "-"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    for vid, fps in (("bikes", 25.0), ("carphone_pristine", 29.97)):
        rec = store.read_features(tmp_path / "feats" / f"{vid}.features.h5")
        T = rec.num_frames
        n = (T - 16) // 4 + 1
        assert rec["features"].shape == (n, 2048) and np.isfinite(rec["features"]).all()
        assert rec["centers"].tolist() == [7 + 4 * i for i in range(n)]
        assert abs(rec.fps - fps) < 0.01 and rec.attrs["stream"] == "rgb+flow"
        assert rec["features"][:, :1024].std(axis=0).max() > 0  # the snippets differ
