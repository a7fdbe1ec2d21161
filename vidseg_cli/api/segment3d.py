"""`segment-3d` as a typed function: frames file in, scores file (per-pixel posteriors) out.

    seg = Segmenter(Segment3DOptions(model="3dfcn-8s", weights="run/best.ckpt"))
    seg.segment_file("v.frames.h5", "v.scores.h5")
    probs = seg.predict(frames)            # T x H x W x 3 uint8 -> T x C x H x W float32

How each model is run:

- **3DFCN** (32s, 8s; 3DFCN §3.3): fully convolutional over the whole video, one pass. When
  `max_memory` says the pass would not fit, the trunk runs on temporal tiles that overlap by
  the receptive field: a tile starts on a multiple of the class map's temporal stride (so
  the pooling grids line up) and contributes only the class-map cells whose whole temporal
  receptive field (`temporal_reach`) lies inside it, or reaches past the video's own ends,
  where the untiled pass pads exactly as the tile does. Those cells are the cells of the
  untiled pass (a test checks tiled == untiled); the DeConv then runs once on the stitched
  class map (it is small).
- **Sep3D** (Sep3D §3): clips of `clip_len` frames (8, the clip it was trained on) every
  `clip_stride` frames (the last clip ends on the last frame); each frame's posteriors are
  the average of the softmax of every clip that covers it. A `sep3d+head` checkpoint
  (`train sep3d-head`) also gives per-frame action scores (Sep3D §4, `_ActionScores`),
  written as the scores file's optional `action_scores` with `action_names`.

Preprocessing comes from the checkpoint (`preprocess`: mean/std on the 0..255 scale and
`short_side`, the size of the shorter side the model was trained at; train/segment.py
writes it): frames are resized to it, normalised, run, and the posteriors are resized back
to the frame size (bilinear; a convex combination, so they still sum to 1). With
`out_stride` N the posteriors are averaged over N x N blocks (cell i's centre is pixel
i*N + (N-1)/2, the `spatial_stride` convention of store/ and datasets/masks.py).
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from vidseg_cli.errors import InputError

SEGMENT_MODELS = ("3dfcn-8s", "3dfcn-32s", "sep3d")

# Inputs as the public weights expect them (0..255 scale). The C3D Sports-1M port takes
# RGB 0..255 with nothing subtracted (docs/models.md); torchvision's video models take
# 0..1 RGB normalised with the Kinetics mean/std.
C3D_PORT_PREPROCESS = {"mean": [0.0, 0.0, 0.0], "std": [1.0, 1.0, 1.0]}
KINETICS_PREPROCESS = {
    "mean": [0.43216 * 255, 0.394666 * 255, 0.37645 * 255],
    "std": [0.22803 * 255, 0.22145 * 255, 0.216989 * 255],
}


def default_preprocess(model: str) -> dict[str, Any]:
    """What a checkpoint without a `preprocess` entry is run with."""
    base = KINETICS_PREPROCESS if model == "sep3d" else C3D_PORT_PREPROCESS
    return {**base, "short_side": None, "clip_len": 8 if model == "sep3d" else 0}


@dataclass
class Segment3DOptions:
    model: str  # "3dfcn-8s", "3dfcn-32s" or "sep3d": the checkpoint must be for it
    weights: str  # our checkpoint (train segment's best.ckpt / last.ckpt)
    device: str = "auto"  # auto|cpu|cuda[:i]
    amp: bool = False  # mixed precision (float16 on CUDA, bfloat16 on CPU)
    out_stride: int = 1  # posteriors averaged over N x N pixel blocks (spatial_stride)
    max_memory: int | None = None  # bytes for one 3DFCN trunk pass; tiles in time above it
    clip_stride: int = 4  # Sep3D: frames between clip starts
    batch_size: int = 4  # Sep3D: clips per forward pass
    command: str | None = None  # argv for provenance


# -- 3DFCN: temporal receptive field and exact tiling --------------------------------------
def _t(v: Any) -> int:
    return int(v[0]) if isinstance(v, (tuple, list)) else int(v)


def temporal_reach(model) -> tuple[int, int, int]:
    """(S, lo, hi): class-map cell j of a 3DFCN depends on input frames
    [j*S + lo, j*S + hi] (padding positions included) and on no other.

    Composed backwards through the trunk: an output range [a, b] of a layer with temporal
    kernel k, stride s, padding p and dilation d reads [a*s - p, b*s - p + d*(k-1)]."""
    from torch import nn

    layers = [getattr(model, n) for n in (
        "conv1", "pool1", "conv2", "pool2", "conv3a", "conv3b", "pool3", "conv4a", "conv4b",
        "pool4", "conv5a", "conv5b", "pool5", "fc6", "fc7", "score")]
    a, b, s_tot = 0, 0, 1
    for layer in reversed(layers):
        if not isinstance(layer, (nn.Conv3d, nn.MaxPool3d)):
            raise TypeError(f"unexpected layer {type(layer).__name__}")
        k, s = _t(layer.kernel_size), _t(layer.stride)
        p, d = _t(layer.padding), _t(layer.dilation)
        a, b = a * s - p, b * s - p + d * (k - 1)
        s_tot *= s
    return s_tot, a, b


def tile_plan(num_frames: int, num_cells: int, reach: tuple[int, int, int], tile: int) -> list[tuple[int, int, int, int]]:
    """Temporal tiles for an exact tiled 3DFCN pass: (a, b, j0, j1) = run frames [a, b),
    keep class-map cells [j0, j1) (whole-video indices; the tile's own cell index is
    j - a/S). Tiles start on multiples of S; `tile` is rounded down to one and raised to
    the least length that always keeps a cell."""
    S, lo, hi = reach
    min_tile = S * math.ceil((hi - lo + S) / S)
    tile = max(min_tile, (tile // S) * S)
    plan, j, a = [], 0, 0
    while j < num_cells:
        b = min(num_frames, a + tile)
        if b == num_frames and b - a < tile:  # last tile: as long as allowed, ends on the video
            a = max(0, min(a, ((num_frames - tile) // S) * S)) if num_frames > tile else 0
        last = num_cells - 1 if b == num_frames else (b - 1 - hi) // S
        if last < j:
            raise RuntimeError(f"tiling made no progress at cell {j} (tile {tile}, reach {reach})")
        if a > 0 and j * S + lo < a:
            raise RuntimeError(f"cell {j} starts before tile [{a}, {b})")
        plan.append((a, b, j, last + 1))
        j = last + 1
        a = max(0, ((j * S + lo) // S) * S)
    return plan


def fcn_trunk_bytes_per_frame(model, height: int, width: int) -> int:
    """Peak working memory of the 3DFCN trunk per input frame (float32): the input tile,
    conv1's output and its ReLU (the largest maps; later maps are 4x+ smaller)."""
    c1 = model.conv1.out_channels
    return 4 * height * width * (3 + 2 * c1)


def upsample_frames(model, score, size: tuple[int, int, int], f0: int, f1: int):
    """Frames [f0, f1) of `model.upsample(score, size)` without the other frames: the
    DeConv (kernel 2s, stride s) gives each frame from the two class-map cells whose
    centres c0 + s*i enclose it, so the cells [j0, j1) around the chunk, upsampled as a
    video that starts at frame s*j0, give exactly those frames (the edge replication of
    `upsample` happens only where the slice meets the class map's own ends)."""
    s, c0, n = model.out_stride[0], model.window_center[0], score.shape[2]
    j0 = min(n - 1, max(0, math.floor((f0 - c0) / s)))
    j1 = max(j0 + 1, min(n, math.floor((f1 - 1 - c0) / s) + 2))
    up = model.upsample(score[:, :, j0:j1], (f1 - s * j0, *size[1:]))  # B x C x (f1 - s*j0) x H x W
    return up[:, :, f0 - s * j0 :]


# -- the segmenter ---------------------------------------------------------------------------
class Segmenter:
    """A model with its classes and preprocessing; `predict` runs one video, `segment_file`
    one frames file. `Segmenter.load(opts)` reads the checkpoint; training's validation
    builds one around the model being trained, so both run the same code."""

    def __init__(self, model, classes: Sequence[str], preprocess: dict[str, Any], opts: Segment3DOptions, device,
                 head=None, action_names: Sequence[str] | None = None):
        # head: Sep3D's MaskActionClassifier (a "sep3d+head" checkpoint) with its action_names
        if opts.model not in SEGMENT_MODELS:
            raise ValueError(f"unknown model '{opts.model}' (known: {', '.join(SEGMENT_MODELS)})")
        if opts.out_stride < 1:
            raise ValueError(f"out_stride must be >= 1, got {opts.out_stride}")
        self.opts, self.device = opts, device
        self.model = model
        self.classes = list(classes)
        self.preprocess = {**default_preprocess(opts.model), **preprocess}
        self.min_input = tuple(self.model.min_input)
        if head is not None and opts.model != "sep3d":
            raise ValueError("an action head runs only on Sep3D")
        self.head = head.to(device).eval() if head is not None else None
        self.action_names = list(action_names) if head is not None else None

    @classmethod
    def load(cls, opts: Segment3DOptions) -> Segmenter:
        """Build the model from `opts.weights` (which must be for `opts.model`)."""
        from vidseg_cli.models.checkpoint import build_from_checkpoint
        from vidseg_cli.runtime import resolve_device

        if opts.model not in SEGMENT_MODELS:
            raise ValueError(f"unknown model '{opts.model}' (known: {', '.join(SEGMENT_MODELS)})")
        device = resolve_device(opts.device)
        # A Sep3D trained with its action head (`train sep3d-head`) runs as sep3d.
        expect = (opts.model, "sep3d+head") if opts.model == "sep3d" else opts.model
        model, ckpt = build_from_checkpoint(opts.weights, expect_model=expect)
        given = ckpt.get("preprocess")
        if given is None:
            given = {}
        if not isinstance(given, dict):
            raise InputError(opts.weights, "checkpoint 'preprocess' is not a dict")
        for key in ("mean", "std"):
            if key in given and not (isinstance(given[key], list) and len(given[key]) == 3):
                raise InputError(opts.weights, f"checkpoint preprocess '{key}' should be 3 numbers, found {given[key]!r}")
        if ckpt["model"] == "sep3d+head":
            return cls(model.segmenter.to(device).eval(), ckpt["classes"], given, opts, device,
                       head=model.head, action_names=model.action_names)
        return cls(model.to(device).eval(), ckpt["classes"], given, opts, device)

    # -- sizes ------------------------------------------------------------------------
    def network_size(self, height: int, width: int) -> tuple[int, int]:
        from vidseg_cli.datasets.segment_data import network_size

        return network_size(height, width, self.preprocess.get("short_side"))

    def check_input(self, path: str | os.PathLike, t: int, h: int, w: int) -> None:
        nh, nw = self.network_size(h, w)
        mt, mh, mw = self.min_input
        ct, cy, cx = self.context
        if t + 2 * ct < mt or nh + 2 * cy < mh or nw + 2 * cx < mw:
            resized = f" (resized to {nw}x{nh} for the model)" if (nh, nw) != (h, w) else ""
            raise InputError(
                path, f"{t} frames of {w}x{h}{resized} are smaller than {self.opts.model}'s "
                f"minimum input of {mt} frames of {mw}x{mh}")

    # -- inference --------------------------------------------------------------------
    def _input(self, frames: np.ndarray):
        """T x H x W x 3 uint8 at network size -> 1 x 3 x T x H x W float32 on the device."""
        from vidseg_cli.datasets.segment_data import normalize

        return normalize(frames, self.preprocess["mean"], self.preprocess["std"])[None].to(self.device)

    def _forward(self, fn, x):
        import torch

        from vidseg_cli.runtime import autocast

        with autocast(self.device, self.opts.amp):
            y = fn(x)
        return y.float() if y.dtype != torch.float32 else y

    def fcn_score_map(self, frames: np.ndarray, max_frames: int | None = None):
        """3DFCN class map (1 x C x T' x H' x W') of network-size frames, tiled in time when
        `max_frames` is less than the video (module docstring)."""
        import torch

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

    @property
    def context(self) -> tuple[int, int, int]:
        """3DFCN: mirrored frames, rows and columns added around the video (the
        checkpoint's `preprocess.context`, train/segment.py's HALF_WINDOW)."""
        if self.opts.model == "sep3d":
            return (0, 0, 0)
        c = self.preprocess.get("context") or (0, 0, 0)
        return (int(c[0]), int(c[1]), int(c[2]))

    def _fcn_probs(self, frames: np.ndarray):
        """3DFCN posteriors as `chunk(f0, f1) -> (f1-f0) x C x H x W` (network size): the
        DeConv and softmax run per chunk of frames, so only the class map is whole. With a
        context, the mirrored video runs and the chunks are cut back to the real frames."""
        ct, cy, cx = self.context
        if ct or cy or cx:
            from vidseg_cli.datasets.segment_data import pad_reflect

            t, h, w = frames.shape[:3]
            inner = self._fcn_probs_padded(pad_reflect(frames, (ct, cy, cx)))
            return lambda f0, f1: inner(f0 + ct, f1 + ct)[:, :, cy : cy + h, cx : cx + w]
        return self._fcn_probs_padded(frames)

    def _fcn_probs_padded(self, frames: np.ndarray):
        import torch

        t, h, w = frames.shape[:3]
        max_frames = None
        if self.opts.max_memory is not None:
            max_frames = max(1, self.opts.max_memory // fcn_trunk_bytes_per_frame(self.model, h, w))
        score = self.fcn_score_map(frames, max_frames)  # 1 x C x T' x H' x W'

        def chunk(f0: int, f1: int):
            logits = upsample_frames(self.model, score, (t, h, w), f0, f1)[0]  # C x n x H x W
            return torch.softmax(logits, dim=0).transpose(0, 1)  # n x C x H x W

        return chunk

    def _sep3d_probs(self, frames: np.ndarray):
        return self._sep3d_run(frames)[0]

    def _sep3d_run(self, frames: np.ndarray, frame_size: tuple[int, int] | None = None):
        """(chunk, actions): Sep3D posteriors as `chunk(f0, f1)`, and with an action head
        and `frame_size` (H, W of the original frames) the T x A action scores (else None):
        `_ActionScores` runs the head on each clip's features as soon as the frames they
        cover have their final posteriors (every clip covering them has run)."""
        import torch

        from vidseg_cli.datasets.segment_data import clip_starts

        t = frames.shape[0]
        clip = int(self.preprocess.get("clip_len") or 8)
        n = min(clip, t)
        starts = clip_starts(t, n, self.opts.clip_stride)
        acc = None
        count = torch.zeros(t, device=self.device)
        actions = _ActionScores(self, t, n, frame_size) if self.head is not None and frame_size else None
        bs = max(1, self.opts.batch_size)
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
        from vidseg_cli.runtime import autocast

        with autocast(self.device, self.opts.amp):
            logits, feats = self.model.forward_with_features(x)
        return logits.float(), feats.float()

    def predict(self, frames: np.ndarray, path: str | os.PathLike = "<frames>", with_actions: bool = False):
        """Posteriors of one video: T x H x W x 3 uint8 -> T x C x H' x W' float32
        (H' = ceil(H / out_stride)). `with_actions`: (posteriors, action scores T x A float32
        with NaN rows where no actor is predicted, or None without an action head)."""
        import torch
        import torch.nn.functional as F

        from vidseg_cli.datasets.segment_data import resize_frames
        from vidseg_cli.models.common import ModelInputError

        t, h, w = frames.shape[:3]
        self.check_input(path, t, h, w)
        nh, nw = self.network_size(h, w)
        net = resize_frames(frames, (nh, nw))
        actions = None
        try:
            with torch.no_grad():
                if self.opts.model == "sep3d":
                    chunk, actions = self._sep3d_run(net, (h, w) if with_actions else None)
                else:
                    chunk = self._fcn_probs(net)
        except ModelInputError as e:
            raise InputError(path, str(e)) from None
        s = self.opts.out_stride
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

    def segment_file(self, frames_path: str | os.PathLike, out_path: str | os.PathLike) -> dict[str, Any]:
        """Read a frames file, predict, write a scores file; a summary dict."""
        from vidseg_cli import store

        try:
            rec = store.read_frames(frames_path, load_frames=True)
        except store.StoreError as e:
            raise InputError(e.path, e.problem) from None
        frames = rec["frames"]
        if frames.shape[0] == 0:
            raise InputError(frames_path, "no frames")
        probs, actions = self.predict(frames, frames_path, with_actions=True)
        attrs: dict[str, Any] = {
            "segment3d_model": self.opts.model,
            "segment3d_weights": str(Path(self.opts.weights).resolve()),
            "segment3d_preprocess": json.dumps(self.preprocess),
        }
        if self.opts.out_stride > 1:
            attrs["spatial_stride"] = int(self.opts.out_stride)
        meta = dict(video_id=rec.video_id, num_frames=int(frames.shape[0]), fps=rec.fps,
                    inputs=[frames_path], class_names=self.classes, command=self.opts.command)
        if actions is None:
            store.write_scores(out_path, probs, attrs=attrs, **meta)
        else:  # Sep3D's head: the optional dataset and its names (store/kinds.py)
            if actions.shape != (probs.shape[0], len(self.action_names)):
                raise RuntimeError(f"action scores {actions.shape} for {len(self.action_names)} actions")
            attrs["action_names"] = list(self.action_names)
            store.write_scores(out_path, probs, extra={"action_scores": actions}, attrs=attrs, **meta)
        out = {"input": str(frames_path), "output": str(out_path), "video_id": rec.video_id,
               "num_frames": int(frames.shape[0]), "shape": list(probs.shape)}
        if actions is not None:
            out["frames_with_actor"] = int(np.count_nonzero(~np.isnan(actions[:, 0])))
        return out


class _ActionScores:
    """Sep3D's action head at inference (Sep3D §4, J-HMDB): per frame, the largest connected
    region of the predicted foreground (argmax class != 0 of the final, clip-averaged
    posteriors at the original frame size: the masks `evaluate` reads from the scores
    file), the box around it cropped from the decoder features of every clip covering the
    frame, classified; the frame's action scores are the mean of those clips' softmax.

    Clip features are held only until the frames they cover are final, so memory does not
    grow with the video's length."""

    def __init__(self, seg: Segmenter, num_frames: int, clip_len: int, frame_size: tuple[int, int]):
        import torch

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
        import torch
        import torch.nn.functional as F

        from vidseg_cli.models.sep3d import feature_frame_index, largest_component_boxes

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


def segment_files(opts: Segment3DOptions, items: Sequence[tuple[str, Path]]) -> list[dict[str, Any]]:
    """Library convenience: segment several (frames, scores) pairs with one model."""
    seg = Segmenter.load(opts)
    return [seg.segment_file(i, o) for i, o in items]
