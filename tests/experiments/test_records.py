"""experiments/records.py: recorded runs name their work folder OUT."""

from experiments.records import portable


def test_portable_rewrites_the_work_folder_everywhere(tmp_path):
    root = tmp_path / "work"
    root.mkdir()
    rec = {"command": f"vidseg train segment --data {root}/synth -o {root}/run -q",
           "runs": [f"{root}", f"{root}/a/b.json", "unrelated /tmp/other"],
           f"{root}/key": 1, "n": 3}
    out = portable(rec, root)
    assert out == {"command": "vidseg train segment --data OUT/synth -o OUT/run -q",
                   "runs": ["OUT", "OUT/a/b.json", "unrelated /tmp/other"],
                   "OUT/key": 1, "n": 3}


def test_portable_leaves_a_longer_sibling_name_alone(tmp_path):
    root = tmp_path / "lc"
    assert portable(f"{tmp_path}/lc2/x and {root}/x", root) == f"{tmp_path}/lc2/x and OUT/x"
