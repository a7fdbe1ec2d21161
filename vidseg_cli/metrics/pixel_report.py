"""Pixel-level evaluation for `vidseg evaluate`: read predictions and ground truth, pair
them by video id, score, and lay the result out as a table.

    result = evaluate_pixel(["runs/masks/"], "refdata/davis2016", davis_task="unsupervised")
    console.print(pixel_table(result))

The ground truth decides the metrics (docs/evaluate_pixel.md):

- a DAVIS folder (`Annotations/480p/SEQ/*.png`): J and F with mean / recall / decay, per
  sequence and overall, as the DAVIS 2017 scorer computes them for single-object masks;
  with DAVIS 2017's palette masks (several objects per sequence), per object, matched
  as that scorer matches them (metrics/davis_report.py, metrics/davis_objects.py);
- J-HMDB puppet masks (`puppet_mask/CLASS/VIDEO.mat`, or one .mat) or our `labels` files:
  3DFCN's foreground and localization IoU, the per-video mean IoU (J-HMDB protocol) and
  Segment-tube's per-category IoU; and, when the predictions are scores files that carry
  Sep3D's per-frame `action_scores`, the frame-mAP at IoU 0.5 of the boxes around the
  predicted masks' largest components (Sep3D Table 3; metrics/pixel_frame_map.py).

Predictions: our `labels` / `scores` files (files or folders of them), or per-frame PNG
masks in the DAVIS results layout (`RESULTS/SEQ/00000.png`, or one `SEQ/` folder).

Predictions made on frames resized by `extract-frames --short-side` or `--size` are
brought back to the ground truth's size (datasets/masks.py): `result["resized"]` (present
only then) maps each such video to its sizes, from which api/evaluate.py makes the one
notice line the command prints.

Questionable records are reported, one line each, in `result["warnings"]` (the command
prints them); `strict=True` turns "prediction without ground truth" and "class unknown
to the ground truth" into errors. Bad files raise `InputError` naming the file.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from vidseg_cli.datasets import masks as mio
from vidseg_cli.datasets.layouts.detect import detect, sniff
from vidseg_cli.datasets.layouts.parts import jhmdb_masks
from vidseg_cli.errors import InputError
from vidseg_cli.metrics import davis as dm
from vidseg_cli.metrics import masks as mm
from vidseg_cli.metrics import pixel_frame_map as _fm

__all__ = ["evaluate_pixel", "pixel_table"]

_H5 = (".h5", ".hdf5")
# The classes of a `--target foreground` model (datasets/segment_data.FOREGROUND_CLASSES).
FOREGROUND_ONLY = ["background", "foreground"]


# -- sources --------------------------------------------------------------------------
def _h5_video_id(path: Path) -> str:
    from vidseg_cli import store

    with store.open_record(path) as rec:
        return str(rec.video_id)


def _collect_predictions(pred_paths: Sequence[str]) -> dict[str, tuple[str, Path]]:
    """video id -> ("h5" | "png", path). Duplicate ids are an error."""
    if not pred_paths:
        raise InputError("-", "no predictions given")
    out: dict[str, tuple[str, Path]] = {}

    def add(vid: str, kind: str, p: Path) -> None:
        if vid in out:
            raise InputError(p, f"a second prediction for video '{vid}' (first: {out[vid][1]})")
        out[vid] = (kind, p)

    for raw in pred_paths:
        p = Path(raw)
        if not p.exists():
            raise InputError(p, "no such file or folder")
        if p.is_file():
            if p.suffix not in _H5:
                raise InputError(
                    p, "expected a labels/scores .h5 file or a folder of PNG masks (SEQ/00000.png)"
                )
            add(_h5_video_id(p), "h5", p)
            continue
        h5s = mio.find_h5_files(p)
        if h5s:
            for f in h5s:
                add(_h5_video_id(f), "h5", f)
            continue
        for seq, folder in mio.davis_sequences(p).items():
            add(seq, "png", folder)
    return out


def _gt_kind(gt: Path) -> str:
    """"davis", "jhmdb" or "labels", by datasets/layouts/detect.py's layout."""
    if not gt.exists():
        raise InputError(gt, "no such file or folder")
    layout = sniff(gt)
    kind = layout.kind if layout is not None else None
    if gt.is_file() and kind not in ("jhmdb", "labels"):
        raise InputError(
            gt, "expected ground truth as a DAVIS folder, J-HMDB .mat masks or labels .h5"
        )
    return kind if kind in ("jhmdb", "labels") else "davis"


def _pair(
    preds: dict[str, tuple[str, Path]], gt_ids: Sequence[str], gt_path: Path, strict: bool
) -> tuple[list[str], list[str]]:
    """Paired ids in ground-truth order, and warning lines."""
    gt_set = set(gt_ids)
    orphans = [v for v in preds if v not in gt_set]
    warnings: list[str] = []
    if orphans:
        first = preds[orphans[0]][1]
        if strict:
            raise InputError(first, f"video '{orphans[0]}' has no ground truth in {gt_path}")
        shown = ", ".join(orphans[:5]) + (", ..." if len(orphans) > 5 else "")
        warnings.append(
            f"{len(orphans)} prediction(s) have no ground truth in {gt_path} and are "
            f"ignored ({shown})"
        )
    paired = [v for v in gt_ids if v in preds]
    if not paired:
        raise InputError(
            gt_path, f"none of the {len(preds)} prediction(s) pairs with a ground-truth video "
            f"by video id (e.g. '{next(iter(preds))}')"
        )
    missing = len(gt_ids) - len(paired)
    if missing:
        warnings.append(
            f"{missing} ground-truth video(s) have no prediction and are left out of the scores"
        )
    return paired, warnings


# -- DAVIS ----------------------------------------------------------------------------
def _evaluate_davis(
    preds: dict[str, tuple[str, Path]], gt_path: Path, task: str, strict: bool
) -> dict:
    sequences = mio.davis_sequences(gt_path)
    paired, warnings = _pair(preds, list(sequences), gt_path, strict)
    from vidseg_cli.datasets.davis_indexed import is_indexed_sequence

    if is_indexed_sequence(sequences[paired[0]]):
        from vidseg_cli.metrics.davis_report import evaluate_davis2017

        return {**evaluate_davis2017(preds, sequences, paired, task), "warnings": warnings}
    per_sequence: dict[str, dict] = {}
    resized: dict[str, dict] = {}
    for seq in paired:
        gt = mio.read_davis_sequence(sequences[seq])
        sel = dm.scored_frames(gt.num_frames, task)
        ids = (gt.frame_ids or [])[sel]
        kind, src = preds[seq]
        if kind == "png":
            pred = mio.read_davis_sequence(src, frame_ids=ids, size=gt.frame_size).masks
        else:
            video = mio.read_h5_masks(src, size=gt.frame_size)
            _check_video(video, gt, src)
            _note_resize(resized, seq, video)
            pred = video.masks[sel]
        res = dm.evaluate_sequence(gt.masks[sel] > 0, pred > 0)
        per_sequence[seq] = {"J": res["J"], "F": res["F"], "frames": res["frames"]}
    overall = dm.summarize(per_sequence)
    return {
        "metric": "davis",
        "task": task,
        "bound_th": dm.BOUND_TH,
        "num_sequences": len(per_sequence),
        "J": overall["J"],
        "F": overall["F"],
        "J&F": overall["J&F"],
        "per_sequence": per_sequence,
        **({"resized": resized} if resized else {}),
        "warnings": warnings,
    }


def _wxh(hw: tuple[int, int]) -> str:
    return f"{hw[1]}x{hw[0]}"


def _note_resize(resized: dict[str, dict], vid: str, pred: mio.MaskVideo) -> None:
    if pred.resized_from is not None:
        resized[vid] = {"from": _wxh(pred.resized_from), "to": _wxh(pred.frame_size)}


# -- J-HMDB / labels: 3DFCN, J-HMDB mean IoU, Segment-tube ----------------------------
def _check_video(pred: mio.MaskVideo, gt: mio.MaskVideo, src: Path) -> None:
    if pred.frame_size != gt.frame_size:
        raise InputError(
            src, f"masks are {_wxh(pred.frame_size)} (WxH), the ground truth ({gt.path}) is "
            f"{_wxh(gt.frame_size)}, and they were not made on frames extracted from that size"
        )
    if pred.num_frames != gt.num_frames:
        raise InputError(
            src, f"{pred.num_frames} frames, the ground truth ({gt.path}) has {gt.num_frames}"
        )


def _class_aware_not_applicable(agnostic: list[str], fg_only: list[str]) -> dict[str, str]:
    """{metric: why} for the class-aware metrics that mean nothing for these predictions:
    masks without classes, or a model trained to tell foreground from background only
    (`train segment --target foreground`), whose "foreground" is no action class."""
    why = []
    if agnostic:
        why.append(f"{len(agnostic)} prediction(s) are class-agnostic PNG masks")
    if fg_only:
        why.append(f"{len(fg_only)} prediction(s) have only the classes background/foreground "
                   "(a model trained with --target foreground)")
    return {"localization_iou": "; ".join(why)} if why else {}


def _majority_category(gt: mio.MaskVideo) -> str | None:
    """A labels file's category: its most frequent foreground class."""
    counts = np.bincount(gt.masks.ravel(), minlength=2)
    counts[0] = 0
    if counts.sum() == 0 or not gt.class_names:
        return None
    k = int(np.argmax(counts))
    return gt.class_names[k] if k < len(gt.class_names) else str(k)


def _to_gt_classes(
    pred: mio.MaskVideo, gt: mio.MaskVideo, src: Path, strict: bool, unknown: set[str]
) -> np.ndarray:
    """Prediction class indices -> the ground truth's indices, by class name. Names the
    ground truth lacks map to 255 (foreground, never a match)."""
    names = pred.class_names or []
    top = int(pred.masks.max(initial=0))
    if top >= len(names):
        raise InputError(src, f"class index {top} but only {len(names)} class_names")
    gt_names = gt.class_names or []
    if list(names) == list(gt_names):
        return pred.masks
    lut = np.full(256, 255, dtype=np.uint8)
    lut[0] = 0
    for i, n in enumerate(names[1:], start=1):
        if n in gt_names:
            lut[i] = gt_names.index(n)
        else:
            if strict:
                raise InputError(src, f"class '{n}' is not among the ground truth's classes")
            unknown.add(n)
    return lut[pred.masks]


def _evaluate_segmentation(
    preds: dict[str, tuple[str, Path]], gt_path: Path, gt_kind: str, strict: bool,
    pixel_frames: str = "all",
) -> dict:
    if gt_kind == "jhmdb":
        gt_files = {vid: f for vid, (_, f) in jhmdb_masks(detect(gt_path)).items()}
    else:
        gt_files = {}
        for f in mio.find_h5_files(gt_path):
            vid = _h5_video_id(f)
            if vid in gt_files:
                raise InputError(
                    f, f"a second ground truth for video '{vid}' (first: {gt_files[vid]})"
                )
            gt_files[vid] = f
    paired, warnings = _pair(preds, list(gt_files), gt_path, strict)
    counts: dict[str, mm.VideoCounts] = {}
    categories: dict[str, str | None] = {}
    agnostic: list[str] = []
    fg_only: list[str] = []
    unknown: set[str] = set()
    actors: dict[str, tuple] = {}  # frame-mAP inputs of the videos with action scores
    resized: dict[str, dict] = {}
    for vid in paired:
        gt = (mio.read_jhmdb_mat(gt_files[vid]) if gt_kind == "jhmdb"
              else mio.read_labels_file(gt_files[vid]))
        kind, src = preds[vid]
        if kind == "png":
            pred = mio.read_davis_sequence(src, size=gt.frame_size)
            _check_video(pred, gt, src)
            agnostic.append(vid)
            pm = pred.masks  # 0/1: foreground only
        else:
            pred = mio.read_h5_masks(src, size=gt.frame_size)
            _check_video(pred, gt, src)
            _note_resize(resized, vid, pred)
            if pred.class_names == FOREGROUND_ONLY:
                fg_only.append(vid)
                pm = pred.masks  # 0/1: foreground only
            else:
                pm = _to_gt_classes(pred, gt, src, strict, unknown)
            fm = _fm.frame_map_inputs(src, gt, gt_kind, pm)
            if fm is not None:
                actors[vid] = fm
        if pixel_frames == "gt-action":
            action = np.asarray(gt.masks).reshape(len(gt.masks), -1).any(axis=1)
            counts[vid] = mm.video_counts(gt.masks[action], np.asarray(pm)[action])
        else:
            counts[vid] = mm.video_counts(gt.masks, pm)
        categories[vid] = gt.category if gt.category is not None else _majority_category(gt)
    if unknown:
        warnings.append(
            f"{len(unknown)} predicted class(es) are not among the ground truth's classes and "
            f"never match: {', '.join(sorted(unknown))}"
        )
    if agnostic:
        warnings.append(
            f"{len(agnostic)} prediction(s) are class-agnostic PNG masks: localization IoU "
            "(class-aware) is not computed"
        )
    not_applicable = _class_aware_not_applicable(agnostic, fg_only)
    summary = mm.accumulate(counts, categories, class_aware=not not_applicable)
    frame_map = _fm.frame_map(actors, paired, warnings)
    per_video = {
        v: {
            "category": categories[v],
            "frames": counts[v].frames,
            "foreground_iou": counts[v].foreground_iou,
            "localization_iou": None if not_applicable else counts[v].localization_iou,
        }
        for v in paired
    }
    return {
        "metric": "segmentation",
        "ground_truth": gt_kind,
        "pixel_frames": pixel_frames,
        **summary,
        "frame_map": frame_map,
        "per_video": per_video,
        **({"not_applicable": not_applicable} if not_applicable else {}),
        **({"resized": resized} if resized else {}),
        "warnings": warnings,
    }


# -- entry points ---------------------------------------------------------------------
def _jsonable(x: Any) -> Any:
    """NaN/inf -> None, numpy scalars -> Python, recursively."""
    if isinstance(x, dict):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    if isinstance(x, np.generic):
        x = x.item()
    if isinstance(x, float) and not math.isfinite(x):
        return None
    return x


PIXEL_FRAMES = ("all", "gt-action")


def evaluate_pixel(
    pred_paths: list[str], gt_path: str, *, davis_task: str = "unsupervised", strict: bool = False,
    pixel_frames: str = "all",
) -> dict:
    """Score per-pixel predictions against ground truth (module docstring); a JSON-able dict.

    davis_task: "unsupervised" (every frame scored; the Sep3D setting) or
    "semi-supervised" (first and last frames excluded), for DAVIS ground truth.
    pixel_frames: "all" frames, or "gt-action": only the frames whose ground truth holds an
    action (Segment-tube's Table 3 scores segmentation on those), for labels and J-HMDB
    ground truth.
    """
    if davis_task not in dm.TASKS:
        known = ", ".join(dm.TASKS)
        raise InputError("--davis-task", f"unknown task '{davis_task}' (known: {known})")
    if pixel_frames not in PIXEL_FRAMES:
        raise InputError("--pixel-frames", f"unknown choice '{pixel_frames}' (known: "
                                           f"{', '.join(PIXEL_FRAMES)})")
    gt = Path(gt_path)
    kind = _gt_kind(gt)
    preds = _collect_predictions(pred_paths)
    if kind == "davis":
        result = _evaluate_davis(preds, gt, davis_task, strict)
    else:
        result = _evaluate_segmentation(preds, gt, kind, strict, pixel_frames)
    return _jsonable(result)


def _pct(v: Any) -> str:
    return "-" if v is None else f"{100 * v:.1f}"


def pixel_table(result: dict):
    """A rich Table of `evaluate_pixel`'s result (values in percent)."""
    from rich.table import Table

    if result.get("metric") == "davis2017":
        from vidseg_cli.metrics.davis_objects import objects_table

        return objects_table(result)
    if result.get("metric") == "davis":
        t = Table(title=f"DAVIS J and F ({result.get('task')}), %")
        t.add_column("sequence")
        t.add_column("frames", justify="right")
        for m in ("J", "F"):
            for s in ("mean", "recall", "decay"):
                t.add_column(f"{m} {s}", justify="right")
        for seq, r in result.get("per_sequence", {}).items():
            t.add_row(seq, str(r["frames"]), *[_pct(r[m][s]) for m in "JF"
                                             for s in ("mean", "recall", "decay")])
        t.add_section()
        t.add_row(
            "[bold]mean[/bold]",
            str(sum(r["frames"] for r in result.get("per_sequence", {}).values())),
            *[_pct(result[m][s]) for m in "JF" for s in ("mean", "recall", "decay")],
        )
        t.caption = f"J&F mean {_pct(result.get('J&F'))}; T (temporal stability) not provided"
        return t
    fmap = result.get("frame_map")
    t = Table(title="Action segmentation IoU" + (" and frame AP" if fmap else "") + ", %")
    t.add_column("category")
    t.add_column("videos", justify="right")
    t.add_column("IoU", justify="right")
    if fmap:
        t.add_column("frame AP @0.5", justify="right")
    cats: dict[str, int] = {}
    for r in result.get("per_video", {}).values():
        if r.get("category") is not None:
            cats[r["category"]] = cats.get(r["category"], 0) + 1
    per_cat = result.get("per_category_iou", {})
    names = list(per_cat) + [c for c in (fmap or {}).get("AP", {}) if c not in per_cat]
    for cat in names:
        ap = [_pct(fmap["AP"].get(cat))] if fmap else []
        t.add_row(cat, str(cats.get(cat, "")), _pct(per_cat.get(cat)), *ap)
    t.add_section()
    n = str(result.get("num_videos", ""))
    pad = [""] if fmap else []
    t.add_row(
        "[bold]mean per category[/bold] (Segment-tube)", n,
        _pct(result.get("mean_per_category_iou")), *pad,
    )
    t.add_row("[bold]foreground IoU[/bold] (3DFCN)", n, _pct(result.get("foreground_iou")), *pad)
    why = result.get("not_applicable", {}).get("localization_iou")
    loc = "n/a" if why else _pct(result.get("localization_iou"))
    t.add_row("[bold]localization IoU[/bold] (3DFCN)", n, loc, *pad)
    t.add_row("[bold]mean IoU per video[/bold] (J-HMDB)", n, _pct(result.get("mean_iou_per_video")), *pad)
    if fmap:
        t.add_row("[bold]frame-mAP[/bold] @ IoU 0.5 (Sep3D Table 3)", n, "", _pct(fmap.get("frame_mAP")))
    if why:
        t.caption = f"localization IoU n/a: {why}"
    return t
