"""The cost estimate shown beside Train and used to refuse configs this server cannot serve."""
from __future__ import annotations

import pytest

from rnn_core import budget, make_config


def test_flops_of_one_layer_by_hand():
    # rnn, I=2 (adding), H=4, T=3, B=5: one gate block, 2·G·H·(I+H) FLOPs per (t, b)
    cfg = make_config(hidden_size=4, seq_len=3, batch_size=5, eval_every=10)
    per_pass = 2 * 1 * 4 * (2 + 4) * 3 * 5
    assert budget.flops_per_step(cfg) == pytest.approx(per_pass * (3.5 + 256 / 5 / 10))


def test_a_second_layer_reads_both_directions():
    one = make_config(cell="lstm", hidden_size=8, layers=2, bidirectional=True, seq_len=4, batch_size=2, eval_every=10)
    H, D, G = 8, 2, 4
    per_pass = D * G * H * (2 + H) * 2 * 4 * 2 + D * G * H * (D * H + H) * 2 * 4 * 2
    assert budget.flops_per_step(one) == pytest.approx(per_pass * (3.5 + 256 / 2 / 10))


@pytest.mark.parametrize("key,small,big", [("seq_len", 100, 1000), ("hidden_size", 32, 256), ("layers", 1, 3),
                                           ("batch_size", 16, 256)])
def test_the_estimate_grows_with_every_shape(key, small, big):
    a, b = budget.estimate(make_config(cell="gru", **{key: small})), budget.estimate(make_config(cell="gru", **{key: big}))
    assert b.bytes > a.bytes and b.step_s > a.step_s


def test_the_default_fits_and_the_server_killer_is_refused_in_one_line():
    limits = budget.Limits()
    assert limits.check(budget.estimate(make_config())) is None
    killer = make_config(cell="lstm", seq_len=2000, hidden_size=512, layers=4, bidirectional=True, steps=1000)
    msg = limits.check(budget.estimate(killer))
    assert msg and "memory" in msg and "\n" not in msg and "lower seq_len" in msg


def test_a_slow_step_is_refused_even_when_memory_fits():
    limits = budget.Limits(max_bytes=2**50, max_step_s=0.001)
    assert "per step" in limits.check(budget.estimate(make_config(cell="lstm", seq_len=500)))


def test_the_run_time_is_steps_times_the_step():
    est = budget.estimate(make_config(steps=1234))
    assert est.run_s == pytest.approx(1234 * est.step_s)
    assert "ms/step" in est.describe() and "for the run" in est.describe()
