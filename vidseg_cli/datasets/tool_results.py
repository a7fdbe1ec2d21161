"""Results saved by other localization tools, as `Predictions` in seconds.

JSON results need nothing here: OpenTAD's `result_detection.json` (`{"results": {video:
[{"segment", "label": name, "score"}]}}`, written by opentad/cores/test_engine.py) and
mmaction2's localization dump (`ANetMetric` with `output_format="json"`: `{"version",
"results": {video: [{"segment", "score"}]}, "external_data"}`, proposals without labels)
are ActivityNet result JSON, which datasets/predictions.py reads.

Pickles are read through datasets/safe_pickle.py (plain data only, nothing executed):

- ActionFormer's `eval_results.pkl` (`eval.py --saveonly`; libs/utils/train_utils.py
  `valid_one_epoch`): a dict of equal-length columns `{"video-id": [str], "t-start",
  "t-end": float arrays in seconds, "label": int array, "score": float array}`. The labels
  are ActionFormer's class indices, the `label_id` of its annotation JSON; `label_names`
  turns them into class names (from that JSON's `label_id`s, or a class list).
- mmaction2's `tools/test.py --dump results.pkl` of a localizer (BMN, BSN): a list of
  `{"video_name": "v_<id>", "proposal_list": [{"segment": [s, e], "score": x}]}`, seconds;
  the "v_" prefix is dropped as mmaction2's own `ANetMetric.proposals2json` drops it, so
  the ids are ActivityNet's.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping

import numpy as np

from vidseg_cli.datasets.safe_pickle import load_plain
from vidseg_cli.errors import InputError, read_lines

__all__ = ["label_names", "read_class_names", "read_pickle_results"]

_ACTIONFORMER_KEYS = ("video-id", "t-start", "t-end", "label", "score")
_UNKNOWN = ("unknown results format: expected ActionFormer's eval_results.pkl (a dict of "
            "'video-id', 't-start', 't-end', 'label', 'score') or mmaction2's dump (a list of "
            "{'video_name', 'proposal_list'})")


def read_pickle_results(path: str | os.PathLike):
    """Predictions from an ActionFormer or mmaction2 pickle; `label_code` holds
    ActionFormer's integer labels (names come later, `label_names`)."""
    path = str(path)
    data = load_plain(path)
    if isinstance(data, Mapping) and all(k in data for k in _ACTIONFORMER_KEYS):
        return _actionformer(path, data)
    if isinstance(data, list) and all(isinstance(r, Mapping) and "proposal_list" in r for r in data):
        return _mmaction(path, data)
    raise InputError(path, _UNKNOWN)


def _column(path: str, data: Mapping, key: str, n: int | None, kind: str) -> np.ndarray:
    try:
        col = np.asarray(data[key], dtype=np.float64 if kind == "f" else np.int64).reshape(-1)
    except (TypeError, ValueError):
        raise InputError(path, f"'{key}': expected {'numbers' if kind == 'f' else 'integers'}") from None
    if n is not None and len(col) != n:
        raise InputError(path, f"'{key}' has {len(col)} entries, 'video-id' {n}")
    return col


def _actionformer(path: str, data: Mapping):
    from vidseg_cli.datasets.predictions import Predictions, check_records

    vids = data["video-id"]
    if isinstance(vids, np.ndarray):
        vids = vids.tolist()
    if not isinstance(vids, (list, tuple)) or not all(isinstance(v, str) for v in vids):
        raise InputError(path, "'video-id': expected a list of video names")
    n = len(vids)
    start = _column(path, data, "t-start", n, "f")
    end = _column(path, data, "t-end", n, "f")
    score = _column(path, data, "score", n, "f")
    labels = np.asarray(data["label"]).reshape(-1)
    if len(labels) != n:
        raise InputError(path, f"'label' has {len(labels)} entries, 'video-id' {n}")
    if n and not np.issubdtype(labels.dtype, np.integer):
        raise InputError(path, f"'label': expected integer class indices, found {labels.dtype}")
    pred = Predictions(
        kind="detections", sources=[path], video=np.array(vids, dtype=str).reshape(-1),
        segments=np.stack([start, end], 1).reshape(-1, 2), score=score,
        label=np.full(n, "", dtype=str), label_index=np.full(n, -1, np.int64),
        videos_seen=set(vids), label_code=labels.astype(np.int64))
    if not n:
        pred.issues.add("empty", 1, path)
    check_records(pred, path, 0)
    return pred


def _mmaction(path: str, data: list):
    from vidseg_cli.datasets.predictions import Predictions, check_records

    vids, segs, scores, seen = [], [], [], set()
    for k, r in enumerate(data):
        vid = r.get("video_name")
        if not isinstance(vid, str) or not isinstance(r["proposal_list"], (list, tuple)):
            raise InputError(path, f"[{k}]: expected {{'video_name': str, 'proposal_list': [...]}}")
        vid = vid[2:] if vid.startswith("v_") else vid
        seen.add(vid)
        for j, p in enumerate(r["proposal_list"]):
            try:
                s, e = (float(x) for x in p["segment"])
                sc = float(p["score"])
            except (KeyError, TypeError, ValueError):
                raise InputError(path, f"[{k}]['proposal_list'][{j}]: expected "
                                       "{'segment': [start, end], 'score': x}") from None
            vids.append(vid)
            segs.append((s, e))
            scores.append(sc)
    n = len(vids)
    pred = Predictions(
        kind="proposals", sources=[path], video=np.array(vids, dtype=str),
        segments=np.array(segs, np.float64).reshape(-1, 2), score=np.array(scores, np.float64),
        label=np.full(n, "", dtype=str), label_index=np.full(n, -1, np.int64), videos_seen=seen)
    if not n:
        pred.issues.add("empty", 1, path)
    check_records(pred, path, 0)
    return pred


def read_class_names(path: str | os.PathLike) -> dict[int, str]:
    """A class list naming integer labels: lines `index name` (THUMOS14's detclasslist.txt;
    names may hold spaces, as ActivityNet's do), or one name per line, the index being the
    line's number from 0 (OpenTAD's category_idx.txt)."""
    lines = [ln.strip() for ln in read_lines(path) if ln.strip()]
    if not lines:
        raise InputError(path, "empty class list")
    indexed = [re.fullmatch(r"(\d+)\s+(.+)", ln) for ln in lines]
    if all(indexed):
        out = {int(m.group(1)): m.group(2) for m in indexed}
        if len(out) != len(lines):
            raise InputError(path, "an index is given twice")
    else:
        out = dict(enumerate(lines))
    if len(set(out.values())) != len(out):
        raise InputError(path, "a class name is given twice")
    return out


def label_names(pred, names: Mapping[int, str], source: str) -> None:
    """Name `pred`'s integer labels in place; an index `names` lacks becomes `#<index>`,
    which the evaluation counts as an unknown class. `source` says where `names` came from,
    for the error when none of the indices is known."""
    codes = pred.label_code
    if codes is None:
        return
    known = np.isin(codes, list(names))
    if len(codes) and not known.any():
        shown = ", ".join(str(c) for c in np.unique(codes)[:5])
        raise InputError(pred.sources[0], f"none of its class indices ({shown}) is named by {source}")
    pred.label = np.array([names.get(int(c), f"#{int(c)}") for c in codes], dtype=str).reshape(-1)
    pred.label_code = None
