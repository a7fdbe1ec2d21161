"""A C3D and a 3DFCN-32s holding the same weights, and the windows the C3D scores, for
comparing a fully convolutional pass with a sliding window (3DFCN §3.3). Used by
bench_fcn_vs_sliding.py on the CPU and by benchmarks/gpu/figures.py on a device."""

from __future__ import annotations


def paired_models(width: float):
    """(c3d, fcn): a C3D with Caffe rounding and a 3DFCN-32s with its weights (fc6 viewed as
    a C(4096,4,1,1,1) kernel, fc7 1x1x1, fc8 -> score, as `load_public_weights` maps the
    C3D port), both in eval mode."""
    from vidseg_cli.models import MODELS

    c3d = MODELS.build("c3d", num_classes=5, width=width, pooling="caffe").eval()
    fcn = MODELS.build("3dfcn-32s", num_classes=5, width=width).eval()
    sd = {k: v for k, v in c3d.state_dict().items() if not k.startswith(("fc6", "fc8"))}
    sd["fc6.weight"] = c3d.fc6.weight.reshape(fcn.fc6.weight.shape)
    sd["fc6.bias"] = c3d.fc6.bias
    sd["fc7.weight"] = c3d.fc7.weight.reshape(fcn.fc7.weight.shape)
    sd["score.weight"] = c3d.fc8.weight.reshape(fcn.score.weight.shape)
    sd["score.bias"] = c3d.fc8.bias
    sd["upscore.weight"] = fcn.upscore.weight
    fcn.load_state_dict(sd)
    return c3d, fcn


def sliding_windows(video, class_map: tuple[int, int, int]):
    """The (N, 3, 16, 112, 112) windows of `video` (1, 3, T, H, W) whose C3D scores are the
    class map's cells (t, y, x), starting at frame 16t, row 32y, column 32x, in that order.
    Caffe rounding lets partial windows through: they are padded with 0."""
    import torch

    nt, nh, nw = class_map
    starts = [(16 * i, 32 * j, 32 * k) for i in range(nt) for j in range(nh) for k in range(nw)]
    windows = torch.zeros(len(starts), 3, 16, 112, 112, device=video.device, dtype=video.dtype)
    for n, (s0, y0, x0) in enumerate(starts):
        part = video[0, :, s0 : s0 + 16, y0 : y0 + 112, x0 : x0 + 112]
        windows[n, :, : part.shape[1], : part.shape[2], : part.shape[3]] = part
    return windows
