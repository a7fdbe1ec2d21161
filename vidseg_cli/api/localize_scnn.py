"""`localize --method scnn`: the S-CNN localization network on the proposals (S-CNN §3.3).

Each proposal is scored over K+1 classes; segments whose top class is background are
dropped; the top class's score is multiplied by that class's frequency of the segment's
window length in the training data (stored in the checkpoint; a length never seen in
training has frequency 0); class-aware NMS (stages/nms.py) at `nms_iou` (0.4: the
evaluation threshold 0.5 minus 0.1) and an optional top-k make the detections.

The frames come from the proposals file's provenance (its first `inputs` entry, whose
`uid` must still match: a frames file rewritten since is refused) or from inputs["frames"]
(a frames file, or a folder holding `<video_id>.frames.h5`).

    loc = SCNNLocalizer(Options(weights="localization.ckpt", method="scnn"))
    loc.run({"proposals": "v.proposals.h5"}, {"detections": "v.detections.h5"})
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from vidseg_cli import store
from vidseg_cli.api.base import Ports, one
from vidseg_cli.api.localize import STAGE, DetectionsSummary, Options
from vidseg_cli.errors import InputError
from vidseg_cli.infer.scnn import score_windows
from vidseg_cli.models.scnn import load_stage_network
from vidseg_cli.runtime import resolve_device
from vidseg_cli.stages.nms import nms_per_class


def frames_for(proposals_path: str, attrs: dict, explicit: str | Path | None) -> str:
    """The frames file a proposals file was made from (checked), or the one given."""
    vid = attrs.get("video_id") or store.video_id_of(proposals_path)
    if explicit:
        p = Path(explicit)
        if p.is_dir():
            p = p / store.output_name(vid, "frames")
        if not p.is_file():
            raise InputError(p, f"no frames file for video '{vid}'")
        return str(p)
    inputs = attrs.get("inputs") or []
    recs = [i for i in inputs if isinstance(i, dict) and i.get("path")]
    if not recs:
        raise InputError(proposals_path, "records no frames file it was made from; give --frames")
    src = recs[0]
    p = Path(src["path"])
    if not p.is_file():
        raise InputError(proposals_path, f"its frames file {p} is missing; give --frames")
    now = store.input_record(p)["uid"]
    if src.get("uid") and now != src["uid"]:
        raise InputError(proposals_path, f"its frames file {p} has changed since the proposals were "
                                         f"made (uid {now}, recorded {src['uid']}); rerun propose")
    return str(p)


def _check_finite(path: str, segs: np.ndarray, scores: np.ndarray) -> None:
    """A NaN is a damaged file: the network rescores the segments, so it would otherwise
    pass unseen (and a NaN segment would slip through every range check)."""
    for what, bad in (("segment", ~np.isfinite(segs).all(1)), ("score", ~np.isfinite(scores))):
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise InputError(path, f"proposal {i} has a non-finite {what} "
                                   f"({int(bad.sum())} of {len(bad)} proposals)")


class SCNNLocalizer:
    """`localize --method scnn` (api/localize.py's registry): proposals in, detections out."""

    def __init__(self, opts: Options):
        self.opts = opts
        # The classification network also localizes (S-CNN §4.3, 'w/o localization').
        self.model = load_stage_network(opts.weights, ["localization", "classification"])
        self.device = resolve_device(opts.device)
        self.model.to(self.device)
        self.classes = list(self.model.classes)

    def run(self, inputs: Ports, outputs: Ports) -> DetectionsSummary:
        """Localize inputs["proposals"] (frames: inputs["frames"], a file or a folder, else
        the proposals' provenance) into outputs["detections"]."""
        opts, model = self.opts, self.model
        one(inputs, "proposals", STAGE)
        proposals_path = str(inputs["proposals"])  # as given: it names the video in messages
        out = one(outputs, "detections", STAGE)
        prop = store.read_proposals(proposals_path)
        explicit = one(inputs, "frames", STAGE) if "frames" in inputs else None
        frames_path = frames_for(proposals_path, prop.attrs, explicit)
        segs = np.asarray(prop["segments"], np.float64)  # N x 2 [start, end) frames
        _check_finite(proposals_path, segs, np.asarray(prop["scores"], np.float64))
        with store.open_record(frames_path, "frames") as fr:
            if fr.num_frames != prop.num_frames:
                raise InputError(frames_path, f"{fr.num_frames} frames, but the proposals file "
                                              f"{proposals_path} is for {prop.num_frames}")
            if len(segs) and (segs.min() < 0 or segs.max() > fr.num_frames or
                              (segs[:, 1] <= segs[:, 0]).any()):
                raise InputError(proposals_path, f"segments outside [0, {fr.num_frames}) frames or "
                                                 "with end <= start")
            win = np.round(segs).astype(np.int64)
            try:
                probs = score_windows(model, fr["frames"], win, opts.batch_size, self.device, opts.amp)
            except ValueError as e:
                raise InputError(frames_path, str(e)) from None
            fps = fr.fps
        label = probs.argmax(1) if len(probs) else np.zeros(0, np.int64)
        fg = label > 0  # background predictions are dropped (§3.3)
        seg, lab = segs[fg], label[fg]
        score = probs[fg, lab] * model.frequency(lab, seg[:, 1] - seg[:, 0])  # §3.3 length prior
        pos = score > 0
        seg, lab, score = seg[pos], lab[pos], score[pos]
        keep = nms_per_class(seg, lab, score, opts.nms_iou, opts.top_k) if len(seg) else np.zeros(0, int)
        store.write_detections(out, seg[keep], lab[keep], score[keep], class_names=self.classes,
                               video_id=prop.video_id, num_frames=prop.num_frames, fps=fps,
                               inputs=[proposals_path, frames_path], command=opts.command,
                               attrs={"method": "scnn", "nms_iou": opts.nms_iou,
                                      "stage_network": model.stage})
        return DetectionsSummary(input=proposals_path, output=str(out), proposals=int(len(segs)),
                                 foreground=int(fg.sum()), detections=int(len(keep)))
