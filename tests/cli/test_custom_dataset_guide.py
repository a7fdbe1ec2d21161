"""docs/custom-dataset.md stays true: every command of its `sh` blocks runs, in order, from
the repository root, with runs/custom/ moved under a temporary folder; then what the guide
says of the results is checked."""

from __future__ import annotations

import glob
import json
import os
import re
import shlex
import subprocess
import sys

import pytest

from tests.conftest import ROOT

GUIDE = ROOT / "docs" / "custom-dataset.md"


def guide_commands() -> list[list[str]]:
    """The commands of the guide's ```sh blocks, one per line (a trailing backslash joins)."""
    blocks = re.findall(r"```sh\n(.*?)```", GUIDE.read_text(), flags=re.S)
    text = "\n".join(blocks).replace("\\\n", " ")
    return [shlex.split(line) for line in text.splitlines() if line.strip() and not line.startswith("#")]


def _argv(words: list[str], runs: str) -> list[str]:
    """`vidseg`/`python` as this interpreter runs them, runs/custom moved, globs expanded."""
    prog = {"vidseg": [sys.executable, "-m", "vidseg_cli.cli.main"], "python": [sys.executable]}
    assert words[0] in prog, f"the guide runs only vidseg and python commands, not {words[0]!r}"
    out = list(prog[words[0]])
    for w in words[1:]:
        w = w.replace("runs/custom", runs)
        out += sorted(glob.glob(w)) or [w] if "*" in w else [w]
    return out


def test_the_guide_has_every_step():
    names = [" ".join(c[:2]) for c in guide_commands()]
    for step in ("vidseg check-dataset", "vidseg extract-frames", "vidseg train", "vidseg predict",
                 "vidseg evaluate", "python docs/examples/custom/make_davis.py"):
        assert any(n.startswith(step) for n in names), step


@pytest.mark.slow
def test_the_guides_commands_run_and_say_what_it_says(tmp_path):
    runs = str(tmp_path / "custom")
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    outs = []
    for words in guide_commands():
        argv = _argv(words, runs)
        res = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
        assert res.returncode == 0, f"{shlex.join(words)}\n{res.stderr[-2000:]}"
        outs.append((words, res))
    pred = json.loads((tmp_path / "custom" / "predict.json").read_text())
    assert [v["video_id"] for v in pred["results"]] == ["bikes", "carphone_pristine"]
    assert all(v["detections"] for v in pred["results"])  # printed in seconds, best first
    predict_out = next(r.stdout for w, r in outs if w[1] == "predict" and "fsn" in w)
    assert "bikes (fsn): " in predict_out and "(start and end in seconds)" in predict_out
    # the two annotation files hold the same segments: the same figures
    a = json.loads((tmp_path / "custom" / "eval_json.json").read_text())
    b = json.loads((tmp_path / "custom" / "eval_thumos.json").read_text())
    assert a["protocol"] == "activitynet" and b["protocol"] == "thumos14"
    assert a["mAP"] == b["mAP"] and len(a["mAP"]) == 3
    # --config: the longer run is the first one's settings with --epochs 3
    first = json.loads((tmp_path / "custom" / "fsn" / "config.json").read_text())["command"]["params"]
    longer = json.loads((tmp_path / "custom" / "fsn_longer" / "config.json").read_text())["command"]["params"]
    assert longer == {**first, "epochs": "3"} and first["epochs"] == "2"
    # pixels: one prediction per hand-drawn mask, scored
    px = json.loads((tmp_path / "custom" / "eval_pixels.json").read_text())
    assert sorted(p.name for p in (tmp_path / "custom" / "davis" / "Annotations" / "480p").iterdir()) == [
        "carphone_pristine"]
    assert "carphone_pristine" in json.dumps(px) and "J" in json.dumps(px)
