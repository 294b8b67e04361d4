"""Live training in short ticks, without Streamlit: the page's fragment calls `tick` and draws.

A tick runs trainer.step() until a time budget (~0.4 s) is spent, so a Stop click or another
widget is served within one tick; a tight loop with no st.* call could not be interrupted.
Everything here is plain Python, so tests drive it exactly as the fragment does.
"""
from __future__ import annotations

import json
import time
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime, timezone
from secrets import token_hex

from rnn_core import store
from rnn_core.config import RunConfig
from rnn_core.trainer import Trainer

from rnn_core.history import History

TICK_BUDGET_S = 0.4  # training work per tick: 0.2 s left a default run at 11 s, most of it redrawing
FIRST_TICK_BUDGET_S = 0.0  # the first tick does one step: the charts fill as soon as possible
RATE_WINDOW_S = 5.0  # steps per second over the last few seconds of wall time


@dataclass
class LiveRun:
    """One session's run: the Trainer (its model and optimizer; no autograd graph outlives a step)
    and the bounded History the charts read."""
    trainer: Trainer
    name: str
    history: History = field(default_factory=History)
    error: str | None = None  # an exception from a step, shown as st.error instead of a traceback
    ticks: int = 0
    _marks: deque = field(default_factory=lambda: deque(maxlen=256))  # (wall time, steps done)

    @property
    def cfg(self) -> RunConfig:
        return self.trainer.cfg

    @property
    def running(self) -> bool:
        return self.error is None and not self.trainer.done

    def steps_per_second(self) -> float:
        if len(self._marks) < 2:
            return 0.0
        (t0, s0), (t1, s1) = self._marks[0], self._marks[-1]
        return (s1 - s0) / (t1 - t0) if t1 > t0 else 0.0

    def progress(self) -> float:
        return min(1.0, self.trainer.step_index / max(1, self.cfg.steps))


def new_run_name(cfg: RunConfig) -> str:
    stamp = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")
    return store.check_run_name(f"explore-{cfg.task}-{cfg.cell}-{stamp}-{token_hex(2)}")


def start_run(cfg: RunConfig, name: str | None = None) -> LiveRun:
    """A new run, saved to the run store as it goes. Raises what Trainer raises (shown by the page)."""
    name = name or new_run_name(cfg)
    trainer = Trainer(cfg, out_dir=store.run_dir(name))
    run = LiveRun(trainer, name)
    run._marks.append((time.perf_counter(), 0))
    return run


def resume_run(name: str, steps: int | None = None, history: History | None = None) -> LiveRun:
    """Continue a stopped run from its checkpoint (Trainer.resume). Without the session's own
    history, the charts are refilled from what the run store holds."""
    trainer = Trainer.resume(store.run_dir(name), steps=steps)
    if history is None:
        history = History.from_recorder(trainer.recorder.rows, trainer.recorder.arrays)
    run = LiveRun(trainer, name, history)
    run._marks.append((time.perf_counter(), trainer.step_index))
    return run


def resumable_runs() -> list[str]:
    """Saved runs that can be continued: stopped (by request or early stopping) or left
    'running' by a server that was killed. Reads only each run's small status.json, because
    this is called on every page run."""
    out = []
    for name in store.list_runs():
        try:
            status = json.loads((store.run_dir(name) / "status.json").read_text())
        except (OSError, ValueError):
            continue
        if status.get("status") in ("stopped", "running") and status.get("steps_done", 0) > 0:
            out.append(name)
    return out


def tick(run: LiveRun, budget_s: float = TICK_BUDGET_S) -> int:
    """Step the trainer until `budget_s` of wall time is spent or the run ends; at least one step.

    Returns the number of steps done. An exception inside a step ends the run with `error` set
    and the trainer stopped (saved, resumable), so the page shows a message, never a traceback.
    """
    if not run.running:
        return 0
    t0 = time.perf_counter()
    done = 0
    try:
        while True:
            rec = run.trainer.step()
            run.history.add(rec)
            done += 1
            if run.trainer.done or time.perf_counter() - t0 >= budget_s:
                break
    except Exception as err:  # noqa: BLE001 - any failure becomes a message on the page
        run.error = f"{type(err).__name__}: {err}"
        try:
            run.trainer.stop()
        except Exception:  # noqa: BLE001 - the original error is the one worth showing
            pass
    run.ticks += 1
    now = time.perf_counter()
    run._marks.append((now, run.trainer.step_index))
    while len(run._marks) > 2 and now - run._marks[0][0] > RATE_WINDOW_S:
        run._marks.popleft()
    return done


def stop(run: LiveRun) -> None:
    """Stop between steps, save and leave the run resumable (the Stop button)."""
    if run.running:
        run.trainer.stop()
