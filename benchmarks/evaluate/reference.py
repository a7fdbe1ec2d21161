"""Plain per-class reference loops of the two detection protocols.

Written for the benchmark (the speed baseline: the scorers' own structure, one
detection or one ground truth at a time in Python, numpy only for one row of overlaps)
and used by the tests as an independent cross-check of vidseg_cli.metrics.temporal.
"""

from __future__ import annotations

from collections import defaultdict

import numpy as np

from vidseg_cli.metrics.temporal import interpolated_ap


def _iou_row(d, gts):
    """tIoU of one segment with many, the ActivityNet way (0/0 counts as a match)."""
    inter = np.clip(np.minimum(d[1], gts[:, 1]) - np.maximum(d[0], gts[:, 0]), 0, None)
    union = (gts[:, 1] - gts[:, 0]) + (d[1] - d[0]) - inter
    with np.errstate(divide="ignore", invalid="ignore"):
        return inter / union


def _th14_ov(a, b):
    a0, a1 = min(a), max(a)
    b0, b1 = min(b), max(b)
    iw = min(a1, b1) - max(a0, b0)
    return iw / (max(a1, b1) - min(a0, b0)) if iw > 0 else 0.0


def activitynet_reference(gv, gs, gl, dv, ds, dl, sc, num_classes, thresholds):
    thresholds = np.asarray(thresholds, float)
    gs, ds, sc = np.asarray(gs, float), np.asarray(ds, float), np.asarray(sc, float)
    ap = np.full((num_classes, len(thresholds)), np.nan)
    gt_of = defaultdict(list)  # (class, video) -> gt indices in file order
    for i, (c, v) in enumerate(zip(gl, gv)):
        gt_of[int(c), int(v)].append(i)
    for c in range(num_classes):
        npos = int(np.sum(np.asarray(gl) == c))
        if npos == 0:
            continue
        di = np.flatnonzero(np.asarray(dl) == c)
        if len(di) == 0:
            ap[c] = 0.0
            continue
        di = di[np.argsort(sc[di])[::-1]]
        lock = {}
        tp = np.zeros((len(thresholds), len(di)))
        for k, d in enumerate(di):
            mine = gt_of.get((c, int(dv[d])))
            if not mine:
                continue
            row = _iou_row(ds[d], gs[mine])
            order = np.argsort(row)[::-1]
            for t, thr in enumerate(thresholds):
                for jj in order:
                    if row[jj] < thr:
                        break
                    if (t, mine[jj]) in lock:
                        continue
                    tp[t, k] = 1
                    lock[t, mine[jj]] = k
                    break
        tpc, fpc = np.cumsum(tp, 1), np.cumsum(1 - tp, 1)
        for t in range(len(thresholds)):
            ap[c, t] = interpolated_ap(tpc[t] / (tpc[t] + fpc[t]), tpc[t] / npos)
    return ap


def thumos14_reference(gv, gs, gl, dv, ds, dl, sc, num_classes, thresholds, av=(), aseg=()):
    """Video codes must follow the video names' order, as for the vectorized version."""
    thresholds = np.asarray(thresholds, float)
    gt_of, det_of, amb_of = defaultdict(list), defaultdict(list), defaultdict(list)
    for i, (c, v) in enumerate(zip(gl, gv)):
        gt_of[int(c), int(v)].append(i)
    for i, (c, v) in enumerate(zip(dl, dv)):
        det_of[int(c), int(v)].append(i)
    for i, v in enumerate(av):
        amb_of[int(v)].append(i)
    vids = sorted({int(v) for v in gv} | {int(v) for v in dv} | {int(v) for v in av})
    neg = [float("inf") if np.isnan(s) else -s for s in sc]  # MATLAB puts NaN last
    ap = np.full((num_classes, len(thresholds)), np.nan)
    for c in range(num_classes):
        npos = sum(1 for x in gl if x == c)
        if npos == 0:
            continue
        for t, thr in enumerate(thresholds):
            conf, flag = [], []
            for v in vids:
                det = sorted(det_of.get((c, v), []), key=lambda i: neg[i])  # stable
                if not det:
                    continue
                free = [True] * len(det)
                for g in gt_of.get((c, v), []):
                    best, bi = None, None
                    for k, d in enumerate(det):
                        if free[k]:
                            o = _th14_ov(gs[g], ds[d])
                            if best is None or o > best:
                                best, bi = o, k
                    if best is not None and best > thr:
                        free[bi] = False
                for k, d in enumerate(det):
                    on_amb = any(_th14_ov(aseg[a], ds[d]) > 0 for a in amb_of.get(v, []))
                    if not free[k]:
                        conf.append(neg[d])
                        flag.append(1)
                    elif not on_amb:
                        conf.append(neg[d])
                        flag.append(2)
            order = sorted(range(len(conf)), key=lambda i: conf[i])  # stable
            tp = fp = 0
            s = 0.0
            for i in order:
                if flag[i] == 1:
                    tp += 1
                    s += tp / (tp + fp)
                else:
                    fp += 1
            ap[c, t] = s / npos
    return ap
