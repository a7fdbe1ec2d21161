"""write_report over a folder: what it finds, draws and says, without a browser."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

from tests.viz.report_files import make_outputs
from vidseg_cli.errors import InputError
from vidseg_cli.viz.report import write_report


def test_a_folder_becomes_one_offline_page_with_its_pictures_beside_it(tmp_path, cli):
    folder = make_outputs(tmp_path / "outputs")
    (folder / "broken.labels.h5").write_bytes(b"not hdf5")
    out = tmp_path / "report"
    res = cli("report", folder, "-o", out, "--json", tmp_path / "r.json", "-q")
    assert res.exit_code == 0, res.output
    doc = json.loads((tmp_path / "r.json").read_text())
    assert doc["counts"] == {"metrics": 1, "timelines": 2, "videos": 1, "runs": 1, "files": 4}
    assert any("broken.labels.h5" in w and "left out" in w for w in doc["warnings"])
    page = (out / "index.html").read_text()
    assert not re.search(r"(src|href)=\"(https?:)?//", page)  # nothing from the network
    srcs = re.findall(r'src="([^"]+)"', page)
    assert srcs and all((out / s).is_file() for s in srcs)
    assert any(s.endswith(".webm") for s in srcs)
    assert "segment__v1.labels.overlay.webm" in page
    assert "train_run" in page and "4 epochs" in page
    assert "mAP" in page and "v1.detections.h5" in page
    # the timelines got the ground truth the evaluate record names
    svg = (out / "assets" / "localize__v1.detections.timeline.svg").read_text()
    assert 'id="gt:jump:0"' in svg and 'id="pred:jump:0"' in svg
    # both protocols side by side, from the one record
    metrics = (out / "assets" / "eval.metrics.svg").read_text()
    assert 'id="ap:activitynet"' in metrics and 'id="ap:thumos14"' in metrics
    assert 'id="pr:jump"' in metrics


def test_a_missing_folder_is_one_error(tmp_path, cli):
    res = cli("report", tmp_path / "nope", "-o", tmp_path / "r")
    assert res.exit_code == 2
    assert res.stderr.strip() == f"vidseg report: error: {tmp_path / 'nope'}: no such folder"
    with pytest.raises(InputError, match="no such folder"):
        write_report(tmp_path / "nope", tmp_path / "r")


def test_the_report_leaves_itself_out_when_written_inside_the_folder(tmp_path):
    folder = make_outputs(tmp_path / "outputs")
    first = write_report(folder, folder / "report")
    again = write_report(folder, folder / "report")
    assert first.counts == again.counts


def test_an_excluded_folder_is_left_out_with_its_subfolders(tmp_path):
    folder = make_outputs(tmp_path / "outputs")
    whole = write_report(folder, tmp_path / "r1")
    sub = sorted(p.parent for p in folder.rglob("*.labels.h5"))[0]
    part = write_report(folder, tmp_path / "r2", exclude=[sub])
    assert part.counts["videos"] == whole.counts["videos"] - 1
    assert part.counts["files"] < whole.counts["files"]


def test_overlays_drawn_by_several_processes_give_the_same_report(tmp_path, monkeypatch):
    import shutil

    from vidseg_cli.viz import report

    folder = make_outputs(tmp_path / "outputs")
    src = next(folder.rglob("*.labels.h5"))
    for name in ("v2", "v3", "v4"):  # more pixel files than the cap below lets in
        shutil.copy(src, src.with_name(f"{name}.labels.h5"))
    monkeypatch.setattr(report, "MAX_VIDEOS", 3)
    one = write_report(folder, tmp_path / "r1", jobs=1)
    two = write_report(folder, tmp_path / "r2", jobs=2)
    assert one.counts == two.counts and one.counts["videos"] == 3
    assert one.warnings == two.warnings
    assert any("1 pixel file(s) left out" in w and "3 overlay videos at most" in w for w in one.warnings)
    def page(name):  # the page as written, but for its own folder and the time it was made
        text = (tmp_path / name / "index.html").read_text().replace(str(tmp_path / name), "R")
        return re.sub(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", "TIME", text)

    assert page("r1") == page("r2")
    names = sorted(p.name for p in (tmp_path / "r1" / "assets").iterdir())
    assert names == sorted(p.name for p in (tmp_path / "r2" / "assets").iterdir())
    assert sum(n.endswith(".overlay.webm") for n in names) == 3
    for n in (n for n in names if re.search(r"\.frame\d{6}\.png$", n)):  # the stills: same bytes
        assert (tmp_path / "r1" / "assets" / n).read_bytes() == (tmp_path / "r2" / "assets" / n).read_bytes(), n
    for n in (n for n in names if n.endswith(".overlay.webm")):  # the videos: same frames
        a, b = (_decoded(tmp_path / r / "assets" / n) for r in ("r1", "r2"))
        assert len(a) > 0 and len(a) == len(b) and all(np.array_equal(x, y) for x, y in zip(a, b)), n


def _decoded(path):
    import cv2

    cap, frames = cv2.VideoCapture(str(path)), []
    while True:
        ok, f = cap.read()
        if not ok:
            break
        frames.append(f)
    cap.release()
    return frames


def test_a_pixel_file_a_worker_cannot_draw_is_an_error_line(tmp_path):
    from vidseg_cli.viz.report import _draw_overlay

    written, warnings, error = _draw_overlay(tmp_path / "gone.labels.h5", tmp_path / "a" / "gone", None, {})
    assert written == [] and warnings == [] and error == f"{tmp_path / 'gone.labels.h5'}: no such file"


def test_a_report_stopped_while_workers_encode_leaves_no_temporary_file(tmp_path):
    """SIGTERM to `vidseg report --jobs 2` while both workers write overlay videos: exit
    143, one line, no `.vidseg-tmp-*` left in the assets (core/workers.py's workers)."""
    import signal
    import subprocess
    import sys
    import time

    from tests.core.test_signals import _default_dispositions
    from vidseg_cli import store

    rng = np.random.default_rng(0)
    (tmp_path / "out").mkdir()
    for name in ("a", "b", "c"):  # noise: slow to encode, so the workers are still at it
        frames = tmp_path / "out" / f"{name}.frames.h5"
        with store.FramesWriter(frames, height=96, width=128, fps=25.0, video_id=name) as fw:
            for i in range(400):
                fw.append(rng.integers(0, 256, (96, 128, 3), dtype=np.uint8), i / 25.0)
        lab = (rng.random((400, 96, 128)) < 0.5).astype(np.uint8)
        store.write_labels(tmp_path / "out" / f"{name}.labels.h5", lab, class_names=["background", "x"],
                           video_id=name, num_frames=400, fps=25.0, inputs=[store.input_record(frames)])
    assets = tmp_path / "report" / "assets"
    proc = subprocess.Popen([sys.executable, "-m", "vidseg_cli.cli.main", "report", str(tmp_path / "out"),
                             "-o", str(tmp_path / "report"), "--jobs", "2", "-q"],
                            stderr=subprocess.PIPE, text=True, preexec_fn=_default_dispositions)
    deadline = time.time() + 60
    while time.time() < deadline and not list(assets.glob(".vidseg-tmp-*")):
        time.sleep(0.02)
    assert list(assets.glob(".vidseg-tmp-*")), "no worker started writing"
    proc.send_signal(signal.SIGTERM)
    err = proc.communicate(timeout=60)[1]
    assert proc.returncode == 143, err
    assert err.strip().splitlines() == ["vidseg: stopped by SIGTERM; outputs in progress were removed"]
    assert not list(assets.glob(".vidseg-tmp-*"))
    assert not (tmp_path / "report" / "index.html").exists()
