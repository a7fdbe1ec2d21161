"""scripts/papers/table.py: our figures beside the paper's, and a SMALL=1 figure outside its
recorded range failing loudly."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.conftest import ROOT

TABLE = ROOT / "scripts" / "papers" / "table.py"
EXPECTED = ROOT / "experiments" / "papers" / "fsn-small.expected.json"


def run(tmp_path, det_map: float, *extra: str) -> subprocess.CompletedProcess:
    """mAP@0.5 = det_map, the other thresholds inside their ranges."""
    det = tmp_path / "det.json"
    maps = {"0.3": 0.6, "0.4": 0.55, "0.5": det_map, "0.6": 0.35, "0.7": 0.25}
    det.write_text(json.dumps({"mAP": maps}))
    frames = tmp_path / "frames.json"
    frames.write_text(json.dumps({"mAP": 0.8}))
    return subprocess.run([sys.executable, str(TABLE), str(EXPECTED), f"detections={det}",
                           f"frames={frames}", "-o", str(tmp_path / "results.md"), *extra],
                          capture_output=True, text=True)


def test_in_range_writes_the_table(tmp_path):
    res = run(tmp_path, 0.45, "--small")
    assert res.returncode == 0, res.stderr
    rows = {r["figure"]: r for r in json.loads((tmp_path / "results.json").read_text())["rows"]}
    assert rows["mAP@0.5"] == {"figure": "mAP@0.5", "ours": 45.0, "paper": 32.1,
                               "source": "Table 2, FSN", "range": [38, 62], "check": "ok"}
    assert "| mAP@0.5 | 45.0 | 32.1 |" in (tmp_path / "results.md").read_text()


def test_out_of_range_fails_and_writes_nothing(tmp_path):
    res = run(tmp_path, 0.05, "--small")
    assert res.returncode == 1
    assert f"{tmp_path / 'results.md'}: mAP@0.5: 5.0 outside the recorded range [38, 62]" in res.stderr
    assert not (tmp_path / "results.md").exists() and not (tmp_path / "results.json").exists()


def test_full_runs_and_no_ranges_do_not_check(tmp_path):
    assert run(tmp_path, 0.05).returncode == 0
    res = run(tmp_path, 0.05, "--small", "--no-ranges")
    assert res.returncode == 0 and "not checked" in res.stdout


def test_a_missing_record_is_exit_2(tmp_path):
    res = subprocess.run([sys.executable, str(TABLE), str(EXPECTED), f"detections={tmp_path}/no.json",
                          "-o", str(tmp_path / "r.md")], capture_output=True, text=True)
    assert res.returncode == 2 and "no.json: cannot read" in res.stderr
