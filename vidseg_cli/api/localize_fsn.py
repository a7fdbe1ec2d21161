"""`localize --method fsn | wfsn`: frame scores from snippet features, then detections.

FSN (§3.5 "FSN model prediction"): the network is slid over the whole video without
overlap, in windows of the training clip's length (`clip_snippets` in the checkpoint's
`preprocess`, written by `train fsn`; else §3.5's N = 7 snippets), on features standardized
with the training statistics the checkpoint carries; the windows' snippet scores are put on their centre frames and
interpolated linearly to every frame (§3.3's upsampling, across window borders too), then
softmax (Eq. 1). Frames outside the first and last centres take the nearest centre's score.

WFSN (§4.3): the pooling is removed and the temporal CNN runs over the whole video's
features at once; softmax over the K actions. WFSN has no background class: the frame
scores file still has column 0 = background (DESIGN.md), holding 0.

Detections (§3.5, §4.2): stages/grouping.py groups consecutive frames above each threshold
0.0, 0.1, ..., 0.9 per class, scores a run by its mean probability and applies the shared
class-aware NMS at `nms_iou` (0.4: the evaluation tIoU 0.5 minus 0.1).

WFSN's runs are scored by default by their outer-inner contrast instead of their mean
(`segment_score`, stages/grouping.py says why), and `video_threshold` > 0 localizes only
the classes whose video-level score (the GMP of Eq. 2 over the whole video, softmax of
Eq. 3: what WFSN was trained to predict) reaches it, as weakly supervised localizers
(UntrimmedNets, STPN) localize only the classes they recognise in the video.

`--fuse` (inputs "flow-features", with `fuse_weights`): the flow stream's features and FSN;
the two streams' frame probabilities are averaged (two-stream FSN, Tables 1-2).

    loc = FSNLocalizer(Options(weights="rgb.ckpt", fuse_weights="flow.ckpt"))
    loc.run({"features": "rgb/v.features.h5", "flow-features": "flow/"},
            {"detections": "out/v.detections.h5", "frame_scores": "out/v.frame_scores.h5"})
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from vidseg_cli import store
from vidseg_cli.api.base import Ports, one
from vidseg_cli.api.localize import STAGE, DetectionsSummary, Options, frame_scores_path
from vidseg_cli.errors import InputError
from vidseg_cli.infer.fsn import DEFAULT_SEGMENT_SCORE, DEFAULT_WINDOW, slide_fsn, wfsn_predict
from vidseg_cli.stages.grouping import FSN_THRESHOLDS, SEGMENT_SCORES, group_frames
from vidseg_cli.store.pairing import index_by_video_id, read_ids_and_kinds


class _Stream:
    """One stream's network, checked against each features file it is given."""

    def __init__(self, weights: str, method: str, device: str):
        from vidseg_cli.models import build_from_checkpoint
        from vidseg_cli.runtime import resolve_device

        self.weights = weights
        self.model, ckpt = build_from_checkpoint(weights, expect_model=method)
        self.classes = list(ckpt["classes"])
        if self.classes[:1] != ["background"]:
            raise InputError(weights, f"class list should start with 'background', found {self.classes[:1]}")
        pre = ckpt.get("preprocess") or {}  # written by `vidseg train fsn|wfsn`
        self.expect = pre.get("features") or {}  # what the network was trained on
        self.window = int(pre.get("clip_snippets") or DEFAULT_WINDOW)
        self.mean = np.asarray(pre["feature_mean"], np.float32) if "feature_mean" in pre else None
        self.std = np.asarray(pre["feature_std"], np.float32) if "feature_std" in pre else None
        self.device = resolve_device(device)
        self.model.to(self.device).eval()
        self.dim = int(self.model.tcnn.in_features)

    def read(self, path: str | Path):
        rec = store.read_features(path)
        d = rec["features"].shape[1]
        a = rec.attrs
        if d != self.dim:
            raise InputError(path, f"features have size {d} ({a.get('backbone', '?')}, "
                                   f"{a.get('stream', '?')} stream) but {self.weights} expects {self.dim}")
        for key in ("backbone", "stream", "snippet", "flow_method"):
            if key in self.expect and key in a and str(self.expect[key]) != str(a[key]):
                raise InputError(path, f"features have {key} {a[key]!r} but {self.weights} was "
                                       f"trained on {key} {self.expect[key]!r}")
        c = np.asarray(rec["centers"], np.int64)
        if len(c) > 1 and not (np.diff(c) > 0).all():
            raise InputError(path, "'centers' must increase")
        if len(c) and (c[0] < 0 or c[-1] >= rec.num_frames):
            raise InputError(path, f"'centers' lie outside the video's {rec.num_frames} frames")
        if not np.isfinite(rec["features"]).all():
            raise InputError(path, "non-finite feature values")
        return rec



class FlowPartners:
    """The flow features paired with each RGB features file: in a folder, the features file
    with the same `video_id` attribute (store/pairing.py); a file given is taken as it is
    (the caller checks its `video_id`)."""

    def __init__(self):
        self._folders: dict[Path, dict[str, Path]] = {}

    def _index(self, folder: Path) -> dict[str, Path]:
        if folder not in self._folders:
            files = sorted(f for f in folder.iterdir() if f.suffix in (".h5", ".hdf5") and f.is_file())
            ids, kinds = read_ids_and_kinds(files)
            # an unreadable file named as features stays: reading it later reports it
            keep = [i for i, (f, k) in enumerate(zip(files, kinds))
                    if k == "features" or (k is None and f.name.endswith(".features.h5"))]
            self._folders[folder] = index_by_video_id([files[i] for i in keep], [ids[i] for i in keep],
                                                      what="flow features")
        return self._folders[folder]

    def of(self, fuse: str | Path, video_id: str, features_path: str | Path) -> Path:
        p = Path(fuse)
        if p.is_dir():
            found = self._index(p)
            if video_id not in found:
                raise InputError(features_path, f"no flow features for video '{video_id}' in {fuse}")
            return found[video_id]
        if not p.is_file():
            raise InputError(fuse, "no such file or folder")
        return p


class FSNLocalizer:
    """`localize --method fsn` (api/localize.py's registry): features in, frame scores and
    detections out."""

    method = "fsn"

    def __init__(self, opts: Options):
        self.opts = opts
        self.score = opts.segment_score or DEFAULT_SEGMENT_SCORE[self.method]
        if self.score not in SEGMENT_SCORES:
            raise ValueError(f"segment score must be one of {', '.join(SEGMENT_SCORES)}, got {self.score!r}")
        self.rgb = _Stream(opts.weights, self.method, opts.device)
        self.flow = _Stream(opts.fuse_weights, "fsn", opts.device) if opts.fuse_weights else None
        if self.flow is not None and self.flow.classes != self.rgb.classes:
            raise InputError(opts.fuse_weights, f"classes differ from {opts.weights}'s")
        self.partners = FlowPartners()

    def probs_of(self, stream: _Stream, rec) -> tuple[np.ndarray, np.ndarray | None]:
        """(T, K+1) frame probabilities and, for wfsn, the (K,) video-level probabilities."""
        f, c = np.asarray(rec["features"], np.float32), np.asarray(rec["centers"])
        if stream.mean is not None:  # the standardization the network was trained with
            f = (f - stream.mean) / stream.std
        if self.method == "wfsn":
            return wfsn_predict(stream.model, f, c, rec.num_frames, stream.device, self.opts.amp)
        return slide_fsn(stream.model, f, c, rec.num_frames, stream.window, stream.device, self.opts.amp), None

    def run(self, inputs: Ports, outputs: Ports) -> DetectionsSummary:
        """Localize inputs["features"] (with the flow stream, inputs["flow-features"]: a file
        or a folder to pair in) into outputs["detections"] and outputs["frame_scores"]
        (default: `frame_scores_path`)."""
        opts = self.opts
        one(inputs, "features", STAGE)
        features_path = str(inputs["features"])  # as given: it names the video in messages
        det_path = one(outputs, "detections", STAGE)
        rec = self.rgb.read(features_path)
        vid = rec.video_id or store.video_id_of(features_path)
        probs, video = self.probs_of(self.rgb, rec)  # T x (K+1), K or None
        used = [features_path, opts.weights]
        if self.flow is not None:
            fpath = self.partners.of(one(inputs, "flow-features", STAGE), vid, features_path)
            frec = self.flow.read(fpath)
            if frec.video_id != vid:
                raise InputError(fpath, f"flow features of video '{frec.video_id}', not '{vid}' "
                                        f"({features_path}); give a folder to pair files by video id")
            if frec.num_frames != rec.num_frames:
                raise InputError(fpath, f"{frec.num_frames} frames, but {features_path} has {rec.num_frames}")
            probs = (probs + self.probs_of(self.flow, frec)[0]) / 2  # two-stream: average of the frame scores
            used += [str(fpath), opts.fuse_weights]
        keep = None  # columns to localize: all, or the classes recognised in the video
        if video is not None and opts.video_threshold > 0:
            # the top class always: a video labelled for WFSN holds at least one action (§3.4)
            keep = np.flatnonzero((video >= opts.video_threshold) | (video == video.max())) + 1
        seg, lab, sc = group_frames(probs, FSN_THRESHOLDS, background=0, nms_iou=opts.nms_iou,
                                    top_k=opts.top_k, score=self.score, classes=keep)
        meta = dict(video_id=vid, num_frames=rec.num_frames, fps=rec.fps, class_names=self.rgb.classes,
                    command=opts.command)
        attrs = {"method": self.method, "fused": self.flow is not None, "nms_iou": float(opts.nms_iou),
                 "thresholds": list(FSN_THRESHOLDS),
                 "window_snippets": self.rgb.window if self.method == "fsn" else 0,
                 "snippet": int(rec.attrs.get("snippet", 0)), "segment_score": self.score}
        if video is not None:
            attrs.update(video_threshold=float(opts.video_threshold),
                         video_scores=[float(v) for v in video])
        fs_path = (one(outputs, "frame_scores", STAGE) if "frame_scores" in outputs
                   else frame_scores_path(det_path))
        store.write_frame_scores(fs_path, probs, inputs=used, attrs=attrs, **meta)
        store.write_detections(det_path, seg, lab, sc, inputs=[*used, str(fs_path)], attrs=attrs, **meta)
        return DetectionsSummary(input=features_path, output=str(det_path), frame_scores=str(fs_path),
                                 detections=int(len(sc)), frames=int(rec.num_frames))


class WFSNLocalizer(FSNLocalizer):
    """`localize --method wfsn` (api/localize.py's registry); one stream only."""

    method = "wfsn"

    def __init__(self, opts: Options):
        if opts.fuse_weights:
            raise ValueError("--fuse is for --method fsn")
        super().__init__(opts)
