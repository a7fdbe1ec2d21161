"""`vidseg train scnn`, `train segment-tube` and `train sep3d-head` under torchrun: two gloo
ranks on the CPU against one process on the same data (test_distributed.py does FSN,
3DFCN and Sep3D the same way, and says how the runs are compared).

Each command trains a few steps in one process and as `torchrun --standalone
--nproc-per-node=2`, with global batches that split unevenly over the two ranks (so a
loss that were each rank's own mean would show), and the runs are compared: the logged
loss, the validation metrics (sharded and gathered), the gradients (the optimizer's first
moments in last.ckpt) and, where the optimizer is SGD, the weights.

Why equal only within a tolerance: float summation order. Each rank sums its share of the
batch and the ranks' sums are added, where one process sums the whole batch at once, and
the batched convolutions of C3D (S-CNN, Segment-tube's trunk) and Sep3D differ with the
batch size. Without BatchNorm in training (S-CNN, Segment-tube, the head on a frozen
Sep3D) the gradients agree to 1e-5 relative (measured: at most 6e-7) and the weights under
SGD to 1e-6 (measured: at most 5e-8). Sep3D's BatchNorm under --sync-bn (the joint
fine-tune of sep3d-head) normalises with the global batch's statistics through all-reduced
sums, not torch's fused kernel; on this tiny random network float32 gradients carry a few
per cent of rounding noise in any case (test_distributed.py), so they are compared at
10 % (measured: 1.5 %; running statistics within 7e-7).
Dropout draws other masks per rank, so the comparisons run with dropout 0; the resume
tests run with dropout, which a resume must redraw exactly.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from tests.train.test_distributed import _log, _ok, compare, torchrun
from vidseg_cli.models.checkpoint.format import build_from_checkpoint, read_checkpoint

torch.set_num_threads(1)


def _same_weights(a: Path, b: Path) -> None:
    sa, sb = read_checkpoint(a / "last.ckpt")["state_dict"], read_checkpoint(b / "last.ckpt")["state_dict"]
    assert sa.keys() == sb.keys()
    for k, v in sa.items():
        assert torch.equal(v, sb[k]), k


# -- S-CNN -----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def scnn_set(tmp_path_factory) -> Path:
    """Four short synthetic videos of two classes at 64x48 (one held out for validation)."""
    from click.testing import CliRunner

    from vidseg_cli.cli.main import cli

    d = tmp_path_factory.mktemp("scnn")
    r = CliRunner().invoke(cli, ["synth", "-o", str(d / "synth"), "--seed", "3", "--num-classes", "2",
                                 "--train", "4", "--test", "0", "--size", "64x48", "-q"])
    assert r.exit_code == 0, r.output
    return d


def _scnn(d: Path, stage: str, *more) -> list:
    # batch 5 over 2 ranks: shards of 3 and 2 clips
    return ["train", "scnn", "--stage", stage, "--data", d / "synth", "--cache", d / "frames",
            "--recipe", "synthetic", "--width", "0.0625", "--frame-size", "32x24", "--crop", "24x32",
            "--batch-size", "5", "--threads", "1", "--device", "cpu", "--val-fraction", "0.25", "-q", *more]


SGD = ("--optimizer", "sgd", "--lr", "0.01", "--fc8-lr", "0.02", "--dropout", "0")


def test_scnn_classification_and_localization_two_ranks_match_one_process(scnn_set, tmp_path, cli):
    """Eq. (2) (classification) and Eq. (1)-(3) (localization, from the classification
    network): a mean over the global batch, clips cropped and flipped as one process does."""
    d = scnn_set
    one, two = tmp_path / "cls1", tmp_path / "cls2"
    # two ranks first: rank 0 decodes the frame cache, rank 1 then reads it
    _ok(torchrun(*_scnn(d, "classification", *SGD, "--iterations", "3", "-o", two, "--json", tmp_path / "c.json")))
    assert json.loads((tmp_path / "c.json").read_text())["steps"] == 3
    assert (two / "summary.json").is_file() and not list(two.glob(".vidseg*"))
    assert len(list((d / "frames").glob("*.u8"))) == 4
    res = cli(*_scnn(d, "classification", *SGD, "--iterations", "3", "-o", one))
    assert res.exit_code == 0, res.stderr
    compare(one, two, grad_rtol=1e-5, params_atol=1e-6)
    init = one / "best.ckpt"
    loc1, loc2 = tmp_path / "loc1", tmp_path / "loc2"
    res = cli(*_scnn(d, "localization", *SGD, "--iterations", "2", "--init", init, "-o", loc1))
    assert res.exit_code == 0, res.stderr
    _ok(torchrun(*_scnn(d, "localization", *SGD, "--iterations", "2", "--init", init, "-o", loc2)))
    compare(loc1, loc2, grad_rtol=1e-5, params_atol=1e-6)
    model, ck = build_from_checkpoint(loc2 / "best.ckpt", expect_model="scnn")  # loads in one process
    assert ck["config"]["stage"] == "localization"


def test_scnn_proposal_two_ranks_match_one_process(scnn_set, tmp_path, cli):
    d = scnn_set
    one, two = tmp_path / "one", tmp_path / "two"
    res = cli(*_scnn(d, "proposal", *SGD, "--iterations", "3", "-o", one))
    assert res.exit_code == 0, res.stderr
    _ok(torchrun(*_scnn(d, "proposal", *SGD, "--iterations", "3", "-o", two)))
    compare(one, two, grad_rtol=1e-5, params_atol=1e-6)


def test_scnn_two_rank_resume_continues_exactly(scnn_set, tmp_path, cli):
    """With dropout (0.3), 16 clips a batch: one epoch, then --resume to two, ends where two
    epochs straight end."""
    d = scnn_set
    res = cli(*_scnn(d, "proposal", "--iterations", "1", "-o", tmp_path / "count"))
    assert res.exit_code == 0, res.stderr
    data = json.loads((tmp_path / "count" / "summary.json").read_text())["data"]
    full, rest = divmod(data["train_positives"] + data["background_per_epoch"], 16)
    per_epoch = full + (rest >= 2)  # a last batch of one clip is skipped by both ranks
    big = ("--batch-size", "16", "--optimizer", "adam")
    straight, part = tmp_path / "straight", tmp_path / "part"
    _ok(torchrun(*_scnn(d, "proposal", *big, "--iterations", 2 * per_epoch, "-o", straight)))
    assert [r["step"] for r in _log(straight)] == [per_epoch, 2 * per_epoch]
    _ok(torchrun(*_scnn(d, "proposal", *big, "--iterations", per_epoch, "-o", part)))
    _ok(torchrun(*_scnn(d, "proposal", *big, "--iterations", 2 * per_epoch, "--resume", "-o", part)))
    _same_weights(straight, part)
    assert [r["loss"] for r in _log(part)] == [r["loss"] for r in _log(straight)]


# -- Segment-tube ----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def tube_set(tmp_path_factory) -> Path:
    """Four synthetic videos of two classes at 64x48 and a random width-1/16 S-CNN trunk
    (and the same without dropout, for the paper recipe, which trains the trunk)."""
    from click.testing import CliRunner

    from vidseg_cli.cli.main import cli
    from vidseg_cli.models import MODELS
    from vidseg_cli.models.checkpoint.format import save_checkpoint

    d = tmp_path_factory.mktemp("tube")
    r = CliRunner().invoke(cli, ["synth", "-o", str(d / "synth"), "--seed", "3", "--num-classes", "2",
                                 "--train", "4", "--test", "0", "--size", "64x48", "-q"])
    assert r.exit_code == 0, r.output
    torch.manual_seed(0)
    for name, dropout in (("scnn.ckpt", 0.5), ("scnn_no_dropout.ckpt", 0.0)):
        m = MODELS.build("scnn", stage="localization", num_classes=3, width=0.0625, frame_size=[32, 24],
                         crop_size=[24, 32], pixel_mean=110.0, pixel_scale=1 / 60, dropout=dropout)
        save_checkpoint(d / name, m, ["background", "a", "b"])
    return d


def _tube(d: Path, features: str, *more, init: str = "scnn.ckpt") -> list:
    # batches of 5 chunks over 2 ranks: shards of 3 and 2
    return ["train", "segment-tube", "--data", d / "synth", "--init", d / init, "--cache", d / "frames",
            "--features", d / features, "--hidden", "8", "--superpixels", "50", "--threads", "1",
            "--device", "cpu", "--val-fraction", "0.25", "--batch-size", "5", "--seq-len", "8", "-q", *more]


def test_segment_tube_two_ranks_match_one_process(tube_set, tmp_path, cli):
    d = tube_set
    args = ("--dropout", "0", "--optimizer", "sgd", "--lr", "0.05", "--epochs", "2")
    one, two = tmp_path / "one", tmp_path / "two"
    # two ranks first: each computes the masks and fc7 of its share of the videos
    _ok(torchrun(*_tube(d, "features", *args, "-o", two, "--json", tmp_path / "two.json")))
    assert json.loads((tmp_path / "two.json").read_text())["data"]["features_computed"] == 4
    assert len(list((d / "features").glob("*.npz"))) == 4 and len(list((d / "features").glob("*.npy"))) == 4
    res = cli(*_tube(d, "features", *args, "-o", one, "--json", tmp_path / "one.json"))
    assert res.exit_code == 0, res.stderr
    assert json.loads((tmp_path / "one.json").read_text())["data"]["features_computed"] == 0  # read back
    compare(one, two, grad_rtol=1e-5, params_atol=1e-6)


def test_segment_tube_two_rank_resume_continues_exactly(tube_set, tmp_path):
    """With dropout (0.5): one epoch, then --resume to two, ends where two epochs straight
    end."""
    d = tube_set
    straight, part = tmp_path / "straight", tmp_path / "part"
    _ok(torchrun(*_tube(d, "features", "--epochs", "2", "-o", straight)))
    _ok(torchrun(*_tube(d, "features", "--epochs", "1", "-o", part)))
    _ok(torchrun(*_tube(d, "features", "--epochs", "2", "--resume", "-o", part)))
    _same_weights(straight, part)
    assert [r["loss"] for r in _log(part)] == [r["loss"] for r in _log(straight)]


def test_segment_tube_paper_recipe_two_ranks_match_one_process(tube_set, tmp_path, cli):
    """End to end: the trunk trains with the heads on saliency-aware clips (each rank
    writes the masks of its share of the videos first)."""
    d = tube_set
    args = ("--recipe", "paper", "--dropout", "0", "--max-steps", "2", "--seq-len", "4", "--batch-size", "3")
    one, two = tmp_path / "one", tmp_path / "two"
    _ok(torchrun(*_tube(d, "paper_features", *args, "-o", two, init="scnn_no_dropout.ckpt")))
    assert len(list((d / "paper_features").glob("*.npy"))) == 4
    res = cli(*_tube(d, "paper_features", *args, "-o", one, init="scnn_no_dropout.ckpt"))
    assert res.exit_code == 0, res.stderr
    compare(one, two, grad_rtol=1e-5, params_atol=1e-6)
    assert read_checkpoint(two / "last.ckpt")["config"]["trunk"]["fine_tuned"] is True


# -- Sep3D's action head -----------------------------------------------------------------------
@pytest.fixture(scope="module")
def head_set(tmp_path_factory) -> Path:
    """Two 10-second 64x48 training videos and a test video of two classes at 5 fps (each
    with an action, so validation has frames to score), and a random width-1/16 Sep3D
    saved as a `train segment` checkpoint with 8-frame clips."""
    from click.testing import CliRunner

    from vidseg_cli.cli.main import cli
    from vidseg_cli.models import MODELS, save_checkpoint

    d = tmp_path_factory.mktemp("head")
    r = CliRunner().invoke(cli, ["synth", "-o", str(d / "synth"), "--train", "2", "--test", "1", "--size", "64x48",
                                 "--fps", "5", "--duration", "10,10", "--action-length", "2.4",
                                 "--num-classes", "2", "--appearance", "class", "--seed", "2", "-q"])
    assert r.exit_code == 0, r.output
    torch.manual_seed(0)
    seg = MODELS.build("sep3d", num_classes=2, width=1 / 16, crop_size=64)
    seg.preprocess = {"mean": [127.5] * 3, "std": [64.0] * 3, "short_side": None, "clip_len": 8}
    save_checkpoint(d / "seg.ckpt", seg, ["background", "foreground"])
    return d


def _head(d: Path, *more) -> list:
    # 6 clips in batches of 3 over 2 ranks: shards of 2 and 1
    return ["train", "sep3d-head", "--segmenter", d / "seg.ckpt", "--data", d / "synth", "--batch-size", "3",
            "--clips-per-video", "3", "--epochs", "1", "--val-videos", "0", "--device", "cpu", "-q", *more]


def test_sep3d_head_two_ranks_match_one_process(head_set, tmp_path, cli):
    """On the frozen segmenter (eval mode: its BatchNorm running statistics), only the head
    trains: its cross-entropy is the mean over the frames with an actor of the whole batch."""
    one, two = tmp_path / "one", tmp_path / "two"
    res = cli(*_head(head_set, "--epochs", "2", "-o", one))
    assert res.exit_code == 0, res.stderr
    _ok(torchrun(*_head(head_set, "--epochs", "2", "-o", two)))
    assert _log(two)[0]["val"]["frames"] > 0
    compare(one, two, grad_rtol=1e-5)


def test_sep3d_head_joint_sync_bn_two_ranks_match_one_process(head_set, tmp_path, cli):
    one, two = tmp_path / "one", tmp_path / "two"
    res = cli(*_head(head_set, "--joint", "--max-steps", "1", "-o", one))
    assert res.exit_code == 0, res.stderr
    _ok(torchrun(*_head(head_set, "--joint", "--max-steps", "1", "--sync-bn", "-o", two)))
    # one step: Adam's first step is lr x sign(gradient), so a rounding-sized gradient
    # flips a weight by 2 lr and the next step's gradients drift apart (10 % after two,
    # measured); the segmenter's gradients differ by 1.5 %, the head's by 0.3 % (without
    # --sync-bn: 150 % and 110 %)
    compare(one, two, grad_rtol=0.1, buffers_atol=1e-4)
    assert read_checkpoint(two / "last.ckpt")["training"]["settings"]["sync_bn"] is True
    model, _ = build_from_checkpoint(two / "best.ckpt", expect_model="sep3d+head")  # plain BatchNorm
    assert not any("Global" in type(m).__name__ for m in model.modules())


def test_sep3d_head_sync_bn_needs_the_joint_fine_tune(head_set, tmp_path, cli):
    res = cli(*_head(head_set, "--sync-bn", "-o", tmp_path / "r"))
    assert res.exit_code == 2 and res.stderr.count("\n") == 1, res.stderr
    assert "--sync-bn applies only with --joint" in res.stderr
    assert not (tmp_path / "r").exists()


# -- caches written once, failures on every rank -------------------------------------------------
def test_a_bad_input_met_while_filling_a_cache_is_one_line(scnn_set, tmp_path):
    """Rank 0 fills the frame cache first (the others wait for it): a missing video stops
    it, and the others with it, with one line and exit 2."""
    (tmp_path / "empty").mkdir()
    res = torchrun(*_scnn(scnn_set, "proposal", "--videos", tmp_path / "empty", "-o", tmp_path / "r"))
    assert res.returncode != 0
    lines = [x for x in res.stderr.splitlines() if x.startswith("vidseg ")]
    assert len(lines) == 1 and lines[0].startswith(f"vidseg train: error: {tmp_path / 'empty'}: 4 of the 4 "
                                                   "ground-truth videos are missing"), res.stderr[-3000:]
    assert "[rank" not in res.stderr  # no traceback from either process
    assert not (tmp_path / "r").exists()


def test_fill_sharded_raises_a_failure_on_every_rank(tmp_path):
    """Each rank does its share; rank 1's InputError (item 3) reaches rank 0 too, whole."""
    script = tmp_path / "fill.py"
    script.write_text(
        "from vidseg_cli.errors import InputError\n"
        "from vidseg_cli.train import distributed\n"
        "d = distributed.setup('cpu')\n"
        "def work(x):\n"
        "    if x == 3:\n"
        "        raise InputError(f'video{x}.mp4', 'cannot decode')\n"
        "    return (x, d.rank)\n"
        "import sys\n"
        "def say(*a):  # one write per line: the ranks share one pipe\n"
        "    sys.stdout.write(' '.join(map(str, a)) + '\\n'); sys.stdout.flush()\n"
        "say(d.rank, distributed.fill_sharded(work, [0, 1, 2]))\n"
        "try:\n"
        "    distributed.fill_sharded(work, [0, 1, 2, 3])\n"
        "except InputError as e:\n"
        "    say(d.rank, 'error', e.path, '|', e)\n"
        "distributed.teardown()\n")
    res = torchrun(script, module=False)
    _ok(res)
    out = sorted(res.stdout.splitlines())
    assert out == ["0 [(0, 0), (1, 1), (2, 0)]", "0 error video3.mp4 | video3.mp4: cannot decode",
                   "1 [(0, 0), (1, 1), (2, 0)]", "1 error video3.mp4 | video3.mp4: cannot decode"], res.stdout
