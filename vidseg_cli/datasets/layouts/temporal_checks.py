"""verify()'s checks of temporal ground truth (THUMOS14 folders, ActivityNet-style JSON)
and of the videos it annotates. Files are read with datasets/temporal_gt.py's readers and
videos probed with video/decode.py's `probe` (the container's header, no decoding)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from vidseg_cli.datasets import temporal_gt as tg
from vidseg_cli.datasets.layouts.detect import Layout
from vidseg_cli.datasets.layouts.parts import find_video
from vidseg_cli.datasets.layouts.verify import Progress, Report, closest, did_you_mean
from vidseg_cli.errors import InputError
from vidseg_cli.video.decode import SourceInfo, probe

__all__ = ["Instance", "check"]


@dataclass(frozen=True)
class Instance:
    """One annotated segment and the file that states it."""

    file: Path
    video: str
    start: float
    end: float
    label: str


def _instances(gt: tg.TemporalGT, file_of) -> list[Instance]:
    out = [Instance(file_of(gt.classes[c]), str(v), float(s), float(e), gt.classes[c])
           for v, (s, e), c in zip(gt.video, gt.segments, gt.label)]
    out += [Instance(file_of(tg.AMBIGUOUS), str(v), float(s), float(e), tg.AMBIGUOUS)
            for v, (s, e) in zip(gt.amb_video, gt.amb_segments)]
    return out


def _thumos(folders: tuple[Path, ...], report: Report) -> tuple[list[Instance], dict[str, dict]]:
    """THUMOS14 folders; class names are checked against a detclasslist.txt (the folder's
    own, else a sibling's: the dataset ships one for the test subset only)."""
    lists = [f / "detclasslist.txt" for f in folders if (f / "detclasslist.txt").is_file()]
    known: list[str] | None = None
    if lists:
        try:
            known = tg.read_class_list(lists[0])[1]
        except InputError as e:
            report.error("annotations", e.path, e.problem)
    report.ran("annotations", "segments", "splits")
    if known is None:
        report.skip("classes", "no readable detclasslist.txt to check class names against")
    else:
        report.ran("classes")
        report.counts["classes"] = len(known)
    out: list[Instance] = []
    for folder in folders:
        for subset in tg.thumos14_subsets(folder):
            try:
                gt = tg.read_thumos14_gt(folder, subset)
            except InputError as e:
                report.error("annotations", e.path, e.problem)
                continue
            if known is not None:
                _thumos_classes(folder, subset, known, report)
            if len(gt) == 0:
                report.error("splits", folder, f"subset '{subset}' has no annotations (every "
                                               f"<Class>_{subset}.txt is empty)")
            report.counts[f"instances_{subset}"] = len(gt)
            out += _instances(gt, lambda c, folder=folder, subset=subset: folder / f"{c}_{subset}.txt")
    return out, {}


def _thumos_classes(folder: Path, subset: str, known: list[str], report: Report) -> None:
    """A `<Class>_<subset>.txt` of an unknown class is an error; a known class without
    its file a warning, unless a misspelled file stands for it (one line per problem)."""
    named = sorted({f.stem.rsplit("_", 1)[0] for f in folder.glob(f"*_{subset}.txt")} - {tg.AMBIGUOUS})
    meant = set()
    for name in named:
        if name in known:
            continue
        meant.add(closest(name, known))
        report.error("classes", folder / f"{name}_{subset}.txt",
                     f"unknown class '{name}' (not in detclasslist.txt){did_you_mean(name, known)}")
    for name in known:
        if name not in named and name not in meant:
            report.warning("classes", folder / f"{name}_{subset}.txt",
                           f"missing: class {name} has no annotations in subset '{subset}'")


def _activitynet(path: Path, report: Report) -> tuple[list[Instance], dict[str, dict]]:
    report.ran("annotations", "segments", "splits")
    try:
        data = tg.load_json(path)
        db = data.get("database") if isinstance(data, dict) else None
        subsets = sorted({str(v.get("subset")) for v in db.values() if isinstance(v, dict)}) \
            if isinstance(db, dict) else [None]
        gts = [tg.read_activitynet_gt(path, s) for s in subsets]
    except InputError as e:
        report.error("annotations", e.path, e.problem)
        return [], {}
    taxonomy = tg.taxonomy_names(data.get("taxonomy"))
    if taxonomy:
        report.ran("classes")
        report.counts["classes"] = len(taxonomy)
    else:
        report.skip("classes", f"{path.name} has no taxonomy to check labels against")
    if not gts or not db:
        report.error("splits", path, "the database lists no videos")
    unknown: dict[str, list[str]] = {}
    out: list[Instance] = []
    info: dict[str, dict] = {}
    for gt in gts:
        if len(gt) == 0 and gt.videos:
            report.warning("splits", path, f"subset '{gt.subset}' lists {len(gt.videos)} videos "
                                           "but no annotations")
        report.counts[f"instances_{gt.subset}"] = len(gt)
        for c, name in enumerate(gt.classes):
            if taxonomy and name not in taxonomy:
                unknown.setdefault(name, []).extend(gt.video[gt.label == c].tolist())
        out += _instances(gt, lambda c: path)
        info.update(gt.video_info)
    for name, vids in unknown.items():
        report.error("classes", path, f"unknown class '{name}' ({len(vids)} annotation(s), first "
                                      f"in video '{vids[0]}'; not in the taxonomy){did_you_mean(name, taxonomy)}")
    return out, info


def _check_segments(insts: list[Instance], report: Report) -> None:
    for i in insts:
        seg = f"video '{i.video}': segment [{i.start:g}, {i.end:g}] ({i.label})"
        if not i.end > i.start:
            report.error("segments", i.file, f"{seg} ends at or before its start")
        elif i.start < 0:
            report.error("segments", i.file, f"{seg} starts before 0 s")


def _probe_videos(vdir: Path, ids: list[str], info: dict[str, dict], ann: Path, report: Report,
                  prog: Progress) -> dict[str, SourceInfo]:
    """Every annotated video's header; missing or unreadable ones and frame counts or rates
    other than the annotations state are errors."""
    found: dict[str, SourceInfo] = {}
    advance = prog(len(ids), "probing videos")
    for vid in ids:
        f = find_video(vdir, vid)
        advance(1)
        if f is None:
            report.error("videos", vdir / vid, f"missing: no video file ({vid}.mp4, ...) or frame "
                                               f"folder for video '{vid}'")
            continue
        try:
            src = probe(f)
        except InputError as e:
            report.error("videos", e.path, e.problem)
            continue
        want = info.get(vid, {})
        if "num_frames" in want and src.num_frames and int(want["num_frames"]) != src.num_frames:
            report.error("videos", f, f"{src.num_frames} frames, {ann.name} says {want['num_frames']}")
        if "fps" in want and abs(float(want["fps"]) - src.fps) > 1e-3:
            report.error("videos", f, f"{src.fps:g} fps, {ann.name} says {want['fps']}")
        found[vid] = src
    return found


def _check_durations(insts: list[Instance], probed: dict[str, SourceInfo], report: Report) -> None:
    """A segment may end up to one frame after the video's last frame starts."""
    for i in insts:
        src = probed.get(i.video)
        if src is None or src.num_frames <= 0:
            continue
        duration = src.num_frames / src.fps
        if i.end > duration + 1.0 / src.fps + 1e-6:
            report.error("durations", i.file, f"video '{i.video}': segment [{i.start:g}, {i.end:g}] "
                                              f"({i.label}) ends after the video ({duration:g} s)")


def check(layout: Layout, vdir: Path | None, report: Report, prog: Progress) -> dict[str, SourceInfo]:
    """The annotation checks, and with `vdir` the video checks; the probed videos."""
    ann = layout.annotations
    if len(ann) > 1 or ann[0].is_dir():
        insts, info = _thumos(ann, report)
    else:
        insts, info = _activitynet(ann[0], report)
    _check_segments(insts, report)
    ids = sorted({i.video for i in insts} | set(info))
    report.counts.update(videos=len(ids), instances=sum(i.label != tg.AMBIGUOUS for i in insts))
    if vdir is None:
        for c in ("videos", "durations"):
            report.skip(c, "no --videos given")
        return {}
    report.ran("videos", "durations")
    if not vdir.is_dir():
        report.error("videos", vdir, "no such folder of videos")
        return {}
    probed = _probe_videos(vdir, ids, info, ann[0], report, prog)
    _check_durations(insts, probed, report)
    return probed
