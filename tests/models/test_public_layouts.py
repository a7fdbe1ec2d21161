"""Public weight layouts: every loader against the real key/shape layouts of
../shared/reference/*.json (fake state_dicts with exactly those keys and shapes).

Full-width models are built on the meta device and filled with `assign=True`, so no
weights are initialized twice; large fake tensors are zeros with random values in their
first and last elements, which is enough to see which tensor went where.
"""

from __future__ import annotations

import json

import pytest
import torch

from tests.conftest import DATA
from vidseg_cli.errors import InputError
from vidseg_cli.models import MODELS
from vidseg_cli.models.backbones2d import VGG16, ResNet2D
from vidseg_cli.models.c3d import C3D
from vidseg_cli.models.checkpoint.layouts import detect_layout, load_public_weights
from vidseg_cli.models.fcn3d import FCN3D
from vidseg_cli.models.r2plus1d import R2Plus1D18
from vidseg_cli.models.sep3d import Sep3D

# Key/shape layouts of public checkpoints (no weights), copied from ../shared/reference.
REFERENCE = DATA / "reference"
BIG = 1 << 20  # tensors with more elements get zeros + random ends


def layout(name: str) -> dict[str, list[int]]:
    path = REFERENCE / f"{name}.json"
    if not path.is_file():
        pytest.skip(f"reference layout not found at {path}")
    return json.loads(path.read_text())["state_dict"]


def fake(name: str, seed: int = 0) -> dict[str, torch.Tensor]:
    """A state_dict with the keys and shapes of a reference layout, random values."""
    g = torch.Generator().manual_seed(seed)
    sd = {}
    for k, shape in layout(name).items():
        if k.endswith("num_batches_tracked"):
            sd[k] = torch.tensor(7)
            continue
        n = 1
        for s in shape:
            n *= s
        if n > BIG:
            t = torch.zeros(shape)
            t.view(-1)[:4096] = torch.randn(4096, generator=g)
            t.view(-1)[-4096:] = torch.randn(4096, generator=g)
        else:
            t = torch.randn(shape, generator=g)
        sd[k] = t
    return sd


def meta(name: str, **config):
    with torch.device("meta"):
        return MODELS.build(name, **config)


def shapes(model: torch.nn.Module) -> dict[str, list[int]]:
    return {k: list(v.shape) for k, v in model.state_dict().items()}


# -- our modules have exactly the public key layouts ----------------------------------------
@pytest.mark.parametrize(
    "ref, name, config",
    [
        ("c3d_sports1m_pytorch_port", "c3d", {}),
        ("torchvision_r2plus1d_18", "r2plus1d-18", {}),
        ("torchvision_resnet18", "resnet18", {"num_classes": 1000}),
        ("torchvision_resnet50", "resnet50", {"num_classes": 1000}),
        ("torchvision_vgg16", "vgg16", {"num_classes": 1000}),
    ],
)
def test_full_width_key_layout_equals_reference(ref, name, config):
    want = layout(ref)
    have = shapes(meta(name, **config))
    assert list(have) == list(want)  # same keys in the same (state_dict) order
    assert have == want


def test_r2plus1d_parameter_count_is_torchvisions():
    m = meta("r2plus1d-18")
    assert sum(p.numel() for p in m.parameters()) == 31_505_325  # torchvision's weights enum


# -- C3D Sports-1M port ------------------------------------------------------------------------
def test_c3d_port_loads_by_key_into_c3d():
    sd = fake("c3d_sports1m_pytorch_port")
    assert detect_layout(sd) == "c3d-sports1m-port"
    m = meta("c3d")
    report = load_public_weights(sd, m, assign=True)
    assert report.layout == "c3d-sports1m-port" and report.notes == {}
    assert m.conv3b.weight is sd["conv3b.weight"] or torch.equal(m.conv3b.weight, sd["conv3b.weight"])
    for k in ("conv1.weight", "conv5b.bias", "fc6.weight", "fc8.bias"):
        assert torch.equal(m.state_dict()[k], sd[k]), k


def test_c3d_port_into_two_way_proposal_net_keeps_fresh_fc8():
    sd = fake("c3d_sports1m_pytorch_port")
    m = meta("c3d", num_classes=2)  # S-CNN proposal network
    report = load_public_weights(sd, m, assign=True)
    assert "fc8" in report.notes and "2 outputs" in report.notes["fc8"]
    assert torch.equal(m.fc7.weight, sd["fc7.weight"])
    assert m.fc8.weight.shape == (2, 4096)


def test_c3d_port_into_fcn3d_reshapes_fc6_channel_major():
    sd = fake("c3d_sports1m_pytorch_port")
    for name in ("3dfcn-32s", "3dfcn-8s"):
        m = meta(name, num_classes=487)
        report = load_public_weights(sd, m, assign=True)
        assert "upscore" in report.notes and "fc8" not in report.notes
        w6 = sd["fc6.weight"]  # 4096 x 8192, index c*16 + h*4 + w (port's view(-1, 8192))
        conv6 = m.fc6.weight  # 4096 x 512 x 1 x 4 x 4
        assert conv6.shape == (4096, 512, 1, 4, 4)
        for o, c, h, w in [(0, 0, 0, 0), (0, 3, 2, 1), (0, 200, 3, 3), (4095, 511, 3, 3), (4095, 511, 0, 2)]:
            assert conv6[o, c, 0, h, w] == w6[o, c * 16 + h * 4 + w]
        assert torch.equal(m.fc7.weight.flatten(1), sd["fc7.weight"])
        assert torch.equal(m.score.weight.flatten(1), sd["fc8.weight"])
        assert torch.equal(m.conv4a.weight, sd["conv4a.weight"])


def test_c3d_port_into_fcn3d_with_other_classes_and_wrong_target():
    sd = fake("c3d_sports1m_pytorch_port")
    m = meta("3dfcn-8s", num_classes=2)
    report = load_public_weights(sd, m, assign=True)
    assert "score keeps its fresh init" in report.notes["fc8"]
    with pytest.raises(InputError, match=r"c3d-sports1m-port weights fit c3d, 3dfcn-32s, 3dfcn-8s, not resnet18"):
        load_public_weights(sd, meta("resnet18"), assign=True, path="c3d.pickle")


def test_c3d_port_missing_and_unexpected_keys_are_named(tmp_path):
    sd = fake("c3d_sports1m_pytorch_port")
    del sd["conv4b.bias"]
    sd["conv6.weight"] = torch.zeros(1)
    p = tmp_path / "c3d.pickle"
    torch.save(sd, p)
    with pytest.raises(InputError) as e:
        load_public_weights(p, meta("c3d"), assign=True)
    msg = str(e.value)
    assert msg.startswith(f"{p}: ") and "\n" not in msg
    assert "missing keys [conv4b.bias]" in msg and "unexpected keys [conv6.weight]" in msg


def test_c3d_port_into_narrow_model_names_shape_mismatches():
    sd = fake("c3d_sports1m_pytorch_port")
    with pytest.raises(InputError, match=r"shape mismatch \[conv1.weight \[64, 3, 3, 3, 3\] \(model \[8, 3, 3, 3, 3\]\)"):
        load_public_weights(sd, meta("c3d", width=0.125), assign=True, path="c3d.pickle")


# -- torchvision r2plus1d_18 -------------------------------------------------------------------
def test_r2plus1d_kinetics_loads_by_key():
    sd = fake("torchvision_r2plus1d_18")
    assert detect_layout(sd) == "torchvision-r2plus1d-18"
    m = meta("r2plus1d-18")
    report = load_public_weights(sd, m, assign=True)
    assert report.notes == {}
    own = m.state_dict()
    for k in ("stem.0.weight", "layer2.0.conv1.0.0.weight", "layer4.1.conv2.0.3.weight",
              "layer3.0.downsample.1.running_var", "fc.weight"):
        assert torch.equal(own[k], sd[k]), k
    assert int(own["layer1.0.conv1.1.num_batches_tracked"]) == 7


def test_r2plus1d_kinetics_into_sep3d_encoder():
    sd = fake("torchvision_r2plus1d_18")
    m = meta("sep3d")
    report = load_public_weights(sd, m, assign=True)
    assert "dropped" in report.notes["fc"] and "pyramid" in report.notes and "decoder" in report.notes
    own = m.state_dict()
    for k in ("stem.3.weight", "layer4.1.conv2.0.3.weight", "layer3.1.conv1.0.1.running_mean"):
        assert torch.equal(own[f"encoder.{k}"], sd[k]), k
    # the dilated encoder has the same weights: dilation changes no shape
    assert m.encoder.layer4[1].conv2[0][3].dilation == (4, 1, 1)


def test_r2plus1d_file_without_bn_counters_loads():
    sd = {k: v for k, v in fake("torchvision_r2plus1d_18").items() if not k.endswith("num_batches_tracked")}
    report = load_public_weights(sd, meta("r2plus1d-18"), assign=True)
    assert "num_batches_tracked" in report.notes


def test_r3d_layout_is_not_taken_for_r2plus1d():
    sd = fake("torchvision_r3d_18")
    assert detect_layout(sd) is None
    with pytest.raises(InputError, match="unknown weight layout.*torchvision-r2plus1d-18"):
        load_public_weights(sd, meta("r2plus1d-18"), assign=True, path="r3d.pth")


# -- torchvision ResNet-18/50, VGG-16 -----------------------------------------------------------
@pytest.mark.parametrize("ref, name", [("torchvision_resnet18", "resnet18"), ("torchvision_resnet50", "resnet50")])
def test_resnet_imagenet_loads_by_key(ref, name):
    sd = fake(ref)
    assert detect_layout(sd) == "torchvision-resnet"
    m = meta(name, num_classes=1000)
    assert load_public_weights(sd, m, assign=True).notes == {}
    own = m.state_dict()
    for k in ("conv1.weight", "layer4.1.bn2.running_mean", "layer2.0.downsample.0.weight", "fc.bias"):
        assert torch.equal(own[k], sd[k]), k
    # a feature extractor drops fc
    m0 = meta(name)
    assert "dropped" in load_public_weights(sd, m0, assign=True).notes["fc"]
    assert "fc.weight" not in m0.state_dict()


def test_resnet_flow_model_gets_cross_modality_init():
    sd = fake("torchvision_resnet18")
    m = meta("resnet18", in_channels=10)
    report = load_public_weights(sd, m, assign=True)
    assert "cross-modality" in report.notes["conv1.weight"]
    mean = sd["conv1.weight"].mean(dim=1)  # 64 x 7 x 7
    assert m.conv1.weight.shape == (64, 10, 7, 7)
    for c in range(10):
        torch.testing.assert_close(m.conv1.weight[:, c], mean)


def test_resnet18_weights_into_resnet50_name_the_keys():
    with pytest.raises(InputError, match=r"missing keys \[layer1.0.conv3.weight"):
        load_public_weights(fake("torchvision_resnet18"), meta("resnet50"), assign=True, path="r18.pth")


def test_vgg16_imagenet_loads_by_key():
    sd = fake("torchvision_vgg16")
    assert detect_layout(sd) == "torchvision-vgg16"
    m = meta("vgg16", num_classes=1000)
    assert load_public_weights(sd, m, assign=True).notes == {}
    own = m.state_dict()
    for k in ("features.0.weight", "features.28.bias", "classifier.0.weight", "classifier.6.bias"):
        assert torch.equal(own[k], sd[k]), k
    m_gap = meta("vgg16", head="gap", in_channels=10)
    notes = load_public_weights(sd, m_gap, assign=True).notes
    assert "features.0.weight" in notes and "classifier.6" in notes
    assert set(m_gap.state_dict()) == {k for k in sd if k.startswith("features.")}


def test_public_file_wrappers_and_module_prefix(tmp_path):
    sd = fake("torchvision_resnet18")
    p = tmp_path / "wrapped.pth"
    torch.save({"state_dict": {f"module.{k}": v for k, v in sd.items()}, "epoch": 3}, p)
    m = meta("resnet18", num_classes=1000)
    assert load_public_weights(p, m, assign=True).layout == "torchvision-resnet"
    assert torch.equal(m.layer3[1].conv2.weight, sd["layer3.1.conv2.weight"])


def test_public_loaders_fill_real_small_models():
    """Same loaders without the meta device: a narrow C3D into a narrow 3DFCN, copied."""
    c3d = C3D(num_classes=3, width=1 / 16)
    fcn = FCN3D(num_classes=3, width=1 / 16)
    load_public_weights(c3d.state_dict(), fcn)
    assert torch.equal(fcn.fc6.weight.flatten(1), c3d.fc6.weight)
    r = R2Plus1D18(width=1 / 16)
    s = Sep3D(width=1 / 16, crop_size=64)
    load_public_weights(r.state_dict(), s)
    assert torch.equal(s.encoder.layer2[0].conv1[0][0].weight, r.layer2[0].conv1[0][0].weight)
    assert isinstance(ResNet2D(width=1 / 16), torch.nn.Module) and isinstance(VGG16(width=1 / 16), torch.nn.Module)
