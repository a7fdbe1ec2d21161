"""Plots of `vidseg evaluate --json` records (matplotlib, SVG and PNG).

detections    AP per class at tIoU 0.5 (or the threshold nearest it), the ActivityNet and
              THUMOS14 protocols side by side; mAP against tIoU for both; precision-recall
              curves per class at that threshold. The protocol the record lacks, and the
              curves, are computed from the predictions and ground truth the record names
              (when they are still there; else a warning and the record alone).
proposals     AR against the average number of proposals per video, AR per tIoU.
frame_scores  AP per class.
pixel         every number of the record, as bars.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from vidseg_cli.viz.colors import hex_color
from vidseg_cli.viz.timeline import save

PROTOCOL_COLORS = {"activitynet": "#1f77b4", "thumos14": "#ff7f0e"}


def _nearest_key(keys: list[str], t: float = 0.5) -> str | None:
    return min(keys, key=lambda k: abs(float(k) - t)) if keys else None


def other_protocol(doc: dict, warnings: list[str], where: str) -> dict | None:
    """The record of the other detection protocol, from the same predictions, ground
    truth, subset and thresholds (api/evaluate.py), or None when they cannot be read."""
    from vidseg_cli.api import evaluate
    from vidseg_cli.errors import InputError

    preds = [p for p in doc.get("predictions") or [] if not str(p).startswith("... ")]
    if len(preds) != len(doc.get("predictions") or []) or not preds:
        warnings.append(f"{where}: the record does not list all its predictions; the other "
                        "protocol is not drawn")
        return None
    missing = [p for p in [*preds, doc.get("ground_truth") or ""] if not Path(p).exists()]
    if missing:
        warnings.append(f"{where}: {missing[0]} is gone; only the record's protocol is drawn")
        return None
    other = "thumos14" if doc.get("protocol") == "activitynet" else "activitynet"
    try:
        return evaluate.load(evaluate.Options(protocol=other, tiou=np.array(doc["tiou"]),
                                              subset=doc.get("subset"))).run(
            {"predictions": preds, "ground-truth": doc["ground_truth"]}).metrics
    except InputError as e:
        warnings.append(f"{where}: the {other} protocol could not be computed ({e})")
        return None


def pr_curves(doc: dict, threshold: float) -> dict[str, Any]:
    """class -> PRCurve of the record's predictions (viz/pr_curve.py), {} when unreadable."""
    from vidseg_cli.datasets.predictions import read_predictions
    from vidseg_cli.datasets.temporal_gt import load_temporal_gt
    from vidseg_cli.errors import InputError
    from vidseg_cli.viz.pr_curve import pr_curve

    preds = [p for p in doc.get("predictions") or [] if Path(p).exists()]
    if not preds or not Path(doc.get("ground_truth") or "").exists():
        return {}
    try:
        pred = read_predictions("detections", preds)
        gt = load_temporal_gt(doc["ground_truth"], doc.get("subset"))
    except InputError:
        return {}
    out = {}
    for k, c in enumerate(gt.classes):
        g = gt.label == k
        if not g.any():
            continue
        d = pred.label == c
        out[c] = pr_curve(pred.video[d], pred.segments[d], pred.score[d], gt.video[g],
                          gt.segments[g], threshold)
    return out


def detections_figure(doc: dict, where: str, warnings: list[str]):
    from matplotlib.figure import Figure

    records = {doc["protocol"]: doc}
    other = other_protocol(doc, warnings, where)
    if other is not None:
        records[other["protocol"]] = other
    key = _nearest_key(list(doc["mAP"]))
    classes = [c for c, ap in doc["AP"].items() if ap is not None]
    curves = pr_curves(doc, float(key)) if key else {}
    fig = Figure(figsize=(14, 4.5), layout="constrained")
    ax_ap, ax_map, ax_pr = fig.subplots(1, 3, gridspec_kw={"width_ratios": [2, 1, 1.2]})
    width = 0.8 / max(1, len(records))
    x = np.arange(len(classes))
    for j, (proto, rec) in enumerate(sorted(records.items())):
        vals = [(rec["AP"].get(c) or {}).get(key) or 0.0 for c in classes]
        ax_ap.bar(x + (j - (len(records) - 1) / 2) * width, vals, width,
                  color=PROTOCOL_COLORS.get(proto), label=f"{proto} (mAP {_pct(rec['mAP'].get(key))})",
                  gid=f"ap:{proto}")
        ts = [float(t) for t in rec["mAP"]]
        ax_map.plot(ts, [rec["mAP"][k] or 0.0 for k in rec["mAP"]], marker="o",
                    color=PROTOCOL_COLORS.get(proto), label=proto, gid=f"map:{proto}")
    ax_ap.set_xticks(x, classes, rotation=45 if len(classes) > 6 else 0, ha="right"
                     if len(classes) > 6 else "center", fontsize=7)
    ax_ap.set_ylim(0, 1)
    ax_ap.set_ylabel(f"AP at tIoU {key}")
    ax_ap.set_title("AP per class, protocols side by side", fontsize=9)
    ax_ap.legend(fontsize=7)
    ax_map.set_xlabel("tIoU threshold")
    ax_map.set_ylabel("mAP")
    ax_map.set_ylim(0, 1)
    ax_map.set_title("mAP against tIoU", fontsize=9)
    ax_map.legend(fontsize=7)
    for c, cv in sorted(curves.items()):
        if len(cv.recall):
            # The interpolated curve, whose area is the class's AP, over dots of the raw
            # precision after each detection.
            ax_pr.step(*cv.steps(), where="pre", color=hex_color(c), lw=1.2, label=c,
                       gid=f"pr:{c}")
            ax_pr.plot(cv.recall, cv.precision, ls="none", marker=".", ms=2,
                       color=hex_color(c), alpha=0.5, gid=f"pr-raw:{c}")
    ax_pr.set_xlim(0, 1)
    ax_pr.set_ylim(0, 1.02)
    ax_pr.set_xlabel("recall")
    ax_pr.set_ylabel("precision")
    ax_pr.set_title(f"precision-recall at tIoU {key} (ActivityNet matching)"
                    if curves else "precision-recall: predictions not readable", fontsize=9)
    if curves:
        ax_pr.legend(fontsize=6)
    return fig


def proposals_figure(doc: dict):
    from matplotlib.figure import Figure

    fig = Figure(figsize=(10, 4), layout="constrained")
    ax_c, ax_t = fig.subplots(1, 2)
    ax_c.plot(doc["curve"]["AN"], doc["curve"]["AR"], color="#1f77b4", gid="ar-an")
    ax_c.set_xlabel("average number of proposals per video (AN)")
    ax_c.set_ylabel("average recall (AR)")
    ax_c.set_ylim(0, 1)
    ax_c.set_title(f"AR@AN (AUC {doc['AUC']:.2f})" if doc.get("AUC") is not None else "AR@AN",
                   fontsize=9)
    per = doc.get("AR_per_tiou_at_max") or {}
    ax_t.bar(list(per), [v or 0.0 for v in per.values()], color="#1f77b4", gid="ar-tiou")
    ax_t.set_xlabel("tIoU threshold")
    ax_t.set_ylabel(f"recall at AN = {doc.get('max_proposals')}")
    ax_t.set_ylim(0, 1)
    ax_t.tick_params(axis="x", labelsize=7, rotation=45)
    return fig


def bars_figure(values: dict[str, float | None], title: str, ylabel: str, by_class: bool):
    from matplotlib.figure import Figure

    names = list(values)
    fig = Figure(figsize=(max(5, 0.5 * len(names) + 2), 4), layout="constrained")
    ax = fig.subplots()
    ax.bar(range(len(names)), [v or 0.0 for v in values.values()],
           color=[hex_color(n) if by_class else "#1f77b4" for n in names], gid="bars")
    ax.set_xticks(range(len(names)), names, rotation=45 if len(names) > 5 else 0,
                  ha="right" if len(names) > 5 else "center", fontsize=7)
    ax.set_ylim(0, 1)
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=9)
    return fig


def _pct(v: float | None) -> str:
    return "-" if v is None else f"{100 * v:.1f}"


def _numbers(doc: dict) -> dict[str, float]:
    """The record's scalar numbers in [0, 1] (pixel metrics are fractions)."""
    out = {}
    for k, v in doc.items():
        if isinstance(v, (int, float)) and not isinstance(v, bool) and 0 <= v <= 1:
            out[k] = float(v)
    return out


def metrics_figure(path: str | os.PathLike, doc: dict, svg: Path, png: Path,
                   warnings: list[str]) -> None:
    """Draw the plots of one evaluate record to `svg` and `png`."""
    kind = doc["kind"]
    if kind == "detections":
        fig = detections_figure(doc, str(path), warnings)
    elif kind == "proposals":
        fig = proposals_figure(doc)
    elif kind == "frame_scores":
        fig = bars_figure(doc["AP"], f"frame-level AP per class (mAP {_pct(doc.get('mAP'))})",
                          "AP", by_class=True)
    else:
        fig = bars_figure(_numbers(doc), f"pixel metrics ({Path(path).name})", "value",
                          by_class=False)
    save(fig, svg, png)
