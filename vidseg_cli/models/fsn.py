"""FSN's temporal CNN (FSN §3.3) and weakly supervised FSN (WFSN, §3.4).

FSN: snippet features (N x D, one per snippet, from its centre frame, §3.2) -> three 1-D
convolutions of kernel 3, stride 1, dilation 1, 2 and 4 (padding keeps N), each with ReLU
-> a classification convolution (kernel 1) to K+1 scores (K actions + background) ->
linear upsampling from snippets to frames (§3.3's "BilinearUpsampling1D", no parameters)
-> frame-wise softmax (Eq. 1; `probs`). A snippet's score sees 1 + 2(1+2+4) = 15 snippets.

Upsampling alignment: snippet i's score belongs to its centre frame (`centers[i]`; for
consecutive snippets of L frames, i*L + (L-1)/2, i.e. frame 2 of 0..4 for L = 5). A frame
between two centres gets the linear interpolation of their scores; frames before the first
or after the last centre get the nearest one's. With the default centres this equals
F.interpolate(mode="linear", align_corners=False) by a factor L.

WFSN: the same temporal CNN with K outputs (no background), and temporal pooling over
snippets (Eq. 2: global max by default, or average) to one video score (softmax in the
loss, Eq. 3). At test time (§4.3) the pooling is removed: `frame_scores` gives per-frame
softmax over the K classes, upsampled as in FSN.

The paper gives no channel width for the temporal convolutions; ours is `hidden` (256).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from vidseg_cli.models.common import ModelInputError
from vidseg_cli.models.registry import MODELS

FSN_DILATIONS = (1, 2, 4)  # §3.3
POOLINGS = ("max", "avg")  # §3.4: GMP (default) or GAP


def consecutive_snippet_centers(num_snippets: int, snippet: int, device=None) -> torch.Tensor:
    """Centre frame of consecutive snippets of `snippet` frames: i*L + (L-1)/2 (float)."""
    return torch.arange(num_snippets, dtype=torch.float64, device=device) * snippet + (snippet - 1) / 2


def upsample_to_frames(
    scores: torch.Tensor,  # B x C x N scores, one per snippet
    centers: torch.Tensor | Sequence[float],  # N increasing frame positions of the snippets
    num_frames: int,  # T frames to produce (0 .. T-1)
) -> torch.Tensor:
    """Linear interpolation between snippet centres, nearest value outside. B x C x T."""
    c = torch.as_tensor(centers, dtype=torch.float64, device=scores.device)
    n = scores.shape[-1]
    if c.dim() != 1 or c.numel() != n:
        raise ModelInputError(f"need one centre per snippet ({n}), got {tuple(c.shape)}")
    if n > 1 and not bool((c[1:] > c[:-1]).all()):
        raise ModelInputError("snippet centres must increase")
    t = torch.arange(num_frames, dtype=torch.float64, device=scores.device)
    if n == 1:
        return scores.expand(*scores.shape[:-1], num_frames).clone()
    hi = torch.searchsorted(c, t, right=True).clamp(1, n - 1)  # first centre > t (clamped)
    lo = hi - 1
    w = ((t - c[lo]) / (c[hi] - c[lo])).clamp(0, 1).to(scores.dtype)  # T
    return scores[..., lo] * (1 - w) + scores[..., hi] * w  # B x C x T


class TemporalCNN(nn.Module):
    """Three dilated 1-D convs (kernel 3; dilation 1, 2, 4) with ReLU and a kernel-1 classifier."""

    def __init__(
        self,
        in_features: int,  # D, the feature size of the 2D backbone
        num_outputs: int,  # K+1 (FSN) or K (WFSN)
        hidden: int = 256,  # channels of the three temporal convs (ours; not in the paper)
        dilations: Sequence[int] = FSN_DILATIONS,  # §3.3: 1, 2, 4
        dropout: float = 0.0,  # before the classifier (not in the paper; off by default)
    ):
        super().__init__()
        layers: list[nn.Module] = []
        c = in_features
        for d in dilations:
            layers += [nn.Conv1d(c, hidden, 3, padding=d, dilation=d), nn.ReLU(inplace=True)]
            c = hidden
        self.body = nn.Sequential(*layers)
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Conv1d(hidden, num_outputs, 1)
        self.in_features = in_features
        self.receptive_field = 1 + 2 * sum(int(d) for d in dilations)  # in snippets

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: B x N x D snippet features -> B x C x N snippet scores."""
        if x.dim() != 3 or x.shape[-1] != self.in_features:
            raise ModelInputError(
                f"the temporal CNN takes B x N x {self.in_features} features, got {tuple(x.shape)}"
            )
        return self.classifier(self.dropout(self.body(x.transpose(1, 2))))  # B x C x N


class FSN(nn.Module):
    """Strongly supervised FSN: frame-level logits over K+1 classes."""

    def __init__(
        self,
        in_features: int,  # D, the feature size of the 2D backbone
        num_classes: int,  # K+1: background + K actions (index 0 = background)
        hidden: int = 256,  # temporal conv channels (ours)
        dropout: float = 0.0,  # before the classifier (not in the paper; off by default)
    ):
        super().__init__()
        self.num_classes = num_classes
        self.tcnn = TemporalCNN(in_features, num_classes, hidden, FSN_DILATIONS, dropout)

    def snippet_logits(self, x: torch.Tensor) -> torch.Tensor:
        """B x N x D -> B x (K+1) x N."""
        return self.tcnn(x)

    def forward(
        self,
        x: torch.Tensor,  # B x N x D snippet features
        snippet: int = 5,  # frames per snippet (§3.5: 5), used when centers is None
        num_frames: int | None = None,  # T; default N * snippet
        centers: torch.Tensor | Sequence[float] | None = None,  # N centre frames
    ) -> torch.Tensor:
        """Frame-level logits B x (K+1) x T (softmax over dim 1 gives Eq. 1)."""
        s = self.snippet_logits(x)
        n = s.shape[-1]
        if centers is None:
            centers = consecutive_snippet_centers(n, snippet, s.device)
        t = n * snippet if num_frames is None else num_frames
        return upsample_to_frames(s, centers, t)

    def probs(self, x: torch.Tensor, **kwargs) -> torch.Tensor:
        """Frame-wise softmax (Eq. 1): B x (K+1) x T."""
        return self.forward(x, **kwargs).softmax(dim=1)


class WFSN(nn.Module):
    """Weakly supervised FSN: K snippet scores, pooled over snippets to one video score."""

    def __init__(
        self,
        in_features: int,  # D, the feature size of the 2D backbone
        num_classes: int,  # K actions (no background, §3.4)
        pooling: str = "max",  # "max" (GMP, the paper's default) or "avg" (GAP)
        hidden: int = 256,  # temporal conv channels (ours)
        dropout: float = 0.0,  # before the classifier (not in the paper; off by default)
    ):
        super().__init__()
        if pooling not in POOLINGS:
            raise ValueError(f"pooling must be one of {POOLINGS}, got {pooling!r}")
        self.num_classes = num_classes
        self.pooling = pooling
        self.tcnn = TemporalCNN(in_features, num_classes, hidden, FSN_DILATIONS, dropout)

    def snippet_logits(self, x: torch.Tensor) -> torch.Tensor:
        """B x M x D -> B x K x M."""
        return self.tcnn(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Video-level logits (Eq. 2): B x M x D -> B x K."""
        s = self.snippet_logits(x)  # B x K x M
        return s.amax(dim=-1) if self.pooling == "max" else s.mean(dim=-1)

    def frame_scores(
        self,
        x: torch.Tensor,  # B x N x D snippet features
        snippet: int = 5,  # frames per snippet, used when centers is None
        num_frames: int | None = None,  # T; default N * snippet
        centers: torch.Tensor | Sequence[float] | None = None,  # N centre frames
    ) -> torch.Tensor:
        """§4.3: pooling removed; per-frame softmax over the K classes. B x K x T."""
        s = self.snippet_logits(x)
        n = s.shape[-1]
        if centers is None:
            centers = consecutive_snippet_centers(n, snippet, s.device)
        t = n * snippet if num_frames is None else num_frames
        return upsample_to_frames(s, centers, t).softmax(dim=1)


MODELS.register("fsn", FSN)
MODELS.register("wfsn", WFSN)


class FSNEndToEnd(nn.Module):
    """A 2D backbone and FSN's temporal CNN trained together from frames (FSN §3.5).

    The backbone's pooled features are standardized with fixed statistics (measured on the
    training snippets with the initial backbone) before the temporal CNN, as `train fsn`
    does with extracted features; the split fsn.ckpt carries them as its `preprocess`.
    """

    def __init__(
        self,
        backbone: str,  # registry name of the 2D backbone (resnet18, resnet50, vgg16)
        backbone_config: dict,  # its constructor arguments (num_classes 0)
        num_classes: int,  # K+1
        feature_mean: list[float],  # D feature statistics (see the class docstring)
        feature_std: list[float],
        hidden: int = 256,  # temporal conv channels
        dropout: float = 0.0,
    ):
        super().__init__()
        self.backbone = MODELS.build(backbone, **backbone_config)
        D = self.backbone.feature_dim
        if len(feature_mean) != D or len(feature_std) != D:
            raise ValueError(f"feature statistics must have {D} values")
        self.fsn = MODELS.build("fsn", in_features=D, num_classes=num_classes, hidden=hidden, dropout=dropout)
        self.register_buffer("mu", torch.tensor(feature_mean, dtype=torch.float32), persistent=False)
        self.register_buffer("sd", torch.tensor(feature_std, dtype=torch.float32), persistent=False)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """B x C x H x W -> B x D standardized features."""
        return (self.backbone.forward_features(x) - self.mu) / self.sd

    def forward(self, x: torch.Tensor, centers, num_frames: int) -> torch.Tensor:
        """x: B x N x C x H x W snippet inputs -> B x (K+1) x T frame logits."""
        b, n = x.shape[:2]
        f = self.features(x.flatten(0, 1).contiguous(memory_format=torch.channels_last)).view(b, n, -1)
        return self.fsn(f, centers=centers, num_frames=num_frames)  # B x (K+1) x T


MODELS.register("fsn-e2e", FSNEndToEnd)
