"""What became of a submission, from the files it left and what squeue still knows (never
sacct): per input done / skipped / failed (with the stage's error line, from the task's
--json summary) / pending / running / cancelled / died (no summary: killed, time limit,
out of memory; pointing at the task's log), and stray `.vidseg-tmp-*` files beside the
predicted outputs (core/fs.py's temporary names).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from vidseg_cli.cluster import slurm
from vidseg_cli.cluster.record import Record

LIVE = {"PENDING", "RUNNING", "CONFIGURING", "COMPLETING", "REQUEUED", "RESIZING", "SUSPENDED"}


@dataclass
class Line:
    input: str
    task: int
    status: str  # done skipped failed pending running cancelled died missing
    error: str = ""
    log: str = ""


@dataclass
class Report:
    folder: str
    stage: str
    lines: list[Line] = field(default_factory=list)
    temps: list[str] = field(default_factory=list)

    @property
    def complete(self) -> bool:
        return all(ln.status in ("done", "skipped") for ln in self.lines)

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for ln in self.lines:
            out[ln.status] = out.get(ln.status, 0) + 1
        return out

    def to_json(self) -> dict[str, Any]:
        return {"folder": self.folder, "stage": self.stage, "complete": self.complete,
                "counts": self.counts(), "inputs": [asdict(ln) for ln in self.lines],
                "temporary_files": self.temps}


def log_of(record: Record, job: dict | None, task: int) -> Path | None:
    if job is None:
        return None
    if job["job_id"] == "local":
        return record.folder / "logs" / f"local_{task}.log"
    if record.scope == "video":
        return record.folder / "logs" / f"{job['job_id']}_{task}.log"
    return record.folder / "logs" / f"{job['job_id']}.log"


def _summary(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def task_states(record: Record) -> dict[int, str]:
    """Task -> SLURM state of its latest job, for what squeue still lists; local runs
    give COMPLETED or FAILED from their exit status."""
    states: dict[int, str] = {}
    cache: dict[str, dict[int, str]] = {}
    for t in range(record.n_tasks):
        job = record.job_of_task(t)
        if job is None:
            continue
        if job["job_id"] == "local":
            code = job.get("exit_codes", {}).get(str(t))
            if t in job.get("cancelled", []):
                states[t] = "CANCELLED"
            elif code is not None:
                states[t] = "COMPLETED" if code == 0 else "FAILED"
            continue
        if job["job_id"] not in cache:
            try:
                cache[job["job_id"]] = slurm.task_states(job["job_id"])
            except Exception:  # no SLURM here: the files alone tell
                cache[job["job_id"]] = {}
        if t in cache[job["job_id"]]:
            states[t] = cache[job["job_id"]][t]
    return states


def report(record: Record) -> Report:
    rep = Report(str(record.folder), record.stage)
    states = task_states(record)
    for t in range(record.n_tasks):
        job = record.job_of_task(t)
        summary = _summary(record.summary_path(t))
        state = states.get(t, "")
        log = log_of(record, job, t)
        failed = {f["input"]: f["error"] for f in (summary or {}).get("failed", [])}
        skipped = set((summary or {}).get("skipped", []))
        for item in record.task_items(t):
            name = item.input or record.stage
            outs = item.outputs
            if item.done():
                status = "skipped" if outs and outs[0] in skipped else "done"
                rep.lines.append(Line(name, t, status))
            elif job is None:
                rep.lines.append(Line(name, t, "missing", "never submitted"))
            elif state in LIVE:
                rep.lines.append(Line(name, t, state.lower(), log=str(log)))
            elif summary is not None:
                err = failed.get(item.input, "")
                rep.lines.append(Line(name, t, "failed" if err else "missing",
                                      err or "the task ended without writing it", str(log)))
            elif state == "CANCELLED":
                rep.lines.append(Line(name, t, "cancelled", _last_line(log), str(log)))
            else:
                rep.lines.append(Line(name, t, "died", _last_line(log) or
                                      "no summary: killed, time limit or out of memory",
                                      str(log)))
    rep.temps = stray_temps(record)
    return rep


def _last_line(log: Path | None) -> str:
    """The last line of a task's log that says something went wrong."""
    if log is None or not log.is_file():
        return ""
    try:
        lines = log.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return ""
    for ln in reversed(lines):
        low = ln.lower()
        if any(w in low for w in ("error", "cancelled", "killed", "time limit", "oom",
                                  "not started", "traceback")):
            return ln.strip()
    return ""


def stray_temps(record: Record) -> list[str]:
    """Temporary files (any writer, any host) of the predicted outputs."""
    from vidseg_cli.core.fs import TMP_PREFIX

    names_by_folder: dict[Path, set[str]] = {}
    for item in record.items:
        for o in item.outputs:
            p = Path(o)
            names_by_folder.setdefault(p.parent, set()).add(p.name)
    found = []
    for folder, names in names_by_folder.items():
        try:
            entries = sorted(folder.iterdir())
        except OSError:
            continue
        for f in entries:
            if f.name.startswith(TMP_PREFIX):
                rest = f.name[len(TMP_PREFIX):]
                if any(rest.startswith(n + ".pid") for n in names):
                    found.append(str(f))
    return found
