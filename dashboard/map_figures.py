"""The trainability map: one sweep's runs as a heatmap over two grid keys. Pure: a DataFrame in,
a plotly Figure out; no Streamlit. The Sweeps page and the class board draw it.

    fig = trainability_map(points, x="init_gain", y="seq_len", value="verdict")

`points` has one row per run (a grid point × a seed), as in a sweep's sweep.csv: the grid keys,
`seed`, `verdict` (an outcome of rnn_core.summary.outcome: "solved", "stuck at baseline",
"diverged", "still learning"; or a bool "beat the baseline"), `final_val_loss`, `baseline` (the
input-blind predictor's loss on the run's validation batch), `memory_horizon`, `log10_ratio`
(log10 ‖∂L/∂h_0‖/‖∂L/∂h_{T−1}‖) and `run` (its name). A row whose verdict is empty has not
finished yet: its cell stays blank until some seed of it has.

Every number is aggregated across seeds with pandas (groupby, pivot), never a Python loop per
point, so 1,000 runs draw in milliseconds (bench/bench_sweep.py map). Axes are categorical: a
grid is a list of chosen values, often log-spaced (T = 10, 20, 50, ...), and each gets a cell of
the same size. A third grid key is the caller's choice: filter the frame to one of its values
(the Sweeps page offers a selector).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from .chart_layout import finish
from .figures import base_layout, decade_ticks

SOLVED = "solved"
DIVERGED = "diverged"
MAP_HEIGHT = 120  # px the map is taller than the other charts: a grid wants room for its rows


@dataclass(frozen=True)
class MapValue:
    """One quantity the map can colour its cells by."""
    label: str  # colourbar title and hover name
    title: str  # chart title
    colorscale: str | list
    reduce: str  # how seeds are combined, said in the subtitle


VALUES = {
    "verdict": MapValue("share solved", "Share of seeds that beat the baseline",
                        [[0, "#d9d9d9"], [0.5, "#9ecae1"], [1, "#08519c"]], "solved seeds / finished seeds"),
    "loss_ratio": MapValue("loss / baseline", "Final val loss / baseline",
                           "RdBu", "median over seeds; < 1 is below the baseline, log colour scale"),
    "memory_horizon": MapValue("memory horizon", "Memory horizon (steps)",
                               "Viridis", "median over seeds"),
    "log10_ratio": MapValue("log10 g(0)/g(T−1)", "log10 ‖∂L/∂h_0‖/‖∂L/∂h_{T−1}‖",
                            "Viridis", "median over seeds"),
}


def axis_labels(values: pd.Series) -> pd.Series:
    """Each grid value as the category label of its axis: numbers as %g, the rest as text."""
    if pd.api.types.is_bool_dtype(values):
        return values.map(lambda v: "true" if v else "false")
    if pd.api.types.is_numeric_dtype(values):
        return values.map(lambda v: f"{v:g}")
    return values.astype(str)


def axis_order(values: pd.Series) -> list[str]:
    """The category labels in grid order: numbers ascending, text as it first appears."""
    uniq = pd.Series(values.dropna().unique())
    if pd.api.types.is_numeric_dtype(uniq) and not pd.api.types.is_bool_dtype(uniq):
        uniq = uniq.sort_values()
    return list(dict.fromkeys(axis_labels(uniq)))


def solved(verdict: pd.Series) -> pd.Series:
    """True where a row's verdict says it beat the baseline; NaN where it has none yet."""
    out = verdict.map(lambda v: bool(v) if isinstance(v, (bool, np.bool_)) else (v == SOLVED if isinstance(v, str) and v
                                                                                  else np.nan))
    return out.astype("float64")


def _fmt(series: pd.Series, spec: str) -> pd.Series:
    return series.map(lambda v: "–" if pd.isna(v) else format(v, spec))


def _seed_lines(frame: pd.DataFrame) -> pd.Series:
    """One hover line per run: its seed, its verdict and its numbers (the spread across seeds)."""
    verdict = frame["verdict"].map(lambda v: ("solved" if v else "not beaten") if isinstance(v, (bool, np.bool_))
                                   else (v if isinstance(v, str) and v else "not run yet"))
    return ("seed " + frame["seed"].astype(str) + ": " + verdict +
            " · loss/baseline " + _fmt(frame["loss_ratio"], ".3g") +
            " · horizon " + _fmt(frame["memory_horizon"], ".0f") +
            " · log10 ratio " + _fmt(frame["log10_ratio"], ".1f"))


def cell_table(points: pd.DataFrame, x: str, y: str, value: str = "verdict") -> pd.DataFrame:
    """One row per (x, y) cell: the category labels `x_label`/`y_label`, the aggregated `z`, the
    cell text (e.g. "2/3"), the hover text with every seed's line and the cell's run names."""
    if value not in VALUES:
        raise ValueError(f"value {value!r} is not one of {', '.join(VALUES)}")
    f = points.copy()
    f["x_label"], f["y_label"] = axis_labels(f[x]), axis_labels(f[y])
    f["solved"] = solved(f["verdict"]) if "verdict" in f else np.nan
    done = f["solved"].notna()
    loss, base = pd.to_numeric(f["final_val_loss"], errors="coerce"), pd.to_numeric(f["baseline"], errors="coerce")
    f["loss_ratio"] = (loss / base).where(done & (base > 0))
    f["memory_horizon"] = pd.to_numeric(f["memory_horizon"], errors="coerce").where(done)
    f["log10_ratio"] = pd.to_numeric(f["log10_ratio"], errors="coerce").where(done)
    f["diverged"] = f["verdict"].eq(DIVERGED)
    f["line"] = _seed_lines(f)
    f = f.sort_values("seed", kind="stable")
    g = f.groupby(["x_label", "y_label"], sort=False)
    cells = g.agg(n=("seed", "size"), finished=("solved", "count"), solved=("solved", "sum"),
                  diverged=("diverged", "sum"), loss_ratio=("loss_ratio", "median"),
                  memory_horizon=("memory_horizon", "median"), log10_ratio=("log10_ratio", "median"),
                  lines=("line", "<br>".join), runs=("run", list)).reset_index()
    if value == "verdict":
        cells["z"] = (cells["solved"] / cells["finished"]).where(cells["finished"] > 0)
    else:
        cells["z"] = cells[value]
    solved_text = cells["solved"].astype(int).astype(str) + "/" + cells["finished"].astype(str)
    cells["text"] = np.where(cells["finished"] > 0, solved_text, "")
    cells["text"] = cells["text"] + np.where(cells["diverged"] > 0, " ↯" + cells["diverged"].astype(str), "")
    waiting = cells["n"] - cells["finished"]
    cells["text"] = cells["text"] + np.where(waiting > 0, " …", "")
    z_text = cells["z"].map(lambda v: "not run yet" if pd.isna(v) else f"{v:.3g}")
    cells["hover"] = (f"{x} = " + cells["x_label"] + ", " + f"{y} = " + cells["y_label"] + "<br>" +
                      VALUES[value].label + ": " + z_text + " (" + cells["solved"].astype(int).astype(str) + " of " +
                      cells["finished"].astype(str) + " finished seeds solved, " + waiting.astype(str) +
                      " waiting)<br>" + cells["lines"])
    return cells


def _colour(value: str, z: np.ndarray) -> dict:
    """zmin/zmax, colourscale and colourbar; the loss ratio is drawn as log10 with real-valued ticks."""
    v = VALUES[value]
    finite = z[np.isfinite(z)]
    if value == "verdict":
        return dict(zmin=0.0, zmax=1.0, colorscale=v.colorscale,
                    colorbar=dict(title=dict(text=v.label), tickvals=[0, 0.5, 1], ticktext=["0", "½", "all"]))
    if value == "loss_ratio":  # centred on 1 (the baseline): blue below, red above, decades labelled
        span = max(0.3, float(np.abs(finite).max())) if len(finite) else 1.0
        tickvals, ticktext = decade_ticks(-span, span)
        return dict(zmin=-span, zmax=span, colorscale=v.colorscale, reversescale=True, zmid=0.0,
                    colorbar=dict(title=dict(text=v.label), tickvals=tickvals, ticktext=ticktext))
    lo, hi = (float(finite.min()), float(finite.max())) if len(finite) else (0.0, 1.0)
    return dict(zmin=lo, zmax=hi if hi > lo else lo + 1, colorscale=v.colorscale, colorbar=dict(title=dict(text=v.label)))


def trainability_map(points: pd.DataFrame, x: str, y: str, value: str = "verdict", big: bool = False,
                     title: str | None = None) -> go.Figure:
    """The heatmap of `value` over the x × y grid, seeds aggregated (VALUES says how); hover lists
    every seed; cells with no finished run are blank. An invisible marker at each cell's centre
    carries the hover and makes the cell clickable (Streamlit's on_select reports its x, y and
    customdata, the cell's run names)."""
    cells = cell_table(points, x, y, value)
    xs, ys = axis_order(points[x]), axis_order(points[y])
    zx = pd.Categorical(cells["x_label"], categories=xs).codes
    zy = pd.Categorical(cells["y_label"], categories=ys).codes
    z = np.full((len(ys), len(xs)), np.nan)
    text = np.full((len(ys), len(xs)), "", dtype=object)
    z_plot = cells["z"].to_numpy(dtype=np.float64)
    if value == "loss_ratio":
        with np.errstate(divide="ignore", invalid="ignore"):
            z_plot = np.log10(np.maximum(z_plot, 1e-12))
    z[zy, zx] = z_plot
    text[zy, zx] = cells["text"].to_numpy()
    heat = go.Heatmap(z=z, x=xs, y=ys, text=text, texttemplate="%{text}", hoverinfo="skip", xgap=1, ygap=1,
                      **_colour(value, z_plot))
    hover = go.Scatter(x=cells["x_label"], y=cells["y_label"], mode="markers", showlegend=False,
                       marker=dict(size=18, opacity=0, color="#000"), hovertext=cells["hover"],
                       hovertemplate="%{hovertext}<extra></extra>",
                       customdata=cells["runs"].map(lambda r: ",".join(map(str, r))))
    v = VALUES[value]
    # A click selects the cell whose marker is nearest (hoverdistance -1: always one). Streamlit turns
    # click-selection off (clickmode "event") while the drag mode is a box or lasso select, so the map
    # drags nothing by default (pan over fixed axes); the modebar's box select picks several cells.
    layout = base_layout(title or v.title, x, y, uirev=f"map {x} {y} {value}", hovermode="closest",
                         hoverdistance=-1, clickmode="event+select", dragmode="pan")
    layout["xaxis"].update(type="category", categoryorder="array", categoryarray=xs, fixedrange=True)
    layout["yaxis"].update(type="category", categoryorder="array", categoryarray=ys, exponentformat="none",
                           fixedrange=True)
    return finish([heat, hover], layout, big, subtitle=f"{v.reduce}; cell text: solved/finished, ↯ diverged, … waiting",
                  extra_height=MAP_HEIGHT)


def cell_runs(points: pd.DataFrame, x: str, y: str, x_label: str, y_label: str) -> pd.DataFrame:
    """The rows (runs) of one cell, by the category labels a click on the map reports."""
    hit = (axis_labels(points[x]) == str(x_label)) & (axis_labels(points[y]) == str(y_label))
    return points[hit]
