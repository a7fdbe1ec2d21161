"""Segment-tube's alternation of the temporal and spatial steps (Segment-tube §2.3).

    B <- B_o (saliency)
    repeat r = 1..R:
        k', l_1..l_T, detections <- TEMPORAL(V, B)        §2.1, Eq. 1-4
        B <- SPATIAL(V, B, {t : l_t = k'})                §2.2, Eq. 5-7
    until "practical convergence"

The two steps come in as callables, so this loop knows nothing of networks or graphs:
`temporal(mask) -> TemporalResult` (stages/segment_tube_temporal.py) and
`spatial(mask, frames) -> RoundResult` (stages/segment_tube_spatial.py), the mask being
one 0/1 label per superpixel.

Stopping (the paper says only "practical convergence") [U]: after a round whose frame
labels l equal the previous round's and whose cut changed fewer than `tolerance` (1 %) of
its nodes, or after `rounds` rounds (3). The cap matters: the GMMs are re-fitted every
round with no hard constraint and can drift. A round whose video class is 0 (no action
clip) or that labels no frame k' runs no cut and keeps B.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from vidseg_cli.stages.segment_tube_spatial import RoundResult
from vidseg_cli.stages.segment_tube_temporal import TemporalResult

ROUNDS = 3  # the cap on rounds [U]
TOLERANCE = 0.01  # fraction of the cut's nodes below which B counts as unchanged [U]

TemporalStep = Callable[[np.ndarray], TemporalResult]
SpatialStep = Callable[[np.ndarray, np.ndarray], RoundResult]


@dataclass(frozen=True)
class RoundRecord:
    """What one round did."""

    video_class: int  # k' of this round's temporal step
    frames_kept: int  # frames with l_t = k', the frames the cut ran on
    labels_changed: int  # frames whose l_t differs from the previous round's (all T in round 1)
    nodes: int  # superpixels in the cut (0: no cut)
    changed: int  # superpixels whose label the cut changed
    skipped: bool  # no cut: no frame labelled k', or too few nodes on a side for the GMMs
    energy_before: float  # E(B) before and after the cut, under this round's GMMs (NaN: no cut)
    energy_after: float


@dataclass
class AlternationResult:
    temporal: TemporalResult  # the last round's temporal step
    mask: np.ndarray  # N bool, B after the last round
    rounds: list[RoundRecord]
    converged: bool  # stopped by the rule, not by the cap


def alternate(mask: np.ndarray, temporal: TemporalStep, spatial: SpatialStep,
              rounds: int = ROUNDS, tolerance: float = TOLERANCE) -> AlternationResult:
    """Alternate the two steps from `mask` (B_o) until they agree or `rounds` run out."""
    if rounds < 1:
        raise ValueError(f"rounds must be >= 1, got {rounds}")
    mask = np.asarray(mask).astype(bool)
    records: list[RoundRecord] = []
    previous: np.ndarray | None = None
    result: TemporalResult | None = None
    converged = False
    for _ in range(rounds):
        result = temporal(mask)
        kept = (np.flatnonzero(result.labels == result.video_class) if result.video_class >= 1
                else np.zeros(0, np.int64))
        step = spatial(mask, kept) if len(kept) else None
        if step is not None:
            mask = np.asarray(step.labels).astype(bool)
        labels_changed = (len(result.labels) if previous is None
                          else int((previous != result.labels).sum()))
        records.append(RoundRecord(
            video_class=int(result.video_class), frames_kept=int(len(kept)),
            labels_changed=labels_changed,
            nodes=step.nodes if step else 0, changed=step.changed if step else 0,
            skipped=step is None or step.skipped,
            energy_before=step.energy_before if step else float("nan"),
            energy_after=step.energy_after if step else float("nan")))
        if previous is not None and labels_changed == 0 and _settled(records[-1], tolerance):
            converged = True
            break
        previous = result.labels
    assert result is not None
    return AlternationResult(result, mask, records, converged)


def _settled(record: RoundRecord, tolerance: float) -> bool:
    return record.changed == 0 or record.changed < tolerance * record.nodes


def changes(records: Sequence[RoundRecord]) -> dict[str, list]:
    """The per-round figures as lists, one entry per round (the files' attributes)."""
    return {
        "round_video_class": [r.video_class for r in records],
        "round_frames_kept": [r.frames_kept for r in records],
        "round_labels_changed": [r.labels_changed for r in records],
        "round_nodes": [r.nodes for r in records],
        "round_nodes_changed": [r.changed for r in records],
        "round_skipped": [bool(r.skipped) for r in records],
    }
