"""Run by tests/gpu/test_cuda_paths.py under `torchrun --nproc-per-node=1`: the NCCL
branches of train/distributed.py on one GPU.

With WORLD_SIZE=1 `distributed.setup` starts no process group (one process trains as a
plain run), so the collectives' NCCL code would never run on a one-GPU machine. Here the
process group is started with NCCL as setup() starts it for several ranks, and the
current Dist is marked active, so barrier (NCCL's device_ids form), broadcast_object,
all_sum, map_sharded, share/batch_mean, broadcast_state and average_gradients all go
through NCCL; with one rank each must give the one-process result. Prints one JSON line.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from datetime import timedelta

import torch
import torch.distributed as td

from vidseg_cli.train import distributed


@dataclass(frozen=True)
class OneActiveRank(distributed.Dist):
    @property
    def active(self) -> bool:
        return True


def main() -> None:
    assert distributed.env_ranks() is distributed.SINGLE  # torchrun's WORLD_SIZE=1
    local = int(os.environ["LOCAL_RANK"])
    dev = torch.device("cuda", local)
    torch.cuda.set_device(dev)
    td.init_process_group("nccl", rank=int(os.environ["RANK"]), world_size=int(os.environ["WORLD_SIZE"]),
                          timeout=timedelta(seconds=60))
    distributed._current = OneActiveRank(0, 1, local, str(dev))
    out = {"backend": td.get_backend()}
    distributed.barrier()
    out["broadcast_object"] = distributed.broadcast_object({"a": [1, 2]}) == {"a": [1, 2]}
    t = torch.arange(5.0, device=dev)
    out["all_sum"] = bool(torch.equal(distributed.all_sum(t), t))
    out["map_sharded"] = distributed.map_sharded(lambda v: v * v, [1, 2, 3]) == [1, 4, 9]
    v = torch.tensor([1.0, 2.0, 6.0], device=dev)
    out["batch_mean"] = float(distributed.batch_mean(v)) == 3.0
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.BatchNorm1d(3), torch.nn.Linear(3, 2)).to(dev)
    model.train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    distributed.broadcast_state(model)
    out["broadcast_state"] = all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    model(torch.randn(8, 4, device=dev)).square().mean().backward()
    model[2].bias.grad = None  # a parameter this rank gave no gradient keeps none
    grads = [p.grad.clone() if p.grad is not None else None for p in model.parameters()]
    distributed.average_gradients(list(model.parameters()))
    out["average_gradients"] = all(
        (g is None and p.grad is None) or (g is not None and torch.equal(g, p.grad))
        for g, p in zip(grads, model.parameters()))
    distributed.barrier()
    td.destroy_process_group()
    print(json.dumps(out), flush=True)


if __name__ == "__main__":
    main()
