"""The alternation loop of Segment-tube (§2.3) with stub steps."""

from __future__ import annotations

import numpy as np
import pytest

from vidseg_cli.stages.segment_tube import alternate, changes
from vidseg_cli.stages.segment_tube_spatial import RoundResult
from vidseg_cli.stages.segment_tube_temporal import TemporalResult

T = 6


def temporal_result(labels, video_class=1):
    labels = np.asarray(labels, np.int64)
    z = np.zeros(0)
    return TemporalResult(flag=z, clip_label=z, clip_score=z, video_class=video_class,
                          alpha=labels.astype(float), labels=labels,
                          segments=np.zeros((0, 2), np.int64), segment_labels=z, segment_scores=z)


class Spatial:
    """Sets `per_round[r]` nodes to foreground in round r, recording what it was given."""

    def __init__(self, flips):
        self.flips, self.calls = list(flips), []

    def __call__(self, mask, frames):
        self.calls.append((mask.copy(), np.asarray(frames).copy()))
        new = mask.copy()
        k = self.flips[len(self.calls) - 1]
        new[:k] = ~new[:k]
        return RoundResult(new, changed=k, nodes=len(mask), energy_before=2.0, energy_after=1.0,
                           skipped=False)


def test_stops_when_labels_and_mask_settle():
    seen = []

    def temporal(mask):
        seen.append(mask.copy())
        return temporal_result([0, 1, 1, 1, 0, 0])

    spatial = Spatial([30, 0, 0])
    res = alternate(np.zeros(100, bool), temporal, spatial, rounds=3)
    assert res.converged and len(res.rounds) == 2
    assert [r.changed for r in res.rounds] == [30, 0]
    assert [r.labels_changed for r in res.rounds] == [T, 0]
    np.testing.assert_array_equal(spatial.calls[0][1], [1, 2, 3])  # the frames labelled k'
    assert seen[1][:30].all() and not seen[1][30:].any()  # round 2 sees round 1's mask
    assert res.mask[:30].all()


def test_small_change_counts_as_settled_but_label_change_does_not():
    labels = iter([[0, 1, 1, 0, 0, 0], [0, 1, 1, 1, 0, 0], [0, 1, 1, 1, 0, 0]])
    res = alternate(np.zeros(200, bool), lambda m: temporal_result(next(labels)),
                    Spatial([50, 1, 1]), rounds=5)
    # round 2: l changed; round 3: l equal and 1 of 200 nodes (< 1 %) changed
    assert res.converged and len(res.rounds) == 3
    assert [r.labels_changed for r in res.rounds] == [T, 1, 0]


def test_cap_on_rounds():
    res = alternate(np.zeros(100, bool), lambda m: temporal_result([1] * T), Spatial([5, 5, 5]),
                    rounds=3)
    assert not res.converged and len(res.rounds) == 3
    assert changes(res.rounds)["round_nodes_changed"] == [5, 5, 5]


def test_no_action_frames_runs_no_cut():
    spatial = Spatial([10, 10])
    res = alternate(np.ones(50, bool), lambda m: temporal_result([0] * T, video_class=0), spatial)
    assert spatial.calls == [] and res.mask.all()
    assert res.converged and len(res.rounds) == 2
    assert all(r.skipped and r.nodes == 0 and r.frames_kept == 0 for r in res.rounds)
    assert changes(res.rounds)["round_video_class"] == [0, 0]


def test_one_round():
    res = alternate(np.zeros(10, bool), lambda m: temporal_result([1] * T), Spatial([3]), rounds=1)
    assert len(res.rounds) == 1 and not res.converged and res.mask[:3].all()
    with pytest.raises(ValueError):
        alternate(np.zeros(10, bool), lambda m: temporal_result([1] * T), Spatial([3]), rounds=0)
