"""Pure figure builders: numpy in, plotly.graph_objects.Figure out. No Streamlit, no state.

Tests call these directly on synthetic arrays (AppTest cannot look inside a Plotly chart).

Plotly heatmaps have no log colour scale, so gradient heatmaps plot log10 of the norm, label
the colourbar ticks with the real values (1e-6, 1e-3, 1) and carry the raw value for hover.
An exact zero has no logarithm: it is plotted at FLOOR and drawn in the lowest colour.
"""
from __future__ import annotations

import math
import warnings
from typing import Sequence

import numpy as np
import plotly.graph_objects as go

FLOOR = 1e-300  # an exact zero (e.g. a gradient flushed to 0) is shown as this value
HEIGHT = 330
GATE_NAMES = {"lstm": ("input i", "forget f", "candidate g", "output o"), "gru": ("reset r", "update z", "candidate n")}
CANDIDATE_BLOCK = {"rnn": 0, "lstm": 2, "gru": 2}  # which W_hh block's spectral radius drives the envelope
COLOURS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf")


# --- numbers --------------------------------------------------------------------------
def safe_log10(values: np.ndarray) -> np.ndarray:
    """log10 with exact zeros at log10(FLOOR) = -300; NaN (a timestep that did not exist) stays NaN."""
    v = np.asarray(values, dtype=np.float64)
    with np.errstate(invalid="ignore"):
        return np.log10(np.maximum(v, FLOOR))


def linear_envelope(profile: np.ndarray, gamma: float, reverse: bool = False) -> np.ndarray:
    """γ^(T−t)·‖∂L/∂h_T‖: the exact profile of a linear RNN with W_hh = γ·Q (Q orthogonal).

    Anchored at the last finite timestep (at the first one for a backward direction, whose
    recurrence runs from T−1 down to 0). Computed in log space so γ^2000 neither under- nor
    overflows; values outside [FLOOR, 1e300] are clamped there.
    """
    g = np.asarray(profile, dtype=np.float64)
    T = len(g)
    finite = np.flatnonzero(np.isfinite(g))
    out = np.full(T, np.nan)
    if len(finite) == 0 or not gamma > 0:
        return out
    anchor = int(finite[0] if reverse else finite[-1])
    if not g[anchor] > 0:
        return out
    t = np.arange(T)
    distance = (t - anchor) if reverse else (anchor - t)
    log_env = distance * math.log10(gamma) + math.log10(g[anchor])
    valid = distance >= 0
    out[valid] = np.power(10.0, np.clip(log_env[valid], math.log10(FLOOR), 300.0))
    return out


def decade_ticks(zmin: float, zmax: float, max_ticks: int = 8) -> tuple[list[float], list[str]]:
    """Colourbar ticks at whole decades between zmin and zmax (log10 units), labelled 1e-6, 1e-3, 1."""
    lo, hi = math.floor(zmin), math.ceil(zmax)
    if hi <= lo:
        hi = lo + 1
    stride = max(1, math.ceil((hi - lo) / (max_ticks - 1)))
    vals = [k for k in range(lo, hi + 1) if k % stride == 0]  # multiples of the stride: 1 is a tick when in range
    return [float(v) for v in vals], [decade_label(v) for v in vals]


def decade_label(k: int) -> str:
    return "1" if k == 0 else "10" if k == 1 else f"1e{k}"


def thin_indices(n: int, max_points: int) -> np.ndarray:
    """At most `max_points` evenly spaced indices of range(n), always keeping the last."""
    if n <= max_points:
        return np.arange(n)
    idx = np.unique(np.linspace(0, n - 1, max_points).round().astype(int))
    return idx


def _bin_time(z: np.ndarray, max_cols: int) -> tuple[np.ndarray, np.ndarray]:
    """Average (log) values over blocks of timesteps so a T=2000 heatmap stays light to send."""
    T = z.shape[-1]
    f = max(1, math.ceil(T / max_cols))
    if f == 1:
        return z, np.arange(T)
    pad = (-T) % f
    zp = np.pad(z, [(0, 0)] * (z.ndim - 1) + [(0, pad)], constant_values=np.nan)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # an all-NaN bin (curriculum padding) stays NaN
        binned = np.nanmean(zp.reshape(*z.shape[:-1], -1, f), axis=-1)
    return binned, np.arange(0, T, f)


def _finite_or_none(a: np.ndarray) -> list:
    """Plotly cannot draw inf on a log axis: send None (a gap) for anything not finite."""
    a = np.asarray(a, dtype=np.float64)
    return [float(v) if math.isfinite(v) else None for v in a]


def _hline(steps: np.ndarray, y: float, name: str) -> go.Scatter:
    """A horizontal reference line as a trace: unlike a shape it needs no log10 of y on a log axis."""
    x = [float(steps[0]), float(steps[-1])] if len(steps) else [0.0, 1.0]
    return go.Scatter(x=x, y=[y, y], mode="lines", name=name, line=dict(color="#555", dash="dash"),
                      hovertemplate=f"{name}<extra></extra>")


def _layout(title: str, x: str, y: str, log_y: bool = False, uirev: str = "", **extra) -> dict:
    """The shared layout as one dict: passed to go.Figure at construction, because plotly's
    update_layout / update_xaxes walk and validate the tree again (3/4 of a heatmap's build time)."""
    return dict(title=dict(text=title, x=0.0, font=dict(size=15)), height=HEIGHT,
                margin=dict(l=60, r=20, t=45, b=45), uirevision=uirev or title,
                legend=dict(orientation="h", yanchor="top", y=-0.2, x=0),
                xaxis=dict(title=dict(text=x)),
                yaxis=dict(title=dict(text=y), type="log" if log_y else "linear", exponentformat="power"), **extra)


def empty_figure(title: str, x: str = "", y: str = "", log_y: bool = False, note: str = "Press Train") -> go.Figure:
    """A chart frame drawn at page load: it loads plotly.js before the first data arrives."""
    layout = _layout(title, x, y, log_y, annotations=[dict(text=note, showarrow=False, xref="paper", yref="paper",
                                                           x=0.5, y=0.5, font=dict(size=14, color="#888"))])
    layout["xaxis"].update(showticklabels=False, showgrid=False, zeroline=False)
    layout["yaxis"].update(showticklabels=False, showgrid=False, zeroline=False)
    return go.Figure(layout=layout)


def direction_labels(ld: int, directions: int) -> list[str]:
    """Names of the layer-major (layer, direction) rows: 'layer 1' or 'layer 1 →' / 'layer 1 ←'."""
    if directions == 1:
        return [f"layer {k + 1}" for k in range(ld)]
    return [f"layer {k // 2 + 1} {'→' if k % 2 == 0 else '←'}" for k in range(ld)]


# --- 1. gradient through time ---------------------------------------------------------------
def gradient_heatmap(grads: np.ndarray, steps: np.ndarray, title: str = "‖∂L/∂h_t‖ through time",
                     max_rows: int = 250, max_cols: int = 300) -> go.Figure:
    """Heatmap of log10 ‖∂L/∂h_t‖: timestep t on x, training step on y, raw value on hover.

    grads: (N, T) gradient norms of one layer and direction at N recorded steps.
    """
    grads = np.asarray(grads, dtype=np.float64)
    rows = thin_indices(len(grads), max_rows)
    z, t = _bin_time(safe_log10(grads[rows]), max_cols)
    finite = z[np.isfinite(z)]
    real = finite[finite > math.log10(FLOOR) + 1]  # exact zeros would stretch the scale to 1e-300
    zmin = float(real.min()) if len(real) else -1.0
    zmax = float(real.max()) if len(real) else 0.0
    if zmax - zmin < 1:
        zmin, zmax = zmin - 0.5, zmax + 0.5
    tickvals, ticktext = decade_ticks(zmin, zmax)
    if len(real) < len(finite):  # some exact zeros: say so on the lowest tick
        ticktext[0] = f"≤{ticktext[0]} (0 → {FLOOR:g})"
    binned = len(t) < grads.shape[-1]
    return go.Figure(go.Heatmap(
        z=z, x=t, y=np.asarray(steps)[rows], customdata=np.power(10.0, z), zmin=zmin, zmax=zmax,
        colorscale="Viridis", colorbar=dict(title=dict(text="‖∂L/∂h_t‖"), tickvals=tickvals, ticktext=ticktext),
        hovertemplate=("t = %{x}" + (" (bin start)" if binned else "") +
                       "<br>step %{y}<br>‖∂L/∂h_t‖ = %{customdata:.3e}<extra></extra>")),
        layout=_layout(title, "timestep t", "training step", uirev="heatmap"))


def gradient_profile(profile: np.ndarray, spectral_radius: np.ndarray | None, cell: str, directions: int = 1,
                     step: int | None = None) -> go.Figure:
    """The latest step's ‖∂L/∂h_t‖ over t on a log axis, one line per layer and direction, with the
    ideal linear-RNN envelope γ^(T−t)·‖∂L/∂h_T‖ (γ = spectral radius of the candidate block) dashed.

    profile: (LD, T); spectral_radius: (LD, G).
    """
    profile = np.asarray(profile, dtype=np.float64)
    labels = direction_labels(len(profile), directions)
    block = CANDIDATE_BLOCK.get(cell, 0)
    block_name = {"lstm": "candidate block g", "gru": "candidate block n"}.get(cell, "W_hh")
    traces = []
    t = np.arange(profile.shape[-1])
    for k, (row, label) in enumerate(zip(profile, labels)):
        colour = COLOURS[k % len(COLOURS)]
        shown = np.where(row == 0, FLOOR, row)  # an exact zero sits at the floor, not in a gap
        traces.append(go.Scatter(x=t, y=_finite_or_none(shown), mode="lines", name=label, line=dict(color=colour),
                                 hovertemplate="t = %{x}<br>‖∂L/∂h_t‖ = %{y:.3e}<extra>" + label + "</extra>"))
        if spectral_radius is not None:
            gamma = float(np.asarray(spectral_radius)[k, block])
            env = linear_envelope(row, gamma, reverse=(directions == 2 and k % 2 == 1))
            traces.append(go.Scatter(
                x=t, y=_finite_or_none(env), mode="lines", line=dict(color=colour, dash="dash", width=1.5),
                name=f"ideal linear RNN γ^(T−t)·‖∂L/∂h_T‖, γ={gamma:.3g} ({block_name}, {label})",
                hovertemplate="t = %{x}<br>envelope = %{y:.3e}<extra></extra>"))
    title = "Latest gradient profile" + (f" (step {step})" if step is not None else "")
    return go.Figure(traces, layout=_layout(title, "timestep t", "‖∂L/∂h_t‖ (log)", log_y=True, uirev="profile"))


# --- 3. gates and saturation ------------------------------------------------------------------
def gates_figure(gate_mean: np.ndarray, gate_saturation: np.ndarray, cell: str, label: str = "") -> go.Figure:
    """Each gate's mean activation over time (top) and the fraction of its units saturated (bottom).

    gate_mean, gate_saturation: (G, T) for one layer and direction.
    """
    names = GATE_NAMES.get(cell, tuple(f"gate {k}" for k in range(len(gate_mean))))
    t = np.arange(np.asarray(gate_mean).shape[-1])
    traces = []
    for k, name in enumerate(names):
        c = COLOURS[k % len(COLOURS)]
        traces.append(go.Scatter(x=t, y=_finite_or_none(gate_mean[k]), name=name, line=dict(color=c), legendgroup=name,
                                 xaxis="x", yaxis="y"))
        traces.append(go.Scatter(x=t, y=_finite_or_none(gate_saturation[k]), name=name, line=dict(color=c, dash="dot"),
                                 legendgroup=name, showlegend=False, xaxis="x2", yaxis="y2"))
    # two stacked panels sharing t, laid out by hand (make_subplots costs more than the traces)
    layout = _layout(f"Gates{' — ' + label if label else ''}", "", "mean activation", uirev="gates")
    layout.update(height=HEIGHT + 60, legend=dict(orientation="h", yanchor="top", y=-0.15, x=0))
    layout["xaxis"].update(anchor="y", domain=[0, 1], matches="x2", showticklabels=False)
    layout["yaxis"].update(domain=[0.55, 1.0])
    layout["xaxis2"] = dict(anchor="y2", domain=[0, 1], title=dict(text="timestep t"))
    layout["yaxis2"] = dict(anchor="x2", domain=[0.0, 0.45], range=[-0.05, 1.05], title=dict(text="saturated fraction"))
    return go.Figure(traces, layout=layout)


def saturation_figure(hidden_saturation: np.ndarray, activation: str, directions: int = 1) -> go.Figure:
    """Vanilla RNN: fraction of hidden units saturated (|tanh| > 0.95, sigmoid outside 0.05..0.95)
    or, for relu, dead (h = 0), per timestep and layer. A linear cell has no saturation (NaN)."""
    sat = np.asarray(hidden_saturation, dtype=np.float64)
    what = {"relu": "dead fraction (h = 0)", "linear": "no saturation for a linear cell"}.get(activation, "saturated fraction")
    t = np.arange(sat.shape[-1])
    traces = [go.Scatter(x=t, y=_finite_or_none(sat[k]), name=label, line=dict(color=COLOURS[k % len(COLOURS)]))
              for k, label in enumerate(direction_labels(len(sat), directions))]
    notes = []
    if activation == "linear" or not np.isfinite(sat).any():
        notes.append(dict(text="a linear cell never saturates", showarrow=False, xref="paper", yref="paper", x=0.5, y=0.5))
    layout = _layout(f"Hidden state: {what}", "timestep t", "fraction of units", uirev="saturation", annotations=notes)
    layout["yaxis"]["range"] = [-0.05, 1.05]
    return go.Figure(traces, layout=layout)


# --- 4. attention --------------------------------------------------------------------------------
def attention_figure(attention: np.ndarray, step: int | None = None) -> go.Figure:
    """Mean attention weights: queries on y (the last ones for every-step tasks), timesteps on x."""
    a = np.asarray(attention, dtype=np.float64)
    Q = a.shape[0]
    y = np.arange(Q) - Q + 1  # 0 is the last query; numeric, so the axis type never flips to category
    layout = _layout("Attention" + (f" (step {step})" if step is not None else ""), "key timestep t",
                     "query (relative to the last step)" if Q > 1 else "query", uirev="attention")
    if Q == 1:
        layout["yaxis"].update(tickvals=[0], ticktext=["end"])
    return go.Figure(go.Heatmap(z=a, x=np.arange(a.shape[-1]), y=y, colorscale="Blues", zmin=0.0,
                                colorbar=dict(title=dict(text="weight")),
                                hovertemplate="key t = %{x}<br>query %{y}<br>weight %{z:.3f}<extra></extra>"),
                     layout=layout)


# --- 5. clipping -------------------------------------------------------------------------------
def clipping_figure(steps: np.ndarray, pre: np.ndarray, post: np.ndarray, clipped: np.ndarray,
                    clip: float, clip_mode: str, max_points: int = 2000) -> go.Figure:
    """Global gradient norm before and after clipping per step (log y), the threshold as a line,
    and a marker on every step where clipping fired."""
    steps, pre, post = np.asarray(steps), np.asarray(pre, dtype=np.float64), np.asarray(post, dtype=np.float64)
    clipped = np.asarray(clipped, dtype=bool)
    idx = thin_indices(len(steps), max_points)
    traces = [go.Scatter(x=steps[idx], y=_finite_or_none(pre[idx]), mode="lines", name="before clipping",
                         line=dict(color=COLOURS[0])),
              go.Scatter(x=steps[idx], y=_finite_or_none(post[idx]), mode="lines", name="after clipping",
                         line=dict(color=COLOURS[2], dash="dot"))]  # dotted: it lies on "before" when nothing is clipped
    hit = np.flatnonzero(clipped)
    hit = hit[thin_indices(len(hit), max_points)]
    traces.append(go.Scatter(x=steps[hit], y=_finite_or_none(pre[hit]), mode="markers", name="clipping fired",
                             marker=dict(color=COLOURS[1], symbol="x", size=7)))
    notes = []
    if clip > 0 and clip_mode == "norm":
        traces.append(_hline(steps, clip, f"threshold {clip:g}"))
    elif clip > 0:
        notes.append(dict(text=f"value mode clamps each entry to ±{clip:g}: no global threshold", showarrow=False,
                          xref="paper", yref="paper", x=0.01, y=0.98, xanchor="left"))
    return go.Figure(traces, layout=_layout("Clipping telemetry: global gradient norm", "training step",
                                            "‖∇θ L‖ (log)", log_y=True, uirev="clipping", annotations=notes))


# --- 6. loss -------------------------------------------------------------------------------------
def loss_figure(steps: np.ndarray, loss: np.ndarray, val_loss: np.ndarray, baseline: float, baseline_name: str,
                max_points: int = 2000) -> go.Figure:
    """Train loss every step, val loss where evaluated (NaN elsewhere), the task's baseline as a line."""
    steps, loss, val = np.asarray(steps), np.asarray(loss, dtype=np.float64), np.asarray(val_loss, dtype=np.float64)
    idx = thin_indices(len(steps), max_points)
    has_val = np.flatnonzero(np.isfinite(val))
    has_val = has_val[thin_indices(len(has_val), max_points)]
    traces = [go.Scatter(x=steps[idx], y=_finite_or_none(loss[idx]), mode="lines", name="train",
                         line=dict(color=COLOURS[0])),
              go.Scatter(x=steps[has_val], y=_finite_or_none(val[has_val]), mode="lines+markers", name="validation",
                         line=dict(color=COLOURS[4]), marker=dict(size=4)),
              _hline(steps, baseline, f"baseline: {baseline_name}")]
    return go.Figure(traces, layout=_layout("Loss", "training step", "loss (log)", log_y=True, uirev="loss"))


def clipped_fraction(clipped: Sequence[bool]) -> float:
    c = np.asarray(clipped, dtype=bool)
    return float(c.mean()) if len(c) else 0.0
