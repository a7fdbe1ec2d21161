"""Training losses named after the papers that define them.

`overlap_loss`: S-CNN §3.2, the localization network's loss, Eq. (1)-(3):

    L = L_softmax + lambda * L_overlap                                          (1)
    L_softmax = 1/N sum_n -log P_n^(k_n)                                        (2)
    L_overlap = 1/N sum_n 1/2 * ((P_n^(k_n))^2 / (v_n)^alpha - 1) * [k_n > 0]   (3)

P_n = softmax(O_n) of the fc8 outputs O_n, k_n the true class (0 = background), v_n the
segment's IoU with its ground-truth instance. Its gradient w.r.t. O_n^(i) is Eq. (4)-(6)
(`overlap_loss_grad`, the closed form the tests compare autograd with); for a positive
segment L is lowest at P^(k_n) = sqrt(v_n^alpha), so scores follow the overlap.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

SCNN_ALPHA = 0.25  # S-CNN §4.2 (MEXaction2 and THUMOS 2014)
SCNN_LAMBDA = 1.0  # S-CNN §3.2: "lambda = 1 works well in practice"


def overlap_loss(
    logits: torch.Tensor,  # N x (K+1) fc8 outputs O_n
    labels: torch.Tensor,  # N true classes k_n, 0 = background
    overlap: torch.Tensor,  # N IoU v_n with the ground truth (any value for background)
    alpha: float = SCNN_ALPHA,
    lam: float = SCNN_LAMBDA,
) -> torch.Tensor:
    """S-CNN Eq. (1): softmax loss plus lambda times the overlap loss of Eq. (3)."""
    logits = logits.float()
    logp = F.log_softmax(logits, dim=1)  # N x (K+1)
    logp_k = logp.gather(1, labels.long()[:, None])[:, 0]  # N: log P_n^(k_n)
    softmax_term = -logp_k.mean()  # Eq. (2)
    positive = (labels > 0).to(logits.dtype)
    # v^alpha for positives; 1 for background, whose term is multiplied by 0 anyway.
    v_alpha = torch.where(labels > 0, overlap.to(logits.dtype).clamp_min(1e-6) ** alpha,
                          torch.ones_like(positive))
    overlap_term = (0.5 * (torch.exp(2 * logp_k) / v_alpha - 1) * positive).mean()  # Eq. (3)
    return softmax_term + lam * overlap_term


def overlap_loss_grad(
    logits: torch.Tensor, labels: torch.Tensor, overlap: torch.Tensor,
    alpha: float = SCNN_ALPHA, lam: float = SCNN_LAMBDA,
) -> torch.Tensor:
    """dL/dO_n^(i) by S-CNN Eq. (4)-(6), written out (not autograd): N x (K+1)."""
    p = torch.softmax(logits.double(), dim=1)  # N x (K+1)
    n = p.shape[0]
    onehot = F.one_hot(labels.long(), p.shape[1]).double()
    p_k = (p * onehot).sum(1, keepdim=True)  # N x 1
    d_softmax = (p - onehot) / n  # Eq. (5): (P^(k)-1)/N at i = k, P^(i)/N elsewhere
    v_alpha = overlap.double().clamp_min(1e-6)[:, None] ** alpha
    pos = (labels > 0).double()[:, None]
    # Eq. (6): (P^(k))^2 / v^alpha * (1/N) * (1 - P^(k)) at i = k, * (-P^(i)) elsewhere.
    d_overlap = p_k ** 2 / v_alpha / n * (onehot - p) * pos
    return d_softmax + lam * d_overlap
