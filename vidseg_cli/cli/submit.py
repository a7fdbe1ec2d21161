"""`vidseg submit`: any stage as a SLURM job array (per-video stages) or one job (whole-set
stages), chained with --follow / --after / --after-any; --local runs the same tasks here.
The work is in vidseg_cli/cluster; docs/cluster.md is the guide."""

from __future__ import annotations

import os
import time
from pathlib import Path

import click

from vidseg_cli.cli.common import fail, notice

NAME = "submit"


@click.command(NAME, context_settings={"ignore_unknown_options": True,
                                       "allow_interspersed_args": False})
@click.option("--folder", type=click.Path(file_okay=False), default=None,
              help="The submission folder (default: OUT/_slurm/<stage>-<time>/).")
@click.option("--chunk", type=click.IntRange(1), default=None,
              help="Inputs per array task (default 1, larger when there are over 1000).")
@click.option("--parallel", type=click.IntRange(1), default=None,
              help="At most N tasks at once (SLURM's %N; --local: N processes).")
@click.option("--time", "time_limit", default=None, help="Time limit per task (sbatch --time).")
@click.option("--mem", default=None, help="Memory per task (sbatch --mem, e.g. 16G).")
@click.option("--cpus", type=click.IntRange(1), default=1, show_default=True,
              help="CPUs per task: also OMP threads and the stage's --jobs.")
@click.option("--gpus", type=click.IntRange(0), default=0, show_default=True,
              help="GPUs per task (per node for training).")
@click.option("--nodes", type=click.IntRange(1), default=1, show_default=True,
              help="Nodes for training (srun torchrun over them).")
@click.option("--procs-per-node", type=click.IntRange(0), default=None,
              help="Training processes per node under torchrun (default: --gpus; give it for "
                   "CPU-only DDP with gloo).")
@click.option("--partition", default=None, help="sbatch --partition.")
@click.option("--account", default=None, help="sbatch --account.")
@click.option("--qos", default=None, help="sbatch --qos.")
@click.option("--requeue", is_flag=True,
              help="Let SLURM requeue a preempted task; it redoes only unfinished outputs.")
@click.option("--requeue-before", "requeue_before", type=click.IntRange(1, 65535), default=None,
              metavar="SECONDS",
              help="Continue past the time limit: SECONDS before it (USR1, sbatch "
                   "--signal=B:USR1@SECONDS) a task stops its stage cleanly and requeues "
                   "itself; the rerun skips finished outputs, training resumes from "
                   "last.ckpt. Implies --requeue.")
@click.option("--sbatch-arg", "sbatch_args", multiple=True, metavar="OPT",
              help="A raw sbatch option, repeatable ('--constraint=a100').")
@click.option("--follow", type=click.Path(file_okay=False), default=None,
              help="Take an upstream submission's predicted outputs as inputs, same chunking, "
                   "task k after its task k (aftercorr).")
@click.option("--after", multiple=True, metavar="RUN|JOBID",
              help="Start after these succeeded (afterok).")
@click.option("--after-any", "after_any", multiple=True, metavar="RUN|JOBID",
              help="Start after these ended, however (afterany): evaluate, export.")
@click.option("--dry-run", is_flag=True, help="Print the script; write and submit nothing.")
@click.option("--local", "local_run", is_flag=True,
              help="Run the same tasks here as processes (honours --parallel) and wait.")
@click.option("--wait", is_flag=True, help="Return when the job has ended; exit 0 only if "
                                           "every output exists.")
@click.option("--parsable", is_flag=True, help="Print only the job id(s).")
@click.argument("stage_args", nargs=-1, type=click.UNPROCESSED)
def submit(folder, chunk, parallel, time_limit, mem, cpus, gpus, nodes, procs_per_node,
           partition, account, qos, requeue, requeue_before, sbatch_args, follow, after,
           after_any, dry_run, local_run, wait, parsable, stage_args):
    """Submit STAGE [STAGE ARGS] as SLURM jobs. The stage's arguments are checked here
    (a typo exits 2 at once); inputs whose outputs exist are dropped (nothing to do: exit
    0, nothing submitted). Per-video stages become an array over the submission's
    manifest.txt; evaluate, hmm-fit, export and train become one job. The folder holds
    job.sbatch, manifest.txt, submit.json, logs/ and summaries/; `vidseg jobs status
    FOLDER` reads them.

    Site defaults: VIDSEG_SBATCH_ARGS, or a file of sbatch options
    (~/.config/vidseg/sbatch, or $VIDSEG_SBATCH_CONFIG); docs/cluster.md.
    """
    from vidseg_cli.cluster import planner
    from vidseg_cli.cluster.plan import PlanError
    from vidseg_cli.cluster.render import Settings
    from vidseg_cli.cluster.site import _words, site_args

    if dry_run and (local_run or wait):
        fail(NAME, "--dry-run submits nothing: it goes without --local and --wait")
    if follow and (after or after_any):
        fail(NAME, "--follow already orders the tasks; --after/--after-any go without it")
    try:
        settings = Settings(time=time_limit, mem=mem, cpus=cpus, gpus=gpus, nodes=nodes,
                            procs_per_node=procs_per_node, partition=partition,
                            account=account, qos=qos, requeue=requeue,
                            requeue_before=requeue_before, parallel=parallel,
                            site_args=site_args(),
                            extra=[w for a in sbatch_args for w in _words(a, "--sbatch-arg")])
        sub = planner.plan(list(stage_args), settings, follow=follow, chunk=chunk,
                           folder=folder, local=local_run or dry_run, check_slurm=not
                           (local_run or dry_run), stamp=time.strftime("%Y%m%d-%H%M%S"),
                           cwd=os.getcwd())
        if sub is None:
            notice(NAME, "nothing to do: every output exists; nothing submitted")
            return
        groups = planner.dependencies(sub, after=list(after), after_any=list(after_any),
                                      local=local_run, check=not dry_run)
    except PlanError as e:
        if str(e):
            fail(NAME, str(e))
        raise SystemExit(2) from None
    if dry_run:
        from vidseg_cli.cluster.submission import script_text

        for dependency, tasks in groups:
            click.echo(script_text(sub.record, tasks, dependency), nl=False)
        notice(NAME, f"dry run: {sub.describe()}; nothing written or submitted")
        return
    _launch(sub, groups, local_run, wait, parsable)


def _launch(sub, groups, local_run: bool, wait: bool, parsable: bool) -> None:
    from vidseg_cli.cluster.plan import PlanError
    from vidseg_cli.cluster.submission import launch
    from vidseg_cli.cluster.submission import wait as wait_for

    record = sub.record
    try:
        Path(record.folder).mkdir(parents=True, exist_ok=True)
        record.write_manifest()
        ids, worst = launch(record, groups, local_run, sub.blocked)
    except PlanError as e:
        fail(NAME, str(e))
    except OSError as e:
        fail(NAME, f"{record.folder}: cannot write the submission folder ({e.strerror or e})")
    if local_run:
        notice(NAME, f"ran {sub.describe()} here; `vidseg jobs status {record.folder}`")
        raise SystemExit(0 if worst == 0 else 1)
    click.echo(",".join(ids) if parsable else f"submitted job {', '.join(ids)}: {sub.describe()}")
    if wait:
        try:
            wait_for(record, ids)
        except PlanError as e:
            fail(NAME, str(e))
        if not all(i.done() for i in record.items):
            notice(NAME, f"ended with outputs missing: `vidseg jobs status {record.folder}`")
            raise SystemExit(1)
