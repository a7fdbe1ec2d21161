"""Which dataset layout a path holds, and where its parts lie (docs/datasets.md).

    layout = detect("../shared/refdata/davis2016")   # Layout(kind="davis", masks=..., frames=...)

Layouts (`Layout.kind`):

- `thumos14`: a THUMOS14 annotation folder (`detclasslist.txt` and/or `<Class>_<subset>.txt`),
  a folder whose `annotations/` is one, or a folder of such folders (`annotation_val/`,
  `annotation_test/`, as the dataset ships them);
- `activitynet`: an ActivityNet-style JSON file, or a folder holding `gt.json`;
- `synth`: a `vidseg synth` output folder (`synth.json`, or `gt.json` beside `videos/` and
  `labels/`): ActivityNet JSON, mp4 videos and `labels` files;
- `custom`: a folder of videos (directly or in `videos/`) with one ActivityNet JSON;
- `jhmdb`: J-HMDB (`puppet_mask/CLASS/VIDEO.mat`, frames in `Rename_Images/CLASS/VIDEO/` or
  `frames/[CLASS/]VIDEO/`, `splits/CLASS_test_splitN.txt`), its `puppet_mask` folder, one
  class folder of it, or one `.mat` file;
- `davis`: DAVIS 2016 (`JPEGImages/480p/SEQ/`, `Annotations/480p/SEQ/*.png`,
  `ImageSets/480p/{train,val}.txt`), or a folder of mask sequences (`SEQ/00000.png`);
- `labels`: our `labels` files (a folder of them, or one).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from vidseg_cli.errors import InputError
from vidseg_cli.video.decode import IMAGE_SUFFIXES, VIDEO_SUFFIXES

__all__ = ["LAYOUTS", "TEMPORAL_LAYOUTS", "Layout", "detect", "is_mask_folder", "sniff",
           "video_files"]

LAYOUTS = ("thumos14", "activitynet", "synth", "custom", "jhmdb", "davis", "labels")
TEMPORAL_LAYOUTS = ("thumos14", "activitynet", "synth", "custom")
_H5 = (".h5", ".hdf5")


@dataclass(frozen=True)
class Layout:
    """A detected layout and its resolved parts (None: the layout has no such part)."""

    kind: str  # one of LAYOUTS
    path: Path  # as given
    annotations: tuple[Path, ...] = ()  # THUMOS14 folders, or the ActivityNet JSON
    videos: Path | None = None  # folder of videos (synth, custom)
    masks: Path | None = None  # puppet_mask/ (or a class folder, a .mat), Annotations/, labels/
    frames: Path | None = None  # J-HMDB frame folders' root, DAVIS JPEGImages/480p
    splits: Path | None = None  # J-HMDB splits/, DAVIS ImageSets/...

    @property
    def temporal(self) -> bool:
        return self.kind in TEMPORAL_LAYOUTS


def video_files(folder: Path) -> list[Path]:
    """The video files directly inside a folder, by name."""
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in VIDEO_SUFFIXES and p.is_file())


def is_mask_folder(p: Path) -> bool:
    """A DAVIS-style results folder: images directly, or SEQ/ subfolders of images."""
    for q in p.iterdir():
        if q.is_file() and q.suffix.lower() in IMAGE_SUFFIXES:
            return True
        if q.is_dir() and any(r.suffix.lower() in IMAGE_SUFFIXES for r in q.iterdir() if r.is_file()):
            return True
    return False


def _is_thumos_folder(p: Path) -> bool:
    return (p / "detclasslist.txt").is_file() or any(p.glob("*_*.txt"))


def _first_dir(root: Path, *subs: str) -> Path | None:
    return next((root / s for s in subs if (root / s).is_dir()), None)


def _synth(p: Path) -> Layout | None:
    if not ((p / "synth.json").is_file()
            or ((p / "gt.json").is_file() and (p / "videos").is_dir() and (p / "labels").is_dir())):
        return None
    ann = (p / "gt.json",)
    if not ann[0].is_file() and (p / "annotations" / "detclasslist.txt").is_file():
        ann = (p / "annotations",)
    return Layout("synth", p, ann, videos=p / "videos", masks=p / "labels")


def _temporal(p: Path) -> Layout | None:
    """ActivityNet JSON, THUMOS14 folders, and a folder of videos with its JSON."""
    vids = _first_dir(p, "videos") or (p if video_files(p) else None)
    if vids is not None and vids != p and not video_files(vids):
        vids = None
    if (p / "gt.json").is_file():
        if vids is not None:
            return Layout("custom", p, (p / "gt.json",), videos=vids)
        return Layout("activitynet", p, (p / "gt.json",))
    if _is_thumos_folder(p):
        return Layout("thumos14", p, (p,))
    if (p / "annotations" / "detclasslist.txt").is_file():
        return Layout("thumos14", p, (p / "annotations",))
    subs = sorted(d for d in p.glob("annotation*") if d.is_dir() and _is_thumos_folder(d))
    if subs:
        return Layout("thumos14", p, tuple(subs))
    jsons = sorted(q for q in p.glob("*.json") if q.is_file())
    if vids is not None and len(jsons) == 1:
        return Layout("custom", p, (jsons[0],), videos=vids)
    return None


def _jhmdb(p: Path) -> Layout | None:
    if (p / "puppet_mask").is_dir():
        return Layout("jhmdb", p, masks=p / "puppet_mask",
                      frames=_first_dir(p, "Rename_Images", "frames"),
                      splits=_first_dir(p, "splits"))
    if next(p.glob("*/*.mat"), None) is not None or next(p.glob("*.mat"), None) is not None:
        return Layout("jhmdb", p, masks=p)
    return None


def _davis(p: Path) -> Layout | None:
    if (p / "Annotations").is_dir():
        frames = _first_dir(p, "JPEGImages/480p", "JPEGImages")
        splits = _first_dir(p, "ImageSets/480p", "ImageSets/2016", "ImageSets")
        return Layout("davis", p, masks=_first_dir(p, "Annotations/480p") or p / "Annotations",
                      frames=frames, splits=splits)
    if is_mask_folder(p):
        return Layout("davis", p, masks=p)
    return None


def sniff(path: str | os.PathLike) -> Layout | None:
    """The layout of `path`, or None when it is none of LAYOUTS (or does not exist)."""
    p = Path(path)
    if p.is_file():
        suffix = p.suffix.lower()
        if suffix == ".json":
            return Layout("activitynet", p, (p,))
        if suffix == ".mat":
            return Layout("jhmdb", p, masks=p)
        if suffix in _H5:
            return Layout("labels", p, masks=p)
        return None
    if not p.is_dir():
        return None
    found = _synth(p) or _temporal(p)
    if found is not None:
        return found
    if any(q.suffix.lower() in _H5 and q.is_file() for q in p.iterdir()):
        return Layout("labels", p, masks=p)
    return _jhmdb(p) or _davis(p)


def detect(path: str | os.PathLike) -> Layout:
    """The layout of `path` (module docstring); an InputError when it has none."""
    p = Path(path)
    if not p.exists():
        raise InputError(p, "no such file or folder")
    found = sniff(p)
    if found is None:
        raise InputError(
            p, "not a known dataset layout (expected a THUMOS14 annotation folder, an "
            "ActivityNet-style .json, a `vidseg synth` folder, videos with a .json, J-HMDB "
            "puppet_mask/, DAVIS Annotations/ or labels .h5 files)"
        )
    return found
