"""vidseg synth: the synthetic set's files agree with each other, generation is
deterministic, and the action class is in the motion, not in any single frame."""

from __future__ import annotations

import colorsys
import dataclasses
import json
import re
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from vidseg_cli import store
from vidseg_cli.datasets.synth.config import MOTIONS, SYNTH_VERSION, SynthConfig
from vidseg_cli.datasets.synth.render import render_frame
from vidseg_cli.datasets.synth.sample import (
    VideoSpec,
    class_look,
    sample_actor,
    sample_background,
    sample_motion,
    sample_shake,
    sample_video,
)

# A tiny set: five short videos, a second or two to make.
SMALL = ["--size", "64x48", "--duration", "6,8", "--action-length", "2,3", "--train", "3",
         "--test", "2", "--seed", "5", "--quiet"]


@pytest.fixture(scope="module")
def small_set(tmp_path_factory) -> Path:
    from click.testing import CliRunner

    from vidseg_cli.cli.main import cli as group

    out = tmp_path_factory.mktemp("synth") / "set"
    res = CliRunner().invoke(group, ["synth", "-o", str(out), *SMALL], catch_exceptions=False)
    assert res.exit_code == 0, res.output
    return out


def _gt(folder: Path) -> dict:
    return json.loads((folder / "gt.json").read_text())


def _frames_of(seg: list[float], fps: float) -> tuple[int, int]:
    return int(round(seg[0] * fps)), int(round(seg[1] * fps))


# -- the files of a set ----------------------------------------------------------------
def test_layout_mp4_and_labels(small_set):
    gt = _gt(small_set)
    ids = sorted(gt["database"])
    assert ids == ["synth_test_0000", "synth_test_0001", "synth_train_0000", "synth_train_0001",
                   "synth_train_0002"]
    assert gt["version"] == f"vidseg-synth-{SYNTH_VERSION}"
    assert gt["taxonomy"] == ["SlideHorizontal", "BounceVertical", "Orbit", "Pulse"]
    for vid, entry in gt["database"].items():
        assert entry["subset"] == ("training" if "_train_" in vid else "testing")
        T = entry["num_frames"]
        assert 60 <= T <= 80 and entry["fps"] == 10.0 and entry["duration"] == T / 10
        cap = cv2.VideoCapture(str(small_set / "videos" / f"{vid}.mp4"))
        n = 0
        while True:
            ok, bgr = cap.read()
            if not ok:
                break
            assert bgr.shape == (48, 64, 3)
            n += 1
        cap.release()
        assert n == T
        rec = store.read_labels(small_set / "labels" / f"{vid}.labels.h5")
        assert rec["labels"].shape == (T, 48, 64) and rec["labels"].dtype == np.uint8
        assert rec.video_id == vid and rec.fps == 10.0 and rec.num_frames == T
        assert rec.class_names == ["background", *gt["taxonomy"]]
        assert rec.attrs["synth_version"] == SYNTH_VERSION


def test_segments_agree_with_pixel_labels(small_set):
    gt = _gt(small_set)
    n_actions = 0
    for vid, entry in gt["database"].items():
        labels = store.read_labels(small_set / "labels" / f"{vid}.labels.h5")["labels"]  # (T,H,W)
        T = labels.shape[0]
        any_action = np.zeros(T, bool)
        for c, name in enumerate(gt["taxonomy"], 1):
            want = np.zeros(T, bool)
            for a in entry["annotations"]:
                if a["label"] == name:
                    s, e = _frames_of(a["segment"], entry["fps"])
                    assert 0 <= s < e <= T and e - s >= 20   # --action-length 2,3 at 10 fps
                    want[s:e] = True
                    n_actions += 1
            has = (labels == c).any(axis=(1, 2))                    # (T,)
            np.testing.assert_array_equal(has, want, err_msg=f"{vid} class {name}")
            any_action |= want
        assert not any_action.all(), f"{vid} has no background-only frames: not untrimmed"
        assert labels.max() <= len(gt["taxonomy"])
    assert n_actions >= 5


def test_thumos_files_agree_with_gt_json(small_set):
    gt = _gt(small_set)
    ann = small_set / "annotations"
    lines = (ann / "detclasslist.txt").read_text().splitlines()
    assert lines == [f"{i} {n}" for i, n in enumerate(gt["taxonomy"], 1)]
    from_txt, from_json = [], []
    for subset, long in (("train", "training"), ("test", "testing")):
        for name in gt["taxonomy"]:
            for line in (ann / f"{name}_{subset}.txt").read_text().splitlines():
                assert re.fullmatch(r"synth_\w+_\d{4}  \d+(\.\d+)? \d+(\.\d+)?", line), line
                vid, s, e = line.split()
                assert gt["database"][vid]["subset"] == long
                from_txt.append((vid, name, float(s), float(e)))
    for vid, entry in gt["database"].items():
        for a in entry["annotations"]:
            from_json.append((vid, a["label"], *a["segment"]))
    assert sorted(from_txt) == sorted(from_json)


def test_synth_json_records_everything(small_set):
    p = json.loads((small_set / "synth.json").read_text())
    assert p["synth_version"] == SYNTH_VERSION and p["seed"] == 5
    assert p["train"] == 3 and p["test"] == 2 and p["config"]["appearance"] == "random"
    cfg = SynthConfig(**{k: tuple(v) if isinstance(v, list) else v for k, v in p["config"].items()})
    assert (cfg.width, cfg.height, cfg.duration, cfg.action_length) == (64, 48, (6.0, 8.0), (2.0, 3.0))
    # The record is enough to make the same videos again.
    again = sample_video(cfg, p["seed"], "train", 1)
    labels = store.read_labels(small_set / "labels" / "synth_train_0001.labels.h5")["labels"]
    for t in (0, again.num_frames // 2, again.num_frames - 1):
        np.testing.assert_array_equal(render_frame(again, t)[1], labels[t])


# -- determinism ----------------------------------------------------------------------
def test_same_seed_same_set_whatever_jobs(cli, small_set, tmp_path):
    out = tmp_path / "again"
    res = cli("synth", "-o", out, *SMALL, "--jobs", "2")
    assert res.exit_code == 0, res.output
    assert (out / "gt.json").read_bytes() == (small_set / "gt.json").read_bytes()
    for f in sorted((small_set / "annotations").iterdir()):
        assert (out / "annotations" / f.name).read_bytes() == f.read_bytes()
    for vid in _gt(small_set)["database"]:
        a = store.read_labels(small_set / "labels" / f"{vid}.labels.h5")["labels"]
        b = store.read_labels(out / "labels" / f"{vid}.labels.h5")["labels"]
        assert a.tobytes() == b.tobytes()
        # The mp4v encoder is deterministic too.
        assert (out / "videos" / f"{vid}.mp4").read_bytes() == (small_set / "videos" / f"{vid}.mp4").read_bytes()


def test_one_class_per_video():
    # --classes-per-video 1: every action of a video is of one class, drawn per video.
    cfg = SynthConfig(width=64, height=48, duration=(15.0, 20.0), action_length=(2.0, 3.0),
                          classes_per_video=1)
    seen = set()
    for i in range(12):
        labels = {c for c, _, _ in sample_video(cfg, 5, "train", i).segments}
        assert len(labels) == 1
        seen |= labels
    assert len(seen) >= 3
    two = dataclasses.replace(cfg, classes_per_video=2)
    counts = [len({c for c, _, _ in sample_video(two, 5, "train", i).segments}) for i in range(12)]
    assert max(counts) == 2 and min(counts) >= 1


def test_different_seed_different_set():
    cfg = SynthConfig(width=64, height=48, duration=(6.0, 8.0), action_length=(2.0, 3.0))
    a, b, a2 = (sample_video(cfg, s, "train", 0) for s in (5, 6, 5))
    assert a.segments == a2.segments
    np.testing.assert_array_equal(render_frame(a, 10)[0], render_frame(a2, 10)[0])
    assert a.segments != b.segments or a.num_frames != b.num_frames
    assert not np.array_equal(render_frame(a, 10)[0], render_frame(b, 10)[0])
    # Videos do not depend on each other: test video 0 is not train video 0.
    assert sample_video(cfg, 5, "test", 0).segments != a.segments


# -- the CLI's refusals ----------------------------------------------------------------
def _vidseg(*args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "vidseg_cli.cli.main", *map(str, args)],
                          capture_output=True, text=True, timeout=60)


def test_non_empty_folder_refused_then_overwritten(tmp_path):
    out = tmp_path / "set"
    out.mkdir()
    (out / "notes.txt").write_text("mine\n")
    res = _vidseg("synth", "-o", out, *SMALL)
    assert res.returncode == 2
    assert res.stderr.splitlines() == [
        f"vidseg synth: error: {out}: folder is not empty (use --overwrite to replace a synthetic set there)"
    ]
    assert sorted(p.name for p in out.iterdir()) == ["notes.txt"]
    # --overwrite writes the set; a smaller set replaces a bigger one without leftovers.
    small = [a if a != "3" else "2" for a in SMALL]          # --train 2
    assert _vidseg("synth", "-o", out, *SMALL, "--overwrite").returncode == 0
    res = _vidseg("synth", "-o", out, *small, "--overwrite")
    assert res.returncode == 0, res.stderr
    assert (out / "notes.txt").exists()
    assert sorted(p.stem for p in (out / "videos").iterdir()) == sorted(_gt(out)["database"])
    assert len(list((out / "labels").iterdir())) == 4


@pytest.mark.parametrize("args, needle", [
    (["--size", "65x48"], "even"),
    (["--duration", "2"], "make duration >= 3.4"),
    (["--duration", "5,1"], "MIN <= MAX"),
    (["--train", "0", "--test", "0"], "nothing to generate"),
    (["--appearance", "shiny"], "shiny"),
    (["--speed", "0"], "--speed"),
    (["--classes-per-video", "5"], "classes_per_video must be 0 (all) .. num_classes (4), got 5"),
])
def test_bad_options_exit_2(cli, tmp_path, args, needle):
    res = cli("synth", "-o", tmp_path / "x", *args)
    assert res.exit_code == 2 and needle in res.stderr


def test_videos_without_actions_are_a_warning_saying_why(cli, tmp_path):
    res = cli("synth", "-o", tmp_path / "x", "--train", "4", "--test", "0", "--duration", "6",
              "--size", "32x32", "-q")
    assert res.exit_code == 0
    assert res.stderr == ("vidseg synth: warning: 3 of 4 videos hold no action (e.g. synth_train_0000): "
                          "videos of 6-6 s leave too little room for actions of 2.4-5 s; a --duration "
                          "of at least 12 s gives every video one (or shorten --action-length)\n")
    res = cli("synth", "-o", tmp_path / "y", "--train", "4", "--test", "0", "--duration", "12",
              "--size", "32x32", "-q")
    assert res.exit_code == 0 and res.stderr == ""


# -- semantics of actors ---------------------------------------------------------------
def test_patterns_start_at_rest_and_differ():
    rng = np.random.default_rng(0)
    cfg = SynthConfig(num_classes=len(MOTIONS))
    t = np.arange(0, 2.0, 0.1)
    paths = []
    for name in MOTIONS:
        m = sample_motion(rng, name, cfg, 2.0, 10.0)
        dx, dy, sc, da = m.offsets(t)
        assert (dx[0], dy[0], sc[0], da[0]) == (0, 0, 1, 0), name
        paths.append(np.stack([dx, dy, sc, da]))
    for i in range(len(paths)):
        for j in range(i):
            assert not np.allclose(paths[i], paths[j])


def test_still_actor_is_background_acting_actor_is_labelled():
    cfg = SynthConfig()
    for i in range(50):
        spec = sample_video(cfg, 0, "train", i)
        waiting = [a for a in spec.actors if a.label and a.appear < a.start]
        if waiting:
            break
    a = waiting[0]
    x, y, _, _ = (float(v) for v in a.poses(np.asarray(a.appear), cfg.fps))
    sx, sy = spec.shake[a.appear]
    xi, yi = int(round(x - sx)), int(round(y - sy))
    rgb, labels = render_frame(spec, a.appear)
    others = tuple(o for o in spec.actors if o is not a)
    rgb_without, _ = render_frame(dataclasses.replace(spec, actors=others), a.appear)
    near = np.s_[yi - 1 : yi + 2, xi - 1 : xi + 2]
    assert np.abs(rgb[near].astype(int) - rgb_without[near]).max() > 0      # visible...
    assert labels[yi, xi] == 0                                                # ...but background
    _, labels = render_frame(spec, a.start)
    assert labels[yi, xi] == a.label


# -- the class is in the motion ---------------------------------------------------------
CROP, GRID = 48, 12      # actor-centred crop (px) and the grid it is averaged down to


def _crop(img: np.ndarray, cx: float, cy: float) -> np.ndarray:
    """CROP x CROP around (cx, cy), edges replicated: (CROP, CROP[, 3]) float32."""
    return cv2.getRectSubPix(img.astype(np.float32), (CROP, CROP), (float(cx), float(cy)))


def _down(img: np.ndarray) -> np.ndarray:
    k = CROP // GRID
    return img.reshape(GRID, k, GRID, k, *img.shape[2:]).mean(axis=(1, 3)).ravel()


def _trimmed_features(n: int, length: int, seed: int, colour_by_class: bool = False,
                      appearance: str = "random"):
    """Trimmed clips of one actor acting, cut at a random moment of its action, rendered by
    the library with its backgrounds, camera shake and noise. Two views of each clip, made
    alike: one frame's RGB crop centred on the actor, and the |differences| of consecutive
    frames, cropped around the actor's mean position. Returns (single, diffs, classes)."""
    cfg = SynthConfig(width=96, height=72, num_classes=4, appearance=appearance)
    palette = [(220, 40, 40), (40, 200, 40), (40, 40, 220), (220, 220, 40)]
    single, diffs, classes = [], [], []
    for i in range(n):
        rng = np.random.default_rng([seed, i])
        label = i % cfg.num_classes + 1
        T = int(rng.integers(24, 40))
        actor = None
        while actor is None:
            actor = sample_actor(rng, cfg, label, 0, 0, T, T)
        if colour_by_class:
            rgb = palette[label - 1]
            look = dataclasses.replace(actor.appearance, color=rgb,
                                       color2=tuple(0.6 * c for c in rgb))
            actor = dataclasses.replace(actor, appearance=look)
        spec = VideoSpec("clip", cfg, T, sample_background(rng, cfg),
                             sample_shake(rng, cfg, T), (actor,), int(rng.integers(2**62)))
        t0 = int(rng.integers(0, T - length + 1))
        clip = [render_frame(spec, t) for t in range(t0, t0 + length)]
        centres = [(xs.mean(), ys.mean()) for ys, xs in (np.nonzero(lab) for _, lab in clip)]
        k = int(rng.integers(length))
        single.append(_down(_crop(clip[k][0], *centres[k])))                            # (G*G*3,)
        mx, my = np.mean(centres, axis=0)
        frames = [_crop(rgb, mx, my) for rgb, _ in clip]                                 # L x (C,C,3)
        diffs.append(np.concatenate(
            [_down(np.abs(b - a).sum(-1)) for a, b in zip(frames, frames[1:])]))         # ((L-1)*G*G,)
        classes.append(label - 1)
    return np.array(single), np.array(diffs), np.array(classes)


def _softmax_regression_accuracy(X: np.ndarray, y: np.ndarray, k: int, train: int) -> float:
    """Held-out accuracy of a small linear classifier trained on the first `train` rows:
    standardise, project on the top 64 principal components, then L2-regularised softmax
    regression by full-batch gradient descent. (The projection keeps every matrix product
    small: multithreaded BLAS on a busy machine would make 300 large ones take seconds.)"""
    mu, sd = X[:train].mean(0), X[:train].std(0) + 1e-6
    Z = (X - mu) / sd                                       # (N, D)
    _, _, vt = np.linalg.svd(Z[:train], full_matrices=False)
    Z = Z @ vt[:64].T                                       # (N, 64)
    Z /= Z[:train].std(0)
    W, b = np.zeros((Z.shape[1], k)), np.zeros(k)
    onehot = np.eye(k)[y[:train]]                           # (n, K)
    for _ in range(300):
        s = Z[:train] @ W + b
        p = np.exp(s - s.max(1, keepdims=True))
        p /= p.sum(1, keepdims=True)                        # (n, K)
        g = (p - onehot) / train
        W -= 0.5 * (Z[:train].T @ g + 1e-2 * W)
        b -= 0.5 * g.sum(0)
    return float(((Z[train:] @ W + b).argmax(1) == y[train:]).mean())


def test_motion_defines_the_class_not_a_single_frame():
    n, train = 400, 268
    single, diffs, y = _trimmed_features(n, length=12, seed=11)
    acc_single = _softmax_regression_accuracy(single, y, 4, train)
    acc_motion = _softmax_regression_accuracy(diffs, y, 4, train)
    assert acc_single < 0.25 + 0.15, f"a single frame gives the class away: {acc_single:.2f}"
    assert acc_motion > 0.8, f"frame differences should tell classes apart: {acc_motion:.2f}"


def test_single_frame_probe_would_catch_a_colour_leak():
    # The same probe on clips whose colour follows the class must see it, or the test
    # above would prove nothing.
    n, train = 160, 108
    single, _, y = _trimmed_features(n, length=2, seed=12, colour_by_class=True)
    assert _softmax_regression_accuracy(single, y, 4, train) > 0.8


def test_class_appearance_shows_the_class_in_a_single_frame():
    # --appearance class: the look (shape, hue band, texture) follows the class, so the
    # same single-frame probe that stays at chance on the default set finds it.
    n, train = 160, 108
    single, _, y = _trimmed_features(n, length=2, seed=12, appearance="class")
    acc = _softmax_regression_accuracy(single, y, 4, train)
    assert acc > 0.8, f"class appearance should show in one frame: {acc:.2f}"


def _hue_sector(rgb) -> tuple[float, float, float, int]:
    """(h, s, v) of an RGB colour and which of the 2K quarter-margined sectors its hue is
    central in: 2(k-1) for class k's band, odd for the bands between, -1 for a margin."""
    h, s, v = colorsys.rgb_to_hsv(*(c / 255 for c in rgb))
    x = (h * 2 * 4 + 0.5) % 8                   # K = 4: sector width 1/8, class 1 centred on 0
    sector, pos = divmod(x, 1.0)
    return h, s, v, int(sector) if 0.25 - 1e-6 <= pos <= 0.75 + 1e-6 else -1


def test_class_appearance_changes_only_the_look():
    # The generator draws the same numbers for both appearances: same timeline, sizes and
    # placements (so the same ground truth). An actor takes its class's shape, texture and
    # hue band, vividly; distractors keep their shapes and, like the backgrounds, take hues
    # between the bands.
    base = SynthConfig(width=64, height=48, duration=(6.0, 8.0), action_length=(2.0, 3.0))
    cls = dataclasses.replace(base, appearance="class")
    looks, distractors = {}, 0
    for i in range(8):
        a, b = sample_video(base, 5, "train", i), sample_video(cls, 5, "train", i)
        assert a.segments == b.segments and a.num_frames == b.num_frames
        for x, y in zip(a.actors, b.actors):
            assert (x.anchor, x.appearance.radius, x.motion) == (y.anchor, y.appearance.radius, y.motion)
            _, s, v, sector = _hue_sector(y.appearance.color)
            _, _, _, sector2 = _hue_sector(y.appearance.color2)
            if y.label == 0:
                distractors += 1
                assert y.appearance.shape == x.appearance.shape and sector % 2 == 1 and sector2 == sector
                continue
            assert (y.appearance.shape, y.appearance.texture) == class_look(y.label)
            assert sector == sector2 == 2 * (y.label - 1)
            assert s >= 0.6 - 1e-6 and v >= 0.55 - 1e-6
            looks.setdefault(y.label, set()).add((y.appearance.shape, y.appearance.texture))
        # the background's two colours: between the bands too (muted, but hued)
        p = cls.pad
        bg = b.background[p:-p or None, p:-p or None] if p else b.background
        hues = {_hue_sector(c)[3] for c in bg.reshape(-1, 3)[::97] if _hue_sector(c)[1] > 0.15}
        assert not hues & {0, 2, 4, 6}, hues
    assert len(looks) == 4 and all(len(v) == 1 for v in looks.values()) and distractors >= 2
    with pytest.raises(ValueError, match="appearance"):
        SynthConfig(appearance="shiny")


def _mean_step_iou(spec) -> float:
    """Mean IoU of the action masks of consecutive frames: how far actors move per frame."""
    ious, prev = [], None
    for t in range(spec.num_frames):
        _, labels = render_frame(spec, t)
        fg = labels > 0
        if prev is not None and (fg | prev).any():
            ious.append((fg & prev).sum() / (fg | prev).sum())
        prev = fg
    return float(np.mean(ious))


def test_speed_slows_motion_on_the_same_path():
    # --speed s: an actor's pose at frame start + k is its pose at full speed after s * k
    # frames' worth of seconds (the same path, covered more slowly).
    base = SynthConfig(width=64, height=48, duration=(6.0, 8.0), action_length=(2.0, 3.0),
                           jitter=0.0)
    slow = dataclasses.replace(base, speed=0.25)
    a, b = sample_video(base, 3, "train", 0), sample_video(slow, 3, "train", 0)
    actor = next(x for x in a.actors if x.motion is not None)
    k = np.arange(actor.start, actor.end, 4)
    fast_frames = actor.start + (k - actor.start) // 4
    full = actor.poses(fast_frames, base.fps)
    slowed = actor.poses(k, base.fps, 0.25)
    for u, v in zip(full, slowed):
        np.testing.assert_allclose(u, v)
    # and the masks of consecutive frames overlap more than at full speed
    assert _mean_step_iou(b) > _mean_step_iou(a) + 0.1
    with pytest.raises(ValueError, match="speed must be positive"):
        SynthConfig(speed=0.0)
