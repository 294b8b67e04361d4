"""Pure figure builders: numpy in, plotly.graph_objects.Figure out. No Streamlit, no state.

Tests call these directly on synthetic arrays (AppTest cannot look inside a Plotly chart).

Every builder takes `big=True` for presenter mode (a projector) and draws its legend in rows
under the x axis; both are done once, in chart_layout.finish.

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

from .chart_layout import HEIGHT, chart_height, finish, series_mode

FLOOR = 1e-300  # an exact zero (e.g. a gradient flushed to 0) is shown as this value
GATES_EXTRA = 60  # px the two-panel gates chart is taller than the others (chart_height(big, GATES_EXTRA))
ENVELOPE = "linear-RNN envelope γ^(T−t)"  # one legend entry for every dashed envelope
ENVELOPE_PAD = 0.3  # decades of head room above and below the measured profile; the envelope cannot widen it
DIVERGED = "no finite gradient at this step (the run diverged)"
GATE_NAMES = {"lstm": ("input i", "forget f", "candidate g", "output o"), "gru": ("reset r", "update z", "candidate n")}
CANDIDATE_BLOCK = {"rnn": 0, "lstm": 2, "gru": 2}  # which W_hh block's spectral radius drives the envelope
BLOCK_NAME = {"lstm": "candidate block g", "gru": "candidate block n"}
# What a reader should look for in the mean attention map, per task (one line under the title).
ATTENTION_CAPTIONS = {
    "adding": "one query (the end) over all timesteps: a learnt model puts its weight on the two marked timesteps",
    "temporal_order": "one query (the end) over all timesteps: a learnt model puts its weight on the two symbols X/Y it must order",
    "digits": "one query (the end) over the image, pixel by pixel or row by row: weight shows which part the classifier reads",
    "copy": "each row is a query step; causal (no weight right of the diagonal): an output step looks back at the symbol it copies",
    "sine": "each row is a query step; causal (no weight right of the diagonal): weight near the diagonal reads the recent past",
    "charlm": "each row is a query step; causal (no weight right of the diagonal): weight near the diagonal reads the last characters",
}
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


def finite_or_none(a: np.ndarray) -> list:
    """Plotly cannot draw inf on a log axis: send None (a gap) for anything not finite."""
    a = np.asarray(a, dtype=np.float64)
    return [float(v) if math.isfinite(v) else None for v in a]


def x_values(a: np.ndarray):
    """x values; an empty selection as a list: to_dict keeps an empty ndarray, so figures would not compare."""
    return a if len(a) else []


def hline(steps: np.ndarray, y: float, name: str, dash: str = "dash", hover: str | None = None) -> go.Scatter:
    """A horizontal reference line as a trace: unlike a shape it needs no log10 of y on a log axis."""
    x = [float(steps[0]), float(steps[-1])] if len(steps) else [0.0, 1.0]
    return go.Scatter(x=x, y=[y, y], mode="lines", name=name, line=dict(color="#555", dash=dash),
                      hovertemplate=f"{hover or name}<extra></extra>")


def base_layout(title: str, x: str, y: str, log_y: bool = False, uirev: str = "", **extra) -> dict:
    """The shared layout as one dict: passed to go.Figure at construction, because plotly's
    update_layout / update_xaxes walk and validate the tree again (3/4 of a heatmap's build time).
    Margins, legend and fonts are filled in by chart_layout.finish."""
    return dict(title=dict(text=title), uirevision=uirev or title,
                xaxis=dict(title=dict(text=x)),
                yaxis=dict(title=dict(text=y), type="log" if log_y else "linear", exponentformat="power"), **extra)


def centre_note(text: str) -> dict:
    return dict(text=text, showarrow=False, xref="paper", yref="paper", x=0.5, y=0.5, font=dict(size=14, color="#888"))


def empty_figure(title: str, x: str = "", y: str = "", log_y: bool = False, note: str = "Press Train", *,
                 big: bool = False, extra_height: int = 0) -> go.Figure:
    """A chart frame drawn at page load: it loads plotly.js before the first data arrives.
    Give it the same `big` and `extra_height` (GATES_EXTRA for gates) as the chart that replaces it."""
    layout = base_layout(title, x, y, log_y, annotations=[centre_note(note)])
    layout["xaxis"].update(showticklabels=False, showgrid=False, zeroline=False)
    layout["yaxis"].update(showticklabels=False, showgrid=False, zeroline=False)
    return finish([], layout, big, extra_height=extra_height)


def direction_labels(ld: int, directions: int) -> list[str]:
    """Names of the layer-major (layer, direction) rows: 'layer 1' or 'layer 1 →' / 'layer 1 ←'."""
    if directions == 1:
        return [f"layer {k + 1}" for k in range(ld)]
    return [f"layer {k // 2 + 1} {'→' if k % 2 == 0 else '←'}" for k in range(ld)]


# --- 1. gradient through time ---------------------------------------------------------------
def gradient_heatmap(grads: np.ndarray, steps: np.ndarray, title: str = "‖∂L/∂h_t‖ through time",
                     max_rows: int = 250, max_cols: int = 300, *, zrange: tuple[float, float] | None = None,
                     big: bool = False) -> go.Figure:
    """Heatmap of log10 ‖∂L/∂h_t‖: timestep t on x, training step on y, raw value on hover.

    grads: (N, T) gradient norms of one layer and direction at N recorded steps.
    zrange: (zmin, zmax) in log10 units, shared by heatmaps that are compared side by side;
    None scales the colours to this heatmap's own values.
    """
    grads = np.asarray(grads, dtype=np.float64)
    rows = thin_indices(len(grads), max_rows)
    z, t = _bin_time(safe_log10(grads[rows]), max_cols)
    finite = z[np.isfinite(z)]
    real = finite[finite > math.log10(FLOOR) + 1]  # exact zeros would stretch the scale to 1e-300
    if zrange is not None:
        zmin, zmax = float(zrange[0]), float(zrange[1])
    else:
        zmin = float(real.min()) if len(real) else -1.0
        zmax = float(real.max()) if len(real) else 0.0
        if zmax - zmin < 1:
            zmin, zmax = zmin - 0.5, zmax + 0.5
    tickvals, ticktext = decade_ticks(zmin, zmax)
    if len(real) < len(finite):  # some exact zeros: say so on the lowest tick
        ticktext[0] = f"≤{ticktext[0]} (0 → {FLOOR:g})"
    binned = len(t) < grads.shape[-1]
    heat = go.Heatmap(
        z=z, x=t, y=np.asarray(steps)[rows], customdata=np.power(10.0, z), zmin=zmin, zmax=zmax,
        colorscale="Viridis", colorbar=dict(title=dict(text="‖∂L/∂h_t‖"), tickvals=tickvals, ticktext=ticktext),
        hovertemplate=("t = %{x}" + (" (bin start)" if binned else "") +
                       "<br>step %{y}<br>‖∂L/∂h_t‖ = %{customdata:.3e}<extra></extra>"))
    return finish([heat], base_layout(title, "timestep t", "training step", uirev="heatmap"), big)


def gradient_profile(profile: np.ndarray, spectral_radius: np.ndarray | None, cell: str, directions: int = 1,
                     step: int | None = None, *, note: str | None = None, big: bool = False,
                     cell_grads: np.ndarray | None = None, cell_step: int | None = None) -> go.Figure:
    """One step's ‖∂L/∂h_t‖ over t on a log axis, one line per layer and direction, with the
    linear-RNN envelope γ^(T−t)·‖∂L/∂h_T‖ dashed (γ = spectral radius of the candidate block).

    The envelope is the exact profile of a linear RNN whose W_hh has spectral radius γ. For an
    LSTM or GRU, γ is of the candidate block only and the gated cell path is not bound by it,
    so the y axis is set from the measured profile: a γ above 1 cannot stretch it to 1e20.
    profile: (LD, T); spectral_radius: (LD, G). note: a line under the title, e.g. "last finite
    profile, step 0" when the panel shows an earlier step than the latest.
    cell_grads: (LD, T), an LSTM's ‖∂L/∂c_t‖, dotted in each line's colour: the cell path that
    the forget gate keeps open. It is taken every gates_every-th recorded step, so its own step
    (cell_step) is in its legend entry and hover.
    """
    profile = np.asarray(profile, dtype=np.float64)
    labels = direction_labels(len(profile), directions)
    block = CANDIDATE_BLOCK.get(cell, 0)
    block_name = BLOCK_NAME.get(cell, "W_hh")
    gated = cell in BLOCK_NAME
    caveat = f"<br>{_a(cell)}'s gated cell path is not bound by it" if gated else ""
    traces, cells, dashed, measured, envelopes = [], [], [], [], []  # envelopes last: their legend entry ends the legend
    t = np.arange(profile.shape[-1])
    if cell_grads is not None:
        cell_grads = np.asarray(cell_grads, dtype=np.float64)
        if np.isnan(cell_grads).all():  # a step that skipped them (gates_every): no line
            cell_grads = None
    cell_name = "‖∂L/∂c_t‖" + (f" (step {cell_step})" if cell_step is not None else "")
    for k, (row, label) in enumerate(zip(profile, labels)):
        colour = COLOURS[k % len(COLOURS)]
        shown = np.where(row == 0, FLOOR, row)  # an exact zero sits at the floor, not in a gap
        measured.append(shown)
        traces.append(go.Scatter(x=t, y=finite_or_none(shown), name=label, line=dict(color=colour), legendgroup=label,
                                 hovertemplate="t = %{x}<br>‖∂L/∂h_t‖ = %{y:.3e}<extra>" + label + "</extra>",
                                 **series_mode(shown)))
        if cell_grads is not None:
            c = np.where(cell_grads[k] == 0, FLOOR, cell_grads[k])
            measured.append(c)
            cells.append(go.Scatter(x=t, y=finite_or_none(c), name=cell_name, legendgroup="cell", showlegend=k == 0,
                                    line=dict(color=colour, dash="dot"),
                                    hovertemplate=f"t = %{{x}}<br>{cell_name} = %{{y:.3e}}<extra>{label}</extra>",
                                    **series_mode(c)))
        if spectral_radius is not None:
            gamma = float(np.asarray(spectral_radius)[k, block])
            env = linear_envelope(row, gamma, reverse=(directions == 2 and k % 2 == 1))
            envelopes.append(env)
            hover = f"{ENVELOPE}·‖∂L/∂h_T‖, γ = {gamma:.3g} ({block_name}, {label}){caveat}"
            dashed.append(go.Scatter(
                x=t, y=finite_or_none(env), name=ENVELOPE, legendgroup="envelope", showlegend=len(envelopes) == 1,
                line=dict(color=colour, dash="dash", width=1.5),
                hovertemplate=hover + "<br>t = %{x}<br>envelope = %{y:.3e}<extra></extra>", **series_mode(env, 3)))
    layout = base_layout("Latest gradient profile" + (f" (step {step})" if step is not None else ""), "timestep t",
                         "‖∂L/∂h_t‖, ‖∂L/∂c_t‖ (log)" if cells else "‖∂L/∂h_t‖ (log)", log_y=True, uirev="profile")
    notes = [note] if note else []
    y_range = _log_range(np.concatenate(measured)) if measured else None
    if y_range is None:
        layout["annotations"] = [centre_note(DIVERGED)]
    else:
        layout["yaxis"]["range"] = y_range  # from the data only: the envelope cannot widen it
        env = np.concatenate(envelopes) if envelopes else np.zeros(0)
        env = env[np.isfinite(env)]
        if len(env) and (env.max() > 10 ** y_range[1] or env.min() < 10 ** y_range[0]):
            notes.append("dashed envelope cut at the measured range" +
                         (f"; it does not bound {_a(cell)}'s cell path" if gated else ""))
    return finish(traces + cells + dashed, layout, big, subtitle="<br>".join(notes) or None)


def _log_range(values: np.ndarray) -> list[float] | None:
    """A log axis range (log10 units) around the finite positive values, or None if there are none."""
    v = values[np.isfinite(values) & (values > 0)]
    if len(v) == 0:
        return None
    lo, hi = math.log10(v.min()), math.log10(v.max())
    pad = max(ENVELOPE_PAD, 0.05 * (hi - lo))
    return [lo - pad, hi + pad]


def _a(cell: str) -> str:
    return f"{'an' if cell == 'lstm' else 'a'} {cell.upper()}"


# --- 3. gates and saturation ------------------------------------------------------------------
def gates_figure(gate_mean: np.ndarray, gate_saturation: np.ndarray, cell: str, label: str = "", *,
                 big: bool = False) -> go.Figure:
    """Each gate's mean activation over time (top) and the fraction of its units saturated (bottom).

    gate_mean, gate_saturation: (G, T) for one layer and direction.
    """
    names = GATE_NAMES.get(cell, tuple(f"gate {k}" for k in range(len(gate_mean))))
    t = np.arange(np.asarray(gate_mean).shape[-1])
    traces = []
    for k, name in enumerate(names):
        c = COLOURS[k % len(COLOURS)]
        mean, sat = np.asarray(gate_mean[k], dtype=np.float64), np.asarray(gate_saturation[k], dtype=np.float64)
        traces.append(go.Scatter(x=t, y=finite_or_none(mean), name=name, line=dict(color=c), legendgroup=name,
                                 xaxis="x", yaxis="y", **series_mode(mean)))
        traces.append(go.Scatter(x=t, y=finite_or_none(sat), name=name, line=dict(color=c, dash="dot"),
                                 legendgroup=name, showlegend=False, xaxis="x2", yaxis="y2", **series_mode(sat)))
    # two stacked panels sharing t, laid out by hand (make_subplots costs more than the traces)
    layout = base_layout(f"Gates{' — ' + label if label else ''}", "", "mean activation", uirev="gates")
    layout["xaxis"].update(anchor="y", domain=[0, 1], matches="x2", showticklabels=False)
    layout["yaxis"].update(domain=[0.55, 1.0])
    layout["xaxis2"] = dict(anchor="y2", domain=[0, 1], title=dict(text="timestep t"))
    layout["yaxis2"] = dict(anchor="x2", domain=[0.0, 0.45], range=[-0.05, 1.05], title=dict(text="saturated fraction"))
    return finish(traces, layout, big, extra_height=GATES_EXTRA)


def saturation_figure(hidden_saturation: np.ndarray, activation: str, directions: int = 1, *,
                      big: bool = False) -> go.Figure:
    """Vanilla RNN: fraction of hidden units saturated (|tanh| > 0.95, sigmoid outside 0.05..0.95)
    or, for relu, dead (h = 0), per timestep and layer. A linear cell has no saturation (NaN)."""
    sat = np.asarray(hidden_saturation, dtype=np.float64)
    what = {"relu": "dead fraction (h = 0)", "linear": "no saturation for a linear cell"}.get(activation, "saturated fraction")
    t = np.arange(sat.shape[-1])
    traces = [go.Scatter(x=t, y=finite_or_none(sat[k]), name=label, line=dict(color=COLOURS[k % len(COLOURS)]),
                         **series_mode(sat[k]))
              for k, label in enumerate(direction_labels(len(sat), directions))]
    notes = []
    if activation == "linear" or not np.isfinite(sat).any():
        notes.append(centre_note("a linear cell never saturates"))
    layout = base_layout(f"Hidden state: {what}", "timestep t", "fraction of units", uirev="saturation", annotations=notes)
    layout["yaxis"]["range"] = [-0.05, 1.05]
    return finish(traces, layout, big)


# --- 4. attention --------------------------------------------------------------------------------
def attention_figure(attention: np.ndarray, step: int | None = None, *, task: str | None = None,
                     big: bool = False) -> go.Figure:
    """Mean attention weights: queries on y (the last ones for every-step tasks), timesteps on x.
    `task` adds one line under the title saying what a learnt map looks like (ATTENTION_CAPTIONS)."""
    a = np.asarray(attention, dtype=np.float64)
    Q = a.shape[0]
    y = np.arange(Q) - Q + 1  # 0 is the last query; numeric, so the axis type never flips to category
    layout = base_layout("Attention" + (f" (step {step})" if step is not None else ""), "key timestep t",
                     "query (relative to the last step)" if Q > 1 else "query", uirev="attention")
    if Q == 1:
        layout["yaxis"].update(tickvals=[0], ticktext=["end"])
    heat = go.Heatmap(z=a, x=np.arange(a.shape[-1]), y=y, colorscale="Blues", zmin=0.0,
                      colorbar=dict(title=dict(text="weight")),
                      hovertemplate="key t = %{x}<br>query %{y}<br>weight %{z:.3f}<extra></extra>")
    return finish([heat], layout, big, subtitle=ATTENTION_CAPTIONS.get(task or ""))


# --- 5. clipping -------------------------------------------------------------------------------
def clipping_figure(steps: np.ndarray, pre: np.ndarray, post: np.ndarray, clipped: np.ndarray,
                    clip: float, clip_mode: str, max_points: int = 2000, *, big: bool = False) -> go.Figure:
    """Global gradient norm before and after clipping per step (log y), the threshold as a line,
    and a marker on every step where clipping fired."""
    steps, pre, post = np.asarray(steps), np.asarray(pre, dtype=np.float64), np.asarray(post, dtype=np.float64)
    clipped = np.asarray(clipped, dtype=bool)
    idx = thin_indices(len(steps), max_points)
    traces = [go.Scatter(x=steps[idx], y=finite_or_none(pre[idx]), name="before clipping",
                         line=dict(color=COLOURS[0]), **series_mode(pre[idx])),
              go.Scatter(x=steps[idx], y=finite_or_none(post[idx]), name="after clipping",
                         line=dict(color=COLOURS[2], dash="dot"), **series_mode(post[idx], 4))]  # dotted: it lies on "before" when nothing is clipped
    hit = np.flatnonzero(clipped)
    hit = hit[thin_indices(len(hit), max_points)]
    traces.append(go.Scatter(x=x_values(steps[hit]), y=finite_or_none(pre[hit]), mode="markers", name="clipping fired",
                             marker=dict(color=COLOURS[1], symbol="x", size=7)))
    notes = []
    if clip > 0 and clip_mode == "norm":
        traces.append(hline(steps, clip, f"threshold {clip:g}"))
    elif clip > 0:
        notes.append(dict(text=f"value mode clamps each entry to ±{clip:g}: no global threshold", showarrow=False,
                          xref="paper", yref="paper", x=0.01, y=0.98, xanchor="left"))
    return finish(traces, base_layout("Clipping: global gradient norm", "training step", "‖∇θ L‖ (log)",
                                  log_y=True, uirev="clipping", annotations=notes), big)


# --- 6. loss and accuracy --------------------------------------------------------------------------
def _in_unit(name: str, value: float, unit: str | None, bits_per: str | None) -> str:
    """'unigram 3.227 nats (4.656 bits/char)': the value in the axis's unit, bits in brackets."""
    if not unit:
        return name
    text = f"{name} {value:.3f} {unit}"
    return text + (f" ({value / math.log(2):.3f} bits/{bits_per})" if bits_per else "")


TRAIN_SET = "training set (eval mode)"  # the legend name of train_eval_loss


def final_gap(steps: np.ndarray, val_loss: np.ndarray, train_eval: np.ndarray) -> tuple[int, float, float] | None:
    """(step, val, train) at the last evaluation with both losses finite, or None."""
    val, train = np.asarray(val_loss, dtype=np.float64), np.asarray(train_eval, dtype=np.float64)
    both = np.flatnonzero(np.isfinite(val) & np.isfinite(train))
    if len(both) == 0:
        return None
    i = both[-1]
    return int(np.asarray(steps)[i]), float(val[i]), float(train[i])


def gap_text(gap: tuple[int, float, float]) -> str:
    step, val, train = gap
    return f"generalisation gap at step {step}: validation {val:.4g} − training set {train:.4g} = {val - train:.4g}"


def loss_figure(steps: np.ndarray, loss: np.ndarray, val_loss: np.ndarray, baseline: float, baseline_name: str,
                max_points: int = 2000, *, loss_unit: str | None = None, bits_per: str | None = None,
                val_baseline: float | None = None, train_eval: np.ndarray | None = None,
                big: bool = False) -> go.Figure:
    """Train loss every step, val loss where evaluated (NaN elsewhere), the baseline as a line.

    loss_unit: the axis's unit ("nats" for cross-entropy, "MSE"); the baseline labels state their
    value in it, and bits_per ("char") adds the value in bits per that unit of text.
    val_baseline: the input-blind predictor's loss on the run's own validation batch, the bar the
    verdict judges. Given, it is the solid line and the task's expected baseline is drawn dotted.
    train_eval: a finite training set's loss at the evaluations (train_size > 0), measured like the
    validation loss; drawn beside it, with the last gap between the two as a vertical segment and
    in the subtitle. The per-step train loss is not comparable: dropout and input noise raise it.
    """
    steps, loss, val = np.asarray(steps), np.asarray(loss, dtype=np.float64), np.asarray(val_loss, dtype=np.float64)
    idx = thin_indices(len(steps), max_points)
    has_val = np.flatnonzero(np.isfinite(val))
    has_val = has_val[thin_indices(len(has_val), max_points)]
    traces = [go.Scatter(x=steps[idx], y=finite_or_none(loss[idx]), name="train",
                         line=dict(color=COLOURS[0]), **series_mode(loss[idx], 4)),
              go.Scatter(x=x_values(steps[has_val]), y=finite_or_none(val[has_val]), mode="lines+markers", name="validation",
                         line=dict(color=COLOURS[4]), marker=dict(size=4))]
    expected = _in_unit(baseline_name, baseline, loss_unit, bits_per)
    known = math.isfinite(baseline)  # a saved run without a summary has no baseline: no line
    if val_baseline is None or not math.isfinite(val_baseline):
        traces += [hline(steps, baseline, f"baseline: {expected}")] if known else []
    else:
        bar = "baseline on the validation batch (the bar to beat)"
        traces.append(hline(steps, val_baseline, bar, hover=f"{bar}: {val_baseline:.4g} {loss_unit or ''}".strip()))
        traces += [hline(steps, baseline, f"expected baseline: {expected}", dash="dot")] if known else []
    subtitle = None
    if train_eval is not None and np.isfinite(np.asarray(train_eval, dtype=np.float64)).any():
        te = np.asarray(train_eval, dtype=np.float64)
        has_te = np.flatnonzero(np.isfinite(te))
        has_te = has_te[thin_indices(len(has_te), max_points)]
        traces.insert(2, go.Scatter(x=x_values(steps[has_te]), y=finite_or_none(te[has_te]), mode="lines+markers",
                                    name=TRAIN_SET, line=dict(color=COLOURS[2]), marker=dict(size=4, symbol="square")))
        gap = final_gap(steps, val, te)
        if gap is not None:
            subtitle = gap_text(gap)
            traces.insert(3, go.Scatter(x=[gap[0], gap[0]], y=[gap[2], gap[1]], mode="lines", name="gap (last evaluation)",
                                        line=dict(color="#555", dash="dot", width=2),
                                        hovertemplate=f"{subtitle}<extra></extra>"))
    y_title = f"loss ({loss_unit}, log)" if loss_unit else "loss (log)"
    return finish(traces, base_layout("Loss", "training step", y_title, log_y=True, uirev="loss"), big,
                  subtitle=subtitle)


def accuracy_figure(steps: np.ndarray, val_accuracy: np.ndarray, chance: float, max_points: int = 2000, *,
                    big: bool = False) -> go.Figure:
    """Validation accuracy where evaluated (NaN elsewhere) on [0, 1], chance as a dashed line."""
    steps, acc = np.asarray(steps), np.asarray(val_accuracy, dtype=np.float64)
    has = np.flatnonzero(np.isfinite(acc))
    has = has[thin_indices(len(has), max_points)]
    traces = [go.Scatter(x=x_values(steps[has]), y=finite_or_none(acc[has]), name="validation", line=dict(color=COLOURS[4]),
                         **series_mode(acc[has], 4)),
              hline(steps, chance, f"chance {chance:.3g}")]
    layout = base_layout("Validation accuracy", "training step", "accuracy", uirev="accuracy")
    layout["yaxis"].update(range=[-0.02, 1.02], tickformat=".0%")
    if len(has) == 0:
        layout["annotations"] = [centre_note("no evaluation yet")]
    return finish(traces, layout, big)


def clipped_fraction(clipped: Sequence[bool]) -> float:
    c = np.asarray(clipped, dtype=bool)
    return float(c.mean()) if len(c) else 0.0
