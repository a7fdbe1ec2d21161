"""The S-CNN segment network (Shou et al. 2016, §3.1): C3D plus what a stage needs to run on
its own, recorded in its checkpoint config (stage, input preparation, window lengths and,
for classification/localization, the class-specific window-length frequencies of §3.3).
How each stage trains is train/scnn.py.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from vidseg_cli.errors import InputError
from vidseg_cli.models.c3d import C3D
from vidseg_cli.models.preprocess import WindowSpec
from vidseg_cli.models.registry import MODELS
from vidseg_cli.stages.windows import SCNN_LENGTHS, SCNN_OVERLAP

STAGES = ("proposal", "classification", "localization")


def _pooled(n: int, pool: nn.MaxPool3d, axis: int) -> int:
    k, s, p = (v if isinstance(v, int) else v[axis] for v in (pool.kernel_size, pool.stride, pool.padding))
    out = (n + 2 * p - k) / s + 1
    return int(math.ceil(out) if pool.ceil_mode else math.floor(out))


class SCNNNet(C3D):
    """C3D as an S-CNN stage network. Input: B x 3 x 16 x crop_h x crop_w, RGB 0..255 (uint8
    or float); output: B x num_classes fc8 logits."""

    def __init__(
        self,
        stage: str = "localization",  # which S-CNN network this is (checked by propose/localize)
        num_classes: int = 2,  # fc8: 2 for the proposal network, K+1 otherwise
        width: float = 1.0,  # C3D channel multiplier (1.0: loads the Sports-1M port)
        pooling: str = "port",  # C3D pool rounding (models/c3d.py)
        dropout: float = 0.5,  # after fc6 and fc7
        frame_size: Sequence[int] = (171, 128),  # W x H frames are resized to (S-CNN §3.1)
        crop_size: Sequence[int] = (112, 112),  # H x W centre crop fed to the network
        pixel_mean: float = 0.0,  # subtracted from 0..255 pixels (0: the port's raw RGB)
        pixel_scale: float = 1.0,  # then multiplied by this
        window_lengths: Sequence[int] = SCNN_LENGTHS,  # sliding-window lengths (S-CNN §3.1)
        window_overlap: float = SCNN_OVERLAP,  # their overlap
        window_frequency: Sequence[Sequence[float]] | None = None,  # (K+1) x lengths, §3.3
    ):
        if stage not in STAGES:
            raise ValueError(f"stage must be one of {', '.join(STAGES)}, got {stage!r}")
        if stage == "proposal" and num_classes != 2:
            raise ValueError(f"the proposal network has 2 outputs, got num_classes={num_classes}")
        super().__init__(num_classes=num_classes, width=width, pooling=pooling, dropout=dropout)
        self.stage = stage
        self.spec = WindowSpec((int(frame_size[0]), int(frame_size[1])),
                             (int(crop_size[0]), int(crop_size[1])))
        self.pixel_mean, self.pixel_scale = float(pixel_mean), float(pixel_scale)
        self.window_lengths = tuple(int(x) for x in window_lengths)
        self.window_overlap = float(window_overlap)
        self.window_frequency = None
        if window_frequency is not None:
            wf = np.asarray(window_frequency, np.float64)
            if wf.shape != (num_classes, len(self.window_lengths)):
                raise ValueError(f"window_frequency must be {num_classes} x {len(self.window_lengths)}, "
                                 f"got {list(wf.shape)}")
            self.window_frequency = wf
        # pool5 of a 16-frame clip at this crop; fc6 takes it flattened (C3D: 512 x 1 x 4 x 4).
        t, h, w = self.spec.clip_frames, *self.spec.crop_size
        for i in range(1, 6):
            pool = getattr(self, f"pool{i}")
            t, h, w = (_pooled(t, pool, 0), _pooled(h, pool, 1), _pooled(w, pool, 2))
        if min(t, h, w) < 1:
            raise ValueError(f"a {self.spec.crop_size[0]}x{self.spec.crop_size[1]} crop is too small "
                             "for C3D's five pools")
        flat = self.conv5b.out_channels * t * h * w
        if flat != self.flat_size:
            self.flat_size = flat
            self.fc6 = nn.Linear(flat, self.fc6.out_features)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """He initialization for the ReLU layers, N(0, 0.01) for fc8, zero biases: a network
        trained from scratch (no --init) starts with activations that neither vanish nor
        explode through its 10 ReLU layers. Loaded weights replace all of it."""
        for name, m in self.named_modules():
            if isinstance(m, (nn.Conv3d, nn.Linear)):
                if name == "fc8":
                    nn.init.normal_(m.weight, 0.0, 0.01)
                else:
                    nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
                nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = (x.float() - self.pixel_mean) * self.pixel_scale  # B x 3 x 16 x h x w
        return super().forward(x)  # B x num_classes

    def frequency(self, labels: np.ndarray, lengths: np.ndarray) -> np.ndarray:
        """§3.3 factor of each (class, window length); 0 for a length never seen in training."""
        if self.window_frequency is None:
            return np.ones(len(labels))
        col = {n: j for j, n in enumerate(self.window_lengths)}
        out = np.zeros(len(labels))
        for i, (k, n) in enumerate(zip(labels, lengths)):
            j = col.get(int(round(n)))
            if j is not None:
                out[i] = self.window_frequency[int(k), j]
        return out


MODELS.register("scnn", SCNNNet)


def load_stage_network(path: str, stages: Sequence[str], expect_classes: Sequence[str] | None = None):
    """An S-CNN checkpoint of one of `stages`, built, in eval mode; InputError otherwise."""
    from vidseg_cli.models.checkpoint.format import (
        build_from_checkpoint,
        check_checkpoint_fits,
        read_checkpoint,
    )

    ckpt = read_checkpoint(path)
    check_checkpoint_fits(path, ckpt, expect_model="scnn")
    stage = ckpt["config"].get("stage")
    if stage not in stages:
        raise InputError(path, f"checkpoint is the S-CNN {stage} network; this needs the "
                               f"{' or '.join(stages)} network")
    check_checkpoint_fits(path, ckpt, expect_classes=expect_classes)
    if ckpt["classes"][:1] != ["background"]:
        raise InputError(path, f"checkpoint classes must start with 'background', found {ckpt['classes'][:3]}")
    model, _ = build_from_checkpoint(path, expect_model="scnn")
    return model
