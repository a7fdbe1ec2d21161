"""`vidseg train` under torchrun: two gloo ranks on the CPU against one process.

Each model trains a few steps on tiny data, once in one process and once as
`torchrun --standalone --nproc-per-node=2`, and the two are compared:
- the logged loss (the global batch's, all-reduced) and the validation metrics
  (validation videos split over the ranks and gathered; within 2e-3, as frame AP ranks
  the frames' scores and weights equal to 1e-7 can swap two nearly tied frames: FSN's
  frame mAP differed by 2.6e-4 where the weights differed by 1e-8);
- the gradients, read from the optimizer's first moments in last.ckpt (SGD's momentum
  buffer, Adam's exp_avg): Adam's parameter step is about lr x sign(gradient) at first,
  so parameters alone would hide a gradient that is wrong by a constant factor;
- the parameters (under SGD) and buffers, by name (no `module.` prefix: rank 0 saves the
  model itself).

Why they are equal only within a tolerance, and which:
- float summation order everywhere: each rank sums its shard and the ranks' sums are
  added, where one process sums the whole batch at once; and the batched convolutions
  differ with the batch size. FSN and 3DFCN (no BatchNorm, dropout off): gradients
  agree to about 3e-5 relative, FSN's weights (SGD) to 1e-8.
- BatchNorm: Sep3D with --sync-bn normalises with the global batch's statistics like one
  process, but through all-reduced sums (train/sync_bn.py), not torch's fused kernel; on
  this tiny network float32 gradients carry a few per cent of rounding noise in any case
  (one process, float32 against float64: 3 % relative, measured), so its gradients are
  compared at 10 % (without --sync-bn they differ by 136 %: each rank normalises its own
  shard). train/test_sync_bn.py checks the layer itself exactly in float64.
- Dropout draws other masks per rank, so the comparisons run with dropout 0; the resume
  test runs with dropout, which a resume must redraw exactly (seeded by (seed, epoch, rank)).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from vidseg_cli import store
from vidseg_cli.models.checkpoint.format import build_from_checkpoint, read_checkpoint
from vidseg_cli.train import distributed

ROOT = Path(__file__).resolve().parents[2]

torch.set_num_threads(1)


def torchrun(*args, nproc: int = 2, module: bool = True) -> subprocess.CompletedProcess:
    """`torchrun --standalone` of `vidseg ARGS` (or of a script: module=False)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    for k in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(k, None)
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={nproc}",
           *(["-m", "vidseg_cli.cli.main"] if module else []), *[str(a) for a in args]]
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)


def _ok(res) -> None:
    assert res.returncode == 0, res.stderr[-3000:]


def _log(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]


def _first_moments(ckpt) -> torch.Tensor:
    state = ckpt["train_state"]["optimizer"]["state"]
    key = "exp_avg" if "exp_avg" in state[0] else "momentum_buffer"
    return torch.cat([state[i][key].flatten().double() for i in sorted(state)])


def compare(one: Path, two: Path, *, grad_rtol: float, params_atol: float | None = None,
            loss_rel: float = 1e-5, buffers_atol: float = 1e-5) -> dict[str, float]:
    """One process's run folder against two ranks'; the measured differences."""
    a, b = read_checkpoint(one / "last.ckpt"), read_checkpoint(two / "last.ckpt")
    assert list(b["state_dict"]) == list(a["state_dict"])  # same names, no "module." prefix
    la, lb = _log(one), _log(two)
    assert [r["step"] for r in lb] == [r["step"] for r in la]
    for ra, rb in zip(la, lb):
        assert rb["loss"] == pytest.approx(ra["loss"], rel=loss_rel)
        assert rb.get("val", {}).keys() == ra.get("val", {}).keys()
        for k, v in ra.get("val", {}).items():  # AP and accuracies: near-ties may swap
            assert rb["val"][k] == pytest.approx(v, abs=2e-3), k
    ga, gb = _first_moments(a), _first_moments(b)
    grad = float((ga - gb).norm() / ga.norm())
    assert grad < grad_rtol, grad
    out = {"grad_rel": grad}
    bufs = [k for k in a["state_dict"] if "running" in k]
    if bufs:
        out["buffers"] = max(float((a["state_dict"][k] - b["state_dict"][k]).abs().max()) for k in bufs)
        assert out["buffers"] < buffers_atol, out
    if params_atol is not None:
        out["params"] = max(float((a["state_dict"][k].double() - b["state_dict"][k].double()).abs().max())
                            for k in a["state_dict"])
        assert out["params"] < params_atol, out
    return out


# -- FSN -------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def features(tmp_path_factory) -> Path:
    """Six short feature files whose snippets say their class (two actions), four for
    training and two for validation, and their ActivityNet-style ground truth."""
    out = tmp_path_factory.mktemp("feat")
    rng = np.random.default_rng(0)
    db = {}
    for i in range(6):
        n, lab = 30, np.zeros(150, int)
        s, e = 40 + 5 * i, 100
        lab[s:e] = 1 + i % 2
        centers = np.arange(n) * 5 + 2
        f = rng.normal(size=(n, 8)) + np.eye(8)[lab[centers] * 2] * 2
        store.write_features(out / f"v{i}.features.h5", f.astype(np.float32), centers, video_id=f"v{i}",
                             num_frames=150, fps=10.0, attrs={"backbone": "x", "stream": "rgb", "snippet": 5})
        db[f"v{i}"] = {"subset": "training" if i < 4 else "validation", "duration": 15.0,
                       "annotations": [{"segment": [s / 10, e / 10], "label": "ab"[i % 2]}]}
    (out / "gt.json").write_text(json.dumps({"version": "1", "database": db}))
    return out


def _fsn(features: Path, *more) -> list:
    return ["train", "fsn", *sorted(features.glob("*.h5")), "--gt", features / "gt.json",
            "--val-subset", "validation", "--steps-per-epoch", "3", "--batch-size", "5", "--hidden", "16",
            "--lr", "0.05", "--min-action-frames", "0", "--device", "cpu", "-q", *more]


def test_fsn_two_ranks_match_one_process(features, tmp_path, cli):
    # batch 5 over 2 ranks: shards of 3 and 2 clips, so the loss must be the global mean
    one, two = tmp_path / "one", tmp_path / "two"
    res = cli(*_fsn(features, "--epochs", "2", "-o", one))
    assert res.exit_code == 0, res.output
    _ok(torchrun(*_fsn(features, "--epochs", "2", "-o", two, "--json", tmp_path / "two.json")))
    assert len(_log(two)) == 2  # rank 0 alone wrote the log
    assert json.loads((tmp_path / "two.json").read_text())["stage"] == "train fsn"
    assert not list(two.glob(".vidseg*"))  # the lock is gone, no temporary file left
    compare(one, two, params_atol=1e-6, grad_rtol=1e-5)
    # the checkpoint of two ranks runs in one process
    model, ck = build_from_checkpoint(two / "best.ckpt", expect_model="fsn")
    assert ck["classes"] == ["background", "a", "b"]
    res = cli("localize", features / "v4.features.h5", "--weights", two / "last.ckpt",
              "-o", tmp_path / "v4.h5", "-q")
    assert res.exit_code == 0, res.output


def test_two_rank_resume_continues_exactly(features, tmp_path):
    """With dropout, whose masks come from (seed, epoch, rank): 1 epoch, then --resume to
    2, ends bit for bit where 2 epochs straight end; a folder holding a run is refused
    on every rank without --resume (one line, no rank left waiting)."""
    straight, part = tmp_path / "straight", tmp_path / "part"
    _ok(torchrun(*_fsn(features, "--dropout", "0.3", "--epochs", "2", "-o", straight)))
    _ok(torchrun(*_fsn(features, "--dropout", "0.3", "--epochs", "1", "-o", part)))
    res = torchrun(*_fsn(features, "--dropout", "0.3", "--epochs", "2", "-o", part))
    assert res.returncode != 0 and res.stderr.count("holds a run") == 1, res.stderr[-3000:]
    _ok(torchrun(*_fsn(features, "--dropout", "0.3", "--epochs", "2", "--resume", "-o", part)))
    a, b = read_checkpoint(straight / "last.ckpt"), read_checkpoint(part / "last.ckpt")
    for k, v in a["state_dict"].items():
        assert torch.equal(v, b["state_dict"][k]), k
    assert [r["loss"] for r in _log(part)] == [r["loss"] for r in _log(straight)]


def test_a_batch_smaller_than_the_ranks_is_one_line(features, tmp_path):
    res = torchrun(*_fsn(features, "--batch-size", "1", "-o", tmp_path / "r"))
    assert res.returncode != 0
    lines = [x for x in res.stderr.splitlines() if x.startswith("vidseg ")]
    assert lines == ["vidseg train fsn: error: --batch-size 1 is smaller than the 2 processes: every "
                     "process needs an item of every batch (use --batch-size >= 2)"], res.stderr[-3000:]
    assert not (tmp_path / "r").exists()


# -- 3DFCN and Sep3D -------------------------------------------------------------------------
@pytest.fixture(scope="module")
def tiny_synth(tmp_path_factory) -> Path:
    from click.testing import CliRunner

    from vidseg_cli.cli.main import cli

    out = tmp_path_factory.mktemp("synth")
    res = CliRunner().invoke(cli, ["synth", "-o", str(out), "--train", "2", "--test", "0", "--size", "96x64",
                                   "--fps", "5", "--duration", "10,10", "--action-length", "2,2.5",
                                   "--seed", "1", "-q"], catch_exceptions=False)
    assert res.exit_code == 0, res.output
    return out


def _segment(data: Path, model: str, *more) -> list:
    # 8 clips in batches of 3 over 2 ranks: shards of 2 and 1, and a last batch of 2
    return ["train", "segment", "--model", model, "--data", data, "--recipe", "synthetic",
            "--width", "0.0625", "--clip-len", "8", "--crop", "64", "--batch-size", "3",
            "--clips-per-video", "4", "--epochs", "1", "--val-videos", "2", "--device", "cpu", "-q", *more]


def test_3dfcn_two_ranks_match_one_process(tiny_synth, tmp_path, cli):
    args = ("--short-side", "64", "--dropout", "0", "--max-steps", "2")
    one, two = tmp_path / "one", tmp_path / "two"
    res = cli(*_segment(tiny_synth, "3dfcn-8s", *args, "-o", one))
    assert res.exit_code == 0, res.output
    _ok(torchrun(*_segment(tiny_synth, "3dfcn-8s", *args, "-o", two)))
    # weights not compared: Adam moves a weight whose gradient is near 0 by up to lr,
    # whichever way rounding tips it (2e-4 measured); its first moments are the gradients
    compare(one, two, params_atol=None, grad_rtol=1e-4)


def test_sep3d_sync_bn_two_ranks_match_one_process(tiny_synth, tmp_path, cli):
    one, two = tmp_path / "one", tmp_path / "two"
    res = cli(*_segment(tiny_synth, "sep3d", "--max-steps", "1", "-o", one))
    assert res.exit_code == 0, res.output
    _ok(torchrun(*_segment(tiny_synth, "sep3d", "--max-steps", "1", "--sync-bn", "-o", two)))
    # parameters: Adam's first step is lr x sign(gradient), so a rounding-sized gradient
    # flips a weight by 2 lr; the gradients and BatchNorm statistics are what to compare
    compare(one, two, params_atol=None, grad_rtol=0.1, buffers_atol=1e-4)
    assert read_checkpoint(two / "last.ckpt")["training"]["settings"]["sync_bn"] is True


def test_sync_bn_refused_for_a_model_without_batchnorm(tiny_synth, tmp_path, cli):
    res = cli(*_segment(tiny_synth, "3dfcn-8s", "--sync-bn", "-o", tmp_path / "r"))
    assert res.exit_code == 2 and res.stderr.count("\n") == 1
    assert "--sync-bn: 3dfcn-8s has no BatchNorm layers" in res.stderr


# -- the helpers, as one rank of two sees them -----------------------------------------------
@pytest.fixture
def rank1_of_2(monkeypatch):
    monkeypatch.setattr(distributed, "_current", distributed.Dist(1, 2, 1, "cpu"))


def test_ranks_come_from_torchrun_variables_only():
    assert distributed.env_ranks({}) == distributed.SINGLE
    assert distributed.env_ranks({"SLURM_PROCID": "3", "SLURM_NTASKS": "4"}) == distributed.SINGLE
    assert distributed.env_ranks({"WORLD_SIZE": "1", "RANK": "0"}) == distributed.SINGLE
    d = distributed.env_ranks({"WORLD_SIZE": "4", "RANK": "3", "LOCAL_RANK": "1", "SLURM_PROCID": "0"})
    assert (d.rank, d.world, d.local_rank, d.active, d.main) == (3, 4, 1, True, False)
    with pytest.raises(ValueError, match="0 <= RANK < WORLD_SIZE"):
        distributed.env_ranks({"WORLD_SIZE": "2", "RANK": "2"})
    with pytest.raises(ValueError, match="expected integers"):
        distributed.env_ranks({"WORLD_SIZE": "two"})
    with pytest.raises(ValueError, match="cuda:LOCAL_RANK"):
        distributed.rank_device("cuda:1", d)


def test_a_rank_takes_its_share_of_every_batch(rank1_of_2):
    assert list(distributed.shard(np.arange(10, 15))) == [11, 13]
    assert distributed.shard(np.arange(1)) is None  # fewer items than ranks: skipped by all
    assert distributed.batches_per_epoch(8, 3) == 3 and distributed.batches_per_epoch(7, 3) == 2
    with pytest.raises(ValueError, match="--batch-size 1 is smaller than the 2 processes"):
        distributed.check_batch_size(1)
    distributed.check_batch_size(2)


def test_one_process_is_left_alone():
    assert distributed.current() == distributed.SINGLE
    x = torch.arange(5.0)
    assert distributed.shard(x) is x and distributed.batches_per_epoch(7, 3) == 3
    assert torch.equal(distributed.batch_mean(x), x.mean())
    assert distributed.map_sharded(lambda v: v * 2, [1, 2, 3]) == [2, 4, 6]
