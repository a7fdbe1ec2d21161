"""extract-features: one feature vector per snippet of a frames file (FSN §3.2).

A video of T frames is cut into snippets of L frames (`snippet`, FSN §3.5: 5) every `stride`
frames (default L: consecutive snippets). Snippet i covers frames [i*stride, i*stride + L)
and is represented by its centre frame c_i = i*stride + (L-1)//2 (§3.2; for L = 1 the
frame itself). The 2D backbone sees that frame (rgb stream) or the TSN stack of 5 optical
flow fields around it (flow stream, 10 channels), and the feature is its globally pooled
output (ResNet: average pool of layer4; VGG-16: fc7, or the average pool of conv5_3 with
`vgg_head="gap"`). The c3d backbone instead sees the 16-frame clip centred on c_i
(frames c_i-8 .. c_i+7, the edge frame repeated outside the video), resized to 112 on the
short side and centre-cropped to 112 x 112, in 0..255 as the C3D port expects; its
feature is fc7.

The output stores `features` (N, D) and `centers` (N,), and the attributes `snippet`,
`stride`, `backbone`, `stream`, `flow_method`, `feature_dim` and where the weights came
from, so a feature's frames and seconds follow from the file alone
(`timestamps[centers[i]]` of the frames file).

Long videos: every `checkpoint_every` seconds the features done so far go to a hidden
`.<output>.partial.npz` beside the output (written atomically, keyed by the input's uid
and every setting), and a rerun continues from it; it is removed once the output exists.

    extractor = load(Options(weights="resnet18-imagenet.pth", backbone="resnet18"))
    summary = extractor.run({"frames": "v.frames.h5"}, {"features": "v.features.h5"})
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import time
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from vidseg_cli.api.base import Ports, Summary, one
from vidseg_cli.core.fs import atomic_path
from vidseg_cli.errors import InputError
from vidseg_cli.infer.features import C3D_CLIP, SnippetEncoder, snippet_center_frames

STAGE = "extract-features"
BACKBONES = ("resnet18", "resnet50", "vgg16", "c3d")


@dataclass
class Options:
    weights: str  # our checkpoint (train backbone) or public ImageNet / C3D-port weights
    backbone: str | None = None  # resnet18|resnet50|vgg16|c3d; None: the checkpoint's
    stream: str | None = None  # rgb|flow; None: the checkpoint's (rgb for public weights)
    snippet: int = 5  # L frames per snippet (FSN §3.5)
    stride: int | None = None  # frames between snippet starts; None: L (consecutive)
    flow: str | None = None  # tvl1 (TSN's) or farneback; None: the backbone checkpoint's, else tvl1
    flow_length: int = 5  # flow fields per stack (TSN: 5, 10 channels)
    vgg_head: str = "fc7"  # vgg16 with public weights: fc7 (4096) or gap (512)
    batch_size: int = 32  # snippets per forward pass
    device: str = "auto"
    amp: bool = False
    checkpoint_every: float = 60.0  # seconds between partial saves of a long video
    command: str | None = None


@dataclass
class FeaturesSummary(Summary):
    input: str
    output: str
    snippets: int
    feature_dim: int
    seconds: float
    warnings: list[str] = field(default_factory=list)  # lines for the user, not in --json

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d.pop("warnings")
        return d


def load(opts: Options) -> FeatureExtractor:
    """Check the settings and load the backbone once."""
    return FeatureExtractor(opts)


def load_backbone(opts: Options) -> tuple[Any, dict[str, Any]]:
    """Build the backbone and load its weights; (model in eval mode, provenance attrs).

    Our checkpoint decides the architecture (and the stream, from its input channels);
    public weights need `backbone` and are mapped by key (models/checkpoint.py), a flow
    model getting TSN's cross-modality init of its first conv.
    """
    from vidseg_cli.models import MODELS, build_from_checkpoint, load_public_weights
    from vidseg_cli.models.checkpoint.weights import is_checkpoint, read_weights

    if opts.backbone is not None and opts.backbone not in BACKBONES:
        raise ValueError(f"unknown backbone {opts.backbone!r} (known: {', '.join(BACKBONES)})")
    raw = read_weights(opts.weights)
    if is_checkpoint(raw):
        model, ckpt = build_from_checkpoint(opts.weights, expect_model=BACKBONES)
        name = ckpt["model"]
        if opts.backbone is not None and opts.backbone != name:
            raise InputError(opts.weights, f"checkpoint is a {name} backbone, not --backbone {opts.backbone}")
        stream = "flow" if getattr(model, "in_channels", 3) != 3 else "rgb"
        if opts.stream is not None and opts.stream != stream:
            raise InputError(opts.weights, f"checkpoint takes {model.in_channels}-channel {stream} input, "
                                           f"not the {opts.stream} stream")
        source = {"weights_kind": "vidseg-checkpoint", "backbone_config": json.dumps(ckpt["config"])}
        pre = ckpt.get("preprocess") or {}
        if stream == "flow" and pre.get("flow_method"):
            source["trained_flow_method"] = pre["flow_method"]
    else:
        if opts.backbone is None:
            raise InputError(opts.weights, "public weights: say which network they are with --backbone")
        name, stream = opts.backbone, opts.stream or "rgb"
        if name == "c3d" and stream != "rgb":
            raise InputError(opts.weights, "the c3d backbone takes RGB clips; there is no flow c3d")
        config: dict[str, Any] = {"num_classes": 0} if name != "c3d" else {}
        if stream == "flow":
            config["in_channels"] = 2 * opts.flow_length
        if name == "vgg16":
            config["head"] = opts.vgg_head
        model = MODELS.build(name, **config)
        report = load_public_weights(raw, model, path=opts.weights)
        model.eval()
        source = {"weights_kind": report.layout, "backbone_config": json.dumps(model.model_config)}
    source.update(backbone=name, stream=stream, weights=str(Path(opts.weights).resolve()))
    return model, source


class FeatureExtractor:
    """Loads the backbone once; `run` writes one features file per frames file."""

    def __init__(self, opts: Options, model=None, source: dict[str, Any] | None = None):
        from vidseg_cli.runtime import resolve_device

        if opts.snippet < 1 or (opts.stride is not None and opts.stride < 1):
            raise ValueError("snippet and stride must be >= 1")
        if opts.flow not in (None, "tvl1", "farneback"):
            raise ValueError(f"unknown flow method {opts.flow!r} (known: tvl1, farneback)")
        self.stride = opts.stride or opts.snippet
        if model is None:
            model, source = load_backbone(opts)
        if opts.flow is None:  # the flow the backbone was trained on, else TSN's TV-L1
            opts = dataclasses.replace(opts, flow=(source or {}).get("trained_flow_method", "tvl1"))
        self.opts = opts
        self.model, self.source = model, dict(source or {})
        self.name = self.source.get("backbone", getattr(model, "model_name", "?"))
        self.stream = self.source.get("stream", "rgb")
        self.device = resolve_device(opts.device)
        self.encoder = SnippetEncoder(model, self.name, self.stream, self.device, opts.amp, opts.flow_length)
        self.dim = self.encoder.dim

    # -- one video --------------------------------------------------------------------
    def _partial_key(self, uid: str) -> str:
        o = self.opts
        w = Path(o.weights)
        st = w.stat() if w.exists() else None
        return json.dumps({"input_uid": uid, "backbone": self.name, "stream": self.stream,
                           "snippet": o.snippet, "stride": self.stride, "flow": o.flow,
                           "flow_length": o.flow_length, "weights": str(w.resolve()),
                           "weights_size": st.st_size if st else None,
                           "weights_mtime": st.st_mtime if st else None}, sort_keys=True)

    def run(self, inputs: Ports, outputs: Ports,
            progress: Callable[[int, int], None] | None = None) -> FeaturesSummary:
        """Extract the features of the frames file inputs["frames"] into outputs["features"]."""
        from vidseg_cli import store
        from vidseg_cli.datasets.fsn_data import VideoFrames

        frames_path = str(one(inputs, "frames", STAGE))
        out_path = one(outputs, "features", STAGE)
        # overlapping flow stacks (stride < snippet + flow length) share pairs: cache them,
        # dropping those behind each batch so memory stays flat in video length
        video = VideoFrames(frames_path, flow_method=self.opts.flow, cache_flow=True)
        try:
            return self._run(video, frames_path, out_path, progress, store)
        except ValueError as e:  # a model input the network cannot take, a short video for flow
            raise InputError(frames_path, str(e)) from None
        finally:
            video.close()

    def _run(self, video, frames_path, out_path, progress, store) -> FeaturesSummary:
        o = self.opts
        T = video.num_frames
        warn: list[str] = []
        centers = snippet_center_frames(T, o.snippet, self.stride)
        if self.stream == "flow" and T < 2:
            centers = centers[:0]
        if len(centers) == 0:
            warn.append(f"{frames_path}: {T} frames, shorter than one snippet of {o.snippet}"
                        + (" (flow needs 2)" if self.stream == "flow" else "") + "; empty features written")
        partial = out_path.with_name(f".{out_path.name}.partial.npz")
        key = self._partial_key(video.uid)
        feats = np.zeros((len(centers), self.dim), np.float32)
        done = 0
        if partial.exists():
            with contextlib.suppress(Exception), np.load(partial) as z:
                if str(z["key"]) == key and z["features"].shape[1] == self.dim:
                    done = int(z["done"])
                    feats[:done] = z["features"][:done]
        t0 = last_save = time.perf_counter()
        for lo in range(done, len(centers), o.batch_size):
            hi = min(lo + o.batch_size, len(centers))
            feats[lo:hi] = self.encoder.encode(video, centers[lo:hi])
            if hi < len(centers):
                video.drop_flow_before(int(centers[hi]) - self.opts.flow_length)
            done = hi
            if progress is not None:
                progress(done, len(centers))
            if o.checkpoint_every and time.perf_counter() - last_save > o.checkpoint_every and done < len(centers):
                _save_partial(partial, key, feats[:done], done)
                last_save = time.perf_counter()
        if not np.isfinite(feats).all():
            raise InputError(frames_path, f"{int((~np.isfinite(feats)).sum())} non-finite feature values "
                                          "(weights or --amp overflow)")
        attrs = {
            "snippet": int(o.snippet), "stride": int(self.stride), "backbone": self.name,
            "stream": self.stream, "flow_method": o.flow if self.stream == "flow" else "none",
            "flow_length": int(o.flow_length) if self.stream == "flow" else 0,
            "feature_dim": self.dim, "center_rule": "i*stride + (snippet-1)//2",
            **{k: v for k, v in self.source.items() if k not in ("backbone", "stream")},
        }
        if self.name == "c3d":
            attrs["clip_length"] = C3D_CLIP
        store.write_features(out_path, feats, centers, video_id=video.video_id, num_frames=T,
                             fps=video.fps, inputs=[frames_path, o.weights], attrs=attrs,
                             command=o.command)
        partial.unlink(missing_ok=True)
        return FeaturesSummary(input=str(frames_path), output=str(out_path), snippets=int(len(centers)),
                               feature_dim=self.dim, seconds=round(time.perf_counter() - t0, 3),
                               warnings=warn)


def _save_partial(path: Path, key: str, feats: np.ndarray, done: int) -> None:
    """Atomically replace the partial-progress file (the temporary name ends in .npz, which
    np.savez would otherwise append)."""
    try:
        with atomic_path(path, suffix=".npz") as tmp:
            np.savez(tmp, key=np.array(key), features=feats, done=np.array(done))
    except OSError as e:  # progress is a convenience: never fail the run for it
        warnings.warn(f"{path}: could not save partial progress ({e})", stacklevel=2)
