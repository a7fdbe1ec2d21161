"""The scipy min cut against brute force on small binary submodular energies."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from vidseg_cli.stages.graphcut import cut_energy, min_cut


def brute_force(unary, edges, weights):
    """Energies of every labelling of N nodes, and the labellings, in the same order."""
    n = len(unary)
    labellings = np.array(list(itertools.product([0, 1], repeat=n)), dtype=bool)
    energies = np.array([cut_energy(unary, edges, weights, b) for b in labellings])
    return energies, labellings


def random_graph(rng, n):
    unary = rng.uniform(0, 3, size=(n, 2))
    pairs = np.array([(i, j) for i in range(n) for j in range(i + 1, n)]).reshape(-1, 2)
    edges = pairs[rng.random(len(pairs)) < 0.5]
    weights = rng.uniform(0, 2, size=len(edges))
    return unary, edges, weights


def test_matches_brute_force_on_random_graphs():
    rng = np.random.default_rng(0)
    unique_cases = 0
    for case in range(200):
        n = 2 + case % 9  # 2..10 nodes
        unary, edges, weights = random_graph(rng, n)
        labels = min_cut(unary, edges, weights)
        energies, labellings = brute_force(unary, edges, weights)
        best = energies.min()
        assert cut_energy(unary, edges, weights, labels) <= best + 1e-2, case
        second = np.partition(energies, 1)[1]
        if second - best > 1e-2:
            unique_cases += 1
            np.testing.assert_array_equal(labels, labellings[energies.argmin()], err_msg=str(case))
    assert unique_cases > 100


def test_no_edges_gives_the_per_node_argmin():
    unary = np.array([[0.0, 1.0], [2.0, 0.5], [0.3, 0.2], [5.0, 5.5]])
    labels = min_cut(unary, np.zeros((0, 2), int), np.zeros(0))
    np.testing.assert_array_equal(labels, unary.argmin(axis=1).astype(bool))


@pytest.mark.parametrize("pairwise", [1e3, 1e9])
def test_huge_pairwise_gives_a_constant_labelling(pairwise):
    rng = np.random.default_rng(1)
    unary = rng.uniform(0, 1, size=(20, 2))
    unary[:, 1] += 0.5  # label 0 is cheaper in total
    unary[:3, 1] -= 2.0  # though three nodes prefer 1
    assert unary[:, 0].sum() < unary[:, 1].sum()
    edges = np.array([(i, i + 1) for i in range(19)])
    labels = min_cut(unary, edges, np.full(19, pairwise))
    assert not labels.any()
    assert min_cut(unary[:, ::-1], edges, np.full(19, pairwise)).all()


def test_duplicate_and_reversed_edges_add_up():
    unary = np.array([[0.0, 1.0], [1.0, 0.0]])  # the nodes disagree, cost 1 each to agree
    one = min_cut(unary, np.array([[0, 1]]), np.array([1.5]))
    split = min_cut(unary, np.array([[0, 1], [1, 0]]), np.array([0.75, 0.75]))
    assert one[0] == one[1]  # a weight of 1.5 > 1 makes agreeing cheaper
    assert split[0] == split[1]  # so do two halves of it
    apart = min_cut(unary, np.array([[0, 1]]), np.array([0.5]))
    np.testing.assert_array_equal(apart, [False, True])


def test_rejects_negative_weights():
    with pytest.raises(ValueError, match="submodular"):
        min_cut(np.zeros((2, 2)), np.array([[0, 1]]), np.array([-1.0]))
