"""A single-node SLURM on localhost, for tests and benchmarks only (run as root; the Debian
packages slurmctld, slurmd, slurm-client and munge installed): writes slurm.conf in a
scratch folder (CPUs = os.cpu_count(), SchedulerParameters tuned so chained arrays start
within a second, small KillWait, free ports), starts munged when no munge daemon answers,
then slurmctld and `slurmd -N localhost`, waits for the node to be idle, and stops what it
started by PID (slurmd, slurmctld, munged). Clients find it through SLURM_CONF
(`LocalSlurm.env`). Recipe and measurements: shared/specs/slurm-local.md, cluster.md §2.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

DAEMONS = ("slurmctld", "slurmd", "sbatch", "munged")


def missing_binaries() -> list[str]:
    return [b for b in DAEMONS if shutil.which(b) is None]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


CONF = """\
ClusterName=vidsegtest
SlurmctldHost=localhost
SlurmctldPort={ctld_port}
SlurmdPort={d_port}
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
MpiDefault=none
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
SchedulerType=sched/backfill
SchedulerParameters=sched_min_interval=0,batch_sched_delay=0,sched_interval=1
KillWait=2
MinJobAge=600
ReturnToService=2
StateSaveLocation={s}/state
SlurmdSpoolDir={s}/spool
SlurmctldPidFile={s}/slurmctld.pid
SlurmdPidFile={s}/slurmd.pid
SlurmctldLogFile={s}/log/slurmctld.log
SlurmdLogFile={s}/log/slurmd.log
NodeName=localhost NodeAddr=127.0.0.1 CPUs={cpus} RealMemory={mem} State=UNKNOWN
PartitionName=debug Nodes=localhost Default=YES MaxTime=INFINITE State=UP
"""


class LocalSlurm:
    """`with LocalSlurm(scratch) as c:` a running cluster; `c.env` for clients."""

    def __init__(self, scratch: str | os.PathLike):
        self.dir = Path(scratch).absolute()
        self.procs: dict[str, subprocess.Popen] = {}

    @property
    def conf(self) -> Path:
        return self.dir / "slurm.conf"

    @property
    def env(self) -> dict[str, str]:
        return {**os.environ, "SLURM_CONF": str(self.conf)}

    def _mem_mb(self) -> int:
        try:
            pages = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
            return max(1000, int(pages / 2**20 * 0.8))
        except (ValueError, OSError):
            return 4000

    def _spawn(self, name: str, args: list[str]) -> None:
        log = open(self.dir / "log" / f"{name}.out", "ab")  # noqa: SIM115
        self.procs[name] = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT,
                                            stdin=subprocess.DEVNULL, env=self.env)
        log.close()

    def _munge_ok(self) -> bool:
        try:
            return subprocess.run("munge -n | unmunge", shell=True, capture_output=True,
                                  timeout=10).returncode == 0
        except subprocess.TimeoutExpired:
            return False

    def start(self, timeout: float = 30.0) -> LocalSlurm:
        if os.geteuid() != 0:
            raise RuntimeError("a local SLURM needs root (slurmd runs jobs as their users)")
        missing = missing_binaries()
        if missing:
            raise RuntimeError(f"not installed: {', '.join(missing)}")
        for sub in ("state", "spool", "log"):
            (self.dir / sub).mkdir(parents=True, exist_ok=True)
        self.conf.write_text(CONF.format(s=self.dir, cpus=os.cpu_count() or 1, mem=self._mem_mb(),
                                         ctld_port=_free_port(), d_port=_free_port()))
        try:
            if not self._munge_ok():
                for d in ("/run/munge", "/var/lib/munge", "/var/log/munge", "/etc/munge"):
                    os.makedirs(d, exist_ok=True)
                key = Path("/etc/munge/munge.key")
                if not key.exists() or key.stat().st_size == 0:
                    subprocess.run(["mungekey", "--create", f"--keyfile={key}"], check=True,
                                   capture_output=True)
                os.chmod(key, 0o400)
                self._spawn("munged", ["munged", "--force", "--foreground"])
                self._wait(self._munge_ok, 10, "munged")
            self._spawn("slurmctld", ["slurmctld", "-D", "-f", str(self.conf)])
            self._spawn("slurmd", ["slurmd", "-D", "-N", "localhost", "-f", str(self.conf)])
            self._wait(self._idle, timeout, "slurmd idle")
        except BaseException:
            self.stop()
            raise
        return self

    def _idle(self) -> bool:
        res = subprocess.run(["sinfo", "-h", "-N", "-o", "%T"], capture_output=True, text=True,
                             env=self.env)
        return res.returncode == 0 and res.stdout.strip() == "idle"

    def _wait(self, ok, timeout: float, what: str) -> None:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            for name, p in self.procs.items():
                if p.poll() is not None:
                    raise RuntimeError(f"{name} exited ({p.returncode}); see {self.dir}/log")
            if ok():
                return
            time.sleep(0.2)
        raise RuntimeError(f"{what}: not ready after {timeout:.0f} s; see {self.dir}/log")

    def stop(self) -> None:
        """slurmd, then slurmctld (it saves its state), then munged: each by its PID."""
        for name in ("slurmd", "slurmctld", "munged"):
            p = self.procs.pop(name, None)
            if p is None or p.poll() is not None:
                continue
            p.send_signal(signal.SIGTERM)
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()

    def __enter__(self) -> LocalSlurm:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
