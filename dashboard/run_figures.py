"""Every chart of one run, from a RunView: pure (no Streamlit), so the page, a live/disk
comparison and the offline HTML report all build the same figures.
"""
from __future__ import annotations

import math

import numpy as np
import plotly.graph_objects as go

from rnn_core.view import RunView

from . import figures as F

CHARTS = ("heatmap", "profile", "gates", "attention", "clipping", "loss", "accuracy")
CHANCE = {"digits": 0.1, "temporal_order": 0.25}  # classification tasks: chance accuracy


def gates_step(h, arrays: dict) -> int | None:
    """The step whose gate statistics `arrays` (h.latest, or h.latest_finite from profile_arrays)
    hold: they are taken on every gates_every-th recorded step only, so often an earlier one than
    the profile's."""
    return h.gates_step if arrays is h.latest else h.finite_gates_step


def profile_arrays(h) -> tuple[dict, int | None, str | None]:
    """The latest recorded arrays, or the last finite ones when the latest step diverged."""
    latest = h.latest
    grads = latest.get("timestep_grads")
    if grads is not None and not np.isfinite(np.asarray(grads, dtype=np.float64)).any():
        finite = getattr(h, "latest_finite", None) or {}
        step = getattr(h, "latest_finite_step", None)
        if "timestep_grads" in finite:
            return finite, step, f"last finite profile, step {step} (step {h.latest_step} diverged)"
    return latest, h.latest_step, None


def build_figures(view: RunView, pick: int = 0, big: bool = False) -> dict[str, go.Figure]:
    """Every chart of a view, keyed by CHARTS name (pick: the layer-direction of the heatmap and
    gates; big: presenter mode). Pure, so a live and a saved view can be compared."""
    cfg, h, s = view.cfg, view.history, view.summary
    D = 2 if cfg.bidirectional else 1
    names = F.direction_labels(cfg.layers * D, D)
    figs: dict[str, go.Figure] = {}
    grads = h.recorded("timestep_grads")
    if grads is None:
        figs["heatmap"] = F.empty_figure("‖∂L/∂h_t‖ through time", "timestep t", "training step", big=big,
                                         note=f"no recorded step yet (record_every={cfg.record_every})")
    else:
        figs["heatmap"] = F.gradient_heatmap(grads[:, pick], h.recorded_steps(),
                                             f"‖∂L/∂h_t‖ through time — {names[pick]}", big=big)
    arrays, step, note = profile_arrays(h)
    g_step = gates_step(h, arrays)
    if "timestep_grads" in arrays:
        figs["profile"] = F.gradient_profile(arrays["timestep_grads"], arrays.get("spectral_radius"), cfg.cell, D,
                                             step, note=note, big=big, cell_grads=arrays.get("cell_grads"),
                                             cell_step=g_step)
    else:
        figs["profile"] = F.empty_figure("Latest gradient profile", "timestep t", "‖∂L/∂h_t‖ (log)", log_y=True,
                                         note="no recorded step yet", big=big)
    if "gate_mean" in arrays:
        figs["gates"] = F.gates_figure(arrays["gate_mean"][pick], arrays["gate_saturation"][pick], cfg.cell,
                                       f"{names[pick]}, step {g_step}", big=big)
    elif "hidden_saturation" in arrays:
        figs["gates"] = F.saturation_figure(arrays["hidden_saturation"], cfg.activation, D, big=big)
    else:
        figs["gates"] = F.empty_figure("Gates / hidden-state saturation", "timestep t", "fraction",
                                       note="no recorded step yet", big=big,
                                       extra_height=F.GATES_EXTRA if cfg.cell != "rnn" else 0)
    sc = h.scalars()
    figs["clipping"] = F.clipping_figure(sc["step"], sc["grad_norm_pre_clip"], sc["grad_norm_post_clip"],
                                         sc["clipped"], cfg.clip, cfg.clip_mode, big=big)
    bar = s.get("val_baseline")
    train_eval = sc.get("train_eval_loss") if cfg.train_size else None  # a finite set's loss, like validation's
    if cfg.task == "charlm":  # the axis is in nats; the label gives bits per character beside them
        figs["loss"] = F.loss_figure(sc["step"], sc["loss"], sc["val_loss"], s.get("baseline", math.nan), "unigram",
                                     loss_unit="nats", bits_per="char", val_baseline=bar, train_eval=train_eval, big=big)
    else:
        unit = "MSE" if cfg.task in ("adding", "sine") else "nats"
        figs["loss"] = F.loss_figure(sc["step"], sc["loss"], sc["val_loss"], s.get("baseline", math.nan),
                                     str(s.get("baseline_name", "")), loss_unit=unit, val_baseline=bar,
                                     train_eval=train_eval, big=big)
    if cfg.task in CHANCE and "val_accuracy" in sc:
        figs["accuracy"] = F.accuracy_figure(sc["step"], sc["val_accuracy"], CHANCE[cfg.task], big=big)
    if cfg.attention != "none":
        if "attention_mean" in arrays:
            figs["attention"] = F.attention_figure(arrays["attention_mean"], step, task=cfg.task, big=big)
        else:
            figs["attention"] = F.empty_figure("Attention", "key timestep t", "query", note="no recorded step yet",
                                               big=big)
    return figs
