"""A run panel: status, progress, the headline numbers and the six charts, drawn from a RunView.

A view is read-only and comes from a live job or from the run store, so the same panel draws
a run that is training and one opened from disk. Every chart has a stable key built from the
panel's `prefix`, so two to four panels can share a page. Charts are drawn on every run of the
panel, empty before training (plotly.js loads with the page, not after the Train click).
"""
from __future__ import annotations

import functools
import math

import plotly.graph_objects as go
import streamlit as st

from rnn_core.config import RunConfig
from rnn_core.diagnostics import HORIZON_RATIO
from rnn_core.view import RunView

from . import figures as F
from . import present
from .chart_config import plotly_config
from .live_chart import frozen, live_chart
from .run_figures import CHANCE, build_figures
from .safe import code, plain
from .state import KEYS

NUMERICS_NOTE = (f"Colour is log10 ‖∂L/∂h_t‖ (exact, from the fused kernels). An exact zero has no logarithm: it is "
                 f"drawn at the floor {F.FLOOR:g}, in the lowest colour. On CPU, denormals are flushed for speed: "
                 "float32 values below ~1e-38 read as 0. Hover a cell for the raw value.")


def chart_key(prefix: str, chart: str) -> str:
    return f"{prefix}chart_{chart}"


def draw_chart(fig: go.Figure, key: str, name: str = "bptt-lab") -> None:
    # A fixed height keeps the page from jumping while a chart is redrawn with new data. The
    # toolbar's camera saves <run name>.png at 3x, for slides.
    fig = present.fit(fig)  # presenter mode (?present=1): big text and lines, on every page that draws here
    live_chart(fig, key, int(fig.layout.height or F.HEIGHT), plotly_config(name, chart_format()))


def chart_format() -> str:
    return st.session_state.get(KEYS.chart_format, "png")


def chart_format_control() -> None:
    """The sidebar's choice of what a chart's camera button saves: PNG at 3x for slides, or SVG."""
    st.sidebar.radio("Chart downloads", ["png", "svg"], horizontal=True, key=KEYS.chart_format,
                     help="What the camera button above each chart saves, named after the run: "
                          "PNG at 3x the drawn size (for slides) or SVG (vector, for papers).")


def ordinal(n: int) -> str:
    return f"{n}{'th' if 10 <= n % 100 <= 20 else {1: 'st', 2: 'nd', 3: 'rd'}.get(n % 10, 'th')}"


# Each chart's empty frame before its run: title, x axis, y axis, log y (as the filled chart has them)
FRAMES = {"heatmap": ("‖∂L/∂h_t‖ through time", "timestep t", "training step", False),
          "profile": ("Latest gradient profile", "timestep t", "‖∂L/∂h_t‖ (log)", True),
          "gates": ("Gates / hidden-state saturation", "timestep t", "fraction", False),
          "attention": ("Attention", "key timestep t", "query", False),
          "clipping": ("Clipping: global gradient norm", "training step", "‖∇θ L‖ (log)", True),
          "loss": ("Loss", "training step", "loss (log)", True),
          "accuracy": ("Validation accuracy", "training step", "accuracy", False)}


@functools.lru_cache(maxsize=128)
def frame(chart: str, note: str = "Press Train", big: bool = False, gates_extra: bool = False) -> go.Figure:
    """One chart's empty frame, shared between sessions (draw_chart only reads a figure): building
    and serialising frames (Plotly validates every key) was a large part of a queued click's server
    time when a class clicked Train together (bench/bench_class.py)."""
    title, x, y, log_y = FRAMES[chart]
    extra = F.GATES_EXTRA if chart == "gates" and gates_extra else 0
    return frozen(F.empty_figure(title, x, y, log_y, note=note, big=big, extra_height=extra))


def _empty_figures(cfg: RunConfig | None, note: str = "Press Train") -> dict[str, go.Figure]:
    charts = ["heatmap", "profile", "gates", "clipping", "loss"]
    if cfg is not None and cfg.attention != "none":
        charts.append("attention")
    elif cfg is not None and cfg.task in CHANCE:
        charts.append("accuracy")
    gates_extra = cfg is not None and cfg.cell != "rnn"
    return {chart: frame(chart, note, gates_extra=gates_extra) for chart in charts}


def _layout(figs: dict[str, go.Figure], prefix: str, name: str) -> None:
    """The charts in their fixed rows. The empty frames and the filled charts stand at the same
    places in the page (after the same two containers), so a redraw never moves the page and the
    browser keeps each chart's element: each is redrawn in place by Plotly.react (live_chart)."""
    rows = [("heatmap", "profile"), ("gates", "clipping"), ("loss", "attention" if "attention" in figs else "accuracy")]
    for k, row in enumerate(rows):
        cols = st.columns(2)
        for col, chart in zip(cols, row):
            if chart in figs:
                with col:
                    draw_chart(figs[chart], chart_key(prefix, chart), name)
        if k == 0:
            st.caption(NUMERICS_NOTE)


def draw_empty(cfg: RunConfig | None, prefix: str = "") -> None:
    """Chart frames before any run: the first Plotly chart on a page costs ~2 s to load plotly.js."""
    with st.container():  # the status slot of draw_run
        st.info("Set the knobs in the sidebar and press **Train**. The charts below fill in as the model trains.")
    st.container()  # the metrics slot
    _layout(_empty_figures(cfg), prefix, "bptt-lab")


def draw_status(view: RunView, estimate: str | None = None) -> None:
    name = code(view.name, limit=80)
    if view.state == "queued":
        st.info(f"Queued: {ordinal(max(1, view.position))} in line. Every training worker of this server is busy; "
                "this run starts when one is free.", icon=":material/hourglass_top:")
    elif view.state == "running" and view.steps_done == 0:
        st.info("First step running…" + (f" (estimate: {plain(estimate)})" if estimate else ""),
                icon=":material/hourglass_top:")
    elif view.error:
        st.error(f"Training failed at step {view.steps_done}: {plain(view.error, limit=300)}. The run is saved as "
                 f"{name}.", icon=":material/error:")
    elif view.state == "diverged":
        st.error(f"**Diverged at step {view.summary.get('diverged_at')}**: {plain(view.reason)}. The charts keep "
                 "everything up to that step; try a smaller learning rate, a smaller init gain, or gradient clipping.",
                 icon=":material/warning:")
    elif view.state == "finished":
        st.success(f"Finished: {plain(view.reason)}. Saved as run {name}.", icon=":material/check_circle:")
    elif view.state in ("stopped", "interrupted"):
        more = " **Resume** continues it." if view.resumable else ""
        st.info(f"Stopped: {plain(view.reason)}. Saved as run {name}.{more}", icon=":material/pause_circle:")
    elif view.state == "cancelled":
        st.info("Cancelled before it started.", icon=":material/cancel:")
    text = f"{view.steps_done} / {view.cfg.steps} steps · {view.steps_per_second:.1f} steps/s"
    if view.engine:
        text += f" · {view.engine} engine on {view.device}"
    st.progress(view.progress, text=text)


def _horizon_help(T: int) -> str:
    return (f"How many timesteps back from the last one the gradient ‖∂L/∂h_t‖ (layer 1) stays above "
            f"{HORIZON_RATIO:g} × its value at the last timestep: the stretch of the past the loss can still "
            f"teach. '≥ {T}' means it never fell that far. The arrow is its change since the previous recorded step.")


def draw_metrics(view: RunView) -> None:
    h, s, cfg = view.history, view.summary, view.cfg
    cols = st.columns(4 if cfg.task in CHANCE else 3)
    T = cfg.seq_len
    if h.horizon_last is None:
        cols[0].metric("Memory horizon", "—", help=_horizon_help(T))
    else:
        value = f"≥ {h.horizon_last} steps" if h.horizon_last >= T else f"{h.horizon_last} steps"
        delta = None if h.horizon_prev is None else h.horizon_last - h.horizon_prev
        cols[0].metric("Memory horizon", value, delta=None if not delta else f"{delta:+d} steps", help=_horizon_help(T))
    final = s.get("final_val_loss")
    has_final = final is not None and math.isfinite(final)
    unit = " nats" if cfg.task == "charlm" else ""
    bar = s.get("val_baseline")
    expected = s.get("baseline")
    cols[1].metric("Validation loss", f"{final:.4g}{unit}" if has_final else "—",
                   help=(f"The bar to beat: the input-blind predictor ({plain(str(s.get('baseline_name', '')))}, "
                         f"{expected:.4g} in expectation) scores {bar:.4g} on this run's own validation batch. "
                         "Beating it needs a loss at least 1% lower and a paired test over the 256 sequences "
                         "with p < 0.01.") if bar is not None and expected is not None else None)
    with cols[1]:
        if s.get("beat_baseline"):
            st.badge("Beat the baseline", icon=":material/check_circle:", color="green")
        elif has_final and bar is not None:
            st.badge(f"Baseline {bar:.3g} not beaten", color="gray")
    sc = h.scalars()
    cols[2].metric("Steps clipped", f"{100 * F.clipped_fraction(sc['clipped']):.0f} %",
                   help="Share of steps where gradient clipping fired (clip > 0).")
    if cfg.task in CHANCE:
        acc = s.get("final_val_accuracy")
        chance = CHANCE[cfg.task]
        cols[3].metric("Validation accuracy", "—" if acc is None or not math.isfinite(acc) else f"{100 * acc:.1f} %",
                       help=f"Share of validation sequences classified right; chance is {100 * chance:.0f} %.")


def _pick(view: RunView, prefix: str) -> int:
    D = 2 if view.cfg.bidirectional else 1
    ld = view.cfg.layers * D
    if ld == 1:
        return 0
    names = F.direction_labels(ld, D)
    return st.selectbox("Layer and direction shown in the heatmap and gate charts", range(ld),
                        format_func=lambda k: names[k], key=f"{prefix}view_ld")


def draw_charts(view: RunView, prefix: str = "", pick: int = 0) -> None:
    if view.steps_done == 0:  # queued, or its first step still running: the frames, with a note
        note = ("Queued: the charts fill in once the run starts" if view.state == "queued" else
                "The charts fill in from the first step")
        _layout(_empty_figures(view.cfg, note), prefix, view.name)
        return
    _layout(build_figures(view, pick, big=present.on()), prefix, view.name)


def draw_run(view: RunView, prefix: str = "", estimate: str | None = None) -> None:
    with st.container():
        draw_status(view, estimate)
    with st.container():
        draw_metrics(view)
        pick = _pick(view, prefix)
    draw_charts(view, prefix, pick)
