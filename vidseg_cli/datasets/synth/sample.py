"""Sampling a synthetic video: the background, camera shake, actors (look, motion,
timeline) and distractors, all from one generator per video seeded by (seed, subset,
index)."""

from __future__ import annotations

import colorsys
import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from vidseg_cli.datasets.synth.config import (
    BACKGROUNDS,
    MOTIONS,
    SHAPES,
    SUBSETS,
    TEXTURES,
    SynthConfig,
)


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

