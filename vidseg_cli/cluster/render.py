"""The sbatch script of a submission: `#SBATCH` lines, then the task body.

An array task reads its slice of manifest.txt (record.task_lines) and `exec`s the same
`vidseg STAGE` (with --requeue-before, see below) with the user's options, `--json` into
summaries/<task>.json, OMP threads and `--jobs` from the allocation
(SLURM_CPUS_PER_TASK). A whole-set stage is one job; training with several processes runs
under torchrun (one node: --standalone; several: `srun torchrun` with a c10d rendezvous on
the first node, its port derived from the job id so two jobs on one node don't collide).
The script runs as it is outside SLURM too: `SLURM_ARRAY_TASK_ID=3 bash job.sbatch` (the
--local backend does exactly that).

With `requeue_before` (submit's --requeue-before), SLURM sends USR1 to the batch shell
alone that many seconds before the time limit (`--signal=B:USR1@N`). The script then runs
the stage in the background and `wait`s for it, since bash runs a trap only between
foreground commands: the USR1 trap sends the stage SIGTERM (it stops cleanly: the output
in progress removed, training's last.ckpt from its last finished epoch kept), the script
waits for it to exit and `scontrol requeue`s the job, whose rerun skips finished outputs
or resumes the training. SLURM's own SIGTERM (time limit, scancel, preemption) reaches
every process of the task, the stage included, so the script only keeps waiting: were it
to exit first, slurmstepd would kill the stage in the middle of its cleanup.
"""

from __future__ import annotations

import os
import shlex
import sys
from dataclasses import dataclass, field
from pathlib import Path

TORCH_PORT_BASE = 29500


@dataclass
class Settings:
    """What `vidseg submit` asks SLURM for."""

    time: str | None = None
    mem: str | None = None
    cpus: int = 1
    gpus: int = 0
    nodes: int = 1
    procs_per_node: int | None = None  # torchrun processes per node (training)
    partition: str | None = None
    account: str | None = None
    qos: str | None = None
    requeue: bool = False
    requeue_before: int | None = None  # seconds before the time limit: stop, requeue itself
    parallel: int | None = None
    site_args: list[str] = field(default_factory=list)  # VIDSEG_SBATCH_ARGS, config file
    extra: list[str] = field(default_factory=list)  # --sbatch-arg, typed last: they win

    def sbatch_options(self) -> list[str]:
        opts = list(self.site_args)
        for flag, value in (("--partition", self.partition), ("--account", self.account),
                            ("--qos", self.qos), ("--time", self.time), ("--mem", self.mem)):
            if value:
                opts.append(f"{flag}={value}")
        opts.append(f"--cpus-per-task={self.cpus}")
        if self.gpus:
            opts.append(f"--gres=gpu:{self.gpus}")
        # `scontrol requeue` refuses a job submitted with --no-requeue
        opts.append("--requeue" if self.requeue or self.requeue_before else "--no-requeue")
        if self.requeue_before:
            opts.append(f"--signal=B:USR1@{self.requeue_before}")
        return opts + list(self.extra)


def entry_point() -> list[str]:
    """The absolute command that runs this vidseg: the console script when that is what
    runs, else this interpreter with `-m` (sites differ in what sbatch exports, so nothing
    relies on PATH)."""
    prog = Path(sys.argv[0]) if sys.argv and sys.argv[0] else None
    if prog is not None and prog.name == "vidseg" and prog.is_file():
        return [str(prog.absolute())]
    return [sys.executable, "-m", "vidseg_cli.cli.main"]


def package_root() -> str:
    """The folder holding vidseg_cli, for PYTHONPATH under `python -m`."""
    return str(Path(__file__).resolve().parent.parent.parent)


def _q(words: list[str]) -> str:
    return " ".join(shlex.quote(w) for w in words)


def _header(folder: Path, name: str, settings: Settings, array: str | None,
            dependency: str | None, nodes: int) -> list[str]:
    lines = ["#!/bin/bash", f"#SBATCH --job-name={shlex.quote('vidseg-' + name)}"]
    if array is not None:
        lines.append(f"#SBATCH --array={array}")
        lines.append(f"#SBATCH --output={shlex.quote(str(folder / 'logs' / '%A_%a.log'))}")
    else:
        lines.append(f"#SBATCH --output={shlex.quote(str(folder / 'logs' / '%j.log'))}")
    lines.append("#SBATCH --open-mode=append")  # a requeued task adds to its log
    if nodes > 1:
        lines.append(f"#SBATCH --nodes={nodes}")
    lines.append("#SBATCH --ntasks-per-node=1")
    for opt in settings.sbatch_options():
        lines.append(f"#SBATCH {shlex.quote(opt)}")
    if dependency:
        lines.append(f"#SBATCH --dependency={dependency}")
        lines.append("#SBATCH --kill-on-invalid-dep=yes")  # a failed upstream cancels, never waits
    return lines


def _prologue(folder: Path, cwd: str, entry: list[str]) -> list[str]:
    lines = ["set -euo pipefail", f"cd {shlex.quote(cwd)}", f"RUN={shlex.quote(str(folder))}"]
    if len(entry) > 1 and entry[1] == "-m":  # `python -m`: the package as it was found
        lines.append(f"export PYTHONPATH={shlex.quote(package_root())}${{PYTHONPATH:+:$PYTHONPATH}}")
    lines += ["CPUS=${SLURM_CPUS_PER_TASK:-1}",
              "export OMP_NUM_THREADS=$CPUS MKL_NUM_THREADS=$CPUS"]
    return lines


def _run(command: str, settings: Settings) -> list[str]:
    """The lines that run the stage's `command` and end the script with its status."""
    if not settings.requeue_before:
        return [f"exec {command}"]
    return [
        "REQUEUE=0 PID=",
        f"trap 'REQUEUE=1; echo \"vidseg: USR1 ({settings.requeue_before} s before the time "
        "limit): stopping, then requeueing\"; kill -TERM \"$PID\" 2>/dev/null || true' USR1",
        "trap : TERM INT HUP  # the stage has them too: wait while it stops cleanly",
        f"{command} &",
        "PID=$!",
        "while :; do",
        '    STATUS=0; wait "$PID" || STATUS=$?',
        '    kill -0 "$PID" 2>/dev/null || break  # alive: a trap cut the wait short',
        "done",
        'if [ "$REQUEUE" = 1 ] && [ "$STATUS" != 0 ] && [ -n "${SLURM_JOB_ID:-}" ]; then',
        '    echo "vidseg: stopped (exit $STATUS); requeueing job $SLURM_JOB_ID"',
        '    scontrol requeue "$SLURM_JOB_ID" || echo "vidseg: error: scontrol requeue failed"',
        "fi",
        'exit "$STATUS"',
    ]


def render_array(folder: Path, cwd: str, stage: str, chunk: int, options: list[str],
                 settings: Settings, array: str, dependency: str | None, entry: list[str],
                 add_jobs: bool, add_quiet: bool) -> str:
    """An array over manifest.txt: task k takes lines [k*chunk, (k+1)*chunk)."""
    extra = (["--jobs", "$CPUS"] if add_jobs else []) + (["--quiet"] if add_quiet else [])
    lines = _header(folder, stage, settings, array, dependency, 1)
    lines += _prologue(folder, cwd, entry)
    lines += [
        'TASK=${SLURM_ARRAY_TASK_ID:?"an array task: set SLURM_ARRAY_TASK_ID to run one by hand"}',
        f"CHUNK={chunk}",
        'mapfile -t INPUTS < <(sed -n "$((TASK * CHUNK + 1)),$(((TASK + 1) * CHUNK))p" "$RUN/manifest.txt")',
        'echo "vidseg task $TASK: ${#INPUTS[@]} input(s), job ${SLURM_JOB_ID:-local}, '
        'restart ${SLURM_RESTART_COUNT:-0}, $(hostname), $(date -Is)"',
    ]
    lines += _run(f'{_q(entry)} {_q(stage.split())} "${{INPUTS[@]}}" {_q(options)}'
                  + "".join(" " + (w if w == "$CPUS" else shlex.quote(w)) for w in extra)
                  + ' --json "$RUN/summaries/$TASK.json"', settings)
    return "\n".join(lines) + "\n"


def render_single(folder: Path, cwd: str, stage: str, args: list[str], settings: Settings,
                  dependency: str | None, entry: list[str], add_json: bool, add_quiet: bool,
                  resume_from: str | None = None) -> str:
    """One job for a whole-set stage; training with procs_per_node under torchrun.
    `resume_from`: a run folder whose last.ckpt, when present, makes the job resume (a
    requeued or resubmitted training continues where it stopped)."""
    procs = settings.procs_per_node
    lines = _header(folder, stage.replace(" ", "-"), settings, None, dependency, settings.nodes)
    lines += _prologue(folder, cwd, entry)
    lines.append("TASK=0")
    lines.append('echo "vidseg job ${SLURM_JOB_ID:-local}, restart ${SLURM_RESTART_COUNT:-0}, '
                 '$(hostname), $(date -Is)"')
    lines.append(f"ARGS=({_q(args)})")
    if resume_from is not None:
        last = shlex.quote(os.path.join(resume_from, "last.ckpt"))
        lines.append(f'if [ -e {last} ]; then ARGS+=(--resume); echo "vidseg: resuming from" {last}; fi')
    if add_quiet:
        lines.append("ARGS+=(--quiet)")
    if add_json:
        lines.append('ARGS+=(--json "$RUN/summaries/$TASK.json")')
    program = ([f"--no-python {shlex.quote(entry[0])}"] if len(entry) == 1
               else [f"-m {shlex.quote(entry[2])}"])
    torchrun = f"{shlex.quote(entry[0] if len(entry) > 1 else sys.executable)} -m torch.distributed.run"
    call = f'{_q(stage.split())} "${{ARGS[@]}}"'
    if not procs:
        lines += _run(f"{_q(entry)} {call}", settings)
    elif settings.nodes <= 1:
        lines += _run(f"{torchrun} --standalone --nproc-per-node={procs} {program[0]} {call}",
                      settings)
    else:
        lines += [
            'HEAD=$(scontrol show hostnames "$SLURM_JOB_NODELIST" | head -n 1)',
            f"PORT=$(({TORCH_PORT_BASE} + SLURM_JOB_ID % 1000))",
        ]
        lines += _run(f"srun --ntasks-per-node=1 --kill-on-bad-exit=1 {torchrun} "
                      f'--nnodes="$SLURM_JOB_NUM_NODES" --nproc-per-node={procs} '
                      f'--rdzv-id="$SLURM_JOB_ID" --rdzv-backend=c10d '
                      f'--rdzv-endpoint="$HEAD:$PORT" {program[0]} {call}', settings)
    return "\n".join(lines) + "\n"
