"""The feature forward pass of extract-features (FSN §3.2), in memory: a backbone applied to
the snippets of one video.

Snippet i of L frames every `stride` frames covers frames [i*stride, i*stride + L) and is
represented by its centre frame c_i = i*stride + (L-1)//2 (§3.2; for L = 1 the frame
itself). A 2D backbone sees that frame (rgb stream) or the TSN stack of optical flow fields
around it (flow stream); the c3d backbone sees the 16-frame clip centred on c_i (frames
c_i-8 .. c_i+7, the edge frame repeated outside the video), resized to 112 on the short
side and centre-cropped to 112 x 112, in 0..255 as the C3D port expects; the i3d backbone
sees all L frames of the snippet (RGB, or 2-channel flow fields), resized and centre-cropped
as the published THUMOS14 I3D features were, in [-1, 1] (infer/i3d_clips.py).
"""

from __future__ import annotations

import cv2
import numpy as np
import torch

from vidseg_cli.models import ModelInputError
from vidseg_cli.runtime import autocast

C3D_CLIP = 16  # C3D's clip length (S-CNN §3.1)
C3D_SIZE = 112  # C3D's crop


def snippet_center_frames(num_frames: int, snippet: int, stride: int) -> np.ndarray:
    """Centre frames of the snippets that fit in the video (FSN §3.2): (N,) int64."""
    if num_frames < snippet:
        return np.zeros(0, np.int64)
    n = (num_frames - snippet) // stride + 1
    return np.arange(n, dtype=np.int64) * stride + (snippet - 1) // 2


def c3d_clip_indices(center: int, num_frames: int) -> np.ndarray:
    """The 16 frames of the C3D clip centred on `center`, clamped to the video."""
    return np.clip(np.arange(center - C3D_CLIP // 2, center + C3D_CLIP // 2), 0, num_frames - 1)


class SnippetEncoder:
    """A backbone on `device` in eval mode; `encode(video, centers)` -> (B, D) features."""

    def __init__(
        self,
        model,  # a 2D backbone (resnet18|resnet50|vgg16), c3d or i3d, with forward_features
        name: str,  # its registry name
        stream: str,  # "rgb" or "flow"
        device,  # torch.device
        amp: bool = False,  # mixed precision
        flow_length: int = 5,  # flow fields per stack (TSN: 5)
        snippet: int = 16,  # i3d: frames per clip (the snippet)
        crop: int = 224,  # i3d: side of the centre crop
    ):
        self.model, self.name, self.stream = model, name, stream
        self.device, self.amp, self.flow_length = device, amp, flow_length
        self.snippet, self.crop = snippet, crop
        self._clips = None  # i3d: the current video's I3DClips
        self.model.to(device).eval()
        if name not in ("c3d", "i3d"):  # 2D convs: channels-last is several times faster on CPU
            self.model.to(memory_format=torch.channels_last)
        self.dim = int(model.feature_dim)

    def inputs(self, video, centers: np.ndarray) -> np.ndarray:
        """The network inputs of the snippets centred on `centers` of `video`
        (datasets/fsn_data.py VideoFrames)."""
        if self.name == "i3d":
            from vidseg_cli.infer.i3d_clips import I3DClips

            if self._clips is None or self._clips.video is not video:
                self._clips = I3DClips(video, self.stream, self.snippet, self.crop)
            return self._clips.clips(centers)  # B x C x L x crop x crop, in [-1, 1]
        if self.name == "c3d":
            clips = []
            for c in centers:
                frames = video.read(c3d_clip_indices(int(c), video.num_frames))  # 16 x H x W x 3
                h, w = frames.shape[1:3]
                s = C3D_SIZE / min(h, w)
                nh, nw = max(C3D_SIZE, round(h * s)), max(C3D_SIZE, round(w * s))
                y0, x0 = (nh - C3D_SIZE) // 2, (nw - C3D_SIZE) // 2
                clip = np.stack([cv2.resize(f, (nw, nh), interpolation=cv2.INTER_LINEAR)
                                 [y0:y0 + C3D_SIZE, x0:x0 + C3D_SIZE] for f in frames])
                clips.append(clip.transpose(3, 0, 1, 2))  # 3 x 16 x 112 x 112
            return np.stack(clips).astype(np.float32)  # B x 3 x 16 x 112 x 112, 0..255
        return video.inputs(centers, self.stream, self.flow_length)  # B x C x H x W

    def forward(self, x: np.ndarray) -> np.ndarray:
        """Inputs -> (B, D) float32 features; a ValueError for an input the network cannot take."""
        with torch.no_grad(), autocast(self.device, self.amp):
            t = torch.from_numpy(x).to(self.device)
            if t.dim() == 4:
                t = t.contiguous(memory_format=torch.channels_last)
            try:
                f = self.model.forward_features(t)  # B x D
            except ModelInputError as e:
                raise ValueError(str(e)) from None
        return f.float().cpu().numpy()

    def encode(self, video, centers: np.ndarray) -> np.ndarray:
        return self.forward(self.inputs(video, centers))

    def release(self, video, before: int | None) -> None:
        """Forget what was read of `video` for frames before `before` (a forward pass over a
        long video keeps memory flat); the end of a video (`before` None) forgets it all."""
        if self._clips is not None and self._clips.video is video:
            if before is None:
                self._clips = None
            else:
                self._clips.drop_before(before)
