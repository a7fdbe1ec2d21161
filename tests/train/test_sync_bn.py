"""--sync-bn on the CPU: GlobalBatchNorm on two gloo ranks, each holding half of a batch,
gives one process's BatchNorm exactly (float64): outputs, gradients of the input, of the
layer's weight and bias and of the convolution before it, and the running statistics;
checkpoints keep BatchNorm's names."""

from __future__ import annotations

import torch
from torch import nn

from tests.train.test_distributed import torchrun
from vidseg_cli.train.sync_bn import GlobalBatchNorm, convert, has_batchnorm

WORKER = '''
import sys, torch
from torch import nn
from vidseg_cli.train import distributed
from vidseg_cli.train.sync_bn import convert

d = distributed.setup("cpu")
torch.manual_seed(0)
dt = torch.float64
x = torch.randn(5, 3, 4, 6, 6, dtype=dt) * 3 + 1  # 5 items: shards of 3 and 2
t = torch.randn(5, 3, 4, 6, 6, dtype=dt)
ref = nn.Sequential(nn.Conv3d(3, 3, 1), nn.BatchNorm3d(3)).to(dt)
m = convert(nn.Sequential(nn.Conv3d(3, 3, 1), nn.BatchNorm3d(3)).to(dt), torch.device("cpu"))
m.load_state_dict(ref.state_dict())
xr = x.clone().requires_grad_()
yr = ref(xr)
(yr * t).sum().div(len(x)).backward()
xs = x[d.rank::2].clone().requires_grad_()
ys = m(xs)
distributed.share((ys * t[d.rank::2]).sum(), len(xs)).backward()
distributed.average_gradients(list(m.parameters()))
err = {"out": (ys - yr[d.rank::2]).abs().max(),
       # the input's gradient is that of the sum of both ranks' losses: world x one process's
       "input": (xs.grad / 2 - xr.grad[d.rank::2]).abs().max()}
for (n, p), q in zip(m.named_parameters(), ref.parameters()):
    err[n] = (p.grad - q.grad).abs().max()
for (n, b), c in zip(m.named_buffers(), ref.buffers()):
    err[n] = (b.double() - c.double()).abs().max()
bad = {k: float(v) for k, v in err.items() if not float(v) < 1e-10}
# one write per line: the ranks share one pipe, and print()'s separate writes interleave
sys.stdout.write(f"{d.rank} bad {bad}\\n")
sys.stdout.flush()
distributed.teardown()
sys.exit(1 if bad else 0)
'''


def test_global_batchnorm_on_two_ranks_is_one_process_batchnorm(tmp_path):
    script = tmp_path / "worker.py"
    script.write_text(WORKER)
    res = torchrun(script, module=False)
    assert res.returncode == 0, res.stdout + res.stderr[-3000:]
    assert res.stdout.count("bad {}") == 2


def test_conversion_keeps_names_values_and_mode():
    m = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.Sequential(nn.BatchNorm1d(5, momentum=None)))
    m[1].running_mean.fill_(0.5)
    m.eval()
    keys = list(m.state_dict())
    ref = {k: v.clone() for k, v in m.state_dict().items()}
    g = convert(m, torch.device("cpu"))
    assert isinstance(g[1], GlobalBatchNorm) and isinstance(g[2][0], GlobalBatchNorm)
    assert g[2][0].momentum is None and not g[1].training
    assert list(g.state_dict()) == keys
    assert all(torch.equal(v, ref[k]) for k, v in g.state_dict().items())
    assert has_batchnorm(g) and not has_batchnorm(nn.Conv2d(1, 1, 1))
    # one process: plain BatchNorm, in training as in eval
    x = torch.randn(4, 4, 5, 5)
    plain = nn.BatchNorm2d(4)
    glob = convert(nn.Sequential(nn.BatchNorm2d(4)), torch.device("cpu"))
    assert torch.equal(glob(x), plain(x)) and torch.equal(glob[0].running_var, plain.running_var)
