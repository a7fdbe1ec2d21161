"""FSN and WFSN over one video's snippet features, in memory (the frame scores that
`localize --method fsn | wfsn` groups into detections, api/localize_fsn.py).

FSN (§3.5 "FSN model prediction"): the network is slid over the whole video without
overlap, in windows of the training clip's length (`clip_snippets` in the checkpoint's
`preprocess`, written by `train fsn`; else §3.5's N = 7 snippets); the windows' snippet
scores are put on their centre frames and interpolated linearly to every frame (§3.3's
upsampling, across window borders too), then softmax (Eq. 1). Frames outside the first and
last centres take the nearest centre's score.

WFSN (§4.3): the pooling is removed and the temporal CNN runs over the whole video's
features at once; softmax over the K actions, with a zero background column.
"""

from __future__ import annotations

import numpy as np
import torch

from vidseg_cli.models.fsn import upsample_to_frames
from vidseg_cli.runtime import autocast

DEFAULT_WINDOW = 7  # §3.5: N = 35 / 5 snippets per clip
# How a grouped run is scored (stages/grouping.py): §4.2's mean for FSN, the outer-inner
# contrast for WFSN, whose scores have no background (docs/fsn.md "WFSN").
DEFAULT_SEGMENT_SCORE = {"fsn": "mean", "wfsn": "contrast"}


def slide_fsn(model, feats: np.ndarray, centers: np.ndarray, num_frames: int,
              window: int | None = DEFAULT_WINDOW, device=None, amp: bool = False) -> np.ndarray:
    """(T, K+1) frame probabilities of an FSN over a whole video's (N, D) features, in
    non-overlapping windows of `window` snippets (None: one pass)."""
    C = model.num_classes
    n = len(feats)
    if n == 0:
        out = np.zeros((num_frames, C), np.float32)
        out[:, 0] = 1.0  # nothing to score: background
        return out
    dev = device if device is not None else next(model.parameters()).device
    w = n if not window else int(window)
    x = torch.from_numpy(np.ascontiguousarray(feats, np.float32)).to(dev)
    full = (n // w) * w  # the full windows go through as one batch: they are independent
    parts = []
    with torch.no_grad(), autocast(dev, amp):
        for lo in range(0, full, 4096 * w):
            hi = min(full, lo + 4096 * w)
            s = model.snippet_logits(x[lo:hi].view(-1, w, x.shape[1])).float()  # B x C x w
            parts.append(s.transpose(0, 1).reshape(1, C, -1))  # 1 x C x B*w, in time order
        if full < n:
            parts.append(model.snippet_logits(x[None, full:]).float())  # the last, shorter window
        s = torch.cat(parts, dim=-1)  # 1 x C x N
        up = upsample_to_frames(s, torch.as_tensor(centers, dtype=torch.float64), num_frames)
    return up[0].softmax(dim=0).T.cpu().numpy().astype(np.float32)  # T x C


def wfsn_predict(model, feats: np.ndarray, centers: np.ndarray, num_frames: int,
                 device=None, amp: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """WFSN over a whole video's (N, D) features: the (T, K+1) §4.3 dense probabilities
    (pooling removed, softmax over the K actions per frame) with a zero background column,
    and the (K,) video-level probabilities (the pooling kept: Eq. 2 over all N snippets,
    softmax of Eq. 3). No snippets: zeros, and a uniform video score."""
    K = model.num_classes
    out = np.zeros((num_frames, K + 1), np.float32)
    if len(feats) == 0:
        return out, np.full(K, 1.0 / K, np.float32)
    dev = device if device is not None else next(model.parameters()).device
    x = torch.from_numpy(np.ascontiguousarray(feats, np.float32)).to(dev)[None]  # 1 x N x D
    with torch.no_grad(), autocast(dev, amp):
        s = model.snippet_logits(x).float()  # 1 x K x N
        pooled = s.amax(dim=-1) if model.pooling == "max" else s.mean(dim=-1)  # 1 x K, Eq. 2
        up = upsample_to_frames(s, torch.as_tensor(centers, dtype=torch.float64), num_frames)  # 1 x K x T
    out[:, 1:] = up[0].softmax(dim=0).T.cpu().numpy()
    return out, pooled[0].softmax(dim=0).cpu().numpy().astype(np.float32)


def wfsn_frame_probs(model, feats: np.ndarray, centers: np.ndarray, num_frames: int,
                     device=None, amp: bool = False) -> np.ndarray:
    """(T, K+1) §4.3 dense WFSN probabilities with a zero background column."""
    return wfsn_predict(model, feats, centers, num_frames, device, amp)[0]
