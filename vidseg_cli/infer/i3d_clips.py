"""I3D's snippet clips from a frames file, streamed: each frame resized, cropped and scaled
once, kept while the snippets still ahead need it (docs/features.md).

Snippet i of L frames starts at s_i = c_i - (L-1)//2 (c_i its centre, api/extract_features.py)
and I3D sees all of frames s_i .. s_i + L - 1:
- rgb: each frame resized to `frame_hw(crop)` (340 x 256 for the 224 crop, the frames the
  published THUMOS14 I3D features were cut from), its centre `crop` x `crop` taken, and
  scaled to [-1, 1] as x / 255 * 2 - 1 (the port's input range);
- flow: frame t's field is the TV-L1 (or Farneback) flow from frame t to t + 1 computed on
  the frames as stored, its (x, y) clipped to +-20 pixels and divided by 20, then resized and
  cropped as the rgb frames (the values are not rescaled, as resizing flow images does);
  the last frame, which has no successor, takes the field of the pair before it.
Overlapping snippets (stride 4 of 16) share frames; `drop_before` forgets those no later
snippet needs, so memory stays flat in the video's length.
"""

from __future__ import annotations

import numpy as np

I3D_CROP = 224  # the port's crop
I3D_FRAME = (256, 340)  # (h, w) frames are resized to before the 224 crop (published features)


def frame_hw(crop: int) -> tuple[int, int]:
    """(h, w) a frame is resized to before its centre crop of `crop`: 256 x 340 scaled by
    crop / 224."""
    return round(I3D_FRAME[0] * crop / I3D_CROP), round(I3D_FRAME[1] * crop / I3D_CROP)


def crop_offset(crop: int) -> tuple[int, int]:
    """(y0, x0) of the centre crop in a `frame_hw(crop)` frame (16, 58 for 224)."""
    h, w = frame_hw(crop)
    return (h - crop) // 2, (w - crop) // 2


def resize_crop(images: np.ndarray, crop: int) -> np.ndarray:
    """(n, H, W, C) images -> (n, crop, crop, C): resized to `frame_hw(crop)`, centre-cropped."""
    from vidseg_cli.models.preprocess import resize_frames

    y0, x0 = crop_offset(crop)
    return resize_frames(images, frame_hw(crop))[:, y0:y0 + crop, x0:x0 + crop]


def clip_frames(center: int, snippet: int, num_frames: int) -> np.ndarray:
    """The frames of the snippet centred on `center`, clamped to the video."""
    start = center - (snippet - 1) // 2
    return np.clip(np.arange(start, start + snippet), 0, num_frames - 1)


class I3DClips:
    """Clips of one video (datasets/fsn_data.py VideoFrames) for one I3D stream."""

    def __init__(self, video, stream: str, snippet: int, crop: int = I3D_CROP):
        if stream not in ("rgb", "flow"):
            raise ValueError(f"unknown stream {stream!r} (rgb or flow)")
        self.video, self.stream, self.snippet, self.crop = video, stream, snippet, crop
        self._cache: dict[int, np.ndarray] = {}  # frame -> crop x crop x C (uint8 rgb, float32 flow)
        self._flow = None

    def _fill(self, frames: np.ndarray) -> None:
        need = sorted(set(frames.tolist()) - self._cache.keys())
        if not need:
            return
        if self.stream == "rgb":
            out = resize_crop(self.video.read(need), self.crop)
        else:
            out = resize_crop(self._flows(need), self.crop)
        self._cache.update(zip(need, out))

    def _flows(self, frames: list[int]) -> np.ndarray:
        """(n, H, W, 2) float32 normalized flow from each frame to the next, in one read."""
        from vidseg_cli.video.flow import FlowComputer, normalize_flow

        T = self.video.num_frames
        if T < 2:
            raise ValueError("optical flow needs at least 2 frames")
        if self._flow is None:
            self._flow = FlowComputer(self.video.flow_method)
        firsts = [min(t, T - 2) for t in frames]
        idx = sorted(set(firsts) | {t + 1 for t in firsts})
        imgs = dict(zip(idx, self.video.read(idx)))
        return np.stack([normalize_flow(self._flow(imgs[t], imgs[t + 1])) for t in firsts])

    def clips(self, centers: np.ndarray) -> np.ndarray:
        """(B, C, L, crop, crop) float32 in [-1, 1] for the snippets centred on `centers`."""
        T = self.video.num_frames
        idx = [clip_frames(int(c), self.snippet, T) for c in centers]
        if not idx:
            return np.zeros((0, 3 if self.stream == "rgb" else 2, self.snippet, self.crop, self.crop), np.float32)
        self._fill(np.concatenate(idx))
        x = np.stack([np.stack([self._cache[int(t)] for t in f]) for f in idx])  # B x L x h x w x C
        x = x.transpose(0, 4, 1, 2, 3).astype(np.float32)
        if self.stream == "rgb":
            x = x / np.float32(255.0) * np.float32(2.0) - np.float32(1.0)
        return np.ascontiguousarray(x)

    def drop_before(self, frame: int) -> None:
        """Forget frames before `frame` (no later snippet starts earlier)."""
        for t in [t for t in self._cache if t < frame]:
            del self._cache[t]
