"""`vidseg train ... --config RUN/config.json`: a run again from its record, the command
line over the file, and every unknown or mistyped key refused."""

from __future__ import annotations

import json

import pytest
import torch

from vidseg_cli.models.checkpoint.format import read_checkpoint

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def synth(tmp_path_factory):
    from click.testing import CliRunner

    from vidseg_cli.cli.main import cli

    out = tmp_path_factory.mktemp("synth")
    res = CliRunner().invoke(cli, ["synth", "-o", str(out), "--train", "2", "--test", "0", "--size", "128x96",
                                   "--duration", "4,4", "--seed", "1", "-q"], catch_exceptions=False)
    assert res.exit_code == 0, res.output
    return out


@pytest.fixture(scope="module")
def first(synth, tmp_path_factory):
    """A tiny sep3d run, given a callback-parsed option (--class-weights) and a relative path."""
    import os

    from click.testing import CliRunner

    from vidseg_cli.cli.main import cli

    run = tmp_path_factory.mktemp("runs") / "a"
    cwd = os.getcwd()
    os.chdir(synth.parent)
    try:
        res = CliRunner().invoke(cli, [
            "train", "segment", "--model", "sep3d", "--data", synth.name, "-o", str(run),
            "--recipe", "synthetic", "--width", "0.0625", "--device", "cpu", "--crop", "32",
            "--clip-len", "8", "--max-steps", "3", "--val-videos", "1", "--lr", "0.01",
            "--class-weights", "1,5", "--seed", "3", "-q"], catch_exceptions=False)
    finally:
        os.chdir(cwd)
    assert res.exit_code == 0, res.output
    return run


def _weights(run):
    return read_checkpoint(run / "last.ckpt")["state_dict"]


def _same(a, b) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_the_run_records_what_it_was_given(first, synth):
    sec = json.loads((first / "config.json").read_text())["command"]
    assert sec["name"] == "train segment"
    assert sec["params"] == {"model": "sep3d", "data": str(synth), "recipe": "synthetic",
                             "width": "0.0625", "device": "cpu", "crop": "32", "clip-len": "8",
                             "max-steps": "3", "val-videos": "1", "lr": "0.01",
                             "class-weights": "1,5", "seed": "3"}  # -o, -q: the invocation's
    assert json.loads((first / "config.json").read_text())["settings"]["recipe"]["lr"] == 0.01


def test_a_run_from_the_record_gives_identical_weights(cli, first, tmp_path):
    res = cli("train", "segment", "--config", first / "config.json", "-o", tmp_path / "b", "-q")
    assert res.exit_code == 0, res.output
    assert _same(_weights(first), _weights(tmp_path / "b"))
    rec = json.loads((tmp_path / "b" / "config.json").read_text())
    assert rec["command"] == json.loads((first / "config.json").read_text())["command"]


def test_the_command_line_overrides_the_file(cli, first, tmp_path):
    res = cli("train", "segment", "--config", first / "config.json", "-o", tmp_path / "c", "--lr",
              "0.001", "-q")
    assert res.exit_code == 0, res.output
    rec = json.loads((tmp_path / "c" / "config.json").read_text())
    assert rec["settings"]["recipe"]["lr"] == 0.001 and rec["command"]["params"]["lr"] == "0.001"
    assert rec["settings"]["recipe"]["class_weights"] == [1.0, 5.0]  # the rest from the file
    assert rec["settings"]["seed"] == 3
    assert not _same(_weights(first), _weights(tmp_path / "c"))


def _edited(first, tmp_path, **change):
    doc = json.loads((first / "config.json").read_text())
    params = doc["command"]["params"]
    for k, v in change.items():
        params[k.replace("_", "-")] = v
    path = tmp_path / "config.json"
    path.write_text(json.dumps(doc))
    return path


@pytest.mark.parametrize("change, text", [
    ({"lrr": "0.1"}, "'lrr' is not a setting of `vidseg train segment` (did you mean 'lr'?)"),
    ({"learning_rate": "0.1"}, "'learning-rate' is not a setting of `vidseg train segment`"),
    ({"output": "elsewhere"}, "'output' is not a setting"),  # the run folder is the invocation's
    ({"max_steps": "three"}, "'max-steps': 'three' is not a valid integer"),
    ({"model": "i3d"}, "'model': 'i3d' is not one of"),
])
def test_unknown_or_mistyped_keys_fail_in_one_line(cli, first, tmp_path, change, text):
    cfg = _edited(first, tmp_path, **change)
    res = cli("train", "segment", "--config", cfg, "-o", tmp_path / "d")
    assert res.exit_code == 2, res.output
    assert res.stderr.count("\n") == 1 and res.stderr.startswith(f"vidseg train: error: {cfg}: ")
    assert text in res.stderr
    assert not (tmp_path / "d").exists()


def test_a_record_of_another_command_or_without_settings_is_refused(cli, first, tmp_path):
    doc = json.loads((first / "config.json").read_text())
    doc["command"]["name"] = "train fsn"
    other = tmp_path / "other.json"
    other.write_text(json.dumps(doc))
    res = cli("train", "segment", "--config", other, "-o", tmp_path / "e")
    assert res.exit_code == 2 and "the settings of `vidseg train fsn`, not of `vidseg train segment`" in res.stderr
    del doc["command"]
    other.write_text(json.dumps(doc))
    res = cli("train", "segment", "--config", other, "-o", tmp_path / "e")
    assert res.exit_code == 2 and "no 'command' section" in res.stderr
    res = cli("train", "segment", "--config", tmp_path / "none.json", "-o", tmp_path / "e")
    assert res.exit_code == 2 and "none.json: cannot read" in res.stderr


def test_every_training_command_records_each_setting_under_its_own_key():
    import importlib

    from vidseg_cli.api.catalogue import in_group
    from vidseg_cli.cli.run_config import ConfigOption, _recorded

    for stage in in_group("train"):
        module, attr = stage.command.split(":")
        cmd = getattr(importlib.import_module(module), attr)
        cfg = next(p for p in cmd.params if isinstance(p, ConfigOption))
        keys = _recorded(cmd, cfg.run_dir_param)
        skipped = {"resume", "overwrite", "quiet", "json_out", "config", cfg.run_dir_param, "help"}
        assert len(keys) == len([p for p in cmd.params if p.name not in skipped]), stage.name
