"""Stage arguments checked by the stage's parser; inputs and outputs predicted from the
catalogue as each stage names them."""

from __future__ import annotations

import click
import pytest

from vidseg_cli.api.catalogue import STAGES
from vidseg_cli.cluster.plan import Item, PlanError, find_stage, parse, plan_items, set_outputs


def test_stage_names_one_and_two_words_and_an_unknown_one_is_refused():
    assert find_stage(["train", "fsn", "x"])[0].name == "train fsn"
    assert find_stage(["propose", "a"]) == (STAGES.get("propose"), ["a"])
    with pytest.raises(PlanError, match="extract-frame: not a stage"):
        find_stage(["extract-frame", "a"])


def test_a_typo_is_the_stages_own_usage_error():
    with pytest.raises(click.UsageError, match="--fpss"):
        parse(STAGES.get("extract-frames"), ["a.mp4", "-o", "o", "--fpss", "3"])
    with pytest.raises(click.UsageError):
        parse(STAGES.get("propose"), ["a.h5", "-o", "o", "--method", "nope"])


def test_outputs_follow_the_options_that_enable_them(tmp_path):
    st = STAGES.get("localize")
    ctx = parse(st, ["f/a.features.h5", "f/b.features.h5", "-o", str(tmp_path / "d"),
                     "--method", "fsn", "--weights", "w.ckpt"])
    items = plan_items(st, ctx)
    assert [i.video_id for i in items] == ["a", "b"]
    assert items[0].outputs == [str(tmp_path / "d" / "a.detections.h5"),
                                str(tmp_path / "d" / "a.frame_scores.h5")]
    ctx = parse(st, ["p/a.proposals.h5", "-o", str(tmp_path / "d"), "--method", "scnn",
                     "--weights", "w.ckpt"])
    assert plan_items(st, ctx)[0].outputs == [str(tmp_path / "d" / "a.detections.h5")]
    tube = STAGES.get("segment-tube")
    ctx = parse(tube, ["a.frames.h5", "-o", str(tmp_path), "--weights", "w", "--frame-scores"])
    assert [o.rsplit("/", 1)[1] for o in plan_items(tube, ctx)[0].outputs] == [
        "a.labels.h5", "a.detections.h5", "a.frame_scores.h5"]


def test_a_stage_writing_its_inputs_kind_and_given_upstream_items(tmp_path):
    st = STAGES.get("hmm-smooth")
    ctx = parse(st, ["s/a.frame_scores.h5", "s/b.scores.h5", "--hmm", "h.h5", "-o", str(tmp_path)])
    assert [i.kind for i in plan_items(st, ctx)] == ["frame_scores", "scores"]
    given = [Item("/up/x.scores.h5", "vid7", "scores")]
    items = plan_items(st, ctx, given)
    assert items[0].outputs == [str(tmp_path / "vid7.scores.h5")] and items[0].input == "/up/x.scores.h5"


def test_folder_inputs_expand_as_the_stage_expands_them_and_subfolders_are_ignored(tmp_path):
    import numpy as np

    from vidseg_cli import store

    d = tmp_path / "feats"
    d.mkdir()
    for v in ("a", "b"):
        store.write_features(d / f"{v}.features.h5", np.zeros((2, 4), np.float32), np.arange(2),
                             video_id=v, num_frames=10, fps=10.0)
    (d / "_slurm").mkdir()  # a submission folder inside an output folder
    st = STAGES.get("localize")
    ctx = parse(st, [str(d), "-o", str(tmp_path / "o"), "--weights", "w"])
    assert [i.video_id for i in plan_items(st, ctx)] == ["a", "b"]


def test_submit_needs_a_folder_for_o_and_set_stages_name_their_outputs(tmp_path):
    st = STAGES.get("extract-frames")
    with pytest.raises(PlanError, match="-o must be a folder"):
        plan_items(st, parse(st, ["a.mp4", "-o", str(tmp_path / "a.h5")]))
    ev = STAGES.get("evaluate")
    assert set_outputs(ev, parse(ev, ["d", "--gt", "g.json", "--json", str(tmp_path / "m.json")])) \
        == [str(tmp_path / "m.json")]
    tr = STAGES.get("train fsn")
    ctx = parse(tr, ["f", "--gt", "g.json", "-o", str(tmp_path / "run")])
    assert set_outputs(tr, ctx) == [str(tmp_path / "run" / "last.ckpt")]
