"""Frame-mAP of the boxes around predicted actors (Sep3D Table 3), for `vidseg evaluate`
on scores files that carry Sep3D's per-frame `action_scores`: the box around each frame's
largest predicted foreground region, scored with the action head's class scores, against
the ground truth's actor boxes at IoU 0.5 (metrics/masks.py's `frame_map_boxes`).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from vidseg_cli.datasets import masks as mio
from vidseg_cli.errors import InputError
from vidseg_cli.geometry import boxes_from_masks
from vidseg_cli.metrics import masks as mm

__all__ = ["frame_map", "frame_map_inputs"]


def _action_scores(src: Path) -> tuple[list[str], np.ndarray, str] | None:
    """A scores file's optional per-frame action scores: (action_names, T x A float64, the
    checkpoint that made them), or None when the file has none."""
    from vidseg_cli import store

    with store.open_record(src) as rec:
        if rec.kind != "scores" or "action_scores" not in rec:
            return None
        scores = np.asarray(rec["action_scores"][()], dtype=np.float64)  # T x A
        names = list(rec.attrs["action_names"])
        weights = str(rec.attrs.get("segment3d_weights", "?"))
    empty = np.isnan(scores).all(axis=1)  # frames without a predicted actor
    bad = ~empty & ~np.isfinite(scores).all(axis=1)
    if bad.any():
        f = int(np.flatnonzero(bad)[0])
        raise InputError(src, f"action_scores frame {f}: NaN or infinite scores in a row that "
                              "is not all NaN")
    return names, scores, weights


def _gt_actors(gt: mio.MaskVideo, gt_kind: str, actions: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Per-frame ground-truth boxes (T x 4, NaN: no actor) and action indices into
    `actions` (T,). J-HMDB: one actor, the video's class (its folder), boxed whole. Labels
    files: the largest 8-connected labelled region of each frame and its most frequent
    class (stages/components.py), the region the prediction side is reduced to as well."""
    from vidseg_cli.stages.components import component_classes, largest_component

    fg = gt.masks > 0
    if gt_kind == "jhmdb":
        cls = np.full(gt.num_frames, actions.index(gt.category) if gt.category in actions else -1)
        return boxes_from_masks(fg), cls
    keep, _ = largest_component(fg)
    cls = component_classes(gt.masks, keep, ignore=None) - 1  # class index -> action index
    return boxes_from_masks(keep), cls


def _pred_boxes(masks: np.ndarray) -> np.ndarray:
    """T x 4 boxes around the largest predicted foreground region of each frame."""
    from vidseg_cli.stages.components import largest_component

    return boxes_from_masks(largest_component(masks > 0)[0])


def frame_map_inputs(
    src: Path, gt: mio.MaskVideo, gt_kind: str, pm: np.ndarray
) -> tuple[list[str], np.ndarray, np.ndarray, np.ndarray, np.ndarray] | None:
    """(actions, predicted boxes, action scores in the ground truth's action order, gt
    boxes, gt action indices) of one video, or None when its prediction has no action
    scores. Action names are matched by name; a head whose actions are not exactly the
    ground truth's classes is an error naming the file (its scores would mean nothing)."""
    got = _action_scores(src)
    if got is None:
        return None
    names, scores, weights = got
    actions = list(gt.class_names or [])[1:]
    if sorted(names) != sorted(actions):
        raise InputError(src, f"the action head's classes {names} (from {weights}) differ from "
                              f"the ground truth's classes {actions} ({gt.path})")
    if scores.shape[0] != gt.num_frames:
        raise InputError(src, f"action_scores has {scores.shape[0]} frames, the ground truth "
                              f"({gt.path}) has {gt.num_frames}")
    scores = scores[:, [names.index(a) for a in actions]]
    gt_boxes, gt_cls = _gt_actors(gt, gt_kind, actions)
    return actions, _pred_boxes(pm), scores, gt_boxes, gt_cls


def frame_map(per_video: dict[str, tuple], paired: list[str], warnings: list[str]) -> dict | None:
    """Frame-mAP over the videos whose predictions carry action scores: all of them, or
    none is computed (a warning says why)."""
    if not per_video:
        return None
    if len(per_video) < len(paired):
        warnings.append(
            f"frame-mAP not computed: {len(paired) - len(per_video)} of {len(paired)} "
            "prediction(s) carry no action_scores (segment-3d with a `train sep3d-head` checkpoint)"
        )
        return None
    actions = next(iter(per_video.values()))[0]
    if any(v[0] != actions for v in per_video.values()):
        warnings.append("frame-mAP not computed: the ground-truth files disagree on class names")
        return None
    res = mm.frame_map_boxes(
        {v: x[1] for v, x in per_video.items()}, {v: x[2] for v, x in per_video.items()},
        {v: x[3] for v, x in per_video.items()}, {v: x[4] for v, x in per_video.items()},
        actions, iou_threshold=0.5,
    )
    if res["boxes_without_scores"]:
        warnings.append(
            f"{res['boxes_without_scores']} frame(s) with a predicted actor have no action "
            "scores (NaN rows) and count as no detection"
        )
    return res
