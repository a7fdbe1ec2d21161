"""Every command answers --help, and quickly: heavy libraries stay out of the help path."""

from __future__ import annotations

import subprocess
import sys

import pytest

from vidseg_cli.cli.main import COMMANDS

HEAVY = ("torch", "cv2", "h5py", "scipy", "pydensecrf", "joblib", "rich")


def _modules_loaded_by(argv: list[str]) -> set[str]:
    code = (
        "import sys\n"
        "from vidseg_cli.cli.main import cli\n"
        "try:\n"
        f"    cli({argv!r}, prog_name='vidseg')\n"
        "except SystemExit as e:\n"
        "    assert e.code in (0, None), e.code\n"
        "print('MODULES', ' '.join(sorted({m.split('.')[0] for m in sys.modules})))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    line = next(ln for ln in out.stdout.splitlines() if ln.startswith("MODULES"))
    return set(line.split()[1:])


def test_group_help_lists_every_command(cli):
    res = cli("--help")
    assert res.exit_code == 0
    for name in COMMANDS:
        assert name in res.stdout


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_every_command_has_help(cli, name):
    res = cli(name, "--help")
    assert res.exit_code == 0, res.output
    assert f"Usage: vidseg {name}" in res.stdout or "Usage:" in res.stdout
    assert len(res.stdout.splitlines()) > 3


@pytest.mark.parametrize("argv", [["--help"], *[[n, "--help"] for n in sorted(COMMANDS)]])
def test_help_imports_no_heavy_module(argv):
    # Importing torch alone takes seconds; `--help` must not pay for it.
    loaded = _modules_loaded_by(argv)
    assert not loaded & set(HEAVY), f"{argv} imports {sorted(loaded & set(HEAVY))}"
