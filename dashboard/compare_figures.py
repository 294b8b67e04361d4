"""Small multiples of 2 to 4 runs side by side: RunViews in, plotly Figures out. Pure.

Built on dashboard.figures' helpers, so a compared chart reads like Explore's. What changes:
- every heatmap shares one colour scale (zmin/zmax over all columns), or equal colours would
  not mean equal gradients;
- overlays give each column one colour (COLUMN_COLOURS), the same in every chart;
- the y range of a gradient chart comes from a recent window (the last RECENT_STEPS steps, the
  latest profile), not the all-time extremes: one early spike of 1e6 would otherwise squash
  every later value into the bottom pixel while the run trains (W&B issue #4699).
"""
from __future__ import annotations

import math
from typing import Mapping, Sequence

import numpy as np
import plotly.graph_objects as go

from rnn_core.view import RunView

from . import figures as F
from .chart_layout import finish, series_mode
from .run_figures import gates_step, profile_arrays

COLUMN_COLOURS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd")  # a, b, c, d in every overlay
RECENT_STEPS = 200  # the norm chart's y range covers this many latest steps
RANGE_PAD = 0.3  # decades above and below the data in a log range
Views = Mapping[str, RunView]  # column letter -> view, in column order


def colour(letter: str) -> str:
    return COLUMN_COLOURS["abcd".index(letter) % len(COLUMN_COLOURS)]


# --- ranges -----------------------------------------------------------------------------------
def log_range(values: np.ndarray, pad: float = RANGE_PAD) -> list[float] | None:
    """[lo, hi] in log10 units around the finite positive values (at least one decade), or None."""
    v = np.asarray(values, dtype=np.float64)
    v = v[np.isfinite(v) & (v > 0)]
    if len(v) == 0:
        return None
    lo, hi = math.log10(v.min()), math.log10(v.max())
    if hi - lo < 1:  # a flat series still gets a decade, centred on it
        mid = (hi + lo) / 2
        lo, hi = mid - 0.5, mid + 0.5
    return [lo - pad, hi + pad]


def recent_log_range(series: Sequence[np.ndarray], window: int = RECENT_STEPS) -> list[float] | None:
    """A log y range over the last `window` points of every series: old spikes do not set it."""
    tails = [np.asarray(s, dtype=np.float64)[-window:] for s in series if len(s)]
    return log_range(np.concatenate(tails)) if tails else None


def shared_zrange(grads: Sequence[np.ndarray | None]) -> tuple[float, float] | None:
    """(zmin, zmax) in log10 units over every column's ‖∂L/∂h_t‖, for one colour scale.

    Exact zeros (at FLOOR) are left out as in figures.gradient_heatmap, or one flushed value would
    stretch the scale to 1e-300; a span under one decade is widened to one."""
    real = []
    for g in grads:
        if g is None:
            continue
        z = F.safe_log10(g)
        z = z[np.isfinite(z)]
        real.append(z[z > math.log10(F.FLOOR) + 1])
    real = [r for r in real if len(r)]
    if not real:
        return None
    zmin, zmax = float(min(r.min() for r in real)), float(max(r.max() for r in real))
    if zmax - zmin < 1:
        zmin, zmax = zmin - 0.5, zmax + 0.5
    return zmin, zmax


# --- charts -------------------------------------------------------------------------------------
def heatmaps(views: Views, pick: int = 0) -> dict[str, go.Figure]:
    """One ‖∂L/∂h_t‖ heatmap per column (layer-direction `pick`, or the last one a column has), one colour scale."""
    grads = {k: v.history.recorded("timestep_grads") for k, v in views.items()}
    rows = {k: (g[:, min(pick, g.shape[1] - 1)] if g is not None else None) for k, g in grads.items()}
    zrange = shared_zrange(list(rows.values()))
    out = {}
    for k, g in rows.items():
        title = f"{k}: ‖∂L/∂h_t‖ through time"
        if g is None:
            out[k] = F.empty_figure(title, "timestep t", "training step", note="no recorded step yet")
        else:
            out[k] = F.gradient_heatmap(g, views[k].history.recorded_steps(), title, zrange=zrange)
    return out


def profiles_figure(views: Views) -> go.Figure:
    """The latest ‖∂L/∂h_t‖ profile (layer 1) of every column on one log axis, each with its dashed
    linear-RNN envelope γ^(T−t) (γ: spectral radius of its candidate block). The y range is the
    measured profiles': an envelope cannot widen it."""
    traces, dashed, measured = [], [], []
    for k, v in views.items():
        arrays, step, _ = profile_arrays(v.history)
        if "timestep_grads" not in arrays:
            continue
        row = np.asarray(arrays["timestep_grads"], dtype=np.float64)[0]
        shown = np.where(row == 0, F.FLOOR, row)
        measured.append(shown)
        t = np.arange(len(row))
        name = f"{k}: {v.cfg.cell}" + (f", step {step}" if step is not None else "")
        traces.append(go.Scatter(x=t, y=F.finite_or_none(shown), name=name, legendgroup=k,
                                 line=dict(color=colour(k)),
                                 hovertemplate=f"{k}<br>t = %{{x}}<br>‖∂L/∂h_t‖ = %{{y:.3e}}<extra></extra>",
                                 **series_mode(shown)))
        radius = arrays.get("spectral_radius")
        if radius is not None:
            gamma = float(np.asarray(radius)[0, F.CANDIDATE_BLOCK.get(v.cfg.cell, 0)])
            env = F.linear_envelope(row, gamma)
            dashed.append(go.Scatter(x=t, y=F.finite_or_none(env), name=F.ENVELOPE, legendgroup="envelope",
                                     showlegend=not dashed, line=dict(color=colour(k), dash="dash", width=1.5),
                                     hovertemplate=f"{k}: envelope, γ = {gamma:.3g}<br>t = %{{x}}"
                                                   "<br>%{y:.3e}<extra></extra>", **series_mode(env, 3)))
    layout = F.base_layout("Latest gradient profiles (layer 1)", "timestep t", "‖∂L/∂h_t‖ (log)", log_y=True,
                       uirev="cmp_profile")
    y_range = log_range(np.concatenate(measured)) if measured else None
    if y_range is None:
        layout["annotations"] = [F.centre_note("no recorded step yet" if not measured else F.DIVERGED)]
    else:
        layout["yaxis"]["range"] = y_range
    return finish(traces + dashed, layout)


def _same_baseline(views: Views) -> bool:
    bars = [v.summary.get("val_baseline") for v in views.values()]
    if any(b is None for b in bars):
        return False
    same_data = len({(v.cfg.task, v.cfg.seq_len) for v in views.values()}) == 1
    return same_data and max(bars) - min(bars) <= 1e-9 * max(1.0, abs(max(bars)))


def losses_figure(views: Views) -> go.Figure:
    """Validation loss per column (solid, markers), train loss lighter, and the bar to beat: the
    baseline on the validation batch, one line when the columns share it, else one per column.
    A column with a finite training set (train_size > 0) adds that set's loss at the evaluations,
    dashed in its colour, and its last gap (validation − training set) in the subtitle."""
    traces, bars, gaps = [], [], []
    shared = _same_baseline(views)
    steps_all = np.concatenate([v.history.scalars()["step"] for v in views.values()] or [np.zeros(0)])
    span = np.array([steps_all.min(), steps_all.max()]) if len(steps_all) else steps_all  # the bars span every column
    for k, v in views.items():
        sc = v.history.scalars()
        steps, loss, val = sc["step"], np.asarray(sc["loss"], float), np.asarray(sc["val_loss"], float)
        idx = F.thin_indices(len(steps), 2000)
        has = np.flatnonzero(np.isfinite(val))
        traces.append(go.Scatter(x=steps[idx], y=F.finite_or_none(loss[idx]), name=f"{k}: train", legendgroup=k,
                                 opacity=0.35, line=dict(color=colour(k), width=1), **series_mode(loss[idx], 3)))
        traces.append(go.Scatter(x=F.x_values(steps[has]), y=F.finite_or_none(val[has]), name=f"{k}: validation",
                                 legendgroup=k, mode="lines+markers", line=dict(color=colour(k)), marker=dict(size=4)))
        te = np.asarray(sc.get("train_eval_loss", np.zeros(0)), float) if v.cfg.train_size else np.zeros(0)
        has_te = np.flatnonzero(np.isfinite(te))
        if len(has_te):
            traces.append(go.Scatter(x=F.x_values(steps[has_te]), y=F.finite_or_none(te[has_te]),
                                     name=f"{k}: {F.TRAIN_SET}", legendgroup=k, mode="lines+markers",
                                     line=dict(color=colour(k), dash="dash"), marker=dict(size=4, symbol="square")))
            gap = F.final_gap(steps, val, te)
            if gap is not None:
                gaps.append(f"{k}: {gap[1] - gap[2]:.4g}")
        bar = v.summary.get("val_baseline")
        if bar is not None and math.isfinite(bar) and not shared:
            line = F.hline(span, bar, f"{k}: baseline", dash="dot",
                            hover=f"{k}: baseline on its validation batch {bar:.4g}")
            line.line.color = colour(k)
            bars.append(line)
    note = None
    if shared:
        bar = next(iter(views.values())).summary["val_baseline"]
        bars.append(F.hline(span, bar, "baseline on the validation batch (the bar to beat)",
                             hover=f"baseline on the validation batch: {bar:.4g}"))
    elif bars:
        note = "the columns' tasks or sequence lengths differ, so do their baselines: each is dotted in its colour"
    if gaps:
        gap_note = "generalisation gap (validation − training set, last evaluation) " + ", ".join(gaps)
        note = f"{gap_note}; {note}" if note else gap_note
    layout = F.base_layout("Loss", "training step", "loss (log)", log_y=True, uirev="cmp_loss")
    return finish(traces + bars, layout, subtitle=note)


def norms_figure(views: Views, window: int = RECENT_STEPS) -> go.Figure:
    """Global gradient norm before (solid) and after (dotted) clipping per column, log y; the y range
    covers the last `window` steps of every column, so an early spike does not flatten the rest."""
    traces, recent = [], []
    for k, v in views.items():
        sc = v.history.scalars()
        steps = sc["step"]
        pre, post = np.asarray(sc["grad_norm_pre_clip"], float), np.asarray(sc["grad_norm_post_clip"], float)
        idx = F.thin_indices(len(steps), 2000)
        traces.append(go.Scatter(x=steps[idx], y=F.finite_or_none(pre[idx]), name=f"{k}: before clipping",
                                 legendgroup=k, line=dict(color=colour(k)), **series_mode(pre[idx])))
        traces.append(go.Scatter(x=steps[idx], y=F.finite_or_none(post[idx]), name=f"{k}: after clipping",
                                 legendgroup=k, line=dict(color=colour(k), dash="dot"), **series_mode(post[idx], 4)))
        recent += [pre, post]
    layout = F.base_layout("Global gradient norm ‖∇θ L‖", "training step", "‖∇θ L‖ (log)", log_y=True,
                       uirev="cmp_norms")
    y_range = recent_log_range(recent, window)
    if y_range is not None:
        layout["yaxis"]["range"] = y_range
    return finish(traces, layout, subtitle=f"y range: the last {window} steps of every column" if y_range else None)


def gates(views: Views, pick: int = 0) -> dict[str, go.Figure]:
    """One gates chart per column (an RNN has no gates: its hidden-state saturation instead)."""
    out = {}
    for k, v in views.items():
        arrays, _, _ = profile_arrays(v.history)
        cfg = v.cfg
        if "gate_mean" in arrays:
            p = min(pick, len(arrays["gate_mean"]) - 1)
            out[k] = F.gates_figure(arrays["gate_mean"][p], arrays["gate_saturation"][p], cfg.cell,
                                    f"{k}, step {gates_step(v.history, arrays)}")
        elif "hidden_saturation" in arrays:
            fig = F.saturation_figure(arrays["hidden_saturation"], cfg.activation, 2 if cfg.bidirectional else 1)
            fig.layout.title.text = f"{k}: {fig.layout.title.text}"
            out[k] = fig
        else:
            out[k] = F.empty_figure(f"{k}: gates / saturation", "timestep t", "fraction", note="no recorded step yet",
                                    extra_height=F.GATES_EXTRA if cfg.cell != "rnn" else 0)
    return out


def empty_figures(letters: Sequence[str]) -> dict[str, go.Figure]:
    """Chart frames before any run, under the keys the filled charts use (plotly.js loads with the page)."""
    out = {f"heatmap_{k}": F.empty_figure(f"{k}: ‖∂L/∂h_t‖ through time", "timestep t", "training step")
           for k in letters}
    out["profile"] = F.empty_figure("Latest gradient profiles (layer 1)", "timestep t", "‖∂L/∂h_t‖ (log)", log_y=True)
    out["loss"] = F.empty_figure("Loss", "training step", "loss (log)", log_y=True)
    out["norms"] = F.empty_figure("Global gradient norm ‖∇θ L‖", "training step", "‖∇θ L‖ (log)", log_y=True)
    out.update({f"gates_{k}": F.empty_figure(f"{k}: gates / saturation", "timestep t", "fraction") for k in letters})
    return out


def build_comparison(views: Views, pick: int = 0) -> dict[str, go.Figure]:
    """Every compared chart, keyed as the page keys them (cmp_chart_<name>): heatmap_a.., profile,
    loss, norms, gates_a.."""
    out = {f"heatmap_{k}": fig for k, fig in heatmaps(views, pick).items()}
    out.update(profile=profiles_figure(views), loss=losses_figure(views), norms=norms_figure(views))
    out.update({f"gates_{k}": fig for k, fig in gates(views, pick).items()})
    return out
