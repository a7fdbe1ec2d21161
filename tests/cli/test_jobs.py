"""`vidseg jobs`: a folder that isn't a submission, what status reads from summaries,
logs and temporary files."""

from __future__ import annotations

import json

from tests.cli.test_submit import vidseg
from vidseg_cli.cluster.plan import Item
from vidseg_cli.cluster.record import new_record


def _record(tmp_path, backend="local"):
    out = tmp_path / "o"
    out.mkdir()
    items = [Item(str(tmp_path / f"{v}.mp4"), v, "frames", [str(out / f"{v}.frames.h5")])
             for v in ("a", "b", "c")]
    r = new_record(tmp_path / "run", stage="extract-frames", scope="video", argv=[], cwd=str(tmp_path),
                   chunk=1, items=items, backend=backend)
    (r.folder / "summaries").mkdir(parents=True)
    (r.folder / "logs").mkdir()
    r.settings = {"sbatch": {}, "render": {}}
    return r, out


def test_a_folder_that_is_not_a_submission_is_one_line_exit_2(tmp_path):
    for cmd in ("status", "retry", "cancel"):
        res = vidseg("jobs", cmd, tmp_path, cwd=tmp_path)
        assert res.returncode == 2
        assert res.stderr.strip() == f"vidseg jobs: error: {tmp_path}: not a submission folder (no submit.json)"


def test_status_names_failures_dead_tasks_and_stray_temporary_files(tmp_path):
    r, out = _record(tmp_path)
    r.jobs.append({"job_id": "local", "tasks": [0, 1, 2], "exit_codes": {"0": 0, "1": 1, "2": 137}})
    r.save()
    (out / "a.frames.h5").write_bytes(b"x")
    (r.summary_path(0)).write_text(json.dumps({"done": [str(out / "a.frames.h5")], "skipped": [],
                                                "failed": []}))
    (r.summary_path(1)).write_text(json.dumps({"done": [], "skipped": [], "failed": [
        {"input": r.items[1].input, "error": f"{r.items[1].input}: not a video file"}]}))
    (r.folder / "logs" / "local_2.log").write_text("vidseg task 2: 1 input(s)\nKilled\n")
    tmp = out / ".vidseg-tmp-c.frames.h5.pid99999@othernode.abc.h5"
    tmp.write_bytes(b"")
    res = vidseg("jobs", "status", r.folder, cwd=tmp_path)
    assert res.returncode == 1
    lines = res.stdout.splitlines()
    assert lines[0] == f"{r.folder}: extract-frames, 3 input(s): 1 died, 1 done, 1 failed"
    assert lines[1] == (f"  failed    {r.items[1].input} [task 1]: {r.items[1].input}: not a video "
                        f"file (log: {r.folder}/logs/local_1.log)")
    assert lines[2] == f"  died      {r.items[2].input} [task 2]: Killed (log: {r.folder}/logs/local_2.log)"
    assert lines[3].startswith(f"  temporary {tmp}")
    doc = json.loads(vidseg("jobs", "status", r.folder, "--json", "-", cwd=tmp_path).stdout)
    assert doc["complete"] is False and doc["temporary_files"] == [str(tmp)]
    for v in ("b", "c"):
        (out / f"{v}.frames.h5").write_bytes(b"x")
    assert vidseg("jobs", "status", r.folder, cwd=tmp_path).returncode == 0


def test_cancel_of_a_local_run_says_there_is_nothing_to_cancel(tmp_path):
    r, _ = _record(tmp_path)
    r.save()
    res = vidseg("jobs", "cancel", r.folder, cwd=tmp_path)
    assert res.returncode == 2 and "a --local run" in res.stderr
