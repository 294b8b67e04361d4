"""The training service: a bounded pool of workers, a FIFO queue in front of it, and jobs that
publish bounded snapshots for pages to draw at their own pace.

    service = TrainingService(ServiceSettings(workers=2))
    job = service.submit(make_config(cell="lstm"), out_dir=store.run_dir("demo"))
    while not job.done:
        job.poll()                 # a page polls; a job nobody polls for a while is stopped and saved
        time.sleep(0.2)
    view = job.view()             # read-only: what every panel draws (rnn_core.view.RunView)

Workers are processes (spawned once, each imports torch once and keeps it) or threads. A worker
trains one job at a time and sends its new StepRecords every `publish_every_s`, so training
never waits for drawing. One service thread hands queued jobs to idle workers in FIFO order,
folds the workers' messages into each job's bounded History, stops jobs whose page has gone
and replaces a worker process that died (its job fails; the others go on).
"""
from __future__ import annotations

import itertools
import multiprocessing as mp
import os
import queue
import sys
import threading
import time
import types
from collections import deque
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from . import budget
from .config import RunConfig
from .history import History
from .settings import ServiceSettings, load_settings

QUEUED, RUNNING = "queued", "running"
ENDED = ("finished", "stopped", "diverged", "failed", "cancelled")
RATE_WINDOW_S = 5.0  # steps per second over the last few seconds


class ServiceError(ValueError):
    """A job the service will not take: the queue is full, or the config is over this server's limits."""


@dataclass
class Job:
    """One run in the service. Its fields are written by the service thread under `lock`;
    readers take a view (`job.view()`), never the live History."""
    id: str
    name: str
    out_dir: Path
    cfg: RunConfig
    resume: bool = False
    steps: int | None = None  # resume: the new step budget
    state: str = QUEUED  # queued, running, then the trainer's final status, "failed" or "cancelled"
    history: History = field(default_factory=History)
    summary: dict = field(default_factory=dict)  # the trainer's latest summary()
    info: dict = field(default_factory=dict)  # engine, device, seq_len: sent when the job starts
    error: str | None = None
    worker: int | None = None
    submitted_at: float = field(default_factory=time.monotonic)
    started_at: float | None = None
    ended_at: float | None = None
    last_poll: float = field(default_factory=time.monotonic)
    # Is the page's session still connected? (the app passes Streamlit's own answer). A connected page
    # that cannot poll (its browser starved by 30 tabs on 2 cores) keeps its run for longer
    # (`abandon_connected_after_s`); a silent, disconnected or unknown (None) page is abandoned after
    # `abandon_after_s`. Called on the service thread.
    connected: Callable[[], bool] | None = field(default=None, repr=False)
    marks: deque = field(default_factory=lambda: deque(maxlen=256))  # (time, steps done)
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _service: Any = field(default=None, repr=False)

    @property
    def done(self) -> bool:
        return self.state in ENDED

    @property
    def steps_done(self) -> int:
        return int(self.summary.get("steps_done", 0))

    def poll(self) -> None:
        """The page is still there: without polls for `abandon_after_s`, and once its session has
        disconnected (`connected`), the job is stopped."""
        self.last_poll = time.monotonic()

    def position(self) -> int:
        """1 for the first job in the queue, 2 for the next, ...; 0 once it runs or has ended."""
        return self._service.position(self) if self._service is not None else 0

    def steps_per_second(self) -> float:
        with self.lock:
            if len(self.marks) < 2:
                return 0.0
            (t0, s0), (t1, s1) = self.marks[0], self.marks[-1]
        return (s1 - s0) / (t1 - t0) if t1 > t0 else 0.0

    def stop(self) -> None:
        if self._service is not None:
            self._service.stop(self)

    def view(self):
        from .view import RunView

        return RunView.from_job(self)

    def wait_first_step(self, timeout: float) -> bool:
        """Wait for the first step while a worker trains the job, so a page's click can draw its
        first chart itself. A queued job returns at once: its page shows the queue position now,
        and its session's script thread does not sit out the timeout while 30 clicks arrive."""
        return self.wait(timeout=timeout, until=lambda j: j.steps_done > 0 or j.state == QUEUED)

    def wait(self, timeout: float | None = None, poll_s: float = 0.01, until=None) -> bool:
        """Block until the job has ended, or until `until(job)` holds (polling it meanwhile); False on timeout."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while not (self.done or (until is not None and until(self))):
            self.poll()
            if deadline is not None and time.monotonic() > deadline:
                return False
            time.sleep(poll_s)
        return True


# --- the worker side: runs in a worker process or thread ------------------------------------------
def _watch(stop_event, finished: threading.Event, trainer, parent_alive) -> None:
    """Turn a Stop (or the death of the server process) into trainer.request_stop(), mid-step too."""
    while not finished.is_set():
        if stop_event.wait(0.2) or not parent_alive():
            trainer.request_stop()
            return


def _run_job(index: int, job_id: str, spec: dict, results, stop_event, publish_every_s: float, parent_alive) -> None:
    from .config import make_config
    from .trainer import Trainer

    trainer, pending, error = None, [], None
    finished = threading.Event()
    try:
        if spec["resume"]:
            trainer = Trainer.resume(spec["out_dir"], steps=spec["steps"])
        else:
            trainer = Trainer(make_config(spec["config"]), out_dir=spec["out_dir"])
        results.put((index, job_id, "started", {"engine": trainer.engine, "device": str(trainer.device),
                                                "steps_done": trainer.step_index}))
        threading.Thread(target=_watch, args=(stop_event, finished, trainer, parent_alive), daemon=True).start()
        last = None
        while not trainer.done:
            rec = trainer.step()
            if rec is not None:  # None: the step was interrupted by a stop and undone
                pending.append(rec)
            now = time.monotonic()
            if last is None or now - last >= publish_every_s:  # the first step at once: the first chart
                results.put((index, job_id, "steps", (pending, trainer.summary())))
                pending, last = [], now
    except Exception as err:  # noqa: BLE001 - one job's failure is reported, the worker goes on
        error = f"{type(err).__name__}: {err}"
        if trainer is not None and not trainer.done:
            try:
                trainer.stop()
            except Exception:  # noqa: BLE001 - the first error is the one worth showing
                pass
    finally:
        finished.set()
    summary = trainer.summary() if trainer is not None else None
    results.put((index, job_id, "end", (pending, summary, error)))


def _worker_loop(index: int, commands, results, stop_event, torch_threads: int, publish_every_s: float,
                 in_process: bool, nice: int = 0) -> None:
    parent = mp.parent_process() if in_process else None
    parent_alive = (lambda: parent.is_alive()) if parent is not None else (lambda: True)
    if in_process:
        import torch

        if nice:  # training is background work: the pages' server and a browser on the same cores go first
            os.nice(nice)
        torch.set_num_threads(torch_threads)
        _warm_up()
    results.put((index, None, "ready", os.getpid()))
    while True:
        try:
            cmd = commands.get(timeout=1.0)
        except queue.Empty:
            if not parent_alive():
                return
            continue
        if cmd is None:
            return
        job_id, spec = cmd
        _run_job(index, job_id, spec, results, stop_event, publish_every_s, parent_alive)


def _warm_up() -> None:
    """One throwaway step, so a worker's first job does not pay torch's lazy set-up (~1-3 s)."""
    from .config import make_config
    from .trainer import Trainer

    Trainer(make_config(steps=2, device="cpu")).step()


# --- the server side ---------------------------------------------------------------------------
def _still_connected(job: Job) -> bool:
    if job.connected is None:
        return False
    try:
        return bool(job.connected())
    except Exception:  # noqa: BLE001 - a page we cannot ask about counts as gone
        return False


@contextmanager
def _no_main_for_children():
    """A spawned child first re-imports the parent's __main__ module by its file. Under Streamlit
    that "module" is the app script itself (its script runner installs one as __main__), so every
    worker ran the whole app in bare mode before training: seconds of start-up and a flood of
    warnings. While a worker starts, __main__ is a bare module with no file, so the child imports
    only rnn_core (which is all a worker needs). A real `python -m ...` main has a spec and is
    left alone (spawn does not re-import a package's __main__)."""
    main = sys.modules.get("__main__")
    if main is None or getattr(main, "__spec__", None) is not None or not getattr(main, "__file__", None):
        yield
        return
    sys.modules["__main__"] = types.ModuleType("__main__")
    try:
        yield
    finally:
        sys.modules["__main__"] = main



@dataclass
class _Worker:
    index: int
    commands: Any
    stop_event: Any
    handle: Any  # Process or Thread
    ready: bool = False
    job: Job | None = None
    # A worker process's own results queue. A shared multiprocessing.Queue has one write lock for
    # every writer: a worker killed while writing held it for ever, and the other workers' messages
    # never came (seen in tests/test_service.py). A dead worker's queue goes with it.
    results: Any = None


class TrainingService:
    def __init__(self, settings: ServiceSettings | None = None):
        self.settings = settings or load_settings()
        self.limits = budget.Limits(self.settings.max_job_mb * 2**20, self.settings.max_step_s)
        # the backend seam: Ray actors (rnn_core/service_ray.py) when BPTT_LAB_RAY_ADDRESS is set, else local
        self._ray = None
        if self.settings.ray_address:
            from .service_ray import RayBackend

            self._ray = RayBackend(self.settings.ray_address)
        self._in_process = self.settings.pool == "process" or self._ray is not None
        self._ctx = mp.get_context("spawn") if self._in_process else None
        # One results queue for threads and Ray; the process pool gives each worker its own (see _Worker.results)
        self._per_worker = self._in_process and self._ray is None
        self._results = self._ray.queue() if self._ray else None if self._per_worker else queue.Queue()
        self._lock = threading.RLock()
        self._queue: deque[Job] = deque()
        self._jobs: dict[str, Job] = {}
        self._ids = itertools.count(1)
        self._closed = False
        if not self._in_process:
            import torch

            torch.set_num_threads(self.settings.torch_threads)  # process-wide: the threads share it
        self._workers = [self._start_worker(i) for i in range(self.settings.workers)]
        self._thread = threading.Thread(target=self._loop, name="bptt-lab-service", daemon=True)
        self._thread.start()

    # --- public ------------------------------------------------------------------------------
    def submit(self, cfg: RunConfig, out_dir: str | Path, name: str | None = None,
               check_limits: bool = True, connected: Callable[[], bool] | None = None) -> Job:
        """Queue a new run saved into `out_dir`. Raises ServiceError when over the limits or full."""
        if check_limits:
            self.check(cfg)
        out_dir = Path(out_dir)
        return self._enqueue(Job(self._next_id(), name or out_dir.name, out_dir, cfg, connected=connected))

    def resume(self, out_dir: str | Path, steps: int | None = None, name: str | None = None,
               connected: Callable[[], bool] | None = None) -> Job:
        """Queue the continuation of a saved run; its History starts from what the store holds."""
        from . import store
        from .config import make_config

        out_dir = Path(out_dir)
        data = store.load_run(out_dir)
        values = {**data.config, **({"steps": steps} if steps is not None else {})}
        cfg = make_config(values)
        self.check(cfg)
        job = Job(self._next_id(), name or out_dir.name, out_dir, cfg, resume=True, steps=steps,
                  history=History.from_run(data), summary=dict(data.status), connected=connected)
        return self._enqueue(job)

    def check(self, cfg: RunConfig) -> None:
        problem = self.limits.check(budget.estimate(cfg))
        if problem:
            raise ServiceError(problem)

    def stop(self, job: Job) -> None:
        """A queued job is cancelled; a running one stops within about a second and is saved."""
        with self._lock:
            if job.state == QUEUED:
                self._queue.remove(job)
                self._end(job, "cancelled", None)
            elif job.state == RUNNING and job.worker is not None:
                self._workers[job.worker].stop_event.set()

    def position(self, job: Job) -> int:
        with self._lock:
            return next((k + 1 for k, j in enumerate(self._queue) if j is job), 0)

    def jobs(self) -> list[Job]:
        with self._lock:
            return list(self._jobs.values())

    def counts(self) -> dict[str, int]:
        with self._lock:
            running = sum(1 for w in self._workers if w.job is not None)
            return {"running": running, "queued": len(self._queue), "workers": len(self._workers),
                    "ready": sum(w.ready for w in self._workers)}

    def shutdown(self, timeout: float = 10.0) -> None:
        """Stop every job (each is saved), then the workers."""
        with self._lock:
            self._closed = True
            for job in list(self._queue):
                self.stop(job)
            for w in self._workers:
                if w.job is not None:
                    w.stop_event.set()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and any(w.job is not None for w in self._workers):
            time.sleep(0.05)
        for w in self._workers:
            if self._in_process:
                w.commands.cancel_join_thread()  # exit never waits on a pipe to a worker that is gone
            if w.handle.is_alive():
                w.commands.put(None)
        for w in self._workers:
            w.handle.join(max(0.1, deadline - time.monotonic()))
            if self._in_process and w.handle.is_alive():
                w.handle.terminate()

    # --- inside ----------------------------------------------------------------------------------
    def _next_id(self) -> str:
        return f"job{next(self._ids)}"

    def _enqueue(self, job: Job) -> Job:
        job._service = self
        with self._lock:
            if self._closed:
                raise ServiceError("the training service is shutting down")
            if len(self._queue) >= self.settings.max_queue:
                raise ServiceError(f"the server is busy: {len(self._queue)} runs are waiting already "
                                   f"(at most {self.settings.max_queue}); try again in a minute")
            self._jobs[job.id] = job
            self._queue.append(job)
            self._dispatch()
        return job

    def _start_worker(self, index: int) -> _Worker:
        s = self.settings
        if self._ray is not None:
            return _Worker(index, *self._ray.start_worker(index, self._results, s.torch_threads, s.publish_every_s))
        if self._in_process:
            commands, stop_event, results = self._ctx.Queue(), self._ctx.Event(), self._ctx.Queue()
            handle = self._ctx.Process(target=_worker_loop, name=f"bptt-lab-worker-{index}", daemon=True,
                                       args=(index, commands, results, stop_event, s.torch_threads,
                                             s.publish_every_s, True, s.worker_nice))
            with _no_main_for_children():
                handle.start()
            return _Worker(index, commands, stop_event, handle, results=results)
        else:
            commands, stop_event = queue.Queue(), threading.Event()
            handle = threading.Thread(target=_worker_loop, name=f"bptt-lab-worker-{index}", daemon=True,
                                      args=(index, commands, self._results, stop_event, s.torch_threads,
                                            s.publish_every_s, False))
            handle.start()
        return _Worker(index, commands, stop_event, handle)

    def _dispatch(self) -> None:
        """Hand queued jobs to idle, ready workers, oldest first (caller holds the lock)."""
        for w in self._workers:
            if not self._queue:
                return
            if w.ready and w.job is None:
                job = self._queue.popleft()
                w.job, job.worker, job.state, job.started_at = job, w.index, RUNNING, time.monotonic()
                w.stop_event.clear()  # before the command: a Stop clicked from now on applies to this job
                spec = {"resume": job.resume, "steps": job.steps, "out_dir": str(job.out_dir),
                        "config": job.cfg.model_dump()}
                w.commands.put((job.id, spec))

    def _loop(self) -> None:
        last_housekeep = 0.0
        while True:
            try:
                msgs = self._receive()
            except (EOFError, OSError):  # the queue's pipe closed: the process is ending
                return
            with self._lock:
                for msg in msgs:
                    self._handle(*msg)
                if time.monotonic() - last_housekeep >= 0.1:
                    self._housekeep()
                    last_housekeep = time.monotonic()
                if self._closed and not any(w.job for w in self._workers):
                    return

    def _receive(self) -> list:
        """The next messages: from the shared queue (threads, Ray), or whatever every worker
        process's own queue holds (waiting 20 ms when none has any)."""
        if not self._per_worker:
            try:
                return [self._results.get(timeout=0.25)]
            except queue.Empty:
                return []
        msgs = []
        for w in list(self._workers):
            for _ in range(64):  # a bounded drain, so one chatty worker cannot starve the housekeeping
                try:
                    msgs.append(w.results.get_nowait())
                except queue.Empty:
                    break
                except (EOFError, OSError):  # a dead worker's queue: _housekeep replaces the worker
                    break
        if not msgs:
            time.sleep(0.02)
        return msgs

    def _handle(self, index: int, job_id: str | None, kind: str, payload: Any) -> None:
        w = self._workers[index]
        if kind == "ready":
            w.ready = True
            self._dispatch()
            return
        job = self._jobs.get(job_id)
        if job is None or w.job is not job:
            return
        if kind == "started":
            with job.lock:
                job.info = payload
                job.marks.append((time.monotonic(), payload["steps_done"]))
            return
        records, summary, error = payload if kind == "end" else (*payload, None)
        with job.lock:
            for rec in records:
                job.history.add(rec)
            if summary is not None:
                job.summary = summary
                job.marks.append((time.monotonic(), summary.get("steps_done", 0)))
                while len(job.marks) > 2 and job.marks[-1][0] - job.marks[0][0] > RATE_WINDOW_S:
                    job.marks.popleft()
        if kind == "end":
            state = "failed" if error else (summary or {}).get("status", "failed")
            w.job = None
            self._end(job, state if state in ENDED else "stopped", error)
            self._dispatch()

    def _end(self, job: Job, state: str, error: str | None) -> None:
        with job.lock:
            job.state, job.error, job.ended_at, job.worker = state, error, time.monotonic(), None

    def _housekeep(self) -> None:
        now = time.monotonic()
        gone = self.settings.abandon_after_s
        for job in list(self._jobs.values()):
            silent = now - job.last_poll
            if job.done:
                if now - max(job.last_poll, job.ended_at or 0) > gone:
                    del self._jobs[job.id]  # the page that held it is gone too: free its History
            elif silent > gone and (silent > self.settings.abandon_connected_after_s or not _still_connected(job)):
                self.stop(job)  # abandoned: stopped and saved, resumable from the Runs library
        if self._in_process and not self._closed:
            for w in self._workers:
                if not w.handle.is_alive():
                    self._replace(w)

    def _replace(self, w: _Worker) -> None:
        """A worker process died (killed for memory, a crash in a kernel): fail its job, start another."""
        code = w.handle.exitcode
        if w.job is not None:
            self._end(w.job, "failed", f"the training process died (exit code {code}"
                                       f"{': out of memory?' if code in (-9, 137) else ''}); other runs go on")
        self._workers[w.index] = self._start_worker(w.index)
