"""Sep3D's action head at inference (Sep3D §4, J-HMDB), fed clip by clip by
`Segmenter` (infer/segmenter.py)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from vidseg_cli.models.sep3d import feature_frame_index, largest_component_boxes


class ActionScores:
    """Per frame, the largest connected region of the predicted foreground (argmax class
    != 0 of the final, clip-averaged posteriors at the original frame size: the masks
    `evaluate` reads from the scores file), the box around it cropped from the decoder
    features of every clip covering the frame, classified; the frame's action scores are
    the mean of those clips' softmax.

    Clip features are held only until the frames they cover are final, so memory does not
    grow with the video's length."""

    def __init__(self, seg, num_frames: int, clip_len: int, frame_size: tuple[int, int]):
        # seg: the Segmenter whose head, action_names and device these scores use
        self.seg, self.n, self.size = seg, clip_len, frame_size
        a = len(seg.action_names)
        self.sum = torch.zeros((num_frames, a), device=seg.device)  # T x A
        self.cnt = torch.zeros(num_frames, device=seg.device)
        self.valid = np.zeros(num_frames, dtype=bool)
        self.pending: list[tuple[int, Any]] = []  # (clip start, D x T' x h x w features)
        self.done = 0  # frames [0, done) are final

    def add_clips(self, starts: Sequence[int], feats) -> None:
        self.pending.extend((s, feats[k]) for k, s in enumerate(starts))

    def finish(self, acc, count, end: int) -> None:
        """Classify frames [done, end), whose posteriors are now final."""
        a, b = self.done, end
        if b <= a:
            return
        p = acc[a:b] / count[a:b].view(-1, 1, 1, 1)  # k x C x h x w, as `probs` is computed
        if tuple(p.shape[2:]) != tuple(self.size):
            p = F.interpolate(p, size=self.size, mode="bilinear", align_corners=False)
        fg = (p.argmax(dim=1) != 0).cpu().numpy()  # k x H x W
        boxes_np, valid = largest_component_boxes(fg)  # [x0, y0, x1, y1) in frame pixels
        self.valid[a:b] = valid
        boxes = torch.as_tensor(boxes_np, dtype=torch.float32, device=self.seg.device)
        for s, f in self.pending:
            fr = np.arange(max(a, s), min(b, s + self.n))
            fr = fr[valid[fr - a]]
            if fr.size == 0:
                continue
            idx = feature_frame_index(self.n, f.shape[1])[fr - s].to(f.device)
            maps = f[:, idx].transpose(0, 1)  # k' x D x h' x w'
            logits = self.seg.head.classify(maps, boxes[fr - a], self.size)  # k' x A
            frt = torch.as_tensor(fr, device=self.seg.device)
            self.sum[frt] += torch.softmax(logits.float(), dim=1)
            self.cnt[frt] += 1
        self.pending = [(s, f) for s, f in self.pending if s + self.n > b]
        self.done = b

    def result(self) -> np.ndarray:
        """T x A float32: mean softmax per frame; NaN rows where no actor is predicted."""
        out = (self.sum / self.cnt.clamp(min=1).view(-1, 1)).cpu().numpy().astype(np.float32)
        out[~self.valid] = np.nan
        return out
