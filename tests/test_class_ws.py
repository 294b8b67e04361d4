"""Two sessions over Streamlit's own websocket (bench/class_ws.py, the class benchmark's client)
press Train on a lesson in the same second: both get an answer, both runs finish and are saved,
and the click's answer is the first thing its page run sends."""
from __future__ import annotations

import asyncio
import sys
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
