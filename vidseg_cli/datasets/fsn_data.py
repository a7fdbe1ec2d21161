"""Training data for the FSN stages (FSN §3.5): frame targets from temporal ground truth,
frames and optical flow read on demand, and the samplers of `vidseg train backbone | fsn |
wfsn`.

- `frame_targets`: (T, K+1) per-frame targets. A frame inside segments of several classes
  (two actors acting at once) gets the uniform distribution over them, so Eq. 4's
  cross-entropy stays a cross-entropy; a frame inside none is background (index 0).
- `VideoFrames`: one video's frames file, open for the whole run, read frame by frame;
  RGB inputs are normalized with ImageNet's mean and std (torchvision's convention, which
  ImageNet weights expect and our backbones are trained with), flow inputs are TSN stacks
  (video/flow.py) of 5 x/y fields in [-1, 1], computed once per frame pair and cached.
- Samplers draw from a `numpy.random.Generator` seeded by (seed, epoch), so an epoch is a
  pure function of them and a resumed run repeats it (train/engine.py).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from vidseg_cli.errors import InputError
from vidseg_cli.models.preprocess import IMAGENET_RGB_MEAN, IMAGENET_RGB_STD

FLOW_LENGTH = 5  # TSN's temporal stream: 5 stacked flow fields (10 channels)
STREAMS = ("rgb", "flow")


# -- inputs ------------------------------------------------------------------------------
def expand_inputs(paths: Sequence[str | os.PathLike], kind: str) -> dict[str, str]:
    """video_id -> file for files of `kind` given as files or folders (a folder gives its
    `*.<kind>.h5` files, sorted). The id is the file's `video_id` attribute (DESIGN.md's
    pairing), so a file that cannot be read as `kind` (a newer schema, another kind) is an
    error naming it here, not a video the ground truth misses. A video given twice is an
    error naming both files."""
    from vidseg_cli.store.pairing import read_ids_and_kinds

    out: dict[str, str] = {}
    for p in map(Path, paths):
        if p.is_dir():
            files = sorted(p.glob(f"*.{kind}.h5"))
            if not files:
                raise InputError(p, f"folder holds no *.{kind}.h5 files")
        elif p.is_file():
            files = [p]
        else:
            raise InputError(p, "no such file or folder")
        for f in files:
            vid = read_ids_and_kinds([f], kind, strict=True)[0][0]
            if vid in out:
                raise InputError(f, f"a second {kind} file for video '{vid}' (first: {out[vid]})")
            out[vid] = str(f)
    return out


def select_videos(files: dict[str, str], gt, what: str) -> tuple[list[str], list[str]]:
    """The videos of the ground truth's subset that have a file, and a note per gap.

    Raises InputError when none has; a ground-truth video without a file, and a file of a
    video outside the subset, are notes (the caller prints them as warnings).
    """
    wanted = gt.videos
    have = [v for v in wanted if v in files]
    notes = []
    missing = [v for v in wanted if v not in files]
    if missing:
        notes.append(f"{len(missing)} {gt.subset} videos of {gt.path} have no {what} file "
                     f"(e.g. {missing[0]}); trained without them")
    if not have:
        raise InputError(gt.path, f"none of the {len(wanted)} '{gt.subset}' videos has a {what} "
                                  f"file among the inputs")
    return have, notes


# -- targets ------------------------------------------------------------------------------
def frame_targets(num_frames: int, fps: float, gt, video_id: str) -> np.ndarray:
    """(T, K+1) float32 per-frame targets (module docstring); frame t is at t / fps seconds,
    as `vidseg evaluate` places it by default."""
    from vidseg_cli.metrics.frame_ap import rasterize

    m = gt.video == video_id
    pos = rasterize(num_frames, fps, gt.segments[m], gt.label[m], len(gt.classes))  # T x K
    y = np.zeros((num_frames, len(gt.classes) + 1), np.float32)  # T x (K+1)
    y[:, 1:] = pos
    y[~pos.any(axis=1), 0] = 1.0
    return y / y.sum(axis=1, keepdims=True)


def video_labels(gt, video_id: str) -> np.ndarray:
    """(K,) float32 multi-hot video-level label: the classes that occur in the video (§3.4)."""
    y = np.zeros(len(gt.classes), np.float32)
    y[np.unique(gt.label[gt.video == video_id])] = 1.0
    return y


def dominant(targets: np.ndarray) -> int:
    """The action class with most frames in (T, K+1) targets (0 when there is none)."""
    mass = targets[:, 1:].sum(axis=0)
    return int(mass.argmax()) + 1 if mass.max(initial=0) > 0 else 0


# -- frames and flow ------------------------------------------------------------------------
class VideoFrames:
    """One frames file, open until `close()`; frames read on demand, flow cached per pair."""

    def __init__(self, path: str, flow_method: str = "tvl1", cache_flow: bool = True):
        from vidseg_cli import store

        self.path = path
        self._ctx = store.open_record(path, "frames")
        self._rec = self._ctx.__enter__()
        self.frames = self._rec["frames"]  # lazy (T, H, W, 3) uint8
        self.num_frames = self._rec.num_frames
        self.fps = self._rec.fps
        self.video_id = self._rec.video_id
        self.uid = self._rec.uid
        self.attrs = self._rec.attrs
        self.flow_method = flow_method
        self._flow = None
        self._cache: dict[int, np.ndarray] | None = {} if cache_flow else None

    def read(self, indices: Iterable[int]) -> np.ndarray:
        """(n, H, W, 3) uint8 frames in the given order (repeats allowed)."""
        idx = np.asarray(list(indices), np.int64)
        if idx.size == 0:
            return np.zeros((0, *self.frames.shape[1:]), np.uint8)
        uniq, inv = np.unique(idx, return_inverse=True)
        return self.frames[uniq.tolist()][inv]  # h5py wants increasing indices

    def flow_pair(self, t: int) -> np.ndarray:
        """(H, W, 2) float32 normalized flow from frame t to t+1."""
        from vidseg_cli.video.flow import FlowComputer, normalize_flow

        if self._cache is not None and t in self._cache:
            return self._cache[t].astype(np.float32)
        if self._flow is None:
            self._flow = FlowComputer(self.flow_method)
        a, b = self.read([t, t + 1])
        f = normalize_flow(self._flow(a, b))
        if self._cache is not None:
            self._cache[t] = f.astype(np.float16)
        return f

    def drop_flow_before(self, t: int) -> None:
        """Forget cached flow of pairs before frame t (a forward pass over a long video)."""
        if self._cache:
            for k in [k for k in self._cache if k < t]:
                del self._cache[k]

    def flow_stack(self, center: int, length: int = FLOW_LENGTH) -> np.ndarray:
        """(2*length, H, W) float32 TSN stack centred on `center` (video/flow.py's pairs)."""
        from vidseg_cli.video.flow import stack_pairs

        pairs = stack_pairs(center, self.num_frames, length)
        return np.concatenate([self.flow_pair(a).transpose(2, 0, 1) for a, _ in pairs], axis=0)

    def inputs(self, centers: Sequence[int], stream: str, length: int = FLOW_LENGTH) -> np.ndarray:
        """Backbone inputs for snippet centres: (n, C, H, W) float32 (C = 3 or 2*length)."""
        if stream == "rgb":
            return rgb_to_input(self.read(centers))
        return np.stack([self.flow_stack(int(c), length) for c in centers]) if len(centers) else \
            np.zeros((0, 2 * length, *self.frames.shape[1:3]), np.float32)

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self._ctx.__exit__(None, None, None)


def rgb_to_input(frames: np.ndarray) -> np.ndarray:
    """(n, H, W, 3) uint8 RGB -> (n, 3, H, W) float32, ImageNet-normalized."""
    x = (frames.astype(np.float32) - IMAGENET_RGB_MEAN) / IMAGENET_RGB_STD  # n x H x W x 3
    return np.ascontiguousarray(x.transpose(0, 3, 1, 2))


def flip_inputs(x: np.ndarray, stream: str) -> np.ndarray:
    """Horizontal flip of (n, C, H, W) inputs; a flipped flow field's x component changes
    sign (TSN's flow augmentation), so the even channels (x0, x1, ...) are negated."""
    x = x[..., ::-1].copy()
    if stream == "flow":
        x[:, 0::2] *= -1
    return x


# -- samplers -------------------------------------------------------------------------------
def balanced_choice(rng: np.random.Generator, groups: Sequence[int], n: int) -> np.ndarray:
    """n indices into `groups` (a class per item): a class drawn uniformly among the classes
    present, then an item of it uniformly (FSN §3.5's class-balanced resampling)."""
    groups = np.asarray(groups)
    classes = np.unique(groups)
    members = [np.flatnonzero(groups == c) for c in classes]
    pick = rng.integers(len(classes), size=n)
    return np.array([members[k][rng.integers(len(members[k]))] for k in pick], np.int64)


@dataclass
class Window:
    """A training clip of consecutive snippets of one video (FSN §3.5)."""

    video: int  # index into the run's video list
    first: int  # first snippet
    frames: tuple[int, int]  # [start, end) frames the clip covers
    label: int  # its dominant action class (for balancing)


def clip_windows(
    centers: np.ndarray,  # (N,) snippet centre frames of the video
    snippet: int,  # L frames per snippet
    targets: np.ndarray,  # (T, K+1) frame targets
    num_snippets: int,  # snippets per clip (§3.5: 7, i.e. T = 35 frames for L = 5)
    min_action_frames: int,  # keep clips with at least this many action frames (§3.5: 5)
    video: int,
    step: int = 1,  # window stride in snippets
) -> list[Window]:
    """Every window of `num_snippets` consecutive snippets (stride `step`) with enough action
    frames. A video shorter than one window gives one window of all its snippets."""
    n = len(centers)
    if n == 0:
        return []
    half = (snippet - 1) // 2
    out = []
    starts = range(0, max(n - num_snippets, 0) + 1, step)
    for s in starts:
        e = min(s + num_snippets, n)
        f0 = int(centers[s]) - half
        f1 = min(int(centers[e - 1]) - half + snippet, len(targets))
        f0 = max(f0, 0)
        y = targets[f0:f1]
        action = int((y[:, 0] < 1).sum())
        if action >= min_action_frames:
            out.append(Window(video, s, (f0, f1), dominant(y)))
    return out


@dataclass
class FeatureVideo:
    """One features file in memory, with its frame targets."""

    path: str
    video_id: str
    features: np.ndarray  # (N, D) float32
    centers: np.ndarray  # (N,) int64
    num_frames: int
    fps: float
    attrs: dict = field(default_factory=dict)
    targets: np.ndarray | None = None  # (T, K+1)
    labels: np.ndarray | None = None  # (K,) video-level


def load_feature_videos(files: dict[str, str], ids: Sequence[str]) -> list[FeatureVideo]:
    """Read features files, checking that they share backbone, stream, snippet and size
    and hold only finite numbers (a NaN would surface as a diverged loss naming no file)."""
    from vidseg_cli import store

    out: list[FeatureVideo] = []
    ref = None
    for vid in ids:
        rec = store.read_features(files[vid])
        a = rec.attrs
        sig = feature_signature(a, rec["features"].shape[1])
        if ref is None:
            ref = (sig, files[vid])
        elif sig != ref[0]:
            diff = {k: (ref[0][k], sig[k]) for k in sig if sig[k] != ref[0].get(k)}
            raise InputError(files[vid], f"features differ from {ref[1]}'s: "
                             + ", ".join(f"{k} {b!r} (not {r!r})" for k, (r, b) in diff.items()))
        feats = np.asarray(rec["features"], np.float32)
        centers = np.asarray(rec["centers"], np.int64)
        _check_finite(files[vid], feats, centers)
        out.append(FeatureVideo(files[vid], vid, feats, centers, rec.num_frames, rec.fps, a))
    return out


def _check_finite(path: str, feats: np.ndarray, centers: np.ndarray) -> None:
    bad = ~np.isfinite(feats).all(axis=1)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        value = feats[i][~np.isfinite(feats[i])][0]
        raise InputError(path, f"snippet {i} (centre frame {int(centers[i])}) holds {value} "
                               f"({int(bad.sum())} of {len(feats)} snippets are not finite); "
                               "features must be finite numbers")


def feature_signature(attrs: dict, dim: int) -> dict:
    """What must match between features used together: backbone, stream, snippet, size."""
    return {"backbone": str(attrs.get("backbone", "?")), "stream": str(attrs.get("stream", "?")),
            "snippet": int(attrs.get("snippet", 0)), "feature_dim": int(dim)}
