"""Guards every command shares: --json never names an input or output, float options
refuse nan/inf, an output never replaces an input, usage errors are one line, and a batch
where every input failed exits 2."""

from __future__ import annotations

import shutil

import pytest


def test_json_refuses_to_overwrite_an_input_or_the_output(cli, carphone, tmp_path):
    video = tmp_path / "v.mp4"
    shutil.copy(carphone, video)
    before = video.read_bytes()
    res = cli("extract-frames", video, "-o", tmp_path / "x.frames.h5", "--json", video)
    assert res.exit_code == 2 and "--json would overwrite" in res.stderr
    assert res.stderr.count("\n") == 1 and video.read_bytes() == before
    assert not (tmp_path / "x.frames.h5").exists()
    res = cli("extract-frames", video, "-o", tmp_path / "x.frames.h5", "--json", tmp_path / "x.frames.h5")
    assert res.exit_code == 2 and not (tmp_path / "x.frames.h5").exists()


def test_evaluate_json_refuses_the_ground_truth(cli, tmp_path):
    gt = tmp_path / "gt.json"
    gt.write_text('{"database": {}}')
    res = cli("evaluate", tmp_path / "p.json", "--gt", gt, "--json", gt)
    assert res.exit_code == 2 and "--json would overwrite" in res.stderr
    assert gt.read_text() == '{"database": {}}'


@pytest.mark.parametrize("argv", [
    ["extract-frames", "{v}", "-o", "{o}", "--fps", "inf"],
    ["extract-frames", "{v}", "-o", "{o}", "--fps", "nan"],
    ["extract-frames", "{v}", "-o", "{o}", "--start", "nan"],
    ["extract-frames", "{v}", "-o", "{o}", "--end", "inf"],
    ["evaluate", "{v}", "--gt", "{v}", "--tiou", "nan"],
])
def test_non_finite_numbers_are_refused_in_one_line(cli, carphone, tmp_path, argv):
    res = cli(*[a.format(v=carphone, o=tmp_path / "o.h5") for a in argv])
    assert res.exit_code == 2
    assert res.stderr.count("\n") == 1 and res.stderr.startswith(f"vidseg {argv[0]}: error: ")
    assert not (tmp_path / "o.h5").exists()


def test_usage_errors_are_one_line(cli, tmp_path):
    res = cli("extract-frames")
    assert res.exit_code == 2 and res.stderr == "vidseg extract-frames: error: Missing argument 'VIDEOS...'.\n"
    res = cli("train", "segment", "--model", "nope")
    assert res.exit_code == 2 and res.stderr.startswith("vidseg train: error: Invalid value for '--model'")
    res = cli("no-such-command")
    assert res.exit_code == 2 and res.stderr == "vidseg: error: No such command 'no-such-command'.\n"


def test_overwrite_never_replaces_an_input(cli, carphone, tmp_path):
    frames = tmp_path / "v.frames.h5"
    assert cli("extract-frames", carphone, "-o", frames).exit_code == 0
    before = frames.read_bytes()
    res = cli("extract-frames", frames, "-o", frames, "--overwrite")
    assert res.exit_code == 2 and "the output would replace this input" in res.stderr
    assert frames.read_bytes() == before


def test_a_batch_where_every_input_failed_exits_2(cli, tmp_path):
    bad = []
    for name in ("a.mp4", "b.mp4"):
        (tmp_path / name).write_bytes(b"not a video")
        bad.append(tmp_path / name)
    res = cli("extract-frames", *bad, "-o", tmp_path / "out")
    assert res.exit_code == 2 and "2 of 2 inputs failed" in res.stderr


def test_json_that_cannot_be_written_is_one_line(cli, tmp_path):
    res = cli("stages", "--json", tmp_path / "no" / "such" / "folder" / "s.json")
    assert res.exit_code == 2 and res.stderr.count("\n") == 1
    assert res.stderr.startswith("vidseg stages: error: ") and "cannot create a file" in res.stderr
