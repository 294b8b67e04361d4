"""The Explore page: sidebar knobs, Train / Stop / Resume, and the live panel.

Training happens in `@st.fragment(run_every=TICK_INTERVAL_S)` ticks on the script thread
(never st.* from a thread of our own). The fragment ticks only while a run is running: an
idle tab costs no CPU, which matters on a 2-core machine.
The Trainer lives in st.session_state (one per browser session), never in st.cache_resource,
which every session would share.
"""
from __future__ import annotations

import os

import streamlit as st
import torch

from rnn_core import store
from rnn_core.config import RunConfig

from . import live
from .panel import draw_empty, draw_run
from .widgets import config_sidebar, url_warning

TICK_INTERVAL_S = 0.5  # a tick does ~0.4 s of training, then the charts are redrawn
RUN, START_ERROR, CFG, SKIP_TICK = "run", "start_error", "panel_cfg", "skip_tick"
TIMER_ON, FULL_RUN = "timer_on", "full_run"  # is the browser's tick timer running; is this a full run


@st.cache_resource(show_spinner="Warming up PyTorch (once per server)…")
def warm_up() -> bool:
    """One throwaway step in a process-wide cache, so the first Train click does not pay for
    PyTorch's lazy first-call set-up (~1.5-3 s on 2 cores). The trainer is discarded: only the
    process is warm, no model is shared between sessions."""
    from rnn_core.config import make_config
    from rnn_core.trainer import Trainer

    Trainer(make_config(steps=2, device="cpu")).step()
    return True


def set_torch_threads() -> None:
    """One intra-op thread unless BPTT_LAB_TORCH_THREADS says otherwise. These models are small
    (H=64, B=32): on a busy 2-core machine two OpenMP threads fighting the server, the browser and
    other work made the median step 65 ms instead of 8 ms, with stalls of seconds."""
    raw = os.environ.get("BPTT_LAB_TORCH_THREADS", "1")
    torch.set_num_threads(max(1, int(raw)) if raw.strip().isdigit() else 1)


def _current_run() -> live.LiveRun | None:
    return st.session_state.get(RUN)


def on_train(cfg: RunConfig) -> None:
    old = _current_run()
    if old is not None:
        live.stop(old)
    st.session_state[START_ERROR] = None
    try:
        st.session_state[RUN] = live.start_run(cfg)
    except Exception as err:  # noqa: BLE001 - e.g. a warm_start run that is gone: a message, not a traceback
        st.session_state[START_ERROR] = f"Could not start: {type(err).__name__}: {err}"


def on_stop() -> None:
    run = _current_run()
    if run is not None:
        live.stop(run)


def on_resume(name: str | None = None) -> None:
    """Resume the session's stopped run (keeping its charts), or a saved run by name."""
    run = _current_run()
    st.session_state[START_ERROR] = None
    try:
        if name is None and run is not None:
            st.session_state[RUN] = live.resume_run(run.name, history=run.history)
        elif name:
            if run is not None:
                live.stop(run)
            st.session_state[RUN] = live.resume_run(name)
    except Exception as err:  # noqa: BLE001 - a finished run, a missing checkpoint: say so
        st.session_state[START_ERROR] = f"Could not resume: {type(err).__name__}: {err}"


def _can_resume(run: live.LiveRun | None) -> bool:
    return run is not None and run.trainer.status == "stopped" and run.trainer.step_index < run.cfg.steps


def controls(cfg: RunConfig | None) -> None:
    run = _current_run()
    running = run is not None and run.running
    a, b, c, note = st.columns([1, 1, 1, 5], vertical_alignment="center")
    a.button("Train", key="btn_train", type="primary", icon=":material/play_arrow:", on_click=on_train, args=(cfg,),
             disabled=cfg is None, help="Start a new run with the sidebar's settings (saved to the run store).")
    b.button("Stop", key="btn_stop", icon=":material/stop:", on_click=on_stop, disabled=not running,
             help="Stop after the current step; the run is saved and can be resumed.")
    c.button("Resume", key="btn_resume", icon=":material/replay:", on_click=on_resume, disabled=not _can_resume(run),
             help="Continue the stopped run from its checkpoint.")
    if run is not None and cfg is not None and run.cfg != cfg and not running:
        note.caption("The sidebar differs from the run shown: **Train** starts a new run with it.")


def saved_runs_sidebar() -> None:
    with st.sidebar.expander("Saved runs"):
        own = _current_run()
        names = [n for n in live.resumable_runs() if own is None or n != own.name]  # not the one training here
        st.caption(f"Run store: `{store.runs_root()}`. Stopped runs can be continued here.")
        if not names:
            st.caption("No stopped run to resume.")
            return
        pick = st.selectbox("stopped run", names, key="saved_pick")
        st.button("Resume saved run", key="btn_resume_saved", on_click=on_resume, args=(pick,))


def live_panel(cfg: RunConfig | None) -> None:
    """The buttons (an outer fragment) around the status and charts (an inner fragment that
    ticks while a run is running).

    A button click reruns only the outer fragment, not the sidebar's ~40 widgets. That rerun
    declares the inner fragment with its timer when a run has just started, so the first tick
    and the first chart come in the same fragment run. A timer is only switched off by a full
    run, so when a run ends (finished, stopped, diverged) the inner fragment asks for one.
    """
    st.session_state[CFG] = cfg
    st.session_state[FULL_RUN] = True

    @st.fragment
    def buttons_and_panel() -> None:
        cfg = st.session_state.get(CFG)
        if st.session_state.get(START_ERROR):
            st.error(st.session_state[START_ERROR])
        controls(cfg)
        run = _current_run()
        timer_on = run is not None and run.running
        # What the browser's timer does: declaring run_every starts it, but declaring the same
        # fragment without it does not stop it; only a full run clears every timer.
        if timer_on:
            st.session_state[TIMER_ON] = True
        elif st.session_state.pop(FULL_RUN, False):
            st.session_state[TIMER_ON] = False

        @st.fragment(run_every=TICK_INTERVAL_S if timer_on else None)
        def panel() -> None:
            run = _current_run()
            skip_tick = st.session_state.pop(SKIP_TICK, False)
            if run is None:
                draw_empty(st.session_state.get(CFG))
                return
            if run.running and not skip_tick:
                live.tick(run, live.FIRST_TICK_BUDGET_S if run.ticks == 0 else live.TICK_BUDGET_S)
            draw_run(run)
            if not run.running and st.session_state.get(TIMER_ON):
                # The whole page, to switch the timer off (and update the buttons). That run draws
                # the same charts without training, so the browser has nothing new to plot.
                st.session_state[SKIP_TICK] = True
                st.rerun()

        panel()

    buttons_and_panel()


def explore_page() -> None:
    set_torch_threads()
    warm_up()
    cfg, err = config_sidebar()
    saved_runs_sidebar()
    st.title("Explore: gradients through time")
    st.caption("Pick a cell, an initialisation and a sequence length, press **Train**, and watch the exact "
               "per-timestep gradient ‖∂L/∂h_t‖ vanish, survive or explode. Every setting is in the link: "
               "copy the address bar to share the experiment.")
    url_warning()
    if err:
        st.error(f"These settings do not fit together: {err}")
    live_panel(cfg)
