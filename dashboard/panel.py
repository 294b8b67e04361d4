"""The live panel: status, progress and the six charts, drawn from a LiveRun's bounded History.

Every chart has a stable key and is drawn on every run of the panel, empty before training
(so plotly.js is loaded with the page, not after the Train click) and filled afterwards.
"""
from __future__ import annotations

import plotly.graph_objects as go
import streamlit as st

from rnn_core.config import RunConfig
from rnn_core.diagnostics import HORIZON_RATIO

from . import figures as F
from .live import LiveRun

CHART_KEYS = ("chart_heatmap", "chart_profile", "chart_gates", "chart_attention", "chart_clipping", "chart_loss")
PLOTLY_CONFIG = {"displaylogo": False}
NUMERICS_NOTE = (f"Colour is log10 ‖∂L/∂h_t‖ (exact, from the fused kernels). An exact zero has no logarithm: it is "
                 f"drawn at the floor {F.FLOOR:g}, in the lowest colour. On CPU, denormals are flushed for speed: "
                 "float32 values below ~1e-38 read as 0. Hover a cell for the raw value.")


def _chart(fig: go.Figure, key: str) -> None:
    # A fixed height keeps the page from jumping while a chart is redrawn with new data.
    st.plotly_chart(fig, key=key, width="stretch", height=int(fig.layout.height or F.HEIGHT), config=PLOTLY_CONFIG)


def _directions(cfg: RunConfig) -> int:
    return 2 if cfg.bidirectional else 1


def draw_empty(cfg: RunConfig | None) -> None:
    """Chart frames before any run: the first Plotly chart on a page costs ~2 s to load plotly.js."""
    st.info("Set the knobs in the sidebar and press **Train**. The charts below fill in as the model trains.")
    left, right = st.columns(2)
    with left:
        _chart(F.empty_figure("‖∂L/∂h_t‖ through time", "timestep t", "training step"), CHART_KEYS[0])
    with right:
        _chart(F.empty_figure("Latest gradient profile", "timestep t", "‖∂L/∂h_t‖ (log)", log_y=True), CHART_KEYS[1])
    left, right = st.columns(2)
    with left:
        _chart(F.empty_figure("Gates / hidden-state saturation", "timestep t", "fraction"), CHART_KEYS[2])
    with right:
        _chart(F.empty_figure("Clipping telemetry: global gradient norm", "training step", "‖∇θ L‖ (log)", log_y=True),
               CHART_KEYS[4])
    left, right = st.columns(2)
    with left:
        _chart(F.empty_figure("Loss", "training step", "loss (log)", log_y=True), CHART_KEYS[5])
    if cfg is not None and cfg.attention != "none":
        with right:
            _chart(F.empty_figure("Attention", "key timestep t", "query"), CHART_KEYS[3])


def draw_status(run: LiveRun) -> None:
    tr = run.trainer
    if run.error:
        st.error(f"Training failed at step {tr.step_index}: {run.error}")
    elif tr.status == "diverged":
        st.error(f"**Diverged at step {tr.diverged_at}**: {tr.reason}. The charts keep everything up to that step; "
                 "try a smaller learning rate, a smaller init gain, or gradient clipping.", icon="💥")
    elif tr.status == "finished":
        st.success(f"Finished: {tr.reason}. Saved as run `{run.name}`.")
    elif tr.status == "stopped":
        st.info(f"Stopped: {tr.reason}. Saved as run `{run.name}`; **Resume** continues it.")
    sps = run.steps_per_second()
    st.progress(run.progress(), text=f"{tr.step_index} / {run.cfg.steps} steps · {sps:.1f} steps/s · "
                                     f"{tr.engine} engine on {tr.device} · run `{run.name}`")


def draw_metrics(run: LiveRun) -> None:
    h, tr = run.history, run.trainer
    summary = tr.summary()
    a, b, c = st.columns(3)
    T = run.cfg.seq_len
    if h.horizon_last is None:
        a.metric("Effective memory horizon", "—", help="Recorded steps appear every record_every steps.")
    else:
        value = f"≥ {h.horizon_last} steps" if h.horizon_last >= T else f"{h.horizon_last} steps"
        delta = None if h.horizon_prev is None else h.horizon_last - h.horizon_prev
        a.metric("Effective memory horizon", value, delta=delta,
                 help=f"Timesteps back from the last step until ‖∂L/∂h_t‖ (layer 1) falls below "
                      f"{HORIZON_RATIO:g} of its value at the last step; change since the previous recorded step.")
    final = summary["final_val_loss"]
    b.metric("Validation loss", "—" if final is None else f"{final:.4g}",
             help=f"Baseline: {summary['baseline_name']} = {summary['baseline']:.4g} in expectation, "
                  f"{summary['val_baseline']:.4g} on this run's validation batch (the bar it must beat)")
    with b:
        if summary["beat_baseline"]:
            st.badge("Beat the baseline", icon=":material/check_circle:", color="green")
        elif final is not None:
            st.badge(f"Baseline {summary['val_baseline']:.3g} not beaten yet", color="gray")
    sc = h.scalars()
    c.metric("Steps clipped", f"{100 * F.clipped_fraction(sc['clipped']):.0f} %",
             help="Share of steps where gradient clipping fired (clip > 0).")


def draw_charts(run: LiveRun) -> None:
    cfg, h = run.cfg, run.history
    D = _directions(cfg)
    ld = cfg.layers * D
    names = F.direction_labels(ld, D)
    pick = 0
    if ld > 1:
        pick = st.selectbox("Layer and direction shown in the heatmap and gate charts", range(ld),
                            format_func=lambda k: names[k], key="view_ld")
    grads = h.recorded("timestep_grads")
    left, right = st.columns(2)
    with left:
        if grads is None:
            _chart(F.empty_figure("‖∂L/∂h_t‖ through time", "timestep t", "training step",
                                  note=f"no recorded step yet (record_every={cfg.record_every})"), CHART_KEYS[0])
        else:
            _chart(F.gradient_heatmap(grads[:, pick], h.recorded_steps(), f"‖∂L/∂h_t‖ through time — {names[pick]}"),
                   CHART_KEYS[0])
    with right:
        latest = h.latest
        if "timestep_grads" in latest:
            _chart(F.gradient_profile(latest["timestep_grads"], latest.get("spectral_radius"), cfg.cell, D,
                                      h.latest_step), CHART_KEYS[1])
        else:
            _chart(F.empty_figure("Latest gradient profile", "timestep t", "‖∂L/∂h_t‖ (log)", log_y=True,
                                  note="no recorded step yet"), CHART_KEYS[1])
    st.caption(NUMERICS_NOTE)
    left, right = st.columns(2)
    with left:
        if "gate_mean" in latest:
            _chart(F.gates_figure(latest["gate_mean"][pick], latest["gate_saturation"][pick], cfg.cell,
                                  f"{names[pick]}, step {h.latest_step}"), CHART_KEYS[2])
        elif "hidden_saturation" in latest:
            _chart(F.saturation_figure(latest["hidden_saturation"], cfg.activation, D), CHART_KEYS[2])
        else:
            _chart(F.empty_figure("Gates / hidden-state saturation", "timestep t", "fraction",
                                  note="no recorded step yet"), CHART_KEYS[2])
    sc = h.scalars()
    with right:
        _chart(F.clipping_figure(sc["step"], sc["grad_norm_pre_clip"], sc["grad_norm_post_clip"], sc["clipped"],
                                 cfg.clip, cfg.clip_mode), CHART_KEYS[4])
    left, right = st.columns(2)
    with left:
        spec = run.trainer.spec
        _chart(F.loss_figure(sc["step"], sc["loss"], sc["val_loss"], spec.baseline, spec.baseline_name), CHART_KEYS[5])
    if cfg.attention != "none":
        with right:
            if "attention_mean" in latest:
                _chart(F.attention_figure(latest["attention_mean"], h.latest_step), CHART_KEYS[3])
            else:
                _chart(F.empty_figure("Attention", "key timestep t", "query", note="no recorded step yet"), CHART_KEYS[3])


def draw_run(run: LiveRun) -> None:
    draw_status(run)
    draw_metrics(run)
    draw_charts(run)
