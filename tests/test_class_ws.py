"""Sessions over Streamlit's own websocket (bench/class_ws.py, the class benchmark's client).
Two press Train on a lesson in the same second: both get an answer, both runs finish and are
saved, and the click's answer is the first thing its page run sends. A closed tab's run is
stopped and saved; a tab still connected but silent keeps its run."""
from __future__ import annotations

import asyncio
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))

import bench_class as bc  # noqa: E402

LINK = "/lessons?lesson=vanishing&step=1"
WIDGETS = {"number_input", "selectbox", "slider", "checkbox"}  # the sidebar form's


async def _two_sessions(port: int):
    sessions = [bc.Session(i) for i in range(2)]
    pages = await asyncio.gather(*(bc.open_ws(port, LINK, s, 90) for s in sessions))
    try:
        for page in pages:
            page.trace = []
        await asyncio.gather(*(bc.press_ws(p, s) for p, s in zip(pages, sessions)))
        await asyncio.gather(*(bc.watch_ws(p, s, 120) for p, s in zip(pages, sessions)))
        return sessions, [p.trace for p in pages]
    finally:
        for page in pages:
            await page.close()


def test_two_sessions_train_a_lesson_over_the_websocket(tmp_path):
    runs, port = tmp_path / "runs", bc.free_port()
    proc = bc.start_server(runs, port, tmp_path / "server.log")
    try:
        sessions, traces = asyncio.run(_two_sessions(port))
    finally:
        bc.stop_server(proc)
    for s in sessions:
        assert not s.error and s.exceptions == 0
        assert s.first_kind in ("chart", "queued") and s.first_s is not None
        assert s.done_s is not None and s.done_s >= s.first_s
    total, finished, bad = bc.check_runs(runs)
    assert (total, finished, bad) == (2, 2, [])
    for trace in traces:  # the click's run draws the status (an alert or the progress bar) before the form
        first_status = min(trace.index(k) for k in ("alert", "progress") if k in trace)
        first_widget = min(trace.index(k) for k in WIDGETS if k in trace)
        assert first_status < first_widget, trace[:12]


def _state(run: Path) -> str:
    status = run / "status.json"
    return json.loads(status.read_text())["status"] if status.exists() else "running"


async def _closed_and_silent(port: int, runs: Path):
    """A: trains, then its poll timer stops but its socket stays open (a starved or background tab).
    B: trains, then its socket closes (the tab was closed)."""
    a, b = bc.Session(0), bc.Session(1)
    pa = await bc.open_ws(port, LONG, a, 90)
    pb = await bc.open_ws(port, LONG, b, 90)
    await bc.press_ws(pa, a)
    await _until(lambda: a.first_s is not None, 30)
    (run_a,) = _runs(runs)
    await bc.press_ws(pb, b)
    await _until(lambda: b.first_s is not None, 30)
    (run_b,) = _runs(runs) - {run_a}
    pa._poller.cancel()  # no more polls from A, which stays connected
    await pb.close()
    await _until(lambda: _state(run_b) == "stopped", 30)  # B's run was stopped and saved
    await asyncio.sleep(2 * ABANDON_S)
    a_kept = _state(run_a)  # A's connected page keeps its run though it polls no more
    await pa.close()
    await _until(lambda: _state(run_a) == "stopped", 30)  # and once A's tab closes, it goes too
    return a_kept


def _runs(runs: Path) -> set[Path]:
    return {d for d in runs.iterdir() if d.is_dir() and not d.name.startswith("_")}


async def _until(done, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while not done():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.1)


ABANDON_S = 2.0
LONG = "/?seq_len=50&steps=20000"


def test_a_closed_tab_stops_its_run_and_a_connected_silent_one_keeps_it(tmp_path):
    """The service's abandon rule, through Streamlit's own session registry (jobs.session_connected):
    a page that stopped polling loses its run only once its websocket is gone."""
    runs, port = tmp_path / "runs", bc.free_port()
    proc = bc.start_server(runs, port, tmp_path / "server.log", env={"BPTT_LAB_ABANDON_AFTER_S": str(ABANDON_S)})
    try:
        a_kept = asyncio.run(_closed_and_silent(port, runs))
    finally:
        bc.stop_server(proc)
    assert a_kept == "running"
