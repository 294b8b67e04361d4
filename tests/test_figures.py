"""Figure builders on synthetic arrays: data in, plotly Figure out, checked number by number."""
from __future__ import annotations

import math

import numpy as np
import pytest

from dashboard import chart_layout as L
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
    assert len(envs) == 2 and all(t.name == F.ENVELOPE and "candidate block g" in t.hovertemplate for t in envs)
    assert [t.showlegend for t in envs] == [True, False]  # one legend entry for the envelope style
    np.testing.assert_allclose(np.asarray(envs[0].y, dtype=float), profile[0], rtol=1e-12)  # exact for γ^(T-t)
    # the backward direction is anchored at t = 0 with its own γ (block g of row 1: 0.7)
    np.testing.assert_allclose(np.asarray(envs[1].y, dtype=float), 0.7 ** np.arange(T) * 0.5, rtol=1e-12)
    assert "step 7" in fig.layout.title.text


def test_profile_draws_the_lstm_cell_gradient_dotted_with_its_own_step():
    T = 20
    profile = np.stack([0.5 ** (T - 1 - np.arange(T)), np.full(T, 0.5)])  # (LD=2, T)
    cells = np.stack([np.full(T, 1e-9), np.full(T, 2.0)])  # far outside ‖∂L/∂h_t‖: it must widen the y range
    fig = F.gradient_profile(profile, None, "lstm", directions=2, step=40, cell_grads=cells, cell_step=30)
    dotted = [t for t in fig.data if t.line.dash == "dot"]
    assert [t.name for t in dotted] == ["‖∂L/∂c_t‖ (step 30)"] * 2 and [t.showlegend for t in dotted] == [True, False]
    for line, row in zip(dotted, cells):
        np.testing.assert_array_equal(np.asarray(line.y, dtype=float), row)
    lo, hi = fig.layout.yaxis.range
    assert lo < -9 and hi > np.log10(2.0)
    assert "step 40" in fig.layout.title.text
    # a step that skipped them (all NaN), or a cell without them: no dotted line
    for none in (np.full((2, T), np.nan), None):
        assert not [t for t in F.gradient_profile(profile, None, "lstm", 2, cell_grads=none).data if t.line.dash == "dot"]


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


# --- readability: what a new user could not read ------------------------------------------------------
def _series(fig):
    return [t for t in fig.data if t.type == "scatter" and t.mode != "markers" and len(t.x) > 0 and
            not (len(t.x) == 2 and t.y[0] == t.y[1] and t.line.color == "#555")]  # not the reference lines


@pytest.mark.parametrize("n", [1, 2])
def test_a_run_that_diverged_at_step_one_still_shows_its_points(n):
    steps, v = np.arange(n), np.linspace(1.0, 2.0, n)
    figs = [F.loss_figure(steps, v, v, 1.0, "b"),
            F.clipping_figure(steps, v, v, np.zeros(n, bool), 1.0, "norm"),
            F.gradient_profile(v[None], np.full((1, 1), 0.9), "rnn"),
            F.gates_figure(np.full((4, n), 0.5), np.full((4, n), 0.1), "lstm"),
            F.saturation_figure(np.full((2, n), 0.3), "tanh")]
    for fig in figs:
        for t in _series(fig):
            assert "markers" in t.mode, (fig.layout.title.text, t.name)  # a lone point on a line draws nothing


def test_isolated_points_of_a_long_series_get_markers_and_the_rest_does_not():
    loss = np.linspace(2, 1, 200)
    loss[100:] = np.nan  # diverged at step 100
    loss[150] = 0.5  # one finite step between NaNs
    train = F.loss_figure(np.arange(200), loss, np.full(200, np.nan), 1.0, "b").data[0]
    assert "markers" in train.mode
    size = np.asarray(train.marker.size, dtype=float)
    assert size[150] > 0 and (np.delete(size, 150) == 0).all()
    smooth = F.loss_figure(np.arange(200), np.linspace(2, 1, 200), np.full(200, np.nan), 1.0, "b").data[0]
    assert smooth.mode == "lines"


def test_all_nan_profile_says_the_run_diverged_and_shows_the_note():
    fig = F.gradient_profile(np.full((2, 30), np.nan), np.ones((2, 4)), "lstm", step=3)
    assert any(a.text == F.DIVERGED for a in fig.layout.annotations)
    shown = F.gradient_profile(np.ones((1, 30)), None, "rnn", step=0, note="last finite profile, step 0")
    assert "last finite profile, step 0" in shown.layout.title.subtitle.text
    assert not shown.layout.annotations


def _profile(layers, directions, T=60):
    ld = layers * directions
    profile = np.stack([0.9 ** (T - 1 - np.arange(T)) * (k + 1) for k in range(ld)])
    return F.gradient_profile(profile, np.full((ld, 4), 0.95), "lstm", directions)


def test_legend_sits_under_the_x_axis_at_the_foot_of_a_fixed_height_chart():
    small, deep = _profile(1, 1), _profile(4, 2)
    for fig in (small, deep, F.gates_figure(np.ones((4, 5)), np.ones((4, 5)), "lstm")):
        leg = fig.layout.legend
        assert leg.orientation == "h" and leg.traceorder == "grouped"  # rows; each entry as wide as its name
        # anchored to the figure's foot: plotly reserves the legend's measured rows under the plot
        assert (leg.yref, leg.y, leg.yanchor, leg.xref) == ("container", 0, "bottom", "paper")
        # and the x axis claims room for its labels and title above the legend (no overlap)
        bottom_axis = fig.layout["xaxis2"] if "xaxis2" in fig.to_dict()["layout"] else fig.layout.xaxis
        assert bottom_axis.automargin is True and bottom_axis.title.standoff == L.STANDOFF
        assert fig.layout.margin.b >= L.axis_px(L.NORMAL)
    assert deep.layout.height == small.layout.height == F.HEIGHT  # fixed: the page never jumps
    # 4 layers x 2 directions: one entry per layer-direction and one for every dashed envelope, last
    entries = [t.name for t in deep.data if t.showlegend is not False]
    assert len(entries) == 9 and entries[-1] == F.ENVELOPE and entries.count(F.ENVELOPE) == 1
    assert entries[:2] == ["layer 1 →", "layer 1 ←"] and "layer 4 ←" in entries
    one = F.saturation_figure(np.ones((1, 5)) * 0.2, "tanh")
    assert one.layout.showlegend is False  # one line needs no legend


def test_wrap_breaks_long_names_between_words():
    long = L.wrap("baseline on the validation batch (the bar to beat)", 210, 11)
    assert "<br>" in long and L.text_px(long, 11) <= 210
    assert long.replace("<br>", " ") == "baseline on the validation batch (the bar to beat)"
    assert L.wrap("layer 1 →", 210, 11) == "layer 1 →"
    assert L.wrap("a<br>b", 210, 11) == "a<br>b"  # a break of its own stays


def test_long_legend_names_are_wrapped_to_the_narrow_chart():
    fig = F.loss_figure(np.arange(10), np.ones(10), np.ones(10), 0.2, "predict 1", val_baseline=0.15)
    for t in fig.data:
        assert L.text_px(t.name, 11) <= L.NARROW - L.NORMAL.left - L.RIGHT - L.SYMBOL_PX


def test_envelope_above_one_cannot_stretch_the_axis():
    T = 200
    profile = np.stack([np.linspace(1e-3, 1e-2, T)])  # measured: 1e-3 .. 1e-2
    fig = F.gradient_profile(profile, np.array([[0.1, 0.2, 1.3, 0.4]]), "lstm", step=5)
    env = next(t for t in fig.data if t.name == F.ENVELOPE)
    assert max(v for v in env.y if v is not None) > 1e20  # γ=1.3 over 200 steps
    lo, hi = fig.layout.yaxis.range
    assert -3 - 1 <= lo < -3 and -2 < hi <= -2 + 1  # log10 units, from the measured profile only
    assert "cut at the measured range" in fig.layout.title.subtitle.text
    assert "gated cell path is not bound" in env.hovertemplate and "γ = 1.3" in env.hovertemplate


def test_charlm_baseline_is_labelled_in_the_axis_unit():
    nats = 4.656 * math.log(2)
    fig = F.loss_figure(np.arange(5), np.ones(5), np.ones(5), nats, "unigram", loss_unit="nats", bits_per="char")
    b = next(t for t in fig.data if "unigram" in t.name)
    assert "unigram 3.227 nats (4.656 bits/char)" in b.name.replace("<br>", " ")
    assert "nats" in fig.layout.yaxis.title.text


def test_loss_baseline_is_the_validation_batch_bar_and_expected_is_dotted():
    fig = F.loss_figure(np.arange(5), np.ones(5), np.ones(5), 1 / 6, "predict 1", val_baseline=0.152)
    names = {t.name.replace("<br>", " "): t for t in fig.data}
    bar = names["baseline on the validation batch (the bar to beat)"]
    assert list(bar.y) == [0.152, 0.152] and bar.line.dash == "dash"
    expected = next(t for n, t in names.items() if n.startswith("expected baseline"))
    assert expected.y[0] == pytest.approx(1 / 6) and expected.line.dash == "dot"
    plain = F.loss_figure(np.arange(5), np.ones(5), np.ones(5), 1 / 6, "predict 1")
    assert not any("validation batch" in t.name for t in plain.data)


def test_accuracy_figure_shows_val_points_and_chance_on_zero_to_one():
    acc = np.full(30, np.nan)
    acc[::10] = [0.2, 0.5, 0.9]
    fig = F.accuracy_figure(np.arange(30), acc, chance=0.25)
    v = next(t for t in fig.data if t.name == "validation")
    np.testing.assert_array_equal(np.asarray(v.x), [0, 10, 20])
    chance = next(t for t in fig.data if t.name.startswith("chance"))
    assert list(chance.y) == [0.25, 0.25] and chance.line.dash == "dash"
    assert fig.layout.yaxis.range[0] <= 0 and fig.layout.yaxis.range[1] >= 1


@pytest.mark.parametrize("task,words", [("adding", "two marked timesteps"), ("copy", "causal"), ("sine", "causal"),
                                        ("charlm", "causal"), ("temporal_order", "X/Y"), ("digits", "classifier")])
def test_attention_says_what_to_look_for(task, words):
    fig = F.attention_figure(np.ones((1, 8)) / 8, task=task)
    assert words in fig.layout.title.subtitle.text.replace("<br>", " ")
    assert F.attention_figure(np.ones((1, 8)) / 8).layout.title.subtitle.text is None


def test_heatmaps_share_a_colour_scale():
    a = F.gradient_heatmap(np.full((3, 10), 1e-2), np.arange(3), zrange=(-8.0, 1.0)).data[0]
    b = F.gradient_heatmap(np.full((3, 10), 1e-6), np.arange(3), zrange=(-8.0, 1.0)).data[0]
    assert (a.zmin, a.zmax) == (b.zmin, b.zmax) == (-8.0, 1.0)
    assert a.colorbar.tickvals[0] >= -8 and a.colorbar.tickvals[-1] <= 1


def _fonts(fig):
    lay = fig.layout
    axes = [lay.xaxis, lay.yaxis]
    return lay.title.font.size, [a.title.font.size for a in axes], [a.tickfont.size for a in axes]


def test_presenter_mode_on_two_builders():
    steps = np.arange(20)
    for build in (lambda big: F.loss_figure(steps, np.ones(20), np.ones(20), 0.2, "b", big=big),
                  lambda big: F.clipping_figure(steps, np.ones(20), np.ones(20), np.zeros(20, bool), 1.0, "norm", big=big)):
        title, axis, ticks = _fonts(build(True))
        assert title >= 22 and min(axis) >= 18 and min(ticks) >= 18
        assert all(t.line.width >= 3 for t in build(True).data if "lines" in t.mode)
        assert build(False).layout.title.font.size < 22
        assert build(True).layout.height > build(False).layout.height == F.HEIGHT


def test_empty_frames_match_the_height_of_the_charts_that_replace_them():
    gates = F.gates_figure(np.ones((4, 5)), np.ones((4, 5)), "lstm", big=True)
    frame = F.empty_figure("Gates", "timestep t", "fraction", big=True, extra_height=F.GATES_EXTRA)
    assert frame.layout.height == gates.layout.height == L.chart_height(True, F.GATES_EXTRA)


def test_figures_use_no_emoji():
    steps, v = np.arange(5), np.ones(5)
    figs = [F.loss_figure(steps, v, v, 1.0, "b", val_baseline=0.9, loss_unit="nats", bits_per="char"),
            F.accuracy_figure(steps, v, 0.1), F.clipping_figure(steps, v, v, v > 0, 1.0, "value"),
            _profile(2, 2), F.gradient_profile(np.full((1, 5), np.nan), None, "gru", note="n"),
            F.gates_figure(np.ones((3, 5)), np.ones((3, 5)), "gru"), F.saturation_figure(np.full((1, 5), np.nan), "linear"),
            F.gradient_heatmap(np.ones((2, 5)), np.arange(2)), F.empty_figure("x")]
    figs += [F.attention_figure(np.ones((2, 5)), task=t) for t in F.ATTENTION_CAPTIONS]
    for fig in figs:
        text = fig.to_json()
        bad = [c for c in text if ord(c) >= 0x1F000 or 0x2600 <= ord(c) <= 0x27BF or ord(c) == 0xFE0F]
        assert not bad, (fig.layout.title.text, bad)


def test_loss_without_a_known_baseline_draws_no_line():
    fig = F.loss_figure(np.arange(5), np.ones(5), np.ones(5), math.nan, "", val_baseline=math.nan)
    assert [t.name for t in fig.data] == ["train", "validation"]


def test_figures_with_empty_selections_compare_equal():
    steps, v, nan = np.arange(5), np.ones(5), np.full(5, np.nan)
    build = [lambda: F.clipping_figure(steps, v, v, np.zeros(5, bool), 1.0, "norm"),  # nothing clipped
             lambda: F.loss_figure(steps, v, nan, 1.0, "b"), lambda: F.accuracy_figure(steps, nan, 0.1)]
    for b in build:
        assert b().to_dict() == b().to_dict()  # an empty ndarray in to_dict cannot be compared


# --- a finite training set: its loss beside validation's, and the gap -------------------------------
def _evaluated(n=12, every=4):
    steps = np.arange(n)
    val = np.where(steps % every == 0, 0.3 - 0.01 * steps, np.nan)
    train_eval = np.where(steps % every == 0, 0.2 - 0.015 * steps, np.nan)
    return steps, np.linspace(1, 0.1, n), val, train_eval


def test_loss_figure_draws_the_training_set_at_the_evaluations_and_the_last_gap():
    steps, loss, val, te = _evaluated()
    fig = F.loss_figure(steps, loss, val, 1 / 6, "predict 1", train_eval=te)
    trace = next(t for t in fig.data if t.name == F.TRAIN_SET)
    assert list(trace.x) == [0, 4, 8] and trace.y == pytest.approx([0.2, 0.14, 0.08])  # only the evaluations
    gap = next(t for t in fig.data if t.name.startswith("gap"))
    assert list(gap.x) == [8, 8] and gap.y == pytest.approx([0.08, 0.22])  # training set up to validation
    sub = fig.layout.title.subtitle.text.replace("<br>", " ")
    assert "step 8" in sub and "0.22 − training set 0.08 = 0.14" in sub


def test_loss_figure_without_a_training_set_has_no_such_trace():
    steps, loss, val, te = _evaluated()
    for fig in (F.loss_figure(steps, loss, val, 1 / 6, "predict 1"),
                F.loss_figure(steps, loss, val, 1 / 6, "predict 1", train_eval=np.full(12, np.nan))):
        assert not [t for t in fig.data if t.name == F.TRAIN_SET or t.name.startswith("gap")]
        assert not fig.layout.title.subtitle.text


def _run_view(train_size: int):
    from rnn_core.config import make_config
    from rnn_core.history import History
    from rnn_core.view import RunView

    steps, loss, val, te = _evaluated()
    h = History()
    for i in steps:
        h.add_scalars({"step": i, "loss": loss[i], "val_loss": val[i], "grad_norm_pre_clip": 1.0,
                       "grad_norm_post_clip": 1.0, "clipped": False, "lr": 1e-3, "step_time_ms": 1.0,
                       "seq_len_active": 5, "train_eval_loss": te[i] if train_size else None})
    cfg = make_config(seq_len=5, train_size=train_size)
    return RunView("r", cfg, "finished", {"baseline": 1 / 6, "baseline_name": "predict 1", "val_baseline": 0.15}, h)


def test_explores_loss_chart_shows_the_recorded_training_set_loss_only_with_train_size():
    from dashboard.run_figures import build_figures

    fig = build_figures(_run_view(32))["loss"]
    trace = next(t for t in fig.data if t.name == F.TRAIN_SET)
    assert trace.y == pytest.approx([0.2, 0.14, 0.08])
    plain = build_figures(_run_view(0))["loss"]
    assert not [t for t in plain.data if t.name == F.TRAIN_SET]


def test_compares_losses_dash_each_columns_training_set():
    from dashboard import compare_figures as CF

    fig = CF.losses_figure({"a": _run_view(32), "b": _run_view(0)})
    dashed = [t for t in fig.data if t.name.endswith(F.TRAIN_SET)]
    assert [t.name for t in dashed] == [f"a: {F.TRAIN_SET}"] and dashed[0].line.dash == "dash"
    assert dashed[0].y == pytest.approx([0.2, 0.14, 0.08])
    assert "a: 0.14" in fig.layout.title.subtitle.text.replace("<br>", " ")


def test_an_lstm_run_profile_shows_the_cell_gradient_of_its_last_gate_step(tmp_path):
    """From a run on disk to the chart: the dotted line is the stored ‖∂L/∂c_t‖ row of the last
    recorded step that took it (gates_every=3, record_every=2: steps 0 and 6 of 0..10), to the bit."""
    from dashboard.run_figures import build_figures
    from rnn_core import make_config
    from rnn_core.trainer import Trainer
    from rnn_core.view import RunView

    cfg = make_config(cell="lstm", steps=11, seq_len=12, hidden_size=8, record_every=2, gates_every=3)
    tr = Trainer(cfg, out_dir=tmp_path / "r")
    tr.run()
    fig = build_figures(RunView.from_disk(tmp_path / "r"))["profile"]
    (dotted,) = [t for t in fig.data if t.line.dash == "dot"]
    assert dotted.name == "‖∂L/∂c_t‖ (step 6)" and "step 10" in fig.layout.title.text
    stored = tr.recorder.stacked()
    row = list(stored["recorded_steps"]).index(6)
    np.testing.assert_array_equal(np.asarray(dotted.y, dtype=float), stored["cell_grads"][row, 0])
