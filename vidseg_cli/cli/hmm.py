"""`vidseg hmm-fit` and `vidseg hmm-smooth`: the HMM of 3DFCN §3.5 (stages/hmm.py)."""

from __future__ import annotations

import re
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click

from vidseg_cli.cli.common import (
    fail,
    finish,
    json_option,
    notice,
    overwrite_option,
    progress_bar,
    quiet_option,
    resolve_outputs,
    run_batch,
)
from vidseg_cli.errors import InputError

_H5 = (".h5", ".hdf5")
_SIZE = re.compile(r"\s*(\d+(?:\.\d*)?)\s*([kmgt]?)(i?b?)\s*", re.IGNORECASE)


def _command() -> str:
    return " ".join(["vidseg", *sys.argv[1:]])


def parse_bytes(ctx, param, value):
    """'512M', '2G', '1.5GiB', '1000000' -> bytes (powers of 1024 for K/M/G/T)."""
    if value is None:
        return None
    m = _SIZE.fullmatch(str(value))
    if not m:
        raise click.BadParameter(f"expected a size such as 512M, 2G or 1073741824, got {value!r}")
    n = float(m.group(1)) * 1024 ** " KMGT".index((m.group(2) or " ").upper())
    if n < 1:
        raise click.BadParameter(f"must be at least 1 byte, got {value!r}")
    return int(n)


def resolve_device(stage: str, device: str) -> str:
    """--device auto|cpu|cuda[:i] -> a torch device string; a missing GPU is a usage error."""
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cpu":
        return "cpu"
    m = re.fullmatch(r"cuda(?::(\d+))?", device)
    if not m:
        fail(stage, f"--device: expected auto, cpu, cuda or cuda:N, got {device!r}")
    if not torch.cuda.is_available():
        fail(stage, f"--device {device}: no CUDA device is available (use --device cpu or auto)")
    if m.group(1) is not None and int(m.group(1)) >= torch.cuda.device_count():
        fail(stage, f"--device {device}: only {torch.cuda.device_count()} CUDA device(s)")
    return device


def device_option(f):
    return click.option(
        "--device", default="auto", show_default=True, metavar="auto|cpu|cuda[:i]",
        help="Where the recursions run.",
    )(f)


# ====================================================================================
# hmm-fit
# ====================================================================================
FIT = "hmm-fit"


def _gt_sources(paths: list[str]) -> list[tuple[str, Path]]:
    """(format, path) of every ground-truth video or file: labels .h5, J-HMDB .mat, DAVIS
    sequence folders, temporal ground truth (ActivityNet JSON, THUMOS14 folder)."""
    from vidseg_cli.datasets import masks as mio

    out: list[tuple[str, Path]] = []
    for raw in paths:
        p = Path(raw)
        if not p.exists():
            raise InputError(p, "no such file or folder")
        if p.is_file():
            suffix = p.suffix.lower()
            if suffix in _H5:
                out.append(("labels", p))
            elif suffix == ".mat":
                out.append(("jhmdb", p))
            elif suffix == ".json":
                out.append(("temporal", p))
            else:
                raise InputError(
                    p, "expected labels .h5, J-HMDB .mat, ActivityNet-style .json ground "
                    "truth, or a folder of them"
                )
            continue
        h5s = mio.find_h5_files(p)
        if h5s:
            out.extend(("labels", f) for f in h5s)
        elif next(p.glob("*/*.mat"), None) is not None:
            out.extend(("jhmdb", f) for f in mio.jhmdb_videos(p).values())
        elif mats := sorted(p.glob("*.mat")):  # one class folder of puppet_mask
            out.extend(("jhmdb", f) for f in mats)
        elif any((p / q).is_file() for q in ("detclasslist.txt", "gt.json", "annotations/detclasslist.txt")):
            out.append(("temporal", p))
        else:
            out.extend(("davis", f) for f in mio.davis_sequences(p).values())
    return out


def _temporal_videos(path: Path, subset: str | None, fps: float | None,
                     notes: list[str]) -> Iterator[tuple[str, Any, list[str]]]:
    """Per-frame labels (T,) of every video of temporal ground truth: 0 background,
    k+1 for class k, frame t at time t / fps (metrics.frame_ap.rasterize, as frame AP
    counts positives). Where segments of two classes overlap, the first class wins;
    Ambiguous segments count as background.

    The frame rate is the video's own (synthetic ActivityNet-style JSON carries it) or
    --fps; the length is the video's num_frames, else duration x fps, else (THUMOS14 text
    has neither) up to the end of its last segment: `notes` says how many videos.
    """
    import numpy as np

    from vidseg_cli.datasets import temporal_gt as tg
    from vidseg_cli.metrics.frame_ap import rasterize

    gt = tg.load_temporal_gt(path, subset)
    names = ["background", *gt.classes]
    truncated = overlapping = 0
    for video in gt.videos:
        info = gt.video_info.get(video, {})
        rate = float(info.get("fps") or fps or 0)
        if rate <= 0:
            raise InputError(path, f"video '{video}': no frame rate in the ground truth; give --fps")
        m = gt.video == video
        segs, labs = gt.segments[m], gt.label[m]
        if info.get("num_frames"):
            t = int(info["num_frames"])
        elif info.get("duration"):
            t = int(round(float(info["duration"]) * rate))
        else:
            t = int(np.ceil(segs[:, 1].max() * rate)) if len(segs) else 0
            truncated += 1
        pos = rasterize(t, rate, segs, labs, len(gt.classes))  # T x C bool
        overlapping += int((pos.sum(axis=1) > 1).any())
        labels = np.where(pos.any(axis=1), pos.argmax(axis=1) + 1, 0).astype(np.int64)  # T
        yield video, labels, names
    if truncated:
        notes.append(f"{path}: {truncated} video(s) have no duration; counted up to their last segment")
    if overlapping:
        notes.append(f"{path}: {overlapping} video(s) have overlapping segments of different "
                     "classes; the first class in the class list wins")


def _gt_videos(sources: list[tuple[str, Path]], subset: str | None, fps: float | None,
               notes: list[str]) -> Iterator[tuple[Path, str, Any, list[str]]]:
    """(source file, video id, labels (T, ...), class names) of every ground-truth video."""
    from vidseg_cli.datasets import masks as mio

    for fmt, p in sources:
        if fmt == "labels":
            from vidseg_cli import store

            kind = store.peek_kind(p)
            if kind != "labels":
                raise InputError(p, f"expected a labels file (ground truth), found a {kind} file")
            v = mio.read_labels_file(p)
            yield p, v.video_id, v.masks, list(v.class_names or [])
        elif fmt == "jhmdb":
            v = mio.read_jhmdb_mat(p)
            yield p, v.video_id, v.masks, list(v.class_names or mio.JHMDB_CLASS_NAMES)
        elif fmt == "davis":
            v = mio.read_davis_sequence(p)
            yield p, v.video_id, v.masks, ["background", "foreground"]
        else:
            for vid, labels, names in _temporal_videos(p, subset, fps, notes):
                yield p, vid, labels, names


def fit_hmm(gt_paths: list[str], out: Path, smoothing: float, subset: str | None,
            fps: float | None) -> dict[str, Any]:
    """Count the HMM from ground truth and write it; return a summary."""
    import numpy as np

    from vidseg_cli import store
    from vidseg_cli.stages.hmm import TransitionCounts, same_classes

    sources = _gt_sources(gt_paths)
    counts: TransitionCounts | None = None
    names: list[str] | None = None
    first_src: Path | None = None
    inputs: list[Path] = []
    notes: list[str] = []
    videos = 0
    for src, vid, labels, cls in _gt_videos(sources, subset, fps, notes):
        if names is None:
            names, first_src = cls, src
            counts = TransitionCounts(len(names))
        elif (diff := same_classes(cls, names)) is not None:
            raise InputError(src, f"class list differs from {first_src}'s ({diff}); fit one HMM per class list")
        try:
            counts.add(np.asarray(labels))
        except ValueError as e:
            raise InputError(src, f"video '{vid}': {e}") from None
        if src not in inputs:
            inputs.append(src)
        videos += 1
    if counts is None or videos == 0:
        raise InputError(gt_paths[0], "no ground-truth videos found")
    prior, trans = counts.estimate(smoothing)
    store.write_hmm(
        out, prior, trans, names, inputs=inputs, command=_command(),
        attrs={
            "smoothing": float(smoothing),
            "num_videos": videos,
            "num_sequences": int(counts.sequences),
            "num_transitions": int(counts.pairs.sum()),
        },
    )
    return {
        "output": str(out),
        "classes": len(names),
        "videos": videos,
        "sequences": int(counts.sequences),
        "transitions": int(counts.pairs.sum()),
        "unseen_classes": [names[i] for i in counts.unseen()],
        "self_transition": {n: float(trans[i, i]) for i, n in enumerate(names)},
        "notes": notes,
    }


@click.command("hmm-fit")
@click.argument("gt", nargs=-1, required=True, type=click.Path())
@click.option("-o", "--output", "out", required=True, type=click.Path(),
              help="Output hmm .h5 file (a folder, or a name without .h5, gets hmm.h5 inside).")
@click.option("--smoothing", type=click.FloatRange(min=0), default=1.0, show_default=True,
              help="Additive smoothing: (count + s) / (total + C s) for P(l_1) and each row "
                   "of P(l_t | l_(t-1)). 0 = raw frequencies.")
@click.option("--subset", default=None,
              help="Subset of temporal ground truth to count (e.g. validation).")
@click.option("--fps", type=click.FloatRange(min=0, min_open=True), default=None,
              help="Frame rate for rasterizing temporal ground truth given in seconds "
                   "(when the ground truth does not carry one).")
@overwrite_option
@quiet_option
@json_option
def hmm_fit(gt, out, smoothing, subset, fps, overwrite, quiet, json_out):
    """Count the HMM of 3DFCN §3.5 from ground truth GT: the initial distribution
    P(l_1) and one transition matrix P(l_t | l_(t-1)) shared by all pixels, over the
    class list of the ground truth (index 0 background).

    \b
    GT: labels .h5 files (pixel masks), J-HMDB puppet masks (puppet_mask/CLASS/VIDEO.mat
    or one .mat), DAVIS mask folders (Annotations/480p/SEQ/*.png; background/foreground),
    or temporal ground truth (ActivityNet-style JSON, THUMOS14 folder) rasterized to
    per-frame labels (frame t at t / fps; unannotated frames are background). Files or
    folders; every source must share one class list.
    """
    o = Path(out)
    if o.is_dir() or o.suffix not in _H5:
        o = o / "hmm.h5"
    resolve_outputs(FIT, [str(o)], str(o), "hmm")  # creates and checks the folder
    res = run_batch(FIT, [(", ".join(gt), o)],
                    lambda item: fit_hmm(list(gt), item[1], smoothing, subset, fps),
                    overwrite=overwrite, quiet=True, describe="ground truth")
    if res.skipped:
        notice(FIT, f"{o}: exists, skipped (use --overwrite to redo)", quiet)
    for r in res.results:
        for note in r["notes"]:
            click.echo(f"vidseg {FIT}: warning: {note}", err=True)
        if r["unseen_classes"] and not quiet:
            shown = ", ".join(r["unseen_classes"][:8]) + (", ..." if len(r["unseen_classes"]) > 8 else "")
            click.echo(f"vidseg {FIT}: warning: {len(r['unseen_classes'])} class(es) never occur "
                       f"in the ground truth ({shown}); their rows come from smoothing alone",
                       err=True)
    finish(FIT, res, 1, json_out, {"results": res.results}, quiet=quiet)


# ====================================================================================
# hmm-smooth
# ====================================================================================
SMOOTH = "hmm-smooth"


def _score_inputs(paths: list[str], quiet: bool) -> list[Path]:
    """Files as given; folders expanded to their scores and frame_scores files."""
    from vidseg_cli import store
    from vidseg_cli.datasets.masks import find_h5_files

    files: list[Path] = []
    for raw in paths:
        p = Path(raw)
        if not p.is_dir():
            files.append(p)
            continue
        found = find_h5_files(p)
        keep = []
        for f in found:
            try:
                if store.peek_kind(f) in ("scores", "frame_scores"):
                    keep.append(f)
            except store.StoreError:
                pass
        if not keep:
            fail(SMOOTH, f"{p}: no scores or frame_scores files in this folder")
        if len(keep) < len(found):
            notice(SMOOTH, f"{p}: {len(found) - len(keep)} file(s) of other kinds ignored", quiet)
        files.extend(keep)
    return files


def _load_hmm(path: str) -> Any:
    from vidseg_cli import store
    from vidseg_cli.stages.hmm import check_hmm

    try:
        rec = store.read_hmm(path)
    except store.StoreError as e:
        fail(SMOOTH, str(e))
    try:
        check_hmm(rec["prior"], rec["transition"])
    except ValueError as e:
        fail(SMOOTH, f"{path}: {e}")
    return rec


def smooth_file(src: Path, dst: Path, hmm_rec: Any, *, device: str, max_memory: int,
                min_prob: float, tolerance: float, threads: int, quiet: bool,
                log_space: bool = False) -> dict[str, Any]:
    """Smooth one scores or frame_scores file into `dst`."""
    import numpy as np

    from vidseg_cli import store
    from vidseg_cli.stages.hmm import plan_tiles, same_classes, smooth

    if src.resolve() == dst.resolve():
        raise InputError(src, "the output would replace this input; choose another -o")
    kind = store.peek_kind(src)
    if kind not in ("scores", "frame_scores"):
        raise InputError(src, f"expected a scores or frame_scores file, found a {kind} file")
    with store.open_record(src, kind) as rec:
        diff = same_classes(rec.class_names, hmm_rec.class_names)
        if diff is not None:
            raise InputError(src, f"class list differs from the HMM's ({hmm_rec.path}): {diff}")
        probs = rec["probs"]  # lazy h5py dataset
        out_dtype = np.float16 if (kind == "scores" and probs.dtype == np.float16) else np.float32
        out = np.empty(probs.shape, out_dtype)
        try:
            tiles = 1 if kind == "frame_scores" else plan_tiles(
                probs.shape, probs.dtype.itemsize, max_memory, log_space=log_space).count
            with progress_bar(tiles, f"{SMOOTH} {rec.video_id} (tiles)", quiet or tiles < 2) as adv:
                smooth(probs, hmm_rec["prior"], hmm_rec["transition"], out=out,
                       max_memory=max_memory, device=device, min_prob=min_prob,
                       tolerance=tolerance, threads=threads, progress=adv,
                       log_space=log_space or None)
        except ValueError as e:
            raise InputError(src, str(e)) from None
        meta = dict(video_id=rec.video_id, num_frames=rec.num_frames, fps=rec.fps,
                    inputs=[src, hmm_rec.path], class_names=rec.class_names,
                    command=_command())
        extra = {"postprocess": "hmm-smooth", "hmm_uid": hmm_rec.uid}
        if "spatial_stride" in rec.attrs:
            extra["spatial_stride"] = rec.attrs["spatial_stride"]
    if kind == "scores":
        store.write_scores(dst, out, attrs=extra, **meta)
    else:
        store.write_frame_scores(dst, out, attrs=extra, **meta)
    return {"input": str(src), "output": str(dst), "kind": kind, "shape": list(out.shape),
            "tiles": tiles}


@click.command("hmm-smooth")
@click.argument("scores", nargs=-1, required=True, type=click.Path())
@click.option("--hmm", "hmm_path", required=True, type=click.Path(),
              help="The hmm .h5 file made by hmm-fit.")
@click.option("-o", "--output", "out", required=True, type=click.Path(),
              help="Output .h5 file (one input) or folder (<video_id>.<kind>.h5 per input).")
@click.option("--max-memory", callback=parse_bytes, default="1G", show_default=True,
              metavar="SIZE", help="Working memory of the recursions per video (e.g. 512M, "
                                   "4G): pixels are processed in spatial tiles that fit.")
@click.option("--min-prob", type=click.FloatRange(min=0, min_open=True, max=1), default=1e-6,
              show_default=True, help="Posteriors below this are read as this (exact zeros "
                                      "would rule out every path).")
@click.option("--tolerance", type=click.FloatRange(min=0), default=1e-3, show_default=True,
              help="Refuse scores whose class probabilities sum to 1 +- more than this.")
@click.option("--log-space", is_flag=True,
              help="Per-pixel recursions in float64 log space (exact over any range, "
                   "slower); frame scores always use it. Needed only for HMMs with zero "
                   "transitions on long videos.")
@device_option
@click.option("--jobs", "-j", type=click.IntRange(1), default=1, show_default=True,
              help="With several inputs, videos in parallel (joblib); with one, CPU threads "
                   "over its pixel blocks.")
@overwrite_option
@quiet_option
@json_option
def hmm_smooth(scores, hmm_path, out, max_memory, min_prob, tolerance, log_space, device,
               jobs, overwrite, quiet, json_out):
    """HMM belief P(l_t | Z_T) of 3DFCN §3.5, Eq. (1)-(4), for SCORES files (per-pixel
    scores (T,C,H,W) or per-frame frame_scores (T,C); files or folders).

    Forward-backward recursions over each pixel's label sequence, with the network's
    posterior divided by the prior P(l_t) of Eq. (4) as the observation, scaled so long
    videos stay exact; vectorised over pixels in torch on CPU or GPU, in spatial tiles
    under --max-memory. Writes the same kind as its input. The scores' class list must
    be the HMM's. --jobs: videos in parallel, or pixel blocks of a single video.
    """
    from vidseg_cli import store

    files = _score_inputs(list(scores), quiet)
    hmm_rec = _load_hmm(hmm_path)
    dev = resolve_device(SMOOTH, device)
    ids, kinds = [], []
    for f in files:
        try:
            with store.open_record(f) as rec:
                ids.append(rec.video_id)
                kinds.append(rec.kind)
        except store.StoreError as e:
            if len(files) == 1:
                fail(SMOOTH, str(e))
            ids.append(store.video_id_of(f))
            kinds.append("scores")
    outputs = resolve_outputs(SMOOTH, [str(f) for f in files], out, "scores", ids)
    if len(files) > 1 or Path(out).is_dir():
        outputs = [o.parent / store.output_name(i, k) for o, i, k in zip(outputs, ids, kinds)]
    threads = jobs if len(files) == 1 else 1
    res = run_batch(
        SMOOTH, list(zip([str(f) for f in files], outputs)),
        lambda item: smooth_file(Path(item[0]), item[1], hmm_rec, device=dev,
                                 max_memory=max_memory, min_prob=min_prob,
                                 tolerance=tolerance, threads=threads, quiet=quiet,
                                 log_space=log_space),
        overwrite=overwrite, jobs=jobs, quiet=quiet,
    )
    finish(SMOOTH, res, len(files), json_out, {"results": res.results}, quiet=quiet)
