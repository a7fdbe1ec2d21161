"""Every registered model's forward on CUDA, in float32 and under bf16 autocast, against
the same weights and input in float64 on the GPU (MODELS holds them all; a model added
to the registry without a case here fails `test_every_registered_model_has_a_case`,
which runs on the CPU too).

Tolerances, as ‖out − ref‖ / ‖ref‖: float32 (TF32 off) far under 1e-3, so 1e-4; bf16
operands land between 1e-3 and 1e-2 per product and these nets stack up to 13 layers, so
5e-2 (a wrong kernel or layout is O(1))."""

from __future__ import annotations

import pytest
import torch

from vidseg_cli.models import MODELS
from vidseg_cli.models.c3d import C3D


def _fsn_e2e():
    d = MODELS.build("resnet18", width=0.25).feature_dim
    return {"backbone": "resnet18", "backbone_config": {"width": 0.25}, "num_classes": 5,
            "feature_mean": [0.1] * d, "feature_std": [2.0] * d}


def _video(*shape):
    return lambda g: torch.randn(*shape, generator=g)


# name -> (config, input maker(generator) -> args tuple or tensor, call(model, x))
CASES = {
    "c3d": ({"num_classes": 5, "width": 0.125}, _video(2, 3, 16, 112, 112), None),
    "3dfcn-32s": ({"num_classes": 3, "width": 0.125}, _video(1, 3, 16, 112, 128), None),
    "3dfcn-8s": ({"num_classes": 3, "width": 0.125}, _video(1, 3, 16, 128, 136), None),
    "r2plus1d-18": ({"num_classes": 10, "width": 0.125}, _video(2, 3, 8, 64, 64), None),
    "sep3d": ({"num_classes": 2, "width": 0.125, "crop_size": 64}, _video(2, 3, 8, 64, 64), None),
    "sep3d+head": ({"segmenter": {"num_classes": 2, "width": 0.125, "crop_size": 64},
                    "action_names": ["a", "b", "c"]}, _video(1, 3, 8, 64, 64), None),
    "resnet18": ({"num_classes": 10, "width": 0.25}, _video(2, 3, 64, 64), None),
    "resnet50": ({"num_classes": 10, "width": 0.25}, _video(2, 3, 64, 64), None),
    "vgg16": ({"num_classes": 10, "width": 0.125}, _video(2, 3, 64, 64), None),
    "fsn": ({"in_features": 32, "num_classes": 5, "hidden": 32}, _video(2, 20, 32), None),
    "wfsn": ({"in_features": 32, "num_classes": 4, "hidden": 32}, _video(2, 20, 32), None),
    "fsn-e2e": (_fsn_e2e(), _video(1, 6, 3, 64, 64),
                lambda m, x: m(x, torch.arange(6, device=x.device) * 5 + 2, 30)),
    # SCNNNet.forward casts its 0..255 input to float32; in float64 the same steps run by hand
    "scnn": ({"stage": "localization", "num_classes": 3, "width": 0.125},
             lambda g: torch.rand(2, 3, 16, 112, 112, generator=g) * 255,
             lambda m, x: C3D.forward(m, (x.to(m.fc8.weight.dtype) - m.pixel_mean) * m.pixel_scale)),
    "segment_tube": ({"num_classes": 3, "in_features": 64, "hidden": 32}, _video(2, 10, 64), None),
    "i3d": ({"num_classes": 5, "in_channels": 3}, _video(1, 3, 16, 64, 64), None),
}


def test_every_registered_model_has_a_case():
    assert sorted(CASES) == MODELS.names()


def _flat(y):
    return [t for t in (y if isinstance(y, (tuple, list)) else (y,)) if torch.is_tensor(t)]


def _rel(out, ref) -> float:
    return float((out.double() - ref).norm() / ref.norm())


@pytest.mark.parametrize("name", sorted(CASES))
def test_forward_float32_and_bf16_match_float64(name, cuda):
    cfg, make, call = CASES[name]
    call = call or (lambda m, x: m(x))
    torch.manual_seed(0)
    model = MODELS.build(name, **cfg).eval().to(cuda)
    x = make(torch.Generator().manual_seed(1)).to(cuda)
    with torch.no_grad():
        ref = [t.double() for t in _flat(call(model.double(), x.double()))]
        model.float()
        f32 = _flat(call(model, x))
        with torch.autocast("cuda", torch.bfloat16):
            bf16 = _flat(call(model, x))
    assert len(f32) == len(bf16) == len(ref) > 0
    for a, b, r in zip(f32, bf16, ref):
        assert a.dtype == torch.float32 and a.is_cuda and a.shape == r.shape
        assert torch.isfinite(a).all() and torch.isfinite(b.float()).all()
        assert _rel(a, r) < 1e-4, (name, "float32", _rel(a, r))
        assert _rel(b, r) < 5e-2, (name, "bf16", _rel(b, r))
