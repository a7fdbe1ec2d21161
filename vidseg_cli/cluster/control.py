"""`vidseg jobs retry` and `vidseg jobs cancel`.

Retry resubmits the tasks with a missing output that are not pending or running, with
the same script and settings (the stage's skip-existing rule then redoes only the missing
inputs of a chunk); a --follow run's tasks wait again for the upstream job that ran their
inputs last (so retry the upstream run first). Cancel scancels every job of the folder
that still has tasks pending or running.
"""

from __future__ import annotations

import os

from vidseg_cli.cluster import deps, slurm
from vidseg_cli.cluster.plan import PlanError
from vidseg_cli.cluster.record import Record, load_record
from vidseg_cli.cluster.status import LIVE, task_states
from vidseg_cli.cluster.submission import launch, remove_summaries


def retry_tasks(record: Record) -> tuple[list[int], list[int]]:
    """(tasks to resubmit, tasks still live and left alone)."""
    states = task_states(record)
    todo, live = [], []
    for t in range(record.n_tasks):
        if all(i.done() for i in record.task_items(t)):
            continue
        (live if states.get(t) in LIVE else todo).append(t)
    return todo, live


def retry(record: Record) -> tuple[list[int], list[str], int]:
    """Resubmit what is missing: (tasks, job ids, worst local exit status)."""
    todo, _ = retry_tasks(record)
    if not todo:
        return [], [], 0
    local = record.backend == "local"
    if record.follow:
        upstream = load_record(record.follow)
        groups = deps.follow_groups(upstream, todo, local)
        blocked = {}
        if local:
            for t in todo:
                missing = [i.input for i in record.task_items(t) if not os.path.exists(i.input)]
                if missing:
                    blocked[t] = f"{missing[0]}: missing (its upstream task failed)"
    else:
        if not local:
            slurm.config()
        groups, blocked = [(None, todo)], {}
    remove_summaries(record, todo)
    ids, worst = launch(record, groups, local, blocked)
    return todo, ids, worst


def cancel(record: Record) -> list[str]:
    """scancel the jobs with live tasks; the ids cancelled."""
    if record.backend == "local":
        raise PlanError(f"{record.folder}: a --local run, finished when `vidseg submit` "
                        "returned: nothing to cancel")
    states = task_states(record)
    ids = []
    for t, state in sorted(states.items()):
        job = record.job_of_task(t)
        if state in LIVE and job and job["job_id"] not in ids:
            ids.append(job["job_id"])
    for job_id in ids:
        slurm.scancel(job_id)
    return ids
