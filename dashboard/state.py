"""Every session-state key the pages use, in one typed place.

Streamlit's session state is a dict of anything; each page keeps one typed object in it
instead of loose keys, so a key is spelt once and two pages never collide.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import streamlit as st

from rnn_core.config import RunConfig
from rnn_core.service import Job
from rnn_core.view import RunView


@dataclass
class PanelState:
    """One run panel (Explore has one; Compare will have two to four, each with its own prefix)."""
    job: Job | None = None  # the live job this panel follows
    start_error: str | None = None  # why the last Train / Resume did not start, shown once
    cfg: RunConfig | None = None  # the form's config at the last full run
    timer_on: bool = False  # is the browser's poll timer running (declared by the last full run)
    saved: RunView | None = None  # a saved run opened from the Runs page, drawn when no job is followed


@dataclass
class SessionKeys:
    values: str = "values"  # every config field's value, outliving the widgets (widgets.py)
    url_warnings: str = "url_warnings"
    url_snapshot: str = "url_snapshot"
    chart_format: str = "chart_format"  # png or svg: what a chart's camera button saves (panel.chart_format_control)


KEYS = SessionKeys()


def panel_state(prefix: str = "explore") -> PanelState:
    key = f"panel:{prefix}"
    if key not in st.session_state:
        st.session_state[key] = PanelState()
    return st.session_state[key]


@dataclass
class CompareState:
    """The Compare page: 2 to 4 columns that share the sidebar's config except their own keys."""
    overrides: list = field(default_factory=lambda: [{}, {}])  # per column a, b, ...: {key: value} it sets itself
    jobs: dict = field(default_factory=dict)  # column letter -> its live Job (after Train all)
    cfgs: dict = field(default_factory=dict)  # column letter -> the RunConfig it was trained with
    start_error: str | None = None  # why the last Train all did not start every column, shown once
    url_warnings: list = field(default_factory=list)  # the link's problems, shown until the first change
    url_snapshot: tuple | None = None  # (shared, overrides) as the link gave them
    runs: list | None = None  # ?runs=: the saved runs compared (None: live columns)
    last_query: dict | None = None  # the link this page last wrote: another one (from Explore) is read anew
    timer_on: bool = False  # is the browser's poll timer running (declared by the last full run)


def compare_state() -> CompareState:
    if "page:compare" not in st.session_state:
        st.session_state["page:compare"] = CompareState()
    return st.session_state["page:compare"]


__all__ = ["PanelState", "KEYS", "panel_state", "CompareState", "compare_state"]


@dataclass
class RunsState:
    """The Runs page: what its buttons left for the next run to show."""
    notice: tuple[str, str] | None = None  # (success | error | info, Markdown already made safe), shown once
    confirm_delete: tuple[str, ...] = ()  # the runs a first Delete click asked about; the second click deletes them
    export: tuple[str, bytes] | None = None  # (run name, zip bytes) of the last Prepare download, until the selection changes
    imported: set[str] = field(default_factory=set)  # upload ids already imported (an upload stays in the widget)
    import_notice: tuple[str, str] | None = None  # the last import's outcome, shown while its file stays
    # (page, query params, page title) an Open or Compare click asked for: callbacks cannot switch
    # pages, so the run they start does it
    go_to: tuple[str, dict[str, str], str] | None = None


def runs_state() -> RunsState:
    if "page:runs" not in st.session_state:
        st.session_state["page:runs"] = RunsState()
    return st.session_state["page:runs"]


__all__ += ["RunsState", "runs_state"]
