"""Sweeps: the spec, the local pool and Ray runners, resume, the CLI, the trainability map and the page."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from dashboard.map_figures import axis_order, cell_runs, cell_table, trainability_map


# --- the map builder ---------------------------------------------------------------------------
def _points() -> pd.DataFrame:
    """A 2 × 2 grid, 3 seeds, with one cell not run at all and one seed still waiting."""
    rows = []
    table = {  # (gain, T): verdicts of seeds 0, 1, 2
        (0.5, 10): ("solved", "solved", "stuck at baseline"),
        (1.0, 10): ("solved", "diverged", ""),  # seed 2 not run yet
        (0.5, 100): ("stuck at baseline",) * 3,
        (1.0, 100): ("", "", ""),  # nothing finished
    }
    for (gain, T), verdicts in table.items():
        for seed, v in enumerate(verdicts):
            done = bool(v)
            rows.append(dict(init_gain=gain, seq_len=T, seed=seed, verdict=v,
                             final_val_loss=(0.01 * (seed + 1) if v == "solved" else 0.2) if done else np.nan,
                             baseline=0.17 if done else np.nan, memory_horizon=T - seed if done else np.nan,
                             log10_ratio=-float(seed) if done else np.nan, run=f"s-{gain}-{T}-{seed}"))
    return pd.DataFrame(rows)


def test_map_cells_aggregate_seeds_and_leave_unfinished_blank():
    cells = cell_table(_points(), "init_gain", "seq_len", "verdict").set_index(["x_label", "y_label"])
    assert cells.loc[("0.5", "10"), "z"] == pytest.approx(2 / 3)
    assert cells.loc[("0.5", "10"), "text"] == "2/3"
    assert cells.loc[("1", "10"), "z"] == pytest.approx(1 / 2)  # the waiting seed does not count
    assert cells.loc[("1", "10"), "text"] == "1/2 ↯1 …"
    assert cells.loc[("0.5", "100"), "z"] == 0
    assert np.isnan(cells.loc[("1", "100"), "z"])
    horizon = cell_table(_points(), "init_gain", "seq_len", "memory_horizon").set_index(["x_label", "y_label"])
    assert horizon.loc[("0.5", "100"), "z"] == 99  # median of 100, 99, 98
    ratio = cell_table(_points(), "init_gain", "seq_len", "loss_ratio").set_index(["x_label", "y_label"])
    assert ratio.loc[("0.5", "10"), "z"] == pytest.approx(0.02 / 0.17)  # median of 0.01, 0.02, 0.2 over 0.17


def test_map_figure_hover_carries_every_seed_and_blank_cells():
    fig = trainability_map(_points(), "init_gain", "seq_len", "verdict")
    heat, marks = fig.data
    assert list(heat.x) == ["0.5", "1"] and list(heat.y) == ["10", "100"]
    z = np.array(heat.z, dtype=float)
    assert z[0, 0] == pytest.approx(2 / 3) and np.isnan(z[1, 1])  # (gain 1, T 100) has no finished seed
    hover = dict(zip(zip(marks.x, marks.y), marks.hovertext))
    for seed in range(3):
        assert f"seed {seed}: " in hover[("0.5", "10")]
    assert "seed 2: not run yet" in hover[("1", "10")]
    runs = dict(zip(zip(marks.x, marks.y), marks.customdata))
    assert runs[("1", "100")] == "s-1.0-100-0,s-1.0-100-1,s-1.0-100-2"
    for value in ("loss_ratio", "memory_horizon", "log10_ratio"):
        assert len(trainability_map(_points(), "init_gain", "seq_len", value).data) == 2
    with pytest.raises(ValueError, match="not one of"):
        trainability_map(_points(), "init_gain", "seq_len", "nonsense")


def test_map_axes_sorted_numerically_and_cell_runs():
    pts = _points()
    assert axis_order(pd.Series([100, 10, 20])) == ["10", "20", "100"]
    assert axis_order(pd.Series(["rnn", "lstm", "rnn"])) == ["rnn", "lstm"]
    assert list(cell_runs(pts, "init_gain", "seq_len", "0.5", "10")["run"]) == ["s-0.5-10-0", "s-0.5-10-1",
                                                                                 "s-0.5-10-2"]


def test_map_builds_at_1000_points():
    rng = np.random.default_rng(0)
    gains, lengths, seeds = np.linspace(0.5, 2.0, 16), [10, 20, 30, 50, 70, 100, 140, 200, 280, 330, 360, 400,
                                                       420, 450, 480, 500, 520, 540, 560, 580, 600], range(3)
    g, t, s = (a.ravel() for a in np.meshgrid(gains, lengths, list(seeds), indexing="ij"))
    n = len(g)
    assert n >= 1000
    pts = pd.DataFrame(dict(init_gain=g, seq_len=t, seed=s,
                            verdict=rng.choice(["solved", "stuck at baseline", "diverged", ""], n),
                            final_val_loss=rng.random(n), baseline=0.17, memory_horizon=rng.integers(1, 100, n),
                            log10_ratio=-10 * rng.random(n), run=[f"r{k}" for k in range(n)]))
    fig = trainability_map(pts, "init_gain", "seq_len", "log10_ratio")
    assert np.array(fig.data[0].z, dtype=float).shape == (len(lengths), len(gains))
    assert len(fig.data[1].x) == len(gains) * len(lengths)
