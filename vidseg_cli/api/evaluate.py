"""evaluate: predictions of one kind scored against ground truth.

Temporal predictions (detections, proposals, frame scores; our .h5 files, result JSON,
THUMOS14 text, or other tools' pickles: datasets/tool_results.py) go to metrics/temporal_report.py under the chosen protocol; pixel
predictions (labels, scores, mask folders) go to metrics/pixel_report.py.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from vidseg_cli.api.base import Ports, Summary, many, one
from vidseg_cli.errors import InputError

STAGE = "evaluate"


@dataclass
class Options:
    protocol: str | None = None  # "activitynet" | "thumos14"; None: from the ground truth
    tiou: Any = None  # thresholds (array); None: the protocol's
    subset: str | None = None
    time_base: str = "fps"
    max_proposals: float = 100.0
    davis_task: str = "unsupervised"
    pixel_frames: str = "all"  # masks: "all" frames, or "gt-action" (ground-truth action frames)
    strict: bool = False  # a questionable record is an error, not a warning
    classes: str | None = None  # a class list naming integer labels (tool_results.read_class_names)
    on_warning: Callable[[str], None] | None = None  # each warning line as it arises
    on_notice: Callable[[str], None] | None = None  # each notice line (not a problem)


@dataclass
class EvaluateSummary(Summary):
    kind: str  # "pixel", "detections", "proposals" or "frame_scores"
    metrics: dict[str, Any]  # the --json record
    warnings: list[str] = field(default_factory=list)
    notices: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return self.metrics


def load(opts: Options) -> Evaluator:
    return Evaluator(opts)


class Evaluator:
    def __init__(self, opts: Options):
        self.opts = opts
        self.warnings: list[str] = []

    def _warn(self, line: str) -> None:
        self.warnings.append(line)
        if self.opts.on_warning is not None:
            self.opts.on_warning(line)

    def run(self, inputs: Ports, outputs: Ports | None = None) -> EvaluateSummary:
        """Score inputs["predictions"] (files or folders) against inputs["ground-truth"]."""
        from vidseg_cli.datasets.predictions import classify_inputs

        self.warnings = []
        predictions = many(inputs, "predictions")
        gt_path = str(one(inputs, "ground-truth", STAGE))
        kind, files = classify_inputs(predictions)
        if kind == "pixel":
            return self._pixel(predictions, gt_path)
        return self._temporal(kind, files, gt_path)

    def _pixel(self, predictions: list[str], gt_path: str) -> EvaluateSummary:
        from vidseg_cli.metrics.pixel_report import evaluate_pixel

        o = self.opts
        res = evaluate_pixel(predictions, gt_path, davis_task=o.davis_task, strict=o.strict,
                             pixel_frames=o.pixel_frames)
        for w in res.get("warnings", []):
            self._warn(w)
        line = _resize_notice(res.get("resized", {}))
        if line and o.on_notice is not None:
            o.on_notice(line)
        return EvaluateSummary("pixel", res, self.warnings, [line] if line else [])

    def _temporal(self, kind: str, files: list[str], gt_path: str) -> EvaluateSummary:
        from vidseg_cli.datasets import predictions as P
        from vidseg_cli.datasets.temporal_gt import load_temporal_gt
        from vidseg_cli.metrics import temporal_report as R

        o = self.opts
        gt = load_temporal_gt(gt_path, o.subset)
        for w in gt.warnings:
            self._warn(w)
        if len(gt) == 0:
            self._warn(f"{gt.path}: no ground-truth segments in subset '{gt.subset}': no AP can "
                       "be computed")
        protocol = o.protocol or ("thumos14" if gt.format == "thumos14" else "activitynet")
        if kind == "frame_scores":
            fs = P.collect_frame_scores(files, o.time_base)
            _check_shared_classes(fs.class_names, gt.classes, files)
            res = R.evaluate_frames(fs, gt)
            issues = fs.issues
        else:
            pred = P.read_predictions(kind, files, o.time_base)
            kind = pred.kind
            if pred.label_code is not None:
                _name_integer_labels(pred, gt, o.classes)
            if pred.kind == "detections":
                _check_shared_classes(pred.label, gt.classes, files)
            if pred.kind == "proposals":
                res = R.evaluate_proposals(pred, gt, o.tiou, o.max_proposals)
            else:
                res = R.evaluate_detections(pred, gt, protocol, o.tiou)
            issues = pred.issues
        for where, text in R.issue_lines(issues, protocol):
            if o.strict:
                raise InputError(where, f"{text} (--strict)")
            self._warn(f"{where}: {text}")
        res["predictions"] = files if len(files) <= 20 else files[:20] + [f"... {len(files) - 20} more"]
        return EvaluateSummary(kind, res, self.warnings)


def _name_integer_labels(pred, gt, classes: str | None) -> None:
    """A tool's integer labels (ActionFormer's) named by --classes, else by the ground
    truth's `label_id`s; with neither, the numbering is unknown: an error, not a guess."""
    from vidseg_cli.datasets.tool_results import label_names, read_class_names

    if classes is not None:
        label_names(pred, read_class_names(classes), classes)
    elif gt.label_ids:
        label_names(pred, gt.label_ids, f"the 'label_id's of {gt.path}")
    else:
        raise InputError(pred.sources[0], "class labels are integers of the tool's own numbering: "
                                          "name them with --classes FILE (lines 'index name', or one "
                                          "name per line from index 0), or give ground truth whose "
                                          "annotations carry 'label_id'")


def _check_shared_classes(predicted, truth, files: list[str]) -> None:
    """Predictions none of whose classes the ground truth knows were scored against the
    wrong ground truth (or class list): every AP would be 0, so it is an error. A single
    unknown class among known ones stays a warning (temporal_report's issues)."""
    names = {str(c) for c in predicted} - {"", "background"}
    if names and not names & set(truth):
        shown = ", ".join(sorted(names)[:5]) + (", ..." if len(names) > 5 else "")
        known = ", ".join(list(truth)[:5]) + (", ..." if len(truth) > 5 else "")
        where = files[0] if len(files) == 1 else f"{files[0]} (and {len(files) - 1} more)"
        raise InputError(where, f"none of its classes ({shown}) is a class of the ground truth "
                                f"({known}): wrong ground truth or class list?")


def _resize_notice(resized: dict[str, dict]) -> str | None:
    """One line saying how many predictions were brought to the ground truth's size, from
    what to what; None when none was."""
    if not resized:
        return None
    pairs: dict[str, int] = {}
    for r in resized.values():
        key = f"{r['from']} -> {r['to']}"
        pairs[key] = pairs.get(key, 0) + 1
    sizes = ", ".join(f"{k} ({n} video{'s' if n > 1 else ''})" for k, n in pairs.items())
    return (f"{len(resized)} prediction(s) made on resized frames brought to the ground "
            f"truth's size (labels by nearest neighbour, scores bilinearly before the argmax): "
            f"{sizes}")
