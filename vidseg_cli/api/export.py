"""export: detections files to one ActivityNet-style result JSON or THUMOS14 text file."""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from vidseg_cli.api.base import Ports, Summary, many, one
from vidseg_cli.errors import InputError

STAGE = "export"


@dataclass
class Options:
    fmt: str | None = None  # "activitynet" | "thumos14"; None: from the output's suffix
    time_base: str = "fps"  # seconds as frame / fps, or the frames file's timestamps


@dataclass
class ExportSummary(Summary):
    stage: str
    output: str
    format: str
    videos: int
    detections: int
    background_left_out: int
    warnings: dict[str, int]
    warning_lines: list[str] = field(default_factory=list)  # shown, not part of --json

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d.pop("warning_lines")
        return d


def output_format(out: str | Path, fmt: str | None) -> str:
    return fmt or ("thumos14" if Path(out).suffix.lower() == ".txt" else "activitynet")


def load(opts: Options) -> Exporter:
    return Exporter(opts)


class Exporter:
    def __init__(self, opts: Options):
        self.opts = opts

    def run(self, inputs: Ports, outputs: Ports) -> ExportSummary:
        """Write inputs["detections"] (files or folders) to outputs["results"]."""
        from vidseg_cli import store
        from vidseg_cli.core.fs import write_text
        from vidseg_cli.datasets.predictions import classify_inputs, read_predictions

        out = one(outputs, "results", STAGE)
        fmt = output_format(out, self.opts.fmt)
        kind, files = classify_inputs(many(inputs, "detections"))
        if kind != "detections":
            raise InputError(files[0], f"expected detections files, found {kind}")
        pred = read_predictions(kind, files, self.opts.time_base)
        lines = [f"{where}: {text}" for where, text in _issue_lines(pred.issues)]

        bg = pred.label == "background"
        if bg.any():
            lines.append(f"{pred.sources[0] if len(files) == 1 else f'{len(files)} files'}: "
                         f"{int(bg.sum())} background detections left out")
        keep = ~bg
        rows = zip(pred.video[keep], pred.segments[keep], pred.label[keep], pred.score[keep])
        if fmt == "activitynet":
            results: dict[str, list] = {v: [] for v in sorted(pred.videos_seen)}
            for v, (s, e), c, sc in rows:
                results[str(v)].append({"segment": [float(s), float(e)], "label": str(c),
                                        "score": float(sc)})
            text = json.dumps({"version": "vidseg", "external_data": {}, "results": results})
        else:
            _check_text_ids(pred.videos_seen, files)
            index: dict[str, int] = {}
            for f in files:
                for k, c in enumerate(store.read_detections(f).class_names):
                    if index.setdefault(c, k) != k:
                        raise InputError(f, f"class '{c}' has index {k} here but {index[c]} in "
                                            "another file")
            text = "".join(f"{v} {s:.6g} {e:.6g} {index[str(c)]} {sc:.9g}\n"
                           for v, (s, e), c, sc in rows)
        try:
            out.parent.mkdir(parents=True, exist_ok=True)
            write_text(out, text)
        except OSError as e:
            raise InputError(out, f"cannot write ({e.strerror or e})") from None
        return ExportSummary(stage=STAGE, output=str(out), format=fmt,
                             videos=len(pred.videos_seen), detections=int(keep.sum()),
                             background_left_out=int(bg.sum()),
                             warnings=dict(pred.issues.counts), warning_lines=lines)


def _check_text_ids(videos: set[str], files: list[str]) -> None:
    """THUMOS14 text splits records on newlines and fields on whitespace: a video id that
    holds either cannot be read back, so it is refused (result JSON keeps any id)."""
    from vidseg_cli import store

    bad = sorted(v for v in map(str, videos) if not v or re.search(r"\s", v))
    if bad:
        src = next((f for f in files if store.read_detections(f).video_id in bad), files[0])
        raise InputError(src, f"video id {bad[0]!r} holds whitespace, which THUMOS14 text cannot "
                              "carry; export it as result JSON (--format activitynet)")


def _issue_lines(issues) -> list[tuple[str, str]]:
    from vidseg_cli.metrics.temporal_report import issue_lines

    # the evaluation's wording about scoring does not apply here; keep the count part
    return [(where, text.split(";")[0] + "; written as they are")
            for where, text in issue_lines(issues)]
