"""DAVIS 2017 multi-object sequences for `vidseg evaluate`: read the indexed ground truth
and results (datasets/davis_indexed.py), score each sequence's objects
(metrics/davis_objects.py), and gather per-object and overall figures."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from vidseg_cli.datasets import davis_indexed as di
from vidseg_cli.metrics import davis as dm
from vidseg_cli.metrics.davis_objects import evaluate_objects, summarize_objects

__all__ = ["evaluate_davis2017"]


def _prediction(kind: str, src: Path, ids: list[str], size: tuple[int, int]) -> np.ndarray:
    """(T, H, W) predicted indices of the scored frames: result PNGs named after the ground
    truth's frames, or our labels/scores file (its class indices taken as object indices)."""
    if kind == "png":
        return di.read_indexed_sequence(src, frame_ids=ids, size=size)[0]
    from vidseg_cli.datasets import masks as mio
    from vidseg_cli.errors import InputError

    video = mio.read_h5_masks(src, size=size)
    if len(video.masks) != len(ids):
        raise InputError(src, f"{len(video.masks)} frames, the ground truth has {len(ids)}")
    return np.asarray(video.masks, np.int32)


def evaluate_davis2017(preds: dict[str, tuple[str, Path]], sequences: dict[str, Path],
                       paired: list[str], task: str) -> dict:
    per_object: dict[str, dict] = {}
    per_sequence: dict[str, dict] = {}
    for seq in paired:
        gt, ids = di.read_indexed_sequence(sequences[seq])
        sel = dm.scored_frames(len(gt), task)
        kind, src = preds[seq]
        if kind == "png":
            pred = _prediction(kind, src, ids[sel], gt.shape[1:])
        else:
            pred = _prediction(kind, src, ids, gt.shape[1:])[sel]
        objs = evaluate_objects(gt[sel], pred, task, str(src), first_frame=gt[0])
        for o in objs:
            per_object[f"{seq}_{o['object']}"] = {k: o[k] for k in ("matched", "J", "F", "frames")}
        per_sequence[seq] = summarize_objects({o["object"]: o for o in objs}) | {
            "objects": len(objs), "frames": int(len(pred))}
    overall = summarize_objects(per_object)
    return {
        "metric": "davis2017",
        "task": task,
        "bound_th": dm.BOUND_TH,
        "num_sequences": len(per_sequence),
        "num_objects": len(per_object),
        "J": overall["J"],
        "F": overall["F"],
        "J&F": overall["J&F"],
        "per_object": per_object,
        "per_sequence": per_sequence,
    }
