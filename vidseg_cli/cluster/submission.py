"""Launching a submission's tasks, shared by `vidseg submit` and `vidseg jobs retry`:
render one script per dependency group, write it with the record before sbatch sees it
(logs/ exists first: a missing --output folder makes a task fail with no log at all),
submit it to SLURM or run it locally, and record each job in submit.json.
"""

from __future__ import annotations

import time
from dataclasses import asdict
from pathlib import Path

from vidseg_cli.cluster import local, render, slurm
from vidseg_cli.cluster.record import Record, array_spec


def settings_of(record: Record) -> render.Settings:
    keys = render.Settings.__dataclass_fields__
    return render.Settings(**{k: v for k, v in record.settings.get("sbatch", {}).items() if k in keys})


def script_text(record: Record, tasks: list[int], dependency: str | None) -> str:
    """The script for `tasks` of `record` (an array over manifest.txt, or the one job)."""
    s = settings_of(record)
    r = record.settings["render"]
    if record.scope == "video":
        return render.render_array(record.folder, record.cwd, record.stage, record.chunk,
                                   r["options"], s, array_spec(tasks, s.parallel), dependency,
                                   r["entry"], r["add_jobs"], r["add_quiet"])
    return render.render_single(record.folder, record.cwd, record.stage, r["options"], s,
                                dependency, r["entry"], r["add_json"], r["add_quiet"],
                                r.get("resume_from"))


def new_settings(record: Record, settings: render.Settings, render_opts: dict) -> None:
    record.settings = {"sbatch": asdict(settings), "render": render_opts}


def prepare_folder(record: Record) -> None:
    for sub in ("logs", "summaries"):
        (record.folder / sub).mkdir(parents=True, exist_ok=True)


def launch(record: Record, groups: list[tuple[str | None, list[int]]], local_run: bool,
           blocked: dict[int, str] | None = None) -> tuple[list[str], int]:
    """Submit (or run) each (dependency, tasks) group; the job ids, and for --local the
    highest exit status of the tasks."""
    prepare_folder(record)
    ids: list[str] = []
    worst = 0
    for dependency, tasks in groups:
        n = len(record.jobs)
        script = record.folder / ("job.sbatch" if n == 0 else f"retry-{n}.sbatch")
        from vidseg_cli.core.fs import write_text

        write_text(script, script_text(record, tasks, None if local_run else dependency))
        entry = {"script": script.name, "tasks": sorted(tasks), "dependency": dependency,
                 "submitted": time.strftime("%Y-%m-%dT%H:%M:%S")}
        if local_run:
            entry["job_id"] = "local"
            record.jobs.append(entry)
            record.save()
            codes = local.run_tasks(record, script, sorted(tasks), settings_of(record).cpus,
                                    settings_of(record).parallel, blocked)
            entry["exit_codes"] = {str(k): v for k, v in sorted(codes.items())}
            entry["cancelled"] = sorted(t for t in tasks if t in (blocked or {}))
            worst = max([worst, *codes.values()])
            ids.append("local")
        else:
            record.save()  # the record exists before the job can start
            job_id = slurm.sbatch(script, record.cwd)
            entry["job_id"] = job_id
            record.jobs.append(entry)
            ids.append(job_id)
        record.save()
    return ids, worst


def wait(record: Record, job_ids: list[str], poll: float = 1.0) -> None:
    """Until SLURM lists no task of `job_ids` as pending or running."""
    live = {"PENDING", "RUNNING", "CONFIGURING", "COMPLETING", "REQUEUED", "RESIZING", "SUSPENDED"}
    while True:
        states = [s for j in job_ids for s in slurm.task_states(j).values()]
        if not any(s in live for s in states):
            return
        time.sleep(poll)


def remove_summaries(record: Record, tasks: list[int]) -> None:
    """A retried task's old summary would describe the attempt that failed."""
    for t in tasks:
        Path(record.summary_path(t)).unlink(missing_ok=True)
