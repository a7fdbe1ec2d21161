"""`vidseg hmm-fit` and `vidseg hmm-smooth`: the HMM of 3DFCN §3.5 (stages/hmm/)."""

from __future__ import annotations

from pathlib import Path

import click

from vidseg_cli.cli.common import (
    Job,
    device_option,
    expand_inputs,
    fail,
    finish,
    json_option,
    notice,
    overwrite_option,
    parse_bytes,
    quiet_option,
    resolve_outputs,
    run_batch,
)
from vidseg_cli.cmdline import command_line

_H5 = (".h5", ".hdf5")

# ====================================================================================
# hmm-fit
# ====================================================================================
FIT = "hmm-fit"


@click.command("hmm-fit")
@click.argument("gt", nargs=-1, required=True, type=click.Path())
@click.option("-o", "--output", "out", required=True, type=click.Path(),
              help="Output hmm .h5 file (a folder, or a name without .h5, gets hmm.h5 inside).")
@click.option("--smoothing", type=click.FloatRange(min=0), default=1.0, show_default=True,
              help="Additive smoothing: (count + s) / (total + C s) for P(l_1) and each row "
                   "of P(l_t | l_(t-1)). 0 = raw frequencies.")
@click.option("--subset", default=None,
              help="Subset of temporal ground truth to count (e.g. validation).")
@click.option("--fps", type=click.FloatRange(min=0, min_open=True), default=None,
              help="Frame rate for rasterizing temporal ground truth given in seconds "
                   "(when the ground truth does not carry one).")
@click.option("--foreground", is_flag=True,
              help="Merge every action class into one: classes background, foreground (for "
                   "models trained with a foreground target, e.g. Sep3D).")
@overwrite_option
@quiet_option
@json_option
def hmm_fit(gt, out, smoothing, subset, fps, foreground, overwrite, quiet, json_out):
    """Count the HMM of 3DFCN §3.5 from ground truth GT: the initial distribution
    P(l_1) and one transition matrix P(l_t | l_(t-1)) shared by all pixels, over the
    class list of the ground truth (index 0 background).

    \b
    GT: labels .h5 files (pixel masks), J-HMDB puppet masks (puppet_mask/CLASS/VIDEO.mat
    or one .mat), DAVIS mask folders (Annotations/480p/SEQ/*.png; background/foreground),
    or temporal ground truth (ActivityNet-style JSON, THUMOS14 folder) rasterized to
    per-frame labels (frame t at t / fps; unannotated frames are background). Files or
    folders; every source must share one class list.
    """
    from vidseg_cli.api import hmm_fit as api

    o = Path(out)
    if o.is_dir() or o.suffix not in _H5:
        o = o / "hmm.h5"
    resolve_outputs(FIT, [str(o)], str(o), "hmm")  # creates and checks the folder
    runner = api.load(api.Options(smoothing=smoothing, subset=subset, fps=fps,
                                  foreground=foreground, command=command_line()))
    res = run_batch(FIT, [Job({"ground-truth": list(gt)}, {"hmm": o})],
                    lambda job: runner.run(job.inputs, job.outputs),
                    overwrite=overwrite, quiet=True, describe="ground truth")
    if res.skipped:
        notice(FIT, f"{o}: exists, skipped (use --overwrite to redo)", quiet)
    for r in res.results:
        for note in r["notes"]:
            click.echo(f"vidseg {FIT}: warning: {note}", err=True)
        if r["unseen_classes"] and not quiet:
            shown = ", ".join(r["unseen_classes"][:8]) + (", ..." if len(r["unseen_classes"]) > 8 else "")
            click.echo(f"vidseg {FIT}: warning: {len(r['unseen_classes'])} class(es) never occur "
                       f"in the ground truth ({shown}); their rows come from smoothing alone",
                       err=True)
    finish(FIT, res, 1, json_out, {"results": res.results}, quiet=quiet)


# ====================================================================================
# hmm-smooth
# ====================================================================================
SMOOTH = "hmm-smooth"


@click.command("hmm-smooth")
@click.argument("scores", nargs=-1, required=True, type=click.Path())
@click.option("--hmm", "hmm_path", required=True, type=click.Path(),
              help="The hmm .h5 file made by hmm-fit.")
@click.option("-o", "--output", "out", required=True, type=click.Path(),
              help="Output .h5 file (one input) or folder (<video_id>.<kind>.h5 per input).")
@click.option("--max-memory", callback=parse_bytes, default="1G", show_default=True,
              metavar="SIZE", help="Working memory of the recursions per video (e.g. 512M, "
                                   "4G): pixels are processed in spatial tiles that fit.")
@click.option("--min-prob", type=click.FloatRange(min=0, min_open=True, max=1), default=1e-6,
              show_default=True, help="Posteriors below this are read as this (exact zeros "
                                      "would rule out every path).")
@click.option("--tolerance", type=click.FloatRange(min=0), default=1e-3, show_default=True,
              help="Refuse scores whose class probabilities sum to 1 +- more than this.")
@click.option("--log-space", is_flag=True,
              help="Per-pixel recursions in float64 log space (exact over any range, "
                   "slower); frame scores always use it. Needed only for HMMs with zero "
                   "transitions on long videos.")
@click.option("--score-prior", type=click.Choice(["hmm", "uniform"]), default="hmm",
              show_default=True,
              help="What the posteriors are divided by to become likelihoods: hmm = P(l_t) of "
                   "Eq. (4) (the paper; for calibrated networks); uniform = nothing (for "
                   "networks trained with class weights or action-centred crops, whose "
                   "posteriors carry no data prior).")
@device_option
@click.option("--jobs", "-j", type=click.IntRange(1), default=1, show_default=True,
              help="With several inputs, videos in parallel (joblib); with one, CPU threads "
                   "over its pixel blocks.")
@overwrite_option
@quiet_option
@json_option
def hmm_smooth(scores, hmm_path, out, max_memory, min_prob, tolerance, log_space, score_prior,
               device, jobs, overwrite, quiet, json_out):
    """HMM belief P(l_t | Z_T) of 3DFCN §3.5, Eq. (1)-(4), for SCORES files (per-pixel
    scores (T,C,H,W) or per-frame frame_scores (T,C); files or folders).

    Forward-backward recursions over each pixel's label sequence, with the network's
    posterior divided by the prior P(l_t) of Eq. (4) as the observation, scaled so long
    videos stay exact; a fused numba kernel on CPU, torch on GPU and in log space, in
    spatial tiles under --max-memory, streamed into the output tile by tile. Writes the
    same kind as its input. The scores' class list must
    be the HMM's. --jobs: videos in parallel, or pixel blocks of a single video.
    """
    from vidseg_cli import store
    from vidseg_cli.api import hmm_smooth as api
    from vidseg_cli.errors import InputError
    from vidseg_cli.store.pairing import read_ids_and_kinds

    files = expand_inputs(SMOOTH, list(scores), api.KINDS, quiet)
    threads = jobs if len(files) == 1 else 1
    opts = api.Options(hmm=hmm_path, device=device, max_memory=max_memory, min_prob=min_prob,
                       tolerance=tolerance, threads=threads, log_space=log_space,
                       score_prior=score_prior, quiet=quiet, command=command_line())
    try:
        runner = api.load(opts)  # the HMM, then the device: a bad one is a usage error
    except (InputError, ValueError) as e:
        fail(SMOOTH, str(e))
    try:
        ids, kinds = read_ids_and_kinds(files, fallback_kind="scores", strict=len(files) == 1)
    except (store.StoreError, OSError) as e:
        fail(SMOOTH, str(e))
    outputs = resolve_outputs(SMOOTH, [str(f) for f in files], out, "scores", ids)
    if len(files) > 1 or Path(out).is_dir():
        outputs = [o.parent / store.output_name(i, k) for o, i, k in zip(outputs, ids, kinds)]
    # A file of another kind given by name goes in as scores: the runner names its kind.
    ports = [k if k in api.KINDS else "scores" for k in kinds]
    res = run_batch(SMOOTH, [Job({k: str(f)}, {k: o}) for f, k, o in zip(files, ports, outputs)],
                    lambda job: runner.run(job.inputs, job.outputs),
                    overwrite=overwrite, jobs=jobs, quiet=quiet)
    finish(SMOOTH, res, len(files), json_out, {"results": res.results}, quiet=quiet)
