"""Training curves for TensorBoard (`vidseg train ... --tensorboard DIR`).

An optional dependency: the writer is tensorboard's own (through
torch.utils.tensorboard.SummaryWriter), imported only when a run asks for it. The
engine calls `log_epoch` once per epoch on rank 0 (train/engine.py), with the epoch's
record (the line log.jsonl gets) and its per-step losses:

- `train/loss_step` at every optimizer step (the global batch's loss);
- `train/loss` (the epoch's mean), `train/lr`, `train/seconds` at the epoch's last step;
- `val/<metric>` for each numeric validation metric of the epoch.

`configure` is called by the command line (cli/training.py) before the recipe runs, and
`close` after it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

__all__ = ["INSTALL", "available", "close", "configure", "log_epoch"]

INSTALL = "pip install tensorboard (or pip install 'vidseg[tensorboard]')"

_dir: Path | None = None
_writer: Any = None


def available() -> bool:
    try:
        import tensorboard  # noqa: F401
        from torch.utils.tensorboard import SummaryWriter  # noqa: F401
    except ImportError:
        return False
    return True


def configure(log_dir: str | Path | None) -> None:
    """Write the curves of the coming run to `log_dir` (None: no curves)."""
    global _dir
    close()
    _dir = Path(log_dir) if log_dir is not None else None


def _get():
    global _writer
    if _writer is None and _dir is not None:
        from torch.utils.tensorboard import SummaryWriter

        _writer = SummaryWriter(log_dir=str(_dir))
    return _writer


def log_epoch(rec: dict[str, Any], step_losses: list[float]) -> None:
    w = _get()
    if w is None:
        return
    step = int(rec["step"])
    first = step - len(step_losses) + 1
    for i, v in enumerate(step_losses):
        w.add_scalar("train/loss_step", v, first + i)
    for key in ("loss", "lr", "seconds"):
        if isinstance(rec.get(key), (int, float)):
            w.add_scalar(f"train/{key}", rec[key], step)
    for key, v in (rec.get("val") or {}).items():
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            w.add_scalar(f"val/{key}", v, step)
    w.flush()


def close() -> None:
    global _writer
    if _writer is not None:
        _writer.close()
        _writer = None
