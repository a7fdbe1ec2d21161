"""hmm-smooth and crf-refine on real J-HMDB frames and their puppet mask.

The true mask is turned into the kind of soft scores a segmentation network gives, and
the refinements must bring the argmax closer to the mask:

- crf-refine: coarse (stride 4), blobby, over-extended scores, as an FCN's upsampled
  output is; the dense CRF on the real frames pulls the boundary to the image edges.
- hmm-smooth: per-pixel evidence that flickers over time (in some frames the evidence for
  the action nearly vanishes); the HMM fitted from the mask carries the label through.
"""

from __future__ import annotations

import numpy as np
import pytest

from vidseg_cli import store

VIDEO = "Goal_Keeping_Tips_catch_f_cm_np1_fr_med_2"


def iou(a: np.ndarray, b: np.ndarray) -> float:
    return float((a & b).sum() / (a | b).sum())


@pytest.fixture(scope="module")
def jhmdb(refdata):
    import scipy.io

    frames = refdata / "jhmdb" / "frames" / VIDEO
    mat = refdata / "jhmdb" / "puppet_mask" / "catch" / f"{VIDEO}.mat"
    if not frames.is_dir() or not mat.is_file():
        pytest.skip("J-HMDB reference clip not found")
    gt = np.moveaxis(scipy.io.loadmat(str(mat))["part_mask"], 2, 0) > 0  # T x H x W
    assert gt.shape == (40, 240, 320)
    return frames, mat, gt


def test_crf_refine_raises_iou_on_real_frames(cli, jhmdb, tmp_path):
    import cv2

    from vidseg_cli.stages.crf import upsample_to

    frames_dir, _, gt = jhmdb
    keep = list(range(0, 40, 5))  # 8 frames keep the test short
    clip = tmp_path / VIDEO
    clip.mkdir()
    pngs = sorted(frames_dir.glob("*.png"))
    for i in keep:
        (clip / pngs[i].name).symlink_to(pngs[i])
    res = cli("extract-frames", clip, "-o", tmp_path / "frames.h5")
    assert res.exit_code == 0, res.stderr
    gt = gt[keep]

    s, rng = 4, np.random.default_rng(0)
    t, h, w = gt.shape
    probs = np.empty((t, 2, h // s, w // s), np.float32)  # T x C x H/4 x W/4
    for i in range(t):
        blurred = cv2.GaussianBlur(gt[i].astype(np.float32), (0, 0), 3)
        coarse = cv2.resize(blurred, (w // s, h // s), interpolation=cv2.INTER_AREA)
        logit = 20 * (coarse - 0.1) + rng.normal(0, 1, coarse.shape)  # over-extended blob
        probs[i, 1] = 1 / (1 + np.exp(-logit))
        probs[i, 0] = 1 - probs[i, 1]
    store.write_scores(tmp_path / "s.scores.h5", probs, class_names=["background", "catch"],
                       video_id=VIDEO, num_frames=t, fps=30.0, attrs={"spatial_stride": s})
    res = cli("crf-refine", tmp_path / "s.scores.h5", "--frames", tmp_path / "frames.h5",
              "-o", tmp_path / "l.h5", "--jobs", "2")
    assert res.exit_code == 0, res.stderr

    refined = store.read_labels(tmp_path / "l.h5")["labels"] == 1
    coarse_fg = np.stack([upsample_to(probs[i], s, (h, w)).argmax(0) == 1 for i in range(t)])
    before, after = iou(coarse_fg, gt), iou(refined, gt)
    print(f"IoU with the mask: upsampled scores {before:.3f}, CRF {after:.3f}")
    assert after > before + 0.1, (before, after)


def test_hmm_smooth_raises_iou_on_flickering_scores(cli, jhmdb, tmp_path):
    import cv2
    import torch

    from vidseg_cli.datasets.masks import JHMDB_CLASS_NAMES
    from vidseg_cli.stages.hmm.recursions import prior_sequence

    _, mat, gt = jhmdb
    res = cli("hmm-fit", mat, "-o", tmp_path / "hmm.h5", "-q")
    assert res.exit_code == 0, res.stderr
    model = store.read_hmm(tmp_path / "hmm.h5")
    catch = JHMDB_CLASS_NAMES.index("catch")

    # Evidence (a log-likelihood ratio of catch vs background per pixel), blurred at the
    # boundary and noisy; in ~30% of the frames it nearly vanishes (flicker).
    t, h, w = gt.shape
    rng = np.random.default_rng(0)
    evidence = np.stack([12 * (cv2.GaussianBlur(g.astype(np.float32), (0, 0), 2) - 0.5) for g in gt])
    evidence += rng.normal(0, 1, evidence.shape)
    flicker = rng.random(t) < 0.3
    evidence[flicker] = 0.1 * evidence[flicker] + rng.normal(0, 1, (flicker.sum(), h, w))
    # A network's softmax is a posterior: likelihood times the class prior P(l_t) of
    # Eq. (4), which Eq. (2) divides out again. Other classes get little evidence.
    log_lik = np.full((t, len(JHMDB_CLASS_NAMES), h, w), -4.0, np.float32)  # T x C x H x W
    log_lik[:, 0] = 0.0
    log_lik[:, catch] = evidence
    p = prior_sequence(model["prior"], model["transition"], t)  # T x C
    logits = log_lik + np.log(p)[:, :, None, None].astype(np.float32)
    logits -= logits.max(axis=1, keepdims=True)
    probs = np.exp(logits)
    probs /= probs.sum(axis=1, keepdims=True)
    probs = torch.from_numpy(probs).half().numpy()  # as segment-3d may store them
    store.write_scores(tmp_path / "s.scores.h5", probs, class_names=JHMDB_CLASS_NAMES,
                       video_id=VIDEO, num_frames=t, fps=30.0)
    del logits, log_lik

    res = cli("hmm-smooth", tmp_path / "s.scores.h5", "--hmm", tmp_path / "hmm.h5",
              "-o", tmp_path / "b.scores.h5", "--device", "cpu")
    assert res.exit_code == 0, res.stderr
    belief = store.read_scores(tmp_path / "b.scores.h5")["probs"]
    assert belief.dtype == np.float16
    sums = torch.from_numpy(belief).float().sum(dim=1).numpy()
    np.testing.assert_allclose(sums, 1, atol=2e-3)

    raw_fg = probs.argmax(axis=1) == catch
    smooth_fg = belief.argmax(axis=1) == catch
    before, after = iou(raw_fg, gt), iou(smooth_fg, gt)
    print(f"IoU with the mask: scores {before:.3f}, HMM belief {after:.3f}")
    assert after > before + 0.15, (before, after)
    # The gain comes from the flickering frames, and the steady ones don't lose.
    assert iou(smooth_fg[flicker], gt[flicker]) > iou(raw_fg[flicker], gt[flicker]) + 0.3
    assert iou(smooth_fg[~flicker], gt[~flicker]) > iou(raw_fg[~flicker], gt[~flicker]) - 0.02
