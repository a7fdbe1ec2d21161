"""The report over a folder of outputs: find what is there, draw it, write index.html.

    from vidseg_cli.viz.report import write_report
    result = write_report("runs/demo", "runs/demo/report")   # -> ReportResult
    result.index                                               # .../report/index.html

Found (recursively): vidseg HDF5 files by kind, evaluate's JSON records, training run
folders (log.jsonl). Drawn with api/visualize.py into <out>/assets/: overlay videos and
stills of labels and scores (frames through provenance), timelines of detections,
proposals and frame scores, metric plots, training curves. The page (viz/html.py) refers
to them by relative paths, so the folder can be moved or opened from disk, offline.
A file that cannot be drawn is one warning line; the rest of the report goes on.

The overlay videos are drawn by `jobs` worker processes at once (core/workers.py, as
every stage's --jobs; a stopped run leaves no temporary file of theirs): VP9 encoding
takes one core per video and is most of a report's time. The page is the same whatever
`jobs` is (results are taken in the files' order).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vidseg_cli.errors import InputError

MAX_VIDEOS = 24  # overlay videos per report: VP9 encoding is the slow part
STILLS = 3


@dataclass
class Found:
    """What a folder holds."""

    h5: list[tuple[Path, str, dict]] = field(default_factory=list)  # path, kind, root attrs
    metrics: list[tuple[Path, dict]] = field(default_factory=list)
    runs: list[Path] = field(default_factory=list)  # log.jsonl files
    unreadable: list[tuple[Path, str]] = field(default_factory=list)


@dataclass
class ReportResult:
    index: Path
    written: list[str]
    counts: dict[str, int]
    warnings: list[str]

    def to_json(self) -> dict[str, Any]:
        return {"stage": "report", "index": str(self.index), "written": self.written,
                "counts": self.counts, "warnings": self.warnings}


def scan(folders: Sequence[Path], skip: Path | Sequence[Path]) -> Found:
    """Every file the report can show under `folders`, leaving out the folders `skip` (the
    report, and those the user excluded) with everything under them."""
    from vidseg_cli import store

    found = Found()
    skipped = {p.resolve() for p in ([skip] if isinstance(skip, Path) else skip)}
    for root in folders:
        for dirpath, dirnames, filenames in os.walk(root):
            d = Path(dirpath)
            if d.resolve() in skipped:
                dirnames.clear()
                continue
            dirnames.sort()
            for name in sorted(filenames):
                p = d / name
                if name.startswith(".vidseg-tmp-"):
                    continue
                if name.endswith((".h5", ".hdf5")):
                    try:
                        with store.open_record(p) as rec:
                            found.h5.append((p, rec.kind, dict(rec.attrs)))
                    except (store.StoreError, OSError) as e:
                        found.unreadable.append((p, str(e)))
                elif name.endswith(".json"):
                    doc = _json(p)
                    if isinstance(doc, dict) and doc.get("kind") in (
                            "detections", "proposals", "frame_scores", "pixel"):
                        found.metrics.append((p, doc))
                elif name == "log.jsonl":
                    found.runs.append(p)
    return found


def _json(p: Path) -> Any:
    try:
        return json.loads(p.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None


def _asset_name(path: Path, roots: Sequence[Path]) -> str:
    """A flat, unique name for a file's pictures: its path under its folder, '/' -> '__'."""
    for r in roots:
        try:
            rel = path.resolve().relative_to(r.resolve())
            break
        except ValueError:
            continue
    else:
        rel = Path(path.name)
    name = "__".join(rel.parts)
    for suffix in (".h5", ".hdf5", ".json"):
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return name


def ground_truths(found: Found, gts: Sequence[str], warn: Callable[[str], None]):
    """(temporal, pixel) GroundTruth: the first of `gts` (--gt) that holds each, else
    the temporal one that evaluate records name."""
    from vidseg_cli.viz.sources import GroundTruth

    temporal = pixel = None
    for src in gts:
        g = GroundTruth.load(src)
        temporal = temporal or (g if g.temporal is not None else None)
        pixel = pixel or (g if g.pixel else None)
    if temporal is not None or gts:
        return temporal, pixel
    for p, doc in found.metrics:
        src = doc.get("ground_truth")
        if doc["kind"] == "pixel" or not isinstance(src, str) or not Path(src).exists():
            continue  # a pixel record names the kind of its ground truth, not its path
        try:
            g = GroundTruth.load(src, doc.get("subset"))
        except InputError as e:
            warn(f"{p}: its ground truth cannot be read ({e})")
            continue
        if g.temporal is not None:
            return g, pixel
    return temporal, pixel


def _draw_with(runner, path: Path, prefix: Path) -> tuple[list[str], list[str], str | None]:
    """One overlay video and its stills: (written, warnings, the error line when the file
    cannot be drawn)."""
    try:
        s = runner.run({"predictions": path}, {"prefix": prefix})
    except InputError as e:
        return [], [], str(e)
    return s.written, s.warnings, None


def _draw_overlay(path: Path, prefix: Path, gt, nearby: dict[str, list[Path]]
                  ) -> tuple[list[str], list[str], str | None]:
    """`_draw_with` in a worker process, with a visualizer of its own."""
    from vidseg_cli.api import visualize as V

    runner = V.load(V.Options(frames_png=STILLS))
    runner.gt, runner.nearby = gt, nearby
    return _draw_with(runner, path, prefix)


def write_report(folder: str | os.PathLike | Sequence[str | os.PathLike],
                 out: str | os.PathLike, gt: str | Sequence[str] = (), quiet: bool = True,
                 on_warning: Callable[[str], None] | None = None,
                 exclude: Sequence[str | os.PathLike] = (), jobs: int = 1) -> ReportResult:
    """Write <out>/index.html and <out>/assets/ over the outputs in `folder` (one folder
    or several), with the ground truth of `gt` (one source or several: temporal segments
    and masks), leaving out the folders in `exclude`, the overlay videos drawn by `jobs`
    processes; return what was written. InputError: a folder or ground truth that does
    not exist or cannot be read."""
    from vidseg_cli.api import visualize as V
    from vidseg_cli.progress import progress_bar
    from vidseg_cli.viz import html
    from vidseg_cli.viz.training import training_plot

    roots = [Path(f) for f in ([folder] if isinstance(folder, (str, os.PathLike)) else folder)]
    for r in roots:
        if not r.is_dir():
            raise InputError(r, "no such folder")
    out = Path(out)
    assets = out / "assets"
    try:
        assets.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise InputError(out, f"cannot create the report folder ({e.strerror or e})") from None
    warnings: list[str] = []

    def warn(line: str) -> None:
        warnings.append(line)
        if on_warning is not None:
            on_warning(line)

    found = scan(roots, [out, *(Path(e) for e in exclude)])
    for p, why in found.unreadable:
        warn(f"{why if str(p) in why else f'{p}: {why}'}; left out")
    temporal, pixel = ground_truths(found, [gt] if isinstance(gt, str) else list(gt), warn)
    runner = V.load(V.Options(frames_png=STILLS,
                              progress=lambda total, what: progress_bar(total, what, quiet)))
    for p, kind, attrs in found.h5:
        if kind == "frames":
            runner.nearby.setdefault(str(attrs.get("video_id")), []).append(p)
    page = html.Page(title="vidseg report: " + ", ".join(str(r) for r in roots))
    written: list[str] = []

    def draw(path: Path, kind: str, g) -> list[str]:
        runner.gt = g
        try:
            s = runner.run({"predictions": path}, {"prefix": assets / _asset_name(path, roots)})
        except InputError as e:
            warn(f"{e}; left out of the report")
            return []
        for line in s.warnings:
            warn(line)
        written.extend(s.written)
        return s.written

    for p, doc in found.metrics:
        files = draw(p, "metrics", None)
        page.metrics.append(html.MetricsItem(p, doc, _rel(files, out)))
    pixel_files: list[tuple[Path, str, dict]] = []
    for p, kind, attrs in found.h5:
        if kind in V.TEMPORAL_KINDS:
            files = draw(p, kind, temporal)
            if files:
                page.timelines.append(html.PictureItem(p, kind, attrs, _rel(files, out)))
        elif kind in V.PIXEL_KINDS:
            pixel_files.append((p, kind, attrs))
    overlays = 0
    pending = list(pixel_files)
    while pending and overlays < MAX_VIDEOS:  # files that fail to draw make room for the next
        batch, pending = pending[:MAX_VIDEOS - overlays], pending[MAX_VIDEOS - overlays:]
        for (p, kind, attrs), (files, lines, error) in zip(batch, _overlays(
                batch, runner, pixel, roots, assets, jobs, quiet)):
            for line in lines:
                warn(line)
            if error is not None:
                warn(f"{error}; left out of the report")
                continue
            written.extend(files)
            if files:
                overlays += 1
                page.videos.append(html.PictureItem(p, kind, attrs, _rel(files, out)))
    left_out = [Path(p) for p, _, _ in pending]
    if left_out:
        more = f" ... {left_out[-1]}" if len(left_out) > 1 else ""
        warn(f"{left_out[0]}{more}: {len(left_out)} pixel file(s) left out, the report shows "
             f"{MAX_VIDEOS} overlay videos at most")
    for log in found.runs:
        name = _asset_name(log.parent, roots) or log.parent.name
        svg, png = assets / f"{name}.training.svg", assets / f"{name}.training.png"
        try:
            records = training_plot(log, svg, png)
        except (OSError, InputError) as e:
            warn(f"{log}: cannot draw ({e}); left out")
            continue
        written += [str(svg), str(png)]
        page.runs.append(html.RunItem(log.parent, records, _rel([str(svg)], out)))
    page.provenance = [(p, kind, attrs) for p, kind, attrs in found.h5]
    page.warnings = warnings
    index = out / "index.html"
    from vidseg_cli.core.fs import write_text

    write_text(index, page.render())
    written.append(str(index))
    counts = {"metrics": len(page.metrics), "timelines": len(page.timelines),
              "videos": len(page.videos), "runs": len(page.runs), "files": len(found.h5)}
    return ReportResult(index, written, counts, warnings)


def _overlays(batch, runner, gt, roots, assets: Path, jobs: int, quiet: bool):
    """(written, warnings, error) of each pixel file of `batch`, in order: in this process
    when one job (with its per-frame progress), else by a pool of `jobs` processes."""
    from vidseg_cli.progress import progress_bar

    work = [(Path(p), assets / _asset_name(Path(p), roots)) for p, _, _ in batch]
    if jobs <= 1 or len(work) <= 1:
        runner.gt = gt
        return [_draw_with(runner, path, prefix) for path, prefix in work]
    import contextlib

    from vidseg_cli.core import signals, workers

    out = []
    try:
        tasks = ((path, prefix, gt, runner.nearby) for path, prefix in work)
        with contextlib.closing(workers.ordered(_draw_overlay, tasks, min(jobs, len(work)))) as results, \
                progress_bar(len(work), "overlay videos", quiet) as advance:
            for r in results:
                out.append(r)
                advance(1)
    except BaseException:
        # the workers are gone by now; what they were writing is a stale temporary file
        for _, prefix in work:
            _remove_stale_pictures(prefix)
        signals.check()  # a worker ended by the same signal is not the error
        raise
    return out


def _remove_stale_pictures(prefix: Path) -> None:
    """The temporary files a dead writer left of the pictures under `prefix` (the overlay
    video and its stills, whose names depend on the frame count)."""
    from vidseg_cli.core.fs import TMP_PREFIX, glob_escape, remove_stale_temps

    for tmp in prefix.parent.glob(glob_escape(TMP_PREFIX + prefix.name) + ".*"):
        remove_stale_temps(prefix.parent / tmp.name[len(TMP_PREFIX):].rsplit(".pid", 1)[0])


def _rel(files: list[str], out: Path) -> list[str]:
    return [os.path.relpath(f, out) for f in files]
