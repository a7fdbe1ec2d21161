"""Average recall vs average number of proposals per video (AR@AN), as ActivityNet's
proposal scorer (Evaluation/eval_proposal.py, `average_recall_vs_avg_nr_proposals`)
computes it. Pure numpy; videos are integer codes, segments (N, 2) seconds.

The scorer keeps, in every ground-truth video, the top `n_v * ratio` proposals (ranked by
`np.argsort(scores)[::-1]`), where ratio = AN_max * videos / all proposals, then
reads recall at 100 fractions of that budget: a ground truth is recalled at a budget
when one of the video's first `floor(kept_v * fraction)` proposals has tIoU >= the
threshold. AR is recall averaged over thresholds; AN the average number of proposals
per ground-truth video. Proposals of videos without ground truth count in the ratio
only. The area under the AR-AN curve is reported as a percentage of AN_max.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from vidseg_cli.metrics.temporal import ACTIVITYNET_TIOU, _iou_pairs

__all__ = ["ARAN", "average_recall_vs_proposals"]


@dataclass
class ARAN:
    thresholds: np.ndarray  # (T,)
    recall: np.ndarray  # (T, 100) recall at each threshold and budget
    average_recall: np.ndarray  # (100,)
    proposals_per_video: np.ndarray  # (100,) AN
    num_gt: int
    num_videos: int

    @property
    def auc(self) -> float:
        """Area under AR-AN, as a percentage of the largest AN (the scorer's figure)."""
        if self.proposals_per_video[-1] <= 0:
            return 0.0
        x, y = self.proposals_per_video, self.average_recall
        area = float(np.sum((x[1:] - x[:-1]) * (y[1:] + y[:-1]) / 2))
        return 100.0 * area / float(x[-1])

    def at(self, an: float) -> float:
        """AR at the budget nearest to AN = an (the curve is sampled at 100 points)."""
        i = int(np.argmin(np.abs(self.proposals_per_video - an)))
        return float(self.average_recall[i])


def average_recall_vs_proposals(
    gt_video, gt_segments, prop_video, prop_segments, prop_score,
    max_avg_nr_proposals: float | None = 100, thresholds=ACTIVITYNET_TIOU,
) -> ARAN:
    gv = np.asarray(gt_video, np.int64).reshape(-1)
    gs = np.asarray(gt_segments, np.float64).reshape(-1, 2)
    pv = np.asarray(prop_video, np.int64).reshape(-1)
    ps = np.asarray(prop_segments, np.float64).reshape(-1, 2)
    sc = np.asarray(prop_score, np.float64).reshape(-1)
    thr = np.asarray(thresholds, np.float64).reshape(-1)
    videos = np.unique(gv)
    nv, n_all = len(videos), len(pv)
    if nv == 0 or n_all == 0:
        z = np.zeros((len(thr), 100))
        return ARAN(thr, z, z.mean(0), np.zeros(100), len(gv), nv)
    if not max_avg_nr_proposals:
        max_avg_nr_proposals = n_all / nv
    ratio = max_avg_nr_proposals * nv / n_all

    # Per video: number of proposals kept, and for each gt and threshold the rank of the
    # first kept proposal reaching it (kept when none does).
    kept, first_hits = [], []
    g_order = np.argsort(gv, kind="stable")
    p_order = np.argsort(pv, kind="stable")
    g_lo = np.searchsorted(gv[g_order], videos, "left")
    g_hi = np.searchsorted(gv[g_order], videos, "right")
    p_lo = np.searchsorted(pv[p_order], videos, "left")
    p_hi = np.searchsorted(pv[p_order], videos, "right")
    total = 0
    for v in range(nv):
        g = g_order[g_lo[v]:g_hi[v]]
        p = p_order[p_lo[v]:p_hi[v]]
        if len(p) == 0:  # the scorer scores a single zero-tIoU column
            iou = np.zeros((len(g), 1))
        else:
            p = p[np.argsort(sc[p])[::-1]]
            n = min(int(len(p) * ratio), len(p))
            total += n
            p = p[:n]
            iou = _iou_pairs(ps[p, 0][None, :], ps[p, 1][None, :], gs[g, 0][:, None], gs[g, 1][:, None])
        k = iou.shape[1]
        hit = iou[None, :, :] >= thr[:, None, None]  # T x G x K
        if k == 0:  # a budget of no proposals in this video recalls nothing
            first = np.zeros(hit.shape[:2], np.int64)
        else:
            first = np.where(hit.any(2), hit.argmax(2), k)  # T x G (k = never)
        kept.append(k)
        first_hits.append(first)
    pcn = np.arange(1, 101) / 100.0 * (max_avg_nr_proposals * nv / total) if total else np.zeros(100)
    matches = np.zeros((len(thr), 100))
    for k, first in zip(kept, first_hits):
        budget = np.minimum((k * pcn).astype(int), k)  # (100,)
        matches += (first[:, :, None] < budget[None, None, :]).sum(1)
    recall = matches / len(gv)
    return ARAN(thr, recall, recall.mean(0), pcn * (total / nv), len(gv), nv)
