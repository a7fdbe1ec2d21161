"""hmm-fit: the HMM of 3DFCN §3.5 counted from ground truth: the initial distribution
P(l_1) and one transition matrix P(l_t | l_(t-1)) shared by all pixels (stages/hmm/fit.py).

    fit = load(Options(smoothing=0.5))
    summary = fit.run({"ground-truth": ["a.labels.h5", "puppet_mask/catch"]}, {"hmm": "hmm.h5"})

A set stage: every ground-truth source (api/gt_sources.py) goes into one count, and all
of them must share one class list.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from vidseg_cli import store
from vidseg_cli.api.base import Ports, Summary, many, one
from vidseg_cli.api.gt_sources import gt_sources, gt_videos
from vidseg_cli.datasets.segment_data import FOREGROUND_CLASSES, to_target
from vidseg_cli.errors import InputError
from vidseg_cli.stages.hmm.fit import TransitionCounts, check_labels, same_classes

STAGE = "hmm-fit"


@dataclass
class Options:
    smoothing: float = 1.0  # additive: (count + s) / (total + C s); 0 = raw frequencies
    subset: str | None = None  # the subset of temporal ground truth to count
    fps: float | None = None  # frame rate of temporal ground truth that carries none
    foreground: bool = False  # every action class merged into one: background, foreground
    command: str | None = None  # argv for provenance


@dataclass
class HmmFitSummary(Summary):
    output: str
    classes: int
    videos: int
    sequences: int
    transitions: int
    unseen_classes: list[str]  # classes the ground truth never shows
    self_transition: dict[str, float]
    notes: list[str]  # lines on how temporal ground truth was read


def load(opts: Options) -> HmmFitter:
    return HmmFitter(opts)


class HmmFitter:
    """Counts one HMM from the ground truth of a set."""

    def __init__(self, opts: Options):
        self.opts = opts

    def run(self, inputs: Ports, outputs: Ports) -> HmmFitSummary:
        """Count the HMM of inputs["ground-truth"] (paths) and write outputs["hmm"].
        `foreground` merges every action class into one (the class list of models trained
        with a foreground target)."""
        opts = self.opts
        gt_paths = many(inputs, "ground-truth")
        if not gt_paths:
            raise TypeError(f"{STAGE}: no 'ground-truth' paths among {sorted(inputs)}")
        out = one(outputs, "hmm", STAGE)
        notes: list[str] = []
        sources = _once(gt_sources(gt_paths), notes)
        counts: TransitionCounts | None = None
        names: list[str] | None = None
        first_src = None
        used = []  # the files that gave videos, for provenance
        videos = 0
        for src, vid, labels, cls in gt_videos(sources, opts.subset, opts.fps, notes):
            if opts.foreground:
                try:  # the class range is checked before the classes are merged
                    check_labels(labels, len(cls))
                except ValueError as e:
                    raise InputError(src, f"video '{vid}': {e}") from None
                labels, cls = to_target(labels, "foreground"), list(FOREGROUND_CLASSES)
            if names is None:
                names, first_src = cls, src
                counts = TransitionCounts(len(names))
            elif (diff := same_classes(cls, names)) is not None:
                raise InputError(src, f"class list differs from {first_src}'s ({diff}); fit one HMM per class list")
            try:
                counts.add(np.asarray(labels))
            except ValueError as e:
                raise InputError(src, f"video '{vid}': {e}") from None
            if src not in used:
                used.append(src)
            videos += 1
        if counts is None or videos == 0:
            raise InputError(gt_paths[0], "no ground-truth videos found")
        prior, trans = counts.estimate(opts.smoothing)
        store.write_hmm(
            out, prior, trans, names, inputs=used, command=opts.command,
            attrs={
                "smoothing": float(opts.smoothing),
                "num_videos": videos,
                "num_sequences": int(counts.sequences),
                "num_transitions": int(counts.pairs.sum()),
            },
        )
        return HmmFitSummary(
            output=str(out),
            classes=len(names),
            videos=videos,
            sequences=int(counts.sequences),
            transitions=int(counts.pairs.sum()),
            unseen_classes=[names[i] for i in counts.unseen()],
            self_transition={n: float(trans[i, i]) for i, n in enumerate(names)},
            notes=notes,
        )


def _once(sources: list[tuple[str, Path]], notes: list[str]) -> list[tuple[str, Path]]:
    """Each source once (a file given by name and inside a folder), with a note per repeat:
    a video counted twice would weigh its transitions double."""
    seen: set[Path] = set()
    out = []
    for fmt, p in sources:
        key = p.resolve()
        if key in seen:
            notes.append(f"{p}: given more than once; counted once")
            continue
        seen.add(key)
        out.append((fmt, p))
    return out
