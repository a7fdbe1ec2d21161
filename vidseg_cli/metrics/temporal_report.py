"""Score temporal predictions against temporal ground truth: the glue between the readers
(datasets/temporal_gt.py, datasets/predictions.py) and the metrics, plus the tables.

Returns JSON-able dicts (documented in docs/evaluate.md) and the record-level issues,
each of which the command prints as one warning line (an error under --strict).
"""

from __future__ import annotations

import numpy as np

from vidseg_cli.datasets.predictions import FrameScores, Issues, Predictions
from vidseg_cli.datasets.temporal_gt import TemporalGT
from vidseg_cli.metrics.frame_ap import frame_average_precision, rasterize
from vidseg_cli.metrics.proposals import average_recall_vs_proposals
from vidseg_cli.metrics.temporal import (
    ACTIVITYNET_TIOU,
    THUMOS14_TIOU,
    average_precision_activitynet,
    average_precision_thumos14,
)

__all__ = [
    "ISSUE_TEXT",
    "PROTOCOLS",
    "default_thresholds",
    "evaluate_detections",
    "evaluate_frames",
    "evaluate_proposals",
    "issue_lines",
    "result_table",
    "tkey",
]

PROTOCOLS = ("activitynet", "thumos14")

# One line per kind of questionable record: {n} count, {ex} an example.
ISSUE_TEXT = {
    "unknown_video": "{n} predictions for videos absent from the ground truth (e.g. {ex}); "
    "scored as false positives, as both official scorers do",
    "unknown_class": "{n} detections of classes the ground truth does not know (e.g. {ex}); "
    "ignored, as TH14evalDet ignores unknown class indices",
    "background": "{n} detections labelled as background; ignored",
    "no_gt_class": "{n} detections of classes without ground truth in this subset (e.g. {ex}); "
    "ignored: such a class has no AP",
    "nonfinite_score": "{n} predictions with a NaN or infinite score (e.g. {ex}); kept and ranked "
    "as the {protocol} scorer ranks them (NaN {nan_rank})",
    "bad_segment": "{n} segments with end <= start or a non-finite end (e.g. {ex}); kept and "
    "scored with the {protocol} overlap ({bad_rule})",
    "empty": "{n} prediction files with no predictions",
    "duplicate_video": "{n} videos appear in more than one file (e.g. {ex}); all their "
    "predictions are used",
    "no_timestamps": "{n} files whose frames file could not be found through their provenance "
    "(e.g. {ex}); times computed from fps",
    "missing_video": "{n} ground-truth videos have no frame scores (e.g. {ex}); their frames "
    "are not ranked",
    "missing_class": "{n} ground-truth classes have no score column in the frame scores "
    "(e.g. {ex}); no AP for them",
}
_PROTOCOL_WORDS = {
    "activitynet": {"nan_rank": "first", "bad_rule": "a reversed segment never overlaps"},
    "thumos14": {"nan_rank": "last", "bad_rule": "a reversed segment has its ends swapped, "
                 "an empty one never overlaps"},
}


def default_thresholds(protocol: str) -> np.ndarray:
    return ACTIVITYNET_TIOU.copy() if protocol == "activitynet" else THUMOS14_TIOU.copy()


def tkey(t: float) -> str:
    """A threshold as a JSON key: "0.5", "0.55"."""
    return f"{float(t):.4g}"


def issue_lines(issues: Issues, protocol: str = "activitynet") -> list[tuple[str, str]]:
    """(file, text) per kind of issue, for warnings or a --strict error."""
    out = []
    for kind, n in issues.counts.items():
        text = ISSUE_TEXT[kind].format(n=n, ex=issues.examples.get(kind) or "-", protocol=protocol,
                                       **_PROTOCOL_WORDS.get(protocol, _PROTOCOL_WORDS["activitynet"]))
        out.append((issues.where(kind), text))
    return out


def _video_codes(*arrays: np.ndarray) -> tuple[list[str], list[np.ndarray]]:
    """Integer codes in name order (the THUMOS14 scorer breaks ties by sorted names)."""
    allv = np.concatenate([np.asarray(a, dtype=str) for a in arrays]) if arrays else np.zeros(0, str)
    names, inv = np.unique(allv, return_inverse=True)
    out, lo = [], 0
    for a in arrays:
        out.append(inv[lo:lo + len(a)].astype(np.int64))
        lo += len(a)
    return names.tolist(), out


def _src(pred: Predictions) -> str:
    return pred.sources[0] if len(pred.sources) == 1 else f"{len(pred.sources)} prediction files"


def _unknown_videos(pred: Predictions, gt: TemporalGT, keep: np.ndarray) -> None:
    mask = keep & ~np.isin(pred.video, gt.videos)
    if mask.any():
        pred.issues.add("unknown_video", int(mask.sum()), _src(pred), str(pred.video[mask][0]))


def resolve_classes(pred: Predictions, gt: TemporalGT) -> np.ndarray:
    """(N,) class index into gt.classes, -1 for detections to ignore (issues recorded)."""
    n = len(pred)
    cls = np.full(n, -1, np.int64)
    src = _src(pred)
    by_id = pred.label_index >= 0
    if by_id.any():
        id_pos = {i: k for k, i in enumerate(gt.class_ids)}
        cls[by_id] = [id_pos.get(int(i), -1) for i in pred.label_index[by_id]]
        bad = by_id & (cls < 0)
        if bad.any():
            pred.issues.add("unknown_class", int(bad.sum()), src, f"class index {pred.label_index[bad][0]}")
    named = ~by_id
    if named.any():
        pos = {c: k for k, c in enumerate(gt.classes)}
        names, inv = np.unique(pred.label[named], return_inverse=True)
        table = np.array([pos.get(c, -1) for c in names.tolist()], np.int64)
        cls[named] = table[inv]
        bg = named & (cls < 0) & (pred.label == "background")
        if bg.any():
            pred.issues.add("background", int(bg.sum()), src, "background")
        bad = named & (cls < 0) & ~bg
        if bad.any():
            pred.issues.add("unknown_class", int(bad.sum()), src, repr(str(pred.label[bad][0])))
    num_gt = np.bincount(gt.label, minlength=len(gt.classes))
    nogt = (cls >= 0) & (num_gt[np.maximum(cls, 0)] == 0)
    if nogt.any():
        pred.issues.add("no_gt_class", int(nogt.sum()), src, gt.classes[cls[nogt][0]])
        cls[nogt] = -1
    return cls


def evaluate_detections(pred: Predictions, gt: TemporalGT, protocol: str,
                        thresholds=None) -> dict:
    """mAP per threshold and AP per class and threshold under `protocol`."""
    thr = default_thresholds(protocol) if thresholds is None else np.asarray(thresholds, np.float64)
    cls = resolve_classes(pred, gt)
    keep = cls >= 0
    _unknown_videos(pred, gt, keep)
    names, (gv, dv, av) = _video_codes(gt.video, pred.video[keep], gt.amb_video)
    C = len(gt.classes)
    args = (gv, gt.segments, gt.label, dv, pred.segments[keep], cls[keep], pred.score[keep], C, thr)
    if protocol == "activitynet":
        r = average_precision_activitynet(*args)
    elif protocol == "thumos14":
        r = average_precision_thumos14(*args, amb_video=av, amb_segments=gt.amb_segments)
    else:
        raise ValueError(f"unknown protocol {protocol!r}")
    mAP = r.mAP
    return {
        "kind": "detections",
        "protocol": protocol,
        "ground_truth": gt.path,
        "subset": gt.subset,
        "tiou": [float(t) for t in thr],
        "mAP": {tkey(t): _num(m) for t, m in zip(thr, mAP)},
        "average_mAP": _num(np.mean(mAP)) if len(mAP) else None,
        "AP": {
            c: ({tkey(t): _num(a) for t, a in zip(thr, r.ap[k])} if r.num_gt[k] else None)
            for k, c in enumerate(gt.classes)
        },
        "num_gt": {c: int(n) for c, n in zip(gt.classes, r.num_gt)},
        "num_detections": {c: int(n) for c, n in zip(gt.classes, r.num_det)},
        "num_predictions": len(pred),
        "num_ambiguous": int(len(gt.amb_video)) if protocol == "thumos14" else 0,
        "warnings": dict(pred.issues.counts),
    }


def evaluate_proposals(pred: Predictions, gt: TemporalGT, thresholds=None,
                       max_proposals: float = 100) -> dict:
    """AR@AN (ActivityNet's proposal measure) over every ground-truth segment."""
    thr = ACTIVITYNET_TIOU.copy() if thresholds is None else np.asarray(thresholds, np.float64)
    _unknown_videos(pred, gt, np.ones(len(pred), bool))
    _, (gv, pv) = _video_codes(gt.video, pred.video)
    r = average_recall_vs_proposals(gv, gt.segments, pv, pred.segments, pred.score,
                                    max_avg_nr_proposals=max_proposals, thresholds=thr)
    points = [an for an in (1, 5, 10, 50, 100, 200, 500, 1000) if an <= max_proposals]
    return {
        "kind": "proposals",
        "ground_truth": gt.path,
        "subset": gt.subset,
        "tiou": [float(t) for t in thr],
        "max_proposals": max_proposals,
        "AR@AN": {str(an): _num(r.at(an)) for an in points},
        "AUC": _num(r.auc),
        "AR_per_tiou_at_max": {tkey(t): _num(x) for t, x in zip(thr, r.recall[:, -1])},
        "curve": {"AN": [_num(x) for x in r.proposals_per_video],
                  "AR": [_num(x) for x in r.average_recall]},
        "num_gt": r.num_gt,
        "num_videos": r.num_videos,
        "num_predictions": len(pred),
        "warnings": dict(pred.issues.counts),
    }


def evaluate_frames(fs: FrameScores, gt: TemporalGT) -> dict:
    """Frame-level AP per class over all frames of the scored videos (FSN Table 1)."""
    issues = fs.issues
    col = {c: k for k, c in enumerate(fs.class_names)}
    missing_cls = [c for c in gt.classes if c not in col]
    if missing_cls:
        issues.add("missing_class", len(missing_cls), fs.sources[0], missing_cls[0])
    known = set(gt.videos)
    unknown = [v for v in fs.videos if v not in known]
    if unknown:
        issues.add("unknown_video", sum(len(p) for v, p in zip(fs.videos, fs.probs) if v not in known),
                   fs.sources[0], unknown[0])
    have = set(fs.videos)
    missing = sorted(v for v in set(gt.video.tolist()) if v not in have)
    if missing:
        issues.add("missing_video", len(missing), gt.path, missing[0])
    C = len(gt.classes)
    pos, sc = [], []
    cols = np.array([col.get(c, -1) for c in gt.classes])
    for v, p, fps, times in zip(fs.videos, fs.probs, fs.fps, fs.times):
        m = gt.video == v
        pos.append(rasterize(len(p), fps, gt.segments[m], gt.label[m], C, times))
        s = np.zeros((len(p), C))
        s[:, cols >= 0] = p[:, cols[cols >= 0]]
        sc.append(s)
    scores = np.concatenate(sc) if sc else np.zeros((0, C))
    positives = np.concatenate(pos) if pos else np.zeros((0, C), bool)
    ap = frame_average_precision(scores, positives)
    ap[cols < 0] = np.nan
    ok = ~np.isnan(ap)
    return {
        "kind": "frame_scores",
        "ground_truth": gt.path,
        "subset": gt.subset,
        "mAP": _num(ap[ok].mean()) if ok.any() else None,
        "AP": {c: (_num(a) if not np.isnan(a) else None) for c, a in zip(gt.classes, ap)},
        "num_positive_frames": {c: int(n) for c, n in zip(gt.classes, positives.sum(0))},
        "num_frames": int(len(scores)),
        "num_videos": len(fs.videos),
        "warnings": dict(issues.counts),
    }


def _num(x) -> float | None:
    x = float(x)
    return None if np.isnan(x) else x


def _fmt(x) -> str:
    return "-" if x is None else f"{100 * x:.2f}"


def result_table(res: dict):
    """A rich table of a result dict (numbers in percent)."""
    from rich.table import Table

    kind = res["kind"]
    if kind == "detections":
        keys = [tkey(t) for t in res["tiou"]]
        t = Table(title=f"{res['protocol']} protocol: AP (%) per class at tIoU "
                  f"({res['ground_truth']}, subset {res['subset']})")
        t.add_column("class")
        t.add_column("#gt", justify="right")
        for k in keys:
            t.add_column(k, justify="right")
        for c, ap in res["AP"].items():
            t.add_row(c, str(res["num_gt"][c]), *([_fmt(ap[k]) for k in keys] if ap else ["-"] * len(keys)))
        t.add_section()
        t.add_row("mAP", str(sum(res["num_gt"].values())), *[_fmt(res["mAP"][k]) for k in keys],
                  style="bold")
        if res.get("average_mAP") is not None:
            t.caption = f"average mAP over thresholds: {100 * res['average_mAP']:.2f}"
        return t
    if kind == "proposals":
        t = Table(title=f"AR@AN (%), tIoU {res['tiou'][0]:g}..{res['tiou'][-1]:g} "
                  f"({res['ground_truth']}, subset {res['subset']})")
        t.add_column("AN")
        t.add_column("AR", justify="right")
        for an, ar in res["AR@AN"].items():
            t.add_row(an, _fmt(ar))
        t.add_section()
        t.add_row("AUC", f"{res['AUC']:.2f}", style="bold")
        return t
    t = Table(title=f"frame-level AP (%) ({res['ground_truth']}, subset {res['subset']})")
    t.add_column("class")
    t.add_column("#positive frames", justify="right")
    t.add_column("AP", justify="right")
    for c, ap in res["AP"].items():
        t.add_row(c, str(res["num_positive_frames"][c]), _fmt(ap))
    t.add_section()
    t.add_row("mAP", str(res["num_frames"]), _fmt(res["mAP"]), style="bold")
    return t
