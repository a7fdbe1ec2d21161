"""Reading any weights file safely, and loading a state_dict into a model strictly.

Everything is read with `torch.load(weights_only=True)`: a file that holds anything but
plain data (a pickled object whose `__reduce__` would run code) is refused, never executed.
A file is one of our checkpoints (format.py) when it is a dict with the `FORMAT_KEY` key,
else public weights (layouts.py).
"""

from __future__ import annotations

import os
import pickle
import re
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from vidseg_cli.errors import InputError

FORMAT_KEY = "vidseg_checkpoint"
_MAX_NAMED = 8  # keys named in one error line before "(+N more)"


def read_weights(path: str | os.PathLike) -> Any:
    """torch.load(weights_only=True) on CPU, with one-line InputErrors.

    A pickle that is not plain data (tensors, numbers, strings, lists, dicts) is refused by
    the restricted unpickler before any of its code can run.
    """
    p = Path(path)
    if not p.is_file():
        raise InputError(path, "no such weights file")
    try:
        with warnings.catch_warnings():
            # torch's notes on the pickle protocol: noise before our own line
            warnings.filterwarnings("ignore", category=UserWarning, module=r"torch\.")
            return torch.load(p, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        raise InputError(
            path,
            "refused to load: not plain weights data (tensors, numbers, strings, lists, dicts); "
            f"nothing in it was run ({_unpickler_reason(str(e))})",
        ) from None
    except Exception as e:  # zip errors, truncated files, not a torch file at all
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise InputError(path, f"not a readable torch weights file ({first[:160]})") from None


# The lines of torch's refusal that advise on loading the file anyway, or on filing an issue.
_TORCH_ADVICE = ("Weights only load failed", "(1)", "(2)", "Please file an issue", "Check the documentation")


def _unpickler_reason(text: str) -> str:
    """The sentence of torch's many-line refusal that says what was refused ("Unsupported
    global: GLOBAL print was not an allowed global by default"), without its advice."""
    text = re.sub(r"\x1b\[[0-9;]*m", "", text)
    for line in text.splitlines():
        line = line.split("WeightsUnpickler error:")[-1].strip()
        if line and not line.startswith(_TORCH_ADVICE):
            return re.split(r"(?<=\.)\s", line, maxsplit=1)[0].rstrip(".")
    return "the restricted unpickler refused it"


def check_plain(obj: Any, where: str) -> None:
    """Refuse anything `torch.load(weights_only=True)` would refuse, before saving it."""
    if obj is None or isinstance(obj, (bool, int, float, str, torch.Tensor)):
        return
    if isinstance(obj, (list, tuple)):
        for i, v in enumerate(obj):
            check_plain(v, f"{where}[{i}]")
        return
    if isinstance(obj, dict):
        for k, v in obj.items():
            if not isinstance(k, (str, int)):
                raise TypeError(f"{where}: key {k!r} is a {type(k).__name__}, not a str or int")
            check_plain(v, f"{where}[{k!r}]")
        return
    raise TypeError(
        f"{where} is a {type(obj).__name__}; a checkpoint holds only tensors, numbers, "
        "strings, lists and dicts"
    )



def is_checkpoint(obj: Any) -> bool:
    return isinstance(obj, Mapping) and FORMAT_KEY in obj



def load_state_dict_checked(
    model: nn.Module,
    state_dict: Mapping[str, torch.Tensor],
    path: str | os.PathLike,  # the file the weights came from, named in the error
    *,
    assign: bool = False,  # load_state_dict(assign=True): take the tensors (meta-built models)
) -> None:
    """load_state_dict(strict=True), but a mismatch is one InputError line naming the missing,
    unexpected and misshapen keys."""
    own = model.state_dict()
    missing = [k for k in own if k not in state_dict]
    unexpected = [k for k in state_dict if k not in own]
    shapes = [
        f"{k} {list(state_dict[k].shape)} (model {list(own[k].shape)})"
        for k in own
        if k in state_dict and tuple(state_dict[k].shape) != tuple(own[k].shape)
    ]
    if missing or unexpected or shapes:
        parts = []
        if missing:
            parts.append(f"missing keys {list_keys(missing)}")
        if unexpected:
            parts.append(f"unexpected keys {list_keys(unexpected)}")
        if shapes:
            parts.append(f"shape mismatch {list_keys(shapes)}")
        what = getattr(model, "model_name", type(model).__name__)
        raise InputError(path, f"weights do not fit {what}: " + "; ".join(parts))
    model.load_state_dict(state_dict, strict=True, assign=assign)


def list_keys(keys: Sequence[str]) -> str:
    shown = ", ".join(keys[:_MAX_NAMED])
    more = f" (+{len(keys) - _MAX_NAMED} more)" if len(keys) > _MAX_NAMED else ""
    return f"[{shown}]{more}"

