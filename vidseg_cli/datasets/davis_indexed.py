"""DAVIS 2017 indexed masks: several objects per sequence in one PNG per frame.

DAVIS 2017 annotations (`Annotations/480p/SEQ/00000.png`, `Annotations_unsupervised/480p`
for the unsupervised task) are palette PNGs whose pixel values are object indices: 0
background, 1..N the objects, 255 void (pixels left out of the scores). Results are PNGs
in the same form (`RESULTS/SEQ/00000.png`, palette or grey, values the predicted object
or proposal indices). DAVIS 2016's annotations are grey 0/255 images of one object: a
ground truth is read as DAVIS 2017 when its PNGs are palette images.

The values are read as stored (PIL, as the DAVIS scorer reads them), not as colours.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from vidseg_cli.datasets.masks import mask_frame_files, png_files
from vidseg_cli.errors import InputError

__all__ = ["VOID", "is_indexed_sequence", "read_indexed_sequence"]

VOID = 255


def _open(path: Path) -> np.ndarray:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            if im.mode not in ("P", "L", "1", "I", "I;16"):
                raise InputError(path, f"a {im.mode} image; expected indexed masks (a palette or "
                                       "grey PNG whose values are object indices)")
            return np.array(im)
    except (OSError, UnidentifiedImageError) as e:
        raise InputError(path, f"not a readable PNG image ({e})") from None


def is_indexed_sequence(folder: str | os.PathLike) -> bool:
    """Whether a ground-truth sequence folder holds DAVIS 2017 palette masks."""
    from PIL import Image

    files = png_files(Path(folder))
    if not files:
        return False
    try:
        with Image.open(files[0]) as im:
            return im.mode == "P"
    except OSError:
        return False


def read_indexed_sequence(
    folder: str | os.PathLike,
    frame_ids: Sequence[str] | None = None,
    size: tuple[int, int] | None = None,
) -> tuple[np.ndarray, list[str]]:
    """(T, H, W) int32 index masks of a sequence and their frame ids. `frame_ids`: read
    exactly `ID.png` for each (a result read against the ground truth's frames; a missing
    one is an error). `size`: (H, W) every frame must have."""
    folder = Path(folder)
    files = mask_frame_files(folder, frame_ids)
    out = None
    for i, f in enumerate(files):
        m = _open(f)
        if m.ndim != 2:
            raise InputError(f, f"expected a single-channel mask, found shape {m.shape}")
        want = size if size is not None else (m.shape if out is None else out.shape[1:])
        if m.shape != tuple(want):
            raise InputError(f, f"mask is {m.shape[1]}x{m.shape[0]} (WxH), expected "
                                f"{want[1]}x{want[0]}")
        if out is None:
            out = np.empty((len(files), *m.shape), np.int32)
        out[i] = m
    return out, [f.stem for f in files]
