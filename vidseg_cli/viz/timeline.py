"""A video's temporal predictions as a timeline (matplotlib, written as SVG and PNG).

One lane pair per class: the predicted segments (opacity = score) above the ground truth
(solid), both in the class's colour (viz/colors.py), with the tIoU of each detection that
matches a ground truth of its class (best tIoU >= MATCH_TIOU) written over it; frame
scores as curves in a panel above. A long video is cut into windows of equal length, one
panel row each, so a 2-hour video keeps seconds-long actions visible.

matplotlib because one figure gives both SVG (sharp at any zoom, in the report) and PNG,
and its artists carry the drawn geometry (tests check the rectangles against the segments).
Every rectangle has a gid, "pred:<class>:<i>" or "gt:<class>:<i>", kept in the SVG.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from vidseg_cli.viz.colors import hex_color

MATCH_TIOU = 0.5  # ActivityNet's lowest threshold: a detection counted as found
MAX_LABELS = 60  # tIoU texts per figure, the highest-scoring matches first
SINGLE_ROW_S = 600.0  # up to 10 minutes fit one row
MAX_ROWS = 24
WIDTH_IN = 12.0


@dataclass
class Track:
    """Segments of one source in seconds: (N, 2) start/end, (N,) class names, (N,) scores."""

    segments: np.ndarray
    names: np.ndarray
    scores: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.segments)


@dataclass
class Timeline:
    """What one figure shows for one video."""

    video_id: str
    duration: float  # seconds
    pred: Track | None = None  # detections or proposals
    pred_label: str = "predicted"
    gt: Track | None = None
    curves: dict[str, np.ndarray] = field(default_factory=dict)  # class -> (T,) scores
    curve_times: np.ndarray | None = None  # (T,) seconds
    note: str = ""


def windows(duration: float, window: float | None = None) -> list[tuple[float, float]]:
    """[start, end) seconds of each panel row: one row up to SINGLE_ROW_S, else rows of
    `window` (default: 5 minutes, longer when that would give more than MAX_ROWS)."""
    duration = max(float(duration), 1e-6)
    if window is None:
        if duration <= SINGLE_ROW_S:
            return [(0.0, duration)]
        window = max(300.0, duration / MAX_ROWS)
    n = max(1, math.ceil(duration / window - 1e-9))
    return [(k * window, min(duration, (k + 1) * window)) for k in range(n)]


def opacity(scores: np.ndarray | None, n: int) -> np.ndarray:
    """Scores as opacities in [0.15, 1]: as they are when they lie in [0, 1] (posteriors),
    else rescaled by their range; none given: 1."""
    if scores is None or n == 0:
        return np.ones(n)
    s = np.nan_to_num(np.asarray(scores, np.float64), nan=0.0)
    if s.min() < 0 or s.max() > 1:
        lo, hi = s.min(), s.max()
        s = (s - lo) / (hi - lo) if hi > lo else np.ones_like(s)
    return 0.15 + 0.85 * np.clip(s, 0, 1)


def best_tiou(pred: Track, gt: Track | None, same_class: bool = True) -> np.ndarray:
    """(N,) best tIoU of each prediction with a ground truth (of its class)."""
    from vidseg_cli.geometry import tiou_matrix

    if gt is None or len(gt) == 0 or len(pred) == 0:
        return np.zeros(len(pred))
    m = tiou_matrix(pred.segments, gt.segments)
    if same_class:
        m = np.where(pred.names[:, None] == gt.names[None, :], m, 0.0)
    return m.max(axis=1)


def _fmt_time(x: float, _pos=None) -> str:
    x = max(0.0, x)
    h, rest = divmod(int(round(x)), 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


def lanes_of(tl: Timeline) -> list[tuple[str, str]]:
    """(class, "pred"|"gt") top to bottom: each class's prediction lane above its ground
    truth, classes in name order."""
    classes = set()
    for tr in (tl.pred, tl.gt):
        if tr is not None:
            classes |= {str(c) for c in tr.names}
    out = []
    for c in sorted(classes):
        if tl.pred is not None and (tl.pred.names == c).any():
            out.append((c, "pred"))
        if tl.gt is not None:
            out.append((c, "gt"))
    return out


def draw(tl: Timeline, window: float | None = None):
    """The matplotlib Figure of a timeline (Agg backend, no display needed)."""
    from matplotlib.figure import Figure
    from matplotlib.patches import Rectangle
    from matplotlib.ticker import FuncFormatter

    rows = windows(tl.duration, window)
    lanes = lanes_of(tl)
    has_curves = bool(tl.curves)
    n_lanes = max(1, len(lanes))
    lane_h = 0.24
    panel_h = 0.5 + lane_h * n_lanes + (1.2 if has_curves else 0)
    fig = Figure(figsize=(WIDTH_IN, 0.6 + panel_h * len(rows)), layout="constrained")
    title = f"{tl.video_id}: {_fmt_time(tl.duration)}"
    if tl.note:
        title += f" ({tl.note})"
    fig.suptitle(title, fontsize=10)
    ratios = []
    for _ in rows:
        ratios += [1.2, lane_h * n_lanes] if has_curves else [lane_h * n_lanes]
    axes = fig.subplots(len(ratios), 1, gridspec_kw={"height_ratios": ratios}, squeeze=False)[:, 0]
    fmt = FuncFormatter(_fmt_time)
    alpha = opacity(tl.pred.scores, len(tl.pred)) if tl.pred is not None else None
    matched = best_tiou(tl.pred, tl.gt, tl.pred_label != "proposals") if tl.pred is not None else None
    labelled = _labelled(tl, matched)
    ai = 0
    for r, (t0, t1) in enumerate(rows):
        if has_curves:
            ax = axes[ai]
            ai += 1
            for c, y in sorted(tl.curves.items()):
                ax.plot(tl.curve_times, y, color=hex_color(c), lw=1, label=c, gid=f"curve:{c}")
            ax.set_xlim(t0, t1)
            ax.set_ylim(0, 1.02)
            ax.set_ylabel("frame\nscore", fontsize=7)
            ax.xaxis.set_major_formatter(fmt)
            ax.tick_params(labelsize=7)
            if r == 0:
                ax.legend(fontsize=6, ncol=min(6, len(tl.curves)), loc="upper right")
        ax = axes[ai]
        ai += 1
        ax.set_xlim(t0, t1)
        ax.set_ylim(0, n_lanes)
        ax.invert_yaxis()
        ax.set_yticks([k + 0.5 for k in range(len(lanes))],
                      [f"{c} ({tl.pred_label if w == 'pred' else 'truth'})" for c, w in lanes],
                      fontsize=7)
        ax.xaxis.set_major_formatter(fmt)
        ax.tick_params(labelsize=7)
        for k in range(1, len(lanes)):
            ax.axhline(k, color="#dddddd", lw=0.5)
        row = {lane: k for k, lane in enumerate(lanes)}
        for which, tr in (("pred", tl.pred), ("gt", tl.gt)):
            if tr is None:
                continue
            for i, ((s, e), c) in enumerate(zip(tr.segments, tr.names)):
                if e <= t0 or s >= t1 or (str(c), which) not in row:
                    continue
                y = row[(str(c), which)]
                a = float(alpha[i]) if which == "pred" else 1.0
                ax.add_patch(Rectangle((s, y + 0.1), e - s, 0.8, facecolor=hex_color(str(c)),
                                       alpha=a, edgecolor="none", gid=f"{which}:{c}:{i}"))
                if which == "pred" and i in labelled:
                    ax.text(max(s, t0), y + 0.5, f"{matched[i]:.2f}", fontsize=6,
                            va="center", ha="left", color="black", clip_on=True,
                            gid=f"tiou:{c}:{i}")
        if not lanes:
            ax.text(0.5, 0.5, "no segments", transform=ax.transAxes, ha="center", va="center",
                    fontsize=9, color="#777777")
    axes[-1].set_xlabel("time (h:mm:ss)" if tl.duration >= 3600 else "time (m:ss)", fontsize=8)
    return fig


def _labelled(tl: Timeline, matched: np.ndarray | None) -> set[int]:
    """Indices of the predictions whose tIoU is written: matched ones, best scores first."""
    if tl.pred is None or tl.gt is None or matched is None or not len(matched):
        return set()
    idx = np.flatnonzero(matched >= MATCH_TIOU)
    if tl.pred.scores is not None:
        idx = idx[np.argsort(-np.nan_to_num(tl.pred.scores[idx], nan=-np.inf), kind="stable")]
    return set(idx[:MAX_LABELS].tolist())


def save(fig, svg: str | os.PathLike, png: str | os.PathLike, dpi: int = 110) -> None:
    """The figure as SVG and PNG, each written atomically (core/fs.py)."""
    import matplotlib

    from vidseg_cli.core.fs import write_with

    matplotlib.rcParams["svg.hashsalt"] = "vidseg"  # the same figure gives the same SVG
    write_with(svg, lambda p: fig.savefig(p, format="svg"), suffix=".svg")
    write_with(png, lambda p: fig.savefig(p, format="png", dpi=dpi), suffix=".png")


def timeline_of_file(path: str | os.PathLike, kind: str, gt, svg: Path, png: Path,
                     window: float | None, warnings: list[str]) -> str:
    """Draw the timeline of a detections, proposals or frame_scores file (segments in
    frames, drawn at frame / fps seconds) with the ground truth's segments of its video
    when `gt` (viz/sources.GroundTruth) has them; return the video id."""
    from vidseg_cli import store

    rec = store.read(path, kind)
    vid = str(rec.video_id)
    fps = float(rec.fps) or 1.0
    names = list(rec.class_names or [])
    duration = rec.num_frames / fps if rec.num_frames else 0.0
    tl = Timeline(vid, duration)
    if kind in ("detections", "proposals"):
        segs = np.asarray(rec["segments"], np.float64).reshape(-1, 2) / fps
        scores = np.asarray(rec["scores"], np.float64)
        if kind == "detections":
            labels = np.asarray(rec["labels"], np.int64)
            cls = np.array([names[k] if 0 <= k < len(names) else f"class {k}" for k in labels],
                           dtype=object)
        else:
            cls = np.array(["proposals"] * len(segs), dtype=object)
            tl.pred_label = "proposals"
        tl.pred = Track(segs, cls.astype(str), scores)
        if not len(segs):
            tl.note = f"no {kind}"
    else:
        probs = np.asarray(rec["probs"], np.float32)
        tl.curve_times = (np.arange(len(probs)) + 0.5) / fps
        tl.curves = {str(c): probs[:, k] for k, c in enumerate(names) if c != "background"}
    if gt is not None:
        got = gt.segments(vid)
        if got is None:
            warnings.append(f"{path}: no ground-truth segments for video '{vid}' in {gt.path}; "
                            "drawn without")
        else:
            s, lab, gnames = got
            tl.gt = Track(np.asarray(s, np.float64).reshape(-1, 2),
                          np.array([gnames[k] for k in lab], dtype=object).astype(str))
            if kind == "proposals":  # proposals have no class: every truth is one lane
                tl.gt.names = np.array(["proposals"] * len(tl.gt), dtype=object).astype(str)
    ends = [tl.duration]
    for tr in (tl.pred, tl.gt):
        if tr is not None and len(tr):
            ends.append(float(np.nanmax(tr.segments[:, 1])))
    tl.duration = max(ends) or 1.0
    save(draw(tl, window), svg, png)
    return vid

