"""Small files for the post-processing tests (hmm-fit, hmm-smooth, crf-refine): labels,
scores, frame scores and frames, random probabilities, and the check that a bad input
gives one error line naming it."""

from __future__ import annotations

import numpy as np

from vidseg_cli import store

NAMES = ["background", "walk", "run"]


def _labels(path, labels, names=NAMES, video_id=None):
    store.write_labels(path, np.asarray(labels, np.uint8), class_names=names,
                       video_id=video_id or path.name.split(".")[0],
                       num_frames=len(labels), fps=25.0)
    return path


def _scores(path, probs, names=NAMES, video_id=None, **attrs):
    probs = np.asarray(probs)
    writer = store.write_scores if probs.ndim == 4 else store.write_frame_scores
    writer(path, probs, class_names=names, video_id=video_id or path.name.split(".")[0],
           num_frames=probs.shape[0], fps=25.0, attrs=attrs or None)
    return path


def _frames(path, t, h, w, video_id=None):
    rng = np.random.default_rng(0)
    with store.FramesWriter(path, height=h, width=w, fps=25.0,
                            video_id=video_id or path.name.split(".")[0]) as fw:
        for i in range(t):
            fw.append(rng.integers(0, 255, (h, w, 3), dtype=np.uint8), i / 25.0)
    return path


def _probs(t, c, h=None, w=None, seed=0):
    rng = np.random.default_rng(seed)
    size = (t, h, w) if h else (t,)
    p = rng.dirichlet(np.ones(c), size=size).astype(np.float32)
    return np.moveaxis(p, -1, 1)  # T x C (x H x W)


def _one_error_line(res, stage, path, text):
    assert res.exit_code == 2, res.output
    lines = [ln for ln in res.stderr.splitlines() if "error" in ln]
    assert len(lines) == 1, res.stderr
    assert lines[0].startswith(f"vidseg {stage}: error: {path}: "), lines[0]
    assert text in lines[0], lines[0]
