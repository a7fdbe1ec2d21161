"""`vidseg jobs status|retry|cancel FOLDER`: a submission folder's outcome, resubmitting
what is missing, cancelling what is queued (vidseg_cli/cluster; docs/cluster.md)."""

from __future__ import annotations

import click

from vidseg_cli.cli.common import fail, json_option, notice, write_json

GROUP = "jobs"


@click.group(GROUP)
def jobs():
    """What became of a `vidseg submit` folder, and what to do about it."""


def _load(folder: str):
    from vidseg_cli.cluster.plan import PlanError
    from vidseg_cli.cluster.record import load_record

    try:
        return load_record(folder)
    except PlanError as e:
        fail(GROUP, str(e))


@jobs.command("status")
@click.argument("folder", type=click.Path())
@json_option
def status(folder, json_out):
    """Per input: done, skipped, failed (with the stage's error line), pending, running,
    cancelled, or died without a summary (with the task's log); stray temporary files.
    Exit 0 only when every predicted output exists, else 1. No sacct: the task summaries
    and squeue tell."""
    from vidseg_cli.cluster.status import report

    rep = report(_load(folder))
    if json_out:
        write_json(GROUP, json_out, rep.to_json())
    if json_out != "-":
        counts = ", ".join(f"{n} {s}" for s, n in sorted(rep.counts().items()))
        click.echo(f"{rep.folder}: {rep.stage}, {len(rep.lines)} input(s): {counts}")
        for ln in rep.lines:
            if ln.status in ("done", "skipped"):
                continue
            detail = f": {ln.error}" if ln.error else ""
            log = f" (log: {ln.log})" if ln.log and ln.status in ("died", "cancelled", "failed") else ""
            click.echo(f"  {ln.status:9s} {ln.input} [task {ln.task}]{detail}{log}")
        for t in rep.temps:
            click.echo(f"  temporary {t}: a writer's leftover (removed when its input is redone)")
    raise SystemExit(0 if rep.complete else 1)


@jobs.command("retry")
@click.argument("folder", type=click.Path())
def retry(folder):
    """Resubmit the tasks with missing outputs (not those still pending or running), with
    the same settings; only the missing inputs of each are redone. A --follow run waits
    for its upstream again: retry the upstream folder first."""
    from vidseg_cli.cluster.control import retry as do_retry
    from vidseg_cli.cluster.plan import PlanError

    record = _load(folder)
    try:
        tasks, ids, worst = do_retry(record)
    except PlanError as e:
        fail(GROUP, str(e))
    if not tasks:
        notice(GROUP, f"{record.folder}: nothing to retry (every output exists, or its tasks "
                      "are still queued)")
        return
    if record.backend == "local":
        notice(GROUP, f"{record.folder}: reran {len(tasks)} task(s) here")
        raise SystemExit(0 if worst == 0 else 1)
    click.echo(f"submitted job {', '.join(ids)}: {len(tasks)} task(s) of {record.folder}")


@jobs.command("cancel")
@click.argument("folder", type=click.Path())
def cancel(folder):
    """Cancel the folder's queued and running tasks (scancel)."""
    from vidseg_cli.cluster.control import cancel as do_cancel
    from vidseg_cli.cluster.plan import PlanError

    record = _load(folder)
    try:
        ids = do_cancel(record)
    except PlanError as e:
        fail(GROUP, str(e))
    notice(GROUP, f"cancelled job {', '.join(ids)}" if ids else
           f"{record.folder}: no task pending or running")
