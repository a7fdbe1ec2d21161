"""Rendering a sampled video (`VideoSpec`): RGB frames and their pixel labels."""

from __future__ import annotations

import math
from collections.abc import Iterator

import numpy as np

from vidseg_cli.datasets.synth.sample import Appearance, VideoSpec


def shape_mask(a: Appearance, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Inside-ness of local coordinates (in circumradii, major axis along u) -> bool."""
    w = v / a.aspect
    if a.shape == "ellipse":
        return u * u + w * w <= 1.0
    if a.shape == "rectangle":
        return (np.abs(u) <= 0.8) & (np.abs(w) <= 0.8)
    if a.shape == "diamond":
        return np.abs(u) + np.abs(w) <= 1.0
    if a.shape == "triangle":
        # Three half-planes whose normals are 120 degrees apart; inradius 1/2.
        inside = np.ones(u.shape, bool)
        for k in range(3):
            th = -math.pi / 2 + k * 2 * math.pi / 3
            inside &= u * math.cos(th) + w * math.sin(th) <= 0.5
        return inside
    if a.shape == "star":
        r = np.hypot(u, w)
        return r <= 0.65 + 0.35 * np.cos(a.points * np.arctan2(w, u))
    raise ValueError(f"unknown shape {a.shape!r}")


def texture_mask(a: Appearance, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Where the second colour goes, in local coordinates, so the texture moves, scales and
    turns with the actor (a spinning disc must look like it spins)."""
    c, s = math.cos(a.texture_angle), math.sin(a.texture_angle)
    p = (u * c + v * s) / a.period + a.phase[0]
    q = (-u * s + v * c) / a.period + a.phase[1]
    if a.texture == "stripes":
        return np.mod(p, 1.0) < 0.5
    if a.texture == "checker":
        return (np.floor(p) + np.floor(q)) % 2 == 0
    if a.texture == "dots":
        return (np.mod(p, 1.0) - 0.5) ** 2 + (np.mod(q, 1.0) - 0.5) ** 2 < 0.09
    raise ValueError(f"unknown texture {a.texture!r}")



def draw_actor(
    frame: np.ndarray, labels: np.ndarray, a: Appearance, x: float, y: float, scale: float,
    angle: float, label: int,
) -> None:
    """Paint an actor at image position (x, y) into frame (H,W,3) float32 and its label into
    labels (H,W) uint8, in place."""
    H, W = labels.shape
    r = a.radius * scale
    x0, x1 = max(0, int(math.floor(x - r))), min(W, int(math.ceil(x + r)) + 1)
    y0, y1 = max(0, int(math.floor(y - r))), min(H, int(math.ceil(y + r)) + 1)
    if x0 >= x1 or y0 >= y1:
        return
    yy, xx = np.mgrid[y0:y1, x0:x1].astype(np.float64)                  # (h, w) each
    dx, dy = xx - x, yy - y
    c, s = math.cos(angle), math.sin(angle)
    u, v = (dx * c + dy * s) / r, (-dx * s + dy * c) / r                # local, in radii
    inside = shape_mask(a, u, v)                                         # (h, w)
    second = texture_mask(a, u, v)                                       # (h, w)
    rgb = np.where(second[..., None], np.float32(a.color2), np.float32(a.color))  # (h, w, 3)
    # Light from one side of the body: shading turns with the actor, and a flat disc
    # would otherwise hide a spin.
    rgb = rgb * (1.0 + 0.18 * u)[..., None]
    patch = frame[y0:y1, x0:x1]
    patch[inside] = rgb[inside]
    labels[y0:y1, x0:x1][inside] = label


def render_frame(spec: VideoSpec, t: int) -> tuple[np.ndarray, np.ndarray]:
    """Frame t: (H,W,3) uint8 RGB and its (H,W) uint8 pixel labels."""
    cfg = spec.config
    p = cfg.pad
    sx, sy = (int(v) for v in spec.shake[t])
    # The camera moves by (sx, sy): a scene point at x shows at x - sx.
    frame = spec.background[p + sy : p + sy + cfg.height, p + sx : p + sx + cfg.width].copy()  # (H,W,3)
    labels = np.zeros((cfg.height, cfg.width), np.uint8)                                       # (H,W)
    for a in spec.actors:
        if not a.appear <= t < a.vanish:
            continue
        x, y, sc, ang = (float(v) for v in a.poses(np.asarray(t), cfg.fps, cfg.speed))
        label = a.label if a.start <= t < a.end else 0
        draw_actor(frame, labels, a.appearance, x - sx, y - sy, sc, ang, label)
    if cfg.noise > 0:
        # One generator per frame, so frames render identically in any order.
        frame += np.random.default_rng([spec.noise_seed, t]).normal(0, cfg.noise, frame.shape)
    return np.clip(np.rint(frame), 0, 255).astype(np.uint8), labels


def iter_frames(spec: VideoSpec) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    for t in range(spec.num_frames):
        yield render_frame(spec, t)

