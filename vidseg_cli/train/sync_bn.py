"""`--sync-bn`: BatchNorm statistics of the global batch when training on several ranks.

Without it every rank normalises with the mean and variance of its own shard, so a
BatchNorm model (Sep3D's R(2+1)D encoder, the 2D ResNets) trains differently from one
process on the same global batch. With it, the training statistics are the global batch's
(Ioffe & Szegedy 2015, Alg. 1, over all ranks' items): on CUDA through torch's
SyncBatchNorm, on CPU (gloo; torch's SyncBatchNorm takes only GPU tensors) through
`GlobalBatchNorm`, which all-reduces per-channel sums with a differentiable all-reduce, so
the backward pass sums the statistics' gradients over the ranks too. The parameter and
buffer names are BatchNorm's, so checkpoints load into the plain model in one process.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

from vidseg_cli.train import distributed


class GlobalBatchNorm(_BatchNorm):
    """A BatchNorm (any of 1d/2d/3d: channels on dim 1) normalising training batches with
    the statistics of all ranks' items; in eval mode, or in one process, plain BatchNorm."""

    def _check_input_dim(self, x: torch.Tensor) -> None:
        if x.dim() < 2:
            raise ValueError(f"expected at least 2-D input (batch x channels ...), got {x.dim()}-D")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not (self.training and distributed.current().active):
            return super().forward(x)
        all_reduce = _AllSum.apply
        self._check_input_dim(x)
        C = x.shape[1]
        dims = [0, *range(2, x.dim())]
        shape = (1, C) + (1,) * (x.dim() - 2)
        n_local = x.new_full((1,), x.numel() // C if C else 0)
        # two passes (mean, then the centred squares) rather than E[x²] - E[x]²: no cancellation
        sums = all_reduce(torch.cat([x.sum(dims), n_local]))
        n = sums[C]
        mean = sums[:C] / n
        xc = x - mean.view(shape)
        var = all_reduce((xc * xc).sum(dims)) / n
        y = xc * torch.rsqrt(var + self.eps).view(shape)
        if self.affine:
            y = y * self.weight.view(shape) + self.bias.view(shape)
        if self.track_running_stats and self.running_mean is not None:
            with torch.no_grad():
                self.num_batches_tracked.add_(1)
                f = (1.0 / float(self.num_batches_tracked) if self.momentum is None
                     else self.momentum)
                unbiased = var * (n / (n - 1).clamp(min=1))
                self.running_mean.mul_(1 - f).add_(mean.detach(), alpha=f)
                self.running_var.mul_(1 - f).add_(unbiased.detach(), alpha=f)
        return y


class _AllSum(torch.autograd.Function):
    """The sum over the ranks, differentiable: the gradient of every rank's input is the
    sum of the ranks' output gradients (each rank's loss depends on every rank's input
    through the shared statistics)."""

    @staticmethod
    def forward(ctx, t: torch.Tensor) -> torch.Tensor:
        import torch.distributed as td

        out = t.clone()
        td.all_reduce(out)
        return out

    @staticmethod
    def backward(ctx, g: torch.Tensor) -> torch.Tensor:
        import torch.distributed as td

        g = g.clone()
        td.all_reduce(g)
        return g


def has_batchnorm(model: nn.Module) -> bool:
    return any(isinstance(m, _BatchNorm) for m in model.modules())


def convert(model: nn.Module, device: torch.device) -> nn.Module:
    """`model` with every BatchNorm synchronised over the ranks (CUDA: torch's
    SyncBatchNorm; CPU: GlobalBatchNorm). The same module object is returned (its
    registry name and config kept) unless it is itself a BatchNorm."""
    if device.type == "cuda":
        return nn.SyncBatchNorm.convert_sync_batchnorm(model)
    return _to_global(model)


def _to_global(m: nn.Module) -> nn.Module:
    if isinstance(m, _BatchNorm) and not isinstance(m, (GlobalBatchNorm, nn.SyncBatchNorm)):
        like = next(iter(m.buffers()), None) if m.weight is None else m.weight
        kw = {} if like is None else {"device": like.device, "dtype": like.dtype}
        g = GlobalBatchNorm(m.num_features, m.eps, m.momentum, m.affine, m.track_running_stats, **kw)
        with torch.no_grad():
            if m.affine:
                g.weight.copy_(m.weight)
                g.bias.copy_(m.bias)
                g.weight.requires_grad_(m.weight.requires_grad)
                g.bias.requires_grad_(m.bias.requires_grad)
            if m.track_running_stats:
                g.running_mean.copy_(m.running_mean)
                g.running_var.copy_(m.running_var)
                g.num_batches_tracked.copy_(m.num_batches_tracked)
        g.train(m.training)
        return g
    for name, child in m.named_children():
        m.add_module(name, _to_global(child))
    return m
