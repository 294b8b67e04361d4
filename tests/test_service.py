"""The training service: queue order, the cap, Stop, an abandoned page, a failing job, a dead
worker, the limits; and views of a live job against views of the same run on disk.

Most tests use the thread pool (no process start-up); the process pool, the default, is tested
for what only it can do (a worker killed mid-job) and for the live/disk view agreement.
Nothing here asserts on time: waits are bounded so a broken service fails instead of hanging.
"""
from __future__ import annotations

import json
import os
import signal
import time

import pandas as pd
import pytest

from rnn_core import make_config, store
from rnn_core.service import ServiceError, TrainingService
from rnn_core.settings import ServiceSettings
from rnn_core.view import RunView, resumable_runs

WAIT = 120  # seconds: a generous bound, never a timing assertion


def _service(**kw) -> TrainingService:
    return TrainingService(ServiceSettings(**{"pool": "thread", "workers": 1, **kw}))


def _until(cond, timeout=WAIT, jobs=()):
    deadline = time.monotonic() + timeout
    while not cond():
        for j in jobs:
            j.poll()
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.02)


def small(**kw):
    return make_config(**{"steps": 20, "hidden_size": 8, "seq_len": 10, "eval_every": 5, **kw})


@pytest.fixture
def thread_service():
    svc = _service(workers=1)
    yield svc
    svc.shutdown()


def test_jobs_run_in_fifo_order_and_never_more_than_the_cap():
    svc = _service(workers=2)
    try:
        jobs = [svc.submit(small(seed=k), store.run_dir(f"fifo{k}")) for k in range(5)]
        seen_running = 0
        while not all(j.done for j in jobs):
            for j in jobs:
                j.poll()
            seen_running = max(seen_running, svc.counts()["running"])
            assert svc.counts()["running"] <= 2
            time.sleep(0.005)
        assert seen_running >= 1
        starts = [j.started_at for j in jobs]
        assert starts == sorted(starts)  # handed out oldest first
        assert [j.state for j in jobs] == ["finished"] * 5
    finally:
        svc.shutdown()


def test_queue_position_is_visible_and_counts_down(thread_service):
    svc = thread_service
    first = svc.submit(small(steps=100_000), store.run_dir("long"))
    _until(lambda: first.state == "running", jobs=[first])
    waiting = [svc.submit(small(seed=k), store.run_dir(f"wait{k}")) for k in range(3)]
    assert [j.position() for j in waiting] == [1, 2, 3]
    assert first.position() == 0
    first.stop()
    _until(lambda: all(j.done for j in waiting), jobs=[first, *waiting])
    assert all(j.position() == 0 for j in waiting)


def test_waiting_for_the_first_step_returns_for_a_queued_job_and_after_a_step_for_a_running_one(thread_service):
    svc = thread_service
    first = svc.submit(small(steps=100_000), store.run_dir("long"))
    assert first.wait_first_step(WAIT) and first.steps_done > 0  # it ran a step before returning
    queued = svc.submit(small(), store.run_dir("behind"))
    assert queued.wait_first_step(WAIT) and queued.state == "queued" and queued.steps_done == 0
    first.stop()
    _until(lambda: queued.done, jobs=[first, queued])


def test_a_full_queue_refuses_with_one_line():
    svc = _service(workers=1, max_queue=1)
    try:
        running = svc.submit(small(steps=100_000), store.run_dir("busy"))
        _until(lambda: running.state == "running", jobs=[running])
        svc.submit(small(), store.run_dir("q1"))
        with pytest.raises(ServiceError, match="busy") as err:
            svc.submit(small(), store.run_dir("q2"))
        assert "\n" not in str(err.value)
    finally:
        svc.shutdown()


def test_stop_saves_a_resumable_run_and_a_queued_job_is_cancelled(thread_service):
    svc = thread_service
    job = svc.submit(small(steps=100_000), store.run_dir("stopme"))
    later = svc.submit(small(), store.run_dir("later"))
    _until(lambda: job.steps_done > 3, jobs=[job, later])
    later.stop()
    assert later.state == "cancelled"
    job.stop()
    _until(lambda: job.done, jobs=[job])
    assert job.state == "stopped"
    status = json.loads((store.run_dir("stopme") / "status.json").read_text())
    assert status["status"] == "stopped" and status["steps_done"] == job.steps_done
    assert RunView.from_disk(store.run_dir("stopme")).resumable
    assert "stopme" in resumable_runs()
    again = svc.resume(store.run_dir("stopme"), steps=job.steps_done + 5)
    _until(lambda: again.done, jobs=[again])
    assert again.state == "finished" and again.steps_done == job.steps_done + 5


def test_an_abandoned_job_is_stopped_and_saved():
    svc = _service(workers=1, abandon_after_s=0.5)
    try:
        job = svc.submit(small(steps=100_000), store.run_dir("orphan"))
        deadline = time.monotonic() + WAIT
        while not job.done:  # nobody polls: the page has gone
            assert time.monotonic() < deadline
            time.sleep(0.05)
        assert job.state == "stopped"
        status = json.loads((store.run_dir("orphan") / "status.json").read_text())
        assert status["status"] == "stopped"  # not left at "running"
    finally:
        svc.shutdown()


def test_a_silent_page_keeps_its_run_while_its_session_is_connected():
    """A browser starved by a class on 2 cores polls late: its run must not be cancelled for it."""
    svc = _service(workers=1, abandon_after_s=0.2)
    link = {"up": True}
    try:
        job = svc.submit(small(steps=100_000), store.run_dir("starved"), connected=lambda: link["up"])
        _until(lambda: time.monotonic() - job.last_poll > 1.5)  # silent for 7x the abandon time, no polls
        assert job.state == "running"
        link["up"] = False  # the tab closed: the same silence now stops and saves it
        _until(lambda: job.done)
        assert job.state == "stopped"
        # connected but silent past abandon_connected_after_s (a tab left on another page): stopped too
        svc.settings.abandon_connected_after_s = 0.5
        link["up"] = True
        kept = svc.submit(small(steps=100_000), store.run_dir("left"), connected=lambda: link["up"])
        _until(lambda: kept.done)
        assert kept.state == "stopped"
    finally:
        svc.shutdown()


def test_one_failing_job_does_not_touch_the_others():
    svc = _service(workers=2)
    try:
        bad = svc.submit(small(warm_start="no-such-run"), store.run_dir("bad"))
        good = svc.submit(small(), store.run_dir("good"))
        _until(lambda: bad.done and good.done, jobs=[bad, good])
        assert bad.state == "failed" and "no-such-run" in bad.error and "\n" not in bad.error
        assert good.state == "finished"
        after = svc.submit(small(seed=3), store.run_dir("after"))  # the worker that saw the failure still works
        _until(lambda: after.done, jobs=[after])
        assert after.state == "finished"
    finally:
        svc.shutdown()


def test_a_config_over_the_limits_is_refused_before_it_takes_memory(thread_service):
    huge = make_config(cell="lstm", seq_len=2000, hidden_size=512, layers=4, bidirectional=True, steps=1000)
    with pytest.raises(ServiceError, match="memory") as err:
        thread_service.submit(huge, store.run_dir("huge"))
    assert "\n" not in str(err.value)
    assert not store.run_dir("huge").exists()


# --- the process pool --------------------------------------------------------------------------
@pytest.fixture(scope="module")
def process_service():
    svc = TrainingService(ServiceSettings(pool="process", workers=2))
    yield svc
    svc.shutdown()


def test_views_from_a_live_job_and_from_disk_draw_the_same_figures(process_service, tmp_path):
    from dashboard.run_figures import build_figures

    for cfg in (small(cell="lstm", steps=30, record_every=2), small(cell="rnn", attention="dot", clip=0.5)):
        job = process_service.submit(cfg, tmp_path / f"view-{cfg.cell}")
        assert job.wait(WAIT)
        assert job.state == "finished", job.error
        live, disk = job.view(), RunView.from_disk(tmp_path / f"view-{cfg.cell}")
        assert live.source == "live" and disk.source == "disk"
        assert disk.steps_done == live.steps_done == cfg.steps
        a, b = build_figures(live), build_figures(disk)
        assert a.keys() == b.keys()
        for name in a:
            assert a[name].to_dict() == b[name].to_dict(), name


def test_a_killed_worker_fails_its_job_only_and_is_replaced(process_service, tmp_path):
    victim = process_service.submit(small(steps=100_000), tmp_path / "victim")
    other = process_service.submit(small(steps=60), tmp_path / "other")
    _until(lambda: victim.steps_done > 0 and victim.state == "running", jobs=[victim, other])
    pid = process_service._workers[victim.worker].handle.pid
    os.kill(pid, signal.SIGKILL)
    _until(lambda: victim.done and other.done, jobs=[victim, other])
    assert victim.state == "failed" and "died" in victim.error
    assert other.state == "finished"
    after = process_service.submit(small(), tmp_path / "after")
    assert after.wait(WAIT) and after.state == "finished"


# --- the Ray backend (BPTT_LAB_RAY_ADDRESS): skipped where Ray is not installed --------------------
@pytest.fixture(scope="module")
def ray_service(local_ray):
    svc = TrainingService(ServiceSettings(workers=1, ray_address="auto"))  # Ray is up: the backend joins it
    yield svc
    svc.shutdown()


def test_ray_backend_streams_live_snapshots_and_saves_the_same_run(ray_service, tmp_path):
    from rnn_core.trainer import Trainer
    from rnn_core.service_ray import RayWorkerHandle

    assert isinstance(ray_service._workers[0].handle, RayWorkerHandle)
    cfg = small(steps=40, record_every=2)
    job = ray_service.submit(cfg, tmp_path / "on-ray")
    seen, deadline = set(), time.monotonic() + WAIT
    while not job.done:  # what a page does: poll and take views while the job trains on the cluster
        assert time.monotonic() < deadline, "the job did not end"
        job.poll()
        seen.add(job.view().steps_done)
        time.sleep(0.02)
    assert job.state == "finished", job.error
    assert len(seen) >= 2  # snapshots arrived while it trained, not only at the end
    live, disk = job.view(), RunView.from_disk(tmp_path / "on-ray")
    assert live.steps_done == disk.steps_done == 40
    here = Trainer(cfg)
    here.run()
    assert disk.summary["final_val_loss"] == here.summary()["final_val_loss"]  # the same numbers as here
    stopped = ray_service.submit(small(steps=100_000), tmp_path / "stop-on-ray")
    _until(lambda: stopped.steps_done > 0, jobs=[stopped])
    stopped.stop()
    _until(lambda: stopped.done, jobs=[stopped])
    assert stopped.state == "stopped" and store.load_run(tmp_path / "stop-on-ray").status["status"] == "stopped"


@pytest.mark.parametrize("dropout", [0.0, 0.3])
def test_runs_trained_at_once_in_threads_are_the_runs_trained_alone(tmp_path, dropout):
    """Weight init and dropout draw from torch's one global generator. Two trainers in two threads
    (the thread pool; AppTest's sessions) once drew each other's numbers: the same config and seed
    came out with a different final loss when another run started beside it."""
    from rnn_core.trainer import Trainer

    cfg = small(steps=30, init="identity", activation="relu", dropout=dropout, layers=2)
    alone = Trainer(cfg)
    alone.run()
    want = [float(r["loss"]) for r in alone.recorder.rows]
    svc = _service(workers=3)
    try:
        jobs = [svc.submit(cfg, tmp_path / f"r{k}") for k in range(6)]
        _until(lambda: all(j.done for j in jobs), jobs=jobs)
    finally:
        svc.shutdown()
    for k in range(6):
        losses = [float(v) for v in pd.read_csv(tmp_path / f"r{k}" / "metrics.csv")["loss"]]
        assert losses == want, f"run {k} differs from the run trained alone"
