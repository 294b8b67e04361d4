"""Run charts redrawn in place: one Plotly element per chart for the life of the page.

    live_chart(fig, key="chart_heatmap", height=330, config=plotly_config(name))

st.plotly_chart (streamlit 1.67) gives a chart whose figure changed a new element id, so each
poll of a live panel threw every chart away and plotly.js built it again from nothing: in the
browser, about 4 CPU-s for a 2-s default run on 2 cores, more than the training itself. This
custom component (st.components.v2) keeps its element while its key stays, and hands each new
figure to Plotly.react on the same <div>, which redraws only what changed (dashboard/live_chart.js).

plotly.js comes from the plotly package the server already has: copied once to the app's
`static/` folder, which Streamlit serves (server.enableStaticServing). Where that copy cannot be
made (a read-only install), the chart falls back to st.plotly_chart, which still draws it.

Streamlit's chart theme is not applied to a component, so THEME restates its light-theme look
(white ground, grey axis text, horizontal grid only), and every run chart draws through here,
live or saved, so a chart never changes look when its run ends.
"""
from __future__ import annotations

import filecmp
import functools
import os
import shutil
import weakref
from pathlib import Path

import plotly.graph_objects as go
import streamlit as st
from plotly.io.json import to_json_plotly

APP_DIR = Path(__file__).resolve().parents[1]  # where streamlit_app.py is: Streamlit serves its static/
STATIC = APP_DIR / "static"
PLOTLY_JS = "plotly.min.js"
URL = f"./app/static/{PLOTLY_JS}"  # relative to the page, so it also works under server.baseUrlPath
NAME = "bptt_chart"  # the component's name: AppTest lists it as a bidi_component element with this name

TEXT, FADED, GRID = "#1b1f24", "#6b7280", "#e6e9ef"  # .streamlit/config.toml's textColor; axis text; grid
FONT = '"Source Sans", sans-serif'  # the font the page already loads for its own text
THEME = {  # a Plotly template's layout: what a figure leaves unset
    "font": {"family": FONT, "color": FADED, "size": 12},
    "title": {"font": {"family": FONT, "color": TEXT, "size": 16, "weight": 600}, "x": 0, "xanchor": "left"},
    "paper_bgcolor": "#ffffff", "plot_bgcolor": "#ffffff",
    "colorway": ["#0068c9", "#83c9ff", "#ff2b2b", "#ffabab", "#29b09d", "#7defa1", "#ff8700", "#ffd16a",
                 "#6d3fc0", "#d5dae5"],
    "xaxis": {"showgrid": False, "zeroline": False, "linecolor": GRID, "tickcolor": GRID, "automargin": True},
    "yaxis": {"gridcolor": GRID, "zerolinecolor": GRID, "tickcolor": GRID, "automargin": True},
    "hoverlabel": {"bgcolor": "#ffffff", "bordercolor": GRID, "font": {"family": FONT, "color": TEXT}},
    "legend": {"font": {"color": FADED}},
}

_JS = (Path(__file__).with_name("live_chart.js")).read_text(encoding="utf-8")
_component = st.components.v2.component(NAME, js=_JS, isolate_styles=False)


@functools.cache
def plotly_js_served() -> bool:
    """Put the plotly package's plotly.min.js in static/ (once per process); False where it cannot be.

    Written to a temporary name and renamed, so two servers starting together, or a browser
    asking while it is written, never see half a file."""
    import plotly

    src = Path(plotly.__file__).parent / "package_data" / PLOTLY_JS
    dst = STATIC / PLOTLY_JS
    try:
        if dst.is_file() and filecmp.cmp(src, dst, shallow=False):
            return True
        STATIC.mkdir(exist_ok=True)
        tmp = STATIC / f".{PLOTLY_JS}.{os.getpid()}.tmp"
        shutil.copyfile(src, tmp)
        os.replace(tmp, dst)
        return True
    except OSError:
        return False


_FROZEN: dict[int, str | None] = {}  # id of a frozen figure -> its spec, once made (figures are unhashable)


def frozen(fig: go.Figure) -> go.Figure:
    """Mark a figure that is never changed again (a cached chart frame shared between sessions):
    its JSON is then made once, not on every draw. Serialising a frame was about a seventh of a
    queued Explore click's server time when a class clicked Train together (bench/bench_class.py)."""
    if id(fig) not in _FROZEN:
        _FROZEN[id(fig)] = None
        weakref.finalize(fig, _FROZEN.pop, id(fig), None)  # its id may be reused once it is gone
    return fig


def figure_spec(fig: go.Figure) -> str:
    """The figure's JSON for plotly.js, with THEME as its template (numpy arrays as typed arrays)."""
    key = id(fig)
    if key not in _FROZEN:
        return _spec(fig)
    if _FROZEN[key] is None:
        _FROZEN[key] = _spec(fig)
    return _FROZEN[key]


def _spec(fig: go.Figure) -> str:
    spec = fig.to_plotly_json()
    layout = dict(spec.get("layout") or {})
    layout["template"] = {"layout": THEME}  # replaces plotly.py's default: 9/10 of a small spec
    spec["layout"] = layout
    return to_json_plotly(spec)


def live_chart(fig: go.Figure, key: str, height: int, config: dict) -> None:
    """Draw `fig` at `height` px, full column width; a later call with the same key redraws it in place."""
    if not plotly_js_served():
        st.plotly_chart(fig, key=key, width="stretch", height=height, config=config)
        return
    _component(data={"spec": figure_spec(fig), "config": to_json_plotly(config), "height": height, "src": URL},
               key=key, height=height)


__all__ = ["live_chart", "figure_spec", "frozen", "plotly_js_served", "THEME", "NAME"]
