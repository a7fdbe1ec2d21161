"""A single-node SLURM for the session (vidseg_cli/cluster/localslurm.py). Under plain
pytest without root or the SLURM binaries the tests that need it skip with the reason;
under VIDSEG_FULL_CHECK=1 (`make check`, which installs the packages) they fail instead."""

from __future__ import annotations

import os

import pytest

from vidseg_cli.cluster.localslurm import LocalSlurm, missing_binaries

FULL = os.environ.get("VIDSEG_FULL_CHECK") == "1"


def _unavailable(reason: str):
    if FULL:
        pytest.fail(f"VIDSEG_FULL_CHECK=1 but {reason}")
    pytest.skip(f"{reason}: run `make check` as root")


@pytest.fixture(scope="session")
def slurm_cluster(tmp_path_factory):
    if os.geteuid() != 0:
        _unavailable("a local SLURM needs root")
    missing = missing_binaries()
    if missing:
        _unavailable(f"SLURM not installed ({', '.join(missing)} missing)")
    cluster = LocalSlurm(tmp_path_factory.mktemp("slurm"))
    try:
        cluster.start()
    except RuntimeError as e:
        _unavailable(f"local SLURM did not start: {e}")
    os.environ["SLURM_CONF"] = str(cluster.conf)
    try:
        yield cluster
    finally:
        os.environ.pop("SLURM_CONF", None)
        cluster.stop()
