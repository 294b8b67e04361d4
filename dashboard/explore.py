"""The Explore page: sidebar knobs, Train / Stop / Resume, and one run panel.

Training happens in the server's training service (rnn_core.service), never on the script
thread: a job trains in a worker while the panel polls it in `@st.fragment(run_every=jobs.poll_every())`
runs, each drawing a read-only view of the job. The fragment ticks only while the job is queued
or running, so an idle tab costs no CPU. A tab that closes stops polling, and the service stops
and saves its job.
"""
from __future__ import annotations

import streamlit as st

from rnn_core import budget, store
from rnn_core.config import RunConfig
from rnn_core.view import RunView, resumable_runs

from . import jobs
from .panel import chart_format_control, draw_empty, draw_run
from .runs import open_saved
from .safe import plain
from .state import PanelState, panel_state
from .urlstate import query_from_values
from .widgets import config_sidebar, url_warning

FIRST_STEP_WAIT_S = 0.5  # Train waits this long for the first step, so its own run draws the first chart
STOP_WAIT_S = 1.0  # Stop waits this long for the job to end, so the click's own run shows "Stopped"
FINISH_WAIT_POLLS = 1.5  # a poll waits for a job due to end within this many poll periods
PREFIX = ""  # Explore's chart and widget keys (chart_heatmap, btn_train, ...)


def on_train(ps: PanelState, cfg: RunConfig) -> None:
    if ps.job is not None:
        ps.job.stop()
    ps.start_error, ps.saved = None, None
    try:
        ps.job = jobs.start(cfg)
    except (jobs.ServiceError, store.RunStoreError, OSError) as err:
        ps.start_error = f"Could not start: {err}"
        return
    # A free worker takes a few ms for a default step: wait for it, so the click's own run draws
    # the first chart instead of the next poll.
    ps.job.wait_first_step(FIRST_STEP_WAIT_S)


def on_stop(ps: PanelState) -> None:
    if ps.job is not None:
        ps.job.stop()
        ps.job.wait(timeout=STOP_WAIT_S)  # a stop lands within a step: this run can then draw it


def on_resume(ps: PanelState, name: str | None = None) -> None:
    """Resume the session's stopped run (its charts come back from the store), or a saved run by name."""
    ps.start_error = None
    name = name or (ps.job.name if ps.job is not None else ps.saved.name if ps.saved is not None else None)
    if name is None:
        return
    if ps.job is not None and not ps.job.done:
        ps.job.stop()
    try:
        ps.job, ps.saved = jobs.resume(name), None
    except Exception as err:  # noqa: BLE001 - a finished run, a missing checkpoint, a bad file: say so
        ps.start_error = f"Could not resume: {err}"


def _view(ps: PanelState, finish_wait: bool = False) -> RunView | None:
    """The job's view (or the saved run opened from the Runs page). With `finish_wait`, a job that
    will end before the next poll is waited for (at most one poll interval), so "Finished" shows
    when it happens, not up to a poll later."""
    job = ps.job
    if job is None:
        return ps.saved
    job.poll()
    if finish_wait and not job.done:
        # The page learns a step count a little after the step, and after its last step a job still
        # evaluates and saves: a job due within a poll and a half is waited for (bench_app.py: the
        # banner showed 0.4-0.5 s after the job's end, median, when the wait was one poll).
        rate, wait = job.steps_per_second(), FINISH_WAIT_POLLS * jobs.poll_base()
        if rate > 0 and (job.cfg.steps - job.steps_done) / rate < wait:
            job.wait(timeout=wait)
    return job.view()


def controls(ps: PanelState, cfg: RunConfig | None, view: RunView | None) -> None:
    running = view is not None and view.running
    problem = jobs.limits_problem(cfg) if cfg is not None else None
    a, b, c, d, note = st.columns([1.3, 1.2, 1.5, 2.2, 4], vertical_alignment="center")
    a.button("Train", key=f"{PREFIX}btn_train", type="primary", icon=":material/play_arrow:", on_click=on_train,
             args=(ps, cfg), disabled=cfg is None or problem is not None,
             help="Start a new run with the sidebar's settings (saved to the run store).")
    b.button("Stop", key=f"{PREFIX}btn_stop", icon=":material/stop:", on_click=on_stop, args=(ps,),
             disabled=not running, help="Stop within a second; the run is saved and can be resumed.")
    c.button("Resume", key=f"{PREFIX}btn_resume", icon=":material/replay:", on_click=on_resume, args=(ps,),
             disabled=not (view is not None and view.resumable and not running),
             help="Continue the stopped run from its checkpoint.")
    if cfg is not None:  # two equal columns to start from: override one key in one of them
        d.page_link("pages/compare.py", label="Open in Compare", icon=":material/compare:",
                    query_params=query_from_values(cfg.model_dump()),
                    help="Compare these settings side by side with a variation of them.")
    if cfg is not None:
        if problem:
            note.error(f"Too large for this server: {plain(problem)}.", icon=":material/block:")
        else:
            note.caption(f"Estimate: {budget.estimate(cfg).describe()}"
                         + (" · the sidebar differs from the run shown: **Train** starts a new run with it"
                            if view is not None and view.cfg != cfg and not running else ""))


def saved_runs_sidebar(ps: PanelState) -> None:
    with st.sidebar.expander("Saved runs"):
        own = ps.job.name if ps.job is not None else None
        names = [n for n in resumable_runs() if n != own]
        st.caption(f"Run store: {plain(str(store.runs_root()))}. Stopped runs can be continued here.")
        if not names:
            st.caption("No stopped run to resume.")
            return
        pick = st.selectbox("stopped run", names, key="saved_pick")
        st.button("Resume saved run", key="btn_resume_saved", on_click=on_resume, args=(ps, pick))


def live_panel(ps: PanelState, cfg: RunConfig | None) -> None:
    """The buttons, then the status and charts in a fragment that polls the job while it is
    queued or running.

    The buttons are outside the fragment on purpose: a click then asks for a full run, which
    Streamlit starts at once, cancelling a poll in progress. A click inside a polling fragment
    was queued behind the polls (Streamlit runs fragment reruns one after another) and a Stop
    took 3-5 s to arrive on a busy 2-core machine. A timer is only switched off by a full run,
    so when the job ends the fragment asks for one.
    """
    if ps.start_error:
        st.error(plain(ps.start_error))
    view = _view(ps)
    controls(ps, cfg, view)
    timer_on = view is not None and view.running
    ps.cfg, ps.timer_on = cfg, timer_on

    fresh = [view]  # this full run's view: its own panel draws it; the fragment's later reruns poll

    @st.fragment(run_every=jobs.poll_every() if timer_on else None)
    def panel() -> None:
        v = fresh.pop() if fresh else _view(ps, finish_wait=True)
        if v is None:
            draw_empty(ps.cfg, PREFIX)
            return
        estimate = budget.estimate(v.cfg).describe() if v.running else None
        draw_run(v, PREFIX, estimate)
        if not v.running and ps.timer_on:
            st.rerun()  # the whole page, to switch the timer off and update the buttons

    panel()


def open_from_link(ps: PanelState) -> None:
    """`?run=NAME` (the Runs page's "Open in Explore"): draw that saved run from disk, resumable
    when stopped. Read once, before the sidebar reads the link, which would call `run` unknown."""
    name = st.query_params.get("run")
    if name is None:
        return
    del st.query_params["run"]
    opened = open_saved(name)
    if isinstance(opened, str):
        ps.start_error = f"Could not open the saved run: {opened}"
        return
    if ps.job is not None and not ps.job.done:
        ps.job.stop()
    ps.job, ps.saved = None, opened


def explore_page() -> None:
    jobs.service()
    ps = panel_state("explore")
    open_from_link(ps)
    cfg, err = config_sidebar()
    saved_runs_sidebar(ps)
    chart_format_control()
    st.title("Explore: gradients through time")
    st.caption("Pick a cell, an initialisation and a sequence length, press **Train**, and watch the exact "
               "per-timestep gradient ‖∂L/∂h_t‖ vanish, survive or explode. Every setting is in the link: "
               "copy the address bar to share the experiment.")
    url_warning()
    if err:
        st.error(f"These settings do not fit together: {plain(err)}")
    live_panel(ps, cfg)
