"""S-CNN speed (S-CNN §4.2): propose's batched throughput, the share of windows the proposal
network prunes on synthetic test videos, and what that saves localize, against the
"w/o proposal" pipeline that scores every sliding window (Table 3). Every figure is a
ratio of two things measured side by side in this run, with the sample weights
(scripts/sample_weights/scnn.sh) on CPU.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
WEIGHTS = ROOT / "sample_data" / "weights"


def _vidseg(*args) -> None:
    """A vidseg command of this checkout, run by this interpreter: no `vidseg` on PATH (no
    venv activated) needed."""
    from benchmarks.video.footage import run_cmd, vidseg

    run_cmd(vidseg(*args))


def _test_frames(work: Path, n_test: int) -> list[Path]:
    _vidseg("synth", "-o", work / "synth", "--seed", 5, "--train", 0, "--test", n_test, "-q")
    vids = sorted((work / "synth" / "videos").glob("*.mp4"))
    _vidseg("extract-frames", *vids, "-o", work / "frames", "-q")
    return sorted((work / "frames").glob("*.frames.h5"))


def run(quick: bool) -> list[dict]:
    import torch

    from vidseg_cli import store
    from vidseg_cli.api import localize, propose
    from vidseg_cli.infer.scnn import score_windows
    from vidseg_cli.models.scnn import load_stage_network
    from vidseg_cli.stages.windows import multiscale_windows

    pro_w, loc_w = WEIGHTS / "scnn_proposal_synth.ckpt", WEIGHTS / "scnn_localization_synth.ckpt"
    if not (pro_w.is_file() and loc_w.is_file()):
        raise FileNotFoundError("sample weights missing: run scripts/sample_weights/scnn.sh")
    torch.set_num_threads(2)
    figures = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        frames = _test_frames(work, 4 if quick else 16)

        # 1. batched against one-window-at-a-time scoring, same windows, same network.
        model = load_stage_network(str(pro_w), ["proposal"])
        dev = torch.device("cpu")
        with store.open_record(frames[0], "frames") as rec:
            arr = rec["frames"][()]
        win = multiscale_windows(len(arr), model.window_lengths, model.window_overlap)
        win = win[: 64 if quick else 256]
        t = {}
        for bs in (1, 64):
            score_windows(model, arr, win[:8], bs, dev)  # warm-up
            t0 = time.perf_counter()
            score_windows(model, arr, win, bs, dev)
            t[bs] = time.perf_counter() - t0
        figures.append({"name": "propose windows/s, batch 64 vs batch 1", "ratio": t[1] / t[64],
                        "target": ">= 1", "ok": t[1] / t[64] >= 1,
                        "detail": {"windows": len(win), "windows_per_s_batch64": len(win) / t[64],
                                   "windows_per_s_batch1": len(win) / t[1]}})

        # 2. proposals on the test videos: network against every sliding window.
        times, kept, total = {}, 0, 0
        for method, weights in (("scnn", str(pro_w)), ("sliding", None)):
            proposer = propose.load(propose.Options(weights=weights, method=method, device="cpu"))
            out = work / f"prop_{method}"
            out.mkdir()
            t0 = time.perf_counter()
            for f in frames:
                info = proposer.run({"frames": str(f)},
                                    {"proposals": out / f.name.replace(".frames.h5", ".proposals.h5")})
                if method == "scnn":
                    kept, total = kept + info.kept, total + info.windows
            times[f"propose_{method}"] = time.perf_counter() - t0
        figures.append({"name": "share of windows the proposal network prunes", "ratio": 1 - kept / total,
                        "target": "> 0.5", "ok": 1 - kept / total > 0.5,
                        "detail": {"windows": total, "kept": kept, "videos": len(frames)}})

        # 3. localize on the kept windows against localize on every window (S-CNN §4.2).
        loc = localize.load(localize.Options(weights=str(loc_w), method="scnn", device="cpu"))
        for method in ("scnn", "sliding"):
            out = work / f"det_{method}"
            out.mkdir()
            t0 = time.perf_counter()
            for p in sorted((work / f"prop_{method}").glob("*.h5")):
                loc.run({"proposals": str(p)}, {"detections": out / p.name.replace(".proposals.h5", ".detections.h5")})
            times[f"localize_{method}"] = time.perf_counter() - t0
        speed = times["localize_sliding"] / times["localize_scnn"]
        figures.append({"name": "localize speed-up on proposals vs all sliding windows", "ratio": speed,
                        "target": "> 1", "ok": speed > 1, "detail": {k: round(v, 3) for k, v in times.items()}})
        whole = times["localize_sliding"] / (times["localize_scnn"] + times["propose_scnn"])
        figures.append({"name": "propose+localize vs localize on all windows (whole pipeline)",
                        "ratio": whole, "target": "informative", "ok": None,
                        "detail": {"note": "the proposal network is as large as the localization "
                                           "network here; S-CNN's gain is in the localization stage"}})
    return figures


if __name__ == "__main__":
    for fig in run(quick=True):
        print(f"{fig['name']}: {fig['ratio']:.3g} ({fig['detail']})")
