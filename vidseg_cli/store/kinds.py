"""The kinds of file vidseg stages exchange, their datasets and shapes (DESIGN.md table).

Symbolic sizes: T is bound to the root attribute `num_frames`, C to `len(class_names)`,
a symbol of `names_attrs` (A: `len(action_names)`) to its attribute's length; other names
(H, W, N, D) are bound by the first dataset that uses them, so every dataset of a file must
agree on them. An `optional` dataset may be absent; when present it is checked the same
way (and a symbol it uses from `names_attrs` requires that attribute).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field


@dataclass(frozen=True)
class DatasetSpec:
    """Shape and dtype rules of one dataset of a kind.

    `shape` holds ints (fixed sizes) and names (symbolic sizes, bound across all datasets
    of a file, e.g. "T" must be the same in frames and timestamps); `dtype_kinds` is a
    string of numpy dtype kind codes accepted ("u" unsigned, "i" signed, "f" float).
    """

    shape: tuple[int | str, ...]
    dtype_kinds: str
    optional: bool = False  # a file may leave it out; when present it is checked like any


@dataclass(frozen=True)
class KindSpec:
    name: str
    datasets: Mapping[str, DatasetSpec]
    # Symbols bound by root attributes: "T" -> num_frames, "C" -> len(class_names).
    needs_class_names: bool = False
    binds_num_frames: str | None = "T"
    description: str = ""
    extra_attrs: tuple[str, ...] = field(default_factory=tuple)
    # More symbols sized by a root attribute that lists names, e.g. {"A": "action_names"}:
    # a file holding a dataset whose shape uses the symbol must carry the attribute, and
    # the symbol is its length (an optional dataset brings its own list of names).
    names_attrs: Mapping[str, str] = field(default_factory=dict)
    # The schema this vidseg writes for the kind; readers take files of this schema or older.
    schema: int = 1


D = DatasetSpec  # short, for the table below

KINDS: dict[str, KindSpec] = {
    k.name: k
    for k in (
        KindSpec(
            "frames",
            # Shapes as decoded: schema 2's JPEG layout stores `frames` as (T,) encoded
            # frames with `height` and `width` attributes (store/frames.py).
            {"frames": D(("T", "H", "W", 3), "u"), "timestamps": D(("T",), "f")},
            description="decoded RGB frames and their times in seconds",
            extra_attrs=("source", "source_fps", "source_size"),
            schema=2,
        ),
        KindSpec(
            "features",
            {"features": D(("N", "D"), "f"), "centers": D(("N",), "iu")},
            binds_num_frames=None,
            description="one feature vector per snippet, with its centre frame",
            extra_attrs=("snippet", "stride", "backbone", "stream"),
        ),
        KindSpec(
            "scores",
            {
                "probs": D(("T", "C", "H", "W"), "f"),
                # Sep3D's action head (segment-3d with a sep3d+head checkpoint): per-frame
                # action softmax, A = len(action_names); NaN rows: no predicted actor
                "action_scores": D(("T", "A"), "f", optional=True),
            },
            needs_class_names=True,
            description="per-pixel class posteriors (and, optionally, per-frame action scores)",
            extra_attrs=("spatial_stride", "action_names"),
            names_attrs={"A": "action_names"},
        ),
        KindSpec(
            "frame_scores",
            {"probs": D(("T", "C"), "f")},
            needs_class_names=True,
            description="per-frame class posteriors",
        ),
        KindSpec(
            "labels",
            {"labels": D(("T", "H", "W"), "u")},
            needs_class_names=True,
            description="class index of every pixel of every frame",
        ),
        KindSpec(
            "proposals",
            {"segments": D(("N", 2), "f"), "scores": D(("N",), "f")},
            description="class-agnostic [start, end) frame segments with scores",
        ),
        KindSpec(
            "detections",
            {"segments": D(("N", 2), "f"), "labels": D(("N",), "iu"), "scores": D(("N",), "f")},
            needs_class_names=True,
            description="[start, end) frame segments with a class index and a score",
        ),
        KindSpec(
            "hmm",
            {"prior": D(("C",), "f"), "transition": D(("C", "C"), "f")},
            needs_class_names=True,
            binds_num_frames=None,
            description="initial distribution and transition matrix over classes",
        ),
    )
}
