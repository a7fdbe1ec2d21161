"""S-CNN's data: how a window becomes a network input (S-CNN §3.1) and how training
segments are labelled and sampled (S-CNN §3.2).

Input (§3.1). Every frame is resized to 171 x 128 (W x H) and a 112 x 112 crop is taken
from its centre; a window [start, end) becomes the 16 frames sampled uniformly from it
(`stages.windows.sample_clip_indices`). `WindowSpec` (models/preprocess.py) holds these sizes; a CPU-sized network
uses a smaller `frame_size`/`crop_size`, recorded in its checkpoint so that propose and
localize prepare frames exactly as training did.

Training data (§3.2). Windows of every untrimmed training video are labelled by their
highest temporal IoU with a ground-truth instance: > 0.7 positive (that instance's class),
< 0.3 background, in between ignored; a ground truth that no window overlaps by more than
0.7 makes its best-overlapping window positive if that IoU is > 0.5. Trimmed videos give
one positive segment each (16 frames sampled over the whole clip, overlap v = 1).
Background windows are resampled every epoch: N_b = N_T + N_U for the proposal network,
(N_T + N_U) / K for classification and localization.

Frames for training come from a cache: each video is decoded once, resized to the
spec's `frame_size`, and kept as a raw uint8 file that is memory-mapped
(frames x H x W x 3 bytes per video).
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from vidseg_cli.core.fs import atomic_write, write_text
from vidseg_cli.errors import InputError
from vidseg_cli.geometry import tiou_matrix
from vidseg_cli.models.preprocess import WindowSpec, resize_frames
from vidseg_cli.stages.windows import (
    SCNN_LENGTHS,
    SCNN_OVERLAP,
    multiscale_windows,
    sample_clip_indices,
)

# S-CNN §3.2 overlap rules.
POSITIVE_IOU = 0.7  # highest IoU above this: positive
BACKGROUND_IOU = 0.3  # highest IoU below this: background
RESCUE_IOU = 0.5  # a GT's best window is positive above this when no window passes 0.7

VIDEO_SUFFIXES = (".mp4", ".avi", ".mkv", ".mov", ".webm", ".m4v", ".mpg", ".mpeg")


# -- the network input (§3.1) --------------------------------------------------------------
def clip_batch(frames: np.ndarray, indices: np.ndarray, spec: WindowSpec,
               offsets: np.ndarray | None = None, flips: np.ndarray | None = None) -> np.ndarray:
    """Gather clips from resized frames: frames (T, h, w, 3) at spec.frame_size, indices
    (B, 16) -> (B, 3, 16, ch, cw) uint8. Centre crops unless `offsets` (B, 2) gives each
    clip's (y0, x0); `flips` (B,) mirrors clips horizontally (training only)."""
    ch, cw = spec.crop_size
    b, t = indices.shape
    out = np.empty((b, t, ch, cw, 3), np.uint8)  # B x T x H x W x 3
    y0, x0 = spec.crop_offset()
    for i in range(b):
        if offsets is not None:
            y0, x0 = offsets[i]
        clip = frames[indices[i], y0:y0 + ch, x0:x0 + cw]
        out[i] = clip[:, :, ::-1] if flips is not None and flips[i] else clip
    return np.ascontiguousarray(out.transpose(0, 4, 1, 2, 3))  # B x 3 x T x H x W


class ClipReader:
    """Turns windows of one video into network inputs, preprocessing each frame once.

    `frames` is anything sliceable as (T, H, W, 3) uint8 (an h5py dataset of a frames file,
    a numpy array); frames are read in contiguous blocks and resized on demand. Windows
    must come in non-decreasing start order (as `ordered()` gives): frames before the
    current window's start are dropped, so memory is bounded by the longest window plus a
    batch, not by the video.
    """

    def __init__(self, frames, spec: WindowSpec, read_block: int = 64):
        self.frames, self.spec, self.read_block = frames, spec, read_block
        self.num_frames = int(frames.shape[0])
        self.lo = 0  # first frame held in buf
        self.buf = np.zeros((0, spec.frame_size[1], spec.frame_size[0], 3), np.uint8)

    @staticmethod
    def ordered(windows: np.ndarray) -> np.ndarray:
        """Indices that sort windows by (start, end): the order `clips` needs."""
        windows = np.asarray(windows).reshape(-1, 2)
        return np.lexsort((windows[:, 1], windows[:, 0]))

    def _hold(self, lo: int, hi: int) -> None:
        if lo < self.lo:
            raise ValueError("ClipReader: windows must come in non-decreasing start order")
        drop = min(lo - self.lo, len(self.buf))
        self.buf, self.lo = self.buf[drop:], self.lo + drop
        end = self.lo + len(self.buf)
        if hi > end:
            stop = min(self.num_frames, max(hi, end + self.read_block))
            new = resize_frames(np.asarray(self.frames[end:stop]), self.spec.frame_hw)
            self.buf = np.concatenate([self.buf, new]) if len(self.buf) else new

    def clips(self, windows: np.ndarray) -> np.ndarray:
        """(B, 2) windows, in start order -> (B, 3, 16, ch, cw) uint8 centre-cropped clips."""
        windows = np.asarray(windows, np.int64).reshape(-1, 2)
        idx = np.stack([sample_clip_indices(int(s), int(e), self.spec.clip_frames) for s, e in windows])
        idx = np.clip(idx, 0, self.num_frames - 1)  # B x 16
        self._hold(int(idx.min()), int(idx.max()) + 1)
        return clip_batch(self.buf, idx - self.lo, self.spec)


# -- labelling windows (§3.2) ---------------------------------------------------------------
def label_windows(windows: np.ndarray, gt_segments: np.ndarray, gt_labels: np.ndarray,
                  ) -> tuple[np.ndarray, np.ndarray]:
    """S-CNN §3.2 labels of one untrimmed video's windows.

    windows (N, 2) and gt_segments (M, 2) in frames, gt_labels (M,) in 1..K. Returns
    labels (N,) int64 (class for positives, 0 background, -1 ignored) and overlap (N,)
    float64: the IoU with the associated instance for positives (the localization
    network's v), 1 for background (v does not enter Eq. (3) there).
    """
    n = len(windows)
    labels = np.full(n, -1, np.int64)
    overlap = np.ones(n, np.float64)
    if len(gt_segments) == 0:
        labels[:] = 0
        return labels, overlap
    iou = tiou_matrix(windows, gt_segments)  # N x M
    best_gt = iou.argmax(1)
    best = iou[np.arange(n), best_gt]
    pos = best > POSITIVE_IOU
    labels[pos] = np.asarray(gt_labels)[best_gt[pos]]
    overlap[pos] = best[pos]
    labels[best < BACKGROUND_IOU] = 0
    # A ground truth without any window above 0.7 rescues its best window if IoU > 0.5.
    for m in range(len(gt_segments)):
        if n == 0 or iou[:, m].max() > POSITIVE_IOU:
            continue
        w = int(iou[:, m].argmax())
        if iou[w, m] > RESCUE_IOU and labels[w] <= 0:
            labels[w], overlap[w] = int(gt_labels[m]), float(iou[w, m])
    return labels, overlap


# -- sources and the frame cache ------------------------------------------------------------
def dataset_paths(data: str | Path, gt: str | Path | None = None,
                  videos: str | Path | None = None) -> tuple[Path, Path]:
    """The ground truth and videos folder of a training dataset folder (`train scnn` and
    `train segment-tube` read the same layouts): DATA/gt.json, DATA/annotations/ or
    THUMOS14 txt files in DATA, and DATA/videos, unless given."""
    data = Path(data)
    if not data.is_dir():
        raise InputError(data, "no such dataset folder")
    found = Path(gt) if gt else None
    for cand in () if found else (data / "gt.json", data / "annotations", data):
        if cand.exists() and (cand.is_file() or any(cand.glob("*.txt"))):
            found = cand
            break
    if found is None:
        raise InputError(data, "no ground truth found (gt.json, annotations/ or *.txt); give --gt")
    folder = Path(videos) if videos else data / "videos"
    if not folder.is_dir():
        raise InputError(folder, "no such videos folder; give --videos")
    return found, folder


def find_video(folder: Path, video_id: str) -> Path | None:
    """A video file, a folder of frames, or a frames file for `video_id` in `folder`."""
    for suf in VIDEO_SUFFIXES:
        p = folder / f"{video_id}{suf}"
        if p.is_file():
            return p
    for p in (folder / f"{video_id}.frames.h5", folder / video_id):
        if p.exists():
            return p
    return None


@dataclass
class CachedVideo:
    source: str
    frames: np.ndarray  # (T, h, w, 3) uint8 memmap at the spec's frame_size
    fps: float

    @property
    def num_frames(self) -> int:
        return len(self.frames)


class FrameCache:
    """Decodes each source once at `frame_size` into `folder`; later runs map the file."""

    def __init__(self, folder: str | os.PathLike, frame_size: tuple[int, int]):
        self.folder = Path(folder)
        self.frame_size = (int(frame_size[0]), int(frame_size[1]))

    def _key(self, src: Path) -> str:
        st = src.stat()
        raw = f"{src.resolve()}|{st.st_size}|{st.st_mtime_ns}|{self.frame_size}"
        return hashlib.sha1(raw.encode()).hexdigest()[:16]

    def get(self, source: str | os.PathLike) -> CachedVideo:
        src = Path(source)
        if not src.exists():
            raise InputError(src, "no such video")
        w, h = self.frame_size
        base = self.folder / f"{src.name}.{w}x{h}.{self._key(src)}"
        meta_p, data_p = base.with_suffix(".json"), base.with_suffix(".u8")
        if not (meta_p.is_file() and data_p.is_file()):
            self.folder.mkdir(parents=True, exist_ok=True)
            self._decode(src, meta_p, data_p)
        meta = json.loads(meta_p.read_text())
        t = int(meta["num_frames"])
        frames = (np.memmap(data_p, np.uint8, "r", shape=(t, h, w, 3)) if t
                  else np.zeros((0, h, w, 3), np.uint8))
        return CachedVideo(str(src), frames, float(meta["fps"]))

    def _decode(self, src: Path, meta_p: Path, data_p: Path) -> None:
        n = 0
        with atomic_write(data_p, "wb") as f:
            for block in source_blocks(src):
                f.write(resize_frames(block, (self.frame_size[1], self.frame_size[0])).tobytes())
                n += len(block)
        fps = _source_fps(src)
        write_text(meta_p, json.dumps({"source": str(src), "num_frames": n, "fps": fps,
                                       "frame_size": list(self.frame_size)}))


def _source_fps(src: Path) -> float:
    if src.suffix == ".h5":
        from vidseg_cli import store

        return store.read_frames(src).fps
    from vidseg_cli.video.decode import probe

    return probe(src).fps


def source_blocks(src: Path, block: int = 64):
    """RGB uint8 frame blocks of a video file, frame folder or frames file."""
    if src.suffix == ".h5":
        from vidseg_cli import store

        with store.open_record(src, "frames") as rec:
            t = rec.num_frames
            for i in range(0, t, block):
                yield np.asarray(rec["frames"][i:i + block])
        return
    from vidseg_cli.video.decode import iter_frames, probe

    buf = []
    for _, img in iter_frames(probe(src)):
        buf.append(img)
        if len(buf) == block:
            yield np.stack(buf)
            buf = []
    if buf:
        yield np.stack(buf)


# -- the training set -----------------------------------------------------------------------
@dataclass
class Segment:
    video: int  # index into SCNNData.videos
    start: int  # [start, end) frames
    end: int
    label: int  # 0 background, 1..K
    overlap: float  # v of Eq. (3)
    trimmed: bool = False


@dataclass
class SCNNData:
    classes: list[str]  # index 0 background, then the dataset's order
    videos: list[CachedVideo]
    video_ids: list[str]
    positives: list[Segment]  # N_T + N_U
    background: list[Segment]  # the pool background is sampled from
    lengths: tuple[int, ...] = SCNN_LENGTHS
    stats: dict = field(default_factory=dict)

    @property
    def num_classes(self) -> int:  # K
        return len(self.classes) - 1

    def num_background(self, stage: str) -> int:
        """N_b (§3.2): N_T + N_U for the proposal network, (N_T + N_U) / K otherwise."""
        n = len(self.positives)
        n = n if stage == "proposal" else int(round(n / max(self.num_classes, 1)))
        return min(max(n, 1), len(self.background))

    def epoch(self, stage: str, rng: np.random.Generator) -> list[Segment]:
        """All positives and a fresh background sample, shuffled."""
        nb = self.num_background(stage)
        bg = [self.background[i] for i in rng.choice(len(self.background), nb, replace=False)] if nb else []
        segs = self.positives + bg
        return [segs[i] for i in rng.permutation(len(segs))]

    def window_frequency(self) -> list[list[float]]:
        """(K+1) x len(lengths): for class k, the share of its untrimmed positive windows
        that have each length (S-CNN §3.3's class-specific window-length frequency)."""
        lengths = list(self.lengths)
        counts = np.zeros((len(self.classes), len(lengths)))
        for s in self.positives:
            if not s.trimmed and (s.end - s.start) in lengths:
                counts[s.label, lengths.index(s.end - s.start)] += 1
        tot = counts.sum(1, keepdims=True)
        freq = np.divide(counts, tot, out=np.zeros_like(counts), where=tot > 0)
        return freq.round(6).tolist()

    def split(self, fraction: float, seed: int) -> tuple[SCNNData, SCNNData | None]:
        """(train, validation): a seeded `fraction` of the untrimmed videos held out."""
        untrimmed = sorted({s.video for s in self.positives + self.background if not s.trimmed})
        n_val = int(round(len(untrimmed) * fraction))
        if fraction <= 0 or n_val == 0 or n_val >= len(untrimmed):
            return self, None
        held = set(np.random.default_rng([seed, 7]).choice(untrimmed, n_val, replace=False).tolist())

        def part(keep) -> SCNNData:
            return SCNNData(self.classes, self.videos, self.video_ids,
                            [s for s in self.positives if keep(s)],
                            [s for s in self.background if keep(s)], self.lengths)

        return part(lambda s: s.video not in held), part(lambda s: s.video in held)

    def held_videos(self) -> list[int]:
        return sorted({s.video for s in self.positives + self.background if not s.trimmed})

    @staticmethod
    def augmentations(n: int, spec: WindowSpec, rng: np.random.Generator) -> list[tuple]:
        """Training augmentation as in C3D for `n` clips: per clip a random crop position
        and a random horizontal flip, (offset (1, 2), flip (1,)) drawn clip after clip."""
        (fw, fh), (ch, cw) = spec.frame_size, spec.crop_size
        return [(np.array([[rng.integers(0, fh - ch + 1), rng.integers(0, fw - cw + 1)]]), rng.random(1) < 0.5)
                for _ in range(n)]

    def batch(self, segs: Sequence[Segment], spec: WindowSpec, rng: np.random.Generator | None = None,
              augment: Sequence[tuple] | None = None):
        """uint8 clips (B, 3, 16, ch, cw), labels (B,), overlaps (B,). With `rng`, training
        augmentation (`augmentations`); or `augment`, one drawn already per segment (a
        rank's share of a batch whose augmentation was drawn for all its clips)."""
        ch, cw = spec.crop_size
        if augment is None and rng is not None:
            augment = self.augmentations(len(segs), spec, rng)
        clips = np.empty((len(segs), 3, spec.clip_frames, ch, cw), np.uint8)
        for i, s in enumerate(segs):
            frames = self.videos[s.video].frames
            idx = np.clip(sample_clip_indices(s.start, s.end, spec.clip_frames), 0, len(frames) - 1)
            off, flip = augment[i] if augment is not None else (None, None)
            clips[i] = clip_batch(frames, idx[None], spec, off, flip)[0]
        labels = np.array([s.label for s in segs], np.int64)
        overlap = np.array([s.overlap for s in segs], np.float32)
        return clips, labels, overlap


def load_scnn_data(
    gt_path: str | os.PathLike,  # THUMOS14 annotation folder, ActivityNet-style JSON, synth folder
    videos_dir: str | os.PathLike,  # where <video_id>.<ext> (or .frames.h5) lie
    cache: FrameCache,
    subset: str | None = "training",
    trimmed_dir: str | os.PathLike | None = None,  # <Class>/<clip>.<ext>: trimmed positives
    lengths: Sequence[int] = SCNN_LENGTHS,
    overlap: float = SCNN_OVERLAP,
    progress=None,  # called once per decoded video
) -> SCNNData:
    """Label every window of every untrimmed video of `subset` (§3.2) and add the trimmed
    clips. Every ground-truth video must be found in `videos_dir`."""
    from vidseg_cli.datasets.temporal_gt import load_temporal_gt

    gt = load_temporal_gt(gt_path, subset)
    classes = ["background", *gt.classes]
    ids = gt.videos
    missing = [v for v in ids if find_video(Path(videos_dir), v) is None]
    if missing:
        raise InputError(videos_dir, f"{len(missing)} of the {len(ids)} ground-truth videos are "
                                     f"missing (e.g. {missing[0]}; looked for "
                                     f"{'/'.join(VIDEO_SUFFIXES)}, .frames.h5 or a frame folder)")
    if not ids and trimmed_dir is None:
        raise InputError(gt_path, f"no videos in subset '{gt.subset}'")
    videos, vids, pos, bg = [], [], [], []
    stats = {"untrimmed_videos": 0, "trimmed_videos": 0, "ignored_windows": 0}
    for v in ids:
        cv = cache.get(find_video(Path(videos_dir), v))
        k = len(videos)
        videos.append(cv)
        vids.append(v)
        sel = gt.video == v
        seg = np.round(gt.segments[sel] * cv.fps).astype(np.int64)  # seconds -> frames
        win = multiscale_windows(cv.num_frames, tuple(lengths), overlap)
        labels, ov = label_windows(win, seg, gt.label[sel] + 1)
        for (s, e), lab, o in zip(win, labels, ov):
            if lab > 0:
                pos.append(Segment(k, int(s), int(e), int(lab), float(o)))
            elif lab == 0:
                bg.append(Segment(k, int(s), int(e), 0, 1.0))
        stats["untrimmed_videos"] += 1
        stats["ignored_windows"] += int((labels < 0).sum())
        if progress:
            progress()
    if trimmed_dir is not None:
        td = Path(trimmed_dir)
        if not td.is_dir():
            raise InputError(td, "no such folder (trimmed clips: one folder per class)")
        for cdir in sorted(p for p in td.iterdir() if p.is_dir()):
            if cdir.name not in classes[1:]:
                raise InputError(cdir, f"class folder '{cdir.name}' is not a ground-truth class "
                                       f"({', '.join(classes[1:])})")
            for clip in sorted(p for p in cdir.iterdir()
                               if p.suffix.lower() in VIDEO_SUFFIXES or p.name.endswith(".frames.h5")):
                cv = cache.get(clip)
                if cv.num_frames == 0:
                    raise InputError(clip, "no frames")
                k = len(videos)
                videos.append(cv)
                vids.append(f"{cdir.name}/{clip.stem}")
                # §3.1: a trimmed video is one segment, 16 frames sampled over all of it.
                pos.append(Segment(k, 0, cv.num_frames, classes.index(cdir.name), 1.0, trimmed=True))
                stats["trimmed_videos"] += 1
                if progress:
                    progress()
    if not pos:
        raise InputError(gt_path, "no positive training segments (no window overlaps a ground "
                                  "truth by more than 0.7, or 0.5 for its best window)")
    stats.update(positives=len(pos), background_pool=len(bg))
    return SCNNData(classes, videos, vids, pos, bg, tuple(int(x) for x in lengths), stats)
