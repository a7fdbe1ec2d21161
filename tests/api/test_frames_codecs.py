"""Every stage that reads frames gets the same result from a JPEG frames file as from a
lossless file holding the same decoded frames: the store's readers decode JPEG frames
transparently, and no stage reads the stored bytes itself.

One synthetic test video (128x96, the sample weights' size), extracted as JPEG (the
default) and copied, decoded, into an lz4 file with the same id, timestamps and attributes;
each stage runs on both, and every dataset of its outputs must be equal.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from tests.api.test_segment_tube import CLASSES as TUBE_CLASSES
from tests.api.test_segment_tube import SegmentTubeNet, make_segment_tube_checkpoint, tiny_trunk
from vidseg_cli import store

WEIGHTS = Path(__file__).resolve().parents[2] / "sample_data" / "weights"


def _lossless_twin(src, dst) -> None:
    """An lz4 frames file of `src`'s decoded frames, same id, timestamps and attributes."""
    with store.open_record(src, "frames") as rec:
        a = rec["frames"]
        keep = {k: rec.attrs[k] for k in ("source", "source_kind", "source_fps", "source_size",
                                          "start") if k in rec.attrs}
        with store.FramesWriter(dst, height=a.shape[1], width=a.shape[2], video_id=rec.video_id,
                                fps=rec.fps, attrs=keep, command="test", codec="lz4") as fw:
            t = rec["timestamps"][()]
            for i in range(0, len(a), 32):
                for k, f in enumerate(a[i:i + 32]):
                    fw.append(f, t[i + k])


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    from click.testing import CliRunner

    from vidseg_cli.cli.main import cli

    d = tmp_path_factory.mktemp("codecs")
    run = CliRunner()
    r = run.invoke(cli, ["synth", "-o", str(d / "synth"), "--seed", "7", "--train", "2", "--test", "1",
                         "-q"])
    assert r.exit_code == 0, r.output
    vid = sorted((d / "synth" / "videos").glob("synth_test_*.mp4"))[0]
    jpeg = d / "jpeg" / f"{vid.stem}.frames.h5"
    r = run.invoke(cli, ["extract-frames", str(vid), "--end", "9", "-o", str(jpeg), "-q"])
    assert r.exit_code == 0, r.output
    lossless = d / "lossless" / jpeg.name
    lossless.parent.mkdir()
    _lossless_twin(jpeg, lossless)
    with store.open_record(jpeg, "frames") as a, store.open_record(lossless, "frames") as b:
        assert a["frames"].codec == "jpeg" and b["frames"].codec == "lz4"
        np.testing.assert_array_equal(a["frames"][()], b["frames"][()])
    return d, jpeg, lossless


def _same_outputs(a, b) -> None:
    """Every dataset of two vidseg files equal, and the attributes that are not provenance."""
    ra, rb = store.read(a), store.read(b)
    assert ra.kind == rb.kind and sorted(ra.arrays) == sorted(rb.arrays)
    for name in ra.arrays:
        np.testing.assert_array_equal(ra[name], rb[name], err_msg=f"{a.name}: {name}")
    skip = {"uid", "created", "command", "inputs"}
    assert {k: v for k, v in ra.attrs.items() if k not in skip} == \
        {k: v for k, v in rb.attrs.items() if k not in skip}


def _both(cli, pair, make_argv, out_name):
    """Run a stage on the JPEG file and on its lossless twin; compare the outputs."""
    d, jpeg, lossless = pair
    outs = []
    for src in (jpeg, lossless):
        out = src.parent / out_name
        r = cli(*make_argv(src, out))
        assert r.exit_code == 0, r.output
        outs.append(out)
    _same_outputs(*outs)
    return outs


def test_segment3d_and_crf_refine(cli, pair):
    s = _both(cli, pair, lambda src, out: ["segment-3d", src, "--model", "3dfcn-8s", "--weights",
                                           WEIGHTS / "3dfcn8s_synth.ckpt", "-o", out, "--out-stride",
                                           "4", "-q"], "v.scores.h5")
    assert np.isfinite(store.read_scores(s[0])["probs"]).all()
    _both(cli, pair, lambda src, out: ["crf-refine", src.parent / "v.scores.h5", "--frames", src,
                                       "-o", out, "-q"], "v.labels.h5")


def test_extract_features(cli, pair):
    _both(cli, pair, lambda src, out: ["extract-features", src, "--weights",
                                       WEIGHTS / "backbone_synth.ckpt", "-o", out, "-q"],
          "v.features.h5")


def test_propose_and_localize_scnn(cli, pair):
    p = _both(cli, pair, lambda src, out: ["propose", src, "--weights",
                                           WEIGHTS / "scnn_proposal_synth.ckpt", "-o", out, "-q"],
              "v.proposals.h5")
    assert len(store.read_proposals(p[0])["scores"]) > 0
    # localize finds the frames through the proposals' provenance (each its own file).
    _both(cli, pair, lambda src, out: ["localize", src.parent / "v.proposals.h5", "--method", "scnn",
                                       "--weights", WEIGHTS / "scnn_localization_synth.ckpt", "-o",
                                       out, "-q"], "v.detections.h5")


def test_segment_tube(cli, pair, tmp_path):
    trunk = tiny_trunk(tmp_path / "scnn.ckpt")
    torch.manual_seed(0)
    heads = SegmentTubeNet(num_classes=len(TUBE_CLASSES), in_features=trunk.feature_dim, hidden=8)
    make_segment_tube_checkpoint(tmp_path / "scnn.ckpt", heads, TUBE_CLASSES, tmp_path / "st.ckpt")
    _both(cli, pair, lambda src, out: ["segment-tube", src, "--weights", tmp_path / "st.ckpt",
                                       "-o", out, "--rounds", "1", "--superpixels", "40", "-q"],
          "v.tube.labels.h5")


def test_training_reads_the_same_frames(cli, pair, tmp_path):
    """train scnn (proposal stage, a few iterations) from frames files: the same weights."""
    d, _, _ = pair
    synth = d / "synth"
    weights = []
    for codec in ("jpeg", "lz4"):
        videos = tmp_path / codec
        for v in sorted((synth / "videos").glob("*.mp4")):
            r = cli("extract-frames", v, "-o", videos / f"{v.stem}.frames.h5", "--codec", codec, "-q")
            assert r.exit_code == 0, r.output
        if codec == "lz4":  # the twins of the JPEG files, not frames decoded afresh
            for f in sorted(videos.glob("*.h5")):
                f.unlink()
                _lossless_twin(tmp_path / "jpeg" / f.name, f)
        r = cli("train", "scnn", "--stage", "proposal", "--data", synth, "--videos", videos,
                "-o", tmp_path / f"run_{codec}", "--cache", tmp_path / f"cache_{codec}",
                "--frame-size", "32x24", "--crop", "24x32", "--val-fraction", "0", "--iterations", "2",
                "--recipe", "synthetic", "--width", "0.0625", "--batch-size", "4", "--threads", "1",
                "--device", "cpu", "--seed", "1", "-q")
        assert r.exit_code == 0, r.output
        weights.append(torch.load(tmp_path / f"run_{codec}" / "last.ckpt", weights_only=True)["state_dict"])
    assert weights[0].keys() == weights[1].keys()
    for k in weights[0]:
        assert torch.equal(weights[0][k], weights[1][k]), k
