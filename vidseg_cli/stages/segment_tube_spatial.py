"""Segment-tube's spatial action segmentation (§2.2, Eq. (5)-(7)), one round.

Over the superpixels of the frames the temporal step kept, minimise

    E(B) = sum_i D_i(b_i) + sum_{(i,v) in N} S_iv(b_i, b_v)                       (5)
    D_i(b) = -log(beta U_b^col(s_i) + (1 - beta) U_b^loc(s_i))                     (6)
    S_iv = [b_i != b_v] exp(-||c_i - c_v||^2)                                       (7)

by one exact graph cut (stages/graphcut.py). Where the paper is silent (see
docs/segment_tube.md, "Spatial segmentation"):

- U^col and U^loc come from two colour GMMs (5 components, on mean Lab / 255) and two
  location GMMs (3 components, on centroids) per side, fitted to the nodes' current
  labels; full covariances, reg_covar 1e-3, k-means initialisation, seed 0.
- Raw densities of a 3-D and a 2-D model are not comparable, so each is normalised per
  node, U_1 = p(.|fg) / (p(.|fg) + p(.|bg)) and U_0 = 1 - U_1, before Eq. (6) mixes them;
  the mixture is clipped at 1e-6 inside the log.
- Eq. (7) as written weighs every edge 0.4-1 on [0,1] colours and the cut collapses to
  all-background on real videos, so the default `normalized` form is GrabCut's,
  lambda exp(-||dc||^2 / (2 <||dc||^2>)) with <.> the mean over the graph's edges;
  `literal` keeps Eq. (7) (times lambda). Spatial and temporal edges are weighed alike.
- With fewer than `min_side` nodes on either side the GMMs are not fitted and B is kept.
- Videos longer than `block_frames` selected frames are cut in blocks of that many frames
  (edges between blocks are left out of the energy), with one set of GMMs for the video.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable
from dataclasses import asdict, dataclass

import numpy as np
from scipy.special import expit
from sklearn.exceptions import ConvergenceWarning
from sklearn.mixture import GaussianMixture

from vidseg_cli.stages.graphcut import cut_energy, min_cut
from vidseg_cli.stages.superpixels import Superpixels

__all__ = [
    "PAIRWISE",
    "AppearanceModels",
    "RoundResult",
    "SpatialParams",
    "SpatialProblem",
    "build_problem",
    "data_term",
    "fit_models",
    "foreground_probability",
    "pairwise_weights",
    "segment_round",
]

PAIRWISE = ("normalized", "literal")


@dataclass(frozen=True)
class SpatialParams:
    beta: float = 0.5  # Eq. (6): weight of colour against location
    colour_components: int = 5  # per side, GrabCut's count
    location_components: int = 3  # per side
    pairwise: str = "normalized"  # Eq. (7) form: normalized (GrabCut) or literal
    pairwise_weight: float = 1.0  # lambda, times every S_iv
    min_side: int = 10  # fewer nodes than this on a side: no cut, B kept
    reg_covar: float = 1e-3  # added to GMM covariance diagonals
    min_prob: float = 1e-6  # Eq. (6)'s mixture is clipped here inside -log
    block_frames: int = 500  # at most this many frames in one cut
    seed: int = 0  # GMM k-means initialisation

    def __post_init__(self) -> None:
        if not 0.0 <= self.beta <= 1.0:
            raise ValueError(f"beta must be in [0, 1], got {self.beta}")
        if self.pairwise not in PAIRWISE:
            raise ValueError(f"pairwise must be one of {', '.join(PAIRWISE)}, got {self.pairwise!r}")
        if not self.pairwise_weight >= 0:
            raise ValueError(f"pairwise_weight must be >= 0, got {self.pairwise_weight}")
        for name in ("colour_components", "location_components", "min_side", "block_frames"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if not 0.0 < self.min_prob < 1.0:
            raise ValueError(f"min_prob must be in (0, 1), got {self.min_prob}")

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


@dataclass
class AppearanceModels:
    """The four GMMs of Eq. (6), each pair as (background, foreground)."""

    colour: tuple[GaussianMixture, GaussianMixture]
    location: tuple[GaussianMixture, GaussianMixture]


def _fit(x: np.ndarray, components: int, params: SpatialParams) -> GaussianMixture:
    gmm = GaussianMixture(
        n_components=min(components, len(x)),
        covariance_type="full",
        reg_covar=params.reg_covar,
        init_params="kmeans",
        random_state=params.seed,
    )
    with warnings.catch_warnings():
        # flat regions give fewer distinct colours than components; reg_covar copes
        warnings.simplefilter("ignore", ConvergenceWarning)
        return gmm.fit(x)


def fit_models(
    colour: np.ndarray, centroid: np.ndarray, labels: np.ndarray, params: SpatialParams
) -> AppearanceModels | None:
    """GMMs of the nodes' colours (N x 3) and centroids (N x 2) on each side of the 0/1
    labels (N,); None when a side has fewer than params.min_side nodes."""
    fg = np.asarray(labels).astype(bool)
    if min(fg.sum(), (~fg).sum()) < params.min_side:
        return None
    return AppearanceModels(
        colour=tuple(_fit(colour[m], params.colour_components, params) for m in (~fg, fg)),
        location=tuple(_fit(centroid[m], params.location_components, params) for m in (~fg, fg)),
    )


def foreground_probability(
    models: AppearanceModels, colour: np.ndarray, centroid: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """(U_1^col, U_1^loc), each N: p(.|fg) / (p(.|fg) + p(.|bg)), from log densities."""
    bg, fg = models.colour
    u_col = expit(fg.score_samples(colour) - bg.score_samples(colour))
    bg, fg = models.location
    u_loc = expit(fg.score_samples(centroid) - bg.score_samples(centroid))
    return u_col, u_loc


def data_term(
    models: AppearanceModels, colour: np.ndarray, centroid: np.ndarray, params: SpatialParams
) -> np.ndarray:
    """Eq. (6): N x 2 costs D_i(0), D_i(1)."""
    u_col, u_loc = foreground_probability(models, colour, centroid)
    fg = params.beta * u_col + (1.0 - params.beta) * u_loc  # N, beta U_1^col + (1-beta) U_1^loc
    mix = np.stack([1.0 - fg, fg], axis=1)  # N x 2; U_0 = 1 - U_1 on both models
    return -np.log(np.maximum(mix, params.min_prob))


def pairwise_weights(colour: np.ndarray, edges: np.ndarray, params: SpatialParams) -> np.ndarray:
    """Eq. (7)'s weight of each edge (E,), in the `normalized` or `literal` form."""
    if len(edges) == 0:
        return np.zeros(0)
    dist = ((colour[edges[:, 0]] - colour[edges[:, 1]]) ** 2).sum(axis=1)  # E
    if params.pairwise == "normalized":
        mean = dist.mean()
        dist = dist / (2.0 * mean) if mean > 0 else np.zeros_like(dist)
    return params.pairwise_weight * np.exp(-dist)


@dataclass
class SpatialProblem:
    """Eq. (5) over the chosen nodes, with fixed GMMs; local node ids 0..n-1."""

    nodes: np.ndarray  # n global superpixel ids
    block: np.ndarray  # n block index of each node
    unary: np.ndarray  # n x 2
    edges: np.ndarray  # E x 2 local ids, both ends in one block
    weights: np.ndarray  # E
    models: AppearanceModels

    def energy(self, labels: np.ndarray) -> float:
        """E(B) of a labelling of the problem's nodes (n,)."""
        return cut_energy(self.unary, self.edges, self.weights, labels)

    def solve(self) -> np.ndarray:
        """The minimising labelling (n,) bool, one cut per block."""
        out = np.zeros(len(self.nodes), dtype=bool)
        edge_block = self.block[self.edges[:, 0]]  # E
        for b in np.unique(self.block):
            local = np.flatnonzero(self.block == b)
            index = np.full(len(self.nodes), -1)
            index[local] = np.arange(len(local))
            edges = index[self.edges[edge_block == b]]
            out[local] = min_cut(self.unary[local], edges, self.weights[edge_block == b])
        return out


def build_problem(
    sp: Superpixels, labels: np.ndarray, frames: Iterable[int], params: SpatialParams
) -> SpatialProblem | None:
    """Eq. (5) on the superpixels of `frames` with GMMs fitted to their current labels
    (N,); None when a side has too few nodes to fit them."""
    chosen = np.unique(np.fromiter(frames, dtype=np.int64))
    nodes = np.flatnonzero(np.isin(sp.frame, chosen))  # n
    labels = np.asarray(labels).astype(bool)
    models = fit_models(sp.colour[nodes], sp.centroid[nodes], labels[nodes], params)
    if models is None:
        return None
    rank = np.searchsorted(chosen, sp.frame[nodes])  # n, position among the chosen frames
    block = rank // params.block_frames
    index = np.full(sp.num_nodes, -1)
    index[nodes] = np.arange(len(nodes))
    edges = index[sp.edges]  # E x 2 local, -1 outside
    edges = edges[(edges >= 0).all(axis=1)]
    edges = edges[block[edges[:, 0]] == block[edges[:, 1]]]
    return SpatialProblem(
        nodes=nodes,
        block=block,
        unary=data_term(models, sp.colour[nodes], sp.centroid[nodes], params),
        edges=edges,
        weights=pairwise_weights(sp.colour[nodes], edges, params),
        models=models,
    )


@dataclass
class RoundResult:
    labels: np.ndarray  # N bool, B after the round (unchanged outside the frames given)
    changed: int  # nodes whose label the cut changed
    nodes: int  # nodes in the cut
    energy_before: float  # E(B) of the labels given, under this round's GMMs
    energy_after: float  # E(B) of the new labels, under the same GMMs
    skipped: bool  # True when a side had fewer than min_side nodes and B was kept


def segment_round(
    sp: Superpixels, labels: np.ndarray, frames: Iterable[int], params: SpatialParams | None = None
) -> RoundResult:
    """One spatial round (§2.2): GMMs from B on `frames`, one cut, the new B."""
    params = params or SpatialParams()
    labels = np.asarray(labels).astype(bool)
    if labels.shape != (sp.num_nodes,):
        raise ValueError(f"labels must be ({sp.num_nodes},), got {labels.shape}")
    problem = build_problem(sp, labels, frames, params)
    if problem is None:
        return RoundResult(labels.copy(), 0, 0, float("nan"), float("nan"), True)
    old = labels[problem.nodes]
    new = problem.solve()
    out = labels.copy()
    out[problem.nodes] = new
    return RoundResult(
        labels=out,
        changed=int((old != new).sum()),
        nodes=len(problem.nodes),
        energy_before=problem.energy(old),
        energy_after=problem.energy(new),
        skipped=False,
    )
