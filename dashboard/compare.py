"""The Compare page: 2 to 4 mitigations side by side, trained together, from one link.

Every column shares the sidebar's config except the keys it overrides (a multiselect above it).
The columns keep one seed, so they draw the same data batches and start from comparable
weights: what differs between two charts is what the diff table says differs.

Training goes through the server's training service, as on Explore: "Train all" submits one job
per column, and one `@st.fragment(run_every=jobs.poll_every())` polls every job and draws read-only views.
The buttons sit outside the fragment, so a click preempts a poll (see explore.live_panel).
`?runs=A,B` draws saved runs the same way, without training.
"""
from __future__ import annotations

import pandas as pd
import streamlit as st

from rnn_core import store
from rnn_core.config import ConfigError, RunConfig
from rnn_core.view import RunView

from . import compare_figures as CF
from . import jobs
from .compare_table import DATA_KEYS, diff_rows, summary_rows
from .compare_url import (LETTERS, MAX_COLS, MIN_COLS, RUNS_KEY, comparison_from_query, query_from_comparison,
                          runs_from_query)
from .panel import chart_format_control, chart_key, draw_chart, ordinal
from .safe import code, plain
from .schema import build_config, effective_values, widget_specs
from .state import CompareState, compare_state
from .widgets import VALUES, config_sidebar, field_widget, label, read_query

FIRST_STEP_WAIT_S = 0.5  # Train all waits this long for a first step, so the click's own run draws it
STOP_WAIT_S = 1.0  # Stop all waits this long for the jobs to end
PREFIX = "cmp_"  # every widget and chart key of this page starts with it: Explore's keys never collide
HIGHLIGHT = "background-color: rgba(255, 196, 0, 0.25)"


def col_prefix(letter: str) -> str:
    return f"{PREFIX}{letter}_"


# --- first run: the link --------------------------------------------------------------------
def init_from_link(cs: CompareState) -> None:
    """The comparison (or the saved runs) from the link: on the page's first run in a session, and
    when the link is a new one (another page opened Compare with a link). A link emptied by the
    navigation between pages keeps the session's comparison."""
    params = read_query()
    flat = {k: v[-1] for k, v in params.items() if v}
    if PREFIX + VALUES in st.session_state and (not flat or flat == cs.last_query):
        return
    for key in [k for k in st.session_state if str(k).startswith(PREFIX)]:
        del st.session_state[key]  # widgets then start from the link's values, not the last ones shown
    cs.runs = None
    if RUNS_KEY in params:
        cs.runs, cs.url_warnings = runs_from_query(params)
        cs.last_query = flat  # this page never rewrites a link of saved runs
        shared, overrides = effective_values({}), [{}, {}]
    else:
        shared, overrides, cs.url_warnings = comparison_from_query(params)
    st.session_state[PREFIX + VALUES] = shared  # config_sidebar reads its values from here (link=False)
    cs.overrides = overrides
    cs.url_snapshot = (dict(shared), [dict(o) for o in overrides])


def sync_url(cs: CompareState, shared: dict, overrides: list[dict]) -> None:
    """The link follows the settings (only when they changed: each write is a message)."""
    wanted = query_from_comparison(shared, overrides)
    cs.last_query = wanted
    if wanted != st.query_params.to_dict():
        st.query_params.from_dict(wanted)


def url_warning(cs: CompareState, shared: dict) -> None:
    """The link's warnings, until the first change (then they no longer describe the page)."""
    if cs.url_warnings and (cs.runs is not None or cs.url_snapshot == (shared, cs.overrides)):
        st.warning("Some settings in the link were not used as given:\n\n"
                   + "\n".join(f"- {p}" for p in cs.url_warnings))


# --- the column editors -----------------------------------------------------------------------
def _forget_widgets(letter: str, names=None) -> None:
    """Drop a column's widget state, so a key chosen again starts from the shared value."""
    for key in [k for k in st.session_state if str(k).startswith(col_prefix(letter))]:
        if names is None or any(key in (f"{col_prefix(letter)}w_{n}", f"{col_prefix(letter)}wf_{n}") for n in names):
            del st.session_state[key]


def on_keys_change(cs: CompareState, index: int) -> None:
    letter, ov = LETTERS[index], cs.overrides[index]
    shared = st.session_state[PREFIX + VALUES]
    chosen = st.session_state[f"{col_prefix(letter)}keys"]
    dropped = [k for k in ov if k not in chosen]
    for name in dropped:
        del ov[name]
    _forget_widgets(letter, dropped)
    for name in chosen:
        ov.setdefault(name, shared[name])  # a new override starts at the shared value


def column_editor(cs: CompareState, index: int, shared: dict) -> tuple[RunConfig | None, str | None]:
    """Above a column: the keys it overrides and one widget each. Returns its config or its error."""
    letter, ov = LETTERS[index], cs.overrides[index]
    prefix = col_prefix(letter)
    st.session_state[prefix + VALUES] = ov  # the widgets' callbacks write the new value here
    st.markdown(f"**Column {letter}**")
    keys = f"{prefix}keys"
    if keys not in st.session_state:
        st.session_state[keys] = list(ov)
    st.multiselect("overrides", list(widget_specs()), key=keys, format_func=label, on_change=on_keys_change,
                   args=(cs, index), placeholder="same as the sidebar",
                   help="Keys this column sets itself; every other key comes from the sidebar.")
    merged = {**shared, **ov}
    for name in list(ov):
        field_widget(name, merged, prefix, link=False)
        ov[name] = merged[name]
    if "seed" in ov and ov["seed"] != shared["seed"]:
        st.warning("Its own seed: this column sees different data batches and starts from different weights.")
    elif any(k in DATA_KEYS and ov[k] != shared[k] for k in ov):
        st.caption("Its data differ from the sidebar's (a key that shapes the batches is overridden).")
    cfg, err = build_config(merged)
    if err:
        st.error(f"Column {letter}: {plain(err)}")
        return None, err
    problem = jobs.limits_problem(cfg)
    if problem:
        st.error(f"Column {letter} is too large for this server: {plain(problem)}.")
        return None, problem
    return cfg, None


def on_add(cs: CompareState) -> None:
    if len(cs.overrides) < MAX_COLS:
        _forget_widgets(LETTERS[len(cs.overrides)])
        cs.overrides.append({})


def on_remove(cs: CompareState) -> None:
    if len(cs.overrides) > MIN_COLS:
        letter = LETTERS[len(cs.overrides) - 1]
        cs.overrides.pop()
        job = cs.jobs.pop(letter, None)
        if job is not None:
            job.stop()
        cs.cfgs.pop(letter, None)
        _forget_widgets(letter)


# --- Train all / Stop all ----------------------------------------------------------------------
def on_train_all(cs: CompareState, cfgs: dict[str, RunConfig]) -> None:
    for job in cs.jobs.values():
        job.stop()
    cs.jobs, cs.cfgs, cs.start_error = {}, dict(cfgs), None
    for letter, cfg in cfgs.items():
        try:
            cs.jobs[letter] = jobs.start(cfg, page="compare")
        except (jobs.ServiceError, store.RunStoreError, OSError) as err:
            cs.start_error = f"Could not start column {letter}: {err}"
            break
    first = next(iter(cs.jobs.values()), None)
    if first is not None:  # so the click's own run draws the first chart instead of the next poll
        first.wait_first_step(FIRST_STEP_WAIT_S)


def on_stop_all(cs: CompareState) -> None:
    for job in cs.jobs.values():
        job.stop()
    for job in cs.jobs.values():
        job.wait(timeout=STOP_WAIT_S)


def live_views(cs: CompareState) -> dict[str, RunView]:
    out = {}
    for letter, job in cs.jobs.items():
        job.poll()  # a job nobody polls for 30 s is stopped
        out[letter] = job.view()
    return out


def controls(cs: CompareState, cfgs: dict[str, RunConfig | None], running: bool) -> None:
    n = len(cs.overrides)
    ok = all(c is not None for c in cfgs.values())
    a, b, c, d, note = st.columns([1.3, 1.2, 1.3, 1.5, 3], vertical_alignment="center")
    a.button("Train all", key=f"{PREFIX}btn_train", type="primary", icon=":material/play_arrow:", on_click=on_train_all,
             args=(cs, cfgs), disabled=not ok, help="Start one new run per column, all with the same seed and data.")
    b.button("Stop all", key=f"{PREFIX}btn_stop", icon=":material/stop:", on_click=on_stop_all, args=(cs,),
             disabled=not running, help="Stop every column within a second; the runs are saved.")
    c.button("Add column", key=f"{PREFIX}btn_add", icon=":material/add:", on_click=on_add, args=(cs,),
             disabled=running or n >= MAX_COLS)
    d.button("Remove column", key=f"{PREFIX}btn_remove", icon=":material/remove:", on_click=on_remove, args=(cs,),
             disabled=running or n <= MIN_COLS, help=f"Remove column {LETTERS[n - 1]}.")
    if not ok:
        note.caption("Fix the column marked in red to train.")
    elif cs.cfgs and cs.cfgs != cfgs and not running:
        note.caption("The columns differ from the runs shown: **Train all** starts new runs with them.")


# --- drawing a comparison ---------------------------------------------------------------------
def diff_table(columns: dict[str, dict]) -> None:
    """The keys that differ between columns, highlighted; all keys with the toggle."""
    show_all = st.toggle("show all keys", key=f"{PREFIX}show_all")
    rows = diff_rows(columns, show_all)
    differ = {r["key"] for r in diff_rows(columns)}
    if not rows:
        st.caption("Every column has the same settings: choose keys a column overrides above it.")
        return
    frame = pd.DataFrame(rows).set_index("key")
    styled = frame.style.apply(lambda row: [HIGHLIGHT if row.name in differ else ""] * len(row), axis=1)
    st.dataframe(styled, key=f"{PREFIX}diff", width="stretch")


def _chart(fig, name: str) -> None:
    draw_chart(fig, chart_key(PREFIX, name), f"compare-{name}")


def draw_status(letter: str, view: RunView) -> None:
    if view.state == "queued":
        st.info(f"{letter}: queued: {ordinal(max(1, view.position))}", icon=":material/hourglass_top:")
    elif view.error:
        st.error(f"{letter}: failed at step {view.steps_done}: {plain(view.error, limit=200)}")
    elif view.state == "diverged":
        st.error(f"{letter}: diverged at step {view.summary.get('diverged_at')}", icon=":material/warning:")
    text = f"{letter} · {view.state} · {view.steps_done} / {view.cfg.steps} steps"
    if view.source == "live" and view.steps_per_second:
        text += f" · {view.steps_per_second:.1f} steps/s"
    st.progress(view.progress, text=text)
    st.caption(f"run {code(view.name, limit=60)}")


def draw_comparison(views: dict[str, RunView], letters: list[str]) -> None:
    """Status, the summary table and every small multiple; empty frames before any run."""
    figs = CF.build_comparison(views) if views else CF.empty_figures(letters)
    shown = list(views) or letters
    if views:
        for col, letter in zip(st.columns(len(views)), views):
            with col:
                draw_status(letter, views[letter])
        st.dataframe(pd.DataFrame(summary_rows(views)).set_index("column"), key=f"{PREFIX}summary", width="stretch")
        st.caption("Verdict: solved (beat the baseline: 1% lower and p < 0.01), stuck at baseline, diverged or still "
                   "learning. *beat 0.99 × baseline at step*: the first evaluation whose validation loss is below "
                   "0.99 × the input-blind baseline on the same validation batch. ms / step: the median step time.")
    for col, letter in zip(st.columns(len(shown)), shown):
        with col:
            _chart(figs[f"heatmap_{letter}"], f"heatmap_{letter}")
    st.caption("Every heatmap has the same colour scale (log10 ‖∂L/∂h_t‖, layer 1): equal colours are equal gradients.")
    for col, name in zip(st.columns(3), ("profile", "loss", "norms")):
        with col:
            _chart(figs[name], name)
    for col, letter in zip(st.columns(len(shown)), shown):
        with col:
            _chart(figs[f"gates_{letter}"], f"gates_{letter}")


def live_columns(cs: CompareState) -> None:
    """The fragment that polls every job while one is queued or running (explore.live_panel's pattern)."""
    views = live_views(cs)
    timer_on = any(v.running for v in views.values())
    cs.timer_on = timer_on
    letters = list(LETTERS[: len(cs.overrides)])

    fresh = [views]  # this full run's views: its own panel draws them; the fragment's later reruns poll

    @st.fragment(run_every=jobs.poll_every() if timer_on else None)
    def panel() -> None:
        v = fresh.pop() if fresh else live_views(cs)
        draw_comparison(v, letters)
        if cs.timer_on and not any(x.running for x in v.values()):
            st.rerun()  # the whole page, to switch the timer off and update the buttons

    panel()


# --- the two modes -----------------------------------------------------------------------------
def saved_page(cs: CompareState) -> None:
    """`?runs=A,B`: saved runs side by side, not trainable."""
    views, problems = {}, []
    for name in cs.runs or []:
        try:
            view = RunView.from_disk(store.run_dir(store.check_run_name(name)))
        except (store.RunStoreError, ConfigError, OSError, ValueError) as err:
            problems.append(f"{code(name)} could not be opened: {plain(str(err), limit=200)}")
            continue
        views[LETTERS[len(views)]] = view
    if problems:
        st.warning("Some saved runs are not shown:\n\n" + "\n".join(f"- {p}" for p in problems))
    if not views:
        st.info("No saved run to compare. Open Compare with `?runs=NAME1,NAME2` (2 to 4 names from the run store).")
        return
    st.caption("Saved runs, drawn from the run store; open Compare without `runs` in the link to train columns.")
    diff_table({k: v.cfg.model_dump() for k, v in views.items()})
    draw_comparison(views, list(views))


def live_page(cs: CompareState) -> None:
    shared_cfg, shared_err = config_sidebar(prefix=PREFIX, link=False)
    shared = st.session_state[PREFIX + VALUES]
    url_warning(cs, shared)
    if shared_err:
        st.error(f"The sidebar's settings do not fit together: {plain(shared_err)}")
    if cs.start_error:
        st.error(plain(cs.start_error))
    cfgs: dict[str, RunConfig | None] = {}
    for index, col in enumerate(st.columns(len(cs.overrides))):
        with col:
            cfgs[LETTERS[index]] = column_editor(cs, index, shared)[0]
    st.subheader("What differs")
    diff_table({LETTERS[i]: effective_values({**shared, **ov}) for i, ov in enumerate(cs.overrides)})
    running = any(not j.done for j in cs.jobs.values())
    controls(cs, cfgs, running)
    live_columns(cs)
    sync_url(cs, shared, cs.overrides)


def compare_page() -> None:
    jobs.service()
    cs = compare_state()
    init_from_link(cs)
    st.title("Compare: mitigations side by side")
    st.caption("Two to four columns share the sidebar's settings except the keys each overrides. They keep one seed, "
               "so they see the same data batches. **Train all** trains them together; the link holds the comparison.")
    if cs.runs is not None:
        url_warning(cs, {})
        saved_page(cs)
    else:
        live_page(cs)
    chart_format_control()
