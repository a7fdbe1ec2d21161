"""Pairing inputs by video_id (DESIGN.md): a file's `video_id` attribute names its video,
and files of different kinds that share it belong together.

    ids = read_video_ids(score_files)                       # one id per file, in order
    frames = index_by_video_id(frame_files, what="frames")  # video_id -> file
    for scores, frame in pair_by_video_id(score_files, frames, what="frames", among="--frames"):
        ...

A file that cannot be read gives the id in its name (`video_id_of`): the stage that opens
it later reports it as a failed input with its own error, rather than failing here.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path

from vidseg_cli.errors import InputError
from vidseg_cli.store import video_id_of
from vidseg_cli.store.base import StoreError
from vidseg_cli.store.io import open_record

PathLike = str | os.PathLike

__all__ = ["index_by_video_id", "pair_by_video_id", "partner_of", "read_ids_and_kinds",
           "read_video_ids"]


def read_ids_and_kinds(paths: Sequence[PathLike], kind: str | None = None,
                       fallback_kind: str | None = None,
                       strict: bool = False) -> tuple[list[str], list[str | None]]:
    """Each file's (video_id, kind); an unreadable file or one of another `kind` gives the
    id in its name and `fallback_kind` (with `strict`, its StoreError is raised)."""
    ids: list[str] = []
    kinds: list[str | None] = []
    for p in paths:
        try:
            with open_record(p, kind) as rec:
                ids.append(str(rec.video_id))
                kinds.append(rec.kind)
        except (StoreError, OSError):
            if strict:
                raise
            ids.append(video_id_of(p))
            kinds.append(fallback_kind)
    return ids, kinds


def read_video_ids(paths: Sequence[PathLike], kind: str | None = None) -> list[str]:
    """Each file's video_id (`read_ids_and_kinds`), in order."""
    return read_ids_and_kinds(paths, kind)[0]


def index_by_video_id(paths: Sequence[PathLike], ids: Sequence[str] | None = None,
                      what: str = "") -> dict[str, Path]:
    """`video_id -> file`; two files of one video are an InputError naming the second.
    `ids` defaults to `read_video_ids(paths)`; `what` names the files in the message."""
    ids = read_video_ids(paths) if ids is None else ids
    out: dict[str, Path] = {}
    for p, vid in zip(paths, ids):
        if vid in out:
            noun = f"{what} file" if what else "file"
            raise InputError(p, f"a second {noun} for video '{vid}' (first: {out[vid]})")
        out[vid] = Path(p)
    return out


def pair_by_video_id(paths: Sequence[PathLike], partners: Mapping[str, Path],
                     ids: Sequence[str] | None = None, what: str = "",
                     among: str = "") -> list[tuple[Path, Path]]:
    """(file, partner) for each of `paths`, the partner found by the file's video_id in
    `partners` (from `index_by_video_id`). A file without one is an InputError naming it:
    "no <what> file for video '<id>' among <among>"."""
    ids = read_video_ids(paths) if ids is None else ids
    out = []
    for p, vid in zip(paths, ids):
        out.append((Path(p), partner_of(p, vid, partners, what, among)))
    return out


def partner_of(path: PathLike, video_id: str, partners: Mapping[str, Path], what: str = "",
               among: str = "") -> Path:
    """The partner of one file (`pair_by_video_id`), for stages that pair file by file."""
    if video_id not in partners:
        noun = f"{what} file" if what else "file"
        where = f" among {among}" if among else ""
        raise InputError(path, f"no {noun} for video '{video_id}'{where}")
    return partners[video_id]
