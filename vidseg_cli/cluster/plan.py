"""What a submission runs: a stage from the catalogue, its arguments checked by the stage's
own click command, its inputs expanded as the stage expands them, and the outputs each
input will have.

Everything is generated from the stage catalogue (api/catalogue.py): the main inputs are
the command's INPUTS argument, expanded to the files of the kinds the catalogue says it
reads (`expand_inputs`, as the stage does); the outputs of a per-video stage are
`<OUT>/<video_id>.<kind>.h5` for every kind it writes under the options given (a second
output beside the first is named the same way, DESIGN.md's names), which is what
`resolve_outputs` and the stage's own helpers (`frame_scores_path`, `beside`) give inside
an output folder. An input is "done" under run_batch's rule: every output exists.
"""

from __future__ import annotations

import importlib
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import click

from vidseg_cli.api.catalogue import BESIDE, MAIN, OUT, STAGES, Port, Stage
from vidseg_cli.errors import InputError


class PlanError(InputError):
    """A submission that cannot be planned: one line, exit 2."""

    def __init__(self, message: str):
        Exception.__init__(self, message)
        self.message = message

    def __str__(self) -> str:
        return self.message


@dataclass
class Item:
    """One line of a manifest: a main input, its video, and the outputs it will have."""

    input: str  # absolute path
    video_id: str
    kind: str  # the kind of the main output (what --follow passes on)
    outputs: list[str] = field(default_factory=list)  # absolute paths, main output first

    def done(self) -> bool:
        return bool(self.outputs) and all(Path(o).exists() for o in self.outputs)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def find_stage(words: list[str]) -> tuple[Stage, list[str]]:
    """The catalogue stage named by the first words of `words` ("train fsn ..." or
    "extract-frames ..."), and the words after its name."""
    if not words:
        raise PlanError("no stage given: vidseg submit [OPTIONS] STAGE [STAGE ARGS]")
    for n in (2, 1):
        name = " ".join(words[:n])
        if len(words) >= n and name in STAGES.names():
            return STAGES.get(name), list(words[n:])
    known = ", ".join(n for n in STAGES.names() if n != "synth")
    typed = " ".join(words[:2]) if words[0] == "train" else words[0]
    raise PlanError(f"{typed}: not a stage that can be submitted (one of: {known})")


def command_of(stage: Stage) -> click.Command:
    """The stage's click command, with the float checks every `vidseg` command has."""
    from vidseg_cli.cli.lazy import finite_floats

    module, attr = stage.command.split(":")
    return finite_floats(getattr(importlib.import_module(module), attr))


def parse(stage: Stage, args: list[str]) -> click.Context:
    """Check `args` with the stage's own parser (types, choices, ranges, required options):
    a typo is a click.UsageError here, not a failure hours later in the queue."""
    cmd = command_of(stage)
    return cmd.make_context(f"vidseg {stage.name}", list(args))


def main_argument(cmd: click.Command) -> click.Argument | None:
    """The command's INPUTS argument (nargs=-1), if it takes one."""
    for p in cmd.params:
        if isinstance(p, click.Argument) and p.nargs == -1:
            return p
    return None


def option_named(cmd: click.Command, opt: str) -> click.Option | None:
    for p in cmd.params:
        if isinstance(p, click.Option) and (opt in p.opts or opt in p.secondary_opts):
            return p
    return None


def holds(when: str, ctx: click.Context) -> bool:
    """Whether a catalogue condition ("--method fsn|wfsn", "--frame-scores") holds for the
    parsed arguments; an empty condition always holds."""
    if not when:
        return True
    opt, _, values = when.partition(" ")
    p = option_named(ctx.command, opt)
    if p is None:
        return False
    value = ctx.params.get(p.name)
    if not values:
        return bool(value)
    return str(value) in values.split("|")


def active(ports: tuple[Port, ...], ctx: click.Context, via: str) -> list[Port]:
    return [p for p in ports if p.via == via and holds(p.when, ctx)]


def output_value(ctx: click.Context) -> str | None:
    p = option_named(ctx.command, "-o")
    return None if p is None else ctx.params.get(p.name)


def _video_id(path: Path, kinds: list[str]) -> str:
    """The id the stage names outputs by: `<id>.<kind>.h5` gives it by name; another HDF5
    file's is its video_id attribute; a video's is its file stem (store.video_id_of)."""
    from vidseg_cli.store import video_id_of

    if path.suffix in (".h5", ".hdf5") and not any(path.name.endswith(f".{k}.h5") for k in kinds):
        try:
            from vidseg_cli.store.pairing import read_video_ids

            return read_video_ids([path])[0]
        except Exception:  # an unreadable input: the stage will name it; its name is the id
            pass
    return video_id_of(path)


def _kind_of(path: Path, kinds: list[str]) -> str | None:
    """The input's kind when the stage's output kind follows it (hmm-smooth)."""
    for k in kinds:
        if path.name.endswith(f".{k}.h5"):
            return k
    try:
        from vidseg_cli.store import peek_kind

        return peek_kind(path)
    except Exception:
        return None


def plan_items(stage: Stage, ctx: click.Context, given: list[Item] | None = None) -> list[Item]:
    """One Item per main input of a per-video stage, in the stage's order. `given` are
    the inputs already known (a --follow upstream's predicted outputs, which need not exist
    yet): their ids and kinds come from the upstream record rather than from the files."""
    from vidseg_cli.cli.common import expand_inputs

    arg = main_argument(ctx.command)
    out = output_value(ctx)
    if arg is None or out is None:
        raise PlanError(f"{stage.name}: takes no INPUTS and -o; submit it as a single job")
    folder = Path(out)
    if folder.suffix in (".h5", ".hdf5") and not folder.is_dir():
        raise PlanError(f"{out}: -o must be a folder under submit (each task writes "
                        "<video_id>.<kind>.h5 files of its slice there)")
    in_kinds = sorted({k for p in active(stage.reads, ctx, MAIN) for k in p.kinds})
    out_ports = active(stage.writes, ctx, OUT) + active(stage.writes, ctx, BESIDE)
    if given is None:
        raw = list(ctx.params.get(arg.name) or ())
        hdf5_kinds = [k for k in in_kinds if k != "video"]
        if hdf5_kinds and "video" not in in_kinds:
            try:
                files = expand_inputs(stage.name, raw, hdf5_kinds, quiet=True)
            except SystemExit as e:  # expand_inputs printed its one line already
                raise PlanError("") from e
        else:
            files = [Path(r) for r in raw]
        known = [(Path(os.path.abspath(f)), None, None) for f in files]
    else:
        known = [(Path(i.input), i.video_id, i.kind) for i in given]
    items = []
    for path, vid, kind in known:
        if "\n" in str(path):
            raise PlanError(f"{path!r}: a path with a newline cannot go in a manifest")
        vid = vid or _video_id(path, in_kinds)
        in_kind = kind or _kind_of(path, in_kinds)
        outs, main_kind = [], None
        for port in out_ports:
            # A port writing one of several kinds writes its input's (hmm-smooth).
            k = in_kind if in_kind in port.kinds else port.kinds[0]
            main_kind = main_kind or k
            o = (folder / f"{vid}.{k}.h5").absolute()
            if str(o) not in outs:
                outs.append(str(o))
        items.append(Item(str(path), vid, main_kind or "", outs))
    ids = [i.video_id for i in items]
    dup = sorted({v for v in ids if ids.count(v) > 1})
    if dup:
        raise PlanError(f"several inputs share the video id(s) {', '.join(dup)}; outputs would collide")
    return items


def set_outputs(stage: Stage, ctx: click.Context) -> list[str]:
    """The files a whole-set stage writes: -o (a file, or a training run folder's
    last.ckpt), or the --json a stage such as evaluate writes its metrics to."""
    outs = []
    for port in stage.writes:
        if not holds(port.when, ctx):
            continue
        p = option_named(ctx.command, "-o" if port.via == OUT else port.via)
        value = ctx.params.get(p.name) if p is not None else None
        if value in (None, "-"):
            continue
        path = Path(os.path.abspath(value))
        outs.append(str(path / "last.ckpt") if "run" in port.kinds else str(path))
    return outs
