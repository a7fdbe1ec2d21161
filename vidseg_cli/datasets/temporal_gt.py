"""Temporal ground truth: readers and writers for THUMOS14 per-class text folders and
ActivityNet-style JSON, and the synthetic set's folder (which holds both).

THUMOS14 folder: `detclasslist.txt` (lines `index Name`: the official class order and
indices), one `<Name>_<subset>.txt` per class with lines `video start_s end_s`, and
`Ambiguous_<subset>.txt` (segments a THUMOS14 scorer ignores rather than counts).

ActivityNet JSON: `{"database": {video: {"subset", "duration", "annotations":
[{"segment": [s, e], "label": name}]}}, "taxonomy"?: [...]}`; the synthetic set adds
"fps" and "num_frames" per video and a taxonomy that is a plain list of class names.

    gt = load_temporal_gt("../shared/refdata/thumos14/annotation_test")   # subset "test"
    gt = load_temporal_gt("runs/synth", subset="validation")               # DIR/gt.json

Instances keep file order (class files in class-list order for THUMOS14, database order
for JSON): the official scorers break ties by it.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from vidseg_cli.core.fs import write_text
from vidseg_cli.errors import InputError, read_lines

__all__ = [
    "AMBIGUOUS",
    "TemporalGT",
    "load_json",
    "load_temporal_gt",
    "read_activitynet_gt",
    "read_class_list",
    "read_thumos14_gt",
    "taxonomy_names",
    "thumos14_subsets",
    "write_activitynet_gt",
    "write_thumos14_gt",
]

AMBIGUOUS = "Ambiguous"
# Other names users give the THUMOS14 subsets.
_SUBSET_ALIASES = {"validation": "val", "val": "validation", "testing": "test", "test": "testing",
                   "training": "train", "train": "training"}


@dataclass
class TemporalGT:
    """Ground-truth segments of one subset, in seconds."""

    path: str
    format: str  # "thumos14" | "activitynet"
    subset: str
    classes: list[str]  # official order
    class_ids: list[int]  # official indices (THUMOS14 detclasslist; 1..C otherwise)
    video: np.ndarray  # (N,) str
    segments: np.ndarray  # (N, 2) float64 [start, end] seconds
    label: np.ndarray  # (N,) int64 index into classes
    amb_video: np.ndarray = field(default_factory=lambda: np.zeros(0, str))
    amb_segments: np.ndarray = field(default_factory=lambda: np.zeros((0, 2)))
    # Per-video facts when the source has them: {"duration", "fps", "num_frames"}.
    video_info: dict[str, dict] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    # {label_id: class name} where annotations carry a `label_id` (ActionFormer's and
    # OpenTAD's annotation JSON): how a tool trained on them numbers the classes
    label_ids: dict[int, str] = field(default_factory=dict)

    @property
    def videos(self) -> list[str]:
        """Every video of the subset: those with instances or Ambiguous segments, and
        (JSON) those listed without annotations."""
        return sorted(set(self.video.tolist()) | set(self.amb_video.tolist()) | set(self.video_info))

    def counts(self) -> dict[str, int]:
        n = np.bincount(self.label, minlength=len(self.classes))
        return {c: int(k) for c, k in zip(self.classes, n)}

    def __len__(self) -> int:
        return len(self.label)


# -- locating ---------------------------------------------------------------------------
def load_temporal_gt(path: str | os.PathLike, subset: str | None = None) -> TemporalGT:
    """Read ground truth from a THUMOS14 folder (or a folder of them, one per subset), an
    ActivityNet-style JSON file, or a synthetic set's folder (its gt.json, else its
    annotations/ folder); datasets/layouts/detect.py tells which."""
    from vidseg_cli.datasets.layouts.detect import sniff

    p = Path(path)
    if not p.exists():
        raise InputError(p, "no such file or folder")
    layout = sniff(p)
    if layout is None or not layout.temporal:
        if p.is_dir():
            raise InputError(
                p, "not a ground-truth folder (expected detclasslist.txt, gt.json or annotations/)"
            )
        raise InputError(p, "unknown ground-truth format (expected a .json file or a THUMOS14 folder)")
    folders = layout.annotations
    if len(folders) > 1:
        return read_thumos14_gt(_folder_of_subset(p, folders, subset), subset)
    if folders[0].is_dir():
        return read_thumos14_gt(folders[0], subset)
    return read_activitynet_gt(folders[0], subset)


def thumos14_subsets(folder: Path) -> list[str]:
    """The subsets of a THUMOS14 folder: the suffixes of its `<Class>_<subset>.txt` files."""
    return sorted({f.stem.rsplit("_", 1)[1] for f in folder.glob("*_*.txt")})


def _folder_of_subset(root: Path, folders: tuple[Path, ...], subset: str | None) -> Path:
    """The one of several THUMOS14 folders (annotation_val/, annotation_test/) that holds
    `subset`; None takes the only subset there is."""
    by_subset = {s: f for f in folders for s in thumos14_subsets(f)}
    if subset is None:
        if len(by_subset) > 1:
            raise InputError(root, f"several subsets ({', '.join(sorted(by_subset))}); choose one with --subset")
        return next(iter(by_subset.values()))
    if subset not in by_subset and _SUBSET_ALIASES.get(subset) in by_subset:
        subset = _SUBSET_ALIASES[subset]
    if subset not in by_subset:
        raise InputError(root, f"no files for subset '{subset}' (found: {', '.join(sorted(by_subset))})")
    return by_subset[subset]


# -- THUMOS14 ---------------------------------------------------------------------------
def read_class_list(path: Path) -> tuple[list[int], list[str]]:
    ids, names = [], []
    for n, line in enumerate(read_lines(path), 1):
        parts = line.split()
        if not parts:
            continue
        if len(parts) != 2 or not re.fullmatch(r"\d+", parts[0]):
            raise InputError(path, f"line {n}: expected 'index ClassName', found {line.strip()!r}")
        ids.append(int(parts[0]))
        names.append(parts[1])
    if not names:
        raise InputError(path, "empty class list")
    if len(set(names)) != len(names) or len(set(ids)) != len(ids):
        raise InputError(path, "repeated class name or index")
    return ids, names


def _read_segment_lines(path: Path) -> tuple[list[str], list[tuple[float, float]]]:
    vids, segs = [], []
    for n, line in enumerate(read_lines(path), 1):
        parts = line.split()
        if not parts:
            continue
        try:
            if len(parts) != 3:
                raise ValueError
            s, e = float(parts[1]), float(parts[2])
        except ValueError:
            raise InputError(path, f"line {n}: expected 'video start end', found {line.strip()!r}") from None
        vids.append(parts[0])
        segs.append((s, e))
    return vids, segs


def _thumos_subsets(folder: Path, names: list[str]) -> list[str]:
    found = set()
    for name in names + [AMBIGUOUS]:
        for f in folder.glob(f"{name}_*.txt"):
            found.add(f.stem[len(name) + 1:])
    return sorted(found)


def read_thumos14_gt(folder: str | os.PathLike, subset: str | None = None) -> TemporalGT:
    """A THUMOS14 annotation folder. `subset` is the file suffix ("test", "val", ...; the
    ActivityNet names "testing"/"validation" are accepted); None takes the only one."""
    folder = Path(folder)
    warnings = []
    if (folder / "detclasslist.txt").is_file():
        ids, names = read_class_list(folder / "detclasslist.txt")
    else:
        # The official class list is alphabetical: infer it from the file names.
        names = sorted({f.stem.rsplit("_", 1)[0] for f in folder.glob("*_*.txt")} - {AMBIGUOUS})
        ids = list(range(1, len(names) + 1))
        warnings.append(f"{folder}: no detclasslist.txt; classes taken from the file names in "
                        f"alphabetical order, indexed 1..{len(names)}")
    subsets = _thumos_subsets(folder, names)
    if not subsets:
        raise InputError(folder, "no <Class>_<subset>.txt files beside detclasslist.txt")
    if subset is None:
        if len(subsets) > 1:
            raise InputError(folder, f"several subsets ({', '.join(subsets)}); choose one with --subset")
        subset = subsets[0]
    elif subset not in subsets and _SUBSET_ALIASES.get(subset) in subsets:
        subset = _SUBSET_ALIASES[subset]
    if subset not in subsets:
        raise InputError(folder, f"no files for subset '{subset}' (found: {', '.join(subsets)})")

    vids, segs, labels = [], [], []
    for c, name in enumerate(names):
        f = folder / f"{name}_{subset}.txt"
        if not f.is_file():
            warnings.append(f"{f}: missing; class {name} has no ground truth in subset '{subset}'")
            continue
        v, s = _read_segment_lines(f)
        vids += v
        segs += s
        labels += [c] * len(v)
    amb_v, amb_s = [], []
    f = folder / f"{AMBIGUOUS}_{subset}.txt"
    if f.is_file():
        amb_v, amb_s = _read_segment_lines(f)
    return TemporalGT(
        path=str(folder),
        format="thumos14",
        subset=subset,
        classes=names,
        class_ids=ids,
        video=np.array(vids, dtype=str),
        segments=np.array(segs, np.float64).reshape(-1, 2),
        label=np.array(labels, np.int64),
        amb_video=np.array(amb_v, dtype=str),
        amb_segments=np.array(amb_s, np.float64).reshape(-1, 2),
        warnings=warnings,
    )


def write_thumos14_gt(gt: TemporalGT, folder: str | os.PathLike, subset: str | None = None) -> None:
    """Write detclasslist.txt, <Class>_<subset>.txt and Ambiguous_<subset>.txt."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    subset = subset or gt.subset
    write_text(folder / "detclasslist.txt",
        "".join(f"{i} {n}\n" for i, n in zip(gt.class_ids, gt.classes))
    )
    for c, name in enumerate(gt.classes):
        idx = np.flatnonzero(gt.label == c)
        write_text(folder / f"{name}_{subset}.txt",
            "".join(f"{gt.video[i]} {gt.segments[i, 0]:.1f} {gt.segments[i, 1]:.1f}\n" for i in idx)
        )
    write_text(folder / f"{AMBIGUOUS}_{subset}.txt",
        "".join(f"{v} {s:.1f} {e:.1f}\n" for v, (s, e) in zip(gt.amb_video, gt.amb_segments))
    )


# -- ActivityNet JSON ---------------------------------------------------------------------
def load_json(path: Path) -> object:
    try:
        with open(path) as f:
            return json.load(f)
    except OSError as e:
        raise InputError(path, f"cannot read ({e.strerror})") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise InputError(path, f"not valid JSON ({e})") from None


def taxonomy_names(tax: object) -> list[str]:
    """Class names from a taxonomy: a list of names (synthetic), or ActivityNet's node
    list, whose leaves (nodes no other node names as parent) are the classes."""
    if not isinstance(tax, list):
        return []
    if all(isinstance(t, str) for t in tax):
        return list(tax)
    nodes = [t for t in tax if isinstance(t, dict) and "nodeName" in t]
    parents = {t.get("parentName") for t in nodes}
    return [t["nodeName"] for t in nodes if t["nodeName"] not in parents]


def read_activitynet_gt(path: str | os.PathLike, subset: str | None = None) -> TemporalGT:
    """ActivityNet-style ground truth. `subset` None takes the only subset present."""
    path = Path(path)
    data = load_json(path)
    if not isinstance(data, dict) or not isinstance(data.get("database"), dict):
        raise InputError(path, "expected a JSON object with a 'database' object")
    db = data["database"]
    subsets = sorted({str(v.get("subset")) for v in db.values() if isinstance(v, dict)})
    if subset is None:
        if len(subsets) > 1:
            raise InputError(path, f"several subsets ({', '.join(subsets)}); choose one with --subset")
        subset = subsets[0] if subsets else "validation"
    elif subset not in subsets and _SUBSET_ALIASES.get(subset) in subsets:
        subset = _SUBSET_ALIASES[subset]
    if subsets and subset not in subsets:
        raise InputError(path, f"no videos in subset '{subset}' (found: {', '.join(subsets)})")

    taxonomy = taxonomy_names(data.get("taxonomy"))
    classes = list(taxonomy)
    index = {c: i for i, c in enumerate(classes)}
    vids, segs, labels, info = [], [], [], {}
    amb_v, amb_s = [], []
    label_ids: dict[int, str] = {}
    for vid, v in db.items():
        if not isinstance(v, dict):
            raise InputError(path, f"database['{vid}']: expected an object")
        if v.get("subset") != subset:
            continue
        info[vid] = {k: v[k] for k in ("duration", "fps", "num_frames") if k in v}
        anns = v.get("annotations", [])
        if not isinstance(anns, list):
            raise InputError(path, f"database['{vid}']['annotations']: expected a list")
        for k, a in enumerate(anns):
            try:
                s, e = (float(x) for x in a["segment"])
                lab = str(a["label"])
            except (KeyError, TypeError, ValueError):
                raise InputError(
                    path, f"database['{vid}']['annotations'][{k}]: expected "
                    "{'segment': [start, end], 'label': name}"
                ) from None
            if lab == AMBIGUOUS and AMBIGUOUS not in taxonomy:
                amb_v.append(vid)
                amb_s.append((s, e))
                continue
            if lab not in index:
                index[lab] = len(classes)
                classes.append(lab)
            if isinstance(a.get("label_id"), int) and not isinstance(a["label_id"], bool):
                label_ids.setdefault(a["label_id"], lab)
            vids.append(vid)
            segs.append((s, e))
            labels.append(index[lab])
    return TemporalGT(
        path=str(path),
        format="activitynet",
        subset=subset,
        classes=classes,
        class_ids=list(range(1, len(classes) + 1)),
        video=np.array(vids, dtype=str),
        segments=np.array(segs, np.float64).reshape(-1, 2),
        label=np.array(labels, np.int64),
        amb_video=np.array(amb_v, dtype=str),
        amb_segments=np.array(amb_s, np.float64).reshape(-1, 2),
        video_info=info,
        label_ids=label_ids,
    )


def write_activitynet_gt(gt: TemporalGT, path: str | os.PathLike) -> None:
    """ActivityNet-style JSON of one subset (taxonomy as a list of class names;
    Ambiguous segments as annotations labelled "Ambiguous")."""
    db: dict[str, dict] = {}
    for v in gt.videos:
        db[v] = {"subset": gt.subset, **gt.video_info.get(v, {}), "annotations": []}
    for v, (s, e), c in zip(gt.video, gt.segments, gt.label):
        db[v]["annotations"].append({"segment": [float(s), float(e)], "label": gt.classes[c]})
    for v, (s, e) in zip(gt.amb_video, gt.amb_segments):
        db[v]["annotations"].append({"segment": [float(s), float(e)], "label": AMBIGUOUS})
    write_text(path, json.dumps({"version": "vidseg", "taxonomy": gt.classes, "database": db}))
