"""SLIC superpixels of a video and their spatio-temporal graph (Segment-tube §2.2).

Segment-tube labels superpixels s_{t,i} ("computed by SLIC [21]"), not pixels, and links
each to its spatial neighbours in frame t and its temporal neighbours in frames t-1 and
t+1 (the neighbourhood N_i of Eq. (5)). The paper gives no settings; these are:

- SLIC from OpenCV contrib (cv2.ximgproc, algorithm SLIC) on CIE Lab, about `count`
  superpixels per frame (region size sqrt(H W / count)), ruler 10, 10 iterations, then
  enforceLabelConnectivity(25), on frames shrunk so that their short side is at most
  `work_size` (smaller frames are used as they are);
- per superpixel: mean colour (8-bit Lab / 255, in [0,1]^3, the c of Eq. (7)), centroid
  (x / W, y / H) and area in working pixels;
- spatial neighbours share a 4-connected pixel boundary; temporal neighbours s_{t,i},
  s_{t+1,j} share at least one pixel position. Each pair is listed once, smaller id first.

Superpixel ids are global and contiguous: frame t's ids follow frame t-1's.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

__all__ = [
    "SuperpixelParams",
    "Superpixels",
    "compute_superpixels",
    "node_masks",
    "pixel_means",
    "working_frames",
]


@dataclass(frozen=True)
class SuperpixelParams:
    count: int = 400  # superpixels wanted per frame
    work_size: int = 240  # frames are shrunk to this short side (never enlarged)
    ruler: float = 10.0  # SLIC compactness
    iterations: int = 10
    min_element_size: int = 25  # enforceLabelConnectivity's percentage

    def __post_init__(self) -> None:
        for name in ("count", "work_size", "iterations"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")


@dataclass
class Superpixels:
    """A video's superpixels and graph; N superpixels, T frames of h x w working pixels."""

    labels: np.ndarray  # T x h x w int32 global superpixel id of each working pixel
    frame: np.ndarray  # N int64, the frame of each superpixel
    colour: np.ndarray  # N x 3 float64 mean Lab / 255
    centroid: np.ndarray  # N x 2 float64 (x / w, y / h)
    area: np.ndarray  # N int64 working pixels
    spatial_edges: np.ndarray  # Es x 2 int64, i < j, same frame
    temporal_edges: np.ndarray  # Et x 2 int64, i in frame t, j in frame t + 1

    @property
    def num_nodes(self) -> int:
        return len(self.frame)

    @property
    def edges(self) -> np.ndarray:
        """Spatial then temporal edges, E x 2."""
        return np.concatenate([self.spatial_edges, self.temporal_edges])


def working_frames(frames: np.ndarray, work_size: int) -> np.ndarray:
    """T x H x W x 3 uint8 frames shrunk (area interpolation) to short side `work_size`;
    returned unchanged when already that small."""
    h, w = frames.shape[1:3]
    short = min(h, w)
    if short <= work_size:
        return frames
    size = (max(1, round(w * work_size / short)), max(1, round(h * work_size / short)))
    return np.stack([cv2.resize(f, size, interpolation=cv2.INTER_AREA) for f in frames])


def _slic(lab: np.ndarray, params: SuperpixelParams) -> np.ndarray:
    h, w = lab.shape[:2]
    region = max(2, round(np.sqrt(h * w / params.count)))
    slic = cv2.ximgproc.createSuperpixelSLIC(
        lab, algorithm=cv2.ximgproc.SLIC, region_size=region, ruler=params.ruler
    )
    slic.iterate(params.iterations)
    slic.enforceLabelConnectivity(params.min_element_size)
    _, contiguous = np.unique(slic.getLabels(), return_inverse=True)
    return contiguous.reshape(h, w).astype(np.int32)


def _pairs(a: np.ndarray, b: np.ndarray, n: int) -> np.ndarray:
    """Unique unordered pairs (a, b) with a != b, smaller first, as P x 2."""
    a, b = a.ravel().astype(np.int64), b.ravel().astype(np.int64)
    keep = a != b
    lo, hi = np.minimum(a[keep], b[keep]), np.maximum(a[keep], b[keep])
    codes = np.unique(lo * n + hi)
    return np.stack([codes // n, codes % n], axis=1)


def pixel_means(labels: np.ndarray, values: np.ndarray, n: int) -> np.ndarray:
    """Mean of `values` (labels' shape, optionally x C) over each of the n superpixels."""
    ids = labels.ravel()
    area = np.bincount(ids, minlength=n).astype(np.float64)
    flat = values.reshape(ids.size, -1)
    sums = np.stack([np.bincount(ids, flat[:, c], minlength=n) for c in range(flat.shape[1])], 1)
    means = sums / np.maximum(area, 1)[:, None]
    return means if values.ndim > labels.ndim else means[:, 0]


def compute_superpixels(frames: np.ndarray, params: SuperpixelParams | None = None) -> Superpixels:
    """SLIC superpixels and their graph for T x H x W x 3 uint8 RGB frames."""
    params = params or SuperpixelParams()
    if frames.ndim != 4 or frames.shape[3] != 3 or frames.dtype != np.uint8:
        raise ValueError(f"frames must be T x H x W x 3 uint8, got {frames.shape} {frames.dtype}")
    work = working_frames(frames, params.work_size)
    lab = np.stack([cv2.cvtColor(f, cv2.COLOR_RGB2LAB) for f in work])  # T x h x w x 3
    labels = np.empty(work.shape[:3], dtype=np.int32)  # T x h x w
    offset = 0
    counts = []
    for t, image in enumerate(lab):
        local = _slic(image, params)
        labels[t] = local + offset
        counts.append(int(local.max()) + 1)
        offset += counts[-1]
    n = offset
    t_len, h, w = labels.shape

    ys, xs = np.mgrid[0:h, 0:w]
    xy = np.stack([(xs + 0.5) / w, (ys + 0.5) / h], axis=-1)  # h x w x 2
    spatial = _pairs(
        np.concatenate([labels[:, :, :-1].ravel(), labels[:, :-1, :].ravel()]),
        np.concatenate([labels[:, :, 1:].ravel(), labels[:, 1:, :].ravel()]),
        n,
    )
    temporal = _pairs(labels[:-1], labels[1:], n) if t_len > 1 else np.zeros((0, 2), np.int64)
    return Superpixels(
        labels=labels,
        frame=np.repeat(np.arange(t_len), counts).astype(np.int64),
        colour=pixel_means(labels, lab.astype(np.float64) / 255.0, n),
        centroid=pixel_means(labels, np.broadcast_to(xy, (t_len, h, w, 2)), n),
        area=np.bincount(labels.ravel(), minlength=n).astype(np.int64),
        spatial_edges=spatial,
        temporal_edges=temporal,
    )


def node_masks(sp: Superpixels, node_labels: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Per-node 0/1 labels painted back as T x H x W bool masks at size (H, W), by
    nearest-neighbour resizing of the working-size superpixel map."""
    work = np.asarray(node_labels).astype(bool)[sp.labels]  # T x h x w
    height, width = size
    if work.shape[1:] == (height, width):
        return work
    return np.stack(
        [
            cv2.resize(m.view(np.uint8), (width, height), interpolation=cv2.INTER_NEAREST) > 0
            for m in work
        ]
    )
