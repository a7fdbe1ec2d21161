"""S-CNN's overlap loss (Eq. 1-3): autograd against the paper's gradient (Eq. 4-6), and the
properties §3.2 states."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from vidseg_cli.train.losses import overlap_loss, overlap_loss_grad

torch.set_num_threads(1)


@pytest.mark.parametrize("alpha,lam", [(0.25, 1.0), (1.0, 1.0), (0.5, 0.3)])
def test_autograd_gradient_equals_eq_5_and_6(alpha, lam):
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(12, 5, generator=g, dtype=torch.float64) * 2
    labels = torch.tensor([0, 1, 2, 3, 4, 0, 1, 2, 3, 4, 0, 2])
    overlap = torch.rand(12, generator=g, dtype=torch.float64) * 0.5 + 0.5
    x = logits.clone().requires_grad_(True)
    overlap_loss(x, labels, overlap, alpha=alpha, lam=lam).backward()
    # overlap_loss computes in float32; compare at float32 precision.
    torch.testing.assert_close(x.grad, overlap_loss_grad(logits, labels, overlap, alpha, lam),
                               rtol=1e-4, atol=1e-6)


def test_value_by_hand():
    logits = torch.tensor([[0.0, math.log(3.0)], [math.log(3.0), 0.0]])  # P = (.25,.75), (.75,.25)
    labels = torch.tensor([1, 0])
    overlap = torch.tensor([0.5, 0.2])
    alpha = 0.25
    softmax = (-math.log(0.75) - math.log(0.75)) / 2  # Eq. (2)
    over = 0.5 * (0.75 ** 2 / 0.5 ** alpha - 1) / 2  # Eq. (3): only the positive counts
    got = overlap_loss(logits, labels, overlap, alpha=alpha, lam=1.0)
    assert got.item() == pytest.approx(softmax + over, rel=1e-6)


def test_background_is_plain_softmax_loss():
    logits = torch.randn(6, 4, generator=torch.Generator().manual_seed(1))
    labels = torch.zeros(6, dtype=torch.long)
    got = overlap_loss(logits, labels, torch.rand(6))
    assert got.item() == pytest.approx(F.cross_entropy(logits, labels).item(), rel=1e-6)


@pytest.mark.parametrize("v", [1.0, 0.8, 0.55])
def test_positive_minimum_at_sqrt_v_alpha(v):
    # §3.2: for a positive segment L is lowest at P^(k) = sqrt(v^alpha).
    alpha = 0.25
    ps = torch.linspace(0.5, 0.999, 2000)
    logits = torch.stack([torch.zeros_like(ps), torch.log(ps / (1 - ps))], 1)
    losses = torch.stack([overlap_loss(lg[None], torch.tensor([1]), torch.tensor([v]), alpha=alpha)
                          for lg in logits])
    p_min = ps[losses.argmin()].item()
    assert p_min == pytest.approx(math.sqrt(v ** alpha), abs=2e-3)
    # ... and a lower overlap is punished more at the same score.
    if v < 1:
        hi = overlap_loss(logits[-1:], torch.tensor([1]), torch.tensor([1.0]), alpha=alpha)
        lo = overlap_loss(logits[-1:], torch.tensor([1]), torch.tensor([v]), alpha=alpha)
        assert lo > hi
