"""Per-pixel training data for `vidseg train segment`: dataset layouts and the clip Dataset.

Three layouts are read; `open_segment_dataset` takes the one that `datasets/layouts/` detects
and the parts it resolves:

- **synthetic** (`vidseg synth -o DIR`): `DIR/videos/<id>.mp4` and `DIR/labels/<id>.labels.h5`.
  The mp4 is decoded with the same code as `extract-frames` (`video/decode.py`), so the
  network trains on exactly the pixels that `extract-frames` + `segment-3d` give it later
  (mp4v's compression included). Training: the `synth_train_*` videos; validation: the
  `synth_test_*` videos.
- **J-HMDB**: frame folders `Rename_Images/CLASS/VIDEO/00001.png` (or `frames/` in place
  of `Rename_Images/`, with or without the class folder), puppet masks
  `puppet_mask/CLASS/VIDEO/puppet_mask.mat` (the dataset's layout) or
  `puppet_mask/CLASS/VIDEO.mat`, and split files `splits/CLASS_test_splitN.txt`
  (`VIDEO.avi 1` = train, `2` = test; `split` picks N).
- **DAVIS 2016**: `JPEGImages/480p/SEQ/*.jpg` and `Annotations/480p/SEQ/*.png` (0/255,
  read as binary), split by `ImageSets/480p/{train,val}.txt` (or `ImageSets/2016/...`; a line
  names a sequence or a frame path of it).
Without split files every video trains and validation reuses them (a warning says so).

Targets: `"classes"` keeps the dataset's classes (background + actions: 3DFCN's
multinomial output); `"foreground"` merges every action into one foreground class
(Sep3D's segmentation; DAVIS is always foreground).

`SegmentClips` is the torch Dataset: per item, a clip of `clip_len` frames (0 = the whole
video), scaled by the preprocessing's `short_side` times a random scale jitter, randomly
cropped (or crop-padded) to `crop`, randomly mirrored, normalised with mean/std — the same
`preprocess` the checkpoint records and `segment-3d` applies — and its labels resized by
nearest neighbour. Pixels the crop padded carry the ignore label 255. Every random choice of
item i in epoch e comes from a generator seeded by (seed, e, i), so an epoch is a pure
function of (seed, e) and a resumed run repeats it exactly.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from vidseg_cli.datasets.layouts.detect import Layout, sniff
from vidseg_cli.datasets.layouts.parts import davis_split, jhmdb_frames, jhmdb_masks, jhmdb_splits
from vidseg_cli.errors import InputError
from vidseg_cli.models.preprocess import (
    C3D_PORT_PREPROCESS,
    Preprocess,
    normalize,
    pad_reflect,
    reflect_index,
    resize_frames,
    scale_for,
)

IGNORE = 255  # label of pixels that carry no supervision (crop padding)
TARGETS = ("classes", "foreground")
FOREGROUND_CLASSES = ["background", "foreground"]


@dataclass
class SegVideo:
    """One video of a segmentation dataset, loaded on demand."""

    video_id: str
    source: str  # the frames' file or folder, for messages
    loader: Callable[[], tuple[np.ndarray, np.ndarray]]  # -> (T x H x W x 3 uint8, T x H x W uint8)
    category: str | None = None  # the video's action (J-HMDB folder), if known
    _cache: tuple[np.ndarray, np.ndarray] | None = field(default=None, repr=False)

    def load(self, cache: bool = True) -> tuple[np.ndarray, np.ndarray]:
        if self._cache is not None:
            return self._cache
        frames, labels = self.loader()
        if frames.shape[:3] != labels.shape:
            raise InputError(
                self.source,
                f"{frames.shape[0]} frames of {frames.shape[2]}x{frames.shape[1]} but labels "
                f"of {labels.shape[0]} x {labels.shape[2]}x{labels.shape[1]} (T x WxH)",
            )
        if cache:
            self._cache = (frames, labels)
        return frames, labels


@dataclass
class SegmentDataset:
    layout: str  # "synthetic", "jhmdb" or "davis"
    root: str
    classes: list[str]  # index 0 = background
    train: list[SegVideo]
    val: list[SegVideo]
    warnings: list[str] = field(default_factory=list)


# -- decoding ---------------------------------------------------------------------------
def decode_frames(source: str | os.PathLike) -> np.ndarray:
    """All frames of a video file or frame folder as T x H x W x 3 RGB uint8, decoded as
    `extract-frames` decodes them (no resampling)."""
    from vidseg_cli.video.decode import iter_frames, probe

    info = probe(source)
    frames = [f for _, f in iter_frames(info)]
    if not frames:
        raise InputError(source, "no frames decoded")
    return np.stack(frames)  # T x H x W x 3


def to_target(labels: np.ndarray, target: str) -> np.ndarray:
    """Label maps (0 = background) as the training target `target` sees them: "classes"
    keeps them, "foreground" merges every action into class 1 (FOREGROUND_CLASSES)."""
    if target not in TARGETS:
        raise ValueError(f"target must be one of {', '.join(TARGETS)}, got {target!r}")
    labels = np.asarray(labels)
    return (labels > 0).astype(np.uint8) if target == "foreground" else labels.astype(np.uint8)


# -- synthetic ---------------------------------------------------------------------------
def _open_synth(layout: Layout, target: str) -> SegmentDataset:
    from vidseg_cli import store
    from vidseg_cli.datasets.masks import read_labels_file

    labels_dir, videos_dir = layout.masks, layout.videos
    files = sorted(labels_dir.glob("*.labels.h5"))
    if not files:
        raise InputError(labels_dir, "no <id>.labels.h5 files (expected a `vidseg synth` folder)")
    classes: list[str] | None = None
    train, val = [], []
    for f in files:
        vid = f.name[: -len(".labels.h5")]
        mp4 = videos_dir / f"{vid}.mp4"
        if not mp4.is_file():
            raise InputError(mp4, f"missing: the video of {f.name}")

        with store.open_record(f, "labels") as rec:
            names = list(rec.class_names or [])
        if classes is None:
            classes = names
        elif names != classes:  # a file of another set: its labels would mean other classes
            raise InputError(f, f"classes {names} differ from the set's {classes} ({files[0].name})")

        def loader(mp4=mp4, f=f, n=len(names)):
            lab = read_labels_file(f)
            top = int(lab.masks.max(initial=0))
            if top >= n:
                raise InputError(f, f"label {top} is not one of its {n} classes")
            return decode_frames(mp4), to_target(lab.masks, target)

        (val if "_test_" in vid else train).append(SegVideo(vid, str(mp4), loader))
    assert classes is not None
    warnings = []
    if not val:
        val, warnings = train, ["no synth_test_* videos: validating on the training videos"]
    out_classes = FOREGROUND_CLASSES if target == "foreground" else classes
    return SegmentDataset("synthetic", str(layout.path), out_classes, train, val, warnings)


# -- J-HMDB ------------------------------------------------------------------------------
def _open_jhmdb(layout: Layout, target: str, split: int) -> SegmentDataset:
    from vidseg_cli.datasets.masks import JHMDB_CLASS_NAMES, read_jhmdb_mat

    root = layout.path
    masks = jhmdb_masks(layout)
    videos, skipped = [], 0
    for vid, (cls, mat) in masks.items():
        folder = jhmdb_frames(layout, cls, vid)
        if folder is None:
            skipped += 1
            continue

        def loader(mat=mat, cls=cls, folder=folder):
            m = read_jhmdb_mat(mat, category=cls)
            frames = decode_frames(folder)
            n = min(len(frames), m.num_frames)  # J-HMDB: a few videos have one frame more
            return frames[:n], to_target(m.masks[:n], target)

        videos.append(SegVideo(vid, str(folder), loader, category=cls))
    if not videos:
        raise InputError(root, "no J-HMDB video has both frames (Rename_Images/CLASS/VIDEO/) and a puppet mask")
    warnings = [f"{skipped} puppet mask(s) without a frame folder were left out"] if skipped else []
    files = jhmdb_splits(layout).get(split)
    if files is None:
        train, val = videos, videos
        warnings.append(f"no J-HMDB split files (splits/*_split{split}.txt): validating on the training videos")
    else:
        train_ids = set().union(*(tr for tr, _ in files.values()))
        test_ids = set().union(*(te for _, te in files.values()))
        train = [v for v in videos if v.video_id in train_ids]
        val = [v for v in videos if v.video_id in test_ids]
    classes = FOREGROUND_CLASSES if target == "foreground" else list(JHMDB_CLASS_NAMES)
    return SegmentDataset("jhmdb", str(root), classes, train, val, warnings)


# -- DAVIS 2016 --------------------------------------------------------------------------
def _open_davis(layout: Layout) -> SegmentDataset:
    from vidseg_cli.datasets.masks import davis_sequences, read_davis_sequence

    videos = []
    for seq, ann in davis_sequences(layout.masks).items():
        folder = layout.frames / seq
        if not folder.is_dir():
            raise InputError(folder, f"missing: the frames of sequence '{seq}'")

        def loader(folder=folder, ann=ann):
            frames = decode_frames(folder)
            m = read_davis_sequence(ann, size=frames.shape[1:3])
            if m.num_frames != len(frames):
                raise InputError(ann, f"{m.num_frames} masks for {len(frames)} frames ({folder})")
            return frames, m.masks.astype(np.uint8)

        videos.append(SegVideo(seq, str(folder), loader))
    train_ids, val_ids = davis_split(layout, "train"), davis_split(layout, "val")
    warnings = []
    if train_ids is None:
        train, val = videos, videos
        warnings.append("no DAVIS ImageSets/480p/train.txt: validating on the training sequences")
    else:
        train = [v for v in videos if v.video_id in train_ids[1]]
        val = [v for v in videos if v.video_id in (val_ids[1] if val_ids else set())] or train
    return SegmentDataset("davis", str(layout.path), list(FOREGROUND_CLASSES), train, val, warnings)


def open_segment_dataset(path: str | os.PathLike, target: str = "classes", split: int = 1) -> SegmentDataset:
    """List the videos of the dataset at `path` (module docstring); its layout is the one
    `datasets/layouts/detect.py` finds."""
    if target not in TARGETS:
        raise ValueError(f"target must be one of {TARGETS}, got {target!r}")
    root = Path(path)
    if not root.is_dir():
        raise InputError(root, "no such dataset folder")
    layout = sniff(root)
    kind = layout.kind if layout is not None else None
    # Training reads a dataset's root, not one of its parts (a class folder, Annotations/).
    if kind == "synth":
        return _open_synth(layout, target)
    if kind == "jhmdb" and layout.masks == root / "puppet_mask":
        return _open_jhmdb(layout, target, split)
    if kind == "davis" and layout.frames is not None:
        return _open_davis(layout)
    raise InputError(
        root, "not a known segmentation dataset layout: expected a `vidseg synth` folder "
        "(videos/, labels/), J-HMDB (puppet_mask/, Rename_Images/, splits/) or DAVIS 2016 "
        "(JPEGImages/, Annotations/)"
    )


@dataclass
class ClipSpec:
    """How a training clip is cut and augmented (train/segment.py fills it from a recipe).
    Its `preprocess` is the record the checkpoint keeps and segment-3d applies: its
    `short_side` scales the frames, its mean/std normalise them, and its `context` is the
    mirrored, unlabelled surround of each clip (3DFCN: half a C3D window, so every labelled
    pixel is a window centre, as segment-3d mirrors the whole video)."""

    clip_len: int  # frames per clip; 0 = the whole video
    crop: int | None  # square crop side after scaling; None = the whole (scaled) frame
    # the C3D port's by default: no resize, 0..255 RGB with nothing subtracted
    preprocess: Preprocess = field(default_factory=lambda: Preprocess(
        tuple(C3D_PORT_PREPROCESS["mean"]), tuple(C3D_PORT_PREPROCESS["std"])))
    scale_jitter: tuple[float, float] = (1.0, 1.0)  # extra random scale factor range
    flip: bool = True  # random horizontal mirror
    min_input: tuple[int, int, int] = (1, 1, 1)  # the model's smallest T x H x W (padded up to it)
    action_bias: float = 0.0  # probability of centring a clip on a labelled (foreground) pixel


def _pad_to(x: np.ndarray, y: np.ndarray, h: int, w: int, fill: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Pad frames (T x H x W x 3) with `fill` and labels with IGNORE to at least h x w."""
    t, hh, ww = y.shape
    if hh >= h and ww >= w:
        return x, y
    H, W = max(h, hh), max(w, ww)
    xo = np.empty((t, H, W, 3), dtype=x.dtype)
    xo[:] = fill
    xo[:, :hh, :ww] = x
    yo = np.full((t, H, W), IGNORE, dtype=y.dtype)
    yo[:, :hh, :ww] = y
    return xo, yo


def sample_clip(
    frames: np.ndarray, labels: np.ndarray, spec: ClipSpec, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """One augmented clip: (T x h x w x 3 uint8, T x h x w uint8 with IGNORE padding)."""
    t_all, hh, ww = labels.shape
    fg = None
    if spec.action_bias > 0 and rng.random() < spec.action_bias:
        flat = labels.reshape(-1)
        idx = np.flatnonzero((flat > 0) & (flat != IGNORE))
        if idx.size:
            fg = np.unravel_index(idx[rng.integers(idx.size)], labels.shape)  # (t, y, x)
    # time
    n = t_all if spec.clip_len <= 0 else min(spec.clip_len, t_all)
    if fg is not None:
        lo, hi = max(0, fg[0] - n + 1), min(fg[0], t_all - n)
        t0 = int(rng.integers(lo, hi + 1))
    else:
        t0 = int(rng.integers(0, t_all - n + 1))
    pre = spec.preprocess
    ct, cy, cx = pre.padding
    if ct > 0:  # unlabelled context frames, mirrored past the video's ends
        ti = reflect_index(np.arange(t0 - ct, t0 + n + ct), t_all)
        x, y = frames[ti], labels[ti].copy()
        y[:ct] = IGNORE
        y[ct + n :] = IGNORE
    else:
        x, y = frames[t0 : t0 + n], labels[t0 : t0 + n]
    # scale: preprocessing times jitter
    f = scale_for(hh, ww, pre.short_side) * float(rng.uniform(*spec.scale_jitter))
    size = (max(1, int(round(hh * f))), max(1, int(round(ww * f))))
    x, y = resize_frames(x, size), resize_frames(y, size, nearest=True)
    # crop (padding with the mean colour, i.e. 0 after normalisation, and IGNORE labels)
    fill = np.clip(np.round(np.asarray(pre.mean)), 0, 255).astype(np.uint8)
    ch = cw = spec.crop if spec.crop else None
    if ch is not None:
        x, y = _pad_to(x, y, ch, cw, fill)
        H, W = y.shape[1:]
        if fg is not None:  # keep the chosen pixel inside the crop
            py, px = int(fg[1] * f), int(fg[2] * f)
            y0 = int(rng.integers(max(0, py - ch + 1), min(py, H - ch) + 1))
            x0 = int(rng.integers(max(0, px - cw + 1), min(px, W - cw) + 1))
        else:
            y0, x0 = int(rng.integers(0, H - ch + 1)), int(rng.integers(0, W - cw + 1))
        if cy or cx:  # the crop plus mirrored context, unlabelled
            x = pad_reflect(x, (0, cy, cx))[:, y0 : y0 + ch + 2 * cy, x0 : x0 + cw + 2 * cx]
            y = np.pad(y[:, y0 : y0 + ch, x0 : x0 + cw], ((0, 0), (cy, cy), (cx, cx)),
                       constant_values=IGNORE)
        else:
            x, y = x[:, y0 : y0 + ch, x0 : x0 + cw], y[:, y0 : y0 + ch, x0 : x0 + cw]
    elif cy or cx:
        x = pad_reflect(x, (0, cy, cx))
        y = np.pad(y, ((0, 0), (cy, cy), (cx, cx)), constant_values=IGNORE)
    mt, mh, mw = spec.min_input
    x, y = _pad_to(x, y, mh, mw, fill)
    if y.shape[0] < mt:  # too short a video: repeat nothing, pad with ignored frames
        pad = mt - y.shape[0]
        x = np.concatenate([x, np.broadcast_to(fill, (pad, *x.shape[1:3], 3))])
        y = np.concatenate([y, np.full((pad, *y.shape[1:]), IGNORE, dtype=y.dtype)])
    if spec.flip and rng.random() < 0.5:
        x, y = x[:, :, ::-1], y[:, :, ::-1]
    return np.ascontiguousarray(x), np.ascontiguousarray(y)


def _torch_dataset_base():
    import torch

    return torch.utils.data.Dataset


class SegmentClips(_torch_dataset_base()):
    """Augmented clips of segmentation videos: item i of epoch e is a pure function of
    (seed, e, i). `set_epoch(e)` before iterating; items are
    {"x": 3 x T x h x w float32 (normalised), "y": T x h x w int64 (IGNORE = no label)}."""

    def __init__(
        self,
        videos: Sequence[SegVideo],  # the training videos
        spec: ClipSpec,  # clip length, crop, augmentation, normalisation
        seed: int = 0,  # with the epoch and the item index, seeds every random choice
        clips_per_video: int = 1,  # items per video per epoch
        cache: bool = True,  # keep decoded videos in memory (set False for big datasets)
    ):
        self.videos, self.spec, self.seed = list(videos), spec, int(seed)
        self.clips_per_video, self.cache = int(clips_per_video), cache
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return len(self.videos) * self.clips_per_video

    def order(self, epoch: int) -> np.ndarray:
        """The epoch's item order: a permutation seeded by (seed, epoch)."""
        return np.random.default_rng([self.seed, epoch]).permutation(len(self))

    def __getitem__(self, i: int) -> dict:
        import torch

        rng = np.random.default_rng([self.seed, self.epoch, int(i)])
        frames, labels = self.videos[i % len(self.videos)].load(self.cache)
        x, y = sample_clip(frames, labels, self.spec, rng)
        pre = self.spec.preprocess
        return {"x": normalize(x, pre.mean, pre.std),  # 3 x T x h x w
                "y": torch.from_numpy(y.astype(np.int64))}  # T x h x w


def collate(items: Sequence[dict]) -> dict:
    """Stack items of equal size into a batch (B x 3 x T x h x w, B x T x h x w)."""
    import torch

    shapes = {tuple(it["y"].shape) for it in items}
    if len(shapes) > 1:
        raise ValueError(f"clips of different sizes cannot share a batch: {sorted(shapes)}; "
                         "use a fixed --clip-len and --crop, or --batch-size 1")
    return {"x": torch.stack([it["x"] for it in items]), "y": torch.stack([it["y"] for it in items])}
