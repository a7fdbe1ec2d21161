"""Dependencies between submissions, as SLURM `--dependency` values.

- `--follow RUN`: task k of this array waits for task k of RUN's job (`aftercorr`), so a
  failed chunk cancels only its successor (with --kill-on-invalid-dep; never pending for
  ever). A task whose upstream outputs all exist needs no dependency; tasks that RUN's
  retries resubmitted depend on the job that ran them last.
- `--after RUN|JOBID` (`afterok`) and `--after-any RUN|JOBID` (`afterany`) for whole-set
  stages and strict chains.

SLURM treats a dependency on a job it doesn't know (a typo, or one purged after
MinJobAge) as satisfied and starts at once, so every id is checked with `scontrol show
job` first: unknown is refused, unless the upstream run's outputs are complete.
"""

from __future__ import annotations

import re
from pathlib import Path

from vidseg_cli.cluster import slurm
from vidseg_cli.cluster.plan import PlanError
from vidseg_cli.cluster.record import Record, load_record

_JOB_ID = re.compile(r"^\d+(_\d+)?$")


def _complete(record: Record, tasks: list[int] | None = None) -> bool:
    tasks = range(record.n_tasks) if tasks is None else tasks
    return all(i.done() for t in tasks for i in record.task_items(t))


def follow_groups(upstream: Record, tasks: list[int], local: bool) -> list[tuple[str | None, list[int]]]:
    """This submission's tasks grouped by the dependency each needs on `upstream`:
    [(None, tasks ready now), ("aftercorr:ID", tasks waiting for job ID), ...]."""
    groups: dict[str | None, list[int]] = {}
    for t in tasks:
        if _complete(upstream, [t]) or local or upstream.backend == "local":
            groups.setdefault(None, []).append(t)
            continue
        job = upstream.job_of_task(t)
        if job is None:
            raise PlanError(f"{upstream.folder}: task {t} was never submitted and its outputs "
                            f"are missing: run `vidseg jobs retry {upstream.folder}` first")
        if not slurm.job_known(job["job_id"]):
            raise PlanError(f"{upstream.folder}: job {job['job_id']} (task {t}) is no longer "
                            "known to SLURM and its outputs are missing: run `vidseg jobs "
                            f"retry {upstream.folder}` first")
        groups.setdefault(f"aftercorr:{job['job_id']}", []).append(t)
    return list(groups.items())


def after(targets: list[str], kind: str, local: bool) -> list[str]:
    """`afterok:ID` / `afterany:ID` terms for --after / --after-any targets (folders or
    job ids); a folder whose outputs are complete needs none."""
    terms = []
    for target in targets:
        if _JOB_ID.match(target) and not Path(target).exists():
            if local:
                raise PlanError(f"{target}: a job id means nothing to --local; give the "
                                "submission folder")
            if not slurm.job_known(target):
                raise PlanError(f"{target}: SLURM does not know this job (a typo, or finished "
                                "longer ago than MinJobAge); nothing submitted")
            terms.append(f"{kind}:{target}")
            continue
        record = load_record(target)
        if local or record.backend == "local" or _complete(record):
            continue
        # The job that last ran each unfinished task: an earlier, failed attempt would
        # make afterok fail although its retry succeeds.
        jobs = [record.job_of_task(t) for t in range(record.n_tasks) if not _complete(record, [t])]
        ids = sorted({j["job_id"] for j in jobs if j}, key=int)
        known = [i for i in ids if slurm.job_known(i)]
        if not known or len(known) < len(ids):
            raise PlanError(f"{record.folder}: its jobs are no longer known to SLURM and its "
                            f"outputs are missing: run `vidseg jobs retry {record.folder}` first")
        terms.extend(f"{kind}:{i}" for i in known)
    return terms
