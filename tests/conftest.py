"""Shared fixtures: paths to the bundled and reference data, and a CLI runner."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "sample_data"
# Real data made by others (../shared/refdata relative to the project root); not shipped.
REFDATA = ROOT.parent / "shared" / "refdata"
TESTS = ROOT / "tests"
GOLDEN = TESTS / "golden"  # numbers made by public reference tools (each file says how)
DATA = TESTS / "data"


@pytest.fixture(scope="session")
def refdata() -> Path:
    if not REFDATA.is_dir():
        pytest.skip(f"reference data not found at {REFDATA}")
    return REFDATA


@pytest.fixture(scope="session")
def bikes() -> Path:
    """Real footage, 640x272, 25 fps, 250 frames (bundled, BSD-3)."""
    return SAMPLE / "videos" / "bikes.mp4"


@pytest.fixture(scope="session")
def carphone() -> Path:
    """Real footage, 176x144, 29.97 fps, 120 frames (bundled, BSD-3)."""
    return SAMPLE / "videos" / "carphone_pristine.mp4"


@pytest.fixture
def cli():
    """Run `vidseg ARGS...` in-process; returns click's Result (.exit_code, .stdout, .stderr)."""
    from vidseg_cli.cli.main import cli as group

    runner = CliRunner()

    def run(*args: str):
        return runner.invoke(group, [str(a) for a in args], catch_exceptions=False)

    return run
