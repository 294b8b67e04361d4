"""Presenter mode (`?present=1` on any page): is it on, and charts sized for the back of a room.

The entry file reads the link once per full run (`read_link`) before the page runs: the mode is
kept in the session, and `present` is taken out of the query parameters while the page runs,
so no page's own link code (Explore's settings, Compare's columns) sees a key it does not know;
`keep_in_link` puts it back afterwards, so the address bar still says `present=1`. Pages ask
`on()` and pass `big=on()` to their figure builders; `fit(fig)` does the same for a figure a
builder made without `big` (Compare's small multiples).
"""
from __future__ import annotations

import plotly.graph_objects as go
import streamlit as st

from .chart_layout import HEIGHT, chart_height, finish

PARAM = "present"  # ?present=1 turns it on, ?present=0 off
ON_VALUES = ("1", "true", "yes", "on")
OFF_VALUES = ("0", "false", "no", "off")
STATE_KEY = "present_mode"  # session state: bool


def read_link() -> str | None:
    """Take `present` out of the link and remember it; returns a one-line warning for a bad value."""
    if PARAM not in st.query_params:
        return None
    raw = st.query_params.get(PARAM, "")
    del st.query_params[PARAM]
    value = str(raw).strip().lower()
    if value in ON_VALUES or value == "":
        st.session_state[STATE_KEY] = True
    elif value in OFF_VALUES:
        st.session_state[STATE_KEY] = False
    else:
        return "present=" + str(raw)[:40]
    return None


def setup() -> None:
    """The entry file's one call before the page runs: read the link, then the CSS when the mode is on."""
    from .safe import code
    from .style import present_css

    bad = read_link()
    if bad is not None:
        st.warning(f"{code(bad)} was ignored: allowed: present=1 (presenter mode) or present=0")
    if on():
        st.html(present_css())


def on() -> bool:
    """Is presenter mode on for this session?"""
    return bool(st.session_state.get(STATE_KEY, False))


def keep_in_link() -> None:
    """After the page: `present=1` back in the address bar while the mode is on."""
    if on() and st.query_params.get(PARAM) != "1":
        st.query_params[PARAM] = "1"


def enlarge(fig: go.Figure) -> go.Figure:
    """The same chart laid out as a builder lays it out with big=True: fonts, margins, line widths,
    height (a taller gates chart stays taller). Used where a builder has no `big` argument."""
    layout = fig.layout.to_plotly_json()
    title = layout.get("title") or {}
    sub = (title.pop("subtitle", None) or {}).get("text")
    extra = max(0, int(layout.get("height") or HEIGHT) - HEIGHT)
    return finish(list(fig.data), layout, big=True, subtitle=sub, extra_height=extra)


def fit(fig: go.Figure) -> go.Figure:
    """`fig` as presenter mode wants it: enlarged when the mode is on, unchanged otherwise."""
    if not on() or (fig.layout.height or 0) >= chart_height(True):
        return fig
    return enlarge(fig)
