"""The CUDA paths beyond a model's forward: segment-3d's exact temporal tiling of 3DFCN
and Sep3D's clip averaging on the GPU, hmm-smooth's torch recursions on the GPU against
the CPU kernel, and training under torchrun with NCCL (one GPU: --nproc-per-node=1)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from vidseg_cli.api.segment3d import Options, Segment3D
from vidseg_cli.infer.fcn_tiling import fcn_trunk_bytes_per_frame, temporal_reach, tile_plan
from vidseg_cli.models import MODELS
from vidseg_cli.stages.hmm.smooth import smooth

ROOT = Path(__file__).resolve().parents[2]
PRE = {"mean": [127.5] * 3, "std": [64.0] * 3, "short_side": None, "clip_len": 8}
CLASSES = ["background", "a", "b"]


def _segmenter(name, device, **opts):
    torch.manual_seed(0)
    cfg = {"crop_size": 32} if name == "sep3d" else {}
    m = MODELS.build(name, num_classes=3, width=1 / 16, **cfg).eval().to(device)
    return Segment3D(m, CLASSES, PRE, Options(model=name, weights="", **opts), device)


def _frames(t, h, w, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (t, h, w, 3), dtype=np.uint8)


@pytest.mark.parametrize("name,t,tile", [("3dfcn-32s", 203, 1), ("3dfcn-8s", 118, 90)])
def test_fcn_tiling_on_cuda_equals_untiled_and_cpu(name, t, tile, cuda):
    seg = _segmenter(name, cuda)
    h = seg.model.min_input[1]
    fr = _frames(t, h, h + 9, seed=1)
    whole = seg.fcn_score_map(fr)
    assert whole.is_cuda
    assert len(tile_plan(t, whole.shape[2], temporal_reach(seg.model), tile)) > 1
    torch.testing.assert_close(seg.fcn_score_map(fr, max_frames=tile), whole, rtol=1e-5, atol=1e-5)
    cpu = _segmenter(name, torch.device("cpu"))
    torch.testing.assert_close(whole.cpu(), cpu.fcn_score_map(fr), rtol=1e-4, atol=1e-4)
    # through predict(): a budget of 100 frames' trunk memory forces tiles
    tiny = _segmenter(name, cuda, max_memory=fcn_trunk_bytes_per_frame(seg.model, h, h + 9) * 100)
    np.testing.assert_allclose(tiny.predict(fr), seg.predict(fr), atol=1e-5)


def test_sep3d_predict_on_cuda_equals_cpu(cuda):
    fr = _frames(13, 32, 40, seed=2)
    got = _segmenter("sep3d", cuda, clip_stride=4, batch_size=3).predict(fr)
    ref = _segmenter("sep3d", torch.device("cpu"), clip_stride=4, batch_size=3).predict(fr)
    np.testing.assert_allclose(got, ref, atol=1e-4)
    np.testing.assert_allclose(got.sum(1), 1.0, atol=1e-5)


def _hmm(c, rng):
    trans = rng.random((c, c)) + np.eye(c) * c
    return np.full(c, 1.0 / c), trans / trans.sum(1, keepdims=True)


def test_hmm_torch_path_on_cuda_equals_cpu_kernel(cuda):
    rng = np.random.default_rng(0)
    t, c, h, w = 30, 4, 20, 24
    logits = rng.normal(0, 2, (t, c, h, w))
    q = (np.exp(logits) / np.exp(logits).sum(1, keepdims=True)).astype(np.float32)
    prior, trans = _hmm(c, rng)
    ref = smooth(q, prior, trans, device="cpu", backend="numba")
    got = smooth(q, prior, trans, device=cuda, backend="torch", max_memory=None)
    np.testing.assert_allclose(got, ref, atol=2e-5)
    tiled = smooth(q, prior, trans, device=cuda, backend="torch", max_memory=200_000)  # several tiles
    np.testing.assert_allclose(tiled, got, atol=1e-6)
    log_gpu = smooth(q, prior, trans, device=cuda, backend="torch", log_space=True)
    log_cpu = smooth(q, prior, trans, device="cpu", backend="torch", log_space=True)
    np.testing.assert_allclose(log_gpu, log_cpu, atol=1e-9)
    np.testing.assert_allclose(log_gpu, ref, atol=2e-5)
    frame = q[:, :, 0, 0].copy()  # per-frame scores: log space by default
    np.testing.assert_allclose(smooth(frame, prior, trans, device=cuda), smooth(frame, prior, trans), atol=1e-9)


def _torchrun(*args, module: bool = True) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
           "OMP_NUM_THREADS": "1"}
    for k in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(k, None)
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node=1",
           *(["-m", "vidseg_cli.cli.main"] if module else []), *map(str, args)]
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)


def test_nccl_collectives_under_torchrun(cuda):
    res = _torchrun(ROOT / "tests" / "gpu" / "ddp_smoke.py", module=False)
    assert res.returncode == 0, res.stderr[-3000:]
    out = json.loads(res.stdout.strip().splitlines()[-1])
    assert out.pop("backend") == "nccl"
    assert all(out.values()), out


def test_train_segment_under_torchrun_on_cuda(cuda, tmp_path, cli):
    assert cli("synth", "-o", tmp_path / "s", "--train", "2", "--test", "1", "--duration", "6", "-q").exit_code == 0
    res = _torchrun("train", "segment", "--model", "3dfcn-8s", "--data", tmp_path / "s", "--recipe", "synthetic",
                    "--max-steps", "2", "--val-videos", "1", "--device", "cuda", "-o", tmp_path / "run", "-q")
    assert res.returncode == 0, res.stderr[-3000:]
    log = [json.loads(x) for x in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    assert log[-1]["step"] == 2 and np.isfinite(log[-1]["loss"])
