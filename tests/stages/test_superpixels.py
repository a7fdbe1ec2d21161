"""SLIC superpixels and their spatio-temporal graph."""

from __future__ import annotations

import numpy as np
import pytest

from vidseg_cli.stages.superpixels import (
    SuperpixelParams,
    compute_superpixels,
    node_masks,
    working_frames,
)


@pytest.fixture(scope="module")
def video():
    """Four 60 x 80 frames: a textured background and a square moving right."""
    rng = np.random.default_rng(0)
    frames = rng.integers(90, 140, size=(4, 60, 80, 3)).astype(np.uint8)
    for t in range(4):
        frames[t, 20:40, 10 + 5 * t : 30 + 5 * t] = (200, 30, 30)
    return frames


@pytest.fixture(scope="module")
def sp(video):
    return compute_superpixels(video, SuperpixelParams(count=60))


def test_ids_are_contiguous_and_grouped_by_frame(sp, video):
    n = sp.num_nodes
    np.testing.assert_array_equal(np.unique(sp.labels), np.arange(n))
    for t in range(len(video)):
        ids = np.unique(sp.labels[t])
        np.testing.assert_array_equal(ids, np.flatnonzero(sp.frame == t))
        assert ids[-1] - ids[0] + 1 == len(ids)
    assert np.all(np.diff(sp.frame) >= 0)
    assert 10 < n / len(video) < 120  # SLIC seeds on a grid, then merges fragments


def test_features_are_normalised(sp, video):
    assert sp.colour.shape == (sp.num_nodes, 3) and sp.centroid.shape == (sp.num_nodes, 2)
    assert sp.colour.min() >= 0 and sp.colour.max() <= 1
    assert sp.centroid.min() > 0 and sp.centroid.max() < 1
    for t in range(len(video)):
        assert sp.area[sp.frame == t].sum() == 60 * 80


def test_graph_is_simple_and_symmetric(sp):
    n = sp.num_nodes
    for edges in (sp.spatial_edges, sp.temporal_edges):
        assert np.all(edges[:, 0] < edges[:, 1])  # no self loops, each pair once
        assert len(np.unique(edges, axis=0)) == len(edges)
    adjacency = np.zeros((n, n), dtype=bool)
    adjacency[sp.edges[:, 0], sp.edges[:, 1]] = True
    adjacency |= adjacency.T
    assert not adjacency.diagonal().any()
    assert len(np.unique(np.sort(sp.edges, axis=1), axis=0)) == len(sp.edges)
    np.testing.assert_array_equal(
        sp.frame[sp.spatial_edges[:, 0]], sp.frame[sp.spatial_edges[:, 1]]
    )
    np.testing.assert_array_equal(
        sp.frame[sp.temporal_edges[:, 0]] + 1, sp.frame[sp.temporal_edges[:, 1]]
    )


def test_edges_match_pixel_adjacency(sp):
    expected_spatial, expected_temporal = set(), set()
    lab = sp.labels
    for t, y, x in np.ndindex(*lab.shape):
        a = lab[t, y, x]
        for b in (lab[t, y, x + 1] if x + 1 < lab.shape[2] else a,
                  lab[t, y + 1, x] if y + 1 < lab.shape[1] else a):
            if a != b:
                expected_spatial.add((min(a, b), max(a, b)))
        if t + 1 < lab.shape[0]:
            expected_temporal.add((a, lab[t + 1, y, x]))
    assert set(map(tuple, sp.spatial_edges.tolist())) == expected_spatial
    assert set(map(tuple, sp.temporal_edges.tolist())) == expected_temporal


def test_one_frame_has_no_temporal_edges(video):
    sp = compute_superpixels(video[:1], SuperpixelParams(count=30))
    assert sp.temporal_edges.shape == (0, 2)
    assert len(sp.spatial_edges) > 0


def test_working_size_and_masks_back_at_full_size():
    frames = np.zeros((2, 480, 854, 3), np.uint8)
    frames[:, 100:300, 200:500] = 255
    assert working_frames(frames, 240).shape == (2, 240, 427, 3)
    assert working_frames(frames[:, :200, :300], 240).shape == (2, 200, 300, 3)
    sp = compute_superpixels(frames, SuperpixelParams(count=100))
    assert sp.labels.shape == (2, 240, 427)
    white = sp.colour[:, 0] > 0.5
    masks = node_masks(sp, white, (480, 854))
    assert masks.shape == (2, 480, 854)
    truth = frames[..., 0] > 0
    assert (masks & truth).sum() / (masks | truth).sum() > 0.97
