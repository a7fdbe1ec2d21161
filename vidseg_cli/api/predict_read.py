"""What `predict` reports of a video, read back from the files its stages wrote: the
detections in seconds, and the pixels of a labels or scores file per class."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from vidseg_cli.errors import InputError


def detections_in_seconds(path: str | Path) -> list[dict[str, Any]]:
    """A detections file's detections, best first: start and end in seconds of the source
    video (the frames file's timestamps, found through the file's provenance, so a clip cut
    with --start keeps its own time), class name and score."""
    from vidseg_cli.datasets.predictions import read_predictions

    pred = read_predictions("detections", [str(path)], time_base="timestamps")
    order = np.argsort(-pred.score, kind="stable")
    return [{"start": round(float(pred.segments[i, 0]), 3), "end": round(float(pred.segments[i, 1]), 3),
             "label": str(pred.label[i]), "score": float(pred.score[i])} for i in order]


def pixel_shares(path: str | Path) -> dict[str, Any]:
    """Of a labels file (or a scores file, by its top class per pixel): the frames, the
    frames with a pixel of an action, and each class's share of all pixels. Read one frame
    at a time, so memory stays that of a frame whatever the video's length."""
    from vidseg_cli import store

    kind = store.peek_kind(path)
    with store.open_record(path, kind) as rec:
        names = list(rec.class_names or [])
        data = rec["labels"] if kind == "labels" else rec["probs"]
        counts = np.zeros(max(len(names), 1), np.int64)
        action_frames = 0
        for t in range(data.shape[0]):
            lab = np.asarray(data[t]) if kind == "labels" else np.asarray(data[t]).argmax(0)
            c = np.bincount(lab.ravel(), minlength=len(counts))
            if len(c) > len(counts):
                raise InputError(path, f"frame {t} holds label {len(c) - 1}, outside its "
                                       f"{len(counts)} classes")
            counts += c
            action_frames += int(c[1:].sum() > 0)
        total = int(counts.sum())
    shares = {(names[k] if k < len(names) else str(k)): round(float(n) / max(total, 1), 4)
              for k, n in enumerate(counts)}
    return {"file": str(path), "frames": int(data.shape[0]), "action_frames": action_frames,
            "class_shares": shares}
