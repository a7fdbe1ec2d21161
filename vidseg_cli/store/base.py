"""The HDF5 contract shared by every kind: root attributes, atomic writes, validation.

Every file carries `vidseg_kind`, `vidseg_schema`, `video_id`, `num_frames`, `fps`, `uid`
and provenance (`vidseg_version`, `command`, `created`, `inputs`). A reader checks kind,
schema, attributes and dataset shapes against the kind's spec (store/kinds.py) and raises
`StoreError` with one line naming the file, what was expected and what was found.
"""

from __future__ import annotations

import contextlib
import json
import os
import uuid
from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from vidseg_cli import __version__
from vidseg_cli.cmdline import command_line
from vidseg_cli.core.fs import SpaceGuard, atomic_path
from vidseg_cli.errors import InputError
from vidseg_cli.store.kinds import KINDS, KindSpec

# The schema of every kind that has not changed since the first; a kind that has carries
# its own (KindSpec.schema: frames is 2, JPEG frames).
SCHEMA_VERSION = 1

# Root attributes every file must carry (besides the optional class_names and extras).
REQUIRED_ATTRS = (
    "vidseg_kind",
    "vidseg_schema",
    "video_id",
    "num_frames",
    "fps",
    "uid",
    "vidseg_version",
    "command",
    "created",
    "inputs",
)


class StoreError(InputError):
    """A file that breaks the contract. `str()` is the one line shown to the user:
    `<file>: <problem>`."""


def _shape_text(spec_shape: Sequence[int | str], bound: Mapping[str, int]) -> str:
    parts = []
    for d in spec_shape:
        if isinstance(d, str) and d in bound:
            parts.append(f"{d}={bound[d]}")
        else:
            parts.append(str(d))
    return "(" + ", ".join(parts) + ("," if len(parts) == 1 else "") + ")"


def bind_names_attrs(
    path: str | os.PathLike,
    spec: KindSpec,
    present: Sequence[str],
    attrs: Mapping[str, Any],
    bound: dict[str, int],
) -> dict[str, int]:
    """Bind the symbols of `spec.names_attrs` that the `present` datasets use to the length
    of their attribute, which must then be a non-empty list of names."""
    for symbol, attr in spec.names_attrs.items():
        users = [n for n in spec.datasets if n in present and symbol in spec.datasets[n].shape]
        if not users:
            continue
        names = attrs.get(attr)
        if isinstance(names, str):
            names = [names]
        if not names or not all(isinstance(x, str) for x in names):
            raise StoreError(
                path, f"dataset '{users[0]}' needs a root attribute '{attr}' (a list of names), "
                f"found {names!r}"
            )
        bound[symbol] = len(names)
    return bound


def check_shapes(
    path: str | os.PathLike,
    spec: KindSpec,
    shapes: Mapping[str, tuple[int, ...]],
    dtypes: Mapping[str, np.dtype],
    bound: dict[str, int],
    attrs: Mapping[str, Any] | None = None,
) -> dict[str, int]:
    """Check datasets against the spec, binding symbolic sizes; return the bindings.
    With `attrs` (the root attributes), symbols of `spec.names_attrs` are bound first."""
    if attrs is not None:
        bind_names_attrs(path, spec, list(shapes), attrs, bound)
    for name, ds in spec.datasets.items():
        if name not in shapes:
            if ds.optional:
                continue
            found = ", ".join(sorted(shapes)) or "none"
            raise StoreError(
                path, f"missing dataset '{name}' of a {spec.name} file (datasets found: {found})"
            )
        shape = shapes[name]
        want = _shape_text(ds.shape, bound)
        if len(shape) != len(ds.shape):
            raise StoreError(
                path, f"dataset '{name}': expected {len(ds.shape)}-d shape {want}, found {shape}"
            )
        for d, n in zip(ds.shape, shape):
            if isinstance(d, int):
                ok = d == n
            elif d in bound:
                ok = bound[d] == n
            else:
                bound[d] = n
                ok = True
            if not ok:
                raise StoreError(
                    path, f"dataset '{name}': expected shape {_shape_text(ds.shape, bound)}, found {shape}"
                )
        if dtypes[name].kind not in ds.dtype_kinds:
            raise StoreError(
                path,
                f"dataset '{name}': expected dtype of kind '{ds.dtype_kinds}', found {dtypes[name]}",
            )
    return bound


def _attr_value(v: Any) -> Any:
    """h5py attribute value to plain Python."""
    if isinstance(v, bytes):
        return v.decode("utf-8")
    if isinstance(v, np.ndarray):
        return [_attr_value(x) for x in v.tolist()] if v.dtype.kind in "OSU" else v.tolist()
    if isinstance(v, np.generic):
        return v.item()
    return v


def read_attrs(f: h5py.File) -> dict[str, Any]:
    out = {k: _attr_value(v) for k, v in f.attrs.items()}
    if isinstance(out.get("inputs"), str):
        try:
            out["inputs"] = json.loads(out["inputs"])
        except json.JSONDecodeError:
            pass
    if isinstance(out.get("class_names"), str):
        out["class_names"] = [out["class_names"]]
    return out


def validate_open_file(path: str | os.PathLike, f: h5py.File, kind: str | None) -> dict[str, Any]:
    """Check root attributes, kind, schema and datasets of an open file; return attrs."""
    attrs = read_attrs(f)
    found_kind = attrs.get("vidseg_kind")
    if found_kind is None:
        raise StoreError(path, "not a vidseg file (no 'vidseg_kind' attribute)")
    if kind is not None and found_kind != kind:
        raise StoreError(path, f"expected a {kind} file, found a {found_kind} file")
    if found_kind not in KINDS:
        raise StoreError(path, f"unknown kind '{found_kind}' (known: {', '.join(KINDS)})")
    spec = KINDS[found_kind]
    schema = attrs.get("vidseg_schema")
    if not isinstance(schema, int):
        raise StoreError(path, f"'vidseg_schema' should be an integer, found {schema!r}")
    if schema > spec.schema:
        raise StoreError(
            path,
            f"schema {schema} is newer than this vidseg ({__version__}) reads "
            f"(a {found_kind} file of schema <= {spec.schema}); upgrade vidseg",
        )
    missing = [a for a in REQUIRED_ATTRS if a not in attrs]
    if missing:
        raise StoreError(path, f"missing root attribute(s): {', '.join(missing)}")
    bound: dict[str, int] = {}
    if spec.binds_num_frames:
        bound[spec.binds_num_frames] = int(attrs["num_frames"])
    if spec.needs_class_names:
        names = attrs.get("class_names")
        if not names:
            raise StoreError(path, f"a {found_kind} file needs a 'class_names' attribute")
        bound["C"] = len(names)
    shapes = {k: v.shape for k, v in f.items() if isinstance(v, h5py.Dataset)}
    dtypes = {k: v.dtype for k, v in f.items() if isinstance(v, h5py.Dataset)}
    if found_kind == "frames" and "frames" in shapes:  # checked as the frames it decodes to
        from vidseg_cli.store.frames import decoded_layout

        shapes["frames"], dtypes["frames"] = decoded_layout(path, f["frames"])
    check_shapes(path, spec, shapes, dtypes, bound, attrs)
    return attrs


def open_h5(path: str | os.PathLike) -> h5py.File:
    """Open for reading, turning every way of not being an HDF5 file into a StoreError."""
    p = Path(path)
    if not p.exists():
        raise StoreError(path, "no such file")
    if p.is_dir():
        raise StoreError(path, "is a folder, expected an HDF5 file")
    try:
        return h5py.File(p, "r")
    except OSError as e:
        raise StoreError(path, f"not a readable HDF5 file ({e.__class__.__name__}: {e})") from None


@contextlib.contextmanager
def open_checked(path: str | os.PathLike, kind: str | None = None) -> Iterator[tuple[h5py.File, dict]]:
    """Open and validate a file of `kind` (any kind if None); yield (file, attrs)."""
    f = open_h5(path)
    try:
        attrs = validate_open_file(path, f, kind)
        yield f, attrs
    finally:
        f.close()


def peek_kind(path: str | os.PathLike) -> str:
    """The kind of a vidseg file, without validating the rest."""
    with open_h5(path) as f:
        kind = _attr_value(f.attrs.get("vidseg_kind"))
    if kind is None:
        raise StoreError(path, "not a vidseg file (no 'vidseg_kind' attribute)")
    return kind


def input_record(path: str | os.PathLike) -> dict[str, str | None]:
    """`{"path", "uid"}` of an input, for provenance; uid is None for non-vidseg inputs."""
    p = Path(path)
    uid = None
    if p.is_file() and h5py.is_hdf5(p):
        with contextlib.suppress(OSError), h5py.File(p, "r") as f:
            uid = _attr_value(f.attrs.get("uid"))
    return {"path": str(p.resolve()) if p.exists() else str(p), "uid": uid}


def provenance_attrs(
    *,
    kind: str,
    video_id: str,
    num_frames: int,
    fps: float,
    inputs: Sequence[str | os.PathLike | Mapping] = (),
    command: Sequence[str] | str | None = None,
    class_names: Sequence[str] | None = None,
) -> dict[str, Any]:
    """The root attributes of a new file."""
    recs = [dict(i) if isinstance(i, Mapping) else input_record(i) for i in inputs]
    if command is None:
        command = command_line()
    attrs: dict[str, Any] = {
        "vidseg_kind": kind,
        "vidseg_schema": KINDS[kind].schema,
        "video_id": str(video_id),
        "num_frames": int(num_frames),
        "fps": float(fps),
        "uid": uuid.uuid4().hex,
        "vidseg_version": __version__,
        "command": command if isinstance(command, str) else " ".join(map(str, command)),
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "inputs": json.dumps(recs),
    }
    if class_names is not None:
        attrs["class_names"] = [str(c) for c in class_names]
    return attrs


def set_attrs(f: h5py.File, attrs: Mapping[str, Any]) -> None:
    for k, v in attrs.items():
        if isinstance(v, (list, tuple)) and (not v or isinstance(v[0], str)):
            f.attrs.create(k, np.array(v, dtype=object), dtype=h5py.string_dtype())
        elif isinstance(v, (dict,)):
            f.attrs[k] = json.dumps(v)
        elif v is None:
            continue
        else:
            f.attrs[k] = v


@contextlib.contextmanager
def atomic_h5(path: str | os.PathLike) -> Iterator[h5py.File]:
    """Write an HDF5 file under a temporary name in the same folder; rename when complete
    (`core.fs.atomic_path`).

    An exception (or an interrupt) removes the temporary file, so no stage ever finds a
    half-written output under the final name.
    """
    with atomic_path(path) as tmp:
        guard = SpaceGuard(tmp)
        try:
            f = h5py.File(guard, "w")
            f.space_guard = guard  # streaming writers check it between writes
            try:
                yield f
            finally:
                f.close()
        finally:
            guard.close()
        guard.check(path)
