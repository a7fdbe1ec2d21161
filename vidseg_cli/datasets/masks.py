"""Per-pixel ground truth and predictions, read into one shape: (T, H, W) class indices.

Sources, each giving a `MaskVideo`:

- J-HMDB puppet masks, `puppet_mask/CLASS/VIDEO.mat` (MATLAB v5, key `part_mask`, uint8
  (H, W, T) in {0, 1}); the class is the folder name, indexed as J-HMDB's 21 classes in
  alphabetical order after `background` (DESIGN.md's class order).
- DAVIS sequence folders, `Annotations/480p/SEQ/*.png` (ground truth, 0/255 single object)
  and the DAVIS results layout `RESULTS/SEQ/00000.png` (predictions). Both are read as
  binary: every nonzero pixel is foreground, as the DAVIS 2016 toolkit reads them. (The
  DAVIS 2017 loader would instead turn the value 255 into "void" and lose the object.)
- Our `labels` files (class index per pixel) and `scores` files (per-pixel posteriors:
  bilinearly upsampled by `spatial_stride` when coarser, then argmax over classes).
  Asked for another size, they are brought to it when the frames file they were made
  from (found through their provenance) was extracted from a source of that size
  (`extract-frames --short-side` or `--size`; its `source_size`): labels by nearest
  neighbour, posteriors bilinearly before the argmax (stages/rescale.py);
  `MaskVideo.resized_from` says so.

Every problem with a file raises `InputError` naming it: unreadable, wrong size, frames
that don't agree.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from vidseg_cli.errors import InputError
from vidseg_cli.stages.rescale import resize_labels, resize_probs
from vidseg_cli.stages.upsample import upsample_probs

PathLike = str | os.PathLike

# J-HMDB's 21 action classes in alphabetical order (the dataset's own order).
JHMDB_CLASSES: tuple[str, ...] = (
    "brush_hair", "catch", "clap", "climb_stairs", "golf", "jump", "kick_ball", "pick",
    "pour", "pullup", "push", "run", "shoot_ball", "shoot_bow", "shoot_gun", "sit", "stand",
    "swing_baseball", "throw", "walk", "wave",
)
# Class names as our files carry them: index 0 is background.
JHMDB_CLASS_NAMES: tuple[str, ...] = ("background", *JHMDB_CLASSES)

__all__ = [
    "JHMDB_CLASSES",
    "JHMDB_CLASS_NAMES",
    "MaskVideo",
    "davis_sequences",
    "find_h5_files",
    "jhmdb_videos",
    "read_davis_sequence",
    "read_h5_masks",
    "read_jhmdb_mat",
    "read_labels_file",
    "read_png_mask",
    "read_scores_file",
]


@dataclass
class MaskVideo:
    """One video's masks.

    masks: (T, H, W) uint8, class index per pixel, 0 = background. For class-agnostic
        sources (DAVIS PNGs) the values are 0/1 and `class_names` is None.
    class_names: index -> name, index 0 "background"; None when class-agnostic.
    category: the video's action class name (J-HMDB: its folder), if known.
    frame_ids: per-frame names (DAVIS: the PNG stems), used to pair frames by name.
    resized_from: the frame size (H, W) of the file when it was read at another size.
    """

    video_id: str
    path: str
    masks: np.ndarray  # T x H x W uint8
    class_names: list[str] | None = None
    category: str | None = None
    frame_ids: list[str] | None = field(default=None)
    resized_from: tuple[int, int] | None = None

    @property
    def num_frames(self) -> int:
        return int(self.masks.shape[0])

    @property
    def frame_size(self) -> tuple[int, int]:
        return int(self.masks.shape[1]), int(self.masks.shape[2])


# -- J-HMDB ---------------------------------------------------------------------------
def read_jhmdb_mat(
    path: PathLike, category: str | None = None, classes: Sequence[str] = JHMDB_CLASSES
) -> MaskVideo:
    """A J-HMDB puppet mask file: `part_mask` (H, W, T) in {0,1} -> (T, H, W) class index.

    The class is `category`, or else the name of the file's folder; it must be one of
    `classes` (J-HMDB's 21 by default).
    """
    p = Path(path)
    category = category if category is not None else p.parent.name
    if category not in classes:
        raise InputError(
            p, f"folder '{category}' is not a J-HMDB class (expected one of: {', '.join(classes)})"
        )
    label = list(classes).index(category) + 1
    if not p.is_file():
        raise InputError(p, "no such file")
    import scipy.io

    try:
        mat = scipy.io.loadmat(str(p), variable_names=["part_mask"])
    except NotImplementedError:
        raise InputError(p, "MATLAB v7.3 (HDF5) .mat files are not read; expected v5") from None
    except (ValueError, OSError, TypeError, KeyError) as e:
        why = f"{e.__class__.__name__}: {e}"
        raise InputError(p, f"not a readable MATLAB v5 file ({why})") from None
    if "part_mask" not in mat:
        raise InputError(p, "no 'part_mask' variable (expected a J-HMDB puppet mask file)")
    pm = np.asarray(mat["part_mask"])
    if pm.ndim == 2:  # a one-frame video
        pm = pm[:, :, None]
    if pm.ndim != 3 or pm.size == 0:
        raise InputError(p, f"'part_mask' should be (H, W, T), found shape {pm.shape}")
    if pm.dtype.kind not in "uib":
        raise InputError(p, f"'part_mask' should be integer 0/1, found dtype {pm.dtype}")
    fg = np.moveaxis(pm, 2, 0) > 0  # T x H x W
    masks = fg.astype(np.uint8) * np.uint8(label)
    return MaskVideo(
        video_id=p.stem,
        path=str(p),
        masks=np.ascontiguousarray(masks),
        class_names=["background", *classes],
        category=category,
    )


def jhmdb_videos(root: PathLike) -> dict[str, Path]:
    """`video_id -> path` of every `CLASS/VIDEO.mat` under a puppet_mask folder."""
    root = Path(root)
    if root.is_file():
        return {root.stem: root}
    out: dict[str, Path] = {}
    for mat in sorted(root.glob("*/*.mat")):
        if mat.stem in out:
            raise InputError(mat, f"video id '{mat.stem}' also found at {out[mat.stem]}")
        out[mat.stem] = mat
    if not out:
        raise InputError(root, "no CLASS/VIDEO.mat files (expected J-HMDB's puppet_mask layout)")
    return out


# -- PNG masks (DAVIS) ----------------------------------------------------------------
def read_png_mask(path: PathLike) -> np.ndarray:
    """One mask PNG -> (H, W) bool foreground: every nonzero value (grey or indexed) is
    foreground; in colour PNGs (indexed PNGs are expanded to colour by OpenCV) every
    non-black pixel is, as index 0 is black in the DAVIS palette."""
    import cv2

    p = Path(path)
    if not p.is_file():
        raise InputError(p, "no such file")
    img = cv2.imread(str(p), cv2.IMREAD_UNCHANGED)
    if img is None or img.size == 0:
        raise InputError(p, "not a readable PNG image")
    if img.ndim == 3:
        if img.shape[2] in (2, 4):  # grey+alpha or BGRA: ignore alpha
            img = img[:, :, :-1]
        return np.any(img != 0, axis=2)
    return img != 0


def png_files(folder: Path) -> list[Path]:
    """The PNG files of a folder, in name order."""
    return sorted(p for p in folder.iterdir() if p.suffix.lower() == ".png" and p.is_file())


def mask_frame_files(folder: Path, frame_ids: Sequence[str] | None = None) -> list[Path]:
    """A sequence's mask PNGs: exactly `ID.png` for each of `frame_ids` (a result read
    against the ground truth's frames; a missing one is an error), else every PNG in name
    order (none is an error)."""
    if frame_ids is None:
        files = png_files(folder) if folder.is_dir() else []
        if not files:
            raise InputError(folder, "no PNG masks in this folder")
        return files
    files = [folder / f"{fid}.png" for fid in frame_ids]
    for f in files:
        if not f.is_file():
            raise InputError(f, "missing frame (result PNGs must be named as the ground truth's frames)")
    return files


def davis_sequences(path: PathLike) -> dict[str, Path]:
    """`sequence -> folder` of the sequences under a DAVIS-style path.

    Accepted: a DAVIS root (with `Annotations/480p`), `Annotations`, `Annotations/480p`, a
    results folder (`SEQ/00000.png` ...), or one sequence folder of PNGs.
    """
    p = Path(path)
    if not p.is_dir():
        raise InputError(p, "expected a folder of DAVIS sequences (SEQ/00000.png ...)")
    for sub in ("Annotations/480p", "480p"):
        if (p / sub).is_dir():
            p = p / sub
            break
    subdirs = sorted(d for d in p.iterdir() if d.is_dir() and png_files(d))
    if subdirs:
        return {d.name: d for d in subdirs}
    if png_files(p):
        return {p.name: p}
    raise InputError(p, "no sequence folders with PNG masks found (expected SEQ/00000.png ...)")


def read_davis_sequence(
    folder: PathLike,
    frame_ids: Sequence[str] | None = None,
    size: tuple[int, int] | None = None,
) -> MaskVideo:
    """A folder of per-frame PNG masks -> binary (T, H, W) masks.

    `frame_ids`: read exactly these frames (`ID.png`), as the DAVIS scorer reads the
    result frames named after the ground truth's; a missing one is an error. Without it,
    every PNG in the folder, in name order. `size`: (H, W) every frame must have.
    """
    folder = Path(folder)
    files = mask_frame_files(folder, frame_ids)
    first = read_png_mask(files[0])
    want = size if size is not None else first.shape
    masks = np.empty((len(files), *want), dtype=np.uint8)  # T x H x W
    for i, f in enumerate(files):
        m = first if i == 0 else read_png_mask(f)
        if m.shape != tuple(want):
            what = "the ground truth's" if size is not None else f"{files[0].name}'s"
            raise InputError(
                f, f"mask is {m.shape[1]}x{m.shape[0]} (WxH), expected {want[1]}x{want[0]} "
                f"({what} size)"
            )
        masks[i] = m
    return MaskVideo(
        video_id=folder.name,
        path=str(folder),
        masks=masks,
        class_names=None,
        frame_ids=[f.stem for f in files],
    )


# -- our HDF5 files -------------------------------------------------------------------
def _store_error(e: Exception) -> InputError:
    return InputError(getattr(e, "path", "?"), getattr(e, "problem", str(e)))


def _made_from(attrs: dict) -> tuple[tuple[int, int], tuple[int, int]] | None:
    """((H, W) of the frames a file was made from, (H, W) of their source), through the
    file's provenance (store/lineage.py); None when not found or not recorded."""
    from vidseg_cli.store.lineage import from_frames

    def sizes(f, a: dict):
        src = a.get("source_size")  # [W, H]
        if not isinstance(src, list) or len(src) != 2:
            return None
        _, h, w, _ = f["frames"].shape
        return (int(h), int(w)), (int(src[1]), int(src[0]))

    return from_frames(attrs, sizes)


def read_labels_file(path: PathLike, size: tuple[int, int] | None = None) -> MaskVideo:
    """A `labels` file -> its (T, H, W) class indices and class names; brought to `size`
    (H, W) by nearest neighbour when it was made on frames resized from a source of that
    size (module docstring). Any other size is returned as it is, for the caller to
    refuse."""
    from vidseg_cli import store

    try:
        rec = store.read_labels(path)
    except store.StoreError as e:
        raise _store_error(e) from None
    masks = np.asarray(rec["labels"], dtype=np.uint8)
    own = (int(masks.shape[1]), int(masks.shape[2]))
    resized = size is not None and own != tuple(size) and _made_from(rec.attrs) == (own, tuple(size))
    return MaskVideo(
        video_id=rec.video_id,
        path=str(path),
        masks=resize_labels(masks, tuple(size)) if resized else masks,
        class_names=list(rec.class_names or []),
        resized_from=own if resized else None,
    )


def _covers(full: tuple[int, int], stride: int, size: tuple[int, int]) -> bool:
    """Whether a map of full = (H'*s, W'*s) pixels at stride s stands for frames of `size`
    (its last cells may overhang the frame by up to s - 1 pixels)."""
    return all(f >= n > f - stride for f, n in zip(full, size))


def read_scores_file(path: PathLike, size: tuple[int, int] | None = None) -> MaskVideo:
    """A `scores` file -> argmax class per pixel, (T, H, W).

    When the file is coarser than the frames (`spatial_stride` s > 1), the posteriors are
    upsampled bilinearly by s before the argmax and cropped to `size` (H, W). A map made
    on frames resized from a source of `size` (module docstring) is brought to the frames'
    size that way, then bilinearly to `size`; any other map that can't cover `size` at
    that stride is an error. Without `size`, the size is H'*s x W'*s.
    """
    from vidseg_cli import store

    try:
        with store.open_record(path, "scores") as rec:
            probs = rec["probs"]
            t, c, hh, ww = probs.shape
            stride = int(rec.attrs.get("spatial_stride", 1) or 1)
            if stride < 1:
                raise InputError(path, f"'spatial_stride' should be >= 1, found {stride}")
            full = (hh * stride, ww * stride)
            target = tuple(size) if size is not None else full
            frame = target  # the size the map is upsampled to by its stride
            if not _covers(full, stride, target):
                made = _made_from(rec.attrs)
                ok = made is not None and made[1] == target and _covers(full, stride, made[0])
                frame = made[0] if ok else None
            if frame is None and stride == 1:
                raise InputError(
                    path,
                    f"scores are {ww}x{hh} (WxH) at stride 1, expected {target[1]}x{target[0]}",
                )
            if frame is None:
                raise InputError(
                    path, f"scores of {ww}x{hh} (WxH) at spatial_stride {stride} don't cover "
                    f"{target[1]}x{target[0]}"
                )
            masks = np.empty((t, *target), dtype=np.uint8)  # T x H x W
            for i in range(t):
                p = np.asarray(probs[i], dtype=np.float32)  # C x H' x W'
                if not np.all(np.isfinite(p)):
                    raise InputError(path, f"frame {i}: NaN or infinite scores")
                if stride > 1:
                    p = upsample_probs(p, stride, frame)
                if frame != target:
                    p = resize_probs(p, target)
                masks[i] = np.argmax(p, axis=0).astype(np.uint8)
            names = list(rec.class_names or [])
            vid = rec.video_id
    except store.StoreError as e:
        raise _store_error(e) from None
    if c > 256:
        raise InputError(path, f"{c} classes do not fit uint8 class indices")
    return MaskVideo(video_id=vid, path=str(path), masks=masks, class_names=names,
                     resized_from=frame if frame != target else None)


def read_h5_masks(path: PathLike, size: tuple[int, int] | None = None) -> MaskVideo:
    """A `labels` or `scores` file, by its kind, at `size` (H, W) where it can be brought
    to it (read_labels_file, read_scores_file)."""
    from vidseg_cli import store

    try:
        kind = store.peek_kind(path)
    except store.StoreError as e:
        raise _store_error(e) from None
    if kind == "labels":
        return read_labels_file(path, size)
    if kind == "scores":
        return read_scores_file(path, size)
    raise InputError(path, f"expected a labels or scores file, found a {kind} file")


def find_h5_files(path: PathLike) -> list[Path]:
    """The .h5 files of a folder (not recursive), or the file itself."""
    p = Path(path)
    if p.is_dir():
        return sorted(q for q in p.iterdir() if q.suffix in (".h5", ".hdf5") and q.is_file())
    return [p]
