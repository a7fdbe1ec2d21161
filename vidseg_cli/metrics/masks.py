"""Pixel-level action segmentation metrics: 3DFCN's foreground and localization IoU, the
per-video mean IoU of the J-HMDB protocol (Sep3D Table 3, after Gavrilyuk et al.),
Segment-tube's per-category IoU (its Table 3), and Sep3D's frame-mAP of the boxes around
predicted masks.

Masks are (T, H, W) integer class indices, 0 = background, in the ground truth's class
index space. All counting is vectorised numpy; a video is reduced to a few integers
(`VideoCounts`) so that a dataset accumulates without holding its masks.

Definitions (docs/evaluate_pixel.md has the full text and the papers' wording):

- Foreground IoU (3DFCN Sec. 4.1): class-agnostic, fg = class > 0;
  sum_videos |P_fg & G_fg| / sum_videos |P_fg | G_fg|, over every frame of every video.
- Localization IoU (3DFCN Sec. 4.1, "the IOU of prediction masks with the same action
  label of the ground truth action label"): for every class c present in a video's
  ground truth, the prediction mask of label c against the ground-truth mask of c;
  sum over videos and those classes of |P_c & G_c| / sum of |P_c | G_c|. Pixels that
  the prediction gives to a class absent from the video's ground truth are not part of
  any P_c compared; they do lower foreground IoU.
- Mean IoU per video (J-HMDB protocol, Sep3D Sec. 4.1): each video's foreground IoU over
  all its frames, averaged over videos. A video whose masks are both empty scores 1.
- Per-category IoU (Segment-tube Table 3): foreground IoU accumulated over the videos of
  one category; the average is the unweighted mean over categories (as the table's
  "Average" row is).
- Frame-mAP (Sep3D Table 3, alpha = 0.5): see `frame_map`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from vidseg_cli.geometry import box_iou, boxes_from_masks

__all__ = [
    "VideoCounts",
    "accumulate",
    "average_precision",
    "foreground_counts",
    "frame_map",
    "frame_map_boxes",
    "localization_counts",
    "video_counts",
]


@dataclass(frozen=True)
class VideoCounts:
    """Pixel counts of one video, summed over its frames."""

    fg_inter: int
    fg_union: int
    loc_inter: int
    loc_union: int
    frames: int

    @property
    def foreground_iou(self) -> float:
        return _ratio(self.fg_inter, self.fg_union)

    @property
    def localization_iou(self) -> float:
        return _ratio(self.loc_inter, self.loc_union)


def _ratio(inter: int, union: int) -> float:
    """IoU with the empty-vs-empty convention: 1 when the union is empty."""
    return 1.0 if union == 0 else inter / union


def _check(gt: np.ndarray, pred: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    gt = np.asarray(gt)
    pred = np.asarray(pred)
    if gt.shape != pred.shape:
        raise ValueError(f"mask shapes differ: ground truth {gt.shape}, prediction {pred.shape}")
    return gt, pred


def foreground_counts(gt: np.ndarray, pred: np.ndarray) -> tuple[int, int]:
    """(|P_fg & G_fg|, |P_fg | G_fg|) over all pixels, fg = class index > 0."""
    gt, pred = _check(gt, pred)
    g = gt > 0
    p = pred > 0
    return int(np.count_nonzero(g & p)), int(np.count_nonzero(g | p))


def localization_counts(gt: np.ndarray, pred: np.ndarray) -> tuple[int, int]:
    """Class-aware counts: sum over the classes c present in `gt` (c > 0) of |P_c & G_c| and
    of |P_c | G_c|.

    With I = #pixels where pred == gt > 0: sum_c |P_c & G_c| = I and
    sum_c |P_c | G_c| = sum_c |P_c| + |G_fg| - I, so one bincount does it.
    """
    gt, pred = _check(gt, pred)
    g = gt.ravel()
    p = pred.ravel()
    fg = g > 0
    inter = int(np.count_nonzero(fg & (p == g)))
    n = int(max(g.max(initial=0), p.max(initial=0))) + 1
    present = np.bincount(g[fg], minlength=n) > 0  # classes in the ground truth
    pred_sizes = np.bincount(p, minlength=n)  # |P_c| for every c
    union = int(pred_sizes[present].sum()) + int(np.count_nonzero(fg)) - inter
    return inter, union


def video_counts(gt: np.ndarray, pred: np.ndarray) -> VideoCounts:
    """Both metrics' counts for one video's (T, H, W) masks."""
    fi, fu = foreground_counts(gt, pred)
    li, lu = localization_counts(gt, pred)
    return VideoCounts(fi, fu, li, lu, int(np.asarray(gt).shape[0]) if np.ndim(gt) == 3 else 1)


def accumulate(
    counts: Mapping[str, VideoCounts],
    categories: Mapping[str, str | None] | None = None,
    class_aware: bool = True,
) -> dict:
    """Dataset-level metrics from per-video counts.

    Returns {"foreground_iou", "localization_iou" (None unless class_aware),
    "mean_iou_per_video", "per_category_iou": {cat: iou}, "mean_per_category_iou",
    "num_videos", "num_frames"}.
    """
    vids = list(counts)
    fi = sum(counts[v].fg_inter for v in vids)
    fu = sum(counts[v].fg_union for v in vids)
    li = sum(counts[v].loc_inter for v in vids)
    lu = sum(counts[v].loc_union for v in vids)
    per_video = [counts[v].foreground_iou for v in vids]
    by_cat: dict[str, list[int]] = {}
    for v in vids:
        cat = (categories or {}).get(v)
        if cat is None:
            continue
        acc = by_cat.setdefault(cat, [0, 0])
        acc[0] += counts[v].fg_inter
        acc[1] += counts[v].fg_union
    per_cat = {c: _ratio(i, u) for c, (i, u) in sorted(by_cat.items())}
    return {
        "num_videos": len(vids),
        "num_frames": int(sum(counts[v].frames for v in vids)),
        "foreground_iou": _ratio(fi, fu) if vids else None,
        "localization_iou": (_ratio(li, lu) if vids else None) if class_aware else None,
        "mean_iou_per_video": float(np.mean(per_video)) if vids else None,
        "per_category_iou": per_cat,
        "mean_per_category_iou": float(np.mean(list(per_cat.values()))) if per_cat else None,
    }


# -- frame-mAP of boxes around masks (Sep3D Table 3) -----------------------------------
def average_precision(scores: np.ndarray, is_tp: np.ndarray, num_gt: int) -> float:
    """AP as the trapezoid area under the precision-recall curve, starting from
    (recall 0, precision 1), detections in descending score order (ties: stable, input
    order) — the frame-AP rule of the ACT detector's evaluation (Kalogeiton et al.),
    which Sep3D's Table 3 compares against. No ground truth: NaN."""
    if num_gt <= 0:
        return float("nan")
    order = np.argsort(-np.asarray(scores, dtype=np.float64), kind="stable")
    tp = np.asarray(is_tp, dtype=bool)[order]
    ctp = np.cumsum(tp)
    n = np.arange(1, tp.size + 1)
    precision = np.concatenate([[1.0], ctp / n])
    recall = np.concatenate([[0.0], ctp / num_gt])
    return float(np.sum((recall[1:] - recall[:-1]) * (precision[1:] + precision[:-1]) * 0.5))


def frame_map(
    pred_masks: Mapping[str, np.ndarray],
    class_scores: Mapping[str, np.ndarray],
    gt_boxes: Mapping[str, np.ndarray],
    gt_classes: Mapping[str, int | np.ndarray],
    class_names: Sequence[str],
    iou_threshold: float = 0.5,
) -> dict:
    """Frame-mAP of the boxes around predicted masks (Sep3D Table 3, alpha = 0.5).

    pred_masks: video -> (T, H, W) predicted foreground masks; each frame with foreground
        yields one box, the tightest rectangle around it (`boxes_from_masks`; pass the
        largest component alone, stages/components.py, to box that region only).
    The other arguments and the result are `frame_map_boxes`'s.
    """
    return frame_map_boxes(
        {v: boxes_from_masks(m) for v, m in pred_masks.items()},
        class_scores, gt_boxes, gt_classes, class_names, iou_threshold,
    )


def _per_frame(x: np.ndarray | int | float, t: int, what: str, vid: str, dtype) -> np.ndarray:
    """A per-video value or a (T, ...) per-frame array -> the per-frame array."""
    a = np.asarray(x, dtype=dtype)
    if a.ndim == 0 or (what == "scores" and a.ndim == 1):
        return np.broadcast_to(a, (t, *a.shape))
    if a.shape[0] != t:
        raise ValueError(f"{vid}: {a.shape[0]} frames of {what}, expected {t}")
    return a


def frame_map_boxes(
    pred_boxes: Mapping[str, np.ndarray],
    class_scores: Mapping[str, np.ndarray],
    gt_boxes: Mapping[str, np.ndarray],
    gt_classes: Mapping[str, int | np.ndarray],
    class_names: Sequence[str],
    iou_threshold: float = 0.5,
) -> dict:
    """Frame-mAP of one predicted box per frame (Sep3D Table 3, alpha = 0.5).

    pred_boxes: video -> (T, 4) inclusive-pixel boxes [x1, y1, x2, y2]; NaN rows: no box.
    class_scores: video -> (C,) scores for every frame of the video, or (T, C) per frame
        (C = len(class_names)); a frame whose row is NaN has no scores and yields no
        detection even when it has a box.
    gt_boxes: video -> (T, 4) ground-truth boxes (NaN rows: no actor in that frame), e.g.
        `boxes_from_masks` of the ground-truth masks.
    gt_classes: video -> its action's index into class_names (J-HMDB: one class per video),
        or (T,) per-frame indices (only read where the frame has a ground-truth box).

    Each frame with a box and scores is a detection for every class c, scored
    class_scores[..][c]. Per class, detections are ranked by score; one is a true positive
    when its frame holds a ground-truth box of class c with IoU >= iou_threshold (one box
    per frame on each side, so a ground truth is matched at most once). AP is
    `average_precision`; mAP the mean over the classes that have ground truth.
    Returns {"frame_mAP", "AP": {class: ap}, "iou_threshold", "num_detections",
    "num_gt", "boxes_without_scores"}.
    """
    c = len(class_names)
    det_scores: list[np.ndarray] = []  # per detection: (C,) scores
    det_tp: list[np.ndarray] = []  # per detection: (C,) bool
    num_gt = np.zeros(c, dtype=np.int64)
    gt_cls: dict[str, np.ndarray] = {}
    for vid, gboxes in gt_boxes.items():
        gb = np.asarray(gboxes, dtype=np.float64).reshape(-1, 4)
        has = ~np.isnan(gb[:, 0])
        k = _per_frame(gt_classes[vid], gb.shape[0], "ground-truth classes", vid, np.int64)
        bad = has & ((k < 0) | (k >= c))
        if bad.any():
            f = int(np.flatnonzero(bad)[0])
            raise ValueError(f"{vid}: frame {f}: ground-truth class {int(k[f])} outside 0..{c - 1}")
        gt_cls[vid] = k
        num_gt += np.bincount(k[has], minlength=c)
    unscored = 0
    for vid, boxes in pred_boxes.items():
        pb = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
        t = pb.shape[0]
        s = np.asarray(class_scores[vid], dtype=np.float64)
        if s.shape[-1] != c:
            raise ValueError(f"{vid}: {s.shape[-1]} class scores, expected {c}")
        s = _per_frame(s, t, "scores", vid, np.float64)
        scored = ~np.isnan(s).any(axis=1)
        has = ~np.isnan(pb[:, 0])
        unscored += int(np.count_nonzero(has & ~scored))
        det = has & scored
        n_det = int(det.sum())
        if n_det == 0:
            continue
        tp = np.zeros((n_det, c), dtype=bool)
        if vid in gt_boxes:
            gb = np.asarray(gt_boxes[vid], dtype=np.float64).reshape(-1, 4)
            if gb.shape[0] != t:
                raise ValueError(f"{vid}: {t} predicted frames, {gb.shape[0]} ground-truth frames")
            g, k = gb[det], gt_cls[vid][det]
            ok = ~np.isnan(g[:, 0])
            hit = np.zeros(n_det, dtype=bool)
            hit[ok] = box_iou(pb[det][ok], g[ok]) >= iou_threshold
            rows = np.flatnonzero(hit)
            tp[rows, k[rows]] = True
        det_scores.append(s[det])
        det_tp.append(tp)
    scores = np.concatenate(det_scores) if det_scores else np.zeros((0, c))
    tps = np.concatenate(det_tp) if det_tp else np.zeros((0, c), dtype=bool)
    ap = {name: average_precision(scores[:, k], tps[:, k], int(num_gt[k]))
          for k, name in enumerate(class_names)}
    vals = [v for v in ap.values() if not np.isnan(v)]
    return {
        "frame_mAP": float(np.mean(vals)) if vals else float("nan"),
        "AP": ap,
        "iou_threshold": iou_threshold,
        "num_detections": int(scores.shape[0]),
        "num_gt": {name: int(num_gt[k]) for k, name in enumerate(class_names)},
        "boxes_without_scores": unscored,
    }
