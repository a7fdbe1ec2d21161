"""Chunk arithmetic and the submission record."""

from __future__ import annotations

import json

import pytest

from vidseg_cli.cluster.plan import Item, PlanError
from vidseg_cli.cluster.record import (
    array_spec,
    default_chunk,
    load_record,
    n_tasks,
    new_record,
    task_lines,
)


def test_tasks_cover_every_line_once_in_order():
    for n in (1, 5, 6, 7, 1000, 1001, 2501):
        for chunk in (1, 2, 3, 1000):
            lines = [i for t in range(n_tasks(n, chunk)) for i in task_lines(t, chunk, n)]
            assert lines == list(range(n))
    assert n_tasks(0, 3) == 0 and n_tasks(6, 2) == 3 and n_tasks(7, 2) == 4


def test_default_chunk_is_one_until_the_array_limit_then_grows():
    assert default_chunk(1) == 1 and default_chunk(1000) == 1
    assert default_chunk(1001) == 2 and default_chunk(2500) == 3
    assert n_tasks(2500, default_chunk(2500)) <= 1000
    assert default_chunk(300, max_array_size=101) == 3  # MaxArraySize 101: ids 0..100
    assert n_tasks(300, 3) <= 100


def test_array_spec_joins_runs_and_adds_the_throttle():
    assert array_spec([0, 1, 2, 3]) == "0-3"
    assert array_spec([3, 0, 1, 5, 7, 8], parallel=2) == "0-1,3,5,7-8%2"
    assert array_spec([4]) == "4"


def test_record_round_trips_and_a_folder_that_is_not_one_is_one_line(tmp_path):
    r = new_record(tmp_path, stage="extract-frames", scope="video", argv=["vidseg"], cwd="/",
                   chunk=2, items=[Item("/a.mp4", "a", "frames", ["/o/a.frames.h5"])] * 3)
    r.jobs.append({"job_id": "7", "tasks": [0, 1]})
    r.jobs.append({"job_id": "9", "tasks": [1]})
    r.save()
    back = load_record(tmp_path)
    assert back.n_tasks == 2 and back.task_items(1) == r.task_items(1)
    assert back.job_of_task(1)["job_id"] == "9" and back.job_of_task(0)["job_id"] == "7"
    assert json.loads((tmp_path / "submit.json").read_text())["n_tasks"] == 2
    with pytest.raises(PlanError, match="not a submission folder"):
        load_record(tmp_path / "nope")
    (tmp_path / "submit.json").write_text("{")
    with pytest.raises(PlanError, match="not a readable submission record"):
        load_record(tmp_path)
