"""The options that shape a synthetic set (`SynthConfig`), and the vocabulary it draws
from: action classes (motions), shapes, textures, backgrounds."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

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

