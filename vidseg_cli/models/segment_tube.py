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
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

from vidseg_cli.errors import InputError
from vidseg_cli.models.checkpoint.format import (
    build_from_checkpoint,
    check_checkpoint_fits,
    read_checkpoint,
)
from vidseg_cli.models.common import ModelInputError
from vidseg_cli.models.registry import MODELS
from vidseg_cli.stages.segment_tube_temporal import CLIP_LENGTHS, CLIP_OVERLAP

C3D_FC7 = 4096  # C3D's fc7 width at width 1.0
SUBNETWORKS = ("proposal", "classification")

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
        self.window_lengths = tuple(int(n) for n in window_lengths)
        self.window_overlap = float(window_overlap)
        self.proposal = SegmentTubeHead(in_features, 2, hidden, num_layers, dropout)
        self.classification = SegmentTubeHead(in_features, num_classes, hidden, num_layers, dropout)

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


def load_segment_tube(path: str, expect_classes: Sequence[str] | None = None) -> SegmentTubeNet:
    """A Segment-tube checkpoint, built, in eval mode; InputError for another model or a
    class list that does not start with 'background'."""
    ckpt = read_checkpoint(path)
    check_checkpoint_fits(path, ckpt, expect_model="segment_tube", expect_classes=expect_classes)
    if ckpt["classes"][:1] != ["background"]:
        raise InputError(path, f"checkpoint classes must start with 'background', found {ckpt['classes'][:3]}")
    model, _ = build_from_checkpoint(path, expect_model="segment_tube")
    return model
