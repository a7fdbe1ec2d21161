"""The GPU figures of issue #22, measured in one process and written as JSON.

    python benchmarks/gpu/figures.py --out figures.json [--budget S] [--tiny]

Every timing is the median of several runs after warm-up, taken with CUDA events around
the region (host clock after a synchronize on the CPU), and every figure records the peak
GPU memory allocated during its runs (torch.cuda.max_memory_allocated, reset before).
Figures, in this order (the most wanted first, so a budget cut drops the least wanted):

- 3DFCN-8s and 3DFCN-32s, full width, one forward (class map + DeConv) of a 40x240x320
  video, float32 (cuDNN's default TF32 convolutions, recorded) and bf16 autocast, with the
  FLOPs counted once (torch.utils.flop_counter) and the rate they imply. 3DFCN §3.3
  reports 910 ms for 32s on a Titan X; the issue's goal is < 40 ms for 8s on an H200.
- Sep3D, full width, crop_size 384, a batch of 8-frame 384x384 clips: clips per second.
- 3DFCN-32s's fully convolutional pass against C3D on every window it stands for (3DFCN
  §3.3: 13x on a GPU), full width, float32, as benchmarks/segment3d/bench_fcn_vs_sliding.py
  does at CPU widths (same weight copy, same agreement measures).
- extract-features' ResNet-50 (forward_features, channels-last) on 224x224 frames: frames
  per second. The registry has no I3D; that is recorded, not measured.
- hmm-smooth's torch recursions (stages/hmm/recursions.py) on device-resident scores
  (T=40, C=22, 240x320 float32, as benchmarks/post/bench_hmm_smooth.py) against their
  memory-bandwidth bound: each score read once and each belief written once, 2*T*C*H*W*4
  bytes, at the device-to-device copy bandwidth measured in the same run; and `smooth()`
  end to end from a host array (transfers and the probability check included).

`--tiny` runs every figure at CPU sizes and widths (the dry run of benchmarks/gpu/run.sh);
its numbers mean nothing but the JSON has the same shape.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
import traceback
from pathlib import Path

import numpy as np
import torch

# Run as a script (benchmarks/gpu/run.sh): the repository root holds `benchmarks`.
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))


class Bench:
    """Timing and memory on one device."""

    def __init__(self, device: torch.device, warmup: int, reps: int):
        self.device, self.warmup, self.reps = device, warmup, reps
        self.cuda = device.type == "cuda"

    def sync(self) -> None:
        if self.cuda:
            torch.cuda.synchronize(self.device)

    def time_ms(self, fn) -> list[float]:
        """Milliseconds of each of `reps` calls of fn, after `warmup` calls."""
        for _ in range(self.warmup):
            fn()
        self.sync()
        out = []
        for _ in range(self.reps):
            if self.cuda:
                a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
                a.record()
                fn()
                b.record()
                b.synchronize()
                out.append(a.elapsed_time(b))
            else:
                t0 = time.perf_counter()
                fn()
                out.append((time.perf_counter() - t0) * 1e3)
        return out

    def reset_peak(self) -> None:
        if self.cuda:
            self.sync()
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats(self.device)

    def peak_mib(self) -> float | None:
        return round(torch.cuda.max_memory_allocated(self.device) / 2**20, 1) if self.cuda else None

    def run(self, fn, amp: bool) -> dict:
        """fn timed under no_grad (and bf16 autocast when `amp`): median and every run, peak memory."""
        def call():
            with torch.no_grad(), torch.autocast(self.device.type, torch.bfloat16, enabled=amp):
                fn()

        self.reset_peak()
        ms = self.time_ms(call)
        return {"median_ms": round(statistics.median(ms), 4), "runs_ms": [round(x, 4) for x in ms],
                "peak_gpu_mib": self.peak_mib()}


def flops(fn) -> int:
    """Floating-point operations of one call (torch's counter: convolutions, matmuls)."""
    from torch.utils.flop_counter import FlopCounterMode

    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        fn()
    return int(counter.get_total_flops())


def precisions(b: Bench, fn, n_flop: int | None = None, per_call: float | None = None,
               unit: str | None = None) -> dict:
    """float32 and bf16-autocast runs of fn, with the rate the FLOP count implies and
    `per_call` items per call as `unit` per second."""
    out = {}
    for name, amp in (("float32", False), ("bf16_autocast", True)):
        r = b.run(fn, amp)
        s = r["median_ms"] / 1e3
        if n_flop:
            r["tflop_per_s"] = round(n_flop / s / 1e12, 2)
        if per_call:
            r[unit] = round(per_call / s, 2)
        out[name] = r
    return out


# -- the figures ---------------------------------------------------------------------------
def fig_fcn(b: Bench, name: str, tiny: bool) -> dict:
    from vidseg_cli.models import MODELS

    width = 1 / 16 if tiny else 1.0
    classes = 2 if tiny else 22  # tiny: a 22-class DeConv dominates a CPU pass
    model = MODELS.build(name, num_classes=classes, width=width).to(b.device).eval()
    thw = tuple(model.min_input) if tiny else (40, 240, 320)
    x = torch.randn(1, 3, *thw, device=b.device)
    n = flops(lambda: model(x))
    out = {"model": name, "width": width, "input": list(thw), "num_classes": classes,
           "class_map": list(model.map_size(thw)), "gflop": round(n / 1e9, 2),
           **precisions(b, lambda: model(x), n)}
    out["paper"] = "3DFCN §3.3: 910 ms for 3DFCN-32s on a Titan X" if name == "3dfcn-32s" else \
        "goal (issue #22): < 40 ms for 3DFCN-8s on an H200"
    return out


def fig_sep3d(b: Bench, tiny: bool) -> dict:
    from vidseg_cli.models import MODELS

    width, side, batch = (1 / 16, 32, 2) if tiny else (1.0, 384, 8)
    model = MODELS.build("sep3d", num_classes=2, width=width, crop_size=side).to(b.device).eval()
    x = torch.randn(batch, 3, 8, side, side, device=b.device)
    n = flops(lambda: model(x))
    return {"model": "sep3d", "width": width, "clip": [8, side, side], "batch": batch,
            "gflop": round(n / 1e9, 2), **precisions(b, lambda: model(x), n, batch, "clips_per_s")}


def fig_sliding(b: Bench, tiny: bool) -> dict:
    """benchmarks/segment3d/bench_fcn_vs_sliding.py's comparison on the device, float32."""
    from benchmarks.segment3d.fcn_pair import paired_models, sliding_windows

    width, (t_len, h, w) = (1 / 16, (16, 112, 112)) if tiny else (1.0, (40, 240, 320))
    c3d, fcn = paired_models(width)
    c3d, fcn = c3d.to(b.device), fcn.to(b.device)
    video = torch.rand(1, 3, t_len, h, w, device=b.device) * 255 - 128
    with torch.no_grad():
        nt, nh, nw = fcn.score_map(video).shape[2:]
        windows = sliding_windows(video, (nt, nh, nw))
        dense = fcn.score_map(video)[0]
        slide = c3d(windows).T.reshape(dense.shape)
    inner = (slice(None), slice(0, nt - 1), slice(0, nh - 1), slice(0, nw - 1))
    rel = ((dense - slide)[inner].norm() / slide[inner].norm()).item() if nt > 1 and nh > 1 and nw > 1 else None
    fc = b.run(lambda: fcn.score_map(video), False)
    sl = b.run(lambda: c3d(windows), False)  # every window in one batch: the fastest C3D can do
    return {"width": width, "video": [t_len, h, w], "windows": len(windows), "class_map": [nt, nh, nw],
            "fcn": fc, "sliding": sl, "ratio_sliding_over_fcn": round(sl["median_ms"] / fc["median_ms"], 2),
            "relative_l2_diff_full_windows": rel, "paper": "3DFCN §3.3: 13x on a GPU, full width"}


def fig_resnet50(b: Bench, tiny: bool) -> dict:
    from vidseg_cli.models import MODELS

    width, side, batch = (1 / 16, 64, 2) if tiny else (1.0, 224, 128)
    model = MODELS.build("resnet50", width=width).to(b.device).eval()
    model = model.to(memory_format=torch.channels_last)
    x = torch.randn(batch, 3, side, side, device=b.device).contiguous(memory_format=torch.channels_last)
    n = flops(lambda: model.forward_features(x))
    out = {"model": "resnet50", "width": width, "frame": [side, side], "batch": batch,
           "gflop": round(n / 1e9, 2),
           **precisions(b, lambda: model.forward_features(x), n, batch, "frames_per_s")}
    from vidseg_cli.models import MODELS as reg

    out["i3d"] = "measured" if "i3d" in reg else "no I3D in the model registry"
    return out


def copy_bandwidth(b: Bench, nbytes: int) -> float:
    """Device memory bandwidth of a large copy, bytes read + written per second."""
    src = torch.empty(nbytes // 4, dtype=torch.float32, device=b.device).uniform_()
    dst = torch.empty_like(src)
    ms = statistics.median(b.time_ms(lambda: dst.copy_(src)))
    return 2 * nbytes / (ms / 1e3)


def fig_hmm(b: Bench, tiny: bool) -> dict:
    from vidseg_cli.stages.hmm.recursions import Recursions, _forward_backward, _Workspace
    from vidseg_cli.stages.hmm.smooth import smooth

    t_len, c, h, w = (6, 3, 16, 16) if tiny else (40, 22, 240, 320)
    n = h * w
    rng = np.random.default_rng(0)
    trans = rng.random((c, c)) + np.eye(c) * c * 4  # sticky, dense: the torch path's mm is dense anyway
    trans /= trans.sum(1, keepdims=True)
    prior = np.full(c, 1.0 / c)
    g = torch.Generator(device=b.device).manual_seed(0)
    q = torch.softmax(torch.randn(t_len, c, n, device=b.device, generator=g) * 2, dim=1).contiguous()
    rec = Recursions(prior, trans, t_len, b.device, torch.float32, False, 1e-12, None)
    ws = _Workspace()
    bound_bytes = 2 * t_len * c * n * 4
    bw = copy_bandwidth(b, 64 * 2**20 if tiny else 2 * 2**30)
    b.reset_peak()
    ms = b.time_ms(lambda: _forward_backward(q, rec.fwd, rec.bwd, rec.start, rec.guard, ws))
    dev_ms = statistics.median(ms)
    bound_ms = bound_bytes / bw * 1e3
    resident = {"median_ms": round(dev_ms, 4), "runs_ms": [round(x, 4) for x in ms],
                "peak_gpu_mib": b.peak_mib(), "bound_ms": round(bound_ms, 4),
                "fraction_of_bound": round(bound_ms / dev_ms, 4),
                "kernel_launches_per_frame": "about 9 (forward 5, backward 4): launch-bound below ~0.1 ms a frame"}
    host = q.cpu().numpy().reshape(t_len, c, h, w)
    out = np.empty_like(host)
    b.reset_peak()
    e2e = b.time_ms(lambda: smooth(host, prior, trans, out=out, device=b.device, backend="torch",
                                   max_memory=None))
    ref = smooth(host, prior, trans, device="cpu")  # the CPU numba kernel
    return {"scores": [t_len, c, h, w], "copy_bandwidth_gb_s": round(bw / 1e9, 1),
            "bound_bytes": bound_bytes, "device_resident": resident,
            "smooth_from_host": {"median_ms": round(statistics.median(e2e), 4),
                                 "runs_ms": [round(x, 4) for x in e2e], "peak_gpu_mib": b.peak_mib()},
            "max_abs_diff_vs_cpu_numba": float(np.abs(out - ref).max())}


def device_record(device: torch.device) -> dict:
    rec = {"device": str(device), "torch": torch.__version__, "cuda": torch.version.cuda,
           "cudnn": torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None,
           "cudnn_allow_tf32": torch.backends.cudnn.allow_tf32,
           "matmul_allow_tf32": torch.backends.cuda.matmul.allow_tf32}
    if device.type == "cuda":
        p = torch.cuda.get_device_properties(device)
        rec.update(name=p.name, capability=f"{p.major}.{p.minor}", multiprocessors=p.multi_processor_count,
                   memory_gib=round(p.total_memory / 2**30, 1))
    else:
        import platform

        rec.update(name=platform.processor() or platform.machine())
    return rec


FIGURES = [
    ("3dfcn-8s", lambda b, tiny: fig_fcn(b, "3dfcn-8s", tiny)),
    ("3dfcn-32s", lambda b, tiny: fig_fcn(b, "3dfcn-32s", tiny)),
    ("sep3d", fig_sep3d),
    ("fcn_vs_sliding", fig_sliding),
    ("resnet50", fig_resnet50),
    ("hmm_smooth", fig_hmm),
]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True, help="JSON file to write")
    ap.add_argument("--budget", type=float, default=110.0, help="seconds; figures not started by then are skipped")
    ap.add_argument("--tiny", action="store_true", help="CPU sizes (dry run)")
    ap.add_argument("--device", default="auto", help="auto, cpu or cuda")
    args = ap.parse_args(argv)
    t0 = time.monotonic()
    dev = torch.device("cuda" if args.device == "auto" and torch.cuda.is_available() else
                       ("cpu" if args.device == "auto" else args.device))
    torch.manual_seed(0)
    if dev.type == "cpu":
        torch.set_num_threads(max(1, min(4, torch.get_num_threads())))
    b = Bench(dev, *((0, 1) if args.tiny else (3, 10)))
    record = {"tiny": args.tiny, "machine": device_record(dev), "figures": {}, "errors": {}, "skipped": []}
    for name, fn in FIGURES:
        if time.monotonic() - t0 > args.budget:
            record["skipped"].append(name)
            continue
        s = time.monotonic()
        try:
            record["figures"][name] = fn(b, args.tiny)
            record["figures"][name]["seconds"] = round(time.monotonic() - s, 2)
        except Exception as e:  # one failed figure is recorded; the others still run
            record["errors"][name] = f"{e.__class__.__name__}: {e}"
            traceback.print_exc()
        print(f"{name}: {json.dumps(record['figures'].get(name, record['errors'].get(name)))[:400]}",
              flush=True)
        if dev.type == "cuda":
            torch.cuda.empty_cache()
    record["seconds"] = round(time.monotonic() - t0, 2)
    Path(args.out).write_text(json.dumps(record, indent=1, default=float) + "\n")
    return 1 if record["errors"] else 0


if __name__ == "__main__":
    sys.exit(main())
