"""store.pairing: inputs paired by their video_id attribute, not by file name."""

from __future__ import annotations

import numpy as np
import pytest

from vidseg_cli import store
from vidseg_cli.errors import InputError
from vidseg_cli.store.pairing import (
    index_by_video_id,
    pair_by_video_id,
    read_ids_and_kinds,
    read_video_ids,
)


def _labels(path, video_id):
    store.write_labels(path, np.zeros((2, 4, 4), np.uint8), class_names=["background", "a"],
                       video_id=video_id, num_frames=2, fps=25.0)
    return path


def test_ids_come_from_the_attribute_and_a_bad_file_from_its_name(tmp_path):
    a = _labels(tmp_path / "x.labels.h5", "clip_a")
    bad = tmp_path / "clip_b.labels.h5"
    bad.write_bytes(b"not hdf5")
    assert read_video_ids([a, bad]) == ["clip_a", "clip_b"]
    assert read_ids_and_kinds([a, bad], fallback_kind="labels") == (["clip_a", "clip_b"],
                                                                    ["labels", "labels"])
    with pytest.raises(store.StoreError):
        read_ids_and_kinds([bad], strict=True)


def test_pairs_by_video_id_whatever_the_names(tmp_path):
    a = _labels(tmp_path / "one.labels.h5", "v1")
    b = _labels(tmp_path / "two.labels.h5", "v2")
    (tmp_path / "p").mkdir()
    p1 = _labels(tmp_path / "p" / "zz.labels.h5", "v2")
    p2 = _labels(tmp_path / "p" / "yy.labels.h5", "v1")
    partners = index_by_video_id([p1, p2], what="frames")
    assert pair_by_video_id([a, b], partners) == [(a, p2), (b, p1)]


def test_duplicates_and_missing_partners_are_one_line_naming_the_file(tmp_path):
    a = _labels(tmp_path / "a.labels.h5", "v1")
    b = _labels(tmp_path / "b.labels.h5", "v1")
    with pytest.raises(InputError, match=r"b\.labels\.h5: a second frames file for video 'v1' "
                                         r"\(first: .*a\.labels\.h5\)"):
        index_by_video_id([a, b], what="frames")
    with pytest.raises(InputError, match="no frames file for video 'v1' among --frames"):
        pair_by_video_id([a], {}, what="frames", among="--frames")
