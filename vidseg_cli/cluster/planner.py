"""From `vidseg submit`'s words to a Submission: the stage found in the catalogue, its
arguments checked by its own parser, the manifest of inputs still to do (or, with
--follow, the upstream run's predicted outputs in its order and chunking), the tasks to
run, the folder, and the record that `vidseg jobs` reads later. Nothing is written here.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import click

from vidseg_cli.cluster import deps, slurm
from vidseg_cli.cluster.argv import given, has_param, split_args
from vidseg_cli.cluster.plan import (
    Item,
    PlanError,
    find_stage,
    output_value,
    parse,
    plan_items,
    set_outputs,
)
from vidseg_cli.cluster.record import Record, default_chunk, load_record, new_record
from vidseg_cli.cluster.render import Settings, entry_point
from vidseg_cli.cluster.submission import new_settings


@dataclass
class Submission:
    record: Record
    tasks: list[int]
    upstream: Record | None = None
    blocked: dict[int, str] = field(default_factory=dict)  # --local --follow: not started

    def describe(self) -> str:
        r = self.record
        if r.scope == "set":
            return f"{r.stage} as one job ({r.folder})"
        return (f"{r.stage} over {len(r.items)} input(s), {len(self.tasks)} task(s) of "
                f"{r.chunk} ({r.folder})")


def _parse(stage, args: list[str]) -> click.Context:
    try:
        return parse(stage, args)
    except click.UsageError as e:
        raise PlanError(f"{stage.name}: {e.format_message()}") from None


def plan(words: list[str], settings: Settings, *, follow: str | None, chunk: int | None,
         folder: str | None, local: bool, check_slurm: bool, stamp: str,
         cwd: str) -> Submission | None:
    stage, args = find_stage(words)
    conf = slurm.config() if check_slurm else {}
    upstream = given = None
    if follow:
        if stage.scope != "video":
            raise PlanError(f"--follow is for per-video stages; {stage.name} runs over a whole "
                            "set: use --after or --after-any")
        upstream = load_record(follow)
        if upstream.scope != "video":
            raise PlanError(f"{upstream.folder}: a single job, not an array to follow; use --after")
        positional, _ = split_args(parse_command(stage), args)
        if positional:
            raise PlanError(f"{positional[0]}: --follow gives the inputs (the upstream run's "
                            "outputs); give none")
        given = [Item(i.outputs[0], i.video_id, i.kind) for i in upstream.items]
        args = [i.input for i in given] + args
    ctx = _parse(stage, args)
    cmd = ctx.command
    if settings.procs_per_node is None:
        settings.procs_per_node = settings.gpus if stage.argv[0] == "train" else None
    if settings.procs_per_node and stage.argv[0] != "train":
        raise PlanError("--procs-per-node is for training (torchrun)")
    entry = entry_point()
    positional, options = split_args(cmd, [w for w in args if given is None or w not in
                                           {i.input for i in given}])
    quiet = has_param(cmd, "quiet") and not given_(ctx, "quiet")
    if stage.scope == "video":
        if given_(ctx, "json_out"):
            raise PlanError("--json: submit writes each task's summary to FOLDER/summaries/; "
                            "give none")
        items = plan_items(stage, ctx, given)
        overwrite = bool(ctx.params.get("overwrite"))
        if upstream is None and not overwrite:
            items = [i for i in items if not i.done()]
        if not items:
            return None
        size = upstream.chunk if upstream else (chunk or default_chunk(
            len(items), slurm.max_array_size(conf) if conf else 1001))
        record = new_record(_folder(folder, output_value(ctx), stage.name, stamp, cwd),
                            stage=stage.name, scope="video", argv=_argv(words, follow),
                            cwd=cwd, chunk=size, items=items,
                            backend="local" if local else "slurm",
                            follow=str(upstream.folder) if upstream else None)
        tasks = [t for t in range(record.n_tasks)
                 if overwrite or not all(i.done() for i in record.task_items(t))]
        if not tasks:
            return None
        render_opts = {"options": options, "entry": entry, "quiet": quiet,
                       "add_jobs": has_param(cmd, "jobs") and not given_(ctx, "jobs"),
                       "add_quiet": quiet}
    else:
        add_json = has_param(cmd, "json_out") and not given_(ctx, "json_out")
        out = output_value(ctx) or ctx.params.get("json_out") or cwd
        record = new_record(_folder(folder, str(Path(out).parent), stage.name, stamp, cwd),
                            stage=stage.name, scope="set", argv=_argv(words, follow), cwd=cwd,
                            backend="local" if local else "slurm")
        outs = set_outputs(stage, ctx)
        if add_json:
            outs.append(str(record.summary_path(0)))
        record.items = [Item("", "", stage.output_kinds()[0], outs)]
        tasks = [0]
        resume_from = None
        if stage.argv[0] == "train" and not (ctx.params.get("resume") or ctx.params.get("overwrite")):
            resume_from = os.path.abspath(output_value(ctx))
        render_opts = {"options": list(args), "entry": entry, "add_json": add_json,
                       "add_quiet": quiet, "resume_from": resume_from}
    if (record.folder / "submit.json").exists():
        raise PlanError(f"{record.folder}: already a submission folder; `vidseg jobs retry` "
                        "resubmits what is missing")
    new_settings(record, settings, render_opts)
    sub = Submission(record, tasks, upstream)
    if upstream is not None and local:
        for t in tasks:
            missing = [i.input for i in record.task_items(t) if not Path(i.input).exists()]
            if missing:
                sub.blocked[t] = f"{missing[0]}: missing (its upstream task failed)"
    return sub


def given_(ctx: click.Context, name: str) -> bool:
    return has_param(ctx.command, name) and given(ctx, name)


def parse_command(stage):
    from vidseg_cli.cluster.plan import command_of

    return command_of(stage)


def _folder(folder: str | None, out: str | None, stage: str, stamp: str, cwd: str) -> Path:
    if folder:
        return Path(os.path.join(cwd, folder)).absolute()
    base = Path(os.path.join(cwd, out or "."))
    return (base / "_slurm" / f"{stage.replace(' ', '-')}-{stamp}").absolute()


def _argv(words: list[str], follow: str | None) -> list[str]:
    return ["vidseg", "submit", *(["--follow", follow] if follow else []), *words]


def dependencies(sub: Submission, *, after: list[str], after_any: list[str], local: bool,
                 check: bool) -> list[tuple[str | None, list[int]]]:
    """(dependency, tasks) groups: one sbatch each."""
    terms = []
    if check:
        terms = deps.after(after, "afterok", local) + deps.after(after_any, "afterany", local)
    else:  # a dry run shows the dependency as it would be, without asking SLURM
        terms = [f"afterok:{a}" for a in after] + [f"afterany:{a}" for a in after_any]
    extra = ",".join(terms) or None
    if sub.upstream is None:
        return [(extra, sub.tasks)]
    if not check:
        last = sub.upstream.last_job()
        dep = f"aftercorr:{last['job_id']}" if last and last["job_id"] != "local" else None
        return [(dep, sub.tasks)]
    return deps.follow_groups(sub.upstream, sub.tasks, local)
