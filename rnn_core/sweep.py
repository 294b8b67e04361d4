"""Running a sweep: every point × seed of a spec (rnn_core.sweep_spec) becomes an ordinary saved run,
and DIR/sweep.csv gets one row per run. Two runners feed the same store:

    sweep = Sweep.create(parse_spec(text), "runs/gain_by_length")
    run_local(sweep, workers=2)               # the training service's process pool on this machine
    run_ray(sweep, address="auto")            # Ray tasks on a cluster (pip install -r requirements-ray.txt)
    sweep.frame()                             # sweep.csv as a DataFrame, the trainability map's input

The layout, for DIR = runs/NAME:

    runs/NAME/sweep.toml       the spec (a rerun must give the same one)
    runs/NAME/sweep.csv        one row per point and seed (COLUMNS), rewritten atomically after each run
    runs/NAME-p0007-s2/        the run of point 7 with seed 2: config.json, status.json, metrics.csv, ...

The runs sit beside DIR, not inside it, so each is a run of the store like any other: Explore
opens it (/?run=NAME-p0007-s2), the Runs page lists it, Compare takes it. Names are fixed by the
point's index and the seed, so a rerun finds the finished ones and skips them; a run that did not
end (killed, stopped by Ctrl-C) is deleted and trained again from step 0, so every row is the
result of one uninterrupted run and the same on every runner.

The local runner does not schedule anything itself: it keeps the training service (rnn_core.service,
one worker process per core, one torch thread each) supplied with the next runs. The Ray runner
hands every run to Ray as a task: Ray schedules them; each trains in a temporary directory on
whichever node Ray chose and returns the run's files, which the driver writes into the store.
"""
from __future__ import annotations

import math
import os
import shutil
import signal
import tempfile
import threading
import time
from collections import deque
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pandas as pd

from . import store
from .config import make_config
from .diagnostics import memory_horizon
from .rules import RUN_NAME, show
from .summary import outcome
from .sweep_spec import PlannedRun, SpecError, SweepSpec, parse_spec

CSV, SPEC = "sweep.csv", "sweep.toml"
RESULT_COLUMNS = ("seed", "run", "status", "verdict", "final_val_loss", "baseline", "memory_horizon", "log10_ratio",
                  "ms_per_step", "steps_done", "reason")
PENDING, INTERRUPTED, FAILED = "pending", "interrupted", "failed"
FLOOR = 1e-300  # an exact zero gradient is read as this, as everywhere in the lab (log10 has no zero)
MAX_NAME = 80  # the sweep's name; its runs add "-p0000-s<seed>" within the store's 100 characters
POLL_S = 0.05  # how often the local runner looks at its jobs


class SweepError(ValueError):
    """A sweep that cannot start: a bad directory, a different spec already there, Ray missing."""


@dataclass(frozen=True)
class Task:
    name: str  # the run's name in the store
    run_dir: Path
    planned: PlannedRun


def run_name(sweep_name: str, point: int, seed: int) -> str:
    return f"{sweep_name}-p{point:04d}-s{seed}"


def finished(status: dict) -> bool:
    """A run that reached its end: all steps, diverged, or stopped early by early stopping."""
    s = status.get("status")
    return s in ("finished", "diverged") or (s == "stopped" and str(status.get("reason", "")).startswith("early stopping"))


def profile_numbers(grads: np.ndarray | None) -> tuple[int | None, float | None]:
    """(memory horizon, log10 ‖∂L/∂h_0‖/‖∂L/∂h_{T−1}‖) of the last recorded profile of layer 1 that
    has a finite value; grads: (N, LD, T). A curriculum's NaN tail is skipped: T−1 is the last
    timestep that existed. (None, None) when the run recorded no finite profile."""
    if grads is None or grads.ndim != 3 or grads.shape[0] == 0 or grads.shape[1] == 0:
        return None, None
    layer0 = np.asarray(grads[:, 0], dtype=np.float64)  # (N, T)
    rows = np.flatnonzero(np.isfinite(layer0).any(axis=1))
    if len(rows) == 0:
        return None, None
    g = layer0[rows[-1]]
    idx = np.flatnonzero(np.isfinite(g))
    first, last = max(g[idx[0]], FLOOR), g[idx[-1]]
    ratio = math.log10(first / last) if last > 0 else None
    return memory_horizon(g), ratio


def run_row(run_dir: Path) -> dict:
    """The result columns of one saved run, read from its own files (status.json, metrics.csv,
    timestep_grads.npy), so the csv says exactly what the run store says."""
    data = store.load_run(run_dir)
    s = data.status
    horizon, ratio = profile_numbers(data.arrays.get("timestep_grads"))
    times = data.metrics["step_time_ms"] if "step_time_ms" in data.metrics else pd.Series(dtype=float)
    done = finished(s)
    return {"status": s.get("status", ""), "verdict": outcome(s) if done else "",
            "final_val_loss": s.get("final_val_loss"), "baseline": s.get("val_baseline"),
            "memory_horizon": horizon, "log10_ratio": ratio,
            "ms_per_step": float(times.median()) if len(times.dropna()) else None,
            "steps_done": s.get("steps_done"), "reason": s.get("reason", "")}


class Sweep:
    """A spec bound to its directory: the planned runs, their rows, sweep.csv."""

    def __init__(self, spec: SweepSpec, out_dir: str | Path):
        self.spec, self.dir = spec, Path(out_dir)
        name = self.dir.name
        if not RUN_NAME.match(name) or ".." in name or len(name) > MAX_NAME:
            raise SweepError(f"sweep directory name {show(repr(name))} is not allowed: use 1-{MAX_NAME} letters, "
                             "digits, '.', '_' or '-', starting with a letter or digit")
        self.tasks = [Task(n, self.dir.parent / n, p) for p in spec.runs()
                      for n in [run_name(name, p.point, p.seed)]]
        self.rows: dict[str, dict] = {}
        self._lock = threading.Lock()
        for t in self.tasks:
            self.rows[t.name] = self._read(t)

    # --- opening ------------------------------------------------------------------------------
    @classmethod
    def create(cls, spec: SweepSpec, out_dir: str | Path) -> "Sweep":
        """The sweep in `out_dir`, new or continued. A directory that holds another spec is refused."""
        out_dir = Path(out_dir)
        saved = out_dir / SPEC
        sweep = cls(spec, out_dir)
        if saved.is_file():
            try:
                old = parse_spec(saved.read_text())
            except (SpecError, OSError) as err:
                raise SweepError(f"{out_dir} holds an unreadable {SPEC}: {err}") from None
            if old != spec:
                raise SweepError(f"{out_dir} holds a different sweep ({SPEC} differs): choose a new --out "
                                 "or run it with the same spec")
        elif (out_dir / "config.json").exists():
            raise SweepError(f"{out_dir} holds a run, not a sweep: choose a new directory")
        else:
            store.atomic_write_bytes(saved, spec.to_toml().encode())
        sweep.write_csv()
        return sweep

    @classmethod
    def open(cls, out_dir: str | Path) -> "Sweep":
        """An existing sweep directory, as the Sweeps page opens it."""
        out_dir = Path(out_dir)
        try:
            text = (out_dir / SPEC).read_text()
        except OSError:
            raise SweepError(f"{out_dir} holds no sweep (no {SPEC})") from None
        try:
            return cls(parse_spec(text), out_dir)
        except SpecError as err:
            raise SweepError(f"{out_dir}/{SPEC}: {err}") from None

    # --- rows -----------------------------------------------------------------------------------
    def _read(self, task: Task) -> dict:
        """The row of a task from the store: its result if it ended, else pending or interrupted."""
        row = {**task.planned.values, "seed": task.planned.seed, "run": task.name}
        status_file = task.run_dir / "status.json"
        if status_file.is_file():
            try:
                res = run_row(task.run_dir)
            except (store.RunStoreError, OSError, ValueError) as err:
                return {**row, "status": INTERRUPTED, "reason": show(str(err), 160)}
            if finished(res):
                return {**row, **res}
            return {**row, **res, "status": INTERRUPTED, "verdict": ""}
        return {**row, "status": PENDING}

    def todo(self) -> list[Task]:
        """The runs still to do, in grid order: pending, interrupted or failed ones."""
        return [t for t in self.tasks if not finished(self.rows[t.name])]

    def clear(self, task: Task) -> None:
        """Delete what an interrupted run left, so it starts again from step 0."""
        if task.run_dir.exists():
            assert task.run_dir.parent == self.dir.parent and task.run_dir.name == task.name
            shutil.rmtree(task.run_dir)

    def record(self, task: Task, error: str | None = None, status: str | None = None) -> dict:
        """Read a task's row from the store after it ran (or mark it failed), then write sweep.csv."""
        row = self._read(task)
        if error:
            row.update(status=FAILED, verdict="", reason=show(error, 300))
        elif status and not finished(row):
            row.update(status=status, verdict="")
        with self._lock:
            self.rows[task.name] = row
        self.write_csv()
        return row

    def frame(self) -> pd.DataFrame:
        columns = [*self.spec.keys, *RESULT_COLUMNS]
        with self._lock:
            rows = [dict(self.rows[t.name]) for t in self.tasks]
        return pd.DataFrame(rows).reindex(columns=columns)

    def write_csv(self) -> None:
        store.atomic_write_csv(self.dir / CSV, self.frame())

    def counts(self) -> dict[str, int]:
        f = self.frame()
        done = f.apply(lambda r: finished(r.to_dict()), axis=1) if len(f) else pd.Series(dtype=bool)
        return {"runs": len(f), "done": int(done.sum()), "failed": int((f["status"] == FAILED).sum())}


def read_csv(out_dir: str | Path) -> pd.DataFrame:
    """sweep.csv as written (the page reads it as the map's points)."""
    return pd.read_csv(Path(out_dir) / CSV)


# --- the local runner: the training service ------------------------------------------------------
def default_workers(device: str, cpus: int, gpus: int) -> int:
    """One worker per core on CPU. With a GPU every worker trains on it: tiny recurrent runs leave
    most of a GPU idle, so two processes per GPU keep it busier, but no more than there are cores."""
    if gpus > 0 and device in ("auto", "cuda"):
        return max(1, min(cpus, 2 * gpus))
    return max(1, cpus)


def machine_workers(spec: SweepSpec) -> int:
    import torch

    return default_workers(str(spec.base.get("device", "auto")), os.cpu_count() or 1,
                           torch.cuda.device_count() if torch.cuda.is_available() else 0)


@contextmanager
def _no_sigint_in_children():
    """Worker processes started in here ignore Ctrl-C (a spawned Python keeps an ignored SIGINT), so
    the terminal's Ctrl-C reaches only the driver, which stops the runs and writes the csv."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    old = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, old)


def local_service(workers: int):
    """A training service of `workers` processes with one torch thread each, for a sweep."""
    from .service import TrainingService
    from .settings import ServiceSettings

    settings = ServiceSettings(workers=workers, pool="process", torch_threads=1, max_queue=2 * workers + 2,
                               abandon_after_s=3600.0, ray_address=None)  # local: --ray-address is run_ray's
    with _no_sigint_in_children():
        return TrainingService(settings)


def run_local(sweep: Sweep, workers: int | None = None, on_row: Callable[[dict], None] | None = None,
              stop: threading.Event | None = None, service: Any = None) -> dict[str, int]:
    """Train every run still to do through a training service (ours, or `service`, e.g. the app's),
    keeping each worker busy with one run and the next one queued. Returns sweep.counts().

    On Ctrl-C (KeyboardInterrupt) or `stop`, the queued runs are cancelled and the running ones
    stopped and marked interrupted (a rerun trains them again); sweep.csv is written either way."""
    from .service import ServiceError

    if not sweep.todo():
        return sweep.counts()
    own = service is None
    if own:
        workers = workers or machine_workers(sweep.spec)
        service = local_service(workers)
    limit = 2 * (workers or service.settings.workers)
    todo, running = deque(sweep.todo()), {}
    try:
        while todo or running:
            if stop is not None and stop.is_set():
                break
            while todo and len(running) < limit:
                t = todo.popleft()
                sweep.clear(t)
                try:
                    job = service.submit(t.planned.cfg, t.run_dir, t.name, check_limits=False)
                except ServiceError:  # a shared service's queue is full (a class is training): try again soon
                    todo.appendleft(t)
                    break
                running[job.id] = (t, job)
            for job_id, (t, job) in list(running.items()):
                job.poll()
                if job.done:
                    del running[job_id]
                    row = sweep.record(t, error=job.error if job.state == "failed" else None)
                    if on_row is not None:
                        on_row(row)
            time.sleep(POLL_S)
    finally:
        for t, job in running.values():
            job.stop()
        for t, job in running.values():
            job.wait(timeout=30)
            sweep.record(t, status=INTERRUPTED if job.state != "cancelled" else PENDING)
        sweep.write_csv()
        if own:
            service.shutdown()
    return sweep.counts()


# --- the Ray runner ----------------------------------------------------------------------------------
RAY_MISSING = ("Ray is not installed: pip install -r requirements-ray.txt (it is an optional extra; "
               "without --ray-address the sweep runs on this machine)")


def import_ray():
    try:
        import ray
    except ImportError:
        raise SweepError(RAY_MISSING) from None
    return ray


def ray_runtime_env() -> dict:
    """What a Ray worker needs to import this library: the rnn_core package, shipped by Ray."""
    return {"py_modules": [str(Path(__file__).resolve().parent)]}


def train_to_files(config: dict) -> dict[str, bytes]:
    """A Ray task: train one run in a temporary directory with one torch thread, return its files."""
    import torch

    from .trainer import Trainer

    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory(prefix="bptt-sweep-") as tmp:
        trainer = Trainer(make_config(config), out_dir=Path(tmp) / "run")
        trainer.run()  # the writer saves the run when it ends
        return {p.name: p.read_bytes() for p in sorted((Path(tmp) / "run").iterdir())
                if p.is_file() and not p.name.startswith(".")}


def write_files(task: Task, files: dict[str, bytes]) -> None:
    """A run's files from a Ray task into the store; status.json last, so a half-written run reads
    as interrupted, never as finished."""
    for name in files:
        if not (RUN_NAME.match(name) and ".." not in name):
            raise SweepError(f"a Ray task returned a file named {show(repr(name))}")
    for name, data in sorted(files.items(), key=lambda kv: kv[0] == "status.json"):
        store.atomic_write_bytes(task.run_dir / name, data)


def _check_reachable(address: str | None, timeout_s: float = 5.0) -> None:
    """HOST:PORT must accept a connection: Ray itself retries an unreachable address for minutes."""
    if address in (None, "auto", "local") or str(address).startswith("ray://"):
        return
    host, sep, port = str(address).rpartition(":")
    if not sep or not host or not port.isdigit():
        raise SweepError(f"--ray-address {show(str(address))} is not allowed: give auto or HOST:PORT, e.g. 127.0.0.1:6379")
    import socket

    try:
        socket.create_connection((host, int(port)), timeout=timeout_s).close()
    except OSError as err:
        raise SweepError(f"no Ray cluster answers at {show(str(address))} ({type(err).__name__}): start one with "
                         "'ray start --head' or give its HOST:PORT") from None


def connect_ray(address: str | None) -> bool:
    """Join the Ray cluster at `address` unless Ray is initialised already; True when this call
    connected (the caller then calls ray.shutdown()). SweepError with one line when it cannot."""
    ray = import_ray()
    if ray.is_initialized():
        return False
    _check_reachable(address)
    try:
        ray.init(address=address, runtime_env=ray_runtime_env(), log_to_driver=False,
                 include_dashboard=False if address in (None, "local") else None)
    except (ConnectionError, RuntimeError, ValueError) as err:
        raise SweepError(f"could not connect to the Ray cluster at {show(str(address))}: "
                         f"{show(' '.join(str(err).split()), 200)}") from None
    return True


def run_ray(sweep: Sweep, address: str | None = "auto", on_row: Callable[[dict], None] | None = None,
            stop: threading.Event | None = None) -> dict[str, int]:
    """Every run still to do as a Ray task on the cluster at `address` ("auto", "HOST:PORT" or
    "ray://HOST:PORT"; None: Ray is already initialised). Ray schedules them, one CPU each;
    the driver writes each result into the store as it arrives. Ctrl-C cancels the rest."""
    ray = import_ray()
    started = connect_ray(address)
    remote = ray.remote(num_cpus=1, max_retries=0)(train_to_files)
    refs = {}
    try:
        for t in sweep.todo():
            sweep.clear(t)
            refs[remote.remote(t.planned.cfg.model_dump())] = t
        while refs:
            if stop is not None and stop.is_set():
                break
            ready, _ = ray.wait(list(refs), num_returns=1, timeout=0.5)
            for ref in ready:
                t = refs.pop(ref)
                try:
                    write_files(t, ray.get(ref))
                    row = sweep.record(t)
                except Exception as err:  # noqa: BLE001 - a task that failed on the cluster: its row says why
                    row = sweep.record(t, error=f"{type(err).__name__}: {' '.join(str(err).split())[:300]}")
                if on_row is not None:
                    on_row(row)
    finally:
        for ref in refs:
            ray.cancel(ref, force=True)
        sweep.write_csv()
        if started:
            ray.shutdown()
    return sweep.counts()


# --- in the background (the app's Sweeps page) --------------------------------------------------------
class BackgroundSweep:
    """A sweep that runs on its own thread through a training service (the app's), so a page only
    looks at it: `sweep.frame()` fills in as runs end. stop() cancels what waits and stops what runs."""

    def __init__(self, sweep: Sweep, service: Any):
        self.sweep, self.error, self.counts = sweep, None, None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(service,), name=f"sweep {sweep.dir.name}", daemon=True)
        self._thread.start()

    def _run(self, service: Any) -> None:
        try:
            self.counts = run_local(self.sweep, service=service, stop=self._stop)
        except Exception as err:  # noqa: BLE001 - shown on the page in one line
            self.error = f"{type(err).__name__}: {err}"

    @property
    def running(self) -> bool:
        return self._thread.is_alive()

    @property
    def stopping(self) -> bool:
        return self._stop.is_set() and self.running

    def stop(self) -> None:
        self._stop.set()

    def join(self, timeout: float | None = None) -> bool:
        self._thread.join(timeout)
        return not self._thread.is_alive()


def list_sweeps(root: Path | None = None) -> list[str]:
    """The sweep directories in the run store (each holds a sweep.toml), by name."""
    root = root or store.runs_root()
    if not root.is_dir():
        return []
    return sorted(p.name for p in root.iterdir() if RUN_NAME.match(p.name) and (p / SPEC).is_file())
