"""Segment-tube's temporal networks (Segment-tube §2.1): a proposal network and a
classification network, each "3D ConvNets with LSTM".

Each sub-network here is the part after the C3D trunk: dropout on the clip's fc7 feature
-> "a two-layer LSTM [5] using the Peephole implementation (with 256 hidden states in each
layer)" -> a linear layer (2 outputs for the proposal network, K+1 for classification;
softmax in the loss or in `probs`). The trunk is not part of this module: the network
takes fc7 feature sequences, so a CPU recipe can cache features once.

The paper gives no cell equations; `PeepholeLSTM` is the Gers peephole cell (the
peepholes are diagonal, w_c ⊙ c):
    i = σ(W_xi x_t + W_hi h_{t−1} + w_ci ⊙ c_{t−1} + b_i)
    f = σ(W_xf x_t + W_hf h_{t−1} + w_cf ⊙ c_{t−1} + b_f)
    g = tanh(W_xg x_t + W_hg h_{t−1} + b_g)
    c_t = f ⊙ c_{t−1} + i ⊙ g
    o = σ(W_xo x_t + W_ho h_{t−1} + w_co ⊙ c_t + b_o)
    h_t = o ⊙ tanh(c_t)
Gate order in the weights is torch.nn.LSTM's (i, f, g, o), with one bias per gate, so
zero peepholes give torch.nn.LSTM with b = b_ih + b_hh.

What a sequence is (the paper does not say): the windows of one length in start order over
the whole video, one step per clip (stages/segment_tube_temporal.py makes the windows).

A checkpoint that `vidseg segment-tube` runs also holds the C3D trunk in front of the heads
(`trunk` in the config: the trunk's registry name and config; its weights under the
`trunk.` key prefix of the state_dict, as the `trunk` sub-module names them);
`make_segment_tube_checkpoint` writes one from an S-CNN checkpoint and trained heads.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import nn

from vidseg_cli.errors import InputError
from vidseg_cli.models.checkpoint.format import (
    build_from_checkpoint,
    check_checkpoint_fits,
    read_checkpoint,
    save_checkpoint,
)
from vidseg_cli.models.checkpoint.weights import load_state_dict_checked
from vidseg_cli.models.common import ModelInputError
from vidseg_cli.models.registry import MODELS
from vidseg_cli.stages.segment_tube_temporal import CLIP_LENGTHS, CLIP_OVERLAP

C3D_FC7 = 4096  # C3D's fc7 width at width 1.0
SUBNETWORKS = ("proposal", "classification")
TRUNK_MODELS = ("scnn",)  # trunks a checkpoint may embed: C3D with its input preparation

State = tuple[torch.Tensor, torch.Tensor]  # h, c: num_layers x B x hidden each


class PeepholeCell(nn.Module):
    """One layer of the peephole LSTM (module docstring), run over a whole sequence."""

    def __init__(self, input_size: int, hidden_size: int):
        super().__init__()
        self.hidden_size = hidden_size
        self.weight_ih = nn.Parameter(torch.empty(4 * hidden_size, input_size))  # rows i, f, g, o
        self.weight_hh = nn.Parameter(torch.empty(4 * hidden_size, hidden_size))
        self.bias = nn.Parameter(torch.empty(4 * hidden_size))
        self.peephole = nn.Parameter(torch.empty(3, hidden_size))  # w_ci, w_cf, w_co
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """torch.nn.LSTM's U(−1/√H, 1/√H) for the weights and bias; zero peepholes, so an
        untrained cell starts as a standard LSTM (the paper gives no initialization)."""
        bound = 1.0 / math.sqrt(self.hidden_size)
        for p in (self.weight_ih, self.weight_hh, self.bias):
            nn.init.uniform_(p, -bound, bound)
        nn.init.zeros_(self.peephole)

    def forward(self, x: torch.Tensor, h: torch.Tensor, c: torch.Tensor
                ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """x: B x L x input_size; h, c: B x H. Returns outputs B x L x H and the last h, c."""
        w_ci, w_cf, w_co = self.peephole
        gates_x = torch.matmul(x, self.weight_ih.t()) + self.bias  # B x L x 4H, all steps at once
        out = []
        for t in range(x.shape[1]):
            gi, gf, gg, go = (gates_x[:, t] + torch.matmul(h, self.weight_hh.t())).chunk(4, dim=1)
            i = torch.sigmoid(gi + w_ci * c)
            f = torch.sigmoid(gf + w_cf * c)
            c = f * c + i * torch.tanh(gg)
            o = torch.sigmoid(go + w_co * c)  # the output gate peeks at the new cell
            h = o * torch.tanh(c)
            out.append(h)
        if not out:
            return x.new_zeros(x.shape[0], 0, self.hidden_size), h, c
        return torch.stack(out, dim=1), h, c


class PeepholeLSTM(nn.Module):
    """Stacked peephole LSTM over batch-first sequences (module docstring).

    forward(x B x L x input_size, state=None) -> (outputs B x L x hidden, (h, c)) with h, c
    num_layers x B x hidden, as torch.nn.LSTM(batch_first=True); a missing state is zeros.
    Passing the returned state to the next call continues the sequence.
    """

    def __init__(self, input_size: int, hidden_size: int = 256, num_layers: int = 2):
        super().__init__()
        if num_layers < 1:
            raise ValueError(f"num_layers must be >= 1, got {num_layers}")
        self.input_size, self.hidden_size, self.num_layers = input_size, hidden_size, num_layers
        self.layers = nn.ModuleList(
            PeepholeCell(input_size if k == 0 else hidden_size, hidden_size) for k in range(num_layers)
        )

    def forward(self, x: torch.Tensor, state: State | None = None) -> tuple[torch.Tensor, State]:
        if x.dim() != 3 or x.shape[2] != self.input_size:
            raise ModelInputError(f"PeepholeLSTM needs B x L x {self.input_size} sequences, "
                                  f"got {tuple(x.shape)}")
        if state is None:
            zeros = x.new_zeros(self.num_layers, x.shape[0], self.hidden_size)
            state = (zeros, zeros)
        h0, c0 = state
        hs, cs = [], []
        for k, layer in enumerate(self.layers):
            x, h, c = layer(x, h0[k], c0[k])
            hs.append(h)
            cs.append(c)
        return x, (torch.stack(hs), torch.stack(cs))


class SegmentTubeHead(nn.Module):
    """One sub-network after the trunk: dropout on fc7 -> PeepholeLSTM -> linear.

    forward(features B x L x D, state=None) -> (logits B x L x num_outputs, state).
    """

    def __init__(self, in_features: int, num_outputs: int, hidden: int, num_layers: int, dropout: float):
        super().__init__()
        self.dropout = nn.Dropout(dropout)
        self.lstm = PeepholeLSTM(in_features, hidden, num_layers)
        self.fc = nn.Linear(hidden, num_outputs)

    def forward(self, x: torch.Tensor, state: State | None = None) -> tuple[torch.Tensor, State]:
        y, state = self.lstm(self.dropout(x), state)  # B x L x hidden
        return self.fc(y), state  # B x L x num_outputs


class SegmentTubeNet(nn.Module):
    """The proposal and classification networks of §2.1 on fc7 feature sequences.

    Input: B x L x in_features (one fc7 feature per clip, clips of one length in start
    order). forward -> (proposal logits B x L x 2, classification logits B x L x
    num_classes), output index 1 of the proposal network = action (p^pro(1) of Eq. 1);
    `probs` gives their softmax. Each sub-network is also callable on its own with a state
    (`model.proposal(x, state)`), for training on chunks of a long sequence.

    With a trunk attached (`attach_trunk`, as `load_segment_tube` does for a checkpoint
    whose config has `trunk`) it also holds the C3D trunk that makes the fc7 features
    (`model.trunk`, `clip_features`), shared by both networks.
    """

    def __init__(
        self,
        num_classes: int = 2,  # K+1 outputs of the classification network (index 0 = background)
        in_features: int = C3D_FC7,  # fc7 width of the trunk whose features it reads
        hidden: int = 256,  # LSTM hidden states per layer (§2.1)
        num_layers: int = 2,  # LSTM layers (§2.1)
        dropout: float = 0.5,  # on the fc7 features [U]
        window_lengths: Sequence[int] = CLIP_LENGTHS,  # clip lengths, frames (§2.1)
        window_overlap: float = CLIP_OVERLAP,  # their overlap (§2.1)
    ):
        super().__init__()
        if num_classes < 2:
            raise ValueError(f"num_classes counts background too (K+1 >= 2), got {num_classes}")
        self.num_classes, self.in_features = int(num_classes), int(in_features)
        self.hidden, self.num_layers, self.dropout_rate = int(hidden), int(num_layers), float(dropout)
        self.window_lengths = tuple(int(n) for n in window_lengths)
        self.window_overlap = float(window_overlap)
        self.proposal = SegmentTubeHead(in_features, 2, hidden, num_layers, dropout)
        self.classification = SegmentTubeHead(in_features, num_classes, hidden, num_layers, dropout)
        self.trunk_record: dict[str, Any] | None = None

    def attach_trunk(self, trunk: nn.Module, record: Mapping[str, Any]) -> None:
        """Hold `trunk` (built from `record`, {"model", "config"}) as the `trunk` sub-module."""
        if record.get("model") not in TRUNK_MODELS:
            raise ValueError(f"the trunk must be one of {', '.join(TRUNK_MODELS)}, got {record.get('model')!r}")
        if trunk.feature_dim != self.in_features:
            raise ValueError(f"the trunk's fc7 has {trunk.feature_dim} features, the heads read "
                             f"{self.in_features}")
        self.trunk = trunk
        self.trunk_record = {"model": record["model"], "config": json_ready(record["config"])}

    def config(self) -> dict[str, Any]:
        """The constructor arguments that rebuild this network (the checkpoint config)."""
        out = {"num_classes": self.num_classes, "in_features": self.in_features, "hidden": self.hidden,
               "num_layers": self.num_layers, "dropout": self.dropout_rate,
               "window_lengths": list(self.window_lengths), "window_overlap": self.window_overlap}
        if self.trunk_record is not None:
            out["trunk"] = self.trunk_record
        return out

    def clip_features(self, clips: torch.Tensor) -> torch.Tensor:
        """fc7 (B x in_features) of B x 3 x 16 x h x w clips (RGB 0..255), prepared as the
        trunk's checkpoint says (pixel mean and scale)."""
        trunk = self.trunk
        x = (clips.float() - trunk.pixel_mean) * trunk.pixel_scale
        return trunk.features(x)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if x.dim() != 3 or x.shape[2] != self.in_features:
            raise ModelInputError(f"segment_tube needs B x L x {self.in_features} fc7 sequences, "
                                  f"got {tuple(x.shape)}")
        return self.proposal(x)[0], self.classification(x)[0]

    @torch.no_grad()
    def probs(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """p^pro (B x L x 2) and p^cla (B x L x num_classes) of Eq. 1-2."""
        pro, cla = self(x)
        return pro.softmax(-1), cla.softmax(-1)


MODELS.register("segment_tube", SegmentTubeNet)


def load_segment_tube(path: str, expect_classes: Sequence[str] | None = None,
                      need_trunk: bool = False) -> SegmentTubeNet:
    """A Segment-tube checkpoint, built, in eval mode; InputError for another model, a
    class list that does not start with 'background', or (need_trunk) no embedded trunk."""
    ckpt = read_checkpoint(path)
    check_checkpoint_fits(path, ckpt, expect_model="segment_tube", expect_classes=expect_classes)
    if ckpt["classes"][:1] != ["background"]:
        raise InputError(path, f"checkpoint classes must start with 'background', found {ckpt['classes'][:3]}")
    config = dict(ckpt["config"])
    record = config.pop("trunk", None)
    if need_trunk and not record:
        raise InputError(path, "checkpoint holds the LSTM heads but no C3D trunk; make it with "
                               "make_segment_tube_checkpoint (docs/segment_tube.md)")
    try:
        model = MODELS.build("segment_tube", **config)
        if record:
            if not isinstance(record, dict) or not isinstance(record.get("config"), dict):
                raise ValueError("its 'trunk' entry is not {'model': ..., 'config': {...}}")
            if record.get("model") not in TRUNK_MODELS:
                raise ValueError(f"its trunk is '{record.get('model')}', not one of {', '.join(TRUNK_MODELS)}")
            model.attach_trunk(MODELS.build(record["model"], **record["config"]), record)
    except (TypeError, ValueError) as e:
        raise InputError(path, f"checkpoint config does not build 'segment_tube': {e}") from None
    load_state_dict_checked(model, ckpt["state_dict"], path)
    model.classes = list(ckpt["classes"])
    return model.eval()


def make_segment_tube_checkpoint(trunk_ckpt: str | os.PathLike | nn.Module, heads: SegmentTubeNet,
                                 classes: Sequence[str], path: str | os.PathLike,
                                 training: Mapping[str, Any] | None = None) -> SegmentTubeNet:
    """Write a Segment-tube checkpoint holding a C3D trunk and the two heads; return the
    network it holds.

    `trunk_ckpt`: an S-CNN checkpoint of ours (any of its networks: only conv1..fc7 and
    the input preparation are used) or an S-CNN network already built; `heads`: a
    SegmentTubeNet whose proposal and classification networks are trained (any trunk it
    holds is replaced); `classes`: its K+1 class names, 'background' first.
    """
    from vidseg_cli.models.scnn import SCNNNet

    classes = [str(c) for c in classes]
    if classes[:1] != ["background"] or len(classes) != heads.num_classes:
        raise ValueError(f"classes must be the heads' {heads.num_classes} names, 'background' first; "
                         f"got {classes[:3]}... ({len(classes)})")
    if isinstance(trunk_ckpt, nn.Module):
        trunk = trunk_ckpt
    else:
        trunk, _ = build_from_checkpoint(trunk_ckpt, expect_model=TRUNK_MODELS)
    if not isinstance(trunk, SCNNNet):
        raise ValueError(f"the trunk must be an S-CNN network, got {type(trunk).__name__}")
    head_config = {k: v for k, v in heads.config().items() if k != "trunk"}
    model = SegmentTubeNet(**head_config)
    model.load_state_dict({k: v for k, v in heads.state_dict().items() if not k.startswith("trunk.")})
    model.attach_trunk(trunk, {"model": "scnn", "config": scnn_config(trunk)})
    save_checkpoint(path, model, classes, name="segment_tube", config=model.config(), training=training)
    model.classes = classes
    return model.eval()


def scnn_config(net: nn.Module) -> dict[str, Any]:
    """The constructor arguments of an S-CNN network (its own record when MODELS built it)."""
    given = getattr(net, "model_config", None)
    if given is not None:
        return json_ready(given)
    return json_ready({
        "stage": net.stage, "num_classes": net.num_classes, "width": net.width, "pooling": net.pooling,
        "dropout": net.dropout.p, "frame_size": list(net.spec.frame_size),
        "crop_size": list(net.spec.crop_size), "pixel_mean": net.pixel_mean,
        "pixel_scale": net.pixel_scale, "window_lengths": list(net.window_lengths),
        "window_overlap": net.window_overlap,
        "window_frequency": None if net.window_frequency is None else net.window_frequency.tolist(),
    })


def json_ready(value: Any) -> Any:
    """Tuples as lists, numpy numbers as Python numbers: a config as JSON would give it."""
    import json

    return json.loads(json.dumps(value, default=lambda v: v.tolist() if hasattr(v, "tolist") else str(v)))
