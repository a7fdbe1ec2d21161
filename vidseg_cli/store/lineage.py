"""The frames file a file was made from, found through the provenance `inputs` of each
file on the way (DESIGN.md's `inputs`: `{"path", "uid"}`), each checked by uid: a file
changed since it was used is not followed."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

from vidseg_cli.store.base import StoreError
from vidseg_cli.store.io import Record, open_record

__all__ = ["from_frames"]

T = TypeVar("T")
MAX_DEPTH = 4  # frames -> scores -> smoothed scores -> labels, and one more


def from_frames(attrs: Mapping[str, Any], read: Callable[[Record, dict], T],
                depth: int = 0, stale: list[tuple[str, str, str]] | None = None) -> T | None:
    """`read(record, attrs)` of the first frames file among the inputs of a file with these
    root `attrs` (the record as `open_record` gives it: `record["frames"]` decodes),
    followed through intermediate files; None when none is found. Inputs rewritten since
    they were used go to `stale` as (path, recorded uid, found uid)."""
    if depth > MAX_DEPTH:
        return None
    for inp in attrs.get("inputs") or []:
        if not isinstance(inp, dict) or not inp.get("path") or not Path(inp["path"]).is_file():
            continue
        try:
            with open_record(inp["path"]) as rec:
                a = rec.attrs
                if inp.get("uid") and a.get("uid") != inp["uid"]:
                    if stale is not None:
                        stale.append((inp["path"], inp["uid"], a.get("uid")))
                    continue
                if a["vidseg_kind"] == "frames":
                    return read(rec, a)
                found = from_frames(a, read, depth + 1, stale)
        except (StoreError, OSError):
            continue
        if found is not None:
            return found
    return None
