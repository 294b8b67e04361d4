"""The bounded history: caps, even thinning, float32 storage, curriculum padding, exact-enough round trips."""
from __future__ import annotations

import numpy as np
import pytest

from rnn_core.history import History
from rnn_core import make_config
from rnn_core.recorder import StepRecord
from rnn_core.store import load_run
from rnn_core.trainer import Trainer


def record(step: int, T: int = 50, LD: int = 1, grads=None, clipped=False) -> StepRecord:
    g = np.full((LD, T), 0.5 ** (step % 7)) if grads is None else grads
    arrays = {"recorded_steps": np.asarray(step), "timestep_grads": g, "hidden_saturation": np.zeros((LD, T)),
              "spectral_radius": np.full((LD, 1), 0.9), "sigma_max": np.ones((LD, 1))}
    return StepRecord(step, 1.0 / (step + 1), 0.5 if step % 10 == 0 else None, 2.0 + step, 1.0, clipped, 1e-3, 5.0,
                      T, {"l0.hh": 1.0}, arrays)


def test_everything_kept_below_the_caps():
    h = History(max_recorded=64, max_steps=1000)
    for s in range(40):
        h.add(record(s, clipped=s % 3 == 0))
    sc = h.scalars()
    np.testing.assert_array_equal(sc["step"], np.arange(40))
    np.testing.assert_array_equal(sc["clipped"], np.arange(40) % 3 == 0)
    assert np.isnan(sc["val_loss"][1]) and sc["val_loss"][10] == 0.5
    np.testing.assert_array_equal(h.recorded_steps(), np.arange(40))
    assert h.recorded("timestep_grads").shape == (40, 1, 50)


def test_recorded_steps_are_capped_and_thinned_evenly():
    h = History(max_recorded=8, max_steps=1000)
    for s in range(100):
        h.add(record(s))
    kept = h.recorded_steps()
    assert len(kept) <= 8
    assert kept[0] == 0
    gaps = np.diff(kept)
    assert (gaps == gaps[0]).all()  # evenly spaced over the whole run
    assert kept[-1] >= 100 - gaps[0]  # and reaching the present
    assert h.latest_step == 99  # the profile chart always has the newest step


def test_scalars_are_capped_and_thinned_evenly():
    h = History(max_recorded=8, max_steps=16)
    for s in range(100):
        h.add_scalars({"step": s, "loss": 1.0, "val_loss": None, "grad_norm_pre_clip": 1.0,
                       "grad_norm_post_clip": 1.0, "clipped": False, "lr": 0.1, "step_time_ms": 1.0,
                       "seq_len_active": 5})
    steps = h.scalars()["step"]
    assert len(steps) <= 16 and steps[0] == 0
    assert (np.diff(steps) == np.diff(steps)[0]).all()


def test_float32_storage_keeps_vanished_gradients():
    g = np.array([[1e-60, 1e-3, 0.0, np.nan, 1e20]])
    h = History()
    h.add(record(0, T=5, grads=g))
    assert h.rec["timestep_grads"].dtype == np.float32
    back = h.recorded("timestep_grads")[0, 0]
    # float32 would flush 1e-60 to 0; its log10 (-60) survives with ~1e-6 relative error on the value
    assert back[0] == pytest.approx(1e-60, rel=1e-4)
    assert back[1] == pytest.approx(1e-3, rel=1e-5)
    assert back[2] == pytest.approx(1e-300, rel=1e-3)  # exact zero at the floor
    assert np.isnan(back[3])
    assert back[4] == pytest.approx(1e20, rel=1e-5)
    assert h.cols["grad_norm_pre_clip"].dtype == np.float64  # an exploding norm passes float32's range


def test_horizon_and_its_change():
    T = 50
    h = History()
    h.add(record(0, grads=(0.5 ** (T - 1 - np.arange(T)))[None]))
    assert h.horizon_last == 10 and h.horizon_prev is None
    h.add(record(1, grads=(0.8 ** (T - 1 - np.arange(T)))[None]))
    assert (h.horizon_prev, h.horizon_last) == (10, 31)


def test_memory_after_10000_default_steps_is_bounded():
    h = History()
    for s in range(10_000):
        h.add(record(s))
    assert len(h.recorded_steps()) <= 500
    assert h.n == 10_000
    assert h.nbytes() < 5 * 2 ** 20  # the bench prints the figure; 50 MB is the budget


def test_a_change_of_layers_is_refused():
    h = History()
    h.add(record(0, LD=1))
    with pytest.raises(ValueError, match="changed shape"):
        h.add(record(1, LD=2))


def test_a_growing_curriculum_is_padded_with_nan_not_refused():
    """Regression: the app crashed with 'timestep_grads changed shape from (1, 10) to (1, 11)'."""
    h = History()
    h.add(record(0, T=10))
    h.add(record(1, T=11))
    g = h.recorded("timestep_grads")
    assert g.shape == (2, 1, 11)
    assert np.isnan(g[0, 0, 10]) and np.isfinite(g[0, 0, :10]).all() and np.isfinite(g[1]).all()


def test_a_curriculum_run_feeds_the_history_at_full_seq_len():
    tr = Trainer(make_config(curriculum=True, curriculum_start=5, seq_len=25, steps=5, hidden_size=4, cell="lstm", record_every=1))
    h = History()
    for _ in range(5):
        h.add(tr.step())
    g = h.recorded("timestep_grads")
    assert g.shape == (5, 1, 25) and h.latest["gate_mean"].shape == (1, 4, 25)
    for k, n in enumerate([5, 10, 15, 20, 25]):
        assert np.isfinite(g[k, 0, :n]).all() and np.isnan(g[k, 0, n:]).all()


def test_only_heatmap_arrays_keep_rows_so_a_big_model_stays_bounded():
    """T=2000, 4 bidirectional LSTM layers: a row of gate_mean is 256 kB; 500 of them would be 128 MB."""
    LD, G, T = 8, 4, 2000
    h = History()
    gates = np.full((LD, G, T), 0.5, np.float32)
    for s in range(300):
        arrays = {"recorded_steps": np.asarray(s), "timestep_grads": np.full((LD, T), 0.1),
                  "cell_grads": np.full((LD, T), 0.2), "hidden_saturation": np.zeros((LD, T)),
                  "gate_mean": gates, "gate_saturation": gates, "spectral_radius": np.ones((LD, G)),
                  "sigma_max": np.ones((LD, G))}
        h.add(StepRecord(s, 1.0, None, 1.0, 1.0, False, 1e-3, 1.0, T, {}, arrays))
    assert set(h.rec) == {"timestep_grads", "cell_grads"}  # the rest only as `latest`
    assert h.latest["gate_mean"].shape == (LD, G, T)
    row_bytes = 2 * LD * T * 4
    assert h.n_rec * row_bytes <= h.max_row_bytes
    assert h.nbytes() <= h.max_row_bytes + 2 * row_bytes + 3 * 2**20  # rows + their growth + latest + scalars
    kept = h.recorded_steps()
    assert kept[0] == 0 and (np.diff(kept) == np.diff(kept)[0]).all()


def test_the_last_finite_profile_survives_a_divergence():
    h = History()
    h.add(record(0))
    h.add(record(1))
    h.add(record(2, grads=np.full((1, 50), np.nan)))
    assert h.latest_step == 2 and np.isnan(h.latest["timestep_grads"]).all()
    assert h.latest_finite_step == 1 and np.isfinite(h.latest_finite["timestep_grads"]).all()


def test_a_real_diverging_run_keeps_its_last_finite_profile():
    cfg = make_config(cell="rnn", activation="relu", init="identity", optimizer="sgd", lr=10.0,
                      steps=20, seq_len=60, hidden_size=16, record_every=1)  # step 0 is finite, the update then blows up
    tr, h = Trainer(cfg), History()
    while not tr.done:
        h.add(tr.step())
    assert tr.status == "diverged" and not np.isfinite(h.latest["timestep_grads"]).all()
    assert h.latest_finite_step is not None and h.latest_finite_step < tr.diverged_at
    assert np.isfinite(h.latest_finite["timestep_grads"]).all()


def test_from_a_real_trainer_recorder():
    tr = Trainer(make_config(steps=6, seq_len=12, hidden_size=8, cell="lstm", record_every=1))
    h = History()
    for _ in range(6):
        h.add(tr.step())
    again = History.from_recorder(tr.recorder.rows, tr.recorder.arrays)
    np.testing.assert_array_equal(again.recorded_steps(), h.recorded_steps())
    np.testing.assert_allclose(again.recorded("timestep_grads"), h.recorded("timestep_grads"))
    assert again.recorded("cell_grads").shape == (6, 1, 12)
    assert again.recorded("gate_mean") is None and again.latest["gate_mean"].shape == (1, 4, 12)
    np.testing.assert_allclose(again.scalars()["loss"], h.scalars()["loss"])


@pytest.mark.parametrize("values", [dict(cell="lstm", record_every=2, eval_every=3),
                                    dict(cell="lstm", gates_every=3),
                                    dict(task="digits", seq_len=64, cell="gru", attention="dot"),
                                    dict(curriculum=True, curriculum_start=4, seq_len=16)])
def test_a_saved_run_gives_the_same_history_as_the_live_one(tmp_path, values):
    cfg = make_config(**{"steps": 10, "seq_len": 12, "hidden_size": 8, "record_every": 1, **values})
    tr, live = Trainer(cfg, out_dir=tmp_path / "r"), History()
    while not tr.done:
        live.add(tr.step())
    saved = History.from_run(load_run(tmp_path / "r"))
    a, b = live.scalars(), saved.scalars()
    assert a.keys() == b.keys()
    for name in a:
        assert a[name].dtype == b[name].dtype, name
        np.testing.assert_array_equal(a[name], b[name], err_msg=name)
    np.testing.assert_array_equal(live.recorded_steps(), saved.recorded_steps())
    assert live.rec.keys() == saved.rec.keys()
    for name in live.rec:
        np.testing.assert_array_equal(live.recorded(name), saved.recorded(name), err_msg=name)
    assert live.latest.keys() == saved.latest.keys() and live.latest_step == saved.latest_step
    for name in live.latest:
        np.testing.assert_array_equal(live.latest[name], saved.latest[name], err_msg=name)
    assert (live.horizon_last, live.horizon_prev) == (saved.horizon_last, saved.horizon_prev)
    assert live.gates_step == saved.gates_step


def test_the_gates_shown_are_the_last_ones_taken():
    """gates_every=3, record_every=2: gates on steps 0, 6, 12; on the recorded steps between, the
    History keeps the last ones taken and says which step they are from."""
    tr = Trainer(make_config(cell="gru", steps=11, seq_len=12, hidden_size=8, record_every=2, gates_every=3))
    h = History()
    seen = []
    while not tr.done:
        rec = tr.step()
        h.add(rec)
        if rec.arrays is not None:
            seen.append((rec.step, h.gates_step, h.latest["gate_mean"].copy()))
    assert [(s, g) for s, g, _ in seen] == [(0, 0), (2, 0), (4, 0), (6, 6), (8, 6), (10, 6)]
    stacked = tr.recorder.stacked()["gate_mean"]  # (6, 1, 3, 12): NaN rows where not taken
    for i, (_, _, gates) in enumerate(seen):
        np.testing.assert_array_equal(gates, stacked[0 if i < 3 else 3])
    assert np.isnan(stacked[[1, 2, 4, 5]]).all() and np.isfinite(stacked[[0, 3]]).all()
    assert h.recorded_steps().tolist() == [0, 2, 4, 6, 8, 10]  # ‖∂L/∂h_t‖ on every recorded step
    assert np.isfinite(h.recorded("timestep_grads")).all()
