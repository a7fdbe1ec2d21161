"""Training on several processes (`torchrun`): the process group, each rank's share of a
global batch, gradient averaging, sharded validation.

Ranks come from RANK, WORLD_SIZE and LOCAL_RANK only, the variables torchrun sets for
every worker. SLURM_PROCID is never read: under `srun torchrun` every worker of a node
sees SLURM_PROCID=0 (measured, ../shared/specs/cluster.md). Without WORLD_SIZE, or with
WORLD_SIZE=1, training is one process, `current()` is `SINGLE`, and every helper here is
the identity or the one-process computation itself, so a plain run is unchanged.

With several ranks (docs/models.md, "Several GPUs"):
- every rank holds the whole model; gradients are summed over the ranks and divided by
  their number after every backward (`average_gradients`), buffers (BatchNorm running
  statistics) are copied from rank 0 after every step, as DistributedDataParallel does;
- a global batch of B items, drawn from an order that is a function of (seed, epoch),
  is split `items[rank::world]` (`shard`); a loss is each rank's share of the global
  batch's mean times the number of ranks (`batch_mean`, `share`), so that the averaged
  gradient is that of the one-process mean even when the shards differ in size;
- NCCL on CUDA (cuda:LOCAL_RANK), gloo on CPU, with a configurable timeout.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import torch

DEFAULT_TIMEOUT_S = 1800.0  # how long a rank waits for the others at a collective


@dataclass(frozen=True)
class Dist:
    rank: int = 0  # RANK: this process among all
    world: int = 1  # WORLD_SIZE: processes in all
    local_rank: int = 0  # LOCAL_RANK: this process on its node (its GPU)
    device: str | None = None  # the rank's device ("cuda:LOCAL_RANK" or "cpu") when active

    @property
    def active(self) -> bool:
        return self.world > 1

    @property
    def main(self) -> bool:
        return self.rank == 0


SINGLE = Dist()
_current = SINGLE


def current() -> Dist:
    return _current


def env_ranks(environ: Mapping[str, str] | None = None) -> Dist:
    """The ranks torchrun gave this process; SINGLE without WORLD_SIZE. ValueError (one
    line) for values that are not consistent."""
    env = os.environ if environ is None else environ
    if "WORLD_SIZE" not in env:
        return SINGLE
    try:
        world = int(env["WORLD_SIZE"])
        rank = int(env.get("RANK", "0"))
        local = int(env.get("LOCAL_RANK", str(rank)))
    except ValueError:
        raise ValueError(f"RANK={env.get('RANK')} WORLD_SIZE={env.get('WORLD_SIZE')} "
                         f"LOCAL_RANK={env.get('LOCAL_RANK')}: expected integers (as torchrun sets)") from None
    if world < 1 or not 0 <= rank < world or local < 0:
        raise ValueError(f"RANK={rank} WORLD_SIZE={world} LOCAL_RANK={local}: expected "
                         "0 <= RANK < WORLD_SIZE and LOCAL_RANK >= 0")
    if world == 1:
        return SINGLE
    return Dist(rank, world, local)


def rank_device(spec: str, d: Dist) -> torch.device:
    """The device of rank `d` for `--device spec`: auto and cuda give cuda:LOCAL_RANK (CPU
    when auto finds no CUDA); one named GPU cannot serve several ranks."""
    spec = (spec or "auto").strip().lower()
    if spec == "cpu" or (spec == "auto" and not torch.cuda.is_available()):
        return torch.device("cpu")
    if spec not in ("auto", "cuda"):
        raise ValueError(f"--device {spec}: with several processes each one uses cuda:LOCAL_RANK; "
                         "use --device cuda, auto or cpu")
    if not torch.cuda.is_available():
        raise ValueError(f"--device {spec}: CUDA is not available on this machine")
    if d.local_rank >= torch.cuda.device_count():
        raise ValueError(f"LOCAL_RANK={d.local_rank}: only {torch.cuda.device_count()} CUDA "
                         "device(s) on this node; start at most that many processes per node")
    return torch.device("cuda", d.local_rank)


def setup(device_spec: str, timeout_s: float = DEFAULT_TIMEOUT_S) -> Dist:
    """Join the process group torchrun describes (NCCL on CUDA, gloo on CPU); SINGLE, with
    nothing started, for one process."""
    global _current
    d = env_ranks()
    if not d.active:
        _current = SINGLE
        return SINGLE
    missing = [k for k in ("MASTER_ADDR", "MASTER_PORT") if k not in os.environ]
    if missing:
        raise ValueError(f"WORLD_SIZE={d.world} without {' and '.join(missing)}: start several "
                         "processes with torchrun")
    dev = rank_device(device_spec, d)
    if dev.type == "cuda":
        torch.cuda.set_device(dev)
    import torch.distributed as td

    td.init_process_group("nccl" if dev.type == "cuda" else "gloo", rank=d.rank, world_size=d.world,
                          timeout=timedelta(seconds=timeout_s))
    _current = Dist(d.rank, d.world, d.local_rank, str(dev))
    return _current


def teardown() -> None:
    global _current
    if _current.active:
        import torch.distributed as td

        if td.is_initialized():
            td.destroy_process_group()
    _current = SINGLE


def device(spec: str) -> torch.device:
    """The device a training runs on: the rank's under several processes, else
    `--device spec` as one process resolves it."""
    from vidseg_cli.runtime import resolve_device

    d = current()
    return torch.device(d.device) if d.active else resolve_device(spec)


# -- collectives (every rank calls them, never from rank-0-only code) ------------------------
def barrier() -> None:
    if current().active:
        import torch.distributed as td

        if td.get_backend() == "nccl":
            td.barrier(device_ids=[current().local_rank])
        else:
            td.barrier()


def broadcast_object(obj: Any) -> Any:
    """Rank 0's `obj` on every rank."""
    if not current().active:
        return obj
    import torch.distributed as td

    box = [obj]
    td.broadcast_object_list(box, src=0)
    return box[0]


def all_sum(t: torch.Tensor) -> torch.Tensor:
    """The sum of `t` over the ranks (a new tensor; no gradient flows through it)."""
    if not current().active:
        return t
    import torch.distributed as td

    out = t.detach().clone()
    td.all_reduce(out)
    return out


def map_sharded(fn: Callable[[Any], Any], items: Sequence[Any]) -> list[Any]:
    """[fn(x) for x in items], each rank computing items[rank::world]; the results,
    gathered, in the order of `items` on every rank (sharded validation)."""
    d = current()
    if not d.active:
        return [fn(x) for x in items]
    import torch.distributed as td

    mine = [fn(x) for x in items[d.rank::d.world]]
    parts: list[Any] = [None] * d.world
    td.all_gather_object(parts, mine)
    out: list[Any] = [None] * len(items)
    for r, part in enumerate(parts):
        out[r::d.world] = part
    return out


# -- a global batch split over the ranks -----------------------------------------------------
def check_batch_size(batch_size: int) -> None:
    """Every rank needs at least one item of every batch."""
    d = current()
    if d.active and batch_size < d.world:
        raise ValueError(f"--batch-size {batch_size} is smaller than the {d.world} processes: "
                         f"every process needs an item of every batch (use --batch-size >= {d.world})")


def shard(items: Sequence[Any]) -> Sequence[Any] | None:
    """This rank's share `items[rank::world]` of a global batch; None for a ragged last
    batch of fewer items than ranks, which every rank then skips (so all take the same
    number of steps)."""
    d = current()
    if not d.active:
        return items
    return items[d.rank::d.world] if len(items) >= d.world else None


def batches_per_epoch(n: int, batch_size: int) -> int:
    """Steps of an epoch over `n` items in batches of `batch_size` (see `shard`)."""
    full, rest = divmod(n, batch_size)
    return full + (1 if rest >= current().world else 0)


def share(total: torch.Tensor, count: torch.Tensor | float) -> torch.Tensor:
    """This rank's part of a global mean, times the number of ranks: `total` (a sum over
    this rank's items) x world / (the sum of `count` over the ranks). Averaged over the
    ranks, as gradients are, it is the global batch's mean; 0 when nothing counts."""
    d = current()
    n = torch.as_tensor(count, dtype=torch.float64, device=total.device).reshape(1)
    n_all = float(all_sum(n)) if d.active else float(n)
    if n_all == 0:
        return total * 0.0
    return total * (d.world / n_all)


def batch_mean(values: torch.Tensor) -> torch.Tensor:
    """The mean of per-item losses over the global batch (this rank's share, see `share`);
    one process: values.mean()."""
    if not current().active:
        return values.mean()
    return share(values.sum(), values.numel())


# -- the model across ranks --------------------------------------------------------------------
def _coalesced(tensors: list[torch.Tensor], op: Callable[[torch.Tensor], None]) -> None:
    """Apply a collective `op` to the tensors, one flat buffer per dtype."""
    by_dtype: dict[torch.dtype, list[torch.Tensor]] = {}
    for t in tensors:
        by_dtype.setdefault(t.dtype, []).append(t)
    for group in by_dtype.values():
        flat = torch.cat([t.reshape(-1) for t in group])
        op(flat)
        i = 0
        for t in group:
            t.copy_(flat[i:i + t.numel()].view_as(t))
            i += t.numel()


def broadcast_state(model: torch.nn.Module, buffers_only: bool = False) -> None:
    """Rank 0's parameters (unless `buffers_only`) and buffers on every rank."""
    if not current().active:
        return
    import torch.distributed as td

    ts = [b for b in model.buffers()]
    if not buffers_only:
        ts = [p.data for p in model.parameters()] + ts
    if ts:
        with torch.no_grad():
            _coalesced(ts, lambda flat: td.broadcast(flat, src=0))


def average_gradients(params: Sequence[torch.nn.Parameter]) -> None:
    """Gradients summed over the ranks and divided by their number. A parameter no rank
    gave a gradient keeps none (as in one process); one that only some ranks did gets
    zeros on the others."""
    if not current().active:
        return
    import torch.distributed as td

    params = [p for p in params if p.requires_grad]
    if not params:
        return
    has = torch.tensor([float(p.grad is not None) for p in params], device=params[0].device)
    td.all_reduce(has, op=td.ReduceOp.MAX)
    grads = []
    for p, h in zip(params, has.tolist()):
        if h and p.grad is None:
            p.grad = torch.zeros_like(p)
        if h:
            grads.append(p.grad)
    world = current().world
    with torch.no_grad():
        _coalesced(grads, lambda flat: (td.all_reduce(flat), flat.div_(world)))


def rank_seed(seed: int, epoch: int, rank: int) -> int:
    """The torch seed of a rank in an epoch (dropout masks): a function of (seed, epoch,
    rank), so a resumed run draws what the uninterrupted one drew."""
    import numpy as np

    return int(np.random.SeedSequence([seed, epoch, rank]).generate_state(1, np.uint64)[0] >> 1)


# -- work that writes files (caches): never two ranks writing one file -----------------------
def main_first(fn: Callable[[], Any]) -> Any:
    """fn() on rank 0, then on the other ranks once rank 0 is done: for loading that fills
    a cache on disk (decoded frames), which the others then read instead of writing the
    same files at the same time. A failure on rank 0 is raised there and ends the others
    with exit 2 (rank 0 prints the line)."""
    d = current()
    if not d.active:
        return fn()
    if d.main:
        try:
            out = fn()
        except BaseException:
            broadcast_object("failed")
            raise
        broadcast_object(None)
        return out
    if broadcast_object(None) is not None:
        _outlive_main()
        raise SystemExit(2)
    return fn()


def _outlive_main() -> None:
    """On a rank other than 0, once rank 0 has failed: wait until rank 0 has printed its
    line and left the group (its leaving ends this barrier with an error), as torchrun
    stops every other process as soon as one ends with an error, and would otherwise cut
    rank 0 off before its line when this rank ends first."""
    try:
        barrier()
    except Exception:  # the group is gone: rank 0 has stopped
        pass


def fill_sharded(fn: Callable[[Any], Any], items: Sequence[Any]) -> list[Any]:
    """map_sharded for work that writes one file per item (a feature cache): each rank
    does items[rank::world]; every rank returns once all are done, with the results in
    the order of `items`. An exception on any rank is raised on every rank (the first in
    the order of `items`), so all stop with the same line and none waits for ever."""
    d = current()
    if not d.active:
        return [fn(x) for x in items]

    def safe(x: Any) -> Any:
        try:
            return ("ok", fn(x))
        except Exception as e:  # re-raised on every rank below
            return ("error", _portable(e))

    out = map_sharded(safe, items)
    for tag, value in out:
        if tag == "error":
            cls, args = value
            if not d.main:
                _outlive_main()
            raise cls(*args)
    return [value for _, value in out]


def _portable(e: Exception) -> tuple[type, tuple]:
    """(class, arguments) that rebuild `e` on another rank: an InputError from its path
    and problem (its args hold the joined line), others from their args when they
    survive pickling, else a RuntimeError with the line."""
    import pickle

    from vidseg_cli.errors import InputError

    if isinstance(e, InputError):
        return type(e), (e.path, e.problem)
    try:
        pickle.loads(pickle.dumps((type(e), e.args)))
        return type(e), e.args
    except Exception:
        return RuntimeError, (f"{type(e).__name__}: {e}",)
