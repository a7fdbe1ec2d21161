"""Deterministic synthetic untrimmed action videos with pixel, frame and segment labels.

A video is a static textured background seen through a shaky camera, with pixel noise, on
which actors appear, sometimes stand still for a moment, perform one action, sometimes stand
still again, and vanish. An actor's *motion pattern* is its class; its shape, size, colour,
texture and orientation are drawn independently of the class, so no single frame tells the
classes apart, while a few frames of motion do. Static distractor objects (drawn behind the
actors) make "something is there" no evidence of an action either. With
`appearance="class"` an actor's look carries its class as well (its shape, hue band and
texture, like a golf club or a pool in real footage), for checking appearance-only models
such as an RGB frame classifier; the motion is still the class, and the timelines, sizes
and placements are those of the default set.

Pixel labels: an actor's silhouette carries its class on the frames of its action, the
half-open interval [start, end); everything else is background (0), still actors and
distractors included. Frame `start` shows the rest pose the motion leaves from and frame
`end - 1` the pose it stops in, so every labelled frame borders a moving step. Actors
performing at the same time never overlap (placement rejects overlapping paths), so every
frame of a class-c segment holds class-c pixels and no other.

Everything is drawn from one `numpy.random.Generator` per video, seeded by (seed, subset,
index): a video does not depend on how many others are made, in what order, or by how many
workers. The library is arrays in, arrays out, except for the few `write_*` helpers at the
end, which the CLI calls.

    cfg = SynthConfig(num_classes=4)
    spec = sample_video(cfg, seed=0, subset="train", index=3)     # -> VideoSpec
    rgb, labels = render_frame(spec, t)                          # (H,W,3) uint8, (H,W) uint8
"""

from __future__ import annotations

import colorsys
import json
import math
import os
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

# Bump when the same seed and options would give different videos or labels.
SYNTH_VERSION = "1.0"

# The action classes, in the generator's order: --num-classes K takes the first K. The first
# four differ in every respect a short clip shows (axis, path shape, size change), which
# suits the default, small set.
MOTIONS: tuple[str, ...] = (
    "SlideHorizontal",  # constant velocity left or right
    "BounceVertical",   # sinusoidal up-and-down
    "Orbit",            # circular path, clockwise or not
    "Pulse",            # stays in place, grows and shrinks
    "SlideVertical",    # constant velocity up or down
    "Spin",             # stays in place, rotates
    "Zigzag",           # constant horizontal velocity, triangle wave vertically
    "Shake",            # fast, small horizontal oscillation
)
SUBSETS = {"train": "training", "test": "testing"}  # our id infix -> ActivityNet subset
SHAPES = ("ellipse", "rectangle", "triangle", "diamond", "star")
TEXTURES = ("stripes", "checker", "dots")
BACKGROUNDS = ("noise", "gradient", "stripes", "plaid")
APPEARANCES = ("random", "class")  # what an actor's look says about its class: nothing, or it


@dataclass(frozen=True)
class SynthConfig:
    """Everything that shapes a set, besides the seed. Lengths are in seconds, sizes in px."""

    width: int = 128
    height: int = 96
    fps: float = 10.0
    duration: tuple[float, float] = (15.0, 25.0)      # video length, drawn per video
    num_classes: int = 4
    max_actors: int = 2                                # actors acting at the same time, at most
    max_distractors: int = 1                           # static objects, background class
    noise: float = 3.0                                 # pixel noise std, 0..255 scale
    jitter: float = 1.0                                # camera shake, px (max shift)
    action_length: tuple[float, float] = (2.4, 5.0)   # >= 16 frames at 10 fps: C3D windows fit
    gap_length: tuple[float, float] = (1.0, 5.0)      # between a track's actions
    appearance: str = "random"                         # "random" or "class" (sample_appearance)
    classes_per_video: int = 0                         # 0: all K in shuffled rounds; n: n drawn per video
    speed: float = 1.0                                 # motion tempo: 0.25 plays every action 4x slower

    def __post_init__(self) -> None:
        problems = []
        if self.width < 16 or self.height < 16 or self.width % 2 or self.height % 2:
            problems.append(f"size must be even and at least 16x16, got {self.width}x{self.height}")
        if not 1 <= self.num_classes <= len(MOTIONS):
            problems.append(f"num_classes must be 1..{len(MOTIONS)}, got {self.num_classes}")
        if self.fps <= 0:
            problems.append(f"fps must be positive, got {self.fps}")
        for name in ("duration", "action_length", "gap_length"):
            lo, hi = getattr(self, name)
            if not 0 <= lo <= hi:
                problems.append(f"{name} must be 0 <= min <= max, got {lo},{hi}")
        if self.action_length[0] * self.fps < 2:
            problems.append("actions must last at least 2 frames (action_length * fps >= 2)")
        if self.duration[0] < self.action_length[0] + 1.0:
            problems.append(
                f"videos of {self.duration[0]:g} s cannot hold an action of "
                f"{self.action_length[0]:g} s with background around it; "
                f"make duration >= {self.action_length[0] + 1.0:g}"
            )
        if self.max_actors < 1 or self.max_distractors < 0:
            problems.append("max_actors must be >= 1 and max_distractors >= 0")
        if not self.speed > 0:
            problems.append(f"speed must be positive, got {self.speed}")
        if self.noise < 0 or self.jitter < 0:
            problems.append("noise and jitter must be >= 0")
        if not 0 <= self.classes_per_video <= self.num_classes:
            problems.append(f"classes_per_video must be 0 (all) .. num_classes ({self.num_classes}), "
                            f"got {self.classes_per_video}")
        if self.appearance not in APPEARANCES:
            problems.append(f"appearance must be one of {', '.join(APPEARANCES)}, got {self.appearance!r}")
        if problems:
            raise ValueError("; ".join(problems))

    @property
    def class_names(self) -> list[str]:
        """Label index -> name; 0 is background (DESIGN.md)."""
        return ["background", *MOTIONS[: self.num_classes]]

    @property
    def scale(self) -> float:
        """The unit of every spatial parameter, so a set looks alike at any size."""
        return float(min(self.width, self.height))

    @property
    def pad(self) -> int:
        """The largest camera shift, in whole pixels."""
        return int(math.ceil(self.jitter))

    def to_dict(self) -> dict[str, Any]:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}


# -- appearance -------------------------------------------------------------------------
@dataclass(frozen=True)
class Appearance:
    """How an actor looks: drawn without knowing its class, unless the set's appearance is
    "class" (`sample_appearance`)."""

    shape: str
    radius: float                      # px, circumradius of the shape at scale 1
    aspect: float                      # minor/major axis ratio
    angle: float                       # rad, orientation at rest
    color: tuple[float, float, float]  # RGB 0..255
    color2: tuple[float, float, float]  # the texture's second colour
    texture: str
    period: float                      # texture period, in radii
    texture_angle: float               # rad
    phase: tuple[float, float]         # texture offset, in periods
    points: int                        # star points


def _hsv(h: float, s: float, v: float) -> tuple[float, float, float]:
    r, g, b = colorsys.hsv_to_rgb(h % 1.0, s, v)
    return (255.0 * r, 255.0 * g, 255.0 * b)


def sample_appearance(rng: np.random.Generator, cfg: SynthConfig, label: int = 0) -> Appearance:
    """An actor's look (`label` 1..K) or a distractor's (`label` 0).

    By default everything is random. With `cfg.appearance == "class"` an actor's shape,
    texture and hue follow its class (`class_look`, `class_hue`) and its colour is vivid
    enough for the hue to show (saturation >= 0.6, value >= 0.55), while size, aspect,
    orientation, texture scale and phase stay random; a distractor keeps a random shape and
    texture and takes a hue that is no class's (`other_hue`), so a still object never
    passes for an actor of some class (an actor standing still before or after its action
    still does, as in real footage). The generator draws the same numbers either way, so
    the two kinds of set share their timelines, sizes and placements and differ only in
    how things look.
    """
    h, s, v = rng.uniform(0, 1), rng.uniform(0.35, 1.0), rng.uniform(0.3, 1.0)
    # The texture's second colour differs in brightness, so texture (and rotation) shows
    # whatever the hue.
    dv = rng.uniform(0.3, 0.5)
    shape = str(rng.choice(SHAPES))
    radius = float(rng.uniform(0.08, 0.15) * cfg.scale)
    aspect = float(rng.uniform(0.55, 1.0))
    angle = float(rng.uniform(0, 2 * math.pi))
    dh = rng.uniform(-0.1, 0.1)                     # the second colour's hue, relative
    ds = rng.uniform(0.5, 1.0)                      # and saturation, relative
    texture = str(rng.choice(TEXTURES))
    h2 = h + dh
    if cfg.appearance == "class":
        # dh / 0.2 + 0.5 in [0, 1): the second colour's place in the same hue range
        if label > 0:
            shape, texture = class_look(label)
            s, v = 0.6 + 0.4 * (s - 0.35) / 0.65, 0.55 + 0.45 * (v - 0.3) / 0.7
            h, h2 = class_hue(label, h, cfg.num_classes), class_hue(label, dh / 0.2 + 0.5, cfg.num_classes)
        else:
            h, h2 = other_hue(h, cfg.num_classes), other_hue(h, cfg.num_classes, dh / 0.2 + 0.5)
    return Appearance(
        shape=shape,
        radius=radius,
        aspect=aspect,
        angle=angle,
        color=_hsv(h, s, v),
        color2=_hsv(h2, s * ds, min(1.0, v + (dv if v < 0.6 else -dv))),
        texture=texture,
        period=float(rng.uniform(0.4, 0.8)),
        texture_angle=float(rng.uniform(0, math.pi)),
        phase=(float(rng.uniform(0, 1)), float(rng.uniform(0, 1))),
        points=int(rng.integers(4, 7)),
    )


# With --appearance class the hue circle is cut into 2K equal sectors: class k owns the
# central half of sector 2(k-1) (its band, centred on hue (k-1)/K), and everything else,
# backgrounds and distractors, takes the central half of the odd sectors. A quarter sector
# of margin on each side keeps a class's colour clear of all others after the mp4 codec's
# chroma subsampling has blurred it into its surroundings.
def class_look(label: int) -> tuple[str, str]:
    """(shape, texture) of class `label` (1..K) in a set whose appearance is "class":
    they cycle (with 8 classes, classes 1 and 6 share a shape, not a texture or a hue)."""
    i = label - 1
    return SHAPES[i % len(SHAPES)], TEXTURES[i % len(TEXTURES)]


def class_hue(label: int, u: float, num_classes: int) -> float:
    """The hue at fraction `u` (0..1) of class `label`'s band (width 1/(4K), centred on
    (label-1)/K), in [0, 1)."""
    return ((label - 1) / num_classes + (u - 0.5) / (4 * num_classes)) % 1.0


def other_hue(u: float, num_classes: int, within: float | None = None) -> float:
    """A hue that is no class's: `u` (0..1) picks one of the K in-between bands (width
    1/(4K), centred on (j+0.5)/K) and its place in it, or `within` gives the place."""
    j, frac = divmod(u * num_classes, 1.0)
    frac = frac if within is None else within
    return ((j + 0.5) / num_classes + (frac - 0.5) / (4 * num_classes)) % 1.0


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


# -- motion -----------------------------------------------------------------------------
@dataclass(frozen=True)
class Motion:
    """An action's motion: `offsets` maps seconds since its start to a pose change.

    Every pattern starts from the rest pose (offset 0, scale 1, angle 0), so an actor that
    stands still and then acts does not jump.
    """

    name: str
    params: dict[str, float] = field(default_factory=dict)

    def offsets(self, t: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(dx, dy, scale, dangle) at times t (s), each shaped like t; dx, dy in px."""
        t = np.asarray(t, np.float64)
        p = self.params
        zero, one = np.zeros_like(t), np.ones_like(t)
        n = self.name
        if n in ("SlideHorizontal", "SlideVertical"):
            d = p["speed"] * t
            return (d, zero, one, zero) if n == "SlideHorizontal" else (zero, d, one, zero)
        if n == "BounceVertical":
            return zero, p["amp"] * np.sin(2 * np.pi * t / p["period"]), one, zero
        if n == "Orbit":
            a = p["phase"] + p["direction"] * 2 * np.pi * t / p["period"]
            r = p["radius"]
            return (r * (np.cos(a) - math.cos(p["phase"])),
                    r * (np.sin(a) - math.sin(p["phase"])), one, zero)
        if n == "Pulse":
            return zero, zero, 1.0 + p["amp"] * np.sin(2 * np.pi * t / p["period"]), zero
        if n == "Spin":
            return zero, zero, one, p["omega"] * t
        if n == "Zigzag":
            # Triangle wave through 0 at t=0: up a quarter period, down half, up a quarter.
            x = np.mod(t / p["period"] + 0.25, 1.0)
            tri = 4.0 * np.abs(x - 0.5) - 1.0
            return p["speed"] * t, -p["amp"] * tri, one, zero
        if n == "Shake":
            return p["amp"] * np.sin(2 * np.pi * t / p["period"]), zero, one, zero
        raise ValueError(f"unknown motion {n!r}")


def sample_motion(
    rng: np.random.Generator, name: str, cfg: SynthConfig, seconds: float, radius: float
) -> Motion:
    """Parameters of one performance of `name` lasting `seconds`, for an actor of `radius`."""
    S = cfg.scale
    sign = 1.0 if rng.random() < 0.5 else -1.0
    margin = 2 * cfg.pad + 2

    def slide_speed(room: float) -> float:
        # Fast enough to see in one frame step, slow enough to stay in frame for the whole
        # action: long slides are slower.
        return sign * min(rng.uniform(0.25, 0.45) * S, max(room - 2 * radius - margin, 1.0) / seconds)

    if name == "SlideHorizontal":
        return Motion(name, {"speed": slide_speed(cfg.width)})
    if name == "SlideVertical":
        return Motion(name, {"speed": slide_speed(cfg.height)})
    if name == "BounceVertical":
        return Motion(name, {"amp": sign * rng.uniform(0.12, 0.2) * S,
                             "period": rng.uniform(0.8, 1.4)})
    if name == "Orbit":
        return Motion(name, {"radius": rng.uniform(0.1, 0.18) * S, "period": rng.uniform(1.0, 1.8),
                             "phase": rng.uniform(0, 2 * math.pi), "direction": sign})
    if name == "Pulse":
        return Motion(name, {"amp": sign * rng.uniform(0.3, 0.45), "period": rng.uniform(0.8, 1.4)})
    if name == "Spin":
        return Motion(name, {"omega": sign * rng.uniform(1.5, 3.0) * math.pi})
    if name == "Zigzag":
        return Motion(name, {"speed": slide_speed(cfg.width) * 0.8, "amp": rng.uniform(0.08, 0.14) * S,
                             "period": rng.uniform(0.8, 1.4)})
    if name == "Shake":
        return Motion(name, {"amp": rng.uniform(0.03, 0.06) * S, "period": rng.uniform(0.3, 0.5)})
    raise ValueError(f"unknown motion {name!r}")


# -- actors and their timeline ------------------------------------------------------------
@dataclass(frozen=True)
class Actor:
    """One actor's life: visible on [appear, vanish), acting on [start, end) (frames).

    Outside [start, end) it holds still: at its anchor before, at its last pose after.
    `label` is 0 for a distractor, which never moves.
    """

    label: int
    appear: int
    start: int
    end: int
    vanish: int
    anchor: tuple[float, float]   # (x, y) scene px at rest
    appearance: Appearance
    motion: Motion | None

    def poses(self, frames: np.ndarray, fps: float, speed: float = 1.0) -> tuple[np.ndarray, ...]:
        """(x, y, scale, angle) at each frame, arrays shaped like frames; `speed` < 1 plays
        the motion slower (the same path, covered less far in the same time)."""
        frames = np.asarray(frames)
        if self.motion is None:
            one = np.ones(frames.shape)
            return self.anchor[0] * one, self.anchor[1] * one, one, self.appearance.angle * one
        t = (np.clip(frames, self.start, self.end - 1) - self.start) / fps * speed
        dx, dy, sc, da = self.motion.offsets(t)
        return self.anchor[0] + dx, self.anchor[1] + dy, sc, self.appearance.angle + da

    def box(self, fps: float, speed: float = 1.0) -> tuple[float, float, float, float]:
        """(x0, y0, x1, y1) scene px the actor covers over its whole life."""
        x, y, sc, _ = self.poses(np.arange(self.start, self.end), fps, speed)
        r = self.appearance.radius * sc
        return float((x - r).min()), float((y - r).min()), float((x + r).max()), float((y + r).max())


def _overlaps(a: Actor, b: Actor, fps: float, speed: float) -> bool:
    if a.vanish <= b.appear or b.vanish <= a.appear:
        return False
    ax0, ay0, ax1, ay1 = a.box(fps, speed)
    bx0, by0, bx1, by1 = b.box(fps, speed)
    gap = 2.0
    return not (ax1 + gap < bx0 or bx1 + gap < ax0 or ay1 + gap < by0 or by1 + gap < ay0)


def place(
    rng: np.random.Generator, cfg: SynthConfig, actor: Actor, others: Sequence[Actor], tries: int = 30
) -> Actor | None:
    """The actor moved to a random anchor where its whole path stays in frame (camera shake
    included) and clear of every actor visible at the same time; None if none is found."""
    x0, y0, x1, y1 = actor.box(cfg.fps, cfg.speed)          # around anchor (0, 0)
    m = cfg.pad + 1
    lo_x, hi_x = m - x0, cfg.width - 1 - m - x1
    lo_y, hi_y = m - y0, cfg.height - 1 - m - y1
    if lo_x > hi_x or lo_y > hi_y:
        return None
    for _ in range(tries):
        cand = Actor(actor.label, actor.appear, actor.start, actor.end, actor.vanish,
                     (float(rng.uniform(lo_x, hi_x)), float(rng.uniform(lo_y, hi_y))),
                     actor.appearance, actor.motion)
        if not any(_overlaps(cand, o, cfg.fps, cfg.speed) for o in others):
            return cand
    return None


def sample_actor(
    rng: np.random.Generator, cfg: SynthConfig, label: int, appear: int, start: int, end: int,
    vanish: int, others: Sequence[Actor] = (),
) -> Actor | None:
    """An actor performing class `label` (1..K) on [start, end), placed clear of `others`."""
    look = sample_appearance(rng, cfg, label)
    motion = sample_motion(rng, MOTIONS[label - 1], cfg, (end - start) / cfg.fps, look.radius)
    return place(rng, cfg, Actor(label, appear, start, end, vanish, (0.0, 0.0), look, motion), others)


def sample_timeline(rng: np.random.Generator, cfg: SynthConfig, num_frames: int) -> list[Actor]:
    """Actors of one video, on `max_actors` tracks of alternating gaps and actions.

    Track 0 alternates background gaps and actions (about half the time acting); further
    tracks are sparser, so actions overlap now and then. Classes come from shuffled rounds
    of all K, which keeps them balanced within a video; with `classes_per_video` n > 0, of n
    classes drawn for the video (n = 1: every action of a video is one class, as in most
    THUMOS14 videos, so a video-level label says which class to look for).
    """
    fps = cfg.fps
    bag: list[int] = []
    n = cfg.classes_per_video
    # Drawn only when asked for, so the default draws, and thus sets, stay as they were.
    pool = rng.choice(cfg.num_classes, n, replace=False) + 1 if 0 < n < cfg.num_classes else None
    actors: list[Actor] = []
    for track in range(cfg.max_actors):
        g0, g1 = cfg.gap_length
        if track > 0:
            g0, g1 = g0 + g1, 3 * g1 + g0
        t = rng.uniform(0.3 * g0, g1)                 # s; videos open on background
        while True:
            lead_in = rng.uniform(0, 1.0) if rng.random() < 0.5 else 0.0
            lead_out = rng.uniform(0, 1.0) if rng.random() < 0.5 else 0.0
            length = rng.uniform(*cfg.action_length)
            appear = int(round(t * fps))
            start = appear + int(round(lead_in * fps))
            end = start + max(2, int(round(length * fps)))
            vanish = end + int(round(lead_out * fps))
            if vanish > num_frames:
                break
            if not bag:
                bag = list(rng.permutation(cfg.num_classes) + 1 if pool is None else rng.permutation(pool))
            label = int(bag.pop())
            actor = sample_actor(rng, cfg, label, appear, start, end, vanish, actors)
            if actor is not None:
                actors.append(actor)
            else:
                bag.append(label)   # that class is owed to the next action
            t = vanish / fps + rng.uniform(g0, g1)
    return sorted(actors, key=lambda a: (a.start, a.label))


def sample_distractors(rng: np.random.Generator, cfg: SynthConfig, num_frames: int) -> list[Actor]:
    """Still objects, present all along, labelled background."""
    out = []
    for _ in range(int(rng.integers(0, cfg.max_distractors + 1))):
        look = sample_appearance(rng, cfg)
        m = cfg.pad + look.radius + 1
        anchor = (float(rng.uniform(m, cfg.width - m)), float(rng.uniform(m, cfg.height - m)))
        out.append(Actor(0, 0, 0, 0, num_frames, anchor, look, None))
    return out


# -- background and camera ------------------------------------------------------------
def _smooth_noise(rng: np.random.Generator, h: int, w: int, cell: float) -> np.ndarray:
    """Smooth random field in [0, 1], features about `cell` px across: (h, w) float32."""
    import cv2

    gh, gw = max(2, int(h / cell) + 2), max(2, int(w / cell) + 2)
    grid = rng.random((gh, gw)).astype(np.float32)                       # (gh, gw)
    field_ = cv2.resize(grid, (w, h), interpolation=cv2.INTER_CUBIC)    # (h, w)
    field_ -= field_.min()
    return field_ / max(float(field_.max()), 1e-6)


def sample_background(rng: np.random.Generator, cfg: SynthConfig) -> np.ndarray:
    """A textured canvas, `pad` px larger than the frame on every side: (H+2p, W+2p, 3) float32.

    Muted colours and soft edges, so actors stand out and camera shake shows mostly at the
    background's own texture, as in real footage. With appearance "class", hues that are
    no class's.
    """
    p = cfg.pad
    h, w = cfg.height + 2 * p, cfg.width + 2 * p
    kind = str(rng.choice(BACKGROUNDS))
    hue = rng.uniform(0, 1)
    s1, v1 = rng.uniform(0, 0.5), rng.uniform(0.25, 0.85)
    dh = rng.uniform(-0.3, 0.3)
    s2, v2 = rng.uniform(0, 0.5), rng.uniform(0.25, 0.85)
    h1, h2 = hue, hue + dh
    if cfg.appearance == "class":  # no class's colour in the scene (sample_appearance)
        h1, h2 = other_hue(hue, cfg.num_classes), other_hue(hue, cfg.num_classes, dh / 0.6 + 0.5)
    c1 = np.array(_hsv(h1, s1, v1), np.float32)
    c2 = np.array(_hsv(h2, s2, v2), np.float32)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)                       # (h, w) each
    th = rng.uniform(0, math.pi)
    along = xx * math.cos(th) + yy * math.sin(th)                        # (h, w)
    if kind == "noise":
        mix = _smooth_noise(rng, h, w, rng.uniform(0.1, 0.3) * cfg.scale)
    elif kind == "gradient":
        mix = (along - along.min()) / max(float(np.ptp(along)), 1e-6)
        mix = 0.8 * mix + 0.2 * _smooth_noise(rng, h, w, 0.2 * cfg.scale)
    else:
        period = rng.uniform(0.12, 0.35) * cfg.scale
        mix = 0.5 + 0.5 * np.sin(2 * np.pi * along / period)
        if kind == "plaid":
            th2 = th + rng.uniform(math.pi / 4, 3 * math.pi / 4)
            across = xx * math.cos(th2) + yy * math.sin(th2)
            mix = 0.5 * mix + 0.25 + 0.25 * np.sin(2 * np.pi * across / (period * rng.uniform(0.7, 1.4)))
    img = c1 + (c2 - c1) * mix[..., None]                                # (h, w, 3)
    grain = rng.normal(0, 4.0, (h, w, 1)).astype(np.float32)             # fixed fine texture
    return np.clip(img + grain, 0, 255).astype(np.float32)


def sample_shake(rng: np.random.Generator, cfg: SynthConfig, num_frames: int) -> np.ndarray:
    """Per-frame integer camera shift (dx, dy), a random walk pulled back to centre and
    bounded by `jitter`, like a hand-held camera rather than white noise: (T, 2) int."""
    if cfg.jitter <= 0 or num_frames == 0:
        return np.zeros((num_frames, 2), np.int64)
    steps = rng.normal(0, 0.5 * cfg.jitter, (num_frames, 2))
    pos = np.zeros((num_frames, 2))
    for t in range(1, num_frames):
        pos[t] = 0.7 * pos[t - 1] + steps[t]
    return np.clip(np.rint(pos), -cfg.pad, cfg.pad).astype(np.int64)


# -- a video ------------------------------------------------------------------------
@dataclass(frozen=True)
class VideoSpec:
    """Everything needed to render any frame of a video, in any order."""

    video_id: str
    config: SynthConfig
    num_frames: int
    background: np.ndarray   # (H+2p, W+2p, 3) float32
    shake: np.ndarray        # (T, 2) int camera shift
    actors: tuple[Actor, ...]  # drawing order: distractors first, so they never hide an action
    noise_seed: int

    @property
    def segments(self) -> list[tuple[int, int, int]]:
        """(label, start, end) of every action, half-open frames, by start."""
        return [(a.label, a.start, a.end) for a in self.actors if a.label > 0]


def video_id(subset: str, index: int) -> str:
    return f"synth_{subset}_{index:04d}"


def video_rng(seed: int, subset: str, index: int) -> np.random.Generator:
    return np.random.default_rng([int(seed), list(SUBSETS).index(subset), int(index)])


def sample_video(cfg: SynthConfig, seed: int, subset: str, index: int) -> VideoSpec:
    rng = video_rng(seed, subset, index)
    num_frames = int(round(rng.uniform(*cfg.duration) * cfg.fps))
    background = sample_background(rng, cfg)
    shake = sample_shake(rng, cfg, num_frames)
    distractors = sample_distractors(rng, cfg, num_frames)
    actors = sample_timeline(rng, cfg, num_frames)
    return VideoSpec(video_id(subset, index), cfg, num_frames, background, shake,
                     tuple(distractors + actors), int(rng.integers(2**62)))


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


# -- writing a set ------------------------------------------------------------------------
def seconds(frame: int | float, fps: float) -> float:
    """A frame boundary in seconds, rounded so JSON and txt files carry the same number."""
    return round(float(frame) / fps, 6)


def write_mp4(path: str | os.PathLike, frames: Iterator[np.ndarray], width: int, height: int,
              fps: float) -> int:
    """Encode RGB frames (mp4v, deterministic) under a temporary name, check that OpenCV
    decodes the same count and size, then rename into place; return the frame count."""
    import cv2

    from vidseg_cli.errors import InputError

    final = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=".vidseg-tmp-", suffix=".mp4", dir=final.parent)
    os.close(fd)
    try:
        writer = cv2.VideoWriter(tmp, cv2.VideoWriter_fourcc(*"mp4v"), float(fps), (width, height))
        if not writer.isOpened():
            raise InputError(final, "OpenCV cannot open an mp4v video writer")
        n = 0
        try:
            for rgb in frames:
                writer.write(np.ascontiguousarray(rgb[..., ::-1]))  # OpenCV wants BGR
                n += 1
        finally:
            writer.release()
        cap = cv2.VideoCapture(tmp)
        try:
            got = 0
            while cap.grab():
                got += 1
            size = (int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT)))
        finally:
            cap.release()
        if got != n or size != (width, height):
            raise InputError(final, f"wrote {n} frames of {width}x{height}, but it decodes to "
                                    f"{got} frames of {size[0]}x{size[1]}")
        os.chmod(tmp, 0o644)
        os.replace(tmp, final)
        return n
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def generate_video(
    cfg: SynthConfig, seed: int, subset: str, index: int, out_dir: str | os.PathLike,
    command: str | None = None,
) -> dict[str, Any]:
    """Render one video to `out_dir/videos/<id>.mp4` and `out_dir/labels/<id>.labels.h5`,
    frame by frame; return its ground-truth entry (see `ground_truth`)."""
    from vidseg_cli import store

    spec = sample_video(cfg, seed, subset, index)
    out = Path(out_dir)
    labels = np.zeros((spec.num_frames, cfg.height, cfg.width), np.uint8)  # (T,H,W), the one video

    def frames() -> Iterator[np.ndarray]:
        for t, (rgb, lab) in enumerate(iter_frames(spec)):
            labels[t] = lab
            yield rgb

    write_mp4(out / "videos" / f"{spec.video_id}.mp4", frames(), cfg.width, cfg.height, cfg.fps)
    store.write_labels(
        out / "labels" / store.output_name(spec.video_id, "labels"), labels,
        video_id=spec.video_id, num_frames=spec.num_frames, fps=cfg.fps,
        class_names=cfg.class_names, command=command,
        attrs={"synth_version": SYNTH_VERSION, "synth_seed": int(seed), "subset": SUBSETS[subset]},
    )
    return {
        "video_id": spec.video_id,
        "subset": SUBSETS[subset],
        "num_frames": spec.num_frames,
        "segments": [[label, start, end] for label, start, end in spec.segments],
    }


def ground_truth(cfg: SynthConfig, videos: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """ActivityNet-style ground truth; `taxonomy[i]` is label index i+1."""
    names = cfg.class_names
    database = {}
    for v in videos:
        database[v["video_id"]] = {
            "subset": v["subset"],
            "duration": seconds(v["num_frames"], cfg.fps),
            "fps": cfg.fps,
            "num_frames": v["num_frames"],
            "resolution": f"{cfg.width}x{cfg.height}",
            "annotations": [
                {"segment": [seconds(s, cfg.fps), seconds(e, cfg.fps)], "label": names[c]}
                for c, s, e in v["segments"]
            ],
        }
    return {"version": f"vidseg-synth-{SYNTH_VERSION}", "taxonomy": names[1:], "database": database}


def thumos_files(cfg: SynthConfig, videos: Sequence[dict[str, Any]]) -> dict[str, str]:
    """THUMOS14-style annotation files, name -> text: `<Class>_<train|test>.txt` (one line
    `video start end` per action, seconds) for every class and subset, empty ones included,
    and `detclasslist.txt` (`<1-based index> <Class>`)."""
    names = cfg.class_names
    inverse = {v: k for k, v in SUBSETS.items()}
    files = {"detclasslist.txt": "".join(f"{i} {n}\n" for i, n in enumerate(names[1:], 1))}
    for subset in SUBSETS:
        for c, name in enumerate(names[1:], 1):
            lines = [
                f"{v['video_id']}  {seconds(s, cfg.fps)!r} {seconds(e, cfg.fps)!r}\n"
                for v in sorted(videos, key=lambda v: v["video_id"]) if inverse[v["subset"]] == subset
                for cc, s, e in v["segments"] if cc == c
            ]
            files[f"{name}_{subset}.txt"] = "".join(lines)
    return files


def write_text(path: str | os.PathLike, text: str) -> None:
    """Write atomically (temporary file in the same folder, then rename)."""
    final = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=".vidseg-tmp-", dir=final.parent)
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.chmod(tmp, 0o644)
        os.replace(tmp, final)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_set_files(
    out_dir: str | os.PathLike, cfg: SynthConfig, videos: Sequence[dict[str, Any]], params: dict
) -> None:
    """gt.json, annotations/*.txt and synth.json for generated `videos`."""
    out = Path(out_dir)
    (out / "annotations").mkdir(parents=True, exist_ok=True)
    write_text(out / "gt.json", json.dumps(ground_truth(cfg, videos), indent=2) + "\n")
    for name, text in thumos_files(cfg, videos).items():
        write_text(out / "annotations" / name, text)
    write_text(out / "synth.json", json.dumps(params, indent=2) + "\n")


def set_params(cfg: SynthConfig, seed: int, num_train: int, num_test: int,
               command: str | None = None) -> dict[str, Any]:
    """What synth.json records: enough to make the same set again."""
    from vidseg_cli import __version__

    return {
        "generator": "vidseg-synth",
        "synth_version": SYNTH_VERSION,
        "vidseg_version": __version__,
        "command": command,
        "seed": int(seed),
        "train": int(num_train),
        "test": int(num_test),
        "config": cfg.to_dict(),
        "class_names": cfg.class_names,
        "subsets": dict(SUBSETS),
        "layout": {
            "videos": "videos/<video_id>.mp4 (mp4v, RGB)",
            "labels": "labels/<video_id>.labels.h5 (labels kind: (T,H,W) uint8, 0 = background)",
            "gt": "gt.json (ActivityNet style, seconds; segment [a/fps, b/fps] for frames [a, b))",
            "annotations": "annotations/<Class>_<train|test>.txt, annotations/detclasslist.txt",
        },
    }
