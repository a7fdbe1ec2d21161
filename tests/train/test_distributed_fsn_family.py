"""`vidseg train backbone`, `train wfsn` and `train fsn --end-to-end` under torchrun: two
gloo ranks on the CPU against one process, as tests/train/test_distributed.py does for
`train fsn` and `train segment` (its `compare`: the logged loss, the validation metrics,
the gradients read from SGD's momentum buffers, the parameters and BatchNorm buffers).

Why equal only within a tolerance: float summation order. Each rank sums the loss of
its share and the all-reduce adds the ranks' sums, where one process sums the whole
batch; batched convolutions round differently with the batch size; with --sync-bn the
BatchNorm statistics are all-reduced per-channel sums (train/sync_bn.py), not torch's
fused kernel. Dropout stays at 0 (each rank draws its own masks); the resume test runs
with dropout, which a resume redraws exactly.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from tests.train import test_distributed as base
from tests.train.test_distributed import _log, _ok, compare, torchrun
from vidseg_cli.models.checkpoint.format import build_from_checkpoint, read_checkpoint

torch.set_num_threads(1)

features = base.features  # six short feature files and their ground truth (a module fixture)


# -- WFSN on features ------------------------------------------------------------------------
def _wfsn(features: Path, *more) -> list:
    # batch 5 over 2 ranks: shards of 3 and 2 videos, so the loss must be the global mean
    return ["train", "wfsn", *sorted(features.glob("*.h5")), "--gt", features / "gt.json",
            "--val-subset", "validation", "--steps-per-epoch", "3", "--batch-size", "5",
            "--segments", "10", "--hidden", "16", "--lr", "0.05", "--device", "cpu", "-q", *more]


def test_wfsn_two_ranks_match_one_process(features, tmp_path, cli):
    """No BatchNorm, dropout 0: gradients agree to 7e-8 relative, weights to 3e-8 (measured)."""
    one, two = tmp_path / "one", tmp_path / "two"
    res = cli(*_wfsn(features, "--epochs", "2", "-o", one))
    assert res.exit_code == 0, res.output
    _ok(torchrun(*_wfsn(features, "--epochs", "2", "-o", two)))
    assert len(_log(two)) == 2  # rank 0 alone wrote the log
    compare(one, two, params_atol=1e-6, grad_rtol=1e-5)
    model, ck = build_from_checkpoint(two / "best.ckpt", expect_model="wfsn")
    assert ck["classes"] == ["background", "a", "b"]


def test_wfsn_two_rank_resume_continues_exactly(features, tmp_path):
    """With dropout: 1 epoch, then --resume to 2, ends bit for bit where 2 straight end."""
    straight, part = tmp_path / "straight", tmp_path / "part"
    _ok(torchrun(*_wfsn(features, "--dropout", "0.3", "--epochs", "2", "-o", straight)))
    _ok(torchrun(*_wfsn(features, "--dropout", "0.3", "--epochs", "1", "-o", part)))
    _ok(torchrun(*_wfsn(features, "--dropout", "0.3", "--epochs", "2", "--resume", "-o", part)))
    a, b = read_checkpoint(straight / "last.ckpt"), read_checkpoint(part / "last.ckpt")
    for k, v in a["state_dict"].items():
        assert torch.equal(v, b["state_dict"][k]), k
    assert [r["loss"] for r in _log(part)] == [r["loss"] for r in _log(straight)]


def test_wfsn_batch_smaller_than_the_ranks_is_one_line(features, tmp_path):
    res = torchrun(*_wfsn(features, "--batch-size", "1", "-o", tmp_path / "r"))
    assert res.returncode != 0
    lines = [x for x in res.stderr.splitlines() if x.startswith("vidseg ")]
    assert lines == ["vidseg train wfsn: error: --batch-size 1 is smaller than the 2 processes: every "
                     "process needs an item of every batch (use --batch-size >= 2)"], res.stderr[-3000:]


# -- frames: the backbone and FSN end to end ---------------------------------------------------
@pytest.fixture(scope="module")
def frames(tmp_path_factory) -> Path:
    """A tiny synthetic set (3 training videos, 2 test videos for validation, one action
    each), its frames, and a one-step rgb backbone for --end-to-end to start from."""
    from click.testing import CliRunner

    from vidseg_cli.cli.main import cli as group

    def run(*args):
        res = CliRunner().invoke(group, [str(a) for a in args], catch_exceptions=False)
        assert res.exit_code == 0, res.output

    root = tmp_path_factory.mktemp("frames")
    run("synth", "-o", root / "synth", "--train", "3", "--test", "2", "--size", "64x48", "--fps", "5",
        "--duration", "8,8", "--action-length", "2,2.5", "--num-classes", "2", "--seed", "1", "-q")
    run("extract-frames", *sorted((root / "synth" / "videos").glob("*.mp4")), "-o", root / "frames", "-q")
    run("train", "backbone", root / "frames", "--gt", root / "synth", "--width", "0.0625",
        "--epochs", "1", "--steps-per-epoch", "1", "--batch-size", "4", "-o", root / "bb", "-q")
    return root


def _backbone(root: Path, *more) -> list:
    # batch 5 over 2 ranks: shards of 3 and 2 frames
    return ["train", "backbone", root / "frames", "--gt", root / "synth", "--val-subset", "testing",
            "--width", "0.0625", "--steps-per-epoch", "2", "--batch-size", "5",
            "--device", "cpu", "-q", *more]


def test_backbone_sync_bn_two_ranks_match_one_process(frames, tmp_path, cli):
    """ResNet-18 with BatchNorm: with --sync-bn every training batch is normalised with the
    global batch's statistics, as in one process. Measured after 4 SGD steps at lr 0.01:
    gradients 7e-6 relative, weights and running statistics 1.4e-6 (after one step 5e-6,
    where float32 against float64 in one process differs by 2.5e-6); without --sync-bn
    the gradients differ by 121 %, the running statistics by 0.14. At lr 0.05 this tiny
    network amplifies the rounding to 0.4 % in 4 steps, hence the default lr here."""
    one, two = tmp_path / "one", tmp_path / "two"
    res = cli(*_backbone(frames, "--epochs", "2", "-o", one))
    assert res.exit_code == 0, res.output
    _ok(torchrun(*_backbone(frames, "--epochs", "2", "--sync-bn", "-o", two)))
    compare(one, two, params_atol=1e-5, grad_rtol=1e-4, buffers_atol=1e-5)
    assert read_checkpoint(two / "last.ckpt")["training"]["settings"]["sync_bn"] is True
    # the checkpoint holds plain BatchNorm (no GlobalBatchNorm): it runs in one process
    model, _ = build_from_checkpoint(two / "best.ckpt", expect_model="resnet18")
    assert type(model.bn1) is torch.nn.BatchNorm2d


def _e2e(root: Path, *more) -> list:
    # batch 3 over 2 ranks: shards of 2 and 1 clips
    return ["train", "fsn", root / "frames", "--end-to-end", "--backbone", root / "bb" / "last.ckpt",
            "--gt", root / "synth", "--val-subset", "testing", "--clip-snippets", "3",
            "--min-action-frames", "0", "--hidden", "16", "--steps-per-epoch", "2", "--batch-size", "3",
            "--lr", "0.01", "--device", "cpu", "-q", *more]


def test_fsn_end_to_end_two_ranks_match_one_process(frames, tmp_path, cli):
    """The backbone's BatchNorm frozen (its statistics kept), dropout 0: gradients agree
    to 2.5e-7 relative, weights to 1.5e-8 (measured)."""
    one, two = tmp_path / "one", tmp_path / "two"
    res = cli(*_e2e(frames, "--epochs", "1", "-o", one))
    assert res.exit_code == 0, res.output
    _ok(torchrun(*_e2e(frames, "--epochs", "1", "-o", two, "--json", tmp_path / "two.json")))
    assert json.loads((tmp_path / "two.json").read_text())["stage"] == "train fsn"
    compare(one, two, params_atol=1e-5, grad_rtol=1e-4)
    # rank 0 split best.ckpt once; the split checkpoints are those of one process
    for name in ("backbone.ckpt", "fsn.ckpt"):
        a, b = read_checkpoint(one / name), read_checkpoint(two / name)
        assert a["preprocess"] == b["preprocess"]  # the same feature statistics, gathered
        for k, v in a["state_dict"].items():
            assert torch.allclose(v, b["state_dict"][k], atol=1e-5), (name, k)
    assert not list(two.glob(".vidseg*"))
