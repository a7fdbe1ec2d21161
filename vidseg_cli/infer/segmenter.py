"""Per-pixel posteriors of one video with 3DFCN or Sep3D, in memory:

    seg = Segmenter(model, classes, preprocess, model_name="sep3d", device=device)
    probs = seg.predict(frames)            # T x H x W x 3 uint8 -> T x C x H x W float32

How each model is run:

- **3DFCN** (32s, 8s; 3DFCN §3.3): fully convolutional over the whole video, one pass. When
  `max_memory` says the pass would not fit, the trunk runs on exact temporal tiles
  (infer/fcn_tiling.py); the DeConv then runs once on the stitched class map (it is small).
- **Sep3D** (Sep3D §3): clips of `clip_len` frames (8, the clip it was trained on) every
  `clip_stride` frames (the last clip ends on the last frame); each frame's posteriors are
  the average of the softmax of every clip that covers it. With an action head (a
  `sep3d+head` checkpoint, `train sep3d-head`) also per-frame action scores (Sep3D §4,
  infer/action_scores.py).

Preprocessing is the checkpoint's `preprocess` record (models/preprocess.py: mean/std on
the 0..255 scale and `short_side`, the size of the shorter side the model was trained at):
frames are resized to it, normalised, run, and the posteriors are resized back to the
frame size (bilinear; a convex combination, so they still sum to 1). With `out_stride` N
the posteriors are averaged over N x N blocks (cell i's centre is pixel i*N + (N-1)/2, the
`spatial_stride` convention of store/ and datasets/masks.py).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from vidseg_cli.errors import InputError
from vidseg_cli.infer.action_scores import ActionScores
from vidseg_cli.infer.fcn_tiling import (
    fcn_trunk_bytes_per_frame,
    temporal_reach,
    tile_plan,
    upsample_frames,
)
from vidseg_cli.models.common import ModelInputError
from vidseg_cli.models.preprocess import (
    Preprocess,
    clip_starts,
    default_preprocess,
    network_size,
    normalize,
    pad_reflect,
    resize_frames,
)
from vidseg_cli.runtime import autocast

SEGMENT_MODELS = ("3dfcn-8s", "3dfcn-32s", "sep3d")


class Segmenter:
    """A model with its classes and preprocessing; `predict` runs one video. segment-3d
    builds one from a checkpoint, training's validation around the model being trained,
    so both run the same code."""

    def __init__(
        self,
        model,  # a 3DFCN or Sep3D in eval mode, on `device`
        classes: Sequence[str],  # its output classes
        preprocess: dict[str, Any],  # the checkpoint's `preprocess` record (models/preprocess.py)
        *,
        model_name: str,  # one of SEGMENT_MODELS
        device,  # torch.device the model is on
        amp: bool = False,  # mixed precision (float16 on CUDA, bfloat16 on CPU)
        out_stride: int = 1,  # posteriors averaged over N x N pixel blocks (spatial_stride)
        max_memory: int | None = None,  # bytes for one 3DFCN trunk pass; tiles in time above it
        clip_stride: int = 4,  # Sep3D: frames between clip starts
        batch_size: int = 4,  # Sep3D: clips per forward pass
        head=None,  # Sep3D's MaskActionClassifier (a "sep3d+head" checkpoint)
        action_names: Sequence[str] | None = None,  # the head's action classes
    ):
        if model_name not in SEGMENT_MODELS:
            raise ValueError(f"unknown model '{model_name}' (known: {', '.join(SEGMENT_MODELS)})")
        if out_stride < 1:
            raise ValueError(f"out_stride must be >= 1, got {out_stride}")
        self.model_name, self.device = model_name, device
        self.amp, self.out_stride, self.max_memory = amp, out_stride, max_memory
        self.clip_stride, self.batch_size = clip_stride, batch_size
        self.model = model
        self.classes = list(classes)
        self.preprocess = {**default_preprocess(model_name), **preprocess}
        self.min_input = tuple(self.model.min_input)
        if head is not None and model_name != "sep3d":
            raise ValueError("an action head runs only on Sep3D")
        self.head = head.to(device).eval() if head is not None else None
        self.action_names = list(action_names) if head is not None else None

    @property
    def prep(self) -> Preprocess:
        return Preprocess.from_record(self.preprocess, self.model_name)

    # -- sizes ------------------------------------------------------------------------
    def network_size(self, height: int, width: int) -> tuple[int, int]:
        return network_size(height, width, self.prep.short_side)

    def check_input(self, path: str | os.PathLike, t: int, h: int, w: int) -> None:
        nh, nw = self.network_size(h, w)
        mt, mh, mw = self.min_input
        ct, cy, cx = self.context
        if t + 2 * ct < mt or nh + 2 * cy < mh or nw + 2 * cx < mw:
            resized = f" (resized to {nw}x{nh} for the model)" if (nh, nw) != (h, w) else ""
            raise InputError(
                path, f"{t} frames of {w}x{h}{resized} are smaller than {self.model_name}'s "
                f"minimum input of {mt} frames of {mw}x{mh}")

    @property
    def context(self) -> tuple[int, int, int]:
        """3DFCN: mirrored frames, rows and columns added around the video (the
        checkpoint's `preprocess.context`, train/segment.py's HALF_WINDOW)."""
        return (0, 0, 0) if self.model_name == "sep3d" else self.prep.padding

    # -- inference --------------------------------------------------------------------
    def _input(self, frames: np.ndarray):
        """T x H x W x 3 uint8 at network size -> 1 x 3 x T x H x W float32 on the device."""
        p = self.prep
        return normalize(frames, list(p.mean), list(p.std))[None].to(self.device)

    def _forward(self, fn, x):
        with autocast(self.device, self.amp):
            y = fn(x)
        return y.float() if y.dtype != torch.float32 else y

    def fcn_score_map(self, frames: np.ndarray, max_frames: int | None = None):
        """3DFCN class map (1 x C x T' x H' x W') of network-size frames, tiled in time when
        `max_frames` is less than the video (infer/fcn_tiling.py)."""
        t = frames.shape[0]
        if max_frames is None or max_frames >= t:
            return self._forward(self.model.score_map, self._input(frames))
        n_cells = self.model.map_size(tuple(frames.shape[:3]))[0]
        S = temporal_reach(self.model)[0]
        out = None
        for a, b, j0, j1 in tile_plan(t, n_cells, temporal_reach(self.model), max_frames):
            part = self._forward(self.model.score_map, self._input(frames[a:b]))  # 1 x C x t' x H' x W'
            if out is None:
                out = torch.empty((*part.shape[:2], n_cells, *part.shape[3:]), device=part.device)
            out[:, :, j0:j1] = part[:, :, j0 - a // S : j1 - a // S]
        return out

    def _fcn_probs(self, frames: np.ndarray):
        """3DFCN posteriors as `chunk(f0, f1) -> (f1-f0) x C x H x W` (network size): the
        DeConv and softmax run per chunk of frames, so only the class map is whole. With a
        context, the mirrored video runs and the chunks are cut back to the real frames."""
        ct, cy, cx = self.context
        if ct or cy or cx:
            t, h, w = frames.shape[:3]
            inner = self._fcn_probs_padded(pad_reflect(frames, (ct, cy, cx)))
            return lambda f0, f1: inner(f0 + ct, f1 + ct)[:, :, cy : cy + h, cx : cx + w]
        return self._fcn_probs_padded(frames)

    def _fcn_probs_padded(self, frames: np.ndarray):
        t, h, w = frames.shape[:3]
        max_frames = None
        if self.max_memory is not None:
            max_frames = max(1, self.max_memory // fcn_trunk_bytes_per_frame(self.model, h, w))
        score = self.fcn_score_map(frames, max_frames)  # 1 x C x T' x H' x W'

        def chunk(f0: int, f1: int):
            logits = upsample_frames(self.model, score, (t, h, w), f0, f1)[0]  # C x n x H x W
            return torch.softmax(logits, dim=0).transpose(0, 1)  # n x C x H x W

        return chunk

    def _sep3d_run(self, frames: np.ndarray, frame_size: tuple[int, int] | None = None):
        """(chunk, actions): Sep3D posteriors as `chunk(f0, f1)`, and with an action head
        and `frame_size` (H, W of the original frames) the T x A action scores (else None):
        `ActionScores` runs the head on each clip's features as soon as the frames they
        cover have their final posteriors (every clip covering them has run)."""
        t = frames.shape[0]
        clip = int(self.prep.clip_len or 8)
        n = min(clip, t)
        starts = clip_starts(t, n, self.clip_stride)
        acc = None
        count = torch.zeros(t, device=self.device)
        actions = ActionScores(self, t, n, frame_size) if self.head is not None and frame_size else None
        bs = max(1, self.batch_size)
        for i in range(0, len(starts), bs):
            group = starts[i : i + bs]
            x = torch.cat([self._input(frames[s : s + n]) for s in group])  # B x 3 x n x H x W
            if actions is None:
                p = torch.softmax(self._forward(self.model, x), dim=1)  # B x C x n x H x W
            else:
                logits, feats = self._forward_with_features(x)  # feats: B x D x n/2 x H/4 x W/4
                p = torch.softmax(logits, dim=1)
            if acc is None:
                acc = torch.zeros((t, p.shape[1], *p.shape[3:]), device=self.device)  # T x C x H x W
            for k, s in enumerate(group):
                acc[s : s + n] += p[k].transpose(0, 1)
                count[s : s + n] += 1
            if actions is not None:
                actions.add_clips(group, feats)
                # frames before the next clip's start are covered by no clip still to run
                actions.finish(acc, count, starts[i + bs] if i + bs < len(starts) else t)
        probs = acc / count.view(-1, 1, 1, 1)  # T x C x H x W
        return (lambda f0, f1: probs[f0:f1]), (actions.result() if actions is not None else None)

    def _forward_with_features(self, x):
        with autocast(self.device, self.amp):
            logits, feats = self.model.forward_with_features(x)
        return logits.float(), feats.float()

    def predict(self, frames: np.ndarray, path: str | os.PathLike = "<frames>", with_actions: bool = False):
        """Posteriors of one video: T x H x W x 3 uint8 -> T x C x H' x W' float32
        (H' = ceil(H / out_stride)). `with_actions`: (posteriors, action scores T x A float32
        with NaN rows where no actor is predicted, or None without an action head)."""
        t, h, w = frames.shape[:3]
        self.check_input(path, t, h, w)
        nh, nw = self.network_size(h, w)
        net = resize_frames(frames, (nh, nw))
        actions = None
        try:
            with torch.no_grad():
                if self.model_name == "sep3d":
                    chunk, actions = self._sep3d_run(net, (h, w) if with_actions else None)
                else:
                    chunk = self._fcn_probs(net)
        except ModelInputError as e:
            raise InputError(path, str(e)) from None
        s = self.out_stride
        oh, ow = -(-h // s), -(-w // s)
        out = np.empty((t, len(self.classes), oh, ow), dtype=np.float32)
        for i in range(0, t, 16):  # frame chunks bound the temporaries
            with torch.no_grad():
                p = chunk(i, min(i + 16, t))  # n x C x nh x nw
            if (nh, nw) != (h, w):
                p = F.interpolate(p, size=(h, w), mode="bilinear", align_corners=False)
            if s > 1:
                p = F.avg_pool2d(p, s, s, ceil_mode=True)
            out[i : i + 16] = p.to(torch.float32).cpu().numpy()
        return (out, actions) if with_actions else out
