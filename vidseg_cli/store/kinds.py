"""The kinds of file vidseg stages exchange, their datasets and shapes (DESIGN.md table).

Symbolic sizes: T is bound to the root attribute `num_frames`, C to `len(class_names)`,
a symbol of `names_attrs` (A: `len(action_names)`) to its attribute's length; other names
(H, W, N, D) are bound by the first dataset that uses them, so every dataset of a file must
agree on them. An `optional` dataset may be absent; when present it is checked the same
way (and a symbol it uses from `names_attrs` requires that attribute).
"""

from __future__ import annotations

from vidseg_cli.store.base import DatasetSpec as D
from vidseg_cli.store.base import KindSpec

KINDS: dict[str, KindSpec] = {
    k.name: k
    for k in (
        KindSpec(
            "frames",
            {"frames": D(("T", "H", "W", 3), "u"), "timestamps": D(("T",), "f")},
            description="decoded RGB frames and their times in seconds",
            extra_attrs=("source", "source_fps", "source_size"),
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
