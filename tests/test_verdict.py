"""The verdict against the input-blind predictor: the rule on synthetic numbers, its parts against
the plain task loss and tasks.baseline_loss, and two real runs on either side of it."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from rnn_core import make_config
from rnn_core.cli import main
from rnn_core.tasks import baseline_loss, make_batch, spec
from rnn_core.trainer import Trainer, task_loss
from rnn_core.verdict import MARGIN, P_MAX, baseline_losses, judge, sequence_losses

N = 256
rng = np.random.default_rng(0)
BASE = rng.uniform(0.0, 0.4, N)  # per-sequence losses of a baseline, mean ~0.2


def test_a_model_equal_to_the_baseline_is_no_beat():
    v = judge(BASE, BASE)
    assert not v.beat and v.margin == 0 and v.p_value == 1.0


def test_a_consistent_but_tiny_gain_fails_the_margin():
    v = judge(BASE * (1 - MARGIN / 2), BASE)  # 0.5% better on every sequence: certain, and too small
    assert v.p_value < 1e-10 and not v.beat


def test_a_large_but_noisy_gain_fails_the_test():
    noise = rng.normal(0, 1.0, N)
    model = BASE * 0.95 + noise - noise.mean()  # 5% lower on average, swamped by per-sequence noise
    v = judge(model, BASE)
    assert v.margin == pytest.approx(0.05) and v.p_value > P_MAX and not v.beat


def test_a_clear_gain_is_a_beat():
    v = judge(BASE * 0.9 + rng.normal(0, 0.01, N), BASE)
    assert v.beat and v.margin > 0.05 and v.p_value < 1e-6


def test_the_p_value_is_the_normal_tail_of_the_paired_t_statistic():
    d = rng.normal(0, 1, N)
    d = (d - d.mean()) / d.std(ddof=1)  # mean 0, sd 1 exactly
    for t, p in ((0.0, 0.5), (1.6448536, 0.05), (2.3263479, 0.01)):
        v = judge(BASE - (d + t / math.sqrt(N)), BASE)
        assert v.p_value == pytest.approx(p, rel=1e-5)


def test_non_finite_model_losses_are_no_beat():
    assert not judge(np.full(N, np.nan), BASE).beat


@pytest.mark.parametrize("values", [dict(task="adding"), dict(task="copy", seq_len=40), dict(task="temporal_order"),
                                    dict(task="digits", seq_len=64), dict(task="sine", horizon=2), dict(task="charlm")])
def test_per_sequence_losses_average_to_the_task_loss_and_the_baseline(values):
    cfg = make_config(**values)
    sp = spec(cfg)
    x, y = make_batch(cfg, torch.Generator().manual_seed(3), 64, split="val")
    pred_shape = (y.shape[0], sp.output_size) if sp.read == "last" else (*y.shape[:2], sp.output_size)
    pred = torch.randn(pred_shape, generator=torch.Generator().manual_seed(4), dtype=torch.float64)
    if sp.loss == "mse":
        pred = pred.view(y.shape)
        target = y.double()
    else:
        target = y
    per = sequence_losses(sp, pred, target)
    assert per.shape == (64,)
    assert float(per.mean()) == pytest.approx(float(task_loss(sp, pred, target)), rel=1e-12)
    assert float(baseline_losses(cfg, sp, x, y).mean()) == pytest.approx(baseline_loss(cfg, x, y), rel=1e-5)


def test_tanh_rnn_at_T200_that_only_learned_the_mean_is_not_a_beat(capsys, tmp_path):
    """Regression: 0.16771 against 0.16780 was called a beat by the badge and the CLI."""
    assert main(["train", "--set", "seq_len=200", "--set", "steps=300", "--out", str(tmp_path / "r"), "--quiet"]) == 0
    line = capsys.readouterr().out.strip().splitlines()[-1]
    assert "not beaten (needs 1% lower and p<0.01" in line and "beat the baseline" not in line
    from rnn_core.store import load_run

    s = load_run(tmp_path / "r").status
    assert s["final_val_loss"] < s["val_baseline"]  # below the bar, by noise
    assert not s["beat_baseline"] and s["beat_margin"] < MARGIN and s["beat_p_value"] > P_MAX


def test_an_irnn_that_learns_adding_is_a_beat():
    tr = Trainer(make_config(cell="rnn", activation="relu", init="identity", clip=1.0, seq_len=50, steps=400))
    tr.run()
    s = tr.summary()
    assert s["beat_baseline"] and s["beat_margin"] > 0.5 and s["beat_p_value"] < 1e-10
    assert s["final_val_loss"] == pytest.approx(float(tr.val_losses.mean()), rel=1e-5)
    assert s["val_baseline"] == pytest.approx(float(tr.val_baseline_losses.mean()))


def test_classification_tasks_record_validation_accuracy():
    tr = Trainer(make_config(task="temporal_order", steps=11, seq_len=20, hidden_size=8))
    tr.run()
    acc = tr.recorder.metrics()["val_accuracy"]
    assert acc.notna().sum() == 2 and acc.dropna().between(0, 1).all()  # steps 0 and 10
    assert tr.summary()["final_val_accuracy"] == acc.dropna().iloc[-1]
    reg = Trainer(make_config(steps=2, seq_len=10, hidden_size=4))
    reg.run()
    assert reg.recorder.metrics()["val_accuracy"].isna().all() and reg.summary()["final_val_accuracy"] is None


def test_outcome_words():
    from rnn_core.summary import outcome

    assert outcome({"status": "diverged"}) == "diverged"
    assert outcome({"status": "failed"}) == "diverged"
    assert outcome({"status": "finished", "beat_baseline": True, "beat_margin": 0.5}) == "solved"
    assert outcome({"status": "finished", "beat_baseline": False, "beat_margin": 0.0005}) == "stuck at baseline"
    assert outcome({"status": "stopped", "beat_baseline": False, "beat_margin": None}) == "stuck at baseline"
    assert outcome({"status": "finished", "beat_baseline": False, "beat_margin": 0.05}) == "still learning"
    assert outcome({"status": "running", "beat_baseline": False, "beat_margin": -0.2}) == "still learning"
