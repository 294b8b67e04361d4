"""The training service's workers on a Ray cluster (BPTT_LAB_RAY_ADDRESS): the backend seam.

    BPTT_LAB_RAY_ADDRESS=auto streamlit run streamlit_app.py     # a cluster started with `ray start --head`

Each worker is a Ray actor (one CPU) that runs the same worker loop as a local worker process
(rnn_core.service._worker_loop); its command queue, the service's result queue and its stop flag
are Ray objects with the interface of multiprocessing's, so the service's scheduling, snapshots,
stops and dead-worker replacement are unchanged. Ray places the actors; the service still hands
each job to an idle worker in FIFO order. A worker writes its run into the job's out_dir on the
node it runs on: on a cluster of several machines the run store must be one shared directory,
mounted at the same path everywhere (on one machine it is simply the local store).
"""
from __future__ import annotations

import queue
import time
from typing import Any

from .rules import show

FLAG_POLL_S = 0.05  # how often a worker's stop flag is read while it waits


class RayFlag:
    """multiprocessing.Event's set/clear/is_set/wait, over a tiny Ray actor (picklable: it holds a handle)."""

    def __init__(self, actor: Any):
        self._actor = actor

    def set(self) -> None:
        import ray

        ray.get(self._actor.set.remote(True))

    def clear(self) -> None:
        import ray

        ray.get(self._actor.set.remote(False))

    def is_set(self) -> bool:
        import ray

        return bool(ray.get(self._actor.get.remote()))

    def wait(self, timeout: float | None = None) -> bool:
        deadline = None if timeout is None else time.monotonic() + timeout
        while not self.is_set():
            if deadline is not None and time.monotonic() >= deadline:
                return False
            time.sleep(FLAG_POLL_S)
        return True


class RayQueue:
    """A Ray queue with the calls the service makes on a multiprocessing queue."""

    def __init__(self):
        from ray.util.queue import Queue

        self._q = Queue(actor_options={"num_cpus": 0})

    def put(self, item: Any) -> None:
        self._q.put(item)

    def get(self, timeout: float | None = None) -> Any:
        from ray.exceptions import RayError

        try:
            return self._q.get(timeout=timeout)
        except queue.Empty:  # also as a RayTaskError(Empty), which is a RayError too: nothing came
            raise queue.Empty from None
        except (RayError, SystemExit):  # Ray raises SystemExit in a thread blocked here when it shuts down
            raise EOFError("the Ray queue is gone") from None

    def cancel_join_thread(self) -> None:
        """Nothing to cancel: no feeder thread behind a Ray queue."""


class RayWorkerHandle:
    """A worker actor as the service sees a Process: is_alive, join, terminate, exitcode."""

    def __init__(self, actor: Any, ref: Any):
        self._actor, self._ref = actor, ref

    def _ended(self, timeout: float = 0.0) -> bool:
        import ray

        ready, _ = ray.wait([self._ref], timeout=timeout)
        return bool(ready)

    def is_alive(self) -> bool:
        return not self._ended()

    def join(self, timeout: float | None = None) -> None:
        self._ended(timeout if timeout is not None else 3600.0)

    def terminate(self) -> None:
        import ray

        ray.kill(self._actor)

    @property
    def exitcode(self) -> int | None:
        if not self._ended():
            return None
        import ray

        try:
            ray.get(self._ref)
            return 0
        except Exception:  # noqa: BLE001 - the actor died (killed, out of memory): the service says so
            return -9


def _actor_classes():
    import ray

    @ray.remote(num_cpus=0)
    class Flag:
        def __init__(self):
            self.value = False

        def set(self, value: bool) -> None:
            self.value = value

        def get(self) -> bool:
            return self.value

    @ray.remote(num_cpus=1)
    class Worker:
        def run(self, index, commands, results, stop_event, torch_threads, publish_every_s):
            from rnn_core.service import _worker_loop

            # in_process=True: one torch thread, a warm-up step; a Ray actor has no multiprocessing parent
            _worker_loop(index, commands, results, stop_event, torch_threads, publish_every_s, True, 0)

    return Flag, Worker


class RayBackend:
    """Joins the cluster once (unless Ray is initialised already) and starts worker actors."""

    def __init__(self, address: str):
        try:
            import ray
        except ImportError:
            raise ValueError("BPTT_LAB_RAY_ADDRESS is set but Ray is not installed: "
                             "pip install -r requirements-ray.txt, or unset it to train on this machine") from None
        if not ray.is_initialized():
            from .sweep import SweepError, connect_ray

            try:
                connect_ray(address)
            except SweepError as err:
                raise ValueError(f"BPTT_LAB_RAY_ADDRESS={show(address)}: {err}") from None
        self._flag_cls, self._worker_cls = _actor_classes()

    def queue(self) -> RayQueue:
        return RayQueue()

    def start_worker(self, index: int, results: RayQueue, torch_threads: int, publish_every_s: float):
        """(commands, stop_event, handle) of a new worker actor running the worker loop."""
        commands, stop_event = RayQueue(), RayFlag(self._flag_cls.remote())
        actor = self._worker_cls.remote()
        ref = actor.run.remote(index, commands, results, stop_event, torch_threads, publish_every_s)
        return commands, stop_event, RayWorkerHandle(actor, ref)
