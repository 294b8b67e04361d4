"""Each task's baseline, computed two ways: its closed form and the loss of the input-blind predictor."""
import math

import numpy as np
import pytest
import torch

from rnn_core.config import make_config
from rnn_core.tasks import make_batch, spec
from rnn_core.trainer import task_loss


def _batch(cfg, B=4096, split="train"):
    return make_batch(cfg, torch.Generator().manual_seed(0), B, split=split)


def test_adding_baseline_and_layout():
    cfg = make_config(task="adding", seq_len=40)
    x, y = _batch(cfg)
    assert x.shape == (40, 4096, 2) and y.shape == (4096, 1)
    marks = x[:, :, 1]
    assert torch.all(marks.sum(0) == 2)
    assert torch.all(marks[:20].sum(0) == 1) and torch.all(marks[20:].sum(0) == 1)  # one mark per half
    torch.testing.assert_close(y[:, 0], (x[:, :, 0] * marks).sum(0))
    mse_of_one = float(task_loss(spec(cfg), torch.ones_like(y), y))
    assert spec(cfg).baseline == pytest.approx(1 / 6)
    assert mse_of_one == pytest.approx(1 / 6, rel=0.05)


def test_copy_baseline_is_the_loss_of_blanks_then_uniform():
    T = 60
    cfg = make_config(task="copy", seq_len=T)
    x, y = _batch(cfg, B=64)
    assert x.shape == (T, 64, 10) and y.shape == (T, 64)
    symbols = x[:10].argmax(2)
    assert torch.all((symbols >= 1) & (symbols <= 8))
    assert torch.all(y[T - 10:] == symbols) and torch.all(y[:T - 10] == 0)
    assert torch.all(x[T - 11].argmax(1) == 9)  # the delimiter
    logits = torch.full((T, 64, 10), -1e9)
    logits[:T - 10, :, 0] = 0.0  # certain blank
    logits[T - 10:, :, 1:9] = 0.0  # uniform over the 8 symbols
    assert float(task_loss(spec(cfg), logits, y)) == pytest.approx(10 * math.log(8) / T, rel=1e-6)
    assert spec(cfg).baseline == pytest.approx(10 * math.log(8) / T)


def test_temporal_order_classes_follow_the_two_relevant_symbols():
    cfg = make_config(task="temporal_order", seq_len=100)
    x, y = _batch(cfg)
    tokens = x.argmax(2)  # (T, B)
    relevant = (tokens == 4) | (tokens == 5)
    assert torch.all(relevant.sum(0) == 2)
    first = torch.stack([tokens[relevant[:, b], b] for b in range(tokens.shape[1])])  # (B, 2)
    torch.testing.assert_close(y, 2 * (first[:, 0] - 4) + (first[:, 1] - 4))
    counts = np.bincount(y.numpy(), minlength=4) / len(y)
    assert np.all(np.abs(counts - 0.25) < 0.03)
    uniform = torch.zeros(len(y), 4)
    assert float(task_loss(spec(cfg), uniform, y)) == pytest.approx(spec(cfg).baseline) == pytest.approx(math.log(4))


@pytest.mark.parametrize("mode, T, I", [("pixel", 64, 1), ("row", 8, 8)])
def test_digits_shapes_and_prior_baseline(mode, T, I):
    cfg = make_config(task="digits", digits_mode=mode, seq_len=T)
    x, y = _batch(cfg, B=32)
    assert x.shape == (T, 32, I) and y.shape == (32,)
    assert 0.0 <= float(x.min()) and float(x.max()) <= 1.0
    assert spec(cfg).baseline == pytest.approx(math.log(10), abs=0.01)


def test_digits_distinct_draws_each_training_image_at_most_once():
    """What a fixed training set of digits is drawn with: the whole 1500-image split, no repeats."""
    cfg = make_config(task="digits", digits_mode="row", seq_len=8)
    x, y = make_batch(cfg, torch.Generator().manual_seed(0), 1500, distinct=True)
    images = x.transpose(0, 1).reshape(1500, -1).numpy()
    assert len({r.tobytes() for r in images}) == 1500
    drawn = make_batch(cfg, torch.Generator().manual_seed(0), 1500)[0].transpose(0, 1).reshape(1500, -1).numpy()
    assert len({r.tobytes() for r in drawn}) < 1500  # with replacement, as the stream draws, some repeat


def test_sine_targets_are_the_series_shifted_by_forecast_steps():
    cfg = make_config(task="sine", seq_len=30, forecast_steps=4)
    gen = torch.Generator().manual_seed(3)
    x, y = make_batch(cfg, gen, 8)
    assert x.shape == y.shape == (30, 8, 1)
    torch.testing.assert_close(x[4:], y[:-4])
    xb, yb = make_batch(cfg, gen, 2048)
    persistence = float(task_loss(spec(cfg), xb, yb))
    assert persistence == pytest.approx(spec(cfg).baseline, rel=0.1)


def test_charlm_next_character_and_unigram_baseline():
    from rnn_core.tasks import _corpus

    cfg = make_config(task="charlm", seq_len=40)
    x, y = _batch(cfg, B=16)
    assert x.dtype == torch.long and x.shape == y.shape == (40, 16)
    torch.testing.assert_close(x[1:], y[:-1])
    vocab, train, _ = _corpus()
    p = torch.bincount(train, minlength=len(vocab)).double() / len(train)
    unigram = torch.log(p.clamp_min(1e-30)).float().expand(40, 16, -1)
    # the unigram predictor's loss on training text is the baseline (its entropy)
    x_all = train[: 40 * 16 * 50].view(-1)
    ent = float(-(p[x_all].log()).mean())
    assert spec(cfg).baseline == pytest.approx(ent, rel=0.05)
    assert spec(cfg).tokens and spec(cfg).input_size == len(vocab)
    assert float(task_loss(spec(cfg), unigram, y)) == pytest.approx(spec(cfg).baseline, rel=0.25)


def test_same_seed_same_data():
    cfg = make_config(task="adding")
    a = make_batch(cfg, torch.Generator().manual_seed(9), 4)
    b = make_batch(cfg, torch.Generator().manual_seed(9), 4)
    torch.testing.assert_close(a, b)


@pytest.mark.parametrize("values", [dict(task="adding"), dict(task="copy", seq_len=40), dict(task="temporal_order"),
                                    dict(task="digits", seq_len=64), dict(task="sine", forecast_steps=2), dict(task="charlm")])
def test_the_baseline_predictor_on_a_large_batch_scores_the_closed_form(values):
    from rnn_core.tasks import baseline_loss

    cfg = make_config(**values)
    x, y = _batch(cfg, B=4096, split="val")
    assert baseline_loss(cfg, x, y) == pytest.approx(spec(cfg).baseline, rel=0.05)


def test_beating_the_baseline_is_judged_on_the_validation_batch_itself():
    """Seed 0's 256 validation sequences for adding at T=50 sit below 1/6: predicting their mean is no win."""
    from rnn_core.trainer import Trainer

    tr = Trainer(make_config(task="adding", seq_len=50, steps=1))
    xv, yv = tr.val_batch
    best_constant = float(((yv - yv.mean()) ** 2).mean())
    assert tr.val_baseline == pytest.approx(best_constant)
    assert tr.val_baseline < spec(tr.cfg).baseline - 0.01
    tr.last_val, tr.val_losses = best_constant, tr.val_baseline_losses  # only learned the mean: below 1/6, no win
    assert not tr.summary()["beat_baseline"]
    tr.last_val, tr.val_losses = 0.9 * best_constant, 0.9 * tr.val_baseline_losses  # 10% better on every sequence
    assert tr.summary()["beat_baseline"]
