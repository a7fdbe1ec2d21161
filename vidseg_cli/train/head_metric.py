"""The validation metric of `train sep3d-head`: the head's accuracy with ground-truth
masks (train/segment_head.py, "Validation")."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from vidseg_cli.models.preprocess import (
    Preprocess,
    clip_starts,
    network_size,
    normalize,
    resize_frames,
)
from vidseg_cli.train.head_loss import IGNORE_FRAME, head_frame_targets, head_logits_from_features

# -- accuracy with ground-truth masks ----------------------------------------------------------
FEATURE_CACHE_BYTES = 512 << 20  # a frozen segmenter's validation features kept between epochs


def head_accuracy(model, videos, preprocess: Mapping[str, Any], device, batch_size: int = 4,
                  segmentation: bool = False, feature_cache: dict | None = None) -> dict[str, Any]:
    """The head's accuracy with ground-truth masks on `videos` (`head_counts`, summarised)."""
    return summarize_counts([head_counts(model, videos, preprocess, device, batch_size, segmentation,
                                         feature_cache)], model.action_names, segmentation)


def summarize_counts(parts: list[dict[str, Any]], action_names: list[str], segmentation: bool = False
                     ) -> dict[str, Any]:
    """The metrics of `head_counts` results of disjoint sets of videos (one per rank, or
    per video), added up."""
    correct = sum(p["correct"] for p in parts)
    total = sum(p["total"] for p in parts)
    loss_sum = sum(p["loss_sum"] for p in parts)
    per_class = sum((p["per_class"] for p in parts), np.zeros((len(action_names), 2), dtype=np.int64))
    # No frame with an actor: nothing measured (None, JSON's null; NaN is not JSON).
    out = {"accuracy_gt_masks": correct / total if total else None,
           "loss": loss_sum / total if total else None, "frames": total,
           "per_class": {action_names[k]: [int(c), int(m)] for k, (c, m) in enumerate(per_class) if m}}
    if segmentation:  # empty union (no foreground anywhere): 1, metrics/masks.py's convention
        inter, union = sum(p["fg_inter"] for p in parts), sum(p["fg_union"] for p in parts)
        out["foreground_iou_clips"] = inter / union if union else 1.0
        out["segmented_frames"] = sum(p["seg_frames"] for p in parts)
    return out


def head_counts(model, videos, preprocess: Mapping[str, Any], device, batch_size: int = 4,
                segmentation: bool = False, feature_cache: dict | None = None) -> dict[str, Any]:
    """What the head's accuracy with ground-truth masks counts: every frame with an actor of `videos`,
    whole frames at the network size of `preprocess` (the segmenter's checkpoint record,
    models/preprocess.py), clips of its `clip_len` frames (8 when 0) back to back (the last
    ending on the last frame; each frame counted once). Returns the counts
    `summarize_counts` turns into {"accuracy_gt_masks", "loss" (mean cross-entropy),
    "frames", "per_class": {action: [correct, frames]}}: "correct", "total", "loss_sum",
    "per_class" (A x 2: correct, frames).

    segmentation: every clip (with an actor or not) goes through the segmenter, and the
    counts add "fg_inter", "fg_union" (summarised as "foreground_iou_clips": |pred & gt| /
    |pred | gt| summed over every frame of `videos`, each counted once, pred = argmax
    class != 0 of its clip's logits, gt = label > 0, at the network's input size) and
    "seg_frames" ("segmented_frames").

    feature_cache: a dict kept between calls while the segmenter is frozen (without
    `segmentation`): the segmenter's features of each group of clips are then computed
    once (up to FEATURE_CACHE_BYTES in all; the rest every call) and reused."""
    import torch
    import torch.nn.functional as F

    prep = Preprocess.from_record(preprocess, "sep3d")
    n_act = len(model.action_names)
    correct = total = 0
    loss_sum = 0.0
    per_class = np.zeros((n_act, 2), dtype=np.int64)
    fg_inter = fg_union = seg_frames = 0
    model.eval()
    for v in videos:
        frames, labels = v.load()
        t, h, w = labels.shape
        size = network_size(h, w, prep.short_side)
        frames, labels = resize_frames(frames, size), resize_frames(labels, size, nearest=True)
        n = min(prep.clip_len or 8, t)
        starts = clip_starts(t, n, n)
        seen = np.zeros(t, dtype=bool)
        for i in range(0, len(starts), batch_size):
            group = starts[i : i + batch_size]
            y = np.stack([labels[s : s + n] for s in group])  # B x n x H x W
            boxes, target = head_frame_targets(y, n_act)
            new = np.zeros((len(group), n), dtype=bool)  # frames no earlier clip covered
            for k, s in enumerate(group):  # frames an earlier clip already scored
                new[k] = ~seen[s : s + n]
                target[k, seen[s : s + n]] = IGNORE_FRAME
                seen[s : s + n] = True
            use = [k for k in range(len(group)) if (target[k] != IGNORE_FRAME).any()]
            if not segmentation:
                if not use:
                    continue  # no actor: nothing to classify, no need to run the segmenter
                group, boxes, target = [group[k] for k in use], boxes[use], target[use]
            key = (v.video_id, tuple(group))
            feats = feature_cache.get(key) if feature_cache is not None and not segmentation else None
            if feats is None:
                x = torch.stack([normalize(frames[s : s + n], prep.mean, prep.std)
                                 for s in group]).to(device)  # B x 3 x n x H x W
                with torch.no_grad():
                    seg_logits, feats = model.segmenter.forward_with_features(x)
                if segmentation:
                    pred = (seg_logits.argmax(dim=1) != 0).cpu().numpy()[new]  # N x H x W
                    gt = y[new] > 0
                    fg_inter += int(np.count_nonzero(pred & gt))
                    fg_union += int(np.count_nonzero(pred | gt))
                    seg_frames += int(new.sum())
                    if not use:
                        continue
                    feats, boxes, target = feats[use], boxes[use], target[use]
                elif feature_cache is not None and (
                        sum(f.nbytes for f in feature_cache.values()) + feats.nbytes <= FEATURE_CACHE_BYTES):
                    feature_cache[key] = feats
            with torch.no_grad():
                logits, tg = head_logits_from_features(
                    model, feats, torch.from_numpy(boxes).to(device),
                    torch.from_numpy(target).to(device), size)
            loss_sum += float(F.cross_entropy(logits.float(), tg, reduction="sum"))
            pred = logits.argmax(dim=1).cpu().numpy()
            tg = tg.cpu().numpy()
            correct += int((pred == tg).sum())
            total += int(tg.size)
            np.add.at(per_class, (tg, 0), (pred == tg).astype(np.int64))
            np.add.at(per_class, (tg, 1), 1)
    return {"correct": correct, "total": total, "loss_sum": loss_sum, "per_class": per_class,
            "fg_inter": fg_inter, "fg_union": fg_union, "seg_frames": seg_frames}
