"""Our checkpoint file (DESIGN.md, "Weights"): saving, reading, checking, building.

One file holding a plain dict:
    {"vidseg_checkpoint": 1, "model": name in MODELS, "classes": [str, ...],
     "config": {plain JSON-able constructor arguments}, "state_dict": {key: tensor},
     "preprocess": {...},  # optional: input preprocessing (mean/std, resize), JSON data
     "training": {...},  # optional: the run's settings (recipe...), epoch and step, JSON data
     "train_state": {...}}  # optional, for resume: tensors, numbers, strings, lists, dicts
Read with `weights.read_weights` (plain data only). `build_from_checkpoint` rebuilds the
model from the `MODELS` registry and loads its weights strictly.
"""

from __future__ import annotations

import io
import json
import os
from collections.abc import Collection, Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from vidseg_cli.core.fs import write_bytes
from vidseg_cli.errors import InputError
from vidseg_cli.models.checkpoint.layouts import detect_layout
from vidseg_cli.models.checkpoint.weights import (
    FORMAT_KEY,
    check_plain,
    is_checkpoint,
    list_keys,
    load_state_dict_checked,
    read_weights,
)
from vidseg_cli.models.registry import MODELS

FORMAT_VERSION = 1
_REQUIRED = {"model": str, "classes": list, "config": dict, "state_dict": Mapping}


def save_checkpoint(
    path: str | os.PathLike,  # file to write (atomically: a temporary file, then renamed)
    model: nn.Module,  # the model whose state_dict is saved
    classes: Sequence[str],  # class names, index 0 = background (DESIGN.md)
    *,
    name: str | None = None,  # registry name; default model.model_name (set by MODELS.build)
    config: Mapping[str, Any] | None = None,  # constructor kwargs; default model.model_config
    train_state: Mapping[str, Any] | None = None,  # optimizer, epoch, RNG... for resume
    preprocess: Mapping[str, Any] | None = None,  # input preprocessing; default model.preprocess
    training: Mapping[str, Any] | None = None,  # how the weights were trained (JSON data)
) -> Path:
    """Write our checkpoint format (module docstring); returns the path.

    `preprocess` (optional, plain JSON data) records how inputs are prepared for the
    model (e.g. mean/std, resize), so training and inference apply the same; it defaults
    to the model's `preprocess` attribute when it has one (the Trainer saves through here).
    """
    name = name if name is not None else getattr(model, "model_name", None)
    config = config if config is not None else getattr(model, "model_config", None)
    if name is None or config is None:
        raise ValueError("save_checkpoint needs the model's registry name and config "
                         "(build it with MODELS.build or pass name= and config=)")
    MODELS.get(name)  # the name must be rebuildable
    config = json.loads(json.dumps(dict(config), allow_nan=False))
    classes = [str(c) for c in classes]
    ckpt: dict[str, Any] = {
        FORMAT_KEY: FORMAT_VERSION,
        "model": name,
        "classes": classes,
        "config": config,
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
    }
    if preprocess is None:
        preprocess = getattr(model, "preprocess", None)
    if preprocess is not None:
        ckpt["preprocess"] = json.loads(json.dumps(dict(preprocess), allow_nan=False))
    if training is not None:  # kept in best.ckpt too, which has no train_state
        ckpt["training"] = json.loads(json.dumps(dict(training), allow_nan=False))
    if train_state is not None:
        ckpt["train_state"] = dict(train_state)
    check_plain(ckpt, "checkpoint")
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    # Serialized in memory first: torch's zip writer reports a failed write (a full disk)
    # as a RuntimeError of its own, while write_bytes reports it as OutputError.
    buf = io.BytesIO()
    torch.save(ckpt, buf)
    write_bytes(p, buf.getvalue())
    return p



def read_checkpoint(path: str | os.PathLike) -> dict[str, Any]:
    """Read and check one of our checkpoints (not yet built into a model)."""
    ckpt = read_weights(path)
    if not is_checkpoint(ckpt):
        layout = detect_layout(ckpt) if isinstance(ckpt, Mapping) else None
        hint = f" (it looks like public '{layout}' weights; use them as initial weights)" if layout else ""
        raise InputError(path, f"not a vidseg checkpoint: no '{FORMAT_KEY}' key{hint}")
    version = ckpt[FORMAT_KEY]
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise InputError(path, f"checkpoint format {version!r} is newer than this vidseg reads ({FORMAT_VERSION})")
    for key, typ in _REQUIRED.items():
        if not isinstance(ckpt.get(key), typ):
            raise InputError(path, f"checkpoint lacks '{key}' (a {typ.__name__})")
    bad = [k for k, v in ckpt["state_dict"].items() if not isinstance(v, torch.Tensor)]
    if bad:
        raise InputError(path, f"checkpoint state_dict has non-tensor entries: {list_keys(bad)}")
    return ckpt


def check_checkpoint_fits(
    path: str | os.PathLike,
    ckpt: Mapping[str, Any],
    expect_model: str | Collection[str] | None = None,  # model name(s) the caller can use
    expect_classes: Sequence[str] | None = None,  # class list the caller's data has
) -> None:
    """One-line InputError when a checkpoint was made for another model or class list."""
    if expect_model is not None:
        allowed = [expect_model] if isinstance(expect_model, str) else list(expect_model)
        if ckpt["model"] not in allowed:
            raise InputError(
                path, f"checkpoint is for model '{ckpt['model']}', not {' or '.join(repr(a) for a in allowed)}"
            )
    if expect_classes is not None and list(ckpt["classes"]) != [str(c) for c in expect_classes]:
        have, want = list(ckpt["classes"]), [str(c) for c in expect_classes]
        raise InputError(
            path,
            f"checkpoint classes differ from the expected ones: checkpoint has {len(have)} "
            f"{_short(have)}, expected {len(want)} {_short(want)}",
        )


def build_from_checkpoint(
    path: str | os.PathLike,  # our checkpoint file
    *,
    expect_model: str | Collection[str] | None = None,  # refuse a checkpoint of another model
    expect_classes: Sequence[str] | None = None,  # refuse a checkpoint of another class list
) -> tuple[nn.Module, dict[str, Any]]:
    """Build the model named in the checkpoint from its config and load its weights.

    Returns (model on CPU in eval mode, checkpoint dict); `model.classes` is the class list.
    """
    ckpt = read_checkpoint(path)
    check_checkpoint_fits(path, ckpt, expect_model, expect_classes)
    if ckpt["model"] not in MODELS:
        raise InputError(path, f"checkpoint is for model '{ckpt['model']}', which this vidseg does not know")
    try:
        model = MODELS.build(ckpt["model"], **ckpt["config"])
    except (TypeError, ValueError) as e:
        raise InputError(path, f"checkpoint config does not build '{ckpt['model']}': {e}") from None
    load_state_dict_checked(model, ckpt["state_dict"], path)
    model.classes = list(ckpt["classes"])
    return model.eval(), ckpt



def _short(names: Sequence[str]) -> str:
    return list_keys([repr(n) for n in names])

