"""Saving a run as it trains, and resuming it: beside the Trainer, not inside its loop.

    trainer = Trainer(cfg)
    RunWriter("runs/demo").attach(trainer)   # what Trainer(cfg, out_dir="runs/demo") does
    trainer.run()
    trainer = resume("runs/demo", steps=600)  # what Trainer.resume does

The writer is a callback: it flushes the run store at most every FLUSH_SECONDS, spaced out so
saving never takes more than MAX_SAVE_SHARE of the time (it rewrites whole files, so its cost
grows with the run), and once more when the run ends. A resumed run equals an uninterrupted
one file for file.
"""
from __future__ import annotations

import fcntl
import os
import time
import weakref
from pathlib import Path
from typing import Any

from . import checkpoint, store
from .config import ConfigError, make_config

FLUSH_SECONDS = 2.0  # write the run store at most this often while training
MAX_SAVE_SHARE = 0.05  # and never spend more than this share of the time saving


class RunWriter:
    def __init__(self, out_dir: str | Path):
        self.out_dir = Path(out_dir)
        self._last_flush = time.perf_counter()
        self._save_seconds = 0.0  # how long the last save took
        self._unlock: weakref.finalize | None = None  # closes the lock file: set while this writer trains

    def attach(self, trainer: Any, new: bool = True) -> "RunWriter":
        """Write config.json and status.json now; the first full save waits FLUSH_SECONDS, so a UI's
        first chart never waits on disk. A `new` run's config.json is created exclusively: a
        directory that already holds a run (another server's, a second CLI's) raises
        store.RunTakenError before anything is written into it."""
        if new:
            store.atomic_create_json(self.out_dir / "config.json", trainer.cfg.model_dump())
            self._lock()
        elif self._unlock is None:
            self._lock()  # before anything is rewritten: another process may be training this run
            store.atomic_write_json(self.out_dir / "config.json", trainer.cfg.model_dump())
        trainer.writer = self
        trainer.add_callback("on_step_end", self.on_step_end)
        trainer.add_callback("on_run_end", self.on_run_end)
        self.write_status(trainer)
        self._last_flush = time.perf_counter()
        return self

    def on_step_end(self, trainer: Any, rec: Any) -> None:
        if trainer.done:
            return  # on_run_end saves
        wait = max(FLUSH_SECONDS, self._save_seconds / MAX_SAVE_SHARE)
        if time.perf_counter() - self._last_flush > wait:
            self.save(trainer)

    def on_run_end(self, trainer: Any) -> None:
        self.save(trainer)
        self.release()

    def _lock(self) -> None:
        """Hold an exclusive lock on the run while this writer trains it. The kernel drops a flock
        when its process dies (SIGKILL too), so a killed run is never locked out of its resume, while
        a second server or CLI resuming a run that one is training gets RunTakenError."""
        fd = os.open(self.out_dir, os.O_RDONLY)  # the directory itself: no lock file beside the run's
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            raise store.RunTakenError(f"{self.out_dir} is being trained by another process (a server or CLI): "
                                      "stop it there, or wait until it ends") from None
        self._unlock = weakref.finalize(self, os.close, fd)  # a writer dropped mid-run lets go too

    def release(self) -> None:
        if self._unlock is not None:
            self._unlock()
            self._unlock = None

    def write_status(self, trainer: Any) -> None:
        store.atomic_write_json(self.out_dir / "status.json", trainer.summary())

    def save(self, trainer: Any) -> None:
        """Metrics, arrays, weights, a resumable checkpoint and the status, each written atomically."""
        t0 = time.perf_counter()
        trainer.recorder.write(self.out_dir)
        store.atomic_save_safetensors(self.out_dir / "model.safetensors", trainer.model.state_dict())
        checkpoint.save_state(self.out_dir, trainer.state())
        self.write_status(trainer)
        self._last_flush = time.perf_counter()
        self._save_seconds = self._last_flush - t0


def resume(out_dir: str | Path, steps: int | None = None, trainer_cls: type | None = None) -> Any:
    """A Trainer that continues the stopped (or killed) run in `out_dir` from its last checkpoint,
    saving into it again. `steps` may raise the step budget. A run killed before its first
    checkpoint starts again from step 0 with its saved config: training is seeded, so it ends
    where an uninterrupted run would."""
    if trainer_cls is None:
        from .trainer import Trainer as trainer_cls
    out_dir = Path(out_dir)
    data = store.load_run(out_dir)
    writer = RunWriter(out_dir)
    writer._lock()  # before anything is touched: a run another process trains raises RunTakenError here
    try:
        return _resume_locked(writer, data, steps, trainer_cls)
    except BaseException:
        writer.release()
        raise


def _resume_locked(writer: RunWriter, data: store.RunData, steps: int | None, trainer_cls: type) -> Any:
    out_dir = writer.out_dir
    for tmp in out_dir.glob(".*.tmp"):  # half-written temporaries of a killed save (never renamed in)
        tmp.unlink(missing_ok=True)
    values = dict(data.config)
    if steps is not None:
        values["steps"] = steps
    if not checkpoint.has_state(out_dir):
        return _restart(writer, trainer_cls(make_config(values)))
    state = checkpoint.load_state(out_dir)
    trainer = trainer_cls(make_config(values))
    trainer.load_state(state)
    if trainer.step_index >= trainer.cfg.steps:
        raise ConfigError(f"the run at {out_dir} already did {trainer.step_index} of steps={trainer.cfg.steps}: "
                          "pass a larger steps to continue it")
    # what was recorded before the checkpoint's step (a killed run may have written later rows)
    trainer.recorder.load(data.metrics, data.arrays, trainer.step_index, trainer.cfg.record_every)
    trainer.status, trainer.reason = "running", f"resumed at step {trainer.step_index}"
    writer.attach(trainer, new=False)  # config.json again: the step budget may have changed
    return trainer


# What a killed first save may have left beside config.json, none of it backed by a checkpoint.
_UNCHECKPOINTED = ("metrics.csv", "model.safetensors", "checkpoint.safetensors", "*.npy")


def _restart(writer: RunWriter, trainer: Any) -> Any:
    for pattern in _UNCHECKPOINTED:
        for path in writer.out_dir.glob(pattern):
            path.unlink(missing_ok=True)
    trainer.reason = "restarted from step 0: the run was stopped before its first checkpoint"
    writer.attach(trainer, new=False)
    return trainer
