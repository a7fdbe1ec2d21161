"""`vidseg export` writes one file: a folder given as its output is refused in one line."""

from __future__ import annotations

import numpy as np
import pytest

from vidseg_cli import store


@pytest.mark.parametrize("overwrite", [[], ["--overwrite"]])
def test_a_folder_as_output_is_an_error(cli, tmp_path, overwrite):
    store.write_detections(tmp_path / "v.detections.h5", np.array([[10.0, 30.0]]), np.array([1]),
                           np.array([0.9]), class_names=["background", "jump"], video_id="v",
                           num_frames=100, fps=10.0)
    out = tmp_path / "out"
    out.mkdir()
    res = cli("export", tmp_path / "v.detections.h5", "-o", out, *overwrite)
    assert res.exit_code == 2 and res.stderr.count("\n") == 1
    assert res.stderr == (f"vidseg export: error: {out}: is a folder, and export writes one file; "
                          f"name it, e.g. {out / 'results.json'} (or a .txt name for THUMOS14 text)\n")
    assert list(out.iterdir()) == []
    res = cli("export", tmp_path / "v.detections.h5", "-o", f"{tmp_path / 'new'}/")
    assert res.exit_code == 2 and "is a folder" in res.stderr and not (tmp_path / "new").exists()
