"""verify()'s checks of per-pixel ground truth against its frames: J-HMDB puppet masks,
DAVIS 2016 annotations, a synth set's labels files, and our labels files. Masks are read
with datasets/masks.py's readers; frames are probed (first image and count, no decoding)."""

from __future__ import annotations

from pathlib import Path

from vidseg_cli.datasets import masks as mio
from vidseg_cli.datasets.layouts.detect import Layout
from vidseg_cli.datasets.layouts.parts import davis_split, jhmdb_frames, jhmdb_masks, jhmdb_splits
from vidseg_cli.datasets.layouts.verify import Progress, Report, did_you_mean
from vidseg_cli.errors import InputError
from vidseg_cli.video.decode import SourceInfo, probe

__all__ = ["check_davis", "check_jhmdb", "check_labels", "check_synth_labels"]


def _wxh(h: int, w: int) -> str:
    return f"{w}x{h} (WxH)"


def _probe(folder: Path, report: Report) -> SourceInfo | None:
    try:
        return probe(folder)
    except InputError as e:
        report.error("masks", e.path, e.problem)
        return None


# -- J-HMDB ---------------------------------------------------------------------------
def check_jhmdb(layout: Layout, report: Report, prog: Progress) -> None:
    report.ran("masks", "classes")
    try:
        videos = jhmdb_masks(layout)
    except InputError as e:
        report.error("masks", e.path, e.problem)
        return
    report.counts.update(videos=len(videos))
    for cls in sorted({c for c, _ in videos.values()} - set(mio.JHMDB_CLASSES)):
        report.error("classes", layout.masks / cls if layout.masks.is_dir() else layout.masks,
                     f"folder '{cls}' is not a J-HMDB class{did_you_mean(cls, mio.JHMDB_CLASSES)}")
    if layout.frames is None:
        report.warning("masks", layout.path, "no frame folders (Rename_Images/ or frames/): "
                                             "masks not compared with frames")
    no_frames: list[str] = []
    advance = prog(len(videos), "reading puppet masks")
    for vid, (cls, mat) in videos.items():
        advance(1)
        if cls not in mio.JHMDB_CLASSES:
            continue
        try:
            m = mio.read_jhmdb_mat(mat, category=cls)
        except InputError as e:
            report.error("masks", e.path, e.problem)
            continue
        folder = jhmdb_frames(layout, cls, vid)
        if folder is None:
            no_frames.append(f"{cls}/{vid}")
            continue
        src = _probe(folder, report)
        if src is None:
            continue
        if (src.height, src.width) != m.frame_size:
            report.error("masks", mat, f"masks are {_wxh(*m.frame_size)}, the frames ({folder}) "
                                       f"are {_wxh(src.height, src.width)}")
        # J-HMDB: a few videos have one frame more than masks; training drops it.
        if src.num_frames not in (m.num_frames, m.num_frames + 1):
            report.error("masks", mat, f"{m.num_frames} masks for {src.num_frames} frames ({folder})")
    report.counts["videos_with_frames"] = len(videos) - len(no_frames)
    if no_frames and layout.frames is not None:
        shown = ", ".join(no_frames[:3]) + (", ..." if len(no_frames) > 3 else "")
        report.warning("masks", layout.frames, f"{len(no_frames)} of {len(videos)} videos have no "
                                               f"frame folder ({shown})")
    _jhmdb_splits(layout, set(videos), report)


def _jhmdb_splits(layout: Layout, videos: set[str], report: Report) -> None:
    try:
        splits = jhmdb_splits(layout)
    except InputError as e:
        report.error("splits", e.path, e.problem)
        return
    if not splits:
        report.skip("splits", "no split files (splits/CLASS_test_splitN.txt)")
        return
    report.ran("splits")
    report.counts["splits"] = len(splits)
    for n, files in sorted(splits.items()):
        for f, (train, test) in files.items():
            for name, part in (("train (1)", train), ("test (2)", test)):
                if not part:
                    report.error("splits", f, f"split {n} lists no {name} videos")
            unknown = sorted((train | test) - videos)
            if unknown:
                report.error("splits", f, f"{len(unknown)} listed video(s) have no puppet mask "
                                          f"(first: '{unknown[0]}')")


# -- DAVIS 2016 -----------------------------------------------------------------------
def check_davis(layout: Layout, report: Report, prog: Progress) -> None:
    if layout.frames is None:
        report.skip("masks", "no JPEGImages/ folder to compare the masks with")
    else:
        report.ran("masks")
    try:
        sequences = mio.davis_sequences(layout.masks)
    except InputError as e:
        report.error("masks", e.path, e.problem)
        return
    report.counts.update(sequences=len(sequences))
    n_masks = 0
    advance = prog(len(sequences), "reading masks")
    for seq, ann in sequences.items():
        advance(1)
        files = sorted(p for p in ann.iterdir() if p.suffix.lower() == ".png" and p.is_file())
        n_masks += len(files)
        if layout.frames is None:
            continue
        folder = layout.frames / seq
        if not folder.is_dir():
            report.error("masks", folder, f"missing: the frames of sequence '{seq}'")
            continue
        src = _probe(folder, report)
        if src is None:
            continue
        if len(files) != src.num_frames:
            report.error("masks", ann, f"{len(files)} masks for {src.num_frames} frames ({folder})")
        bad = []
        for f in files:
            try:
                shape = mio.read_png_mask(f).shape
            except InputError as e:
                report.error("masks", e.path, e.problem)
                continue
            if shape != (src.height, src.width):
                bad.append((f, shape))
        if bad:
            more = f" (and {len(bad) - 1} more in this sequence)" if len(bad) > 1 else ""
            report.error("masks", bad[0][0], f"mask is {_wxh(*bad[0][1])}, the frames are "
                                             f"{_wxh(src.height, src.width)}{more}")
    report.counts["masks"] = n_masks
    _davis_splits(layout, set(sequences), report)


def _davis_splits(layout: Layout, sequences: set[str], report: Report) -> None:
    try:
        found = [s for s in (davis_split(layout, n) for n in ("train", "val")) if s is not None]
    except InputError as e:
        report.error("splits", e.path, e.problem)
        return
    if not found:
        report.skip("splits", "no split files (ImageSets/480p/train.txt, val.txt)")
        return
    report.ran("splits")
    for f, seqs in found:
        if not seqs:
            report.error("splits", f, "empty split: it lists no sequences")
        unknown = sorted(seqs - sequences)
        if unknown:
            report.error("splits", f, f"{len(unknown)} listed sequence(s) have no annotations "
                                      f"(first: '{unknown[0]}')")


# -- our labels files -----------------------------------------------------------------
def _labels_shape(path: Path, report: Report) -> tuple[tuple[int, ...], list[str]] | None:
    from vidseg_cli import store

    try:
        with store.open_record(path, "labels") as rec:
            return tuple(rec["labels"].shape), list(rec.class_names or [])
    except store.StoreError as e:
        report.error("masks", e.path, e.problem)
        return None


def check_labels(layout: Layout, report: Report, prog: Progress) -> None:
    report.ran("masks")
    files = mio.find_h5_files(layout.masks)
    report.counts.update(videos=len(files))
    advance = prog(len(files), "reading labels files")
    for f in files:
        advance(1)
        _labels_shape(f, report)


def check_synth_labels(layout: Layout, probed: dict[str, SourceInfo], report: Report,
                       prog: Progress) -> None:
    """Each video's labels file: present, (T, H, W) of its video, and the classes
    ["background", *taxonomy] of the ground truth."""
    from vidseg_cli import store
    from vidseg_cli.datasets import temporal_gt as tg

    report.ran("masks")
    try:
        data = tg.load_json(layout.annotations[0])
        want = ["background", *tg.taxonomy_names(data.get("taxonomy"))]
        ids = sorted(data["database"])
    except (InputError, AttributeError, KeyError, TypeError):
        return  # the annotation checks report it
    advance = prog(len(ids), "reading labels files")
    for vid in ids:
        advance(1)
        f = layout.masks / store.output_name(vid, "labels")
        if not f.is_file():
            report.error("masks", f, f"missing: the labels of video '{vid}'")
            continue
        got = _labels_shape(f, report)
        if got is None:
            continue
        shape, names = got
        if names != want:
            report.error("classes", f, f"class_names {names} are not the ground truth's {want}")
        src = probed.get(vid)
        if src is not None and shape != (src.num_frames, src.height, src.width):
            report.error("masks", f, f"labels are {shape[0]} x {_wxh(*shape[1:])}, the video is "
                                     f"{src.num_frames} x {_wxh(src.height, src.width)}")
