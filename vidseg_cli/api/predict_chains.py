"""The chains `predict` runs (api/predict.py's PIPELINES): one function per pipeline, each
loading the stages' own api/ runners once with the weights of its roles and wiring their
files by tag, so every intermediate file is the one the stage itself would write."""

from __future__ import annotations

from vidseg_cli.api.predict import Options, Step
from vidseg_cli.errors import InputError


def _frames(opts: Options) -> Step:
    from vidseg_cli.api import extract_frames as ef

    runner = ef.load(ef.Options(fps=opts.fps, size=opts.size, short_side=opts.short_side,
                                command=opts.command))
    return Step("extract-frames", runner, {"video": "video"}, {"frames": "frames"})


def _features(opts: Options) -> Step:
    from vidseg_cli.api import extract_features as xf

    runner = xf.load(xf.Options(weights=opts.weights["backbone"], device=opts.device, amp=opts.amp,
                                command=opts.command))
    return Step("extract-features", runner, {"frames": "frames"}, {"features": "features"})


def _fsn_like(opts: Options, method: str) -> list[Step]:
    from vidseg_cli.api import localize

    loc = localize.load(localize.Options(weights=opts.weights[method], method=method,
                                         device=opts.device, amp=opts.amp, command=opts.command))
    return [_frames(opts), _features(opts),
            Step("localize", loc, {"features": "features"},
                 {"detections": "detections", "frame_scores": "frame_scores"})]


def fsn(opts: Options) -> list[Step]:
    return _fsn_like(opts, "fsn")


def wfsn(opts: Options) -> list[Step]:
    return _fsn_like(opts, "wfsn")


def scnn(opts: Options) -> list[Step]:
    from vidseg_cli.api import localize, propose

    prop = propose.load(propose.Options(weights=opts.weights["proposal"], device=opts.device,
                                        amp=opts.amp, command=opts.command))
    loc = localize.load(localize.Options(weights=opts.weights["localization"], method="scnn",
                                         device=opts.device, amp=opts.amp, command=opts.command))
    return [_frames(opts),
            Step("propose", prop, {"frames": "frames"}, {"proposals": "proposals"}),
            Step("localize", loc, {"proposals": "proposals", "frames": "frames"},
                 {"detections": "detections"})]


def _model_name(path: str, allowed: tuple[str, ...], pipeline: str) -> tuple[str, list[str]]:
    """The model a checkpoint holds and its classes, refused when the pipeline can't run it."""
    from vidseg_cli.models.checkpoint.format import read_checkpoint

    ckpt = read_checkpoint(path)
    if ckpt["model"] not in allowed:
        raise InputError(path, f"a {ckpt['model']} checkpoint; the {pipeline} pipeline takes "
                               f"{' or '.join(allowed)}")
    return ckpt["model"], list(ckpt["classes"])


def _segment(opts: Options, model: str) -> Step:
    from vidseg_cli.api import segment3d

    runner = segment3d.load(segment3d.Options(model=model, weights=opts.weights["model"],
                                              device=opts.device, amp=opts.amp, command=opts.command))
    return Step("segment-3d", runner, {"frames": "frames"}, {"scores": "scores"})


def fcn3d(opts: Options) -> list[Step]:
    """3DFCN §3.5-3.6: the posteriors, the HMM belief when an HMM is given, the dense CRF."""
    from vidseg_cli import store
    from vidseg_cli.api import crf_refine, hmm_smooth

    model, classes = _model_name(opts.weights["model"], ("3dfcn-8s", "3dfcn-32s"), "3dfcn")
    steps = [_frames(opts), _segment(opts, model)]
    refine_from = "scores"
    if "hmm" in opts.weights:
        hmm = store.read_hmm(opts.weights["hmm"])
        if list(hmm.class_names) != classes:
            raise InputError(opts.weights["hmm"], f"classes {list(hmm.class_names)} differ from the "
                                                  f"model's {classes} ({opts.weights['model']})")
        smoother = hmm_smooth.load(hmm_smooth.Options(hmm=hmm, device=opts.device, command=opts.command))
        steps.append(Step("hmm-smooth", smoother, {"scores": "scores"}, {"scores": "smoothed.scores"}))
        refine_from = "smoothed.scores"
    refiner = crf_refine.load(crf_refine.Options(jobs=opts.crf_jobs, command=opts.command))
    steps.append(Step("crf-refine", refiner, {"scores": refine_from, "frames": "frames"},
                      {"labels": "labels"}))
    return steps


def sep3d(opts: Options) -> list[Step]:
    _model_name(opts.weights["model"], ("sep3d", "sep3d+head"), "sep3d")
    return [_frames(opts), _segment(opts, "sep3d")]


def segment_tube(opts: Options) -> list[Step]:
    from vidseg_cli.api import segment_tube as st

    runner = st.load(st.Options(weights=opts.weights["model"], device=opts.device, amp=opts.amp,
                                command=opts.command))
    return [_frames(opts),
            Step("segment-tube", runner, {"frames": "frames"},
                 {"labels": "labels", "detections": "detections", "frame_scores": "frame_scores"})]
