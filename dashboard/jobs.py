"""The app's one training service per server process, and the session's jobs in it.

`st.cache_resource` holds the service, shared by every session on purpose: it is the pool that
a class shares. No model lives there: each job's Trainer lives in a worker, and a session only
holds its Job handles and the read-only views taken from them.
"""
from __future__ import annotations

import atexit
from datetime import datetime, timezone
from secrets import token_hex

import streamlit as st

from rnn_core import budget, store
from rnn_core.config import RunConfig
from rnn_core.service import Job, ServiceError, TrainingService


@st.cache_resource(show_spinner="Starting the training workers (once per server)…")
def service() -> TrainingService:
    svc = TrainingService()
    _warm_figures()
    atexit.register(svc.shutdown)  # a server that exits stops and saves its runs first
    return svc


def _warm_figures() -> None:
    """Build every chart once from a tiny real run, so the first Train click does not pay for
    plotly's lazy imports (its validators load per trace type on first use: ~0.3 s here)."""
    from rnn_core.config import make_config
    from rnn_core.history import History
    from rnn_core.trainer import Trainer
    from rnn_core.view import RunView

    from .run_figures import build_figures

    for cfg in (make_config(steps=2, seq_len=4, hidden_size=2, attention="dot", clip=1.0),
                make_config(steps=2, seq_len=8, hidden_size=2, cell="lstm", task="temporal_order")):
        tr, h = Trainer(cfg), History()
        for _ in range(2):
            h.add(tr.step())
        for fig in build_figures(RunView("warm-up", cfg, "finished", tr.summary(), h)).values():
            fig.to_json()


def new_run_name(cfg: RunConfig, page: str = "explore") -> str:
    """A new run's name, its (empty) directory made at once: store.claim_run_dir adds -2, -3, ... so
    sessions and servers sharing the runs folder never get the same run, even in the same millisecond."""
    stamp = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")
    return store.claim_run_dir(f"{page}-{cfg.task}-{cfg.cell}-{stamp}-{token_hex(2)}")[0]


def session_connected():
    """This session's "is my tab still connected?", for the service's abandon rule: a page that
    has not polled for a while keeps its run while Streamlit still holds its websocket (a starved
    browser polls late, a closed one never). None outside a running app (scripts, tests)."""
    from streamlit.runtime import Runtime, exists
    from streamlit.runtime.scriptrunner import get_script_run_ctx

    ctx = get_script_run_ctx()
    if ctx is None or not exists():
        return None
    runtime, session_id = Runtime.instance(), ctx.session_id
    return lambda: runtime.is_active_session(session_id)


def start(cfg: RunConfig, page: str = "explore") -> Job:
    """Queue a new run, saved to the run store as it goes. Raises ServiceError with one line."""
    name = new_run_name(cfg, page)
    try:
        return service().submit(cfg, store.run_dir(name), name, connected=session_connected())
    except BaseException:
        store.run_dir(name).rmdir()  # refused (full, over the limits): give the name back
        raise


def resume(name: str, steps: int | None = None) -> Job:
    return service().resume(store.run_dir(name), steps=steps, name=name, connected=session_connected())


def limits_problem(cfg: RunConfig) -> str | None:
    return service().limits.check(budget.estimate(cfg))


__all__ = ["Job", "ServiceError", "service", "start", "resume", "limits_problem", "new_run_name"]


# Sessions at the base polling rate per training worker: 2 per worker keeps a 2-core server's
# drawing (and, on one machine, its browsers' re-rendering) from starving the workers themselves.
POLLERS_PER_WORKER = 2


def poll_base() -> float:
    """The server's polling period while few runs are live (BPTT_LAB_POLL_S)."""
    return service().settings.poll_s


def poll_every() -> float:
    """How often a page polls its job: poll_base() while few runs are live, slower when a class is.

    Each poll rebuilds and sends the page's charts. Thirty sessions polling every 0.5 s asked a
    2-core server for 60 redraws a second, and the workers, the pages and the queue positions all
    fell minutes behind (bench/bench_class.py). The period grows with the live runs (training or
    queued) per worker; a queued page still shows its position at once, from the click's own run.
    """
    counts = service().counts()
    live = counts["running"] + counts["queued"]
    return poll_base() * max(1.0, live / (POLLERS_PER_WORKER * max(1, counts["workers"])))
