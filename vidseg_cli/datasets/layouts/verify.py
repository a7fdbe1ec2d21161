"""Checking a dataset before any work, as nnU-Net's verify_dataset_integrity does:

    report = verify(detect("../shared/refdata/davis2016"))
    for p in report.problems: print(p.severity, p.file, p.problem)

Checks (`CHECKS`), each run where the layout has what it needs and otherwise listed in
`Report.checks_skipped` with the reason:

- annotations: every annotation file reads;
- segments: no segment ends at or before its start, or starts before 0;
- classes: every class is the layout's (THUMOS14 detclasslist.txt, the JSON's taxonomy,
  J-HMDB's 21 class folders, a synth set's labels files), with the closest known name;
- splits: no subset or split file is empty, and split files name existing videos;
- videos: every annotated video is there and opens (a header probe, no decoding), with
  the frame count and rate the annotations state;
- durations: no segment ends after its video (one frame of slack);
- masks: masks read, and their size and frame count are the frames' (J-HMDB, DAVIS,
  synth labels).
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from vidseg_cli.datasets.layouts.detect import Layout

__all__ = ["CHECKS", "Problem", "Report", "closest", "did_you_mean", "verify"]

CHECKS = ("annotations", "segments", "classes", "splits", "videos", "durations", "masks")


@dataclass(frozen=True)
class Problem:
    file: str
    problem: str
    severity: str = "error"  # "error" | "warning"
    check: str = ""  # one of CHECKS


@dataclass
class Report:
    layout: Layout
    problems: list[Problem] = field(default_factory=list)
    checks_run: list[str] = field(default_factory=list)
    checks_skipped: dict[str, str] = field(default_factory=dict)  # check -> why
    counts: dict[str, int] = field(default_factory=dict)

    def error(self, check: str, file: str | os.PathLike, problem: str) -> None:
        self.problems.append(Problem(str(file), problem, "error", check))

    def warning(self, check: str, file: str | os.PathLike, problem: str) -> None:
        self.problems.append(Problem(str(file), problem, "warning", check))

    def ran(self, *checks: str) -> None:
        self.checks_run += [c for c in checks if c not in self.checks_run]

    def skip(self, check: str, why: str) -> None:
        if check not in self.checks_run:
            self.checks_skipped.setdefault(check, why)

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "error"]

    def to_dict(self) -> dict:
        lay = self.layout
        return {
            "layout": {
                "kind": lay.kind,
                "path": str(lay.path),
                "annotations": [str(a) for a in lay.annotations],
                **{k: str(v) for k in ("videos", "masks", "frames", "splits")
                   if (v := getattr(lay, k)) is not None},
            },
            "problems": [{"file": p.file, "problem": p.problem, "severity": p.severity,
                          "check": p.check} for p in self.problems],
            "checks_run": [c for c in CHECKS if c in self.checks_run],
            "checks_skipped": {c: self.checks_skipped[c] for c in CHECKS if c in self.checks_skipped},
            "counts": self.counts,
        }


def closest(name: str, known: Iterable[str]) -> str | None:
    """The known name nearest to `name` (difflib), or None when none is near."""
    match = difflib.get_close_matches(name, list(known), n=1, cutoff=0.6)
    return match[0] if match else None


def did_you_mean(name: str, known: Iterable[str]) -> str:
    """' (did you mean 'X'?)' for the nearest known name, or ''."""
    match = closest(name, known)
    return f" (did you mean '{match}'?)" if match else ""


Progress = Callable[[int, str], Callable[[int], None]]


def _no_progress(total: int, description: str) -> Callable[[int], None]:
    return lambda n=1: None


def verify(layout: Layout, videos: str | os.PathLike | None = None,
           progress: Progress | None = None) -> Report:
    """Run every check the layout allows (module docstring). `videos`: the folder of the
    annotated videos (a synth or custom layout has its own). `progress(total, what)`
    returns an `advance(n)` callback, for long probes."""
    from vidseg_cli.datasets.layouts import mask_checks, temporal_checks

    report = Report(layout)
    prog = progress or _no_progress
    vdir = Path(videos) if videos is not None else layout.videos
    probed = temporal_checks.check(layout, vdir, report, prog) if layout.temporal else {}
    if layout.kind == "synth":
        mask_checks.check_synth_labels(layout, probed, report, prog)
    elif layout.kind == "jhmdb":
        mask_checks.check_jhmdb(layout, report, prog)
    elif layout.kind == "davis":
        mask_checks.check_davis(layout, report, prog)
    elif layout.kind == "labels":
        mask_checks.check_labels(layout, report, prog)
    return report
