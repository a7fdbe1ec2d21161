"""`vidseg submit`'s costs, each against the same work done without it.

1. extract-frames -> extract-features over 8 synthetic videos, `--chunk 1`, the second
   stage chained with --follow, through a single-node SLURM (`--wait` on the last), against
   the same two commands run directly. Target: <= 1.3x. The videos are 30 s at 25 fps
   (12 s with --quick), 128 x 96: every task starts a process and loads its model once,
   which on a 4-second clip would be most of the work and on real videos (THUMOS14's
   average minutes) is little of it. Needs a SLURM: SLURM_CONF set, or
   root with the Debian packages (a local cluster is started and stopped here,
   vidseg_cli/cluster/localslurm.py); else skipped with the reason.
2. Planning a dry run over 1,000 inputs (parse, expand, predict outputs, render) against
   expanding those inputs alone (cli/common.expand_inputs). Target: <= 2x.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
WEIGHTS = ROOT / "sample_data" / "weights" / "backbone_synth.ckpt"


def _vidseg(*args, cwd, env=None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "vidseg_cli.cli.main", *map(str, args)], cwd=cwd,
                          env={**(env or os.environ), "PYTHONPATH": str(ROOT)},
                          capture_output=True, text=True, check=True)


def _chain(work: Path, videos: list[Path], env: dict | None) -> tuple[float, float]:
    t0 = time.perf_counter()
    _vidseg("extract-frames", *videos, "-o", work / "d_frames", "-q", cwd=work, env=env)
    _vidseg("extract-features", work / "d_frames", "--weights", WEIGHTS, "-o", work / "d_feat", "-q",
            cwd=work, env=env)
    direct = time.perf_counter() - t0
    t0 = time.perf_counter()
    _vidseg("submit", "--chunk", "1", "--folder", "r/frames", "extract-frames", *videos, "-o",
            work / "s_frames", cwd=work, env=env)
    _vidseg("submit", "--folder", "r/feat", "--follow", "r/frames", "--wait", "extract-features",
            "--weights", WEIGHTS, "-o", work / "s_feat", cwd=work, env=env)
    slurm = time.perf_counter() - t0
    got = sorted(p.name for p in (work / "s_feat").glob("*.h5"))
    want = sorted(p.name for p in (work / "d_feat").glob("*.h5"))
    if got != want or len(got) != len(videos):
        raise RuntimeError(f"the SLURM chain wrote {got}, the direct one {want}")
    return direct, slurm


def _slurm_figure(quick: bool) -> dict:
    name = f"submit chain through SLURM vs direct (8 videos of {12 if quick else 30} s, --chunk 1)"
    from tests.cluster.videos import make_videos
    from vidseg_cli.cluster.localslurm import LocalSlurm, missing_binaries

    cluster = None
    if not os.environ.get("SLURM_CONF"):
        if os.geteuid() != 0 or missing_binaries():
            return {"name": name, "ratio": "skipped: no SLURM (set SLURM_CONF, or run as root "
                                           "with slurmctld slurmd slurm-client munge installed)",
                    "target": "<= 1.3", "ok": None}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        env = None
        if not os.environ.get("SLURM_CONF"):
            cluster = LocalSlurm(work / "slurm").start()
            env = cluster.env
        try:
            videos = make_videos(work / "v", 8, broken=False, frames=300 if quick else 750,
                                 size=(128, 96), fps=25.0)
            direct, slurm = _chain(work, videos, env)
        finally:
            if cluster is not None:
                cluster.stop()
    ratio = slurm / direct
    return {"name": name, "ratio": round(ratio, 2), "target": "<= 1.3", "ok": ratio <= 1.3,
            "detail": {"direct_s": round(direct, 2), "slurm_s": round(slurm, 2),
                       "cpus": os.cpu_count()}}


def _dry_run_figure(quick: bool) -> dict:
    import numpy as np

    from vidseg_cli import store
    from vidseg_cli.cli.common import expand_inputs
    from vidseg_cli.cluster import planner
    from vidseg_cli.cluster.render import Settings
    from vidseg_cli.cluster.submission import script_text

    n = 200 if quick else 1000
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp) / "feat"
        d.mkdir()
        for i in range(n):
            store.write_features(d / f"v{i:04d}.features.h5", np.zeros((2, 4), np.float32),
                                 np.arange(2), video_id=f"v{i:04d}", num_frames=10, fps=10.0)

        def expand():
            return expand_inputs("localize", [str(d)], ["features"], quiet=True)

        def plan():
            sub = planner.plan(["localize", str(d), "-o", str(Path(tmp) / "o"), "--weights", "w"],
                               Settings(), follow=None, chunk=None, folder=None, local=True,
                               check_slurm=False, stamp="bench", cwd=tmp)
            return script_text(sub.record, sub.tasks, None)

        expand(), plan()  # warm the imports and the page cache
        t_expand = min(_time(expand) for _ in range(3))
        t_plan = min(_time(plan) for _ in range(3))
    ratio = t_plan / t_expand
    return {"name": f"submit --dry-run plan vs expanding the inputs ({n} inputs)",
            "ratio": round(ratio, 2), "target": "<= 2", "ok": ratio <= 2,
            "detail": {"expand_s": round(t_expand, 4), "plan_s": round(t_plan, 4)}}


def _time(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def run(quick: bool = False) -> list[dict]:
    if shutil.which("bash") is None:
        return [{"name": "vidseg submit", "ratio": "skipped: no bash", "ok": None}]
    return [_dry_run_figure(quick), _slurm_figure(quick)]
