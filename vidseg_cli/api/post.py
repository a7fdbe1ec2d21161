"""File-level functions behind hmm-fit, hmm-smooth and crf-refine (3DFCN §3.5–3.6): they
read the HDF5 inputs, call stages/hmm/ and stages/crf.py, and write the outputs."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from vidseg_cli.cmdline import command_line
from vidseg_cli.errors import InputError
from vidseg_cli.progress import progress_bar

SMOOTH = "hmm-smooth"


def _gt_sources(paths: list[str]) -> list[tuple[str, Path]]:
    """(format, path) of every ground-truth video or file: labels .h5, J-HMDB .mat, DAVIS
    sequence folders, temporal ground truth (ActivityNet JSON, THUMOS14 folder); the
    layout is datasets/layouts/detect.py's."""
    from vidseg_cli.datasets import masks as mio
    from vidseg_cli.datasets.layouts.detect import sniff
    from vidseg_cli.datasets.layouts.parts import jhmdb_masks

    out: list[tuple[str, Path]] = []
    for raw in paths:
        p = Path(raw)
        if not p.exists():
            raise InputError(p, "no such file or folder")
        layout = sniff(p)
        if p.is_file() and layout is None:
            raise InputError(
                p, "expected labels .h5, J-HMDB .mat, ActivityNet-style .json ground "
                "truth, or a folder of them"
            )
        if layout is not None and layout.temporal:
            out.append(("temporal", p))
        elif p.is_file():
            out.append((layout.kind, p))
        elif layout is not None and layout.kind == "labels":
            out.extend(("labels", f) for f in mio.find_h5_files(p))
        elif layout is not None and layout.kind == "jhmdb":
            out.extend(("jhmdb", f) for _, f in jhmdb_masks(layout).values())
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
            fps: float | None, foreground: bool = False) -> dict[str, Any]:
    """Count the HMM from ground truth and write it; return a summary. `foreground`
    merges every action class into one (the class list of models trained with a
    foreground target: background, foreground)."""
    import numpy as np

    from vidseg_cli import store
    from vidseg_cli.datasets.segment_data import FOREGROUND_CLASSES, to_target
    from vidseg_cli.stages.hmm.fit import TransitionCounts, check_labels, same_classes

    sources = _gt_sources(gt_paths)
    counts: TransitionCounts | None = None
    names: list[str] | None = None
    first_src: Path | None = None
    inputs: list[Path] = []
    notes: list[str] = []
    videos = 0
    for src, vid, labels, cls in _gt_videos(sources, subset, fps, notes):
        if foreground:
            try:  # the class range is checked before the classes are merged
                check_labels(labels, len(cls))
            except ValueError as e:
                raise InputError(src, f"video '{vid}': {e}") from None
            labels, cls = to_target(labels, "foreground"), list(FOREGROUND_CLASSES)
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
        out, prior, trans, names, inputs=inputs, command=command_line(),
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


def carried_action_scores(rec: Any, attrs: dict[str, Any]) -> dict[str, Any]:
    """The optional per-frame `action_scores` of a scores record (Sep3D's head) as datasets
    for the post-processed scores, their `action_names` added to `attrs`: post-processing
    changes the pixels, not the frames' action scores, which evaluate's frame-mAP needs."""
    import numpy as np

    if "action_scores" not in rec:
        return {}
    attrs["action_names"] = list(rec.attrs["action_names"])
    return {"action_scores": np.asarray(rec["action_scores"][()])}


def smooth_file(src: Path, dst: Path, hmm_rec: Any, *, device: str, max_memory: int,
                min_prob: float, tolerance: float, threads: int, quiet: bool,
                log_space: bool = False, score_prior: str = "hmm") -> dict[str, Any]:
    """Smooth one scores or frame_scores file into `dst`. Per-pixel beliefs are streamed
    into the output tile by tile (store.ScoresWriter, chunked like the tiles), so memory
    stays near --max-memory whatever the video's size."""
    import numpy as np

    from vidseg_cli import store
    from vidseg_cli.stages.hmm.fit import same_classes
    from vidseg_cli.stages.hmm.smooth import smooth
    from vidseg_cli.stages.hmm.tiles import file_reserve, plan_tiles

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
        meta = dict(video_id=rec.video_id, fps=rec.fps, inputs=[src, hmm_rec.path],
                    class_names=rec.class_names, command=command_line())
        extra = {"postprocess": "hmm-smooth", "hmm_uid": hmm_rec.uid, "hmm_score_prior": score_prior}
        if "spatial_stride" in rec.attrs:
            extra["spatial_stride"] = rec.attrs["spatial_stride"]
        carried = carried_action_scores(rec, extra)
        try:
            if kind == "frame_scores":  # (T, C): small, written whole
                out = np.empty(probs.shape, np.float32)
                smooth(probs, hmm_rec["prior"], hmm_rec["transition"], out=out,
                       device=device, min_prob=min_prob, tolerance=tolerance,
                       threads=threads, log_space=log_space or None, score_prior=score_prior)
                store.write_frame_scores(dst, out, attrs=extra, num_frames=rec.num_frames,
                                         **meta)
                tiles = 1
            else:
                out_dtype = np.float16 if probs.dtype == np.float16 else np.float32
                # One plan for the output's chunks and smooth()'s tiles (passed to it), so
                # every tile write fills whole chunks. Log space computes in float64.
                plan = plan_tiles(probs.shape, probs.dtype.itemsize, max_memory,
                                  compute_itemsize=8 if log_space else 4, log_space=log_space,
                                  out_itemsize=np.dtype(out_dtype).itemsize,
                                  reserve=file_reserve(probs))
                tiles = plan.count
                # One chunk per frame and tile: each tile's write fills whole chunks.
                chunks = (1, probs.shape[1], plan.rows, plan.cols)
                with store.ScoresWriter(dst, probs.shape, dtype=out_dtype, chunks=chunks,
                                        attrs=extra, extra=carried, **meta) as writer, \
                        progress_bar(tiles, f"{SMOOTH} {rec.video_id} (tiles)",
                                     quiet or tiles < 2) as adv:
                    smooth(probs, hmm_rec["prior"], hmm_rec["transition"], out=writer.probs,
                           max_memory=max_memory, device=device, min_prob=min_prob,
                           tolerance=tolerance, threads=threads, progress=adv,
                           log_space=log_space or None, score_prior=score_prior, plan=plan)
        except ValueError as e:
            raise InputError(src, str(e)) from None
    return {"input": str(src), "output": str(dst), "kind": kind, "shape": list(probs.shape),
            "tiles": tiles}


def _cover_problem(hw: tuple[int, int], stride: int, frame_hw: tuple[int, int]) -> str | None:
    """Why scores of size hw at `stride` can't be the scores of frames of frame_hw."""
    (h, w), (fh, fw) = hw, frame_hw
    full = (h * stride, w * stride)
    if stride == 1 and full != (fh, fw):
        return f"scores are {w}x{h} (WxH), the frames {fw}x{fh}"
    if not (full[0] >= fh > full[0] - stride and full[1] >= fw > full[1] - stride):
        return (f"scores of {w}x{h} (WxH) at spatial_stride {stride} don't cover the frames' "
                f"{fw}x{fh}")
    return None


def refine_file(src: Path, frames_path: Path, dst: Path, *, params: Any, jobs: int,
                keep_probs: bool, tolerance: float | None, quiet: bool) -> dict[str, Any]:
    """CRF-refine one scores file on its frames; write labels (and refined scores)."""
    import numpy as np
    import torch

    from vidseg_cli import store
    from vidseg_cli.stages.crf import refine_frames
    from vidseg_cli.stages.hmm.recursions import ProbabilityError, check_probs

    with store.open_record(src, "scores") as rec, store.open_record(frames_path, "frames") as fr:
        probs_dst = dst.parent / store.output_name(rec.video_id, "scores") if keep_probs else None
        if src.resolve() in (dst.resolve(), probs_dst.resolve() if probs_dst else None):
            raise InputError(src, "an output would replace this input; choose another -o")
        probs, frames = rec["probs"], fr["frames"]
        t, c, h, w = probs.shape
        tf, fh, fw, _ = frames.shape
        if t != tf:
            raise InputError(src, f"{t} frames of scores, but the frames file {frames_path} has {tf}")
        if c > 256:
            raise InputError(src, f"{c} classes do not fit a labels file's uint8 class indices")
        stride = int(rec.attrs.get("spatial_stride", 1) or 1)
        if stride < 1:
            raise InputError(src, f"'spatial_stride' should be >= 1, found {stride}")
        problem = _cover_problem((h, w), stride, (fh, fw))
        if problem:
            raise InputError(src, f"{problem} ({frames_path})")

        def score_frames() -> Iterator[np.ndarray]:
            for i in range(t):
                p = np.asarray(probs[i])  # C x h x w
                if tolerance is not None:
                    try:
                        check_probs(torch.from_numpy(p.reshape(1, c, h * w)),
                                    lambda j: f"pixel (y={j // w}, x={j % w})", tolerance, i)
                    except ProbabilityError as e:
                        raise InputError(src, str(e)) from None
                yield p

        def images() -> Iterator[np.ndarray]:
            for i in range(t):
                yield np.asarray(frames[i])  # H x W x 3

        meta = dict(video_id=rec.video_id, fps=rec.fps, inputs=[src, frames_path],
                    class_names=rec.class_names, command=command_line())
        extra = {"postprocess": "crf-refine",
                 **{f"crf_{k}": v for k, v in params.as_dict().items()}}
        labels = np.empty((t, fh, fw), np.uint8)  # T x H x W
        # The marginals (T x C x H x W float32, 88x the labels for 22 classes) are
        # streamed into their file frame by frame; it is complete before the labels file,
        # whose presence means done.
        with contextlib.ExitStack() as stack:
            probs_attrs = dict(extra)  # the labels file holds no action scores
            marg = stack.enter_context(store.ScoresWriter(
                probs_dst, (t, c, fh, fw), attrs=probs_attrs,
                extra=carried_action_scores(rec, probs_attrs), **meta)) if keep_probs else None
            adv = stack.enter_context(progress_bar(t, f"crf-refine {rec.video_id} (frames)", quiet))
            for i, (lab, m) in enumerate(refine_frames(images(), score_frames(), stride=stride,
                                                       params=params, jobs=jobs,
                                                       keep_probs=keep_probs, progress=adv)):
                labels[i] = lab
                if marg is not None:
                    marg[i] = m
    store.write_labels(dst, labels, attrs=extra, num_frames=t, **meta)
    return {"input": str(src), "frames": str(frames_path), "output": str(dst),
            "probs": str(probs_dst) if probs_dst else None, "num_frames": t,
            "upsampled": stride > 1}


