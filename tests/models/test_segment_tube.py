"""Segment-tube's networks (Segment-tube §2.1): the Gers peephole LSTM against torch's LSTM
and gradcheck, stateful chunks, the two sub-networks and their checkpoint loader."""

from __future__ import annotations

import pytest
import torch

from vidseg_cli.errors import InputError
from vidseg_cli.models import MODELS, ModelInputError, save_checkpoint
from vidseg_cli.models.segment_tube import PeepholeLSTM, SegmentTubeNet, load_segment_tube


def _copy_to_torch_lstm(ours: PeepholeLSTM) -> torch.nn.LSTM:
    ref = torch.nn.LSTM(ours.input_size, ours.hidden_size, ours.num_layers, batch_first=True).double()
    with torch.no_grad():
        for k, cell in enumerate(ours.layers):
            getattr(ref, f"weight_ih_l{k}").copy_(cell.weight_ih)
            getattr(ref, f"weight_hh_l{k}").copy_(cell.weight_hh)
            # one bias per gate here; torch sums two
            getattr(ref, f"bias_ih_l{k}").copy_(0.3 * cell.bias)
            getattr(ref, f"bias_hh_l{k}").copy_(0.7 * cell.bias)
    return ref


def test_zero_peepholes_equal_torch_lstm_with_copied_weights_in_float64():
    torch.manual_seed(0)
    ours = PeepholeLSTM(5, hidden_size=7, num_layers=2).double()
    for cell in ours.layers:
        assert torch.equal(cell.peephole, torch.zeros(3, 7))  # initialized as a plain LSTM
    ref = _copy_to_torch_lstm(ours)
    x = torch.randn(3, 9, 5, dtype=torch.float64)
    h0 = torch.randn(2, 3, 7, dtype=torch.float64)
    c0 = torch.randn(2, 3, 7, dtype=torch.float64)
    for state in (None, (h0, c0)):
        y, (h, c) = ours(x, state)
        y_ref, (h_ref, c_ref) = ref(x, state)
        assert y.shape == (3, 9, 7) and h.shape == c.shape == (2, 3, 7)
        torch.testing.assert_close(y, y_ref, rtol=0, atol=1e-12)
        torch.testing.assert_close(h, h_ref, rtol=0, atol=1e-12)
        torch.testing.assert_close(c, c_ref, rtol=0, atol=1e-12)


def test_peepholes_change_the_output_and_pass_gradcheck():
    torch.manual_seed(1)
    lstm = PeepholeLSTM(3, hidden_size=4, num_layers=2).double()
    x = torch.randn(2, 5, 3, dtype=torch.float64, requires_grad=True)
    plain = lstm(x)[0].detach()
    with torch.no_grad():
        for cell in lstm.layers:
            cell.peephole.normal_(0, 0.5)
    assert not torch.allclose(lstm(x)[0], plain)
    h0 = torch.randn(2, 2, 4, dtype=torch.float64, requires_grad=True)
    c0 = torch.randn(2, 2, 4, dtype=torch.float64, requires_grad=True)
    peeps = [cell.peephole for cell in lstm.layers]

    def f(x, h0, c0, *_):
        y, (h, c) = lstm(x, (h0, c0))
        return y, h, c

    # The peepholes are inputs too: gradcheck perturbs them in place, the LSTM reads them.
    assert torch.autograd.gradcheck(f, (x, h0, c0, *peeps))
    y, (h, c) = lstm(x, (h0, c0))
    (y.sum() + c.sum()).backward()
    assert all(p.grad.abs().sum() > 0 for p in peeps)  # the peepholes learn


def test_a_stateful_run_equals_chunks_with_the_state_carried():
    torch.manual_seed(2)
    lstm = PeepholeLSTM(4, hidden_size=6, num_layers=2).double()
    with torch.no_grad():
        for cell in lstm.layers:
            cell.peephole.normal_(0, 0.5)
    x = torch.randn(2, 11, 4, dtype=torch.float64)
    whole, (h, c) = lstm(x)
    parts, state = [], None
    for lo, hi in ((0, 4), (4, 5), (5, 11)):
        y, state = lstm(x[:, lo:hi], state)
        parts.append(y)
    torch.testing.assert_close(torch.cat(parts, 1), whole, rtol=0, atol=1e-14)
    torch.testing.assert_close(state[0], h, rtol=0, atol=1e-14)
    torch.testing.assert_close(state[1], c, rtol=0, atol=1e-14)
    y, (h2, c2) = lstm(x[:, :0], (h, c))  # an empty chunk keeps the state
    assert y.shape == (2, 0, 6) and torch.equal(h2, h) and torch.equal(c2, c)


def test_segment_tube_net_has_two_subnetworks_with_2_and_k_plus_1_outputs():
    torch.manual_seed(3)
    net = MODELS.build("segment_tube", num_classes=4, in_features=8, hidden=6).eval()
    assert net.model_config == {"num_classes": 4, "in_features": 8, "hidden": 6, "num_layers": 2,
                                "dropout": 0.5, "window_lengths": [16, 32], "window_overlap": 0.75}
    x = torch.randn(2, 7, 8)  # B x L clips x fc7
    pro, cla = net(x)
    assert pro.shape == (2, 7, 2) and cla.shape == (2, 7, 4)
    p_pro, p_cla = net.probs(x)
    torch.testing.assert_close(p_pro.sum(-1), torch.ones(2, 7))
    torch.testing.assert_close(p_cla, cla.softmax(-1))
    assert isinstance(net.proposal.lstm, PeepholeLSTM) and net.proposal.lstm.num_layers == 2
    # Each sub-network runs on its own with a carried state (training on chunks).
    y1, s = net.classification(x[:, :3])
    y2, _ = net.classification(x[:, 3:], s)
    torch.testing.assert_close(torch.cat([y1, y2], 1), cla, rtol=0, atol=1e-6)
    default = SegmentTubeNet()
    assert default.in_features == 4096 and default.proposal.lstm.hidden_size == 256
    with pytest.raises(ModelInputError, match="B x L x 8 fc7 sequences, got \\(2, 7\\)"):
        net(torch.randn(2, 7))
    with pytest.raises(ValueError, match="K\\+1 >= 2"):
        SegmentTubeNet(num_classes=1)


def test_loader_refuses_another_model_or_classes_without_background(tmp_path):
    net = MODELS.build("segment_tube", num_classes=3, in_features=8, hidden=6)
    good = save_checkpoint(tmp_path / "st.ckpt", net, ["background", "jump", "run"])
    model = load_segment_tube(str(good), expect_classes=["background", "jump", "run"])
    assert isinstance(model, SegmentTubeNet) and not model.training
    bad = save_checkpoint(tmp_path / "nobg.ckpt", net, ["jump", "run", "walk"])
    with pytest.raises(InputError, match="must start with 'background'"):
        load_segment_tube(str(bad))
    other = save_checkpoint(tmp_path / "fsn.ckpt", MODELS.build("fsn", in_features=8, num_classes=3, hidden=4),
                            ["background", "jump", "run"])
    with pytest.raises(InputError, match="checkpoint is for model 'fsn', not 'segment_tube'"):
        load_segment_tube(str(other))
