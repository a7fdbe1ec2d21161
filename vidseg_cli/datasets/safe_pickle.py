"""Plain data out of a pickle file without running anything it names.

Other tools save their results with `pickle.dump` (ActionFormer's `eval_results.pkl`,
mmaction2's `--dump results.pkl`). `pickle.load` would call whatever callable the file
names, so a file from elsewhere could run any code. `load_plain` reads with an unpickler
whose `find_class` resolves only what numpy arrays and numpy scalars need to be rebuilt
(their reconstructors, `numpy.ndarray`, `numpy.dtype`, `_codecs.encode` for
protocol 2's bytes) and `collections.OrderedDict`;
lists, dicts, tuples, strings, bytes and numbers need no lookup. Any other global (a
class, a function, `os.system`) is refused with one line naming it, before anything runs.

Files written under numpy 1.x name `numpy.core.multiarray`, under numpy 2.x
`numpy._core.multiarray`: both are mapped to the installed numpy.
"""

from __future__ import annotations

import io
import os
import pickle
from typing import Any

from vidseg_cli.errors import InputError

__all__ = ["PLAIN_DATA", "load_plain"]

PLAIN_DATA = "numpy arrays, lists, dicts, numbers and strings"


def _allowed() -> dict[tuple[str, str], Any]:
    import codecs
    from collections import OrderedDict

    import numpy as np

    try:
        from numpy._core import multiarray as ma
        from numpy._core import numeric as nu
    except ImportError:  # numpy 1.x
        from numpy.core import multiarray as ma
        from numpy.core import numeric as nu
    table: dict[tuple[str, str], Any] = {
        ("numpy", "ndarray"): np.ndarray,
        ("numpy", "dtype"): np.dtype,
        ("collections", "OrderedDict"): OrderedDict,
        # protocol 2 writes bytes (an array's buffer) as _codecs.encode(text, "latin1")
        ("_codecs", "encode"): codecs.encode,
    }
    for core in ("numpy.core", "numpy._core"):
        table[(f"{core}.multiarray", "_reconstruct")] = ma._reconstruct
        table[(f"{core}.multiarray", "scalar")] = ma.scalar
        table[(f"{core}.numeric", "_frombuffer")] = nu._frombuffer  # protocol 5 arrays
    return table


class _PlainUnpickler(pickle.Unpickler):
    def __init__(self, fh, path: str):
        super().__init__(fh)
        self.path = path
        self.allowed = _allowed()

    def find_class(self, module: str, name: str):
        try:
            return self.allowed[(module, name)]
        except KeyError:
            raise InputError(self.path, f"the pickle names {module}.{name}, which is not plain "
                                        f"data ({PLAIN_DATA}); refused without running it") from None

    def persistent_load(self, pid):
        raise InputError(self.path, f"the pickle refers to an outside object ({str(pid)[:40]!r}); "
                                    f"only {PLAIN_DATA} are read")


def load_plain(path: str | os.PathLike) -> Any:
    """The object a pickle file holds, if it is built only of plain data; else InputError."""
    path = str(path)
    try:
        with open(path, "rb") as fh:
            data = fh.read()
    except OSError as e:
        raise InputError(path, f"cannot read ({e.strerror})") from None
    try:
        return _PlainUnpickler(io.BytesIO(data), path).load()
    except InputError:
        raise
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, IndexError, KeyError,
            AttributeError, UnicodeDecodeError, MemoryError) as e:
        raise InputError(path, f"not a readable pickle ({e.__class__.__name__}: {e})") from None
