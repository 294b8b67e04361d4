"""Figure builders on synthetic arrays: data in, plotly Figure out, checked number by number."""
from __future__ import annotations

import math

import numpy as np
import pytest

from dashboard import figures as F
from rnn_core.diagnostics import memory_horizon


# --- the memory horizon -----------------------------------------------------------------
@pytest.mark.parametrize("gamma", [0.5, 0.8, 0.95])
def test_horizon_of_a_geometric_profile(gamma):
    T = 200
    profile = gamma ** (T - 1 - np.arange(T))  # ‖∂L/∂h_t‖ = γ^(T-1-t): 1 at the last step
    # first k with γ^k < 1e-3, counted by hand
    k = 1
    while gamma ** k >= 1e-3:
        k += 1
    assert memory_horizon(profile) == k


def test_horizon_known_values():
    T = 50
    assert memory_horizon(0.5 ** (T - 1 - np.arange(T))) == 10  # 0.5^10 = 9.8e-4 < 1e-3 <= 0.5^9
    assert memory_horizon(np.ones(T)) == T  # never falls: the whole sequence
    assert memory_horizon(np.r_[np.ones(T - 1), 0.0]) == 0  # no reference value at the last step
    assert memory_horizon(np.full(T, np.nan)) == 0


def test_horizon_uses_last_finite_step_of_a_curriculum_profile():
    g = 0.5 ** (29 - np.arange(30))
    padded = np.r_[g, np.full(20, np.nan)]  # a shorter curriculum step is NaN-padded to seq_len
    assert memory_horizon(padded) == memory_horizon(g) == 10


# --- log scaling ---------------------------------------------------------------------------
def test_safe_log10_floor_and_nan():
    out = F.safe_log10(np.array([1e-6, 0.0, np.nan, 1.0, 1e-200]))
    assert out[0] == pytest.approx(-6)
    assert out[1] == math.log10(F.FLOOR) == -300
    assert np.isnan(out[2])
    assert out[3] == 0 and out[4] == pytest.approx(-200)


def test_heatmap_plots_log10_with_real_value_ticks_and_raw_hover():
    rng = np.random.default_rng(0)
    grads = 10.0 ** rng.uniform(-9, 1, size=(12, 30))
    steps = np.arange(12) * 5
    fig = F.gradient_heatmap(grads, steps)
    hm = fig.data[0]
    assert hm.type == "heatmap"
    np.testing.assert_allclose(np.asarray(hm.z), np.log10(grads), rtol=0, atol=1e-12)
    np.testing.assert_allclose(np.asarray(hm.customdata), grads, rtol=1e-12)
    np.testing.assert_array_equal(np.asarray(hm.y), steps)
    np.testing.assert_array_equal(np.asarray(hm.x), np.arange(30))
    ticks = dict(zip(hm.colorbar.tickvals, hm.colorbar.ticktext))
    assert all(float(v).is_integer() for v in ticks)  # whole decades
    for v, text in ticks.items():
        assert float(text) == pytest.approx(10.0 ** v)  # "1e-6" really means 1e-6
    assert "customdata" in hm.hovertemplate
    assert fig.layout.xaxis.title.text == "timestep t" and fig.layout.yaxis.title.text == "training step"


def test_heatmap_exact_zero_sits_at_the_floor_without_stretching_the_scale():
    grads = np.full((3, 10), 1e-3)
    grads[1, :4] = 0.0
    hm = F.gradient_heatmap(grads, np.arange(3)).data[0]
    z = np.asarray(hm.z)
    assert (z[1, :4] == -300).all()
    assert hm.zmin > -10  # the scale follows the real values; zeros take the lowest colour
    assert "1e-300" in hm.colorbar.ticktext[0]


def test_heatmap_thins_rows_and_bins_long_sequences():
    grads = np.full((600, 2000), 1e-2)
    hm = F.gradient_heatmap(grads, np.arange(600), max_rows=250, max_cols=300).data[0]
    z = np.asarray(hm.z)
    assert z.shape[0] <= 250 and z.shape[1] <= 300
    assert np.asarray(hm.y)[-1] == 599  # the newest step is always shown
    np.testing.assert_allclose(z, -2.0)


# --- the profile and its envelope --------------------------------------------------------------
def test_linear_envelope_values():
    T, gamma = 40, 0.9
    profile = np.abs(np.random.default_rng(1).normal(size=T)) + 0.1
    env = F.linear_envelope(profile, gamma)
    np.testing.assert_allclose(env, gamma ** (T - 1 - np.arange(T)) * profile[-1], rtol=1e-12)
    rev = F.linear_envelope(profile, gamma, reverse=True)
    np.testing.assert_allclose(rev, gamma ** np.arange(T) * profile[0], rtol=1e-12)


def test_linear_envelope_does_not_overflow():
    env = F.linear_envelope(np.ones(2000), 1.5)
    assert np.isfinite(env).all() and env.max() <= 1e300
    tiny = F.linear_envelope(np.ones(2000), 0.5)
    assert tiny.min() >= F.FLOOR


def test_profile_figure_log_axis_lines_and_dashed_envelope():
    T, gamma = 25, 0.8
    profile = np.stack([gamma ** (T - 1 - np.arange(T)) * 2.0, np.full(T, 0.5)])  # (LD=2, T)
    radius = np.array([[0.1, 0.2, gamma, 0.4], [0.5, 0.6, 0.7, 0.8]])  # LSTM: i f g o
    fig = F.gradient_profile(profile, radius, "lstm", directions=2, step=7)
    assert fig.layout.yaxis.type == "log"
    lines = [t for t in fig.data if t.line.dash != "dash"]
    envs = [t for t in fig.data if t.line.dash == "dash"]
    assert [t.name for t in lines] == ["layer 1 →", "layer 1 ←"]
    assert len(envs) == 2 and all("candidate block g" in t.name for t in envs)
    np.testing.assert_allclose(np.asarray(envs[0].y, dtype=float), profile[0], rtol=1e-12)  # exact for γ^(T-t)
    # the backward direction is anchored at t = 0 with its own γ (block g of row 1: 0.7)
    np.testing.assert_allclose(np.asarray(envs[1].y, dtype=float), 0.7 ** np.arange(T) * 0.5, rtol=1e-12)
    assert "step 7" in fig.layout.title.text


def test_profile_shows_exact_zero_at_floor():
    fig = F.gradient_profile(np.array([[0.0, 1e-3, 1.0]]), None, "rnn")
    assert fig.data[0].y[0] == F.FLOOR
    assert len(fig.data) == 1  # no spectral radius, no envelope


# --- gates, saturation, attention -----------------------------------------------------------------
def test_gates_figure_names_each_gate_and_panels():
    mean = np.random.default_rng(2).uniform(size=(4, 20))
    sat = np.random.default_rng(3).uniform(size=(4, 20))
    fig = F.gates_figure(mean, sat, "lstm")
    names = [t.name for t in fig.data if t.yaxis == "y"]
    assert names == list(F.GATE_NAMES["lstm"])
    np.testing.assert_allclose(np.asarray(fig.data[1].y, dtype=float), sat[0])
    assert fig.data[1].yaxis == "y2"
    gru = F.gates_figure(mean[:3], sat[:3], "gru")
    assert [t.name for t in gru.data if t.yaxis == "y"] == list(F.GATE_NAMES["gru"])


def test_saturation_figure_says_dead_for_relu_and_none_for_linear():
    assert "dead" in F.saturation_figure(np.zeros((1, 5)), "relu").layout.title.text
    lin = F.saturation_figure(np.full((1, 5), np.nan), "linear")
    assert any("never saturates" in a.text for a in lin.layout.annotations)


def test_attention_heatmap_queries_by_time():
    a = np.random.default_rng(4).dirichlet(np.ones(16), size=8)  # (Q=8, T=16)
    hm = F.attention_figure(a, step=3).data[0]
    assert hm.type == "heatmap" and np.asarray(hm.z).shape == (8, 16)
    np.testing.assert_array_equal(np.asarray(hm.y), np.arange(-7, 1))  # 0 is the last query
    # one end-of-sequence query: still a numeric axis (a category 'end' did not draw after an empty frame)
    one = F.attention_figure(a[:1])
    assert np.asarray(one.data[0].y).tolist() == [0] and list(one.layout.yaxis.ticktext) == ["end"]


# --- clipping and loss ------------------------------------------------------------------------------
def test_clipping_markers_at_exactly_the_clipped_steps():
    steps = np.arange(100)
    pre = np.linspace(0.1, 10, 100)
    clipped = pre > 5
    post = np.minimum(pre, 5)
    fig = F.clipping_figure(steps, pre, post, clipped, clip=5.0, clip_mode="norm")
    assert fig.layout.yaxis.type == "log"
    markers = next(t for t in fig.data if t.name == "clipping fired")
    np.testing.assert_array_equal(np.asarray(markers.x), steps[clipped])
    np.testing.assert_allclose(np.asarray(markers.y, dtype=float), pre[clipped])
    threshold = next(t for t in fig.data if t.name.startswith("threshold"))
    assert list(threshold.y) == [5.0, 5.0] and threshold.line.dash == "dash"


def test_clipping_value_mode_has_no_global_threshold_and_inf_becomes_gap():
    pre = np.array([1.0, np.inf, np.nan, 2.0])
    fig = F.clipping_figure(np.arange(4), pre, pre, np.zeros(4, bool), clip=1.0, clip_mode="value")
    assert not any((t.name or "").startswith("threshold") for t in fig.data)
    assert fig.data[0].y[1] is None and fig.data[0].y[2] is None  # log axes cannot draw inf
    off = F.clipping_figure(np.arange(4), pre, pre, np.zeros(4, bool), clip=0.0, clip_mode="norm")
    assert not any((t.name or "").startswith("threshold") for t in off.data)


def test_loss_figure_baseline_and_validation_points():
    steps = np.arange(30)
    loss = np.linspace(1, 0.1, 30)
    val = np.full(30, np.nan)
    val[::10] = [0.9, 0.5, 0.2]
    fig = F.loss_figure(steps, loss, val, baseline=1 / 6, baseline_name="predict 1")
    assert fig.layout.yaxis.type == "log"
    v = next(t for t in fig.data if t.name == "validation")
    np.testing.assert_array_equal(np.asarray(v.x), [0, 10, 20])
    b = next(t for t in fig.data if t.name.startswith("baseline"))
    assert b.y[0] == pytest.approx(1 / 6) and "predict 1" in b.name


def test_small_helpers():
    vals, text = F.decade_ticks(-6.2, 0.3)
    assert vals[0] <= -6.2 + 1 and vals[-1] >= 0 and "1" in text
    assert F.decade_label(-3) == "1e-3" and F.decade_label(0) == "1"
    idx = F.thin_indices(10_000, 2000)
    assert len(idx) <= 2000 and idx[0] == 0 and idx[-1] == 9999
    assert F.clipped_fraction([True, False, False, True]) == 0.5
    assert F.direction_labels(4, 2) == ["layer 1 →", "layer 1 ←", "layer 2 →", "layer 2 ←"]
    empty = F.empty_figure("x", "t", "y", log_y=True)
    assert len(empty.data) == 0 and empty.layout.yaxis.type == "log"
