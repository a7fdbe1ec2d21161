"""I3D (models/i3d.py) against the PyTorch port's layout and outputs.

- The model built for each stream has exactly the 344 keys and shapes of
  tests/data/reference/pytorch_i3d_rgb_flow.json and loads such a state_dict by key.
- Golden numbers: tests/golden/i3d_port.json holds the port's own outputs (its file says
  how they were made) for seeded weights and clips; ours equal them to 1e-4.
- TensorFlow SAME padding on odd sizes against a hand computation.
- A mistyped or missing key is one line naming it.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from tests.conftest import GOLDEN
from tests.models.i3d_weights import i3d_layout, seeded_clip, seeded_i3d_state_dict
from vidseg_cli.errors import InputError
from vidseg_cli.models import MODELS, load_public_weights
from vidseg_cli.models.checkpoint.layouts import detect_layout
from vidseg_cli.models.i3d import InceptionI3d, MaxPool3dSame, Unit3D, same_padding

TOL = 1e-4


@pytest.fixture(scope="module")
def golden() -> dict:
    return json.loads((GOLDEN / "i3d_port.json").read_text())


def loaded(stream: str, seed: int) -> InceptionI3d:
    model = MODELS.build("i3d", in_channels=3 if stream == "rgb" else 2)
    report = load_public_weights(seeded_i3d_state_dict(stream, seed), model)
    assert report.layout == "pytorch-i3d" and report.notes == {}
    return model.eval()


# -- layout ----------------------------------------------------------------------------------
@pytest.mark.parametrize("stream, channels", [("rgb", 3), ("flow", 2)])
def test_keys_and_shapes_equal_the_port(stream, channels):
    with torch.device("meta"):
        model = MODELS.build("i3d", in_channels=channels)
    ours = {k: list(v.shape) for k, v in model.state_dict().items()}
    ref = i3d_layout(stream)
    assert len(ref) == 344
    assert ours == ref
    sd = seeded_i3d_state_dict(stream, 5)
    assert detect_layout(sd) == "pytorch-i3d"
    load_public_weights(sd, model, assign=True)
    assert torch.equal(model.state_dict()["Mixed_4d.b2b.bn.running_var"], sd["Mixed_4d.b2b.bn.running_var"])


def test_batchnorm_is_tensorflows():
    model = MODELS.build("i3d")
    bns = [m for m in model.modules() if isinstance(m, torch.nn.BatchNorm3d)]
    assert len(bns) == 57 and all(b.eps == 1e-3 and b.momentum == 0.01 for b in bns)


# -- golden: the port's own outputs -----------------------------------------------------------
def test_rgb_features_and_logits_equal_the_port(golden):
    g = golden["rgb_16x224"]
    model = loaded("rgb", g["weights_seed"])
    x = seeded_clip(tuple(g["input_shape"]), g["input_seed"])
    with torch.no_grad():  # one forward pass: the features and the logits layer on them
        pooled = model.pooled(x)
        logits = model.logits(pooled).flatten(1)
    feats = pooled.flatten(1)
    assert list(pooled.shape) == g["extract_features_shape"] == [2, 1024, 1, 1, 1]
    np.testing.assert_allclose(feats.numpy(), np.array(g["features"]), rtol=0, atol=TOL)
    np.testing.assert_allclose(logits.numpy(), np.array(g["logits"]), rtol=0, atol=TOL)


def test_flow_features_equal_the_port(golden):
    g = golden["flow_16x224"]
    model = loaded("flow", g["weights_seed"])
    with torch.no_grad():
        feats = model.forward_features(seeded_clip(tuple(g["input_shape"]), g["input_seed"]))
    np.testing.assert_allclose(feats.numpy(), np.array(g["features"]), rtol=0, atol=TOL)


def test_odd_sized_clip_equals_the_port(golden):
    """11 x 97 x 101: every SAME padding is uneven somewhere on the way to Mixed_5c."""
    g = golden["rgb_odd_11x97x101"]
    model = loaded("rgb", g["weights_seed"])
    x = seeded_clip(tuple(g["input_shape"]), g["input_seed"])
    with torch.no_grad():
        h = model.trunk(x)
        feats = model.forward_features(x)
        logits = model(x)
    assert list(h.shape) == g["mixed_5c_shape"] == [1, 1024, 2, 4, 4]
    np.testing.assert_allclose(h.mean(dim=(2, 3, 4))[0].numpy(), g["mixed_5c_mean"], rtol=0, atol=TOL)
    np.testing.assert_allclose(h[0, :, 0, 0, 0].numpy(), g["mixed_5c_first_position"], rtol=0, atol=TOL)
    np.testing.assert_allclose(h[0, :, -1, -1, -1].numpy(), g["mixed_5c_last_position"], rtol=0, atol=TOL)
    # a 2 x 4 x 4 map: the 2x7x7 kernel is cut to the whole map, one position is left
    np.testing.assert_allclose(feats[0].numpy(), g["mixed_5c_mean"], rtol=0, atol=TOL)
    np.testing.assert_allclose(logits.numpy(), model.logits(feats[:, :, None, None, None]).flatten(1).detach(),
                               rtol=0, atol=TOL)


# -- SAME padding by hand ------------------------------------------------------------------------
@pytest.mark.parametrize("size, kernel, stride, expect", [
    # out = ceil(n/s); total = (out-1)*s + k - n; front = total // 2
    (7, 7, 2, (3, 3)),  # out 4: 3*2+7-7 = 6
    (8, 7, 2, (2, 3)),  # out 4: 6+7-8 = 5
    (9, 3, 2, (1, 1)),  # out 5: 8+3-9 = 2
    (10, 3, 2, (0, 1)),  # out 5: 8+3-10 = 1
    (5, 3, 1, (1, 1)),  # out 5: 4+3-5 = 2
    (11, 1, 1, (0, 0)),
    (3, 2, 2, (0, 1)),  # out 2: 2+2-3 = 1
    (1, 7, 2, (3, 3)),  # out 1: 0+7-1 = 6
])
def test_same_padding_by_hand(size, kernel, stride, expect):
    assert same_padding(size, kernel, stride) == expect


def test_padded_conv_and_pool_by_hand():
    """A 1x3x3-kernel stride-2 conv of ones on a 1x5x4 map: SAME pads rows (1, 1), columns
    (0, 1); each output cell counts the real cells its window covers."""
    unit = Unit3D(1, 1, (1, 3, 3), (1, 2, 2), batch_norm=False, relu=False)
    with torch.no_grad():
        unit.conv3d.weight.fill_(1.0)
        y = unit(torch.ones(1, 1, 1, 5, 4))[0, 0, 0]
    # rows: windows [-1..1], [1..3], [3..5] -> 2, 3, 2 real rows; columns [0..2], [2..4] -> 3, 2
    assert torch.equal(y, torch.tensor([[6.0, 4.0], [9.0, 6.0], [6.0, 4.0]]))
    pool = MaxPool3dSame((1, 3, 3), (1, 2, 2))
    x = torch.arange(20, dtype=torch.float32).view(1, 1, 1, 5, 4)
    # windows of rows {0,1}, {1,2,3}, {3,4} and columns {0,1,2}, {2,3}: the max is the bottom-right cell
    assert torch.equal(pool(x)[0, 0, 0], torch.tensor([[6.0, 7.0], [14.0, 15.0], [18.0, 19.0]]))


def test_shapes_follow_ceil_division():
    model = MODELS.build("i3d", num_classes=0).eval()
    with torch.no_grad():
        h = model.trunk(torch.zeros(1, 3, 9, 65, 33))
    assert list(h.shape) == [1, 1024, 2, 3, 2]  # ceil(9/8), ceil(65/32), ceil(33/32)


# -- bad weights: one line naming the key ---------------------------------------------------------
def test_mistyped_key_is_one_line_naming_it():
    sd = seeded_i3d_state_dict("rgb", 0)
    sd["Mixed_4c.b1b.bn.runing_mean"] = sd.pop("Mixed_4c.b1b.bn.running_mean")
    with pytest.raises(InputError) as e:
        load_public_weights(sd, MODELS.build("i3d"), path="rgb_imagenet.pt")
    msg = str(e.value)
    assert "\n" not in msg and msg.startswith("rgb_imagenet.pt: ")
    assert "missing keys [Mixed_4c.b1b.bn.running_mean]" in msg
    assert "unexpected keys [Mixed_4c.b1b.bn.runing_mean]" in msg


def test_missing_logits_key_is_named():
    sd = seeded_i3d_state_dict("rgb", 0)
    del sd["logits.conv3d.bias"]
    with pytest.raises(InputError, match=r"missing keys \[logits\.conv3d\.bias\]"):
        load_public_weights(sd, MODELS.build("i3d"), path="w.pt")


def test_flow_weights_into_rgb_model_name_the_first_conv():
    with pytest.raises(InputError, match=r"Conv3d_1a_7x7\.conv3d\.weight \[64, 2, 7, 7, 7\] \(model \[64, 3"):
        load_public_weights(seeded_i3d_state_dict("flow", 0), MODELS.build("i3d"), path="w.pt")


def test_other_class_count_keeps_the_trunk_and_says_so():
    sd = seeded_i3d_state_dict("rgb", 0)
    sd["logits.conv3d.weight"] = torch.zeros(157, 1024, 1, 1, 1)  # a Charades fine-tune
    sd["logits.conv3d.bias"] = torch.zeros(157)
    report = load_public_weights(sd, MODELS.build("i3d"), path="rgb_charades.pt")
    assert "157 classes" in report.notes["logits"]
    report = load_public_weights(sd, MODELS.build("i3d", num_classes=0), path="rgb_charades.pt")
    assert report.notes["logits"].startswith("dropped")


def test_wrong_input_channels_is_a_model_input_error():
    from vidseg_cli.models import ModelInputError

    with pytest.raises(ModelInputError, match="i3d takes 2 input channels, got 3"):
        MODELS.build("i3d", in_channels=2).forward_features(torch.zeros(1, 3, 8, 32, 32))
