"""How well can a coarse class map, trilinearly upsampled, draw the true masks at all?

A diagnostic for the learning check (docs/segment3d.md), not a timed benchmark. 3DFCN-8s
predicts one cell per 4 frames and 8 pixels (of its resized input) and interpolates
between cells; no network of that form can do better than the best such cell grid. For
each labels file (foreground = any action class) we fit that grid directly: logits on a
grid of the given stride, upsampled trilinearly (align_corners=False, as the cells' own
spacing) to the frames, optimized with Adam on the per-pixel logistic loss against the
truth. The foreground IoU of the fitted grid's sign is the ceiling (a lower bound on it:
the fit is not guaranteed global). With stride 1 in time the same fit shows what the
spatial stride alone costs.

    python -m experiments.segment3d.class_map_ceiling LABELS_DIR [--videos 4] \\
        [--stride 4,8,8] [--scale 2] [--steps 150]

--scale: the factor the model's input is resized by (the synthetic 3DFCN recipe's short
side 192 on 96-pixel frames: 2), so a stride of 8 input pixels is 4 frame pixels.
Recorded results: docs/segment3d.md, learning check.
"""

from __future__ import annotations

import argparse
import glob
import json
import os


def ceiling(labels_files: list[str], stride: tuple[int, int, int], scale: int, steps: int) -> dict:
    import h5py
    import numpy as np
    import torch
    import torch.nn.functional as F

    inter = union = 0
    for path in labels_files:
        with h5py.File(path, "r") as f:
            truth = f["labels"][:] > 0  # T x H x W
        g = torch.from_numpy(truth.astype(np.float32))[None, None]
        if scale > 1:
            g = F.interpolate(g, scale_factor=(1, scale, scale), mode="nearest")
        start = F.avg_pool3d(g, stride, ceil_mode=True).clamp(0.02, 0.98)
        z = torch.logit(start).requires_grad_(True)
        opt = torch.optim.Adam([z], lr=0.3)
        for _ in range(steps):
            up = F.interpolate(z, size=g.shape[2:], mode="trilinear", align_corners=False)
            loss = F.binary_cross_entropy_with_logits(up, g)
            opt.zero_grad()
            loss.backward()
            opt.step()
        with torch.no_grad():
            up = F.interpolate(z, size=g.shape[2:], mode="trilinear", align_corners=False)
            if scale > 1:  # back to frame pixels: the mean logit of each pixel's block
                up = F.avg_pool3d(up, (1, scale, scale))
            pred = up[0, 0].numpy() > 0
        inter += int((pred & truth).sum())
        union += int((pred | truth).sum())
    return {"stride": list(stride), "scale": scale, "videos": len(labels_files),
            "foreground_iou_ceiling": round(inter / max(union, 1), 4)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("labels_dir")
    ap.add_argument("--videos", type=int, default=4)
    ap.add_argument("--stride", default="4,8,8")
    ap.add_argument("--scale", type=int, default=2)
    ap.add_argument("--steps", type=int, default=150)
    ap.add_argument("--subset", default="test", help="synth subset the files are taken from")
    a = ap.parse_args()
    files = sorted(glob.glob(os.path.join(a.labels_dir, f"synth_{a.subset}_*.labels.h5")))[: a.videos]
    if not files:
        raise SystemExit(f"{a.labels_dir}: no synth_{a.subset}_*.labels.h5 files")
    stride = tuple(int(v) for v in a.stride.split(","))
    print(json.dumps(ceiling(files, stride, a.scale, a.steps)))


if __name__ == "__main__":
    main()
