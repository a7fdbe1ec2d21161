"""C3D (S-CNN §3.1) and 3DFCN-32s/8s (3DFCN §3.3-3.4): sizes, the convolutionalized fc6,
the dense (8s) network against the strided one, the bilinear DeConv and its alignment."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from vidseg_cli.models import ModelInputError
from vidseg_cli.models.c3d import C3D
from vidseg_cli.models.checkpoint.layouts import load_public_weights
from vidseg_cli.models.fcn3d import FCN3D

W = 1 / 16  # CPU-sized width: channels 4 ... 32, fc 256; sizes do not depend on it


@pytest.fixture(autouse=True)
def _one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.mark.parametrize("pooling", ["port", "caffe"])
def test_c3d_16x112x112_flattens_to_8192(pooling):
    with torch.device("meta"):
        m = C3D(pooling=pooling)
        h = m.trunk(torch.empty(1, 3, 16, 112, 112))
        assert h.shape == (1, 512, 1, 4, 4) and m.fc6.in_features == 8192
        assert m(torch.empty(2, 3, 16, 112, 112)).shape == (2, 487)
        assert m.features(torch.empty(2, 3, 16, 112, 112)).shape == (2, 4096)


def test_c3d_port_and_caffe_pool5_windows_differ_by_one_cell():
    """Port: windows [-1,0],[1,2],...; Caffe: [0,1],[2,3],...,[6] on the 7x7 pool4 map."""
    x = torch.arange(49.0).reshape(1, 1, 1, 7, 7).repeat(1, 1, 2, 1, 1)
    port, caffe = C3D(width=W, pooling="port").pool5, C3D(width=W, pooling="caffe").pool5
    assert port(x)[0, 0, 0, 0].tolist() == [0, 2, 4, 6]
    assert caffe(x)[0, 0, 0, 0].tolist() == [8, 10, 12, 13]


def test_c3d_small_width_forward_and_wrong_clip():
    m = C3D(num_classes=2, width=W).eval()  # S-CNN's 2-way proposal network
    x = torch.randn(2, 3, 16, 112, 112)
    assert m(x).shape == (2, 2) and m.features(x).shape == (2, 256)
    with pytest.raises(ModelInputError, match=r"c3d takes 16x112x112 clips.*a 16x128x171 clip gives pool5 32 x 1 x 5 x 6"):
        m(torch.randn(1, 3, 16, 128, 171))
    with pytest.raises(ModelInputError, match="takes 3 input channels, got 1"):
        m(torch.randn(1, 1, 16, 112, 112))


def test_3dfcn_32s_40x240x320_gives_the_3x5x7_map_of_section_3_3():
    m = FCN3D(num_classes=3, width=W).eval()
    assert m.map_size((40, 240, 320)) == (3, 5, 7)
    x = torch.randn(1, 3, 40, 240, 320)
    with torch.no_grad():
        s = m.score_map(x)
        assert s.shape == (1, 3, 3, 5, 7)  # T x H x W = 3 x 5 x 7, "7 x 5 x 3" in W x H x T
        y = m.upsample(s, (40, 240, 320))
    assert y.shape == (1, 3, 40, 240, 320)


def test_3dfcn_8s_map_is_4x_denser():
    with torch.device("meta"):
        m = FCN3D(stride="8s")
        s = m.score_map(torch.empty(1, 3, 40, 240, 320))
        assert s.shape[2:] == m.map_size((40, 240, 320)) == (7, 15, 25)
        assert m(torch.empty(1, 3, 40, 240, 320)).shape == (1, 2, 40, 240, 320)
    assert m.upscore.kernel_size == (8, 16, 16) and m.upscore.stride == (4, 8, 8)
    assert m.conv5a.dilation == (2, 2, 2) and m.fc6.dilation == (1, 4, 4)
    assert m.pool4.stride == 1 and m.pool5.stride == 1


def test_conv_fc6_equals_linear_fc6_on_a_16x112x112_clip():
    """3DFCN initialized from C3D (Caffe rounding) gives C3D's scores on one clip."""
    torch.manual_seed(0)
    c3d = C3D(num_classes=5, width=W, pooling="caffe").eval()
    fcn = FCN3D(num_classes=5, width=W).eval()
    load_public_weights(c3d.state_dict(), fcn, "c3d-sports1m-port")
    x = torch.randn(2, 3, 16, 112, 112)
    with torch.no_grad():
        want = c3d(x)  # 2 x 5
        s = fcn.score_map(x)  # 2 x 5 x 1 x 1 x 1
        assert s.shape == (2, 5, 1, 1, 1)
        torch.testing.assert_close(s.flatten(1), want, rtol=1e-4, atol=1e-5)
        # and fc6 alone: conv on pool5 == linear on the channel-major flatten
        p5 = c3d.trunk(x)  # 2 x 32 x 1 x 4 x 4
        torch.testing.assert_close(fcn.fc6(p5).flatten(1), c3d.fc6(p5.flatten(1)), rtol=1e-4, atol=1e-5)


def test_3dfcn_8s_sampled_every_4th_cell_equals_32s():
    """§3.4: same weights, dilation instead of stride: 8s[::4, ::4, ::4] == 32s where no
    Caffe partial pooling window is involved (here: none, 32 x 192 x 192)."""
    torch.manual_seed(1)
    m32 = FCN3D(num_classes=3, width=W).eval()
    m8 = FCN3D(num_classes=3, stride="8s", width=W).eval()
    sd = {k: v for k, v in m32.state_dict().items() if not k.startswith("upscore")}
    m8.load_state_dict(sd, strict=False)
    x = torch.randn(1, 3, 32, 192, 192)
    with torch.no_grad():
        s32, s8 = m32.score_map(x), m8.score_map(x)
    assert s32.shape[2:] == (2, 3, 3) and s8.shape[2:] == (5, 9, 9)
    torch.testing.assert_close(s8[:, :, ::4, ::4, ::4], s32, rtol=1e-4, atol=1e-5)
    assert (s8[:, :, 1, ::4, ::4] - s32[:, :, 0]).abs().max() > 1e-6  # in-between cells are new positions


@pytest.mark.parametrize("stride", ["32s", "8s"])
def test_deconv_is_bilinear_and_puts_cells_at_window_centres(stride):
    m = FCN3D(num_classes=2, stride=stride, width=W)
    st = m.out_stride
    # the raw DeConv of a constant map is constant in the interior
    const = torch.full((1, 2, 3, 4, 5), 2.5)
    with torch.no_grad():
        up = m.upscore(const)
    inner = up[:, :, st[0] : -st[0], st[1] : -st[1], st[2] : -st[2]]
    torch.testing.assert_close(inner, torch.full_like(inner, 2.5))
    assert not torch.allclose(up[:, :, :1, :1, :1], torch.tensor(2.5))  # borders fade: the pad matters
    # upsample(): a ramp over cells becomes the ramp over input positions (p - c0) / s,
    # clamped to the first/last cell outside the centres; per dimension
    size = (40, 240, 320)
    n = m.map_size(size)
    for dim in range(3):
        shape = [1, 2, *n]
        ramp = torch.arange(n[dim], dtype=torch.float32).reshape([-1 if i == dim + 2 else 1 for i in range(5)])
        with torch.no_grad():
            y = m.upsample(ramp.expand(shape).contiguous(), size)
        assert y.shape == (1, 2, *size)
        line = y[0, 0].movedim(dim, 0).reshape(size[dim], -1)
        torch.testing.assert_close(line, line[:, :1].expand_as(line))  # depends on `dim` only
        p = torch.arange(size[dim], dtype=torch.float32)
        want = ((p - m.window_center[dim]) / st[dim]).clamp(0, n[dim] - 1)
        torch.testing.assert_close(line[:, 0], want, atol=1e-5, rtol=0)


def test_forward_of_constant_scores_is_constant_everywhere():
    m = FCN3D(num_classes=2, stride="8s", width=W)
    s = torch.full((1, 2, 7, 15, 25), -1.25)
    with torch.no_grad():
        y = m.upsample(s, (40, 240, 320))
    torch.testing.assert_close(y, torch.full_like(y, -1.25))


@pytest.mark.parametrize("stride, least", [("32s", (1, 97, 97)), ("8s", (13, 121, 121))])
def test_min_input_is_tight_and_checked(stride, least):
    m = FCN3D(stride=stride, width=W)
    assert m.min_input == least
    with torch.device("meta"):
        mm = FCN3D(stride=stride, width=W)
    assert mm.score_map(torch.empty(1, 3, *least)).shape[2:] == (1, 1, 1)
    for dim in range(3):
        small = list(least)
        small[dim] -= 1
        if small[dim] == 0:
            continue
        with pytest.raises(ModelInputError, match=rf"needs clips of at least {least[0]} frames of {least[1]}x{least[2]}"):
            m(torch.zeros(1, 3, *small))
        # without our check the layers themselves fail: the minimum is tight
        x = torch.empty(1, 3, *small, device="meta")
        with pytest.raises(RuntimeError):
            for name in ("conv1", "pool1", "conv2", "pool2", "conv3a", "conv3b", "pool3", "conv4a",
                         "conv4b", "pool4", "conv5a", "conv5b", "pool5", "fc6"):
                x = getattr(mm, name)(x)


def test_3dfcn_8s_trains_end_to_end():
    torch.manual_seed(2)
    m = FCN3D(num_classes=2, stride="8s", width=W)
    x = torch.randn(1, 3, 13, 121, 121)
    y = m(x)
    target = torch.zeros(1, 13, 121, 121, dtype=torch.long)
    F.cross_entropy(y, target).backward()
    for name in ("conv1.weight", "conv5b.weight", "fc6.weight", "score.weight", "upscore.weight"):
        g = dict(m.named_parameters())[name].grad
        assert g is not None and g.abs().sum() > 0, name


@pytest.mark.parametrize("stride", ["8s", "32s"])
def test_window_center_is_the_receptive_fields_centre(stride):
    # Independent of the pooling arithmetic in WINDOW_CENTER: with positive weights every
    # input voxel a cell sees raises its score, so the centroid of |d score / d input|,
    # averaged over random videos (max pooling picks random taps), is the centre of what
    # the cell sees. It must be where upsample() puts the cell: 63.5 + s*y, not C3D's
    # 112-pixel clip centre 55.5 (8 px off).
    torch.manual_seed(0)
    m = FCN3D(num_classes=2, stride=stride, width=W, dropout=0.0).eval()
    with torch.no_grad():
        for p in m.parameters():
            p.uniform_(0.0, 0.01)
    x = torch.rand(3, 3, 48, 256, 256, requires_grad=True)
    s = m.score_map(x)
    cell = [n // 2 for n in s.shape[2:]]
    s[:, 1, cell[0], cell[1], cell[2]].sum().backward()
    g = x.grad.abs().sum((0, 1))  # T x H x W
    for dim in range(3):
        profile = g.sum(tuple(d for d in range(3) if d != dim))
        centroid = float((profile * torch.arange(len(profile))).sum() / profile.sum())
        want = m.window_center[dim] + m.out_stride[dim] * cell[dim]
        assert abs(centroid - want) < 2.5, (dim, centroid, want)  # seen: within 1.3


@pytest.mark.parametrize("name,kwargs,shape", [
    ("3dfcn-8s", {"width": 1 / 16}, (2, 3, 16, 128, 136)),
    ("c3d", {"width": 1 / 16, "num_classes": 5}, (2, 3, 16, 112, 112)),
    ("sep3d", {"width": 1 / 16, "crop_size": 64}, (2, 3, 8, 64, 72)),
])
def test_channels_last_on_cpu_changes_no_result(name, kwargs, shape, monkeypatch):
    """On a CPU the 3D models run channels-last (models/common.conv3d_layout, for speed):
    the same outputs as the default layout, and their backbone really gets that layout."""
    from vidseg_cli.models import MODELS, c3d, common, fcn3d, r2plus1d

    torch.manual_seed(0)
    model = MODELS.build(name, **kwargs).eval()
    x = torch.randn(*shape)
    assert common.conv3d_layout(x).is_contiguous(memory_format=torch.channels_last_3d)
    with torch.no_grad():
        fast = model(x)
        for mod in (c3d, fcn3d, r2plus1d):
            monkeypatch.setattr(mod, "conv3d_layout", lambda v: v)
        plain = model(x)
    assert fast.shape == plain.shape
    torch.testing.assert_close(fast, plain, rtol=1e-4, atol=1e-5)
