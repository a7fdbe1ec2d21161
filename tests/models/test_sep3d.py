"""R(2+1)D-18 and Sep3D (Sep3D §3): temporal dilation instead of stride, the 4 x H/16 x W/16
encoder map, pyramid rates, gradients, Table 5's operation counts, the J-HMDB head."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from vidseg_cli.models import ModelInputError
from vidseg_cli.models.r2plus1d import R2Plus1D18, midplanes
from vidseg_cli.models.sep3d import (
    MaskActionClassifier,
    Sep3D,
    crop_and_resize,
    head_op_counts,
    largest_component_boxes,
    scaled_dilations,
)

W = 1 / 16


@pytest.fixture(autouse=True)
def _one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def test_midplanes_match_torchvision_printout():
    # torchvision_r2plus1d_18_modules.txt: layer1 144; layer2 230/288; layer3 460/576; layer4 921/1152
    assert [midplanes(a, b) for a, b in [(64, 64), (64, 128), (128, 128), (128, 256), (256, 256),
                                         (256, 512), (512, 512)]] == [144, 230, 288, 460, 576, 921, 1152]
    m = R2Plus1D18(width=W)
    assert m.layer2[0].conv2[0][0].out_channels == midplanes(4, 8)  # one mid count per block


def test_r2plus1d_small_width_forward():
    m = R2Plus1D18(num_classes=5, width=W).eval()
    x = torch.randn(2, 3, 8, 32, 32)
    assert m(x).shape == (2, 5)
    sizes = [tuple(o.shape[2:]) for o in m.stages(x)]
    assert sizes == [(8, 16, 16), (4, 8, 8), (2, 4, 4), (1, 2, 2)] and m.out_stride == (8, 16)
    with pytest.raises(ModelInputError, match="B x C x T x H x W"):
        m(torch.randn(3, 8, 32, 32))


def test_temporal_dilation_replaces_stride_exactly():
    """Same weights; layer3/4 without temporal stride but dilated: every 4th frame of the
    dilated layer4 equals the strided network's layer4 (DeepLab's rule keeps every
    receptive field)."""
    torch.manual_seed(0)
    std = R2Plus1D18(num_classes=0, width=W).eval()
    dil = R2Plus1D18(num_classes=0, width=W, temporal_strides=(1, 2, 1, 1)).eval()
    dil.load_state_dict(std.state_dict())
    for m in std.modules():  # non-trivial BN statistics
        if isinstance(m, torch.nn.BatchNorm3d):
            m.running_mean.uniform_(-0.1, 0.1)
            m.running_var.uniform_(0.5, 1.5)
    dil.load_state_dict(std.state_dict())
    assert dil.dilations == [(1, 1), (1, 1), (2, 1), (4, 1)]
    assert dil.layer3[0].conv1[0][3].dilation == (1, 1, 1) and dil.layer3[0].conv2[0][3].dilation == (2, 1, 1)
    assert dil.layer4[0].conv1[0][3].dilation == (2, 1, 1) and dil.layer4[1].conv1[0][3].dilation == (4, 1, 1)
    x = torch.randn(1, 3, 16, 16, 16)
    with torch.no_grad():
        s, d = std.stages(x), dil.stages(x)
    assert s[3].shape[2] == 2 and d[3].shape[2] == 8
    torch.testing.assert_close(d[2][:, :, ::2], s[2], rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(d[3][:, :, ::4], s[3], rtol=1e-4, atol=1e-5)
    undilated = R2Plus1D18(num_classes=0, width=W, temporal_strides=(1, 2, 1, 1), dilate=False).eval()
    undilated.load_state_dict(std.state_dict())
    with torch.no_grad():
        assert not torch.allclose(undilated.stages(x)[3][:, :, ::4], s[3], atol=1e-4)


def test_sep3d_encoder_map_is_4_by_h16_by_w16_for_8_frames():
    m = Sep3D(width=W, crop_size=64).eval()
    x = torch.randn(1, 3, 8, 64, 96)
    with torch.no_grad():
        l1, l2, l3, l4 = m.encoder.stages(x)
    assert l4.shape[2:] == (4, 4, 6)  # 4 x H/16 x W/16 (Table 4: 4 x 20 x 20 at 320)
    assert l2.shape[2:] == (4, 16, 24) and l3.shape[2:] == (4, 8, 12)
    with torch.device("meta"):
        full = Sep3D()
        assert full.encoder.stages(torch.empty(1, 3, 8, 320, 320))[3].shape == (1, 512, 4, 20, 20)


def test_sep3d_shapes_and_gradients():
    torch.manual_seed(0)
    m = Sep3D(num_classes=3, width=W, crop_size=64)
    x = torch.randn(2, 3, 8, 64, 64)
    logits, feats = m.forward_with_features(x)
    assert logits.shape == (2, 3, 8, 64, 64) and feats.shape == (2, m.feature_dim, 4, 16, 16)
    F.cross_entropy(logits, torch.randint(0, 3, (2, 8, 64, 64))).backward()
    named = dict(m.named_parameters())
    for name in ("encoder.stem.0.weight", "encoder.layer4.1.conv2.0.3.weight",
                 "pyramid.branches.0.0.weight", "pyramid.branches.3.0.weight",
                 "pyramid.frame.0.weight", "pyramid.fuse.0.weight",
                 "decoder.ups.0.0.weight", "decoder.ups.1.3.weight", "decoder.classifier.weight"):
        g = named[name].grad
        assert g is not None and g.abs().sum() > 0, name
    with pytest.raises(ModelInputError, match="at least 1 frames of 16x16"):
        m(torch.randn(1, 3, 8, 8, 64))


def test_sep3d_third_decoder_level_joins_layer1():
    torch.manual_seed(0)
    m = Sep3D(num_classes=2, width=W, crop_size=64, decoder_levels=3)
    x = torch.randn(1, 3, 8, 64, 64)
    logits, feats = m.forward_with_features(x)
    assert logits.shape == (1, 2, 8, 64, 64) and feats.shape == (1, m.feature_dim, 8, 32, 32)
    F.cross_entropy(logits, torch.randint(0, 2, (1, 8, 64, 64))).backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in m.decoder.ups[2].parameters())
    with pytest.raises(ValueError, match="decoder_levels"):
        Sep3D(decoder_levels=4)


def test_pyramid_rates_scale_with_the_crop():
    assert scaled_dilations((6, 12, 18), 384) == (6, 12, 18)
    assert scaled_dilations((6, 12, 18), 320) == (5, 10, 15)
    assert scaled_dilations((6, 12, 18), 112) == (2, 4, 5)
    assert scaled_dilations((6, 12, 18), 64) == (1, 2, 3)
    assert scaled_dilations((6, 12, 18), 16) == (1, 1, 1)
    m = Sep3D(width=W, crop_size=112)
    rates = [b[0].dilation for b in m.pyramid.branches[1:]]
    assert rates == [(1, 2, 2), (1, 4, 4), (1, 5, 5)]  # spatial only, T dilation 1
    assert [b[0].groups for b in m.pyramid.branches[1:]] == [32, 32, 32]  # depthwise (512/16)
    no_ff = Sep3D(width=W, crop_size=112, frame_features=False)
    assert no_ff.pyramid.frame is None and no_ff.pyramid.fuse[0].in_channels == 4 * 16


def _closed_form(conv_type: str, clip=(8, 320, 320), c4=512, c3=256, c2=128, p=256, d=128, k=2) -> int:
    """Table 5's operation counts of our pyramid + decoder from Sep3D Eq. 1-3 and 5 (x2: a
    multiply-add is two operations). Maps: encoder T/2 x H/16, decoder at H/8 and H/4."""
    t = clip[0] // 2
    n16, n8, n4 = (t * (clip[1] // s) * (clip[2] // s) for s in (16, 8, 4))

    def conv(n, m, o):  # a 3x3x3 conv of the kind, on n positions, m -> o channels
        if conv_type == "standard":
            return n * m * o * 27  # Eq. 1
        if conv_type == "separable":
            return n * m * 27 + n * m * o  # Eq. 2 + 3
        mid = midplanes(m, o)
        return n * m * mid * 9 + n * mid * o * 3  # Eq. 5's numerator

    macs = n16 * c4 * p + 3 * conv(n16, c4, p) + t * c4 * p + n16 * 5 * p * p  # pyramid
    macs += conv(n8, p, d) + conv(n4, d + c3, d) + conv(n4, d + c2, d) + n4 * d * k  # decoder
    return 2 * macs


@pytest.mark.parametrize("conv_type", ["standard", "r2plus1d", "separable"])
def test_table5_op_counts_match_closed_form(conv_type):
    got = head_op_counts(conv_type, (8, 320, 320))
    assert got["flops"] == got["pyramid_flops"] + got["decoder_flops"]
    assert got["flops"] == _closed_form(conv_type)


def test_table5_separable_is_much_cheaper():
    std, r21, sep = (head_op_counts(c)["flops"] for c in ("standard", "r2plus1d", "separable"))
    assert abs(r21 - std) / std < 0.01  # R(2+1)D keeps the parameter count, hence the cost
    assert std / sep > 15  # paper: 136 / 6 billion
    # paper: "5% of parameters"; ours ~8% (1x1x1 branches and fusion weigh more at our widths)
    assert head_op_counts("separable")["params"] < head_op_counts("standard")["params"] / 10


def test_largest_component_boxes():
    m = np.zeros((3, 10, 12), dtype=np.uint8)
    m[0, 1:3, 1:3] = 1  # 4 pixels
    m[0, 5:9, 6:8] = 1  # 8 pixels: the largest
    m[1, 2, 2] = m[1, 3, 3] = m[1, 4, 4] = 1  # diagonal: one 8-connected region
    m[1, 0, 11] = 1
    boxes, valid = largest_component_boxes(m)
    assert valid.tolist() == [True, True, False]
    assert boxes[0].tolist() == [6, 5, 8, 9] and boxes[1].tolist() == [2, 2, 5, 5]
    assert boxes[2].tolist() == [0, 0, 12, 10]  # empty frame: whole frame, not valid


def test_crop_and_resize_samples_box_centres():
    h, w = 8, 16  # feature map at 1/4 of a 32 x 64 image
    feats = torch.arange(w, dtype=torch.float32).expand(1, 1, h, w).contiguous()  # value = column
    box = torch.tensor([[16.0, 8.0, 48.0, 24.0]])  # x0, y0, x1, y1 in image pixels
    out = crop_and_resize(feats, box, (32, 64), 4)
    # sample x = 16 + 32 * (i + 0.5) / 4 -> feature column x / 4 - 0.5
    want = torch.tensor([(16 + 32 * (i + 0.5) / 4) / 4 - 0.5 for i in range(4)])
    torch.testing.assert_close(out[0, 0], want.expand(4, 4))


def test_mask_action_classifier_per_frame_logits_and_gradients():
    torch.manual_seed(0)
    seg = Sep3D(num_classes=2, width=W, crop_size=64)
    head = MaskActionClassifier(seg.feature_dim, num_actions=21, crop=5)
    x = torch.randn(1, 3, 8, 64, 64)
    logits, feats = seg.forward_with_features(x)
    masks = torch.zeros(1, 8, 64, 64, dtype=torch.bool)
    masks[:, :7, 10:30, 20:50] = True  # last frame empty
    actions, boxes, valid = head(feats, masks)
    assert actions.shape == (1, 8, 21) and boxes.shape == (1, 8, 4)
    assert valid.tolist() == [[True] * 7 + [False]] and boxes[0, 0].tolist() == [20, 10, 50, 30]
    F.cross_entropy(actions.reshape(8, 21), torch.full((8,), 4)).backward()
    assert seg.decoder.last[3].weight.grad.abs().sum() > 0  # "back propagate gradients for all the weights"
    assert head.fc.weight.grad.abs().sum() > 0
