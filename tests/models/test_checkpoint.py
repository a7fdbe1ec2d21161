"""The model registry and our checkpoints: build by name, save/load round trips for every
model, resume state, and the bad inputs segment-3d refuses (another model or class list, a pickle
that is not plain data, key mismatches)."""

from __future__ import annotations

import os
import pickle
import warnings

import pytest
import torch

from vidseg_cli.errors import InputError
from vidseg_cli.models import MODELS, Registry, RegistryError
from vidseg_cli.models.checkpoint.format import (
    build_from_checkpoint,
    read_checkpoint,
    save_checkpoint,
)

CLASSES = ["background", "jump", "run"]

# A tiny config and input for every registered model.
TINY = {
    "c3d": ({"num_classes": 3, "width": 1 / 16}, (1, 3, 16, 112, 112)),
    "3dfcn-32s": ({"num_classes": 3, "width": 1 / 16}, (1, 3, 9, 97, 97)),
    "3dfcn-8s": ({"num_classes": 3, "width": 1 / 16}, (1, 3, 13, 121, 121)),
    "r2plus1d-18": ({"num_classes": 3, "width": 1 / 16}, (1, 3, 4, 32, 32)),
    "sep3d": ({"num_classes": 3, "width": 1 / 16, "crop_size": 32}, (1, 3, 4, 32, 32)),
    "resnet18": ({"num_classes": 3, "width": 1 / 16}, (2, 3, 32, 32)),
    "resnet50": ({"num_classes": 3, "width": 1 / 16}, (2, 3, 32, 32)),
    "vgg16": ({"num_classes": 3, "width": 1 / 16}, (2, 3, 32, 32)),
    "fsn": ({"in_features": 8, "num_classes": 3, "hidden": 16}, (2, 6, 8)),
    "wfsn": ({"in_features": 8, "num_classes": 2, "hidden": 16}, (2, 6, 8)),
    "scnn": ({"num_classes": 3, "width": 1 / 16}, (1, 3, 16, 112, 112)),
    "segment_tube": ({"num_classes": 3, "in_features": 8, "hidden": 6}, (2, 5, 8)),
    "i3d": ({"num_classes": 3, "in_channels": 2}, (1, 2, 8, 32, 32)),
}


def test_every_issue_model_is_registered():
    # fsn-e2e composes a registered backbone with fsn; test_fsn_end_to_end_round_trip covers it.
    # sep3d+head composes sep3d with its action head; tests/train/test_segment_head.py covers it.
    assert set(MODELS.names()) == set(TINY) | {"fsn-e2e", "sep3d+head"}


def test_fsn_end_to_end_round_trip(tmp_path):
    torch.manual_seed(0)
    bb = {"num_classes": 0, "width": 1 / 16}
    d = MODELS.build("resnet18", **bb).feature_dim
    model = MODELS.build("fsn-e2e", backbone="resnet18", backbone_config=bb, num_classes=3,
                         feature_mean=[0.0] * d, feature_std=[1.0] * d, hidden=8).eval()
    x = torch.randn(1, 4, 3, 32, 32)  # B x N x C x H x W snippets
    with torch.no_grad():
        want = model(x, centers=[2, 7, 12, 17], num_frames=20)
    path = save_checkpoint(tmp_path / "e2e.pt", model, CLASSES)
    again, _ = build_from_checkpoint(path, expect_model="fsn-e2e")
    with torch.no_grad():
        torch.testing.assert_close(again(x, centers=[2, 7, 12, 17], num_frames=20), want)


def test_registry_refuses_duplicates_and_names_itself():
    reg = Registry("localizers")
    reg.register("fsn", dict)
    with pytest.raises(RegistryError, match="registry 'localizers': name 'fsn' is already taken"):
        reg.register("fsn", list)
    with pytest.raises(RegistryError, match="registry 'localizers' has no 'scnn'; known: fsn"):
        reg.get("scnn")
    with pytest.raises(RegistryError, match="registry 'models' has no 'c3d-xl'; known: 3dfcn-32s, 3dfcn-8s, c3d"):
        MODELS.build("c3d-xl")
    with pytest.raises(ValueError, match="not plain JSON"):
        MODELS.build("fsn", in_features=8, num_classes=3, hidden=object())
    with pytest.raises(TypeError, match="registry 'models': 'sep3d': got an unexpected keyword argument 'widht'"):
        MODELS.build("sep3d", widht=0.5)
    m = MODELS.build("3dfcn-8s", width=1 / 16)
    assert m.model_config == {"num_classes": 2, "width": 1 / 16, "dropout": 0.5, "in_channels": 3}
    assert MODELS.build("sep3d", width=1 / 16).model_config["pyramid_dilations"] == [6, 12, 18]


@pytest.mark.parametrize("name", sorted(TINY))
def test_checkpoint_round_trip_rebuilds_every_model(name, tmp_path):
    torch.manual_seed(0)
    config, shape = TINY[name]
    model = MODELS.build(name, **config).eval()
    assert model.model_name == name and model.model_config.items() >= config.items()
    assert set(model.model_config) >= {"num_classes"}  # resolved: defaults recorded too
    x = torch.randn(shape)
    with torch.no_grad():
        want = model(x)
    path = save_checkpoint(tmp_path / f"{name}.pt", model, CLASSES)
    raw = torch.load(path, weights_only=True)
    assert set(raw) == {"vidseg_checkpoint", "model", "classes", "config", "state_dict"}
    assert raw["model"] == name and raw["config"] == model.model_config and raw["classes"] == CLASSES
    again, ckpt = build_from_checkpoint(path, expect_model=name, expect_classes=CLASSES)
    assert again.classes == CLASSES and not again.training
    with torch.no_grad():
        torch.testing.assert_close(again(x), want)


def test_resume_state_round_trips_and_is_checked_before_writing(tmp_path):
    model = MODELS.build("fsn", in_features=8, num_classes=3, hidden=16)
    opt = torch.optim.SGD(model.parameters(), lr=1e-4, momentum=0.9, weight_decay=5e-4)
    model(torch.randn(2, 6, 8)).sum().backward()
    opt.step()
    state = {"optimizer": opt.state_dict(), "epoch": 4, "step": 120, "rng": torch.get_rng_state(),
             "history": [{"loss": 0.5}], "done": False, "note": None}
    p = save_checkpoint(tmp_path / "run.pt", model, CLASSES, train_state=state)
    ckpt = read_checkpoint(p)
    assert ckpt["train_state"]["epoch"] == 4 and torch.equal(ckpt["train_state"]["rng"], state["rng"])
    opt2 = torch.optim.SGD(model.parameters(), lr=1.0, momentum=0.0)
    opt2.load_state_dict(ckpt["train_state"]["optimizer"])
    assert opt2.param_groups[0]["lr"] == 1e-4
    mom = next(iter(opt2.state.values()))["momentum_buffer"]
    assert torch.equal(mom, next(iter(opt.state.values()))["momentum_buffer"])

    import numpy as np

    with pytest.raises(TypeError, match=r"checkpoint\['train_state'\]\['np'\] is a ndarray"):
        save_checkpoint(tmp_path / "bad.pt", model, CLASSES, train_state={"np": np.zeros(2)})
    assert not list(tmp_path.glob("bad.pt*")) and not list(tmp_path.glob(".bad.pt*"))


class _Evil:
    """Unpickling this calls os.mkdir(marker): code a checkpoint must never run."""

    def __init__(self, marker: str):
        self.marker = marker

    def __reduce__(self):
        return (os.mkdir, (self.marker,))


@pytest.mark.parametrize("how", ["torch.save", "pickle.dump"])
def test_a_pickle_that_is_not_plain_data_is_refused_not_run(tmp_path, how):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pt"
    good = MODELS.build("fsn", in_features=8, num_classes=3, hidden=16)
    payload = {"vidseg_checkpoint": 1, "model": "fsn", "classes": CLASSES,
               "config": good.model_config, "state_dict": good.state_dict(), "hook": _Evil(str(marker))}
    if how == "torch.save":
        torch.save(payload, path)
    else:
        with open(path, "wb") as f:
            pickle.dump(_Evil(str(marker)), f, protocol=2)
    # the payload really is live: a plain unpickler would run it
    with pytest.raises(InputError, match="refused to load: not plain weights data") as e:
        build_from_checkpoint(path)
    assert str(e.value).startswith(f"{path}: ") and "\n" not in str(e.value)
    assert not marker.exists()
    from vidseg_cli.models.checkpoint.layouts import load_public_weights

    with pytest.raises(InputError, match="refused to load"):
        load_public_weights(path, good)
    assert not marker.exists()
    if how == "pickle.dump":  # proof that the file would have run code
        with open(path, "rb") as f:
            pickle.load(f)
        assert marker.is_dir()


@pytest.mark.parametrize("protocol", [2, 4])
def test_a_refusal_is_one_complete_line_without_torch_warnings(tmp_path, protocol):
    from vidseg_cli.models.checkpoint.weights import read_weights

    path = tmp_path / "evil.pt"
    path.write_bytes(pickle.dumps({"vidseg_checkpoint": 1, "x": _Evil(str(tmp_path / "pwned"))},
                                  protocol=protocol))
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        with pytest.raises(InputError) as e:
            read_weights(path)
    assert [str(w.message) for w in seen] == []  # torch's protocol note included
    head = (f"{path}: refused to load: not plain weights data (tensors, numbers, strings, lists, "
            "dicts); nothing in it was run (")
    msg = str(e.value)
    assert msg.startswith(head) and msg.endswith(")") and "\n" not in msg
    reason = msg[len(head):-1]  # torch's own words on what it refused, not its advice
    assert "nsupported" in reason and "PyTorch" not in reason and "weights_only" not in reason


def _saved(tmp_path, name="3dfcn-8s", classes=CLASSES):
    config, _ = TINY[name]
    return save_checkpoint(tmp_path / f"{name}.pt", MODELS.build(name, **config), classes)


def test_checkpoint_for_another_model_or_class_list(tmp_path):
    p = _saved(tmp_path)
    with pytest.raises(InputError, match=r"checkpoint is for model '3dfcn-8s', not 'sep3d'$"):
        build_from_checkpoint(p, expect_model="sep3d")
    with pytest.raises(InputError, match=r"not 'sep3d' or '3dfcn-32s'"):
        build_from_checkpoint(p, expect_model=["sep3d", "3dfcn-32s"])
    model, _ = build_from_checkpoint(p, expect_model=["sep3d", "3dfcn-8s"])
    assert model.stride == "8s"
    with pytest.raises(InputError, match=r"classes differ.*has 3 \['background', 'jump', 'run'\], expected 2 \['background', 'walk'\]"):
        build_from_checkpoint(p, expect_classes=["background", "walk"])


def test_key_mismatch_names_missing_and_unexpected_in_one_line(tmp_path):
    p = _saved(tmp_path)
    ckpt = torch.load(p, weights_only=True)
    del ckpt["state_dict"]["conv3b.bias"]
    ckpt["state_dict"]["conv9.weight"] = torch.zeros(2)
    ckpt["state_dict"]["fc7.bias"] = torch.zeros(5)
    torch.save(ckpt, p)
    with pytest.raises(InputError) as e:
        build_from_checkpoint(p)
    msg = str(e.value)
    assert "\n" not in msg and msg.startswith(f"{p}: weights do not fit 3dfcn-8s: ")
    assert "missing keys [conv3b.bias]" in msg and "unexpected keys [conv9.weight]" in msg
    assert "shape mismatch [fc7.bias [5] (model [256])]" in msg


def test_other_bad_checkpoints(tmp_path):
    p = tmp_path / "bare.pt"
    torch.save(MODELS.build("resnet18", width=1 / 16).state_dict(), p)
    with pytest.raises(InputError, match="not a vidseg checkpoint.*torchvision-resnet"):
        build_from_checkpoint(p)
    q = _saved(tmp_path)
    ckpt = torch.load(q, weights_only=True)
    ckpt["model"] = "c3d-xl"
    torch.save(ckpt, q)
    with pytest.raises(InputError, match="model 'c3d-xl', which this vidseg does not know"):
        build_from_checkpoint(q)
    ckpt["model"], ckpt["config"] = "3dfcn-8s", {"strides": 3}
    torch.save(ckpt, q)
    with pytest.raises(InputError, match="config does not build '3dfcn-8s'"):
        build_from_checkpoint(q)
    ckpt["vidseg_checkpoint"] = 2
    torch.save(ckpt, q)
    with pytest.raises(InputError, match="format 2 is newer"):
        build_from_checkpoint(q)
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(InputError, match="not a readable torch weights file"):
        build_from_checkpoint(junk)
    with pytest.raises(InputError, match="no such weights file"):
        build_from_checkpoint(tmp_path / "absent.pt")
