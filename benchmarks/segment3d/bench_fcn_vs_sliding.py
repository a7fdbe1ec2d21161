"""3DFCN's fully convolutional pass against a sliding-window C3D at the same positions.

3DFCN §3.3: class-map cell (t, y, x) of 3DFCN-32s is the C3D score of the 16x112x112 window
starting at frame 16t, row 32y, column 32x (docs/models.md). We build a C3D with Caffe
rounding and a 3DFCN-32s with its weights (fcn_pair.py), then score one
40-frame 320x240 video both ways: one fully convolutional pass, and C3D on every window
(batched). The values are not equal in general: a window alone is zero-padded at its own
borders, where the whole-video pass sees the neighbouring pixels, and every pool5 cell of a
112-pixel window is within reach of those borders. So we report how closely they agree
(relative difference, argmax agreement) and check exact equality where it must hold: one
window scored alone both ways. Figure: sliding-window time / fully convolutional time
(3DFCN §3.3 reports 13x on a GPU for full-width C3D). CPU-sized widths (0.25; quick 0.125),
stated in the figure.
"""

from __future__ import annotations

import time


def run(quick: bool) -> list[dict]:
    import torch

    from benchmarks.segment3d.fcn_pair import paired_models, sliding_windows

    torch.manual_seed(0)
    width = 0.125 if quick else 0.25
    t_len, h, w = (40, 240, 320)
    c3d, fcn = paired_models(width)
    video = torch.rand(1, 3, t_len, h, w) * 255 - 128
    with torch.no_grad():
        # exactness on a single window
        clip = video[:, :, :16, :112, :112]
        single = (fcn.score_map(clip)[0, :, 0, 0, 0] - c3d(clip)[0]).abs().max().item()
        fcn.score_map(video[:, :, :16])  # warm-up
        t0 = time.perf_counter()
        dense = fcn.score_map(video)[0]  # C x 3 x 5 x 7
        t_fcn = time.perf_counter() - t0
        nt, nh, nw = dense.shape[1:]
        windows = sliding_windows(video, (nt, nh, nw))
        t0 = time.perf_counter()
        slide = torch.cat([c3d(windows[i : i + 8]) for i in range(0, len(windows), 8)])
        t_slide = time.perf_counter() - t0
    slide = slide.T.reshape(dense.shape)  # C x T' x H' x W'
    inner = (slice(None), slice(0, nt - 1), slice(0, nh - 1), slice(0, nw - 1))  # full windows only
    rel = ((dense - slide)[inner].norm() / slide[inner].norm()).item()
    agree = (dense.argmax(0) == slide.argmax(0))[inner[1:]].float().mean().item()
    ratio = t_slide / t_fcn
    return [{
        "name": f"3DFCN-32s one pass vs sliding-window C3D, 40x240x320, width {width}",
        "ratio": ratio, "target": ">= 3 (paper: 13x, full width, GPU)", "ok": ratio >= 3,
        "detail": {"fcn_seconds": round(t_fcn, 3), "sliding_seconds": round(t_slide, 3),
                   "windows": len(windows), "class_map": [nt, nh, nw],
                   "single_window_max_abs_diff": single,
                   "relative_l2_diff_full_windows": rel, "argmax_agreement_full_windows": agree},
    }]
