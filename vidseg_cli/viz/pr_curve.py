"""Precision-recall curves of detections at one tIoU threshold, for drawing.

The matching is the ActivityNet scorer's (Evaluation/eval_detection.py): per class,
detections in descending score order each take the free ground truth of their video with
the highest tIoU, if that is >= the threshold. Its VOC-2011 interpolated area
(metrics.temporal.interpolated_ap) is the AP that `vidseg evaluate --protocol activitynet`
reports, ties in score or tIoU aside (tests/viz/test_pr_curve.py checks both agree).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class PRCurve:
    precision: np.ndarray  # (N,) after each detection, in score order
    recall: np.ndarray
    num_gt: int

    def steps(self) -> tuple[np.ndarray, np.ndarray]:
        """(recall, precision) corners of the interpolated curve, drawn with
        `step(..., where="pre")`: the precision at recall r is the best at r or beyond, so
        the area under the steps is the interpolated AP."""
        interp = np.maximum.accumulate(self.precision[::-1])[::-1]
        return np.r_[0.0, self.recall], np.r_[interp[:1], interp]


def pr_curve(det_video: np.ndarray, det_segments: np.ndarray, det_scores: np.ndarray,
             gt_video: np.ndarray, gt_segments: np.ndarray, threshold: float) -> PRCurve:
    """The curve of one class's detections against that class's ground truth."""
    from vidseg_cli.geometry import tiou_matrix

    order = np.argsort(-np.asarray(det_scores, np.float64), kind="stable")
    num_gt = len(gt_segments)
    tp = np.zeros(len(order), bool)
    by_video: dict[str, np.ndarray] = {}
    for v in set(np.asarray(gt_video).tolist()):
        by_video[v] = np.flatnonzero(np.asarray(gt_video) == v)
    used = np.zeros(num_gt, bool)
    for rank, d in enumerate(order):
        cand = by_video.get(det_video[d])
        if cand is None or not len(cand):
            continue
        iou = tiou_matrix(det_segments[d:d + 1], gt_segments[cand])[0]
        iou = np.where(used[cand], -1.0, iou)
        k = int(np.argmax(iou))
        if iou[k] >= threshold:
            tp[rank] = True
            used[cand[k]] = True
    tpc = np.cumsum(tp, dtype=np.float64)
    fpc = np.cumsum(~tp, dtype=np.float64)
    recall = tpc / num_gt if num_gt else np.zeros_like(tpc)
    precision = np.divide(tpc, tpc + fpc, out=np.zeros_like(tpc), where=(tpc + fpc) > 0)
    return PRCurve(precision, recall, num_gt)
