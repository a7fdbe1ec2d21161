"""Site defaults for sbatch (account, partition, constraints): nothing is built in.

Read, in this order (later wins, and `vidseg submit`'s own options win over both):
the config file `$VIDSEG_SBATCH_CONFIG`, else `$XDG_CONFIG_HOME/vidseg/sbatch`
(`~/.config/vidseg/sbatch`): one sbatch option per line (`--account=abc`), `#` comments;
then the environment variable `VIDSEG_SBATCH_ARGS` (shell words: `--account=abc -p gpu`).
"""

from __future__ import annotations

import os
import shlex
from pathlib import Path

from vidseg_cli.cluster.plan import PlanError


def config_file() -> Path:
    if os.environ.get("VIDSEG_SBATCH_CONFIG"):
        return Path(os.environ["VIDSEG_SBATCH_CONFIG"])
    base = os.environ.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")
    return Path(base) / "vidseg" / "sbatch"


def site_args() -> list[str]:
    args: list[str] = []
    path = config_file()
    if path.is_file():
        try:
            for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
                line = line.split("#", 1)[0].strip()
                if line:
                    args.extend(_words(line, f"{path}:{n}"))
        except OSError as e:
            raise PlanError(f"{path}: cannot read ({e.strerror})") from None
    env = os.environ.get("VIDSEG_SBATCH_ARGS", "")
    if env.strip():
        args.extend(_words(env, "VIDSEG_SBATCH_ARGS"))
    return args


def _words(text: str, where: str) -> list[str]:
    """Shell words as single sbatch options: `-p gpu` -> `-pgpu`, `--time 1:00` ->
    `--time=1:00` (getopt reads both), so each is one `#SBATCH` line."""
    try:
        words = shlex.split(text)
    except ValueError as e:
        raise PlanError(f"{where}: {e}") from None
    out: list[str] = []
    i = 0
    while i < len(words):
        w = words[i]
        if not w.startswith("-"):
            raise PlanError(f"{where}: {w!r} is not an sbatch option")
        if i + 1 < len(words) and not words[i + 1].startswith("-") and "=" not in w:
            out.append(f"{w}={words[i + 1]}" if w.startswith("--") else f"{w}{words[i + 1]}")
            i += 2
        else:
            out.append(w)
            i += 1
    return out
