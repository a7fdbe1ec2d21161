"""The report page: one HTML file, its style inline, pictures by relative path beside it.
No script, font or style is fetched from anywhere: the page works offline."""

from __future__ import annotations

import html
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vidseg_cli.viz.colors import hex_color

CSS = """
body{font:14px/1.45 system-ui,-apple-system,'Segoe UI',sans-serif;margin:0;color:#222;background:#fafafa}
header{background:#263238;color:#eee;padding:14px 24px}header h1{font-size:19px;margin:0}
nav a{color:#b2dfdb;margin-right:14px}main{padding:8px 24px 40px}
section{margin:22px 0}h2{border-bottom:2px solid #ccc;padding-bottom:3px}h3{margin:16px 0 4px;font-size:15px}
table{border-collapse:collapse;margin:6px 0;font-size:12.5px}
td,th{border:1px solid #ccc;padding:2px 7px;text-align:right}th{background:#eceff1}
td:first-child,th:first-child{text-align:left}
img.fig{max-width:100%;border:1px solid #ddd;background:#fff}
.card{background:#fff;border:1px solid #ddd;border-radius:4px;padding:8px 12px;margin:10px 0}
.stills img{height:150px;margin-right:6px;border:1px solid #ddd}
video{max-width:100%;background:#000;display:block;margin:4px 0}
.muted{color:#777;font-size:12px}.swatch{display:inline-block;width:11px;height:11px;margin:0 3px 0 8px;vertical-align:-1px}
code{font-size:12px;word-break:break-all}
"""


def esc(x: Any) -> str:
    return html.escape(str(x), quote=True)


@dataclass
class MetricsItem:
    path: Path
    doc: dict
    files: list[str]  # relative to the page


@dataclass
class PictureItem:
    path: Path
    kind: str
    attrs: dict
    files: list[str]


@dataclass
class RunItem:
    folder: Path
    records: list[dict]
    files: list[str]


@dataclass
class Page:
    title: str
    metrics: list[MetricsItem] = field(default_factory=list)
    timelines: list[PictureItem] = field(default_factory=list)
    videos: list[PictureItem] = field(default_factory=list)
    runs: list[RunItem] = field(default_factory=list)
    provenance: list[tuple[Path, str, dict]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def render(self) -> str:
        parts = [
            "<!DOCTYPE html>",
            '<html lang="en"><head><meta charset="utf-8">',
            '<meta name="viewport" content="width=device-width, initial-scale=1">',
            f"<title>{esc(self.title)}</title><style>{CSS}</style></head><body>",
            f"<header><h1>{esc(self.title)}</h1><nav>",
            *(f'<a href="#{a}">{t}</a>' for a, t in _SECTIONS),
            f'</nav><div class="muted" style="color:#cfd8dc">written '
            f'{esc(time.strftime("%Y-%m-%d %H:%M:%S"))}</div></header><main>',
            self._metrics(), self._timelines(), self._videos(), self._runs(),
            self._provenance(), self._warnings(), "</main></body></html>",
        ]
        return "\n".join(parts) + "\n"

    def _metrics(self) -> str:
        out = ['<section id="metrics"><h2>Metrics</h2>']
        if not self.metrics:
            out.append('<p class="muted">No evaluate records (--json) in this folder.</p>')
        for m in self.metrics:
            out.append(f'<div class="card"><h3>{esc(m.path.name)}</h3>'
                       f'<div class="muted">{esc(m.path)}</div>{metrics_table(m.doc)}')
            out += [f'<img class="fig" src="{esc(f)}" alt="plots of {esc(m.path.name)}">'
                    for f in m.files if f.endswith(".svg")]
            out.append("</div>")
        return "\n".join(out) + "</section>"

    def _timelines(self) -> str:
        out = ['<section id="timelines"><h2>Timelines</h2>']
        if not self.timelines:
            out.append('<p class="muted">No detections, proposals or frame scores.</p>')
        for t in self.timelines:
            out.append(f'<div class="card"><h3>{esc(t.attrs.get("video_id", ""))}: '
                       f'{esc(t.kind)}</h3><div class="muted">{esc(t.path)}</div>')
            out += [f'<img class="fig" src="{esc(f)}" alt="timeline of {esc(t.path.name)}">'
                    for f in t.files if f.endswith(".svg")]
            out.append("</div>")
        return "\n".join(out) + "</section>"

    def _videos(self) -> str:
        out = ['<section id="videos"><h2>Overlay videos</h2>']
        if not self.videos:
            out.append('<p class="muted">No labels or scores files (with their frames).</p>')
        for v in self.videos:
            names = [n for n in v.attrs.get("class_names") or [] if n != "background"]
            legend = "".join(f'<span class="swatch" style="background:{hex_color(n)}"></span>'
                             f"{esc(n)}" for n in names)
            out.append(f'<div class="card"><h3>{esc(v.attrs.get("video_id", ""))}: '
                       f'{esc(v.kind)}</h3><div class="muted">{esc(v.path)}</div>'
                       f"<div>{legend}</div>")
            for f in v.files:
                if f.endswith(".webm"):
                    out.append(f'<video controls muted loop preload="auto" src="{esc(f)}">'
                               "</video>")
            stills = [f for f in v.files if f.endswith(".png")]
            if stills:
                out.append('<div class="stills">' + "".join(
                    f'<img src="{esc(f)}" alt="still {esc(Path(f).stem)}">' for f in stills)
                    + "</div>")
            out.append("</div>")
        return "\n".join(out) + "</section>"

    def _runs(self) -> str:
        out = ['<section id="training"><h2>Training runs</h2>']
        if not self.runs:
            out.append('<p class="muted">No training run folders (log.jsonl).</p>')
        for r in self.runs:
            last = r.records[-1] if r.records else {}
            val = ", ".join(f"{esc(k)} {v:.4g}" for k, v in (last.get("val") or {}).items()
                            if isinstance(v, (int, float)))
            out.append(f'<div class="card"><h3>{esc(r.folder.name)}</h3><div class="muted">'
                       f"{esc(r.folder)}: {len(r.records)} epochs"
                       + (f"; last loss {last['loss']:.4g}" if "loss" in last else "")
                       + (f"; last validation: {val}" if val else "") + "</div>")
            out += [f'<img class="fig" src="{esc(f)}" alt="curves of {esc(r.folder.name)}">'
                    for f in r.files]
            out.append("</div>")
        return "\n".join(out) + "</section>"

    def _provenance(self) -> str:
        out = ['<section id="provenance"><h2>What ran</h2><table><tr><th>file</th><th>kind'
               "</th><th>video</th><th>command</th><th>created</th><th>vidseg</th></tr>"]
        for p, kind, a in self.provenance:
            cmd = a.get("command") or ""
            cmd = " ".join(map(str, cmd)) if isinstance(cmd, (list, tuple)) else str(cmd)
            out.append(f"<tr><td><code>{esc(p)}</code></td><td>{esc(kind)}</td><td>"
                       f"{esc(a.get('video_id', ''))}</td><td><code>{esc(cmd)}</code></td>"
                       f"<td>{esc(a.get('created', ''))}</td>"
                       f"<td>{esc(a.get('vidseg_version', ''))}</td></tr>")
        return "\n".join(out) + "</table></section>"

    def _warnings(self) -> str:
        if not self.warnings:
            return ""
        items = "".join(f"<li>{esc(w)}</li>" for w in self.warnings)
        return f'<section id="notes"><h2>Notes</h2><ul class="muted">{items}</ul></section>'


_SECTIONS = (("metrics", "Metrics"), ("timelines", "Timelines"), ("videos", "Videos"),
             ("training", "Training"), ("provenance", "What ran"))


def _pct(v: Any) -> str:
    return "-" if not isinstance(v, (int, float)) else f"{100 * v:.2f}"


def metrics_table(doc: dict) -> str:
    """An evaluate record as an HTML table (numbers in percent)."""
    kind = doc.get("kind")
    if kind == "detections":
        keys = list(doc.get("mAP") or {})
        head = "".join(f"<th>{esc(k)}</th>" for k in keys)
        rows = []
        for c, ap in (doc.get("AP") or {}).items():
            cells = "".join(f"<td>{_pct((ap or {}).get(k))}</td>" for k in keys)
            rows.append(f"<tr><td>{esc(c)}</td><td>{(doc.get('num_gt') or {}).get(c, '')}</td>"
                        f"{cells}</tr>")
        mean = "".join(f"<td><b>{_pct(doc['mAP'].get(k))}</b></td>" for k in keys)
        return (f"<p>{esc(doc.get('protocol'))} protocol, AP (%) at tIoU; ground truth "
                f"<code>{esc(doc.get('ground_truth'))}</code>, subset {esc(doc.get('subset'))}"
                f"</p><table><tr><th>class</th><th>#gt</th>{head}</tr>{''.join(rows)}"
                f"<tr><td><b>mAP</b></td><td></td>{mean}</tr></table>")
    if kind == "proposals":
        rows = "".join(f"<tr><td>{esc(an)}</td><td>{_pct(ar)}</td></tr>"
                       for an, ar in (doc.get("AR@AN") or {}).items())
        return (f"<table><tr><th>AN</th><th>AR (%)</th></tr>{rows}<tr><td><b>AUC</b></td>"
                f"<td><b>{doc.get('AUC', 0):.2f}</b></td></tr></table>")
    if kind == "frame_scores":
        rows = "".join(f"<tr><td>{esc(c)}</td><td>{_pct(ap)}</td></tr>"
                       for c, ap in (doc.get("AP") or {}).items())
        return (f"<table><tr><th>class</th><th>frame AP (%)</th></tr>{rows}<tr><td><b>mAP"
                f"</b></td><td><b>{_pct(doc.get('mAP'))}</b></td></tr></table>")
    rows = "".join(f"<tr><td>{esc(k)}</td><td>{_pct(v)}</td></tr>" for k, v in doc.items()
                   if isinstance(v, (int, float)) and not isinstance(v, bool) and 0 <= v <= 1)
    return f"<table><tr><th>measure</th><th>%</th></tr>{rows}</table>"
