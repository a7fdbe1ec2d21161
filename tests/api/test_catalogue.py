"""The stage catalogue agrees with the commands, the store's kinds and the README."""

from __future__ import annotations

import importlib
import json
import re

import click
import pytest

from tests.conftest import ROOT
from vidseg_cli.api.catalogue import MAIN, OUT, OUTSIDE_KINDS, STAGES, in_group, top_level
from vidseg_cli.cli.main import COMMANDS, TOOLS
from vidseg_cli.cli.train import TRAIN_COMMANDS
from vidseg_cli.core.registry import Registry, RegistryError
from vidseg_cli.store.kinds import KINDS


def _command(stage) -> click.Command:
    module, attr = stage.command.split(":")
    return getattr(importlib.import_module(module), attr)


@pytest.mark.parametrize("name", STAGES.names())
def test_every_port_names_a_known_kind_and_a_real_option(name):
    stage = STAGES.get(name)
    cmd = _command(stage)
    assert cmd.name == stage.argv[-1]
    options = {o for p in cmd.params for o in p.opts}
    has_inputs = any(isinstance(p, click.Argument) and p.nargs == -1 for p in cmd.params)
    for port in (*stage.reads, *stage.writes):
        for kind in port.kinds:
            assert kind in KINDS or kind in OUTSIDE_KINDS, f"{name}: unknown kind {kind!r}"
        if port.via == MAIN:
            assert has_inputs, f"{name}: reads INPUTS but takes no arguments"
        elif port.via in (OUT, "beside -o"):
            assert "-o" in options, f"{name}: writes -o but has no -o"
        else:
            assert port.via in options, f"{name}: {port.via} is not one of its options"
    assert stage.writes, f"{name} writes nothing"
    assert stage.scope in ("video", "set")


def test_the_group_lists_the_catalogue_and_the_tools_only():
    assert set(COMMANDS) == {s.name for s in top_level()} | set(TOOLS)
    assert set(TRAIN_COMMANDS) == {s.argv[1] for s in in_group("train")}
    assert {s.name for s in top_level()} | {s.name for s in in_group("train")} == set(STAGES.names())


def test_per_video_stages_write_one_file_per_video_and_set_stages_are_known():
    per_video = {s.name for s in top_level() if s.scope == "video"}
    assert per_video == {"extract-frames", "extract-features", "segment-3d", "propose", "localize",
                         "hmm-smooth", "crf-refine", "segment-tube", "predict"}
    assert {"evaluate", "hmm-fit", "export"} <= {s.name for s in top_level() if s.scope == "set"}
    assert all(s.scope == "set" for s in in_group("train"))


def test_localize_records_its_secondary_output():
    loc = STAGES.get("localize")
    assert loc.output_kinds() == ["detections", "frame_scores"]
    crf = STAGES.get("crf-refine")
    assert [p.kinds for p in crf.reads if p.paired] == [("frames",)]


def test_registry_refuses_a_second_stage_under_a_taken_name():
    reg = Registry("stages")
    reg.register("a", object())
    with pytest.raises(RegistryError, match="already taken"):
        reg.register("a", object())


def test_stages_json_lists_every_command_with_its_kinds(cli):
    res = cli("stages", "--json", "-")
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    by_name = {s["name"]: s for s in doc["stages"]}
    assert set(by_name) == set(STAGES.names())
    assert by_name["segment-3d"]["reads"][0]["kinds"] == ["frames"]
    assert by_name["segment-3d"]["writes"][0]["kinds"] == ["scores"]
    assert by_name["train segment"]["argv"] == ["train", "segment"]
    assert set(doc["outside_kinds"]) == set(OUTSIDE_KINDS)


def test_stages_table_and_json_file(cli, tmp_path):
    res = cli("stages")
    assert res.exit_code == 0
    for name in STAGES.names():
        assert name in res.stdout
    assert "[metrics (--json)]" in res.stdout  # optional ports in brackets, not eaten as markup
    out = tmp_path / "stages.json"
    assert cli("stages", "--json", out).exit_code == 0
    assert len(json.loads(out.read_text())["stages"]) == len(STAGES)


def _readme_commands() -> set[str]:
    """`vidseg NAME` (and `vidseg train A|B`) of the README's command table."""
    names = set()
    for line in (ROOT / "README.md").read_text().splitlines():
        m = re.match(r"\|\s*`vidseg ([a-z0-9-]+)(?: ((?:[a-z0-9-]+\\?\|)*[a-z0-9-]+))?", line)
        if not m:
            continue
        if m.group(1) == "train":
            names |= {f"train {w}" for w in m.group(2).replace("\\", "").split("|")}
        else:
            names.add(m.group(1))
    return names


def test_readme_command_table_agrees_with_the_catalogue():
    assert _readme_commands() == (set(STAGES.names()) | set(TOOLS)) - {"train"}
