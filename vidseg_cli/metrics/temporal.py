"""Temporal detection metrics: temporal IoU and AP/mAP under two named protocols.

Pure numpy, no file paths. Videos and classes are integer codes; segments are (N, 2)
float64 [start, end] in seconds. Every function keeps the input order of its arrays
because both official scorers break ties by it.

`--protocol activitynet` follows the ActivityNet Challenge detection scorer
(Evaluation/eval_detection.py, `compute_average_precision_detection` and
`interpolated_prec_rec`):

- per class, detections are ranked by `np.argsort(scores)[::-1]` on the class's scores in
  input order - numpy's default (unstable) sort, reversed, exactly what the scorer calls,
  so tied scores come out in the same order as the scorer's on the same numpy and CPU;
- each detection in rank order takes, per threshold, the unmatched ground truth of its
  video with the highest tIoU, if that tIoU >= the threshold (tIoU ties: the scorer's
  `argsort()[::-1]` order of that detection's tIoU row); each ground truth is matched
  at most once per threshold; everything else is a false positive;
- AP is the VOC-2011 interpolated area under the precision-recall curve.
- tIoU = intersection / (len_a + len_b - intersection), as the scorer writes it (a
  reversed segment gives 0 or a meaningless value, and a 0/0 - which the scorer ranks
  first and accepts - is kept as such).

`--protocol thumos14` follows the updated THUMOS14 scorer TH14evalDet_Updated.m
(zhengshou/scnn, experiments/THUMOS14/eval; S-CNN footnote 3):

- the overlap of two intervals is their intersection over their hull (equal to tIoU when
  they intersect), after ordering each interval's ends, and 0 unless the intersection
  is > 0;
- matching is driven by the ground truth: per video, detections are sorted by score
  (stable), then each ground truth in file order takes the still-free detection with the
  largest overlap (the first, i.e. highest ranked, on ties) if that overlap is
  *strictly* greater than the threshold;
- a free detection that overlaps (> 0) any Ambiguous segment of its video is dropped,
  neither true nor false positive; a matched one stays a true positive;
- all detections of a class are ranked by a stable sort on score over the concatenation
  of videos in name order (ties: video name, then input order), and
  AP = sum of the precision at each true positive / number of ground truths
  (not interpolated).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = [
    "DetectionAP",
    "ACTIVITYNET_TIOU",
    "THUMOS14_TIOU",
    "average_precision_activitynet",
    "average_precision_thumos14",
    "interpolated_ap",
    "segment_iou",
    "thumos_overlap",
]

# The scorers' default thresholds, built the way each scorer builds them.
ACTIVITYNET_TIOU = np.linspace(0.5, 0.95, 10)
THUMOS14_TIOU = np.array([0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7])


# -- overlaps -------------------------------------------------------------------------
# Not geometry.tiou_matrix: this one keeps the official scorer's float operations, so that
# our figures match the scorer's to the last digit.
def segment_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(N, M) temporal IoU of segments a (N, 2) and b (M, 2), the ActivityNet way."""
    a = np.asarray(a, np.float64).reshape(-1, 2)
    b = np.asarray(b, np.float64).reshape(-1, 2)
    return _iou_pairs(a[:, None, 0], a[:, None, 1], b[None, :, 0], b[None, :, 1])


def _iou_pairs(a0, a1, b0, b1) -> np.ndarray:
    """tIoU of detection (a) and ground truth (b) with the scorer's float operations:
    inter = max(min(ends) - max(starts), 0); union = len_b + len_a - inter."""
    inter = np.clip(np.minimum(a1, b1) - np.maximum(a0, b0), 0, None)
    union = (b1 - b0) + (a1 - a0) - inter
    with np.errstate(divide="ignore", invalid="ignore"):
        return inter / union


def thumos_overlap(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(N, M) THUMOS14 overlap of intervals a (N, 2) and b (M, 2): ends reordered, then
    intersection / hull when the intersection is > 0, else 0."""
    a = np.asarray(a, np.float64).reshape(-1, 2)
    b = np.asarray(b, np.float64).reshape(-1, 2)
    return _thumos_pairs(a[:, None, 0], a[:, None, 1], b[None, :, 0], b[None, :, 1])


def _thumos_pairs(a0, a1, b0, b1) -> np.ndarray:
    a0, a1 = np.minimum(a0, a1), np.maximum(a0, a1)
    b0, b1 = np.minimum(b0, b1), np.maximum(b0, b1)
    iw = np.minimum(a1, b1) - np.maximum(a0, b0)
    hull = np.maximum(a1, b1) - np.minimum(a0, b0)
    with np.errstate(divide="ignore", invalid="ignore"):
        ov = iw / hull
    return np.where(iw > 0, ov, 0.0)


# -- shared helpers -------------------------------------------------------------------
@dataclass
class DetectionAP:
    """AP per class and threshold. Classes without ground truth have NaN AP and are left
    out of the mean (the ActivityNet scorer never sees them; the THUMOS14 one refuses)."""

    thresholds: np.ndarray  # (T,)
    ap: np.ndarray  # (C, T)
    num_gt: np.ndarray  # (C,)
    num_det: np.ndarray  # (C,)

    @property
    def evaluated(self) -> np.ndarray:
        return self.num_gt > 0

    @property
    def mAP(self) -> np.ndarray:  # noqa: N802  (the field's name for it)
        """(T,) mean AP over the classes that have ground truth."""
        ev = self.evaluated
        if not ev.any():
            return np.full(len(self.thresholds), np.nan)
        return self.ap[ev].mean(axis=0)


def _check(video, seg, label, name: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    video = np.asarray(video, np.int64).reshape(-1)
    seg = np.asarray(seg, np.float64).reshape(-1, 2)
    label = np.asarray(label, np.int64).reshape(-1)
    if not (len(video) == len(seg) == len(label)):
        raise ValueError(f"{name}: video, segments and labels differ in length")
    return video, seg, label


def _pairs(det_key: np.ndarray, gt_key: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """All (det, gt) index pairs with equal keys, grouped by det in the order of det_key's
    indices and, within a det, by gt index ascending."""
    if len(det_key) == 0 or len(gt_key) == 0:
        e = np.zeros(0, np.int64)
        return e, e
    g_order = np.argsort(gt_key, kind="stable")
    g_sorted = gt_key[g_order]
    lo = np.searchsorted(g_sorted, det_key, "left")
    hi = np.searchsorted(g_sorted, det_key, "right")
    n = hi - lo
    total = int(n.sum())
    det_idx = np.repeat(np.arange(len(det_key)), n)
    # position inside each det's run of gts: 0..n-1
    starts = np.repeat(np.cumsum(n) - n, n)
    offs = np.arange(total) - starts
    gt_idx = g_order[np.repeat(lo, n) + offs]
    return det_idx, gt_idx


def _run_steps(step: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Order pairs by step (stable) and return (order, boundaries of each step's block)."""
    order = np.argsort(step, kind="stable")
    s = step[order]
    bounds = np.flatnonzero(np.diff(s)) + 1
    return order, np.concatenate([[0], bounds, [len(s)]])


def _step_within_group(group: np.ndarray, owner: np.ndarray) -> np.ndarray:
    """For pairs sorted by (group, owner rank): the dense index of each pair's owner among
    the owners of its group (0 for the first owner of a group, 1 for the next...)."""
    if len(group) == 0:
        return np.zeros(0, np.int64)
    new_group = np.r_[True, group[1:] != group[:-1]]
    new_owner = new_group | np.r_[True, owner[1:] != owner[:-1]]
    count = np.cumsum(new_owner)  # running owner count over all pairs
    group_first = np.maximum.accumulate(np.where(new_group, count, 0))
    return count - group_first


def interpolated_ap(prec: np.ndarray, rec: np.ndarray) -> float:
    """VOC-2011 interpolated AP, as ActivityNet's `interpolated_prec_rec`: precision made
    monotone from the right, summed over the recall steps."""
    mprec = np.concatenate([[0.0], prec, [0.0]])
    mrec = np.concatenate([[0.0], rec, [1.0]])
    mprec = np.maximum.accumulate(mprec[::-1])[::-1]
    idx = np.flatnonzero(mrec[1:] != mrec[:-1]) + 1
    return float(np.sum((mrec[idx] - mrec[idx - 1]) * mprec[idx]))


# -- ActivityNet ----------------------------------------------------------------------
def _activitynet_rank(det_label: np.ndarray, det_score: np.ndarray, num_classes: int) -> np.ndarray:
    """Rank of each detection within its class, as the scorer orders them."""
    rank = np.zeros(len(det_label), np.int64)
    for c in range(num_classes):
        idx = np.flatnonzero(det_label == c)
        if len(idx):
            order = np.argsort(det_score[idx])[::-1]  # the scorer's call, ties included
            rank[idx[order]] = np.arange(len(idx))
    return rank


def average_precision_activitynet(
    gt_video, gt_segments, gt_label, det_video, det_segments, det_label, det_score,
    num_classes: int, thresholds=ACTIVITYNET_TIOU,
) -> DetectionAP:
    """AP per class and tIoU threshold, as the ActivityNet detection scorer computes it.

    Labels are class indices 0..num_classes-1; detections with other labels must be
    removed by the caller. Detections in videos without ground truth are false positives.
    """
    gv, gs, gl = _check(gt_video, gt_segments, gt_label, "ground truth")
    dv, ds, dl = _check(det_video, det_segments, det_label, "detections")
    score = np.asarray(det_score, np.float64).reshape(-1)
    thr = np.asarray(thresholds, np.float64).reshape(-1)
    nt, nd, ng = len(thr), len(dl), len(gl)
    num_gt = np.bincount(gl, minlength=num_classes)[:num_classes]
    num_det = np.bincount(dl, minlength=num_classes)[:num_classes]

    rank = _activitynet_rank(dl, score, num_classes)
    nvid = int(max(gv.max(initial=-1), dv.max(initial=-1))) + 1
    # Pairs of a detection and a ground truth of the same class and video.
    d_idx, g_idx = _pairs(dl * nvid + dv, gl * nvid + gv)
    iou = _iou_pairs(ds[d_idx, 0], ds[d_idx, 1], gs[g_idx, 0], gs[g_idx, 1])
    iou = np.where(np.isnan(iou), np.inf, iou)  # the scorer ranks 0/0 first and accepts it
    # ...but a segment with a NaN or infinite end never matches (the scorer would accept
    # its NaN tIoU too; we don't follow it there).
    iou[~np.isfinite(ds[d_idx]).all(1)] = -1.0
    keep = iou >= thr.min() if nt else np.zeros(len(iou), bool)
    d_idx, g_idx, iou = d_idx[keep], g_idx[keep], iou[keep]

    tp = np.zeros((nt, nd), bool)
    locked = np.zeros((nt, ng), bool)
    if len(d_idx):
        group = dl[d_idx] * nvid + dv[d_idx]
        o = np.lexsort((g_idx, rank[d_idx], group))
        d_idx, g_idx, iou, group = d_idx[o], g_idx[o], iou[o], group[o]
        step = _step_within_group(group, d_idx)
        order, bounds = _run_steps(step)
        d_idx, g_idx, iou = d_idx[order], g_idx[order], iou[order]
        for b0, b1 in zip(bounds[:-1], bounds[1:]):
            dk, gk, vk = d_idx[b0:b1], g_idx[b0:b1], iou[b0:b1]
            starts = np.flatnonzero(np.r_[True, dk[1:] != dk[:-1]])
            seg_of = np.cumsum(np.r_[True, dk[1:] != dk[:-1]]) - 1
            valid = (vk[None, :] >= thr[:, None]) & ~locked[:, gk]  # T x P
            vals = np.where(valid, vk[None, :], -np.inf)
            segmax = np.maximum.reduceat(vals, starts, axis=1)  # T x D
            found = segmax > -np.inf
            ismax = valid & (vals == segmax[:, seg_of])
            pos = np.where(ismax, np.arange(b1 - b0)[None, :], b1 - b0)
            first = np.minimum.reduceat(pos, starts, axis=1)  # T x D
            nties = np.add.reduceat(ismax, starts, axis=1)
            if (nties > 1).any():
                first = _activitynet_ties(first, nties, ismax, starts, dk, gk, gv, gs, gl, ds)
            t_i, s_i = np.nonzero(found)
            chosen = first[t_i, s_i]
            tp[t_i, dk[starts[s_i]]] = True
            locked[t_i, gk[chosen]] = True

    ap = np.full((num_classes, nt), np.nan)
    for c in range(num_classes):
        if num_gt[c] == 0:
            continue
        idx = np.flatnonzero(dl == c)
        if len(idx) == 0:
            ap[c] = 0.0
            continue
        idx = idx[np.argsort(rank[idx])]
        tpc = np.cumsum(tp[:, idx], axis=1, dtype=np.float64)
        fpc = np.cumsum(~tp[:, idx], axis=1, dtype=np.float64)
        rec, prec = tpc / num_gt[c], tpc / (tpc + fpc)
        ap[c] = [interpolated_ap(prec[t], rec[t]) for t in range(nt)]
    return DetectionAP(thr, ap, num_gt, num_det)


def _activitynet_ties(first, nties, ismax, starts, dk, gk, gv, gs, gl, ds) -> np.ndarray:
    """Resolve equal-tIoU candidates by the scorer's order: `argsort()[::-1]` of the
    detection's tIoU row over all ground truths of its class and video, in file order."""
    first = first.copy()
    for t_i, s_i in zip(*np.nonzero(nties > 1)):
        b = starts[s_i]
        e = starts[s_i + 1] if s_i + 1 < len(starts) else ismax.shape[1]
        d = dk[b]
        g0 = gk[b]
        row_gts = np.flatnonzero((gv == gv[g0]) & (gl == gl[g0]))  # file order
        row = _iou_pairs(ds[d, 0], ds[d, 1], gs[row_gts, 0], gs[row_gts, 1])
        place = np.empty(len(row_gts), np.int64)
        place[np.argsort(row)[::-1]] = np.arange(len(row_gts))
        where = {g: p for g, p in zip(row_gts.tolist(), place.tolist())}
        cands = b + np.flatnonzero(ismax[t_i, b:e])
        first[t_i, s_i] = cands[np.argmin([where[int(gk[p])] for p in cands])]
    return first


# -- THUMOS14 -------------------------------------------------------------------------
def _thumos_rank(det_video: np.ndarray, det_score: np.ndarray) -> np.ndarray:
    """Global rank order key of the THUMOS14 scorer: stable sort on -score (NaN last) over
    videos in code order (codes must follow video names), then input order."""
    n = len(det_score)
    neg = -det_score
    order = np.lexsort((np.arange(n), det_video, neg))
    rank = np.empty(n, np.int64)
    rank[order] = np.arange(n)
    return rank


def average_precision_thumos14(
    gt_video, gt_segments, gt_label, det_video, det_segments, det_label, det_score,
    num_classes: int, thresholds=THUMOS14_TIOU, amb_video=(), amb_segments=(),
) -> DetectionAP:
    """AP per class and overlap threshold, as TH14evalDet_Updated.m computes it.

    Video codes must be in the order of the video names (the scorer sorts names to
    break score ties). `amb_*` are the Ambiguous segments.
    """
    gv, gs, gl = _check(gt_video, gt_segments, gt_label, "ground truth")
    dv, ds, dl = _check(det_video, det_segments, det_label, "detections")
    av = np.asarray(amb_video, np.int64).reshape(-1)
    aseg = np.asarray(amb_segments, np.float64).reshape(-1, 2)
    score = np.asarray(det_score, np.float64).reshape(-1)
    thr = np.asarray(thresholds, np.float64).reshape(-1)
    nt, nd = len(thr), len(dl)
    num_gt = np.bincount(gl, minlength=num_classes)[:num_classes]
    num_det = np.bincount(dl, minlength=num_classes)[:num_classes]

    # Rank within a class = order in the global key restricted to the class.
    rank = _thumos_rank(dv, score)
    nvid = int(max(gv.max(initial=-1), dv.max(initial=-1), av.max(initial=-1))) + 1

    # Pairs (gt, det) of the same class and video, gt-major.
    g_idx, d_idx = _pairs(gl * nvid + gv, dl * nvid + dv)
    ov = _thumos_pairs(gs[g_idx, 0], gs[g_idx, 1], ds[d_idx, 0], ds[d_idx, 1])
    keep = ov > thr.min() if nt else np.zeros(len(ov), bool)
    g_idx, d_idx, ov = g_idx[keep], d_idx[keep], ov[keep]

    free = np.ones((nt, nd), bool)
    if len(g_idx):
        group = gl[g_idx] * nvid + gv[g_idx]
        o = np.lexsort((rank[d_idx], g_idx, group))  # gts in file order, dets by rank
        g_idx, d_idx, ov, group = g_idx[o], d_idx[o], ov[o], group[o]
        step = _step_within_group(group, g_idx)
        order, bounds = _run_steps(step)
        g_idx, d_idx, ov = g_idx[order], d_idx[order], ov[order]
        for b0, b1 in zip(bounds[:-1], bounds[1:]):
            gk, dk, vk = g_idx[b0:b1], d_idx[b0:b1], ov[b0:b1]
            brk = np.r_[True, gk[1:] != gk[:-1]]
            starts = np.flatnonzero(brk)
            seg_of = np.cumsum(brk) - 1
            fr = free[:, dk]
            vals = np.where(fr, vk[None, :], -np.inf)  # T x P
            segmax = np.maximum.reduceat(vals, starts, axis=1)  # T x G
            ok = segmax > thr[:, None]
            ismax = fr & (vals == segmax[:, seg_of])
            pos = np.where(ismax, np.arange(b1 - b0)[None, :], b1 - b0)
            first = np.minimum.reduceat(pos, starts, axis=1)
            t_i, s_i = np.nonzero(ok)
            free[t_i, dk[first[t_i, s_i]]] = False

    # Detections overlapping an Ambiguous segment of their video.
    amb = np.zeros(nd, bool)
    if len(av) and nd:
        d2, a2 = _pairs(dv, av)
        hit = _thumos_pairs(ds[d2, 0], ds[d2, 1], aseg[a2, 0], aseg[a2, 1]) > 0
        amb[d2[hit]] = True

    ap = np.full((num_classes, nt), np.nan)
    for c in range(num_classes):
        if num_gt[c] == 0:
            continue
        idx = np.flatnonzero(dl == c)
        idx = idx[np.argsort(rank[idx])]
        is_tp = ~free[:, idx]  # T x n
        is_fp = free[:, idx] & ~amb[idx][None, :]
        tpc = np.cumsum(is_tp, axis=1, dtype=np.float64)
        fpc = np.cumsum(is_fp, axis=1, dtype=np.float64)
        with np.errstate(divide="ignore", invalid="ignore"):
            prec = tpc / (tpc + fpc)
        ap[c] = np.where(is_tp, prec, 0.0).sum(axis=1) / num_gt[c]
    return DetectionAP(thr, ap, num_gt, num_det)
