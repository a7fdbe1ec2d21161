"""The running command as provenance records it (light: importable from --help paths)."""

from __future__ import annotations

import os
import sys


def command_line() -> str:
    """The command that is running, as a user would type it (`vidseg STAGE ...`), for the
    `command` provenance attribute; a non-vidseg program records its own argv."""
    prog = os.path.basename(sys.argv[0]) if sys.argv and sys.argv[0] else "python"
    if prog in ("vidseg", "main.py", "__main__.py"):
        prog = "vidseg"
    return " ".join([prog, *sys.argv[1:]])
