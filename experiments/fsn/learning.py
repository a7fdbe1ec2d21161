"""The FSN learning checks' record (docs/fsn.md "Learning check"): evaluates localize
outputs with the metrics package and compares WFSN with random segments. Each subcommand
replaces its own part of the record and keeps the others:

    python -m experiments.fsn.learning flow ROOT [--runs RUNS.json]   # "results", "runs", "logs"
    python -m experiments.fsn.learning rgb WORK...                    # "rgb"
    python -m experiments.fsn.learning wfsn WORK                      # "wfsn"
        [--out experiments/fsn/learning.json]

flow: ROOT holds the flow check's run folders (synth/, loc_flow/, loc_rgb/, loc_fused/ and
the train run folders with their log.jsonl). rgb: each WORK is an experiments/fsn/rgb_check.sh
folder, recorded under its set's appearance ("class", "random"). wfsn: WORK is
experiments/fsn/wfsn_check.sh's folder, one sub-folder per synthetic set (default/,
one_class/), each with synth/, wfsn_seed<S>/ and loc_<variant>_seed<S>/.

WFSN is compared with two random baselines, each with as many detections per test video as
the WFSN run made there, 10 seeds each: "prior" (random class and score, a length uniform
in the synthetic set's action lengths, 24-50 frames, a prior the models do not get, placed
uniformly) and "shuffle" (WFSN's own detections, class, length and score, moved to random
positions: what is left of WFSN when where it puts its segments is taken away).
"""

from __future__ import annotations

import argparse
import json
import re
import tempfile
from pathlib import Path

import numpy as np

from experiments.records import portable

WFSN_TIOU = [0.1, 0.3, 0.5]  # FSN Table 3's range (weakly supervised papers report 0.1-0.5)


def _eval(files, gt, tiou=None) -> dict:
    from vidseg_cli.datasets.predictions import collect_frame_scores, read_predictions
    from vidseg_cli.metrics.temporal_report import evaluate_detections, evaluate_frames

    files = [str(f) for f in files]
    if files[0].endswith(".frame_scores.h5"):
        r = evaluate_frames(collect_frame_scores(files), gt)
        return {"frame_mAP": r["mAP"], "AP": r["AP"]}
    r = evaluate_detections(read_predictions("detections", files), gt, "activitynet", thresholds=tiou)
    return {"mAP": r["mAP"], "average_mAP": r["average_mAP"]}


def _loc_result(d: Path, gt, tiou) -> dict:
    return {"frames": _eval(sorted(d.glob("*.frame_scores.h5")), gt),
            "detections": _eval(sorted(d.glob("*.detections.h5")), gt, tiou),
            "detections_per_video": float(np.mean([len(_read(p)["scores"]) for p in d.glob("*.detections.h5")]))}


def _read(path):
    from vidseg_cli import store

    return store.read_detections(path)


def random_segments(det_dir: Path, gt, tiou, seeds: int = 10, mode: str = "prior") -> dict:
    """mode "prior": random class, length uniform in 24-50 frames (the set's action lengths),
    random position and score; mode "shuffle": the method's own detections (class, length,
    score) moved to uniformly random positions, which isolates where it puts them.
    Returns {tiou: {"mean", "std"}} over the seeds."""
    from vidseg_cli import store

    recs = [_read(p) for p in sorted(det_dir.glob("*.detections.h5"))]
    res = []
    with tempfile.TemporaryDirectory() as d:
        for seed in range(seeds):
            rng = np.random.default_rng(seed)
            files = []
            for r in recs:
                n, T = len(r["scores"]), r.num_frames
                if mode == "prior":
                    length = rng.integers(24, 51, n)
                    lab, score = rng.integers(1, len(r.class_names), n), rng.random(n)
                else:
                    length = (r["segments"][:, 1] - r["segments"][:, 0]).astype(np.int64)
                    lab, score = r["labels"], r["scores"]
                start = rng.integers(0, np.maximum(T - length, 0) + 1)
                seg = np.stack([start, np.minimum(start + length, T)], 1)
                f = Path(d) / f"{seed}_{r.video_id}.detections.h5"
                store.write_detections(f, seg, lab, score, video_id=r.video_id, num_frames=T,
                                       fps=r.fps, class_names=r.class_names)
                files.append(f)
            res.append(_eval(files, gt, tiou)["mAP"])
    return {k: {"mean": float(np.mean([r[k] for r in res])), "std": float(np.std([r[k] for r in res]))}
            for k in res[0]}


def _logs(root: Path, names) -> dict:
    out = {}
    for run in names:
        log = root / run / "log.jsonl"
        if log.exists():
            out[run] = [json.loads(x) for x in log.read_text().splitlines()]
    return out


def _times(work: Path) -> dict:
    """A check script's times.json: per step wall and CPU seconds and load averages."""
    p = work / "times.json"
    return json.loads(p.read_text()) if p.exists() else {}


def flow(root: Path, runs: Path | None) -> dict:
    """The flow check on the default set (scripts/sample_weights/fsn.sh and docs/fsn.md)."""
    from vidseg_cli.datasets.temporal_gt import load_temporal_gt

    gt = load_temporal_gt(root / "synth", "testing")
    out: dict = {"ground_truth": "vidseg synth (seed 0, defaults), subset testing (16 videos)",
                 "protocol": "activitynet", "results": {}}
    if runs and runs.exists():
        out["runs"] = json.loads(runs.read_text())
    for name in ("loc_flow", "loc_rgb", "loc_fused"):
        if (root / name).is_dir():
            out["results"][name] = _loc_result(root / name, gt, [0.3, 0.5, 0.7])
    out["logs"] = _logs(root, ("bb_flow", "bb_rgb", "fsn_flow", "fsn_rgb"))
    return out


def rgb(works: list[Path]) -> dict:
    """experiments/fsn/rgb_check.sh's runs: the RGB stream, per synthetic set appearance."""
    from vidseg_cli.datasets.temporal_gt import load_temporal_gt

    out: dict = {"protocol": "activitynet", "script": "experiments/fsn/rgb_check.sh", "sets": {}}
    for work in works:
        gt = load_temporal_gt(work / "synth", "testing")
        synth = json.loads((work / "synth" / "synth.json").read_text())
        logs = _logs(work, ("bb_rgb", "fsn_rgb"))
        out["sets"][f"appearance {synth['config']['appearance']}"] = {
            "ground_truth": f"{synth['command']}, subset testing (16 videos)",
            "results": {"loc_rgb": _loc_result(work / "loc_rgb", gt, [0.3, 0.5, 0.7])},
            "settings": {run: json.loads((work / run / "config.json").read_text())["settings"]
                         for run in ("bb_rgb", "fsn_rgb")},
            "train_seconds (sum of epochs)": {k: round(sum(e["seconds"] for e in v), 1) for k, v in logs.items()},
            "times": _times(work),
            "logs": logs,
        }
    return out


def wfsn(work: Path) -> dict:
    """experiments/fsn/wfsn_check.sh's runs: WFSN (video labels) against random segments,
    per synthetic set, per scoring variant, over the WFSN training seeds."""
    from vidseg_cli.datasets.temporal_gt import load_temporal_gt

    out: dict = {"protocol": "activitynet", "tiou": WFSN_TIOU, "script": "experiments/fsn/wfsn_check.sh",
                 "times": _times(work), "sets": {}}
    for setdir in sorted(p for p in work.iterdir() if (p / "synth").is_dir()):
        gt = load_temporal_gt(setdir / "synth", "testing")
        params = json.loads((setdir / "synth" / "synth.json").read_text())
        rec: dict = {"synth": params["command"], "variants": {}, "logs": {}}
        runs: dict[str, dict[int, dict]] = {}
        for d in sorted(setdir.glob("loc_*_seed*")):
            variant, seed = re.fullmatch(r"loc_(.+)_seed(\d+)", d.name).groups()
            r = _loc_result(d, gt, WFSN_TIOU)
            r["random_segments_prior"] = random_segments(d, gt, WFSN_TIOU, mode="prior")
            r["random_segments_shuffle"] = random_segments(d, gt, WFSN_TIOU, mode="shuffle")
            runs.setdefault(variant, {})[int(seed)] = r
        for variant, by_seed in runs.items():
            rec["variants"][variant] = {"per_seed": by_seed, "summary": _summary(list(by_seed.values()))}
        rec["logs"] = _logs(setdir, sorted(p.name for p in setdir.glob("wfsn_seed*")))
        out["sets"][setdir.name] = rec
    return out


def _summary(results: list[dict]) -> dict:
    """mean ± std over WFSN training seeds of WFSN's mAP and of the baselines' seed means."""
    def ms(xs):
        return {"mean": float(np.mean(xs)), "std": float(np.std(xs))}

    s: dict = {"seeds": len(results), "frame_mAP": ms([r["frames"]["frame_mAP"] for r in results])}
    for t in map(str, WFSN_TIOU):
        s[t] = {"wfsn": ms([r["detections"]["mAP"][t] for r in results]),
                "prior": ms([r["random_segments_prior"][t]["mean"] for r in results]),
                "shuffle": ms([r["random_segments_shuffle"][t]["mean"] for r in results])}
    return s


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("what", choices=("flow", "rgb", "wfsn"))
    ap.add_argument("root", type=Path, nargs="+", help="flow, wfsn: one folder; rgb: one or more")
    ap.add_argument("--out", type=Path, default=Path("experiments/fsn/learning.json"))
    ap.add_argument("--runs", type=Path, default=None, help="flow: JSON with the runs' commands, times and loads")
    a = ap.parse_args(argv)
    record = json.loads(a.out.read_text()) if a.out.exists() else {}
    if a.what != "rgb" and len(a.root) != 1:
        ap.error(f"{a.what} takes one folder")
    if a.what == "flow":
        part = portable(flow(a.root[0], a.runs), a.root[0])
        record.update(part)
        shown = part["results"]
    elif a.what == "rgb":
        part = rgb(a.root)
        for r in a.root:  # one OUT per set: each is written OUT
            part = portable(part, r)
        record["rgb"] = part
        shown = {k: v["results"] for k, v in part["sets"].items()}
    else:
        record["wfsn"] = part = portable(wfsn(a.root[0]), a.root[0])
        shown = {k: {v: x["summary"] for v, x in s["variants"].items()} for k, s in part["sets"].items()}
    a.out.write_text(json.dumps(record, indent=2) + "\n")
    print(json.dumps(shown, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
