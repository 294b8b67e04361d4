"""The session's bounded history: caps, even thinning, float32 storage, exact-enough round trips."""
from __future__ import annotations

import numpy as np
import pytest

from dashboard.history import History
from rnn_core import make_config
from rnn_core.recorder import StepRecord
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


def test_shape_change_is_refused():
    h = History()
    h.add(record(0, T=10))
    with pytest.raises(ValueError, match="changed shape"):
        h.add(record(1, T=12))


def test_from_a_real_trainer_recorder():
    tr = Trainer(make_config(steps=6, seq_len=12, hidden_size=8, cell="lstm"))
    h = History()
    for _ in range(6):
        h.add(tr.step())
    again = History.from_recorder(tr.recorder.rows, tr.recorder.arrays)
    np.testing.assert_array_equal(again.recorded_steps(), h.recorded_steps())
    np.testing.assert_allclose(again.recorded("timestep_grads"), h.recorded("timestep_grads"))
    assert again.recorded("gate_mean").shape == (6, 1, 4, 12)
    np.testing.assert_allclose(again.scalars()["loss"], h.scalars()["loss"])
