"""The Runs page: every saved run in one table, filtered by name and config, with actions on the
selected rows (open in Explore, send to Compare, rename, delete, export) and import of an archive.

The table is built from each run's status.json and config.json (dashboard.run_table); only the
memory horizon reads an array, one row of it, cached per file and modification time. Selecting
rows is the table's own (click the boxes at the left). The table's key carries the names it
shows, so when a run appears, goes or is renamed, the selection starts empty instead of pointing
at whichever runs moved into the selected row numbers.
"""
from __future__ import annotations

import hashlib
from pathlib import Path

import pandas as pd
import streamlit as st
from streamlit.errors import StreamlitAPIException

from rnn_core import store
from rnn_core.config import ConfigError
from rnn_core.rules import show
from rnn_core.view import RunView

from . import jobs
from .run_actions import delete_runs, export_bytes, import_upload, rename_run
from .run_table import CONFIG_KEYS, COLUMNS, filter_rows, last_horizon, run_rows, values_of
from .safe import code, plain
from .state import RunsState, runs_state

EXPLORE, COMPARE = "pages/explore.py", "pages/compare.py"
COMPARE_MIN, COMPARE_MAX = 2, 4  # what the Compare page lays out side by side
NAME_KEY = "runs_new_name"


# --- reading the store ------------------------------------------------------------------------
@st.cache_data(max_entries=4096, show_spinner=False)
def _horizon(run_dir: str, mtime_ns: int) -> int | None:  # mtime_ns: a rewritten array is read again
    return last_horizon(Path(run_dir))


def cached_horizon(run_dir: Path) -> int | None:
    try:
        mtime = (run_dir / "timestep_grads.npy").stat().st_mtime_ns
    except OSError:
        return None
    return _horizon(str(run_dir), mtime)


def live_runs() -> set[str]:
    """Names of the runs a job of this server trains or has queued (their directories are being written)."""
    root = store.runs_root().resolve()
    return {j.out_dir.name for j in jobs.service().jobs() if not j.done and j.out_dir.resolve().parent == root}


def open_saved(name: str) -> RunView | str:
    """A saved run as a view to draw (Explore's ?run=NAME), or one line saying why it cannot be opened
    (it echoes `name`, which may come from a link: show it through safe.plain)."""
    try:
        path = store.run_dir(name)
        if not (path / "config.json").is_file():
            return f"there is no saved run {show(repr(name))} in the run store"
        return RunView.from_disk(path)
    except (store.RunStoreError, ConfigError, OSError, ValueError, KeyError) as err:
        return f"run {show(repr(name))} cannot be opened: {show(' '.join(str(err).split()), 300)}"


# --- actions (callbacks: they run before the page, so the table already shows their result) -----------
def _say(rs: RunsState, kind: str, text: str) -> None:
    rs.notice = (kind, text)


def on_rename(rs: RunsState, old: str) -> None:
    new = str(st.session_state.get(NAME_KEY, "")).strip()
    problem = rename_run(old, new, live_runs())
    if problem:
        _say(rs, "error", f"Not renamed: {plain(problem)}.")
    else:
        st.session_state[NAME_KEY] = ""
        _say(rs, "success", f"Renamed {code(old, 100)} to {code(new, 100)}.")


def on_delete(rs: RunsState, names: tuple[str, ...]) -> None:
    rs.confirm_delete = names  # the first click only asks


def on_really_delete(rs: RunsState) -> None:
    names, rs.confirm_delete = rs.confirm_delete, ()
    deleted, problems = delete_runs(names, live_runs())
    lines = [f"Deleted {', '.join(code(n, 100) for n in deleted)}."] if deleted else []
    lines += [f"Not deleted: {plain(p)}." for p in problems]
    _say(rs, "error" if problems else "success", "  \n".join(lines))


def on_cancel_delete(rs: RunsState) -> None:
    rs.confirm_delete = ()


def on_prepare(rs: RunsState, name: str) -> None:
    rs.export = None
    try:
        rs.export = (name, export_bytes(name))
    except Exception as err:  # noqa: BLE001 - ArchiveError, or a report that cannot draw the run: say so
        _say(rs, "error", f"Could not export {code(name, 100)}: {plain(' '.join(str(err).split()), 300)}")


# --- the page's parts ---------------------------------------------------------------------------
def import_box(rs: RunsState) -> None:
    with st.sidebar:
        st.subheader("Import a run")
        up = st.file_uploader("Run archive (.zip)", type=["zip"], key="runs_upload",
                              help="A .zip from Export here or from `python -m rnn_core export`.")
        if up is not None and up.file_id not in rs.imported:
            rs.imported.add(up.file_id)
            ok, text = import_upload(up.name, up.getvalue())
            rs.import_notice = (("success", f"Imported as {code(text, 100)}.") if ok
                                else ("error", f"Not imported: {plain(text, 400)}"))
        if up is None:
            rs.import_notice = None
        if rs.import_notice:
            kind, text = rs.import_notice
            (st.success if kind == "success" else st.error)(text)


def filters(frame: pd.DataFrame) -> pd.DataFrame:
    """The name filter and the config-key filters; returns the rows they keep."""
    a, b = st.columns([1, 2])
    text = a.text_input("Name contains", key="runs_filter_name", placeholder="any part of a run name")
    keys = b.multiselect("Filter by config key", list(CONFIG_KEYS), key="runs_filter_keys",
                         placeholder="pick keys, then their values")
    chosen = {}
    if keys:
        cols = st.columns(min(len(keys), 4))
        for k, key in enumerate(keys):
            options = values_of(frame, key)
            wkey = f"runs_filter_{key}"
            if wkey in st.session_state:  # values no run has any more (deleted, renamed away) drop out
                st.session_state[wkey] = [v for v in st.session_state[wkey] if v in options]
            chosen[key] = cols[k % len(cols)].multiselect(key, options, key=wkey, placeholder="any value")
    return filter_rows(frame, text, chosen)


def table_key(names: list[str]) -> str:
    return "runs_table_" + hashlib.sha1("\n".join(names).encode()).hexdigest()[:12]


def table(shown: pd.DataFrame) -> list[str]:
    """The table; returns the names of the selected rows."""
    names = shown["name"].tolist()
    event = st.dataframe(
        shown, key=table_key(names), on_select="rerun", selection_mode="multi-row", hide_index=True,
        column_order=list(COLUMNS),
        column_config={
            "name": st.column_config.TextColumn("name", pinned=True),
            "final loss": st.column_config.NumberColumn("final loss", format="%.4g",
                                                        help="the last validation loss (the last training loss before any)"),
            "memory horizon": st.column_config.NumberColumn(
                "memory horizon", help="timesteps back until ‖∂L/∂h_t‖ falls below 1e-3 of its last value (last record)"),
            "steps done": st.column_config.NumberColumn("steps done", help="of `steps`, the run's budget"),
            "created": st.column_config.DatetimeColumn("created", format="YYYY-MM-DD HH:mm"),
            "ran on": st.column_config.TextColumn("ran on", help="the device the run trained on"),
        })
    rows = event.selection.rows if event is not None else []
    return [names[i] for i in rows if 0 <= i < len(names)]


def notice(rs: RunsState) -> None:
    if rs.notice:
        kind, text = rs.notice
        rs.notice = None
        {"success": st.success, "error": st.error}.get(kind, st.info)(text)


def _switch(page: str, params: dict[str, str], rs: RunsState, what: str) -> None:
    try:
        st.switch_page(page, query_params=params)
    except StreamlitAPIException:  # the page is not part of this app (yet)
        _say(rs, "error", f"The {what} page is not part of this app.")
        st.rerun()


def on_open(rs: RunsState, name: str) -> None:
    opened = open_saved(name)
    if isinstance(opened, str):
        _say(rs, "error", plain(opened))
    else:
        rs.go_to = (EXPLORE, {"run": name}, "Explore")


def on_compare(rs: RunsState, picked: list[str]) -> None:
    rs.go_to = (COMPARE, {"runs": ",".join(picked)}, "Compare")


def follow_click(rs: RunsState) -> None:
    """Switch to the page an Open or Compare click asked for (callbacks keep their click when the
    page reruns through the entry file, but cannot switch pages themselves)."""
    if rs.go_to:
        page, params, what = rs.go_to
        rs.go_to = None
        _switch(page, params, rs, what)


def actions(rs: RunsState, picked: list[str]) -> None:
    n = len(picked)
    st.caption(f"Selected: {', '.join(code(p, 60) for p in picked)}" if picked
               else "Select runs with the boxes at the left of the table.")
    one = n == 1
    a, b, c, d = st.columns(4)
    a.button("Open in Explore", key="runs_open", icon=":material/insights:", disabled=not one,
             on_click=on_open, args=(rs, picked[0] if one else ""),
             help="Draw the selected run on Explore (resumable there when it was stopped).")
    b.button("Compare", key="runs_compare", icon=":material/compare:",
             disabled=not COMPARE_MIN <= n <= COMPARE_MAX, on_click=on_compare, args=(rs, list(picked)),
             help=f"Side by side on Compare: select {COMPARE_MIN} to {COMPARE_MAX} runs.")
    c.button("Prepare download", key="runs_prepare", icon=":material/folder_zip:", disabled=not one,
             on_click=on_prepare, args=(rs, picked[0] if one else ""),
             help="Build a .zip of the selected run (files, arrays as .npy and .csv, an offline report).")
    if rs.export is not None and one and rs.export[0] == picked[0]:
        c.download_button(f"Download {picked[0]}.zip", rs.export[1], file_name=f"{picked[0]}.zip",
                          mime="application/zip", key="runs_download", icon=":material/download:", on_click="ignore")
    elif rs.export is not None:
        rs.export = None  # the selection moved on: let the bytes go
    d.button(f"Delete {n} run{'s' if n != 1 else ''}" if n else "Delete", key="runs_delete", icon=":material/delete:",
             disabled=n == 0, on_click=on_delete, args=(rs, tuple(picked)))
    if rs.confirm_delete and rs.confirm_delete == tuple(picked):
        k = len(picked)
        st.warning(f"Delete {', '.join(code(p, 60) for p in picked)} from the run store? This cannot be undone.")
        x, y, _ = st.columns([1.3, 1, 4])
        x.button(f"Really delete {k} run{'s' if k != 1 else ''}", key="runs_really_delete", type="primary",
                 on_click=on_really_delete, args=(rs,))
        y.button("Cancel", key="runs_cancel_delete", on_click=on_cancel_delete, args=(rs,))
    elif rs.confirm_delete:
        rs.confirm_delete = ()  # the selection changed: ask again
    if one:
        r, s = st.columns([3, 1], vertical_alignment="bottom")
        r.text_input(f"New name for {picked[0]}", key=NAME_KEY, max_chars=100,
                     placeholder="letters, digits, '.', '_' or '-'")
        s.button("Rename", key="runs_rename", icon=":material/edit:", on_click=on_rename, args=(rs, picked[0]))


def runs_page() -> None:
    rs = runs_state()
    follow_click(rs)
    st.title("Runs: every saved run")
    st.caption(f"The run store {plain(str(store.runs_root()))}: sort by a column's header, filter by name or "
               "config, select rows for the actions below the table.")
    import_box(rs)
    notice(rs)
    frame = run_rows(horizon=cached_horizon, live=live_runs())
    if frame.empty:
        st.info("No saved runs yet: train one on Explore, or import an archive in the sidebar.")
        return
    shown = filters(frame)
    st.caption(f"{len(shown)} of {len(frame)} runs shown.")
    picked = table(shown)
    actions(rs, picked)
