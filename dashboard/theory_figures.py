"""Pure figure builders of the Theory page: numbers in, go.Figure out. No Streamlit.

- `eigen_figure`: the eigenvalues of one W_hh block in the complex plane with the unit circle,
  at initialisation and now: a linear RNN's gradient dies along eigenvalues inside the circle and
  blows up along those outside it.
- `bound_figure`: one measured ‖∂L/∂h_t‖ profile against what the spectrum predicts: the
  Pascanu bound (γσ_max)^(T−1−t)·‖∂L/∂h_{T−1}‖ and the app's linear-RNN envelope
  ρ^(T−1−t)·‖∂L/∂h_{T−1}‖ (dashboard.figures.linear_envelope, the one Explore draws).
"""
from __future__ import annotations

import math

import numpy as np
import plotly.graph_objects as go

from rnn_core.theory import pascanu_bound

from .chart_layout import finish, series_mode
from .figures import FLOOR, base_layout, centre_note, finite_or_none, linear_envelope

CIRCLE_POINTS = 181
INIT_COLOUR, NOW_COLOUR, RUN_INIT_COLOUR, BOUND_COLOUR = "#333333", "#d62728", "#9467bd", "#2ca02c"
BOUND = "bound (γσ_max)^(T−1−t)"
ENVELOPE = "linear-RNN envelope ρ^(T−1−t)"


def radius(eigs: np.ndarray | None) -> float | None:
    """ρ: the largest eigenvalue modulus, None for no eigenvalues."""
    if eigs is None or len(eigs) == 0:
        return None
    return float(np.abs(np.asarray(eigs)).max())


def eigen_figure(init: np.ndarray | None, now: np.ndarray | None, block: str = "W_hh", now_label: str = "now",
                 *, run_init: np.ndarray | None = None, note: str | None = None, big: bool = False) -> go.Figure:
    """Eigenvalues (complex (H,) arrays) at initialisation and now, in the complex plane, with the unit
    circle. Either may be None (no run yet). `run_init`: the run's own start, when the run shown was
    trained with other settings than `init` was built from. The axes are square and hold the circle."""
    theta = np.linspace(0, 2 * math.pi, CIRCLE_POINTS)
    traces = [go.Scatter(x=np.cos(theta), y=np.sin(theta), mode="lines", name="unit circle |λ| = 1",
                         line=dict(color="#555", dash="dot", width=1), hoverinfo="skip")]
    reach = 1.0
    # now first, so the hollow circles of the start stay visible on top of it
    series = ((now, now_label, NOW_COLOUR, "x"), (run_init, "the run at initialisation", RUN_INIT_COLOUR, "diamond-open"),
              (init, "at initialisation", INIT_COLOUR, "circle-open"))
    for eigs, label, colour, symbol in series:
        if eigs is None:
            continue
        e = np.asarray(eigs)
        rho = radius(e)
        reach = max(reach, rho or 0.0)
        traces.append(go.Scatter(
            x=e.real, y=e.imag, mode="markers", name=f"{label}: ρ = {rho:.3g}",
            marker=dict(color=colour, symbol=symbol, size=7),
            customdata=np.abs(e), hovertemplate=f"{label}<br>λ = %{{x:.3f}} + %{{y:.3f}}i<br>|λ| = %{{customdata:.3f}}"
                                                "<extra></extra>"))
    lim = 1.1 * reach
    layout = base_layout(f"Eigenvalues of {block}", "Re λ", "Im λ", uirev="eigen")
    layout["xaxis"].update(range=[-lim, lim], zeroline=True, constrain="domain")  # square: the circle stays round
    layout["yaxis"].update(range=[-lim, lim], zeroline=True, scaleanchor="x", scaleratio=1, constrain="domain")
    if init is None and now is None and run_init is None:
        layout["annotations"] = [centre_note("no weights")]
    return finish(traces, layout, big, subtitle=note)


def bound_figure(profile: np.ndarray | None, rho: float | None, sigma: float | None, gamma: float,
                 step: int | None = None, *, note: str | None = None, big: bool = False) -> go.Figure:
    """(T,) measured ‖∂L/∂h_t‖ of layer 1 on a log axis, with the bound (γσ_max)^(T−1−t)·‖∂L/∂h_{T−1}‖
    and the linear-RNN envelope ρ^(T−1−t)·‖∂L/∂h_{T−1}‖, both anchored at the last timestep.
    Unlike Explore's profile chart, the y range covers the bound too: the point is where they part."""
    title = "Profile and bounds" + (f" (step {step})" if step is not None else "")
    layout = base_layout(title, "timestep t", "‖∂L/∂h_t‖ (log)", log_y=True, uirev="bound")
    if profile is None:
        layout["annotations"] = [centre_note("no recorded profile yet: train on Explore")]
        return finish([], layout, big, subtitle=note)
    g = np.asarray(profile, np.float64)
    finite = np.flatnonzero(np.isfinite(g))
    T = int(finite[-1]) + 1 if len(finite) else len(g)  # a curriculum pads the end with NaN
    t = np.arange(T)
    shown = np.where(g[:T] == 0, FLOOR, g[:T])
    traces = [go.Scatter(x=t, y=finite_or_none(shown), name="measured ‖∂L/∂h_t‖ (layer 1)",
                         line=dict(color="#1f77b4", width=2),
                         hovertemplate="t = %{x}<br>‖∂L/∂h_t‖ = %{y:.3e}<extra></extra>", **series_mode(shown))]
    g_last = float(g[T - 1]) if T else math.nan
    if sigma is not None and g_last > 0:
        bound = pascanu_bound(g_last, T, gamma * sigma)
        traces.append(go.Scatter(x=t, y=finite_or_none(bound), name=f"{BOUND}, γσ_max = {gamma * sigma:.3g}",
                                 line=dict(color=BOUND_COLOUR, dash="dash"),
                                 hovertemplate="t = %{x}<br>bound = %{y:.3e}<extra></extra>"))
    if rho is not None and g_last > 0:
        env = linear_envelope(g[:T], rho)
        traces.append(go.Scatter(x=t, y=finite_or_none(env), name=f"{ENVELOPE}, ρ = {rho:.3g}",
                                 line=dict(color="#ff7f0e", dash="dot"),
                                 hovertemplate="t = %{x}<br>envelope = %{y:.3e}<extra></extra>"))
    if not g_last > 0:
        layout["annotations"] = [centre_note("no finite gradient at the last timestep")]
    return finish(traces, layout, big, subtitle=note)


def fitted_rate(profile: np.ndarray) -> float | None:
    """The per-step rate of the geometric fall (rnn_core.papers.fit_rate without the spectra), or None."""
    from rnn_core.papers import fit_rate

    fit = fit_rate(profile, math.nan, math.nan)
    return None if not math.isfinite(fit.rate) else fit.rate
