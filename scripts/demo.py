"""`make demo`: run every stage on the bundled sample data, as a user would (each step is a
`vidseg` command line), and record what ran and every metric in runs/demo/summary.json.

    python scripts/demo.py [--out runs/demo]

The weights in sample_data/weights are small models trained on synthetic videos by
`make sample-weights` (scripts/sample_weights/*.sh); the synthetic test videos here are
drawn with other seeds than the ones they were trained on.
"""

from __future__ import annotations

import argparse
import json
import shlex
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "sample_data"
W = SAMPLE / "weights"


@dataclass
class Step:
    name: str
    argv: Callable[[], list[str]]  # built when the step runs, so it can glob earlier outputs
    result: str | None = None  # JSON the step writes: a file under out, or "stdout"
    metric: str | None = None  # key under summary["metrics"] for its result
    needs: tuple[Path, ...] = ()  # weights it loads; the step is skipped (noted) without them


def steps(out: Path, codec: tuple[str, ...] = ()) -> list[Step]:
    synth, fr = out / "synth", out / "frames"
    fsn, scnn, seg, post = out / "fsn", out / "scnn", out / "segment", out / "post"
    tube = out / "segment_tube"
    bikes = str(SAMPLE / "videos" / "bikes.mp4")

    def g(folder: Path, pattern: str) -> list[str]:
        return sorted(str(p) for p in folder.glob(pattern))

    test0 = "synth_test_0000"
    return [
        Step("synth: labelled synthetic untrimmed videos, 2 train + 2 test (seed 7)",
             lambda: ["synth", "-o", str(synth), "--train", "2", "--test", "2", "--seed", "7",
                      "--overwrite", "--quiet"]),
        Step("extract-frames: a real video (bikes.mp4, 250 frames at 25 fps)",
             lambda: ["extract-frames", bikes, *codec, "-o", str(fr / "bikes.frames.h5"), "--overwrite",
                      "--json", str(out / "extract_bikes.json")], "extract_bikes.json", "extract_bikes"),
        Step("inspect: the real video's frames file",
             lambda: ["inspect", "--json", str(fr / "bikes.frames.h5")], "stdout"),
        Step("extract-frames: the synthetic test videos, 2 jobs",
             lambda: ["extract-frames", *g(synth / "videos", "synth_test_*.mp4"), *codec, "-o", str(fr), "--jobs", "2",
                      "--overwrite", "-q"]),
        # -- FSN: features -> frame scores and detections -> evaluate
        Step("extract-features: flow-stream CNN features per 5-frame snippet",
             lambda: ["extract-features", *g(fr, "synth_*.frames.h5"), "--weights",
                      str(W / "backbone_synth.ckpt"), "-o", str(fsn), "--overwrite", "-q"],
             needs=(W / "backbone_synth.ckpt",)),
        Step("localize --method fsn: frame scores, grouping, NMS",
             lambda: ["localize", *g(fsn, "*.features.h5"), "--method", "fsn", "--weights",
                      str(W / "fsn_synth.ckpt"), "-o", str(fsn), "--overwrite", "-q"],
             needs=(W / "fsn_synth.ckpt",)),
        Step("evaluate: FSN detections (ActivityNet protocol)",
             lambda: ["evaluate", *g(fsn, "*.detections.h5"), "--gt", str(synth), "--subset", "testing",
                      "--tiou", "0.3,0.5,0.7", "--json", str(out / "eval_fsn.json")],
             "eval_fsn.json", "fsn_detection", needs=(W / "fsn_synth.ckpt",)),
        Step("evaluate: FSN frame-level AP",
             lambda: ["evaluate", *g(fsn, "*.frame_scores.h5"), "--gt", str(synth), "--subset", "testing",
                      "--json", str(out / "eval_fsn_frames.json")],
             "eval_fsn_frames.json", "fsn_frame_ap", needs=(W / "fsn_synth.ckpt",)),
        # -- HMM on frame scores: fit on the temporal ground truth, smooth, evaluate
        Step("hmm-fit: transitions counted from the synthetic temporal ground truth",
             lambda: ["hmm-fit", str(synth), "--subset", "training", "-o", str(post / "hmm_temporal.h5"),
                      "--overwrite", "-q"]),
        Step("hmm-smooth: the FSN frame scores",
             lambda: ["hmm-smooth", *g(fsn, "*.frame_scores.h5"), "--hmm", str(post / "hmm_temporal.h5"),
                      "-o", str(post / "fsn_smoothed"), "--overwrite", "-q"],
             needs=(W / "fsn_synth.ckpt",)),
        Step("evaluate: frame-level AP after hmm-smooth",
             lambda: ["evaluate", *g(post / "fsn_smoothed", "*.h5"), "--gt", str(synth), "--subset",
                      "testing", "--json", str(out / "eval_fsn_frames_hmm.json")],
             "eval_fsn_frames_hmm.json", "fsn_frame_ap_after_hmm", needs=(W / "fsn_synth.ckpt",)),
        # -- S-CNN: proposals -> localization -> evaluate
        Step("propose: S-CNN proposal network over multi-scale windows",
             lambda: ["propose", *g(fr, "synth_*.frames.h5"), "--weights",
                      str(W / "scnn_proposal_synth.ckpt"), "-o", str(scnn), "--overwrite", "-q"],
             needs=(W / "scnn_proposal_synth.ckpt",)),
        Step("localize --method scnn",
             lambda: ["localize", *g(scnn, "*.proposals.h5"), "--method", "scnn", "--weights",
                      str(W / "scnn_localization_synth.ckpt"), "-o", str(scnn), "--overwrite", "-q"],
             needs=(W / "scnn_localization_synth.ckpt",)),
        Step("evaluate: S-CNN detections (ActivityNet protocol)",
             lambda: ["evaluate", *g(scnn, "*.detections.h5"), "--gt", str(synth), "--subset", "testing",
                      "--tiou", "0.3,0.5,0.7", "--json", str(out / "eval_scnn.json")],
             "eval_scnn.json", "scnn_detection", needs=(W / "scnn_localization_synth.ckpt",)),
        # -- Segment-tube: temporal localization and per-frame segmentation, alternated
        Step("segment-tube: C3D + LSTM localization alternating with superpixel graph cuts",
             lambda: ["segment-tube", *g(fr, "synth_test_*.frames.h5"), "--weights",
                      str(W / "segment_tube_synth.ckpt"), "-o", str(tube), "--frame-scores", "--device", "cpu",
                      "--overwrite", "-q"],
             needs=(W / "segment_tube_synth.ckpt",)),
        Step("evaluate: Segment-tube detections (ActivityNet protocol)",
             lambda: ["evaluate", *g(tube, "*.detections.h5"), "--gt", str(synth), "--subset", "testing",
                      "--tiou", "0.3,0.5,0.7", "--json", str(out / "eval_segment_tube.json")],
             "eval_segment_tube.json", "segment_tube_detection", needs=(W / "segment_tube_synth.ckpt",)),
        Step("evaluate: Segment-tube masks",
             lambda: ["evaluate", *g(tube, "*.labels.h5"), "--gt", str(synth / "labels"),
                      "--json", str(out / "eval_segment_tube_pixels.json")],
             "eval_segment_tube_pixels.json", "segment_tube_pixels", needs=(W / "segment_tube_synth.ckpt",)),
        # -- 3DFCN and its post-processing: pixels
        Step("segment-3d: 3DFCN-8s per-pixel posteriors",
             lambda: ["segment-3d", str(fr / f"{test0}.frames.h5"), "--model", "3dfcn-8s", "--weights",
                      str(W / "3dfcn8s_synth.ckpt"), "-o", str(seg / f"{test0}.scores.h5"),
                      "--out-stride", "4", "--overwrite", "-q"],
             needs=(W / "3dfcn8s_synth.ckpt",)),
        Step("evaluate: 3DFCN-8s masks",
             lambda: ["evaluate", str(seg / f"{test0}.scores.h5"), "--gt", str(synth / "labels"),
                      "--json", str(out / "eval_3dfcn.json")],
             "eval_3dfcn.json", "3dfcn_pixels", needs=(W / "3dfcn8s_synth.ckpt",)),
        Step("segment-3d: Sep3D per-pixel posteriors",
             lambda: ["segment-3d", str(fr / f"{test0}.frames.h5"), "--model", "sep3d", "--weights",
                      str(W / "sep3d_synth.ckpt"), "-o", str(seg / f"{test0}.sep3d.scores.h5"),
                      "--overwrite", "-q"],
             needs=(W / "sep3d_synth.ckpt",)),
        Step("evaluate: Sep3D masks",
             lambda: ["evaluate", str(seg / f"{test0}.sep3d.scores.h5"), "--gt", str(synth / "labels"),
                      "--json", str(out / "eval_sep3d.json")],
             "eval_sep3d.json", "sep3d_pixels", needs=(W / "sep3d_synth.ckpt",)),
        Step("hmm-fit: background/foreground pixel transitions from the synthetic label volumes",
             lambda: ["hmm-fit", *g(synth / "labels", "synth_train_*.labels.h5"), "--foreground", "-o",
                      str(post / "hmm_pixels.h5"), "--overwrite", "-q"]),
        Step("hmm-smooth: the Sep3D scores",
             lambda: ["hmm-smooth", str(seg / f"{test0}.sep3d.scores.h5"), "--hmm", str(post / "hmm_pixels.h5"),
                      "-o", str(post / f"{test0}.smoothed.scores.h5"), "--overwrite", "-q"],
             needs=(W / "sep3d_synth.ckpt",)),
        Step("crf-refine: dense CRF on the smoothed scores",
             lambda: ["crf-refine", str(post / f"{test0}.smoothed.scores.h5"), "--frames",
                      str(fr / f"{test0}.frames.h5"), "-o", str(post / f"{test0}.labels.h5"), "--jobs",
                      "2", "--overwrite", "-q"],
             needs=(W / "sep3d_synth.ckpt",)),
        Step("evaluate: Sep3D masks after hmm-smooth and crf-refine",
             lambda: ["evaluate", str(post / f"{test0}.labels.h5"), "--gt", str(synth / "labels"),
                      "--json", str(out / "eval_sep3d_post.json")],
             "eval_sep3d_post.json", "sep3d_pixels_after_post", needs=(W / "sep3d_synth.ckpt",)),
        # -- the real video through the temporal and pixel models
        Step("extract-frames: bikes.mp4 at 10 fps, short side 96",
             lambda: ["extract-frames", bikes, *codec, "--short-side", "96", "--fps", "10", "-o",
                      str(fr / "bikes_small.frames.h5"), "--overwrite", "-q"]),
        Step("extract-features on the real video",
             lambda: ["extract-features", str(fr / "bikes_small.frames.h5"), "--weights",
                      str(W / "backbone_synth.ckpt"), "-o", str(fsn / "bikes.features.h5"), "--overwrite",
                      "-q"],
             needs=(W / "backbone_synth.ckpt",)),
        Step("localize (fsn) on the real video",
             lambda: ["localize", str(fsn / "bikes.features.h5"), "--method", "fsn", "--weights",
                      str(W / "fsn_synth.ckpt"), "-o", str(fsn / "bikes.detections.h5"), "--overwrite",
                      "-q"],
             needs=(W / "fsn_synth.ckpt",)),
        Step("segment-3d (sep3d) on the real video",
             lambda: ["segment-3d", str(fr / "bikes_small.frames.h5"), "--model", "sep3d", "--weights",
                      str(W / "sep3d_synth.ckpt"), "-o", str(seg / "bikes.scores.h5"), "--out-stride", "2",
                      "--overwrite", "-q"],
             needs=(W / "sep3d_synth.ckpt",)),
        # -- the pictures: one HTML page over everything above
        Step("report: metrics, timelines, overlay videos and provenance as one HTML page",
             lambda: ["report", str(out), "-o", str(out / "report"), "--gt", str(synth),
                      "--gt", str(synth / "labels"), "--json", str(out / "report.json"), "-q"],
             "report.json"),
    ]


def _headline(metric: str, res: dict) -> dict:
    """The numbers of an evaluate/extract result worth a line in the summary."""
    if "results" in res and res["results"]:
        r = res["results"][0]
        return {"num_frames": r.get("num_frames"), "fps": r.get("fps")}
    keep = {k: res[k] for k in ("protocol", "mAP", "average_mAP", "foreground_iou", "localization_iou",
                                "mean_iou_per_video", "not_applicable") if k in res}
    return keep or res


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default="runs/demo", help="output folder")
    ap.add_argument("--frames-codec", help="extract-frames --codec (default: extract-frames' own, JPEG); "
                                           "lz4 stores the decoded frames losslessly")
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    vidseg = Path(sys.executable).with_name("vidseg")
    summary: dict = {"started": time.strftime("%Y-%m-%dT%H:%M:%S"), "steps": [], "metrics": {},
                     "skipped": []}
    for st in steps(out, ("--codec", args.frames_codec) if args.frames_codec else ()):
        missing = [str(p) for p in st.needs if not p.exists()]
        if missing:
            print(f"\n== {st.name}\n(skipped: {', '.join(missing)} missing; run `make sample-weights`)")
            summary["skipped"].append({"name": st.name, "missing": missing})
            continue
        argv = st.argv()
        print(f"\n== {st.name}\n$ {shlex.join(['vidseg', *argv])}", flush=True)
        t0 = time.perf_counter()
        proc = subprocess.run([str(vidseg), *argv], capture_output=st.result == "stdout", text=True)
        step = {"name": st.name, "command": shlex.join(["vidseg", *argv]), "exit_code": proc.returncode,
                "seconds": round(time.perf_counter() - t0, 3)}
        if proc.returncode == 0 and st.result == "stdout":
            step["result"] = json.loads(proc.stdout)
        elif proc.returncode == 0 and st.result and (out / st.result).exists():
            step["result"] = json.loads((out / st.result).read_text())
        if st.metric and "result" in step:
            summary["metrics"][st.metric] = _headline(st.metric, step["result"])
        summary["steps"].append(step)
        if proc.returncode != 0:
            if st.result == "stdout":
                sys.stderr.write(proc.stderr)
            print(f"demo: step failed (exit {proc.returncode}): {st.name}", file=sys.stderr)
            (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
            return proc.returncode
    summary["finished"] = time.strftime("%Y-%m-%dT%H:%M:%S")
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    print(f"\ndemo: {len(summary['steps'])} steps done, {len(summary['skipped'])} skipped; metrics:")
    print(json.dumps(summary["metrics"], indent=1))
    print(f"summary in {out / 'summary.json'}")
    print(f"report: {(out / 'report' / 'index.html').resolve()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
