"""One training loop for every `vidseg train` command, short enough to read in one screen.

The caller supplies what differs between models: the batches of an epoch (a function of
the epoch number, so that an epoch's data order is a pure function of (seed, epoch) and a
resumed run repeats it exactly) and a `loss_step(model, batch) -> loss`. The engine does
the rest: device and AMP, optimizer and schedule steps, progress, a validation per epoch,
`run_dir/last.ckpt` after every epoch (with the optimizer, schedule and RNG state, so
`resume=True` continues bit-for-bit), `best.ckpt` on the validation metric, `log.jsonl`,
and `config.json` with the fully resolved settings.

Under torchrun (train/distributed.py) every rank runs this loop on its share of each
batch: gradients are averaged over the ranks after every backward, the logged loss is the
global batch's, the torch RNG (dropout) of an epoch is seeded from (seed, epoch, rank)
so a resume repeats it, rank 0 alone writes the run's files (between barriers) and
prints, and every rank resumes from last.ckpt. A recipe that splits its batches with
`distributed.shard` says so with `sharded=True`; the others refuse several ranks.
"""

from __future__ import annotations

import json
import math
import sys
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from vidseg_cli.core.fs import write_text
from vidseg_cli.core.signals import check as check_signals
from vidseg_cli.errors import InputError
from vidseg_cli.models.checkpoint.format import read_checkpoint, save_checkpoint
from vidseg_cli.runtime import autocast
from vidseg_cli.train import distributed, tensorboard


@dataclass
class TrainSettings:
    epochs: int = 10  # passes over the training data
    max_steps: int | None = None  # stop after this many optimizer steps in all (tests, smoke runs)
    seed: int = 0  # seeds model init (by the caller) and the per-epoch data order
    amp: bool = False  # mixed precision (bfloat16 on CPU, float16 on CUDA)
    grad_clip: float | None = None  # clip the gradient norm to this value
    monitor: str | None = None  # validation metric that picks best.ckpt (e.g. "foreground_iou")
    monitor_mode: str = "max"  # "max" or "min"
    quiet: bool = False  # no progress bar or per-epoch lines
    extra: dict[str, Any] = field(default_factory=dict)  # the command's own settings, recorded


def checkpoint_settings(ckpt: Mapping[str, Any]) -> tuple[Mapping[str, Any] | None, str]:
    """The settings of the run that wrote checkpoint `ckpt` and where they sit: its JSON
    `training` header (every checkpoint from commit 042fe63 on), else `train_state` (a
    last.ckpt without the header); (None, "") when neither records them (a best.ckpt
    without the header)."""
    for key in ("training", "train_state"):
        rec = ckpt.get(key)
        settings = rec.get("settings") if isinstance(rec, Mapping) else None
        if isinstance(settings, Mapping):
            return settings, key
    return None, ""


class Trainer:
    def __init__(
        self,
        model: nn.Module,  # built by MODELS.build (so it carries model_name and model_config)
        classes: list[str],  # class names, index 0 = background
        optimizer: torch.optim.Optimizer,
        run_dir: str | Path,  # where checkpoints, log.jsonl and config.json go
        settings: TrainSettings,
        device: torch.device,
        scheduler: Any | None = None,  # a torch lr_scheduler, stepped once per optimizer step
        sharded: bool = False,  # the caller's batches are this rank's shares (distributed.shard)
    ):
        self.dist = distributed.current()
        if self.dist.active and not sharded:
            raise ValueError(f"this training runs in one process only, not under torchrun "
                             f"(WORLD_SIZE={self.dist.world})")
        self.model, self.classes, self.opt, self.sched = model, classes, optimizer, scheduler
        self.run_dir, self.s, self.device = Path(run_dir), settings, device
        self.epoch, self.step = 0, 0  # completed epochs, optimizer steps
        self.best: float | None = None
        self.history: list[dict[str, Any]] = []

    # -- state ---------------------------------------------------------------------------
    def _train_state(self) -> dict[str, Any]:
        return {
            "epoch": self.epoch,
            "step": self.step,
            "best": self.best,
            "optimizer": self.opt.state_dict(),
            "scheduler": self.sched.state_dict() if self.sched is not None else None,
            "torch_rng": torch.get_rng_state(),
            # the epoch's log record, so a resume can restore a log line a kill cut off
            "record": json.dumps(self.history[-1]) if self.history else None,
        }  # the settings go in the checkpoint's JSON `training` header (_end_epoch)

    def _settings_json(self) -> dict[str, Any]:
        s = {k: v for k, v in self.s.__dict__.items() if k != "extra"}
        return {**s, **self.s.extra}

    def resume(self, path: str | Path) -> None:
        """Continue from a last.ckpt: weights, optimizer, schedule, RNG, counters."""
        ckpt = read_checkpoint(path)
        st = ckpt.get("train_state")
        if not isinstance(st, Mapping):
            raise InputError(path, "checkpoint has no training state to resume from")
        if ckpt["model"] != getattr(self.model, "model_name", None):
            raise InputError(path, f"checkpoint is for model '{ckpt['model']}', cannot resume "
                                   f"'{getattr(self.model, 'model_name', '?')}' from it")
        self.model.load_state_dict(ckpt["state_dict"])
        self.opt.load_state_dict(st["optimizer"])
        if self.sched is not None and st.get("scheduler") is not None:
            self.sched.load_state_dict(st["scheduler"])
        torch.set_rng_state(st["torch_rng"])
        self.epoch, self.step, self.best = int(st["epoch"]), int(st["step"]), st.get("best")
        log = self.run_dir / "log.jsonl"
        # The log as of the state resumed from: later epochs dropped, and the resumed
        # epoch's own line restored from the checkpoint when a kill cut it off.
        logged = _log_records(log) if log.exists() else []
        self.history = [r for r in logged if r["epoch"] <= self.epoch]
        if st.get("record") and not any(r["epoch"] == self.epoch for r in self.history):
            self.history.append(json.loads(st["record"]))
        if self.dist.main and (log.exists() or self.history):
            write_text(log, "".join(json.dumps(r) + "\n" for r in self.history))
        distributed.barrier()  # no rank reads the log while rank 0 rewrites it

    # -- the loop ------------------------------------------------------------------------
    def fit(
        self,
        batches: Callable[[int], Iterable[Any]],  # epoch -> the batches of that epoch
        loss_step: Callable[[nn.Module, Any], torch.Tensor],  # (model, batch) -> scalar loss
        validate: Callable[[nn.Module], dict[str, float]] | None = None,  # per-epoch metrics
        steps_per_epoch: int | None = None,  # for the progress bar, when known
    ) -> list[dict[str, Any]]:
        if self.dist.main:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            write_text(self.run_dir / "config.json", json.dumps(
                {"model": self.model.model_name, "model_config": self.model.model_config,
                 "classes": self.classes, "settings": self._settings_json()}, indent=2) + "\n")
        distributed.barrier()
        self.model.to(self.device)
        _optimizer_to(self.opt, self.device)
        distributed.broadcast_state(self.model)  # one starting point on every rank
        params = [p for g in self.opt.param_groups for p in g["params"]]
        done = lambda: self.s.max_steps is not None and self.step >= self.s.max_steps  # noqa: E731
        while self.epoch < self.s.epochs and not done():
            t0, losses = time.perf_counter(), []
            if self.dist.active:
                torch.manual_seed(distributed.rank_seed(self.s.seed, self.epoch, self.dist.rank))
            self.model.train()
            quiet = self.s.quiet or not self.dist.main
            with _progress(steps_per_epoch, f"epoch {self.epoch + 1}/{self.s.epochs}", quiet) as tick:
                for batch in batches(self.epoch):
                    check_signals()
                    with autocast(self.device, self.s.amp):
                        loss = loss_step(self.model, _to(batch, self.device))
                    # every rank sees the global loss, so all stop together on a bad one
                    seen = distributed.all_sum(loss.detach().float()) / self.dist.world
                    if not torch.isfinite(seen):
                        raise FloatingPointError(f"loss became {seen.item()} at step {self.step}")
                    self.opt.zero_grad(set_to_none=True)
                    loss.backward()
                    distributed.average_gradients(params)
                    if self.s.grad_clip:
                        nn.utils.clip_grad_norm_(self.model.parameters(), self.s.grad_clip)
                    self.opt.step()
                    if self.sched is not None:
                        self.sched.step()
                    distributed.broadcast_state(self.model, buffers_only=True)
                    self.step += 1
                    losses.append(float(seen))
                    tick(losses[-1])
                    if done():
                        break
            self.epoch += 1
            rec: dict[str, Any] = {"epoch": self.epoch, "step": self.step,
                                   "loss": sum(losses) / max(len(losses), 1),
                                   "lr": self.opt.param_groups[0]["lr"],
                                   "seconds": round(time.perf_counter() - t0, 3)}
            if validate is not None:
                self.model.eval()
                with torch.no_grad():
                    rec["val"] = validate(self.model)
            if self.dist.main:
                tensorboard.log_epoch(rec, losses)  # only when the run asked (--tensorboard)
            self._end_epoch(rec)
        return self.history

    def _end_epoch(self, rec: dict[str, Any]) -> None:
        improved = False
        if self.s.monitor and "val" in rec and self.s.monitor in rec["val"]:
            v = rec["val"][self.s.monitor]
            # None or not finite: the metric had nothing to measure (validation videos
            # without a frame to count); best.ckpt follows the last epoch until one does.
            v = float(v) if isinstance(v, (int, float)) and math.isfinite(v) else None
            better = (lambda a, b: a > b) if self.s.monitor_mode == "max" else (lambda a, b: a < b)
            if v is None:
                improved = self.best is None
            elif self.best is None or better(v, self.best):
                self.best, improved = v, True
        self.history.append(rec)
        # best.ckpt, then last.ckpt, then the log: a kill between any two writes leaves a
        # last.ckpt that a resume redoes the epoch from (the log is cut back to it), and a
        # best.ckpt no older than last.ckpt's idea of the best.
        # Rank 0 alone writes (every rank holds the same weights), then all wait for it.
        if self.dist.main:
            self._write_epoch(rec, improved)
        distributed.barrier()

    def _write_epoch(self, rec: dict[str, Any], improved: bool) -> None:
        training = {"settings": self._settings_json(), "epoch": self.epoch, "step": self.step}
        if improved or (self.s.monitor is None):
            save_checkpoint(self.run_dir / "best.ckpt", self.model, self.classes, training=training)
        save_checkpoint(self.run_dir / "last.ckpt", self.model, self.classes,
                        train_state=self._train_state(), training=training)
        with open(self.run_dir / "log.jsonl", "a") as f:
            f.write(json.dumps(rec) + "\n")
        if not self.s.quiet:
            val = " ".join(f"{k}={v:.4g}" for k, v in rec.get("val", {}).items()
                           if isinstance(v, (int, float)))
            print(f"epoch {rec['epoch']}: loss {rec['loss']:.4f} lr {rec['lr']:.3g} {val} "
                  f"({rec['seconds']:.1f}s)", file=sys.stderr)


def _log_records(log: Path) -> list[dict[str, Any]]:
    """The records of a log.jsonl; a line a kill tore in half (the last one, written with
    a plain append) is dropped: the checkpoint's own record restores it."""
    out = []
    for line in log.read_text().splitlines():
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return out


def _to(batch: Any, device: torch.device) -> Any:
    if isinstance(batch, torch.Tensor):
        return batch.to(device, non_blocking=True)
    if isinstance(batch, Mapping):
        return {k: _to(v, device) for k, v in batch.items()}
    if isinstance(batch, (list, tuple)):
        return type(batch)(_to(v, device) for v in batch)
    return batch


def _optimizer_to(opt: torch.optim.Optimizer, device: torch.device) -> None:
    for state in opt.state.values():
        for k, v in state.items():
            if isinstance(v, torch.Tensor) and k != "step":
                state[k] = v.to(device)


class _progress:
    """A rich bar with the running loss on a terminal; nothing otherwise."""

    def __init__(self, total: int | None, desc: str, quiet: bool):
        self.total, self.desc = total, desc
        self.on = not quiet and sys.stderr.isatty()

    def __enter__(self) -> Callable[[float], None]:
        if not self.on:
            return lambda loss: None
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
        )

        self.prog = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                             TextColumn("loss {task.fields[loss]:.4f}"), TimeElapsedColumn(),
                             console=Console(stderr=True), transient=True)
        self.prog.__enter__()
        task = self.prog.add_task(self.desc, total=self.total, loss=float("nan"))
        return lambda loss: self.prog.update(task, advance=1, loss=loss)

    def __exit__(self, *exc) -> None:
        if self.on:
            self.prog.__exit__(*exc)
