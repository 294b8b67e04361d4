"""One read-only view of a run, from a live job or from the run store: what every panel draws.

A view is a snapshot. Building one from a live job copies the job's bounded History under the
job's lock, so a page can take its time drawing while the job trains on; building one from disk
reads the saved metrics and arrays into the same History, so both draw the same figures.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from .config import RunConfig, make_config
from .history import History

if TYPE_CHECKING:
    from .service import Job

# States a view can be in: the service's, plus "interrupted" for a run the store says is
# running but no live job trains (its server was killed): it resumes from its checkpoint.
INTERRUPTED = "interrupted"
RESUMABLE = ("stopped", INTERRUPTED)


@dataclass(frozen=True)
class RunView:
    name: str
    cfg: RunConfig
    state: str  # queued, running, finished, stopped, diverged, failed, cancelled, interrupted
    summary: dict  # the trainer's summary(): losses, baseline, verdict, engine, device
    history: History
    out_dir: Path | None = None
    source: str = "live"  # live | disk
    error: str | None = None
    position: int = 0  # place in the queue (1 = next), 0 when not queued
    steps_per_second: float = 0.0
    info: dict = field(default_factory=dict)

    # --- built from ... ----------------------------------------------------------------------
    @classmethod
    def from_job(cls, job: "Job") -> "RunView":
        position = job.position()
        rate = job.steps_per_second()
        with job.lock:
            return cls(job.name, job.cfg, job.state, dict(job.summary), copy.deepcopy(job.history), job.out_dir,
                       "live", job.error, position, rate, dict(job.info))

    @classmethod
    def from_disk(cls, path: str | Path) -> "RunView":
        """Raises store.RunStoreError (or ConfigError for a config this version rejects)."""
        from . import store

        data = store.load_run(path)
        status = dict(data.status)
        state = status.get("status", "stopped")
        if state == "running":
            state = INTERRUPTED
            status["reason"] = "the server stopped while this run trained; it resumes from its last checkpoint"
            from .checkpoint import saved_step

            # killed between its checkpoint and its status: the checkpoint's step is where it resumes
            step = saved_step(Path(path))
            if step is not None:
                status["steps_done"] = step
        return cls(Path(path).name, make_config(data.config), state, status, History.from_run(data), Path(path),
                   "disk")

    # --- reading -------------------------------------------------------------------------------
    @property
    def running(self) -> bool:
        return self.state in ("queued", "running")

    @property
    def steps_done(self) -> int:
        return int(self.summary.get("steps_done", 0))

    @property
    def progress(self) -> float:
        return min(1.0, self.steps_done / max(1, self.cfg.steps))

    @property
    def resumable(self) -> bool:
        ok_state = self.state in RESUMABLE or (self.state == "failed" and self.steps_done > 0)
        has_checkpoint = self.out_dir is not None and (self.out_dir / "checkpoint.json").is_file()
        # a run killed before its first checkpoint has none: resuming starts it again from step 0
        restartable = self.state == INTERRUPTED and self.out_dir is not None
        return ok_state and self.steps_done < self.cfg.steps and (has_checkpoint or restartable)

    @property
    def reason(self) -> str:
        return str(self.summary.get("reason", ""))

    @property
    def engine(self) -> str:
        return str(self.info.get("engine") or self.summary.get("engine", ""))

    @property
    def device(self) -> str:
        return str(self.info.get("device") or self.summary.get("device", ""))


def resumable_runs(root: Path | None = None) -> list[str]:
    """Saved runs that can be continued: stopped (by request, early stopping or an abandoned page)
    or left 'running' by a server that was killed. Reads only each run's small status.json,
    because pages call this on every run."""
    import json

    from . import store

    out = []
    for name in store.list_runs(root):
        try:
            status = json.loads((store.run_dir(name, root) / "status.json").read_text())
        except (OSError, ValueError):
            continue
        # "running" with no step saved yet: killed before its first checkpoint, it restarts from step 0
        if status.get("status") == "running" or (status.get("status") == "stopped" and status.get("steps_done", 0) > 0):
            out.append(name)
    return out
