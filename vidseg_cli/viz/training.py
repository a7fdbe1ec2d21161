"""A training run's curves from its log.jsonl (train/engine.py writes one record per
epoch: epoch, step, loss, lr, seconds, and `val`, the validation metrics)."""

from __future__ import annotations

import json
import os
from pathlib import Path

from vidseg_cli.viz.timeline import save


def read_log(path: str | os.PathLike) -> list[dict]:
    """The epoch records; a line torn by a kill (the last, appended) is left out."""
    out = []
    for line in Path(path).read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            rec = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(rec, dict) and "epoch" in rec:
            out.append(rec)
    return out


def val_series(records: list[dict]) -> dict[str, list[tuple[int, float]]]:
    """name -> (epoch, value) of every numeric validation metric."""
    series: dict[str, list[tuple[int, float]]] = {}
    for r in records:
        for k, v in (r.get("val") or {}).items():
            if isinstance(v, (int, float)) and not isinstance(v, bool):
                series.setdefault(k, []).append((int(r["epoch"]), float(v)))
    return series


def training_figure(records: list[dict], title: str):
    from matplotlib.figure import Figure

    fig = Figure(figsize=(10, 3.6), layout="constrained")
    ax_l, ax_v = fig.subplots(1, 2)
    ep = [r["epoch"] for r in records if isinstance(r.get("loss"), (int, float))]
    ax_l.plot(ep, [r["loss"] for r in records if isinstance(r.get("loss"), (int, float))],
              marker=".", gid="loss")
    ax_l.set_xlabel("epoch")
    ax_l.set_ylabel("training loss")
    ax_l.set_title(title, fontsize=9)
    series = val_series(records)
    for name, pts in sorted(series.items()):
        ax_v.plot([e for e, _ in pts], [v for _, v in pts], marker=".", label=name,
                  gid=f"val:{name}")
    ax_v.set_xlabel("epoch")
    ax_v.set_ylabel("validation")
    if series:
        ax_v.legend(fontsize=7)
    else:
        ax_v.text(0.5, 0.5, "no validation records", transform=ax_v.transAxes,
                  ha="center", va="center", color="#777777")
    return fig


def training_plot(log: Path, svg: Path, png: Path) -> list[dict]:
    """Draw a run's curves; return its records."""
    records = read_log(log)
    save(training_figure(records, log.parent.name), svg, png)
    return records
