"""Seeded I3D weights with the port's keys and shapes (tests/data/reference/
pytorch_i3d_rgb_flow.json): the state_dict tests/golden/i3d_port.json was computed with, and
the weights the extract-features tests run on.

Values come from numpy's PCG64 in the reference's key order, so they do not depend on the
torch version: convolutions He-normal (std sqrt(2 / fan_in)), BatchNorm scales in
[0.8, 1.2], shifts and running means N(0, 0.1), running variances in [0.5, 1.5], the
logits bias N(0, 0.01). Activations then keep a scale of about 1 through the 60 layers.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

REFERENCE = Path(__file__).resolve().parents[1] / "data" / "reference" / "pytorch_i3d_rgb_flow.json"


def i3d_layout(stream: str) -> dict[str, list[int]]:
    """Key -> shape of the port's `rgb_imagenet.pt` ("rgb") or `flow_imagenet.pt` ("flow")."""
    return json.loads(REFERENCE.read_text())["state_dict"][stream]


def seeded_i3d_state_dict(stream: str, seed: int) -> dict[str, torch.Tensor]:
    """A state_dict of exactly the reference keys and shapes, seeded (module docstring)."""
    rng = np.random.default_rng(seed)
    sd: dict[str, torch.Tensor] = {}
    for key, shape in i3d_layout(stream).items():
        if key.endswith("num_batches_tracked"):
            sd[key] = torch.tensor(0)
            continue
        if key.endswith("conv3d.weight"):
            v = rng.normal(0.0, np.sqrt(2.0 / np.prod(shape[1:])), shape)
        elif key.endswith("running_var"):
            v = rng.uniform(0.5, 1.5, shape)
        elif key.endswith("bn.weight"):
            v = rng.uniform(0.8, 1.2, shape)
        elif key.endswith(("bn.bias", "running_mean")):
            v = rng.normal(0.0, 0.1, shape)
        else:  # logits.conv3d.bias
            v = rng.normal(0.0, 0.01, shape)
        sd[key] = torch.from_numpy(np.asarray(v, np.float32))
    return sd


def seeded_clip(shape: tuple[int, ...], seed: int) -> torch.Tensor:
    """A B x C x T x H x W input in [-1, 1] (the port's input range), seeded."""
    return torch.from_numpy(np.random.default_rng(seed).uniform(-1, 1, shape).astype(np.float32))
