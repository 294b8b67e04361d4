"""The layout every figure builder shares: the legend in rows below the x axis, margins sized
from what a chart holds, markers on short series, and presenter mode. Dict arithmetic only.

The legend is anchored to the bottom of the figure (yref "container"), not to the plot: plotly
then reserves its measured height below the x axis, whose automargin keeps the tick labels and
the title clear of it. Rows are measured by the browser at the chart's real width, so a legend
of 9 entries in a 330 px column takes more rows than in a 600 px one and never covers the axis;
the height stays fixed and the plot area gives up what the legend takes. Plotly measures text
only in the browser, so entry names and subtitles are wrapped here for the narrowest chart.
"""
from __future__ import annotations

import math
import re
import textwrap
from dataclasses import dataclass

import numpy as np
import plotly.graph_objects as go

HEIGHT = 330  # px: every chart's height; fixed, so a redraw with a taller legend never moves the page
NARROW = 330  # px: the narrowest chart, a half-width column of a 700 px tab; long names are wrapped for it
NARROW_BIG = 600  # px: presenter mode hides the sidebar, so a half-width column of a 1280 px screen
BIG_SCALE = 1.4  # presenter mode: charts this much taller, so bigger text leaves room for the data
MARKERS_UP_TO = 50  # a series with this many finite points or fewer gets markers: a 1-step run shows
CHAR_EM = 0.58  # average glyph width in em, a little wide so a wrapped line never runs past the chart
SYMBOL_PX = 40  # plotly's legend symbol column: itemwidth 30 + two 5 px gaps
GROUP_GAP = 2  # px between legend rows (plotly's tracegroupgap)
PAD = 4  # px between the plot area and its tick labels (margin.pad; Streamlit's theme would make it 8)
STANDOFF = 8  # px between the x tick labels and the x axis title (Streamlit's theme would make it 20)
LINE_SPACING = 1.3  # plotly's line height in em


@dataclass(frozen=True)
class Look:
    """Font sizes (px) and line width of one mode: normal, or presenter mode for a projector."""
    title: int
    axis: int  # axis titles
    tick: int
    legend: int
    note: int  # subtitles and annotations
    line: float  # minimum trace line width
    left: int  # left margin: room for log ticks like 10^-12 and the rotated y title
    width: int  # the narrowest chart: legend names and subtitles are wrapped to fit it


NORMAL = Look(title=15, axis=13, tick=12, legend=11, note=11, line=0.0, left=60, width=NARROW)
BIG = Look(title=24, axis=20, tick=18, legend=18, note=18, line=3.0, left=95, width=NARROW_BIG)
RIGHT = 20  # right margin; a colourbar adds its own room


def look(big: bool) -> Look:
    return BIG if big else NORMAL


def chart_height(big: bool = False, extra: int = 0) -> int:
    """A builder's fixed height: the panel sizes its chart frame with it before data arrives."""
    return int(round((HEIGHT + extra) * (BIG_SCALE if big else 1.0)))


# --- series ---------------------------------------------------------------------------------
def series_mode(y: np.ndarray, size: float = 5.0) -> dict:
    """mode and marker for one series: a line alone cannot show a single point.

    Up to MARKERS_UP_TO finite points every point gets a marker (a run that diverged at step 1
    has one or two); longer series get markers only on isolated points between NaNs.
    """
    finite = np.isfinite(np.asarray(y, dtype=np.float64))
    if finite.sum() <= MARKERS_UP_TO:
        return dict(mode="lines+markers", marker=dict(size=size))
    prev = np.r_[False, finite[:-1]]
    nxt = np.r_[finite[1:], False]
    isolated = finite & ~prev & ~nxt
    if not isolated.any():
        return dict(mode="lines")
    return dict(mode="lines+markers", marker=dict(size=np.where(isolated, size, 0.0).tolist()))


# --- text -------------------------------------------------------------------------------------
def text_px(text: str, font: int) -> float:
    """Estimated width of the longest line of `text` (plotly <br> line breaks) at `font` px."""
    return max(len(re.sub(r"<[^>]+>", "", line)) for line in text.split("<br>")) * CHAR_EM * font


def wrap(text: str, px: float, font: int) -> str:
    """Break `text` with <br> so each line fits `px` (never inside a word); its own <br> stay."""
    chars = max(8, int(px / (CHAR_EM * font)))
    return "<br>".join(part for line in text.split("<br>") for part in (textwrap.wrap(line, chars) or [""]))


def lines(text: str | None) -> int:
    return 0 if not text else text.count("<br>") + 1


# --- legend ---------------------------------------------------------------------------------
def legend_entries(traces: list) -> list:
    """The traces that own a legend item: plotly shows a legend only when there are two or more."""
    shown = [t for t in traces if t.type == "scatter" and t.showlegend is not False]
    return shown if len(shown) >= 2 else []


# --- the whole layout ---------------------------------------------------------------------------
def axis_px(lk: Look) -> float:
    """Room under the plot for the x tick labels and the x axis title: plotly puts the title's
    cap line STANDOFF below the tick labels (pad + ~3 px + a line of tick text)."""
    return math.ceil(PAD + 3 + LINE_SPACING * lk.tick + STANDOFF + 1.05 * lk.axis) + 4


def finish(traces: list, layout: dict, big: bool = False, subtitle: str | None = None,
           extra_height: int = 0) -> go.Figure:
    """Margins, legend and fonts from the traces, presenter mode, and the figure built once
    (go.Figure validates the layout tree once; update_layout would walk it again)."""
    lk = look(big)
    height = chart_height(big, extra_height)
    plot_w = lk.width - lk.left - RIGHT
    entries = legend_entries(traces)
    for k, t in enumerate(entries):  # long names break into lines instead of running off a narrow chart
        t.name = wrap(t.name, plot_w - SYMBOL_PX, lk.legend)
        if t.legendgroup is None:  # a grouped legend gives each entry its own width, not the widest's
            t.legendgroup = f"entry {k}"
    title = layout.get("title", {})
    # Streamlit draws the title in bold: wider glyphs, so it wraps a little earlier
    title["text"] = wrap(title.get("text", ""), lk.width - 10, round(lk.title * 1.1)) if title.get("text") else ""
    sub = wrap(subtitle, lk.width - 20, lk.note) if subtitle else None
    # plotly puts the subtitle's first baseline 1.6 em under the title: room for that and its lines
    top = math.ceil(8 + LINE_SPACING * lk.title * lines(title["text"] or "x") +
                    ((LINE_SPACING * (lines(sub) - 1) + 1.9) * lk.note if sub else 0) + 8)
    layout.update(height=height, margin=dict(l=lk.left, r=RIGHT, t=top, b=axis_px(lk), pad=PAD), showlegend=bool(entries))
    title.update(x=0.0, xanchor="left", xref="container", y=1 - 8 / height, yanchor="top", yref="container",
                 font=dict(size=lk.title))
    if sub:
        title["subtitle"] = dict(text=sub, font=dict(size=lk.note))
    layout["title"] = title
    # at the foot of the figure: plotly reserves the legend's measured height under the x axis
    layout["legend"] = dict(orientation="h", traceorder="grouped", tracegroupgap=GROUP_GAP, x=0, xanchor="left",
                            xref="paper", y=0, yanchor="bottom", yref="container", font=dict(size=lk.legend))
    for key, axis in layout.items():  # explicit, so Streamlit's chart theme cannot move the titles
        if key.startswith(("xaxis", "yaxis")):
            title_ = axis.setdefault("title", {})
            title_.setdefault("font", {})["size"] = lk.axis
            title_["standoff"] = STANDOFF
            # automargin: the x axis claims the room its labels and title need above the legend
            axis.update(tickfont=dict(size=lk.tick), automargin=True)
    for note in layout.get("annotations", []):
        font = note.setdefault("font", {})
        font["size"] = max(lk.note, font.get("size", 0))
    if big:
        _presenter_traces(traces, lk)
    return go.Figure(traces, layout=layout)


def _presenter_traces(traces: list, lk: Look) -> None:
    """Thicker lines, bigger markers and colourbar text for a projector."""
    for t in traces:
        if t.type == "scatter":
            if "lines" in (t.mode or "lines"):
                t.line.width = max(lk.line, t.line.width or 0)
            if t.mode and "markers" in t.mode:
                size = t.marker.size
                t.marker.size = [s * 1.6 for s in size] if isinstance(size, (list, tuple)) else max(9, (size or 6) * 1.6)
        elif t.type == "heatmap":
            t.colorbar.tickfont = dict(size=lk.tick)
            t.colorbar.title.font = dict(size=lk.axis)
