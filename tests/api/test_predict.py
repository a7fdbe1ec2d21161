"""api/predict.py: the roles checked before any work, the files named as the stages name
them, and what is read back (api/predict_read.py) from hand-made files."""

from __future__ import annotations

import numpy as np
import pytest

from tests.conftest import SAMPLE
from vidseg_cli import store
from vidseg_cli.api import predict
from vidseg_cli.api.predict_read import detections_in_seconds, pixel_shares
from vidseg_cli.errors import InputError

W = SAMPLE / "weights"


def _opts(pipeline, **weights):
    return predict.Options(pipeline=pipeline, weights={k: str(v) for k, v in weights.items()})


def test_every_pipeline_names_its_roles_stages_and_post_processing():
    assert set(predict.PIPELINES) == {"fsn", "wfsn", "scnn", "3dfcn", "sep3d", "segment-tube"}
    assert predict.PIPELINES.get("fsn").required() == ["backbone", "fsn"]
    assert predict.PIPELINES.get("scnn").required() == ["proposal", "localization"]
    assert predict.PIPELINES.get("3dfcn").required() == ["model"]  # hmm is optional
    for name in predict.PIPELINES:
        p = predict.PIPELINES.get(name)
        assert p.stages.startswith("extract-frames") and p.post and p.outputs[0] != "frames"
        assert all(r.source and r.what for r in p.roles)


@pytest.mark.parametrize("opts, text", [
    (_opts("i3d"), "unknown pipeline 'i3d' (known: 3dfcn, fsn"),
    (_opts("fsn", backbone=W / "backbone_synth.ckpt"),
     "needs --weights fsn=PATH, the FSN temporal CNN"),
    (_opts("scnn"), "--weights proposal=PATH, the S-CNN proposal network of propose (from `vidseg "
                    "train scnn --stage proposal`"),
    (_opts("sep3d", model=W / "sep3d_synth.ckpt", hmm="h.h5"), "has no role 'hmm' (its roles: model"),
])
def test_bad_roles_are_value_errors_naming_what_is_missing(opts, text):
    with pytest.raises(ValueError) as e:
        predict.load(opts)
    assert text in str(e.value) and "\n" not in str(e.value)


def test_a_missing_weights_file_names_the_file_and_where_to_get_one(tmp_path):
    with pytest.raises(InputError) as e:
        predict.check(_opts("3dfcn", model=tmp_path / "none.ckpt"))
    assert str(e.value).startswith(f"{tmp_path / 'none.ckpt'}: no such weights file")
    assert "vidseg train segment --model 3dfcn-8s" in str(e.value)


def test_a_checkpoint_of_another_model_is_refused_at_load():
    with pytest.raises(InputError, match="a sep3d checkpoint; the 3dfcn pipeline takes 3dfcn-8s or "
                                         "3dfcn-32s"):
        predict.load(_opts("3dfcn", model=W / "sep3d_synth.ckpt"))


def test_an_hmm_of_other_classes_is_refused_at_load(tmp_path):
    hmm = tmp_path / "hmm.h5"
    store.write_hmm(hmm, [0.5, 0.3, 0.2], np.full((3, 3), 1 / 3), ["background", "walk", "run"])
    with pytest.raises(InputError, match="differ from the model's"):
        predict.load(_opts("3dfcn", model=W / "3dfcn8s_synth.ckpt", hmm=hmm))


def test_output_paths_are_the_stages_names(tmp_path):
    p = predict.output_paths("fsn", tmp_path, "bikes")
    assert {t: f.name for t, f in p.items()} == {
        "detections": "bikes.detections.h5", "frames": "bikes.frames.h5",
        "features": "bikes.features.h5", "frame_scores": "bikes.frame_scores.h5"}
    assert list(p)[0] == "detections"  # the main output, which run_batch names
    assert "smoothed.scores" not in predict.output_paths("3dfcn", tmp_path, "v")
    with_hmm = predict.output_paths("3dfcn", tmp_path, "v", {"model": "m", "hmm": "h"})
    assert with_hmm["smoothed.scores"].name == "v.smoothed.scores.h5"


def _frames(path, t, t0, fps=10.0):
    with store.FramesWriter(path, height=8, width=8, video_id="clip", fps=fps) as fw:
        for i in range(t):
            fw.append(np.zeros((8, 8, 3), np.uint8), t0 + i / fps)


def test_detections_are_read_in_the_source_videos_seconds_best_first(tmp_path):
    frames = tmp_path / "clip.frames.h5"
    _frames(frames, 40, t0=2.0)  # a clip cut from second 2
    det = tmp_path / "clip.detections.h5"
    store.write_detections(det, [[5, 15], [0, 40]], [2, 1], [0.4, 0.9], video_id="clip",
                           num_frames=40, fps=10.0, class_names=["background", "jump", "run"],
                           inputs=[str(frames)])
    assert detections_in_seconds(det) == [
        {"start": 2.0, "end": 6.0, "label": "jump", "score": 0.9},  # the end frame 40: 5.9 + 0.1
        {"start": 2.5, "end": 3.5, "label": "run", "score": 0.4}]


def test_pixel_shares_of_labels_and_of_scores(tmp_path):
    lab = np.zeros((4, 2, 5), np.uint8)
    lab[1, 0, :2] = 1  # 2 pixels of 'jump' in frame 1
    lab[3, :, :] = 2  # all of frame 3 is 'run'
    names = ["background", "jump", "run"]
    path = tmp_path / "v.labels.h5"
    store.write_labels(path, lab, class_names=names, video_id="v", num_frames=4, fps=5.0)
    px = pixel_shares(path)
    assert px["frames"] == 4 and px["action_frames"] == 2
    assert px["class_shares"] == {"background": 0.7, "jump": 0.05, "run": 0.25}
    probs = np.eye(3, dtype=np.float32)[lab].transpose(0, 3, 1, 2)  # T x C x H x W
    spath = tmp_path / "v.scores.h5"
    store.write_scores(spath, probs, class_names=names, video_id="v", num_frames=4, fps=5.0)
    assert pixel_shares(spath) == {**px, "file": str(spath)}
