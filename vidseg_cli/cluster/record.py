"""The submission folder: manifest.txt (one absolute input per line, in order), submit.json
(the command, the chunking, each line's predicted outputs, every job submitted for it),
logs/ and summaries/, and the chunk arithmetic that maps array tasks to manifest lines.

Task k runs manifest lines [k*chunk, (k+1)*chunk): the rendered script, `jobs status` and
`jobs retry` all use `task_lines` so they agree.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vidseg_cli.cluster.plan import Item, PlanError

RECORD = "submit.json"
MANIFEST = "manifest.txt"
# Array tasks per submission unless the cluster's MaxArraySize is lower (cluster.md §3).
MAX_TASKS = 1000


def n_tasks(n_items: int, chunk: int) -> int:
    return math.ceil(n_items / chunk) if n_items else 0


def default_chunk(n_items: int, max_array_size: int = MAX_TASKS + 1) -> int:
    """One input per task while the tasks fit under min(1000, MaxArraySize - 1); beyond,
    chunks grow just enough to fit."""
    limit = max(1, min(MAX_TASKS, max_array_size - 1))
    return max(1, math.ceil(n_items / limit))


def task_lines(task: int, chunk: int, n_items: int) -> range:
    return range(task * chunk, min((task + 1) * chunk, n_items))


def array_spec(tasks: list[int], parallel: int | None = None) -> str:
    """Task ids as SLURM's --array value: runs as `a-b`, joined by commas, `%N` throttle."""
    runs: list[str] = []
    start = prev = None
    for t in sorted(set(tasks)):
        if start is None:
            start = prev = t
        elif t == prev + 1:
            prev = t
        else:
            runs.append(f"{start}-{prev}" if prev != start else str(start))
            start = prev = t
    if start is not None:
        runs.append(f"{start}-{prev}" if prev != start else str(start))
    return ",".join(runs) + (f"%{parallel}" if parallel else "")


@dataclass
class Record:
    """submit.json."""

    folder: Path
    stage: str
    scope: str  # "video" (an array over the manifest) or "set" (one job)
    argv: list[str]  # `vidseg submit ...` as typed
    cwd: str
    chunk: int = 1
    items: list[Item] = field(default_factory=list)
    backend: str = "slurm"  # or "local"
    follow: str | None = None  # the upstream submission folder
    jobs: list[dict[str, Any]] = field(default_factory=list)  # each submission (retries too)
    settings: dict[str, Any] = field(default_factory=dict)  # the sbatch options used
    version: str = ""
    created: str = ""

    @property
    def n_tasks(self) -> int:
        return n_tasks(len(self.items), self.chunk) if self.scope == "video" else 1

    def task_items(self, task: int) -> list[Item]:
        if self.scope == "set":
            return list(self.items)
        return [self.items[i] for i in task_lines(task, self.chunk, len(self.items))]

    def summary_path(self, task: int) -> Path:
        return self.folder / "summaries" / f"{task}.json"

    def last_job(self) -> dict[str, Any] | None:
        return self.jobs[-1] if self.jobs else None

    def job_of_task(self, task: int) -> dict[str, Any] | None:
        """The latest submission that ran `task`."""
        for job in reversed(self.jobs):
            if task in job.get("tasks", []):
                return job
        return None

    def to_json(self) -> dict[str, Any]:
        return {
            "stage": self.stage, "scope": self.scope, "argv": self.argv, "cwd": self.cwd,
            "version": self.version, "created": self.created, "backend": self.backend,
            "chunk": self.chunk, "n_tasks": self.n_tasks, "follow": self.follow,
            "settings": self.settings, "jobs": self.jobs,
            "items": [i.to_json() for i in self.items],
        }

    def save(self) -> None:
        from vidseg_cli.core.fs import write_text

        write_text(self.folder / RECORD, json.dumps(self.to_json(), indent=2) + "\n")

    def write_manifest(self) -> None:
        from vidseg_cli.core.fs import write_text

        write_text(self.folder / MANIFEST, "".join(i.input + "\n" for i in self.items))


def new_record(folder: Path, **kw: Any) -> Record:
    from vidseg_cli import __version__

    return Record(folder=folder, version=__version__,
                  created=time.strftime("%Y-%m-%dT%H:%M:%S"), **kw)


def load_record(folder: str | Path) -> Record:
    """A submission folder's record; a folder that isn't one is a PlanError naming it."""
    folder = Path(folder).absolute()
    path = folder / RECORD
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
        items = [Item(**i) for i in doc["items"]]
        return Record(folder=folder, stage=doc["stage"], scope=doc["scope"], argv=doc["argv"],
                      cwd=doc["cwd"], chunk=int(doc["chunk"]), items=items,
                      backend=doc.get("backend", "slurm"), follow=doc.get("follow"),
                      jobs=list(doc.get("jobs", [])), settings=dict(doc.get("settings", {})),
                      version=doc.get("version", ""), created=doc.get("created", ""))
    except FileNotFoundError:
        raise PlanError(f"{folder}: not a submission folder (no {RECORD})") from None
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise PlanError(f"{path}: not a readable submission record ({e})") from None
