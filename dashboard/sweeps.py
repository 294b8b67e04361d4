"""The Sweeps page: define a sweep from Explore's settings, run it in the background through the
app's training service, and watch its trainability map fill in; click a cell to open its runs.

A running sweep is a BackgroundSweep (rnn_core.sweep) held in st.cache_resource by its directory
name: it lives in the server, not in a session, so it survives reruns and closed tabs, and any
session that opens the sweep sees it fill in. The map is polled in a fragment while it runs;
finished sweeps are drawn from their sweep.csv alone (no run's arrays are read).
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone

import pandas as pd
import streamlit as st

from rnn_core import store
from rnn_core.rules import run_name_problem
from rnn_core.sweep import CSV, BackgroundSweep, Sweep, SweepError, finished, list_sweeps, read_csv
from rnn_core.sweep_spec import MAX_GRID_KEYS, SpecError

from . import jobs
from .map_figures import VALUES, axis_labels, axis_order, cell_runs, trainability_map
from .safe import code, plain
from .state import KEYS
from .sweeps_form import GRID_KEYS, NONE, base_from, spec_from_form

POLL_S = 1.0  # the map of a running sweep is redrawn this often
COMPARE_MAX = 4  # the Compare page's columns
DEFAULT_ROWS = (("init_gain", "0.5, 1.0, 1.5"), ("seq_len", "10, 50, 100"), (NONE, ""))
VALUE_NAMES = {"verdict": "share solved", "loss_ratio": "loss / baseline", "memory_horizon": "memory horizon",
               "log10_ratio": "gradient ratio g(0)/g(T−1)"}


@dataclass
class SweepsState:
    current: str | None = None  # the sweep (directory name in the run store) the page shows
    error: str | None = None  # why the last Start / Open did not work, shown once
    notice: str | None = None


def sweeps_state() -> SweepsState:
    if "page:sweeps" not in st.session_state:
        st.session_state["page:sweeps"] = SweepsState()
    return st.session_state["page:sweeps"]


@st.cache_resource
def background() -> dict[str, BackgroundSweep]:
    """The sweeps this server runs, by name: shared by every session, like the training service."""
    return {}


# --- starting ---------------------------------------------------------------------------------
def start(name: str, spec) -> str | None:
    """Create (or continue) the sweep `name` in the run store and run it in the background; None, or
    one line saying why not."""
    problem = run_name_problem(name)
    if problem:
        return f"sweep {problem}"
    running = background()
    if name in running and running[name].running:
        return f"the sweep {name} is running already"
    for run in spec.runs():
        over = jobs.limits_problem(run.cfg)
        if over:
            return f"point {' '.join(f'{k}={v}' for k, v in run.values.items())}: {over}"
    try:
        sweep = Sweep.create(spec, store.runs_root() / name)
    except (SweepError, SpecError, OSError) as err:
        return str(err)
    running[name] = BackgroundSweep(sweep, jobs.service())
    return None


def _on_start(ss: SweepsState) -> None:
    rows = [(st.session_state[f"sweep_key_{i}"], st.session_state[f"sweep_values_{i}"]) for i in range(MAX_GRID_KEYS)]
    name = st.session_state["sweep_name"].strip()
    try:
        spec = spec_from_form(st.session_state.get(KEYS.values, {}), rows, st.session_state["sweep_seeds"])
    except SpecError as err:
        ss.error = str(err)
        return
    ss.error = start(name, spec)
    if ss.error is None:
        ss.current, ss.notice = name, f"Started the sweep {name}: {spec.size} runs."


def define_form(ss: SweepsState) -> None:
    values = st.session_state.get(KEYS.values, {})
    base = base_from(values)
    with st.expander("New sweep", expanded=ss.current is None):
        shown = " ".join(code(f"{k}={v}") for k, v in base.items()) or "the defaults"
        st.caption(f"Every run starts from Explore's settings: {shown}. Choose up to {MAX_GRID_KEYS} keys "
                   "and their values (separated by commas); every combination is trained with every seed.")
        with st.form("sweep_form"):
            for i in range(MAX_GRID_KEYS):
                key, text = DEFAULT_ROWS[i]
                left, right = st.columns([1, 2])
                left.selectbox(f"grid key {i + 1}", (NONE, *GRID_KEYS), index=(NONE, *GRID_KEYS).index(key),
                               key=f"sweep_key_{i}")
                right.text_input(f"values {i + 1}", text, key=f"sweep_values_{i}", max_chars=500)
            left, right = st.columns(2)
            left.text_input("seeds", "0, 1", key="sweep_seeds", max_chars=200, help="e.g. 0, 1, 2 or 0-4")
            stamp = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")
            right.text_input("name (a directory in the run store)", f"sweep-{stamp}", key="sweep_name", max_chars=80)
            st.form_submit_button("Start sweep", type="primary", on_click=_on_start, args=(ss,))


def open_picker(ss: SweepsState) -> None:
    names = list_sweeps()
    if not names:
        st.caption(f"No saved sweeps in the run store ({plain(str(store.runs_root()))}) yet.")
        return
    left, right = st.columns([3, 1])
    pick = left.selectbox("Open a saved sweep", names, index=names.index(ss.current) if ss.current in names else 0,
                          key="sweep_open_pick")

    def on_open() -> None:
        ss.current, ss.error = pick, None

    right.button("Open", key="sweep_open", on_click=on_open)


# --- the map ----------------------------------------------------------------------------------------
def load_points(name: str) -> tuple[pd.DataFrame | None, BackgroundSweep | None, str | None]:
    """(points, the background sweep if this server runs it, error): a running sweep's rows from
    memory, a saved one's from its sweep.csv."""
    bg = background().get(name)
    if bg is not None and bg.running:
        return bg.sweep.frame(), bg, None
    try:
        return read_csv(store.run_dir(name)), bg, None
    except (OSError, ValueError, store.RunStoreError, pd.errors.ParserError) as err:
        return None, bg, f"the sweep {name} has no readable {CSV}: {type(err).__name__}"


def grid_keys(points: pd.DataFrame) -> list[str]:
    cols = list(points.columns)
    return cols[:cols.index("seed")] if "seed" in cols else []


def progress_line(points: pd.DataFrame, bg: BackgroundSweep | None) -> str:
    done = int(points.apply(lambda r: finished(r.to_dict()), axis=1).sum()) if len(points) else 0
    state = ("stopping…" if bg.stopping else "running") if bg is not None and bg.running else "not running"
    failed = int((points["status"] == "failed").sum()) if "status" in points else 0
    return f"{done} of {len(points)} runs done · {state}" + (f" · {failed} failed (Continue retries them)" if failed else "")


def axis_controls(name: str, keys: list[str], points: pd.DataFrame) -> tuple[str, str, pd.DataFrame, str]:
    """x, y, the rows of the chosen value of a third key, and the map's value."""
    if len(keys) == 1:
        x, y = keys[0], "seed"  # one grid key: one row per seed
    else:
        c1, c2 = st.columns(2)
        x = c1.selectbox("x axis", keys, index=0, key=f"sweep_x_{name}")
        y = c2.selectbox("y axis", [k for k in keys if k != x], index=0, key=f"sweep_y_{name}")
    rest = [k for k in keys if k not in (x, y)]
    for k in rest:  # a third key: one map per value
        labels = axis_order(points[k])
        pick = st.selectbox(f"{k} (third grid key)", labels, key=f"sweep_z_{name}_{k}")
        points = points[axis_labels(points[k]) == pick]
    value = st.radio("colour by", list(VALUES), format_func=VALUE_NAMES.get, horizontal=True,
                     key=f"sweep_value_{name}")
    return x, y, points, value


def cell_links(points: pd.DataFrame, x: str, y: str, selection) -> None:
    """The runs of each clicked cell: each opens in Explore; 2-4 of them together in Compare."""
    cells = {(p.get("x"), p.get("y")) for p in (selection or [])}
    if not cells:
        st.caption("Click a cell to list its runs (the chart's box select picks several): each opens in Explore, "
                   "2-4 together in Compare.")
        return
    for cx, cy in sorted(cells, key=str):
        rows = cell_runs(points, x, y, cx, cy)
        st.markdown(f"**{plain(x)} = {plain(str(cx))}, {plain(y)} = {plain(str(cy))}**")
        lines = []
        for r in rows.to_dict("records"):
            loss = "" if pd.isna(r.get("final_val_loss")) else f", final val loss {r['final_val_loss']:.4g}"
            verdict = r.get("verdict") if isinstance(r.get("verdict"), str) and r.get("verdict") else r.get("status")
            lines.append(f"- [{plain(r['run'])}](/?run={r['run']}) · seed {r['seed']} · {plain(str(verdict))}{loss}")
        st.markdown("\n".join(lines))
        names = [r for r in rows["run"]][:COMPARE_MAX]
        if len(names) >= 2:
            st.markdown(f"[Compare these {len(names)} runs](/compare?runs={','.join(names)})")


def show_sweep(ss: SweepsState) -> None:
    name = ss.current
    points, bg, err = load_points(name)
    st.subheader(f"Sweep {plain(name)}")
    if err:
        st.error(plain(err))
        return
    keys = grid_keys(points)
    if not keys:
        st.error(f"the sweep {plain(name)}'s {CSV} has no grid columns")
        return
    running = bg is not None and bg.running
    if bg is not None and bg.error:
        st.error(f"The sweep stopped with an error: {plain(bg.error)}")
    c1, c2 = st.columns([1, 5])
    if running:
        c1.button("Stop sweep", key="sweep_stop", on_click=bg.stop, disabled=bg.stopping)
    elif not all(finished(r) for r in points.to_dict("records")):
        c1.button("Continue", key="sweep_continue", on_click=_on_continue, args=(ss, name),
                  help="train the runs that are not done (the finished ones are kept)")
    x, y, shown, value = axis_controls(name, keys, points)
    first = [(points, bg)]

    @st.fragment(run_every=POLL_S if running else None)
    def live() -> None:
        pts, b = first.pop() if first else load_points(name)[:2]
        if pts is None:
            return
        view = pts
        for k in [k for k in keys if k not in (x, y)]:
            view = view[axis_labels(view[k]).isin(set(axis_labels(shown[k])))]
        st.caption(progress_line(pts, b))
        event = st.plotly_chart(trainability_map(view, x, y, value), key=f"sweep_map_{name}", on_select="rerun",
                                selection_mode=("points", "box"), width="stretch")
        cell_links(view, x, y, ((event or {}).get("selection") or {}).get("points"))  # a dict in AppTest too
        if running and not (b is not None and b.running):
            st.rerun()  # the sweep ended: the whole page, to switch the timer off and swap the buttons

    live()


def _on_continue(ss: SweepsState, name: str) -> None:
    try:
        sweep = Sweep.open(store.run_dir(name))
    except (SweepError, store.RunStoreError) as err:
        ss.error = str(err)
        return
    ss.error = start(name, sweep.spec)


def sweeps_page() -> None:
    jobs.service()
    ss = sweeps_state()
    st.title("Sweeps: where does training work?")
    st.caption("A sweep trains every combination of a few settings with several seeds and maps the outcome: "
               "for a tanh RNN, gain × sequence length shows the narrow band near gain 1 where gradients neither "
               "vanish nor explode. Each run is an ordinary saved run (Runs, Explore, Compare).")
    if ss.notice:
        st.success(plain(ss.notice))
        ss.notice = None
    if ss.error:
        st.error(plain(ss.error))
        ss.error = None
    define_form(ss)
    open_picker(ss)
    if ss.current:
        show_sweep(ss)
