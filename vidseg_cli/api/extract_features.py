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
feature is fc7. The i3d backbone (the pytorch-i3d port's weights) sees all L frames of the
snippet, RGB or 2-channel TV-L1 flow, resized and centre-cropped as the published THUMOS14
I3D features were (infer/i3d_clips.py, docs/features.md); its feature is the 1024-d pooled
Mixed_5c, and with `flow_weights` the RGB and flow features are concatenated (2048-d).

Defaults depend on the backbone: i3d takes 16-frame snippets every 4 frames (the THUMOS14
features of ActionFormer and OpenTAD), the others 5-frame consecutive snippets (FSN §3.5).

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
BACKBONES = ("resnet18", "resnet50", "vgg16", "c3d", "i3d")
# backbone -> (snippet, stride) when not given; others: FSN's 5 frames, consecutive
SNIPPET_DEFAULTS = {"i3d": (16, 4)}
FSN_SNIPPET = 5


def snippet_defaults(backbone: str | None, snippet: int | None, stride: int | None) -> tuple[int, int]:
    """(snippet, stride) for a backbone: the given values, else its defaults (the stride
    defaulting to the snippet for the FSN backbones: consecutive snippets)."""
    if backbone in SNIPPET_DEFAULTS:
        d_snippet, d_stride = SNIPPET_DEFAULTS[backbone]
        return snippet or d_snippet, stride or d_stride
    snippet = snippet or FSN_SNIPPET
    return snippet, stride or snippet


@dataclass
class Options:
    weights: str  # our checkpoint (train backbone) or public ImageNet / C3D-port weights
    backbone: str | None = None  # resnet18|resnet50|vgg16|c3d|i3d; None: the checkpoint's
    stream: str | None = None  # rgb|flow|rgb+flow (i3d); None: the weights' (rgb for 2D public weights)
    snippet: int | None = None  # L frames per snippet; None: 16 for i3d, else 5 (FSN §3.5)
    stride: int | None = None  # frames between snippet starts; None: 4 for i3d, else L (consecutive)
    flow_weights: str | None = None  # i3d rgb+flow: the flow stream's weights (`weights`: the RGB's)
    crop_size: int = 224  # i3d: side of the centre crop (frames resized to 340x256 x crop/224)
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
        if name == "i3d":
            stream = _i3d_stream(raw, opts)
        if name == "c3d" and stream != "rgb":
            raise InputError(opts.weights, "the c3d backbone takes RGB clips; there is no flow c3d")
        config: dict[str, Any] = {"num_classes": 0} if name not in ("c3d", "i3d") else {}
        if stream == "flow":
            config["in_channels"] = 2 if name == "i3d" else 2 * opts.flow_length
        if name == "vgg16":
            config["head"] = opts.vgg_head
        model = MODELS.build(name, **config)
        report = load_public_weights(raw, model, path=opts.weights)
        model.eval()
        source = {"weights_kind": report.layout, "backbone_config": json.dumps(model.model_config)}
    source.update(backbone=name, stream=stream, weights=str(Path(opts.weights).resolve()))
    return model, source


def _i3d_stream(raw: Any, opts: Options) -> str:
    """The stream public I3D weights are for, from their first conv's input channels (3 rgb,
    2 flow); a different --stream is one line naming the file."""
    import torch

    sd = raw.get("state_dict", raw) if isinstance(raw, dict) else {}
    found = None
    for k, v in sd.items():
        if str(k).endswith("Conv3d_1a_7x7.conv3d.weight") and isinstance(v, torch.Tensor) and v.dim() == 5:
            found = {3: "rgb", 2: "flow"}.get(int(v.shape[1]))
    if found is not None and opts.stream is not None and opts.stream != found:
        raise InputError(opts.weights, f"holds {found} I3D weights ({'3' if found == 'rgb' else '2'}-channel "
                                       f"Conv3d_1a_7x7), not the {opts.stream} stream")
    return opts.stream or found or "rgb"


def load_streams(opts: Options) -> list[tuple[Any, dict[str, Any]]]:
    """The backbones of the streams asked for: one, or for i3d rgb+flow the RGB model of
    `weights` and the flow model of `flow_weights`, in that order."""
    both = opts.stream == "rgb+flow" or opts.flow_weights is not None
    if not both:
        return [load_backbone(opts)]
    if opts.backbone != "i3d":
        raise ValueError("--flow-weights and --stream rgb+flow are for --backbone i3d "
                         "(its RGB and flow features are concatenated)")
    if opts.flow_weights is None:
        raise ValueError("--stream rgb+flow needs --flow-weights (the flow stream's I3D weights; "
                         "--weights is the RGB stream's)")
    if opts.stream not in (None, "rgb+flow"):
        raise ValueError(f"--flow-weights gives a second stream: use --stream rgb+flow, not {opts.stream}")
    rgb = load_backbone(dataclasses.replace(opts, stream="rgb", flow_weights=None))
    flow = load_backbone(dataclasses.replace(opts, weights=opts.flow_weights, stream="flow", flow_weights=None))
    return [rgb, flow]


class FeatureExtractor:
    """Loads the backbone once; `run` writes one features file per frames file."""

    def __init__(self, opts: Options, model=None, source: dict[str, Any] | None = None):
        from vidseg_cli.runtime import resolve_device

        if (opts.snippet is not None and opts.snippet < 1) or (opts.stride is not None and opts.stride < 1):
            raise ValueError("snippet and stride must be >= 1")
        if opts.crop_size < 1:
            raise ValueError("crop size must be >= 1")
        if opts.flow not in (None, "tvl1", "farneback"):
            raise ValueError(f"unknown flow method {opts.flow!r} (known: tvl1, farneback)")
        streams = [(model, dict(source or {}))] if model is not None else load_streams(opts)
        source = dict(streams[0][1])
        if len(streams) == 2:  # i3d rgb+flow: one file's provenance for both
            source.update(stream="rgb+flow", flow_weights=streams[1][1]["weights"],
                          flow_backbone_config=streams[1][1]["backbone_config"])
        if opts.flow is None:  # the flow the backbone was trained on, else TSN's TV-L1
            opts = dataclasses.replace(opts, flow=streams[-1][1].get("trained_flow_method", "tvl1"))
        self.model, self.source = streams[0][0], source
        self.name = self.source.get("backbone", getattr(self.model, "model_name", "?"))
        self.stream = self.source.get("stream", "rgb")
        snippet, self.stride = snippet_defaults(self.name, opts.snippet, opts.stride)
        self.opts = opts = dataclasses.replace(opts, snippet=snippet, stride=self.stride)
        self.device = resolve_device(opts.device)
        self.encoders = [
            SnippetEncoder(m, self.name, src.get("stream", "rgb"), self.device, opts.amp, opts.flow_length,
                           snippet=snippet, crop=opts.crop_size)
            for m, src in streams]
        self.encoder = self.encoders[0]
        self.dim = sum(e.dim for e in self.encoders)

    # -- one video --------------------------------------------------------------------
    def _partial_key(self, uid: str) -> str:
        o = self.opts
        key = {"input_uid": uid, "backbone": self.name, "stream": self.stream,
               "snippet": o.snippet, "stride": self.stride, "flow": o.flow,
               "flow_length": o.flow_length, "crop_size": o.crop_size}
        for name, path in (("weights", o.weights), ("flow_weights", o.flow_weights)):
            if path is None:
                continue
            w = Path(path)
            st = w.stat() if w.exists() else None
            key.update({name: str(w.resolve()), f"{name}_size": st.st_size if st else None,
                        f"{name}_mtime": st.st_mtime if st else None})
        return json.dumps(key, sort_keys=True)

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
            for e in self.encoders:
                e.release(video, None)
            video.close()

    def _run(self, video, frames_path, out_path, progress, store) -> FeaturesSummary:
        o = self.opts
        T = video.num_frames
        warn: list[str] = []
        centers = snippet_center_frames(T, o.snippet, self.stride)
        flow = "flow" in self.stream
        if flow and T < 2:
            centers = centers[:0]
        if len(centers) == 0:
            warn.append(f"{frames_path}: {T} frames, shorter than one snippet of {o.snippet}"
                        + (" (flow needs 2)" if flow else "") + "; empty features written")
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
            feats[lo:hi] = np.concatenate([e.encode(video, centers[lo:hi]) for e in self.encoders], axis=1)
            if hi < len(centers):
                video.drop_flow_before(int(centers[hi]) - self.opts.flow_length)
                for e in self.encoders:  # i3d: frames before the next snippet's first
                    e.release(video, int(centers[hi]) - (o.snippet - 1) // 2)
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
            "stream": self.stream, "flow_method": o.flow if flow else "none",
            "flow_length": int(o.flow_length) if flow and self.name != "i3d" else 0,
            "feature_dim": self.dim, "center_rule": "i*stride + (snippet-1)//2",
            **{k: v for k, v in self.source.items() if k not in ("backbone", "stream")},
        }
        if self.name == "c3d":
            attrs["clip_length"] = C3D_CLIP
        if self.name == "i3d":
            attrs.update(i3d_attrs(o.snippet, o.crop_size, self.stream))
        store.write_features(out_path, feats, centers, video_id=video.video_id, num_frames=T,
                             fps=video.fps, inputs=[frames_path, o.weights, *([o.flow_weights] if o.flow_weights else [])],
                             attrs=attrs,
                             command=o.command)
        partial.unlink(missing_ok=True)
        return FeaturesSummary(input=str(frames_path), output=str(out_path), snippets=int(len(centers)),
                               feature_dim=self.dim, seconds=round(time.perf_counter() - t0, 3),
                               warnings=warn)


def i3d_attrs(snippet: int, crop: int, stream: str) -> dict[str, Any]:
    """What an i3d features file records of its inputs (infer/i3d_clips.py)."""
    from vidseg_cli.infer.i3d_clips import frame_hw

    h, w = frame_hw(crop)
    attrs: dict[str, Any] = {"clip_length": int(snippet), "crop_size": int(crop), "frame_size": f"{w}x{h}",
                             "input_range": "[-1, 1]", "clip_rule": "frames centers[i]-(snippet-1)//2 + 0..snippet-1"}
    if stream == "rgb+flow":
        attrs["feature_layout"] = "rgb [0, 1024), flow [1024, 2048)"
    return attrs


def _save_partial(path: Path, key: str, feats: np.ndarray, done: int) -> None:
    """Atomically replace the partial-progress file (the temporary name ends in .npz, which
    np.savez would otherwise append)."""
    try:
        with atomic_path(path, suffix=".npz") as tmp:
            np.savez(tmp, key=np.array(key), features=feats, done=np.array(done))
    except OSError as e:  # progress is a convenience: never fail the run for it
        warnings.warn(f"{path}: could not save partial progress ({e})", stacklevel=2)
