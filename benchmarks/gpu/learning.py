"""The 3DFCN-8s learning check at scale (issue #22, item 3), inside a wall-clock budget.

    python benchmarks/gpu/learning.py --work DIR --out learning.json [--budget S] [--tiny]

The CPU check (docs/segment3d.md, "Learning check"; experiments/segment3d/learning_check.sh)
trained 3DFCN-8s from scratch with the synthetic recipe at width 1/16 for 640 steps of 2
clips and reached test foreground IoU 0.321 raw, 0.411 through crf-refine; its diagnosis
was "3DFCN-8s has the capacity; it lacks samples". This driver runs the same pipeline on
the same data (the default seed-0 `vidseg synth` set), with many more samples and a wider
network, and records the same two figures:

1. `vidseg synth`, `vidseg extract-frames` of the 16 test videos.
2. Width and steps: the CPU time to prepare a batch of the recipe's clips, and one
   training step (forward, backward, Adam) of the recipe's batch shape (clips of 8 x 96 x
   96 labelled pixels in 8 x 64 x 64 of mirrored context: 24 x 224 x 224 inputs) for each
   width from the narrowest up, are timed in this process; the widest whose steps still
   fit the time left for training `--min-steps` times (or two thirds as many as the
   narrowest's, when clip preparation on the CPU bounds every width) wins.
3. `vidseg train segment --model 3dfcn-8s --recipe synthetic` with that width, a larger
   batch, the recipe's 20 epochs (so its per-epoch learning-rate decay is the recipe's)
   made longer by `--clips-per-video`, and `--max-steps`. Should it still run past its
   budget, it is stopped (SIGTERM) and the last completed epoch's last.ckpt is scored.
4. `vidseg segment-3d` (last.ckpt) -> `vidseg evaluate`, and through `vidseg crf-refine`
   (3DFCN §3.6, its §4.2 defaults) -> `vidseg evaluate`, on the 16 test videos.

Every vidseg command runs as `python -m vidseg_cli.cli.main` of the Python running this
driver, so it uses the vidseg that Python imports (run.sh installs it). `--tiny` is the
CPU dry run: a 2+1-video set, width 1/16, 2 steps.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

CPU_RUN = {"foreground_iou": 0.321, "foreground_iou_crf_refine": 0.411, "width": 0.0625,
           "steps": 640, "batch_size": 2, "clips_seen": 1280, "record": "experiments/segment3d/learning.json"}
TRAIN_VIDEOS = 32  # the default synth set's synth_train_* videos
EPOCHS = 20  # the synthetic recipe's
WIDTHS = (1.0, 0.5, 0.25, 0.125, 0.0625)
CLIP_INPUT = (24, 224, 224)  # 8 x 96 x 96 labelled + 2 x (8, 64, 64) context (train/segment.py)


def vidseg(*args, log: Path, timeout: float | None = None) -> float:
    """Run `vidseg ARGS`; seconds taken. Raises CalledProcessError with its log's tail."""
    t0 = time.monotonic()
    with open(log, "a") as f:
        f.write(f"$ vidseg {' '.join(map(str, args))}\n")
        f.flush()
        subprocess.run([sys.executable, "-m", "vidseg_cli.cli.main", *map(str, args)], stdout=f,
                       stderr=subprocess.STDOUT, check=True, timeout=timeout)
    return round(time.monotonic() - t0, 2)


def step_seconds(width: float, batch: int, device, steps: int) -> float:
    """Median seconds of one training step of 3DFCN-8s at `width` on the recipe's inputs."""
    import statistics

    import torch

    from vidseg_cli.models import MODELS

    model = MODELS.build("3dfcn-8s", num_classes=2, width=width).to(device).train()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    x = torch.randn(batch, 3, *CLIP_INPUT, device=device)
    y = torch.randint(0, 2, (batch, *CLIP_INPUT), device=device)
    times = []
    for i in range(steps + 2):
        if device.type == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        loss = torch.nn.functional.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        if device.type == "cuda":
            torch.cuda.synchronize()
        if i >= 2:  # the first two: cuDNN's algorithm search, allocations
            times.append(time.perf_counter() - t0)
    del model, opt, x, y
    if device.type == "cuda":
        torch.cuda.empty_cache()
    return statistics.median(times)


def data_seconds(synth: Path, batch: int) -> float:
    """Median seconds to prepare one batch of the recipe's training clips on the CPU, as
    train/segment.py prepares them (in the training process, between GPU steps), videos
    already decoded (training decodes each once and keeps it)."""
    import statistics

    from vidseg_cli.datasets.segment_data import (
        ClipSpec,
        SegmentClips,
        collate,
        open_segment_dataset,
    )
    from vidseg_cli.models import MODELS
    from vidseg_cli.train.segment import get_recipe

    r = get_recipe("3dfcn-8s", "synthetic")
    ds = open_segment_dataset(synth, target=r.target)
    spec = ClipSpec(clip_len=r.clip_len, crop=r.crop, preprocess=r.preprocess("3dfcn-8s"),
                    scale_jitter=tuple(r.scale_jitter), flip=r.flip,
                    min_input=tuple(MODELS.build("3dfcn-8s", width=0.0625).min_input), action_bias=r.action_bias)
    clips = SegmentClips(ds.train, spec, seed=0, clips_per_video=1)
    clips.set_epoch(0)
    items = [[(k * batch + j) % len(clips) for j in range(batch)] for k in range(3)]
    for group in items:  # decodes the videos
        collate([clips[i] for i in group])
    times = []
    for group in items:
        t0 = time.perf_counter()
        collate([clips[i] for i in group])
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def choose(end: float, batch: int, device, min_steps: int, tiny: bool, data_s: float) -> dict:
    """The widest width that still trains enough steps in the time left until `end`
    (time.monotonic()): a step costs the GPU step plus `data_s` of clip preparation (serial,
    in the training process), so when preparation dominates a wider network is nearly
    free. Widths are timed from the narrowest up; a width qualifies while its steps reach
    `min_steps`, or two thirds of the narrowest width's when even that one falls short."""
    if tiny:
        return {"width": 0.0625, "steps": 2, "step_seconds": None, "calibration": {}}
    cal, best, floor = {}, None, None
    left = end - time.monotonic()  # widths compared on the same time; steps fixed at the end
    for w in sorted(WIDTHS):
        try:
            s = step_seconds(w, batch, device, 3)
        except RuntimeError as e:  # out of memory at this width
            cal[str(w)] = f"{e.__class__.__name__}: {str(e)[:200]}"
            break
        cal[str(w)] = round(s, 4)
        # Validation (2 videos per epoch), checkpoints and the process start are in neither
        # figure: plan on 1.25x.
        steps = int(left / (1.25 * (s + data_s)))
        if floor is None:
            floor = min(min_steps, int(steps * 2 / 3))
        if steps < floor and best is not None:
            break
        best = {"width": w, "step_seconds": round(s, 4), "data_seconds_per_step": round(data_s, 4)}
    if best is None:
        raise RuntimeError(f"no width trains here: {cal}")
    steps = int((end - time.monotonic()) / (1.25 * (best["step_seconds"] + data_s)))
    return {**best, "steps": max(steps, 1), "calibration": cal}


def train(args, plan: dict, run: Path, synth: Path, log: Path, deadline: float) -> dict:
    """`vidseg train segment`, stopped at `deadline` if it is still running then."""
    batch = plan["batch_size"]
    cpv = max(1, -(-plan["steps"] * batch // (TRAIN_VIDEOS * EPOCHS)))  # epochs stay the recipe's
    cmd = ["train", "segment", "--model", "3dfcn-8s", "--data", synth, "-o", run, "--recipe", "synthetic",
           "--width", plan["width"], "--batch-size", batch, "--clips-per-video", cpv,
           "--epochs", EPOCHS, "--max-steps", plan["steps"], "--val-videos", 1 if args.tiny else 2,
           "--device", args.device, "-q"]
    t0 = time.monotonic()
    with open(log, "a") as f:
        f.write(f"$ vidseg {' '.join(map(str, cmd))}\n")
        f.flush()
        p = subprocess.Popen([sys.executable, "-m", "vidseg_cli.cli.main", *map(str, cmd)], stdout=f,
                             stderr=subprocess.STDOUT)
        stopped = False
        try:
            p.wait(timeout=max(1.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            stopped = True
            p.send_signal(signal.SIGTERM)  # vidseg removes the checkpoint in progress, keeps the last
            p.wait(timeout=60)
    if p.returncode != 0 and not stopped:
        raise subprocess.CalledProcessError(p.returncode, cmd)
    log_rows = [json.loads(x) for x in (run / "log.jsonl").read_text().splitlines()] if (run / "log.jsonl").exists() else []
    return {"command": "vidseg " + " ".join(map(str, cmd)), "seconds": round(time.monotonic() - t0, 2),
            "stopped_at_budget": stopped, "clips_per_video": cpv, "epochs_done": len(log_rows),
            "steps_done": log_rows[-1]["step"] if log_rows else 0,
            "clips_seen": (log_rows[-1]["step"] if log_rows else 0) * batch,
            "loss_per_epoch": [r.get("loss") for r in log_rows],
            "val_per_epoch": [r.get("val", {}).get("foreground_iou") for r in log_rows]}


def fg_iou(path: Path) -> float | None:
    e = json.loads(path.read_text())
    e = e.get("results", e) if isinstance(e, dict) else e
    return e.get("foreground_iou") if isinstance(e, dict) else None


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--work", required=True, help="work folder (synth set, runs, scores)")
    ap.add_argument("--out", required=True, help="JSON record to write")
    ap.add_argument("--budget", type=float, default=140.0, help="seconds for the whole check")
    ap.add_argument("--batch-size", type=int, default=16, help="clips per step (the recipe: 2)")
    ap.add_argument("--min-steps", type=int, default=1500, help="fewest steps a width must fit")
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--jobs", type=int, default=min(16, os.cpu_count() or 1))
    ap.add_argument("--tiny", action="store_true", help="CPU dry run: 2 training videos, 1 test video, 2 steps")
    args = ap.parse_args(argv)
    t0 = time.monotonic()
    deadline = t0 + args.budget
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    log = work / "learning.log"
    rec: dict = {"tiny": args.tiny, "cpu_run": CPU_RUN, "budget_s": args.budget, "times": {}}
    try:
        import torch

        device = torch.device(args.device)
        synth, frames = work / "synth", work / "frames"
        small = ["--train", "2", "--test", "1", "--duration", "6"] if args.tiny else []
        rec["times"]["synth"] = vidseg("synth", "-o", synth, "-q", "-j", args.jobs, *small, log=log)
        tests = sorted((synth / "videos").glob("synth_test_*.mp4"))
        rec["times"]["extract_frames"] = vidseg("extract-frames", *tests, "-o", frames, "-q", "-j", args.jobs,
                                                log=log)
        # What is left after training: segment-3d, crf-refine and two evaluates (~40 s measured
        # as process starts plus work on 16 small videos), with a margin.
        reserve = 10.0 if args.tiny else 45.0
        s = time.monotonic()
        batch = 2 if args.tiny else args.batch_size
        data_s = data_seconds(synth, batch)
        plan = choose(deadline - reserve - 15.0, batch, device, args.min_steps, args.tiny, data_s)  # 15 s: start
        plan["batch_size"] = batch
        rec["times"]["calibration"] = round(time.monotonic() - s, 2)
        rec["plan"] = plan
        run = work / "run"
        rec["train"] = train(args, plan, run, synth, log, deadline - reserve)
        rec["times"]["train"] = rec["train"]["seconds"]
        scores, crf = work / "scores", work / "crf"
        ckpt = run / "last.ckpt"
        rec["times"]["segment_3d"] = vidseg("segment-3d", *sorted(frames.glob("*.frames.h5")), "--model", "3dfcn-8s",
                                            "--weights", ckpt, "-o", scores, "--device", args.device, "-q",
                                            log=log)
        rec["times"]["evaluate"] = vidseg("evaluate", scores, "--gt", synth / "labels", "--json",
                                          work / "eval.json", log=log)
        rec["times"]["crf_refine"] = vidseg("crf-refine", scores, "--frames", frames, "-o", crf, "-j",
                                            args.jobs, "-q", log=log)
        rec["times"]["evaluate_crf"] = vidseg("evaluate", crf, "--gt", synth / "labels", "--json",
                                              work / "eval_crf.json", log=log)
        rec["test"] = {"foreground_iou": fg_iou(work / "eval.json"),
                       "foreground_iou_crf_refine": fg_iou(work / "eval_crf.json"), "videos": len(tests)}
        rec["against_cpu_run"] = {
            k: round(rec["test"][k] - CPU_RUN[k], 4) if rec["test"][k] is not None else None
            for k in ("foreground_iou", "foreground_iou_crf_refine")}
        rec["samples_vs_cpu_run"] = round(rec["train"]["clips_seen"] / CPU_RUN["clips_seen"], 2)
    except Exception as e:  # recorded with the log's tail; run.sh carries on
        rec["error"] = f"{e.__class__.__name__}: {e}"
        rec["log_tail"] = log.read_text()[-3000:] if log.exists() else ""
    rec["seconds"] = round(time.monotonic() - t0, 2)
    Path(args.out).write_text(json.dumps(rec, indent=1) + "\n")
    print(json.dumps({k: rec.get(k) for k in ("plan", "test", "against_cpu_run", "error", "seconds")}), flush=True)
    return 1 if "error" in rec else 0


if __name__ == "__main__":
    sys.exit(main())
