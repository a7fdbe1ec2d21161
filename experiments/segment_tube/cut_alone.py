"""The spatial step alone for the Segment-tube learning check: from the saliency start B_o,
rounds of the cut (§2.2, Eq. 5-7) on each test video's ground-truth action frames, with the
command's defaults (SLIC 400 at a short side of 240, static saliency, β 0.5, 5 + 3 GMM
components, the normalised pairwise term). It measures what the cut does with the frames
it should see, apart from what the temporal step gets wrong; the spec's prototype measured
the same thing (docs/segment_tube.md, "Learning check").

    python -m experiments.segment_tube.cut_alone FRAMES_DIR GT_LABELS_DIR [--rounds 3]

Foreground IoU on the action frames after each round (round 0: B_o itself), pooled over
all pixels of all videos and as the mean of the videos' IoUs.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from vidseg_cli import store
from vidseg_cli.stages.saliency import initial_mask
from vidseg_cli.stages.segment_tube_spatial import SpatialParams, segment_round
from vidseg_cli.stages.superpixels import (
    SuperpixelParams,
    compute_superpixels,
    node_masks,
    working_frames,
)


def one_video(frames: np.ndarray, gt: np.ndarray, rounds: int) -> list[tuple[int, int]]:
    """(intersection, union) on the action frames of gt (T x H x W bool) after rounds 0..R."""
    kept = np.flatnonzero(gt.reshape(len(gt), -1).any(axis=1))
    params = SuperpixelParams()
    sp = compute_superpixels(frames, params)
    mask = initial_mask(sp, working_frames(frames, params.work_size))
    out = []
    for r in range(rounds + 1):
        if r:
            mask = np.asarray(segment_round(sp, mask, kept, SpatialParams()).labels, bool)
        pm = node_masks(sp, mask, gt.shape[1:])[kept]
        out.append((int((pm & gt[kept]).sum()), int((pm | gt[kept]).sum())))
    return out


def cut_alone(frames_dir: Path, gt_dir: Path, rounds: int = 3) -> dict:
    per_video = {}
    for fp in sorted(frames_dir.glob("*.frames.h5")):
        rec = store.read_frames(fp, load_frames=True)
        gt = np.asarray(store.read_labels(gt_dir / f"{rec.video_id}.labels.h5")["labels"]) > 0
        if gt.any():
            per_video[rec.video_id] = one_video(np.asarray(rec["frames"]), gt, rounds)
    iu = np.array(list(per_video.values()), float)  # V x (R+1) x 2
    ious = iu[..., 0] / np.maximum(iu[..., 1], 1)
    return {
        "rounds": rounds, "videos": len(per_video),
        "pooled": (iu[..., 0].sum(0) / iu[..., 1].sum(0)).tolist(),
        "mean_per_video": ious.mean(0).tolist(),
        "per_video": {v: [round(x, 4) for x in row] for v, row in zip(per_video, ious.tolist())},
    }


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("frames", type=Path)
    ap.add_argument("gt", type=Path)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args(argv)
    print(json.dumps(cut_alone(args.frames, args.gt, args.rounds), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
