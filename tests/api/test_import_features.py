"""`vidseg import-features`: small files written in each published layout (ActionFormer's
.npy, G-TAD's HDF5 streams, BMN's rescaled CSV with its video_info), centres and seconds
as each set's own loader places them, one-line errors that write nothing, and FSN / WFSN
localize and evaluate run on an imported set."""

from __future__ import annotations

import json

import h5py
import numpy as np
import pytest

from vidseg_cli import store


def _info_json(path, videos: dict):
    """ActivityNet-style metadata as ActionFormer's thumos14.json has it: duration and fps."""
    path.write_text(json.dumps({"database": {v: {"subset": "test", "duration": d, "fps": f,
                                                 "annotations": []} for v, (d, f) in videos.items()}}))
    return path


def test_actionformer_npy_centres_and_seconds(cli, tmp_path):
    src = tmp_path / "i3d_features"
    src.mkdir()
    # 10 s at 30 fps = 300 frames; 16-frame snippets every 4 frames: 72 whole ones, up to 73
    # with their centre inside the video
    feats = np.random.default_rng(0).normal(size=(72, 6)).astype(np.float32)
    np.save(src / "video_test_0000004.npy", feats)
    info = _info_json(tmp_path / "thumos14.json", {"video_test_0000004": (10.0, 30.0)})
    out = tmp_path / "out"
    r = cli("import-features", src, "-o", out, "--snippet", "16", "--stride", "4", "--video-info", info,
            "--backbone", "i3d", "--stream", "rgb+flow", "--json", tmp_path / "s.json")
    assert r.exit_code == 0, r.stderr
    rec = store.read_features(out / "video_test_0000004.features.h5")
    np.testing.assert_array_equal(rec["features"], feats)
    # ActionFormer: t = (i * feat_stride + 0.5 * num_frames) / fps
    np.testing.assert_array_equal(rec["centers"], np.arange(72) * 4 + 8)
    np.testing.assert_allclose(rec["centers"] / rec.fps, (np.arange(72) * 4 + 0.5 * 16) / 30.0)
    assert rec.num_frames == 300 and rec.fps == 30.0 and rec.video_id == "video_test_0000004"
    assert rec.attrs["backbone"] == "i3d" and rec.attrs["snippet"] == 16 and rec.attrs["stride"] == 4
    s = json.loads((tmp_path / "s.json").read_text())
    assert s["results"][0]["snippets"] == 72 and s["results"][0]["rule"] == "snippets"
    # without metadata: --fps, and the shortest video the snippets fit
    r = cli("import-features", src / "video_test_0000004.npy", "-o", tmp_path / "x.h5", "--snippet", "16",
            "--stride", "4", "--fps", "30")
    assert r.exit_code == 0, r.stderr
    assert store.read_features(tmp_path / "x.h5").num_frames == 71 * 4 + 16


def test_gtad_h5_streams_concatenated_and_cut_to_the_shortest(cli, tmp_path):
    rng = np.random.default_rng(1)
    flow = {"video_validation_1": rng.normal(size=(50, 3)), "video_validation_2": rng.normal(size=(40, 3))}
    rgb = {"video_validation_1": rng.normal(size=(50, 2)), "video_validation_2": rng.normal(size=(41, 2))}
    for name, d in (("flow_val.h5", flow), ("rgb_val.h5", rgb)):
        with h5py.File(tmp_path / name, "w") as f:
            for k, v in d.items():
                f[k] = v.astype(np.float32)
    out = tmp_path / "out"
    # G-TAD's THUMOS14 TSN set: a feature per frame (G-TAD itself subsamples every 5th)
    r = cli("import-features", tmp_path / "flow_val.h5", "--with", tmp_path / "rgb_val.h5", "-o", out,
            "--snippet", "1", "--stride", "1", "--fps", "30")
    assert r.exit_code == 0, r.stderr
    assert "streams of 40, 41 rows, cut to 40" in r.stderr
    a = store.read_features(out / "video_validation_1.features.h5")
    np.testing.assert_allclose(a["features"], np.concatenate([flow["video_validation_1"],
                                                              rgb["video_validation_1"]], 1), rtol=1e-6)
    np.testing.assert_array_equal(a["centers"], np.arange(50))
    b = store.read_features(out / "video_validation_2.features.h5")
    assert b["features"].shape == (40, 5) and b.num_frames == 40
    # a video one stream lacks: one line before anything is written
    with h5py.File(tmp_path / "rgb_val.h5", "a") as f:
        del f["video_validation_2"]
    r = cli("import-features", tmp_path / "flow_val.h5", "--with", tmp_path / "rgb_val.h5", "-o",
            tmp_path / "o2", "--snippet", "1", "--stride", "1", "--fps", "30")
    assert r.exit_code == 2 and r.stderr.count("\n") == 1
    assert "has no features for video 'video_validation_2'" in r.stderr
    assert not list((tmp_path / "o2").glob("*.h5")) if (tmp_path / "o2").exists() else True


def test_bmn_rescaled_csv_with_its_video_info(cli, tmp_path):
    src = tmp_path / "csv_mean_100"
    src.mkdir()
    rows = np.random.default_rng(2).normal(size=(10, 4))
    header = ",".join(f"f{i}" for i in range(4))
    (src / "v_abc.csv").write_text(header + "\n" + "\n".join(",".join(f"{x:.6f}" for x in r) for r in rows) + "\n")
    info = tmp_path / "video_info_new.csv"
    # 418 frames in 14.07 s; BSN's 16-frame snippets covered 400 of them
    info.write_text("video,numFrame,seconds,fps,rfps,subset,featureFrame\n"
                    "v_abc,418,14.07,30.0,29.7086,validation,400\n")
    out = tmp_path / "out"
    r = cli("import-features", src, "-o", out, "--video-info", info, "--strip-prefix", "v_")
    assert r.exit_code == 0, r.stderr
    rec = store.read_features(out / "abc.features.h5")
    assert rec.video_id == "abc" and rec.num_frames == 418
    assert rec.fps == pytest.approx(418 / 14.07)  # BSN's rate: frames over seconds
    np.testing.assert_allclose(rec["features"], rows, atol=1e-6)
    # row k stands for the k-th tenth of the 400 covered frames: centre (k + 0.5) * 40
    np.testing.assert_array_equal(rec["centers"], (np.arange(10) + 0.5) * 40)
    # in seconds, BMN's anchors: (k + 0.5) / N * corrected_second, corrected = 400/418 * 14.07
    np.testing.assert_allclose(rec["centers"] / rec.fps, (np.arange(10) + 0.5) / 10 * 400 / 418 * 14.07)
    # BMN's JSON metadata gives the same
    js = tmp_path / "anet_anno_action.json"
    js.write_text(json.dumps({"v_abc": {"duration_second": 14.07, "duration_frame": 418,
                                        "feature_frame": 400, "annotations": []}}))
    r = cli("import-features", src, "-o", tmp_path / "o2", "--video-info", js)
    assert r.exit_code == 0, r.stderr
    np.testing.assert_array_equal(store.read_features(tmp_path / "o2" / "v_abc.features.h5")["centers"],
                                  rec["centers"])


def test_bad_inputs_are_one_line_and_write_nothing(cli, tmp_path):
    src = tmp_path / "f"
    src.mkdir()
    np.save(src / "good.npy", np.ones((72, 3), np.float32))
    np.save(src / "long.npy", np.ones((500, 3), np.float32))  # 500 x 4 frames in a 300-frame video
    info = _info_json(tmp_path / "i.json", {"good": (10.0, 30.0), "long": (10.0, 30.0)})
    out = tmp_path / "out"
    r = cli("import-features", src, "-o", out, "--snippet", "16", "--stride", "4", "--video-info", info)
    assert r.exit_code == 1  # the other video is still imported
    assert (out / "good.features.h5").exists() and not (out / "long.features.h5").exists()
    assert (f"{src / 'long.npy'}: 500 features at stride 4 (snippet 16) do not fit the video's 300 "
            "frames at 30 fps (expected 68 to 73)") in r.stderr
    assert not [p for p in out.iterdir() if p.name.startswith(".vidseg-tmp")]
    one = tmp_path / "one"
    one.mkdir()
    np.save(one / "long.npy", np.ones((500, 3), np.float32))
    cases = [
        (("--snippet", "16", "--stride", "4", "--video-info", info), "do not fit the video's 300 frames"),
        (("--video-info", info), "state --snippet and --stride"),
        (("--snippet", "16", "--stride", "4"), "state --fps, or give --video-info"),
        (("--rescaled", "--fps", "30"), "need each video's frames: give --video-info"),
        (("--snippet", "16", "--stride", "4", "--video-info", _info_json(tmp_path / "j.json", {"x": (1, 30)})),
         "video 'long' is not in"),
    ]
    for args, msg in cases:
        r = cli("import-features", one, "-o", tmp_path / "bad", *args)
        assert r.exit_code == 2 and r.stderr.count("\n") == 1 and msg in r.stderr, (args, r.stderr)
        assert not list((tmp_path / "bad").glob("*")) if (tmp_path / "bad").exists() else True
    np.save(one / "long.npy", np.full((5, 3), np.nan, np.float32))
    r = cli("import-features", one, "-o", tmp_path / "bad", "--snippet", "1", "--stride", "1", "--fps", "1")
    assert r.exit_code == 2 and "5 of 5 feature rows hold non-finite values" in r.stderr
    (one / "long.npy").write_bytes(b"junk")
    r = cli("import-features", one, "-o", tmp_path / "bad", "--snippet", "1", "--stride", "1", "--fps", "1")
    assert r.exit_code == 2 and "not a readable .npy array" in r.stderr


def _community_set(root, rng, n_videos=12):
    """An ActionFormer-layout set: 20 s videos at 30 fps, one action each (class a or b),
    16-frame snippets every 4 frames whose feature says which class is at its centre,
    with noise. Ground truth in seconds, half the videos for training."""
    feats_dir = root / "i3d_features"
    feats_dir.mkdir()
    db = {}
    for k in range(n_videos):
        vid = f"video_{k:02d}"
        cls = ("a", "b")[k % 2]
        s = float(rng.uniform(3, 9))
        e = s + float(rng.uniform(4, 8))
        centres = (np.arange(147) * 4 + 8) / 30.0
        onehot = np.zeros((147, 3), np.float32)
        inside = (centres >= s) & (centres < e)
        onehot[~inside, 0] = 1
        onehot[inside, 1 + k % 2] = 1
        f = np.concatenate([onehot, onehot], 1) * 2 + rng.normal(0, 0.3, (147, 6))
        np.save(feats_dir / f"{vid}.npy", f.astype(np.float32))
        db[vid] = {"subset": "training" if k < n_videos // 2 else "test", "duration": 20.0, "fps": 30.0,
                   "annotations": [{"segment": [s, e], "label": cls}]}
    gt = root / "gt.json"
    gt.write_text(json.dumps({"database": db, "taxonomy": ["a", "b"]}))
    return feats_dir, gt


def test_fsn_and_wfsn_localize_and_evaluate_on_an_imported_set(cli, tmp_path):
    src, gt = _community_set(tmp_path, np.random.default_rng(5))
    x = tmp_path / "feat"
    r = cli("import-features", src, "-o", x, "--snippet", "16", "--stride", "4", "--video-info", gt, "-q")
    assert r.exit_code == 0, r.stderr
    train = sorted(x.glob("*.h5"))[:6]
    test = sorted(x.glob("*.h5"))[6:]
    r = cli("train", "fsn", *train, "--gt", gt, "--epochs", "3", "--steps-per-epoch", "30", "--lr", "0.05",
            "--hidden", "32", "--min-action-frames", "0", "-o", tmp_path / "fsn", "-q")
    assert r.exit_code == 0, r.output
    r = cli("train", "wfsn", *train, "--gt", gt, "--epochs", "3", "--steps-per-epoch", "30", "--lr", "0.05",
            "--hidden", "32", "--segments", "40", "-o", tmp_path / "wfsn", "-q")
    assert r.exit_code == 0, r.output
    got = {}
    for method in ("fsn", "wfsn"):
        loc = tmp_path / f"loc_{method}"
        r = cli("localize", *test, "--method", method, "--weights", tmp_path / method / "last.ckpt",
                "-o", loc, "-q")
        assert r.exit_code == 0, r.output
        out = tmp_path / f"{method}.json"
        r = cli("evaluate", *sorted(loc.glob("*.detections.h5")), "--gt", gt, "--subset", "test",
                "--tiou", "0.5", "--json", out)
        assert r.exit_code == 0, r.stderr
        got[method] = json.loads(out.read_text())["mAP"]["0.5"]
    # the features say exactly where the actions are, in seconds only if the centres are
    # right: detections at tIoU 0.5 need the time mapping within a fraction of a second
    assert got["fsn"] > 0.7, got
    assert got["wfsn"] > 0.3, got
