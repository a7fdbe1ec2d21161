"""Masks and posteriors drawn over a frame in each class's colour (viz/colors.py).

    lut = color_table(class_names)                 # (C, 3) uint8 and which rows are drawn
    img = overlay_labels(frame, labels, lut)       # predicted class, blended at `alpha`
    img = overlay_probs(frame, probs, lut)         # top class, opacity = its posterior
    img = draw_contours(img, gt, lut)              # ground truth as 1-pixel outlines

Background (class 0, or any class without a colour) leaves the frame as it is. Arrays in,
arrays out: reading files and encoding videos are the callers' (api/visualize.py).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from vidseg_cli.viz.colors import class_color

ALPHA = 0.5  # a predicted pixel is half frame, half class colour: both stay visible


@dataclass(frozen=True)
class ColorTable:
    """Colours of a file's classes by index: `rgb` (C, 3) uint8, `drawn` (C,) bool."""

    names: tuple[str, ...]
    rgb: np.ndarray
    drawn: np.ndarray


def color_table(class_names: list[str]) -> ColorTable:
    cols = [class_color(str(n)) for n in class_names]
    rgb = np.array([c or (0, 0, 0) for c in cols], np.uint8).reshape(-1, 3)
    return ColorTable(tuple(map(str, class_names)), rgb, np.array([c is not None for c in cols]))


def _lookup(lut: ColorTable, idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(colour, drawn) per pixel; an index past the table (a class the names lack) is
    left undrawn."""
    n = len(lut.names)
    inside = idx < n
    safe = np.where(inside, idx, 0)
    return lut.rgb[safe], lut.drawn[safe] & inside


def blend(frame: np.ndarray, color: np.ndarray, opacity: np.ndarray) -> np.ndarray:
    """frame * (1 - opacity) + color * opacity, per pixel, rounded to uint8."""
    a = opacity[..., None].astype(np.float32)
    out = frame.astype(np.float32) * (1 - a) + color.astype(np.float32) * a
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def overlay_labels(frame: np.ndarray, labels: np.ndarray, lut: ColorTable,
                   alpha: float = ALPHA) -> np.ndarray:
    """(H, W, 3) uint8 frame with the (H, W) class indices blended in at `alpha`."""
    color, drawn = _lookup(lut, labels.astype(np.int64))
    return blend(frame, color, np.where(drawn, alpha, 0.0))


def overlay_probs(frame: np.ndarray, probs: np.ndarray, lut: ColorTable,
                  alpha: float = ALPHA) -> np.ndarray:
    """(H, W, 3) uint8 frame with the top class of (C, H, W) posteriors blended in, its
    opacity `alpha` x its posterior: a confident pixel is drawn as a label would be, an
    uncertain one fades into the frame."""
    top = probs.argmax(axis=0)
    conf = np.take_along_axis(probs, top[None], axis=0)[0].astype(np.float32)
    color, drawn = _lookup(lut, top)
    return blend(frame, color, np.where(drawn, alpha * np.clip(conf, 0, 1), 0.0))


def boundary(mask: np.ndarray) -> np.ndarray:
    """(H, W) bool: pixels of a class region whose 4-neighbour (or the image edge) holds
    another class: the region's inner outline, one pixel wide."""
    m = mask.astype(np.int64)
    edge = np.zeros(m.shape, bool)
    edge[1:, :] |= m[1:, :] != m[:-1, :]
    edge[:-1, :] |= m[:-1, :] != m[1:, :]
    edge[:, 1:] |= m[:, 1:] != m[:, :-1]
    edge[:, :-1] |= m[:, :-1] != m[:, 1:]
    edge[[0, -1], :] = True
    edge[:, [0, -1]] = True
    return edge & (m != 0)


def draw_contours(img: np.ndarray, gt: np.ndarray, lut: ColorTable) -> np.ndarray:
    """A copy of `img` with the outline of each ground-truth class region (`boundary`) in
    the class's colour, fully opaque: filled is predicted, outlined is true."""
    out = img.copy()
    edge = boundary(gt)
    color, drawn = _lookup(lut, gt.astype(np.int64))
    sel = edge & drawn
    out[sel] = color[sel]
    return out
