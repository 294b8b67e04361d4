"""A finite training set (train_size): reused in epochs, apart from validation, resumable, and the
train/validation gap it opens, measured two independent ways."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as F

from rnn_core import rules
from rnn_core.config import ConfigError, make_config
from rnn_core.store import load_run
from rnn_core.trainer import Trainer
from rnn_core.trainset import SET_SEED_OFFSET, TRAIN_EVAL, _rows, draw_set


def _keys(x, y, y_axis=0) -> list[bytes]:
    return _rows(x, y, y_axis)


def _seen_batches(tr: Trainer, steps: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """The (x, y) batches the trainer's steps draw, captured at the set (before input noise)."""
    seen = []
    batch = tr.train_set.batch

    def spy(B, gen):
        out = batch(B, gen)
        seen.append(out)
        return out

    tr.train_set.batch = spy
    tr.run(max_steps=steps)
    return seen


# --- the set is reused --------------------------------------------------------------------------
def test_an_epoch_serves_every_sequence_once_and_the_next_epoch_the_same_ones():
    cfg = make_config(train_size=48, batch_size=16, steps=12, seq_len=10, hidden_size=8, eval_every=100)
    tr = Trainer(cfg)
    seen = _seen_batches(tr, 9)  # 9 × 16 = 144 sequences = 3 epochs of 48
    keys = [k for x, y in seen for k in _keys(x, y)]
    epochs = [keys[i:i + 48] for i in range(0, 144, 48)]
    the_set = set(_keys(tr.train_set.x, tr.train_set.y))
    assert len(the_set) == 48  # 48 distinct sequences
    for e in epochs:
        assert len(set(e)) == 48 and set(e) == the_set  # each epoch: every sequence exactly once
    assert epochs[0] != epochs[1]  # reshuffled: the same sequences in another order
    assert tr.train_set.epoch == 3 and tr.train_set.pos == 48


def test_a_set_smaller_than_the_batch_wraps():
    cfg = make_config(train_size=5, batch_size=12, steps=4, seq_len=8, hidden_size=8)
    tr = Trainer(cfg)
    seen = _seen_batches(tr, 2)  # 24 sequences = epochs of 5: 4 whole ones and 4 of the 5th
    keys = [k for x, y in seen for k in _keys(x, y)]
    assert all(x.shape[1] == 12 and y.shape[0] == 12 for x, y in seen)  # (T, B, I), (B, 1): full batches
    for i in range(0, 20, 5):
        assert len(set(keys[i:i + 5])) == 5
    assert set(keys) == set(_keys(tr.train_set.x, tr.train_set.y))
    assert tr.train_set.epoch == 5 and tr.train_set.pos == 4


def test_train_size_zero_draws_fresh_sequences_every_step():
    tr = Trainer(make_config(steps=3, seq_len=10, hidden_size=8))
    assert tr.train_set is None and tr.train_eval_batch is None
    tr.run()
    assert all(r["train_eval_loss"] is None for r in tr.recorder.rows)
    assert "generalization_gap" not in tr.summary()


@pytest.mark.parametrize("task, seq_len", [("adding", 20), ("copy", 25), ("temporal_order", 12), ("sine", 20),
                                           ("charlm", 20), ("digits", 64)])
def test_the_set_is_seeded_distinct_and_holds_no_validation_sequence(task, seq_len):
    cfg = make_config(task=task, seq_len=seq_len, train_size=300, hidden_size=8, steps=2)
    tr = Trainer(cfg)
    y_axis = 0 if tr.spec.read == "last" else 1
    keys = _keys(tr.train_set.x, tr.train_set.y, y_axis)
    val = set(_keys(*(t.cpu() for t in tr.val_batch), y_axis))
    assert len(keys) == 300 and len(set(keys)) == 300
    assert not val & set(keys)
    again = Trainer(cfg)  # rebuilt from the seed: what a resumed run relies on
    assert torch.equal(again.train_set.x, tr.train_set.x) and torch.equal(again.train_set.y, tr.train_set.y)
    other = Trainer(make_config(cfg.model_dump(), seed=1))
    assert not torch.equal(other.train_set.x, tr.train_set.x)


def test_a_small_discrete_task_keeps_validation_out_and_repeats_only_when_it_must():
    """temporal_order at T=8 has 4^4 distractor layouts × 4 classes = 1,024 sequences; the 256
    validation sequences take some of them, so 1,000 training sequences must repeat."""
    cfg = make_config(task="temporal_order", seq_len=8, train_size=1000, hidden_size=8, steps=1)
    tr = Trainer(cfg)
    keys = _keys(tr.train_set.x, tr.train_set.y)
    val = set(_keys(*tr.val_batch))
    assert not val & set(keys)
    assert len(set(keys)) <= 1024 - len(val) and len(set(keys)) > 500  # every sequence found, none from val


def test_validation_is_drawn_apart_from_the_set():
    """The validation batch is the one a train_size=0 run uses: the set's own generator does not move it."""
    a = Trainer(make_config(train_size=64, seq_len=10, hidden_size=8))
    b = Trainer(make_config(seq_len=10, hidden_size=8))
    assert torch.equal(a.val_batch[0], b.val_batch[0]) and a.val_baseline == b.val_baseline
    x, y = draw_set(a.cfg, a.spec, 64, tuple(t.cpu() for t in a.val_batch))
    assert torch.equal(x, a.train_set.x)  # draw_set alone rebuilds it: seed + SET_SEED_OFFSET
    assert SET_SEED_OFFSET not in (1_000_003, 2_000_003)


# --- resume -----------------------------------------------------------------------------------
def test_a_resumed_run_equals_an_unbroken_one(tmp_path):
    """Stopped mid-epoch (7 steps × 16 = 112 of 3 epochs of 40) and resumed: the same set, order and
    position, so the same numbers file for file."""
    cfg = make_config(train_size=40, batch_size=16, steps=14, seq_len=12, hidden_size=8, dropout=0.2,
                      input_noise=0.05, eval_every=3, record_every=2)
    Trainer(cfg, out_dir=tmp_path / "whole").run()
    part = Trainer(cfg, out_dir=tmp_path / "part")
    part.run(max_steps=7)
    part.stop()
    assert part.train_set.pos == 32  # mid-epoch
    resumed = Trainer.resume(tmp_path / "part")
    assert resumed.train_set.pos == 32 and torch.equal(resumed.train_set.order, part.train_set.order)
    resumed.run()
    a, b = load_run(tmp_path / "whole"), load_run(tmp_path / "part")
    pd.testing.assert_frame_equal(a.metrics.drop(columns="step_time_ms"), b.metrics.drop(columns="step_time_ms"))
    assert a.metrics.train_eval_loss.notna().sum() == 6  # steps 0, 3, 6, 9, 12 and the last, 13
    for name in a.arrays:
        np.testing.assert_array_equal(a.arrays[name], b.arrays[name], err_msg=name)
    sa, sb = dict(a.status), dict(b.status)
    sa.pop("reason"), sb.pop("reason")
    assert sa == sb and sa["generalization_gap"] is not None


def _files_equal(a_dir, b_dir):
    a, b = load_run(a_dir), load_run(b_dir)
    pd.testing.assert_frame_equal(a.metrics.drop(columns="step_time_ms"), b.metrics.drop(columns="step_time_ms"))
    for name in a.arrays:
        np.testing.assert_array_equal(a.arrays[name], b.arrays[name], err_msg=name)


# batch 32 = the whole set: every step begins a new epoch, so an undone step must put the old order back
STOP_CFG = dict(train_size=32, batch_size=32, steps=8, seq_len=10, hidden_size=8, eval_every=3, input_noise=0.1)


@pytest.mark.parametrize("where", ["backward", "train evaluation"])
def test_a_stop_inside_a_step_puts_the_epoch_back(tmp_path, where):
    cfg = make_config(**STOP_CFG)
    Trainer(cfg, out_dir=tmp_path / "whole").run()
    tr = Trainer(cfg, out_dir=tmp_path / "part")
    tr.run(max_steps=3)  # the next step, 3, evaluates
    before = (tr.train_set.order.clone(), tr.train_set.pos, tr.train_set.epoch)
    weights = {k: v.detach().clone() for k, v in tr.model.state_dict().items()}
    if where == "backward":
        handle = tr.model.readout.register_full_backward_hook(lambda m, gi, go: tr.request_stop())
    else:  # the validation forward's readout asks; the training set's forward, next, stops at its first layer
        handle = tr.model.readout.register_forward_hook(
            lambda m, i, o: None if m.training else tr.request_stop())
    assert tr.step() is None
    handle.remove()
    assert tr.reason == "stopped by request during step 3" and tr.step_index == 3
    assert torch.equal(tr.train_set.order, before[0]) and (tr.train_set.pos, tr.train_set.epoch) == before[1:]
    assert all(torch.equal(v, weights[k]) for k, v in tr.model.state_dict().items())
    Trainer.resume(tmp_path / "part").run()
    _files_equal(tmp_path / "whole", tmp_path / "part")


def test_state_and_load_state_carry_the_epoch():
    cfg = make_config(train_size=20, batch_size=8, steps=10, seq_len=10, hidden_size=8, eval_every=2)
    a = Trainer(cfg)
    a.run(max_steps=3)
    b = Trainer(cfg)
    b.load_state(a.state())
    assert b.train_set.pos == a.train_set.pos == 4 and torch.equal(b.train_set.order, a.train_set.order)
    a.run(), b.run()
    assert a.summary() == b.summary()


# --- the rules --------------------------------------------------------------------------------
@pytest.mark.parametrize("values, words", [
    ({"train_size": 100, "curriculum": True}, "train_size=100 cannot be combined with curriculum=true"),
    ({"task": "digits", "train_size": 2000}, "1500 training images, allowed 0..1500"),
    ({"train_size": 100_000}, "allowed train_size 0..40000 at this seq_len"),
    ({"train_size": -1}, "train_size=-1 is invalid (allowed: int in 0..100000)"),
])
def test_a_train_size_that_cannot_work_is_one_clear_line(values, words):
    with pytest.raises(ConfigError) as err:
        make_config(values)
    assert words in str(err.value) and "\n" not in str(err.value)


def test_the_digits_limit_is_the_split_tasks_makes():
    from rnn_core.tasks import _digits_data

    (_, train_labels), _ = _digits_data()
    assert len(train_labels) == rules.DIGITS_TRAIN_IMAGES
    make_config(task="digits", train_size=1500)  # the whole split is allowed


def test_the_cli_takes_train_size(tmp_path):
    from rnn_core.cli import main

    out = tmp_path / "r"
    assert main(["train", "--set", "train_size=16", "--set", "steps=3", "--set", "seq_len=8", "--out", str(out)]) == 0
    assert json.loads((out / "config.json").read_text())["train_size"] == 16


# --- the gap ------------------------------------------------------------------------------------
GAP_CFG = dict(task="adding", seq_len=10, hidden_size=128, lr=1e-2, steps=300, eval_every=50, record_every=1000)


def test_a_small_set_is_learnt_by_heart_and_a_fresh_stream_is_not():
    """32 sequences, 300 steps at lr 1e-2: the training set's loss falls far below the validation
    loss. With fresh sequences every step, 256 new training-stream sequences score like validation."""
    small = Trainer(make_config(**GAP_CFG, train_size=32))
    small.run()
    s = small.summary()
    assert s["final_train_eval_loss"] < 0.02 and s["generalization_gap"] > 0.1
    assert s["generalization_gap"] == pytest.approx(s["final_val_loss"] - s["final_train_eval_loss"])

    fresh = Trainer(make_config(**GAP_CFG))
    fresh.run()
    from rnn_core.tasks import make_batch

    x, y = make_batch(fresh.cfg, fresh.gen, 256)  # unseen, from the training stream itself
    fresh.model.eval()
    with torch.no_grad():
        stream_loss = float(F.mse_loss(fresh.model(x, fresh.engine, record=False).pred, y))
    assert abs(fresh.summary()["final_val_loss"] - stream_loss) < 0.05  # no gap: both are unseen data
    assert fresh.summary()["final_val_loss"] < s["final_val_loss"]  # and it generalises better than the small set


def test_train_eval_loss_is_the_saved_models_loss_on_the_sets_sequences(tmp_path):
    """Oracle: the recorded train_eval_loss equals the loss of the saved weights, run through the other
    engine, on the sequences the first epoch's batches held (all 32 of the set, so order does not matter)."""
    from safetensors.torch import load_file

    from rnn_core.model import build_model

    cfg = make_config(train_size=32, batch_size=8, steps=10, seq_len=12, hidden_size=16, eval_every=4,
                      dropout=0.3, input_noise=0.2, cell="gru")
    tr = Trainer(cfg, out_dir=tmp_path / "r")
    assert tr.engine == "fused"
    seen = _seen_batches(tr, cfg.steps)
    xs = torch.cat([x for x, _ in seen[:4]], 1)  # the first epoch: 4 batches of 8, before input noise
    ys = torch.cat([y for _, y in seen[:4]], 0)
    assert len(set(_keys(xs, ys))) == 32
    model = build_model(cfg, tr.spec)
    model.load_state_dict(load_file(tmp_path / "r" / "model.safetensors"))
    model.eval()  # no dropout; the saved weights are those after the last step, when the last evaluation ran
    with torch.no_grad():
        pred = model(xs, "unrolled", record=False).pred
    by_hand = float(((pred.double() - ys.double()) ** 2).mean())
    saved = load_run(tmp_path / "r").metrics
    assert saved.train_eval_loss.notna().tolist() == [s % 4 == 0 or s == 9 for s in range(10)]
    assert saved.train_eval_loss.iloc[-1] == pytest.approx(by_hand, rel=1e-4)
    assert json.loads((tmp_path / "r" / "status.json").read_text())["final_train_eval_loss"] == pytest.approx(
        by_hand, rel=1e-4)


def test_the_training_loss_is_measured_on_at_most_256_sequences():
    tr = Trainer(make_config(train_size=300, seq_len=10, hidden_size=8, steps=1))
    assert tr.train_eval_batch[0].shape == (10, TRAIN_EVAL, 2)
    assert torch.equal(tr.train_eval_batch[0], tr.train_set.x[:, :TRAIN_EVAL])
    small = Trainer(make_config(train_size=20, seq_len=10, hidden_size=8, steps=1))
    assert small.train_eval_batch[0].shape == (10, 20, 2)


def test_the_history_the_store_and_a_view_from_disk_carry_train_eval_loss(tmp_path):
    from rnn_core.history import History
    from rnn_core.view import RunView

    cfg = make_config(train_size=24, steps=7, seq_len=8, hidden_size=8, eval_every=3)
    tr = Trainer(cfg, out_dir=tmp_path / "r")
    live = History()
    tr.add_callback("on_step_end", lambda t, rec: live.add(rec))
    tr.run()
    recorded = [r["train_eval_loss"] for r in tr.recorder.rows]
    assert [v is not None for v in recorded] == [True, False, False, True, False, False, True]
    disk = RunView.from_disk(tmp_path / "r").history.scalars()["train_eval_loss"]
    want = np.array([np.nan if v is None else v for v in recorded], np.float32)
    np.testing.assert_array_equal(live.scalars()["train_eval_loss"], want)
    np.testing.assert_allclose(disk, want, rtol=1e-6)
    assert disk.dtype == np.float32


def test_a_run_saved_before_train_eval_loss_existed_still_checks_and_draws(tmp_path):
    """Archives exported before the column existed lack it: import's check accepts them, the view draws them."""
    from rnn_core.runcheck import CheckError, check_metrics
    from rnn_core.view import RunView

    Trainer(make_config(steps=3, seq_len=8, hidden_size=8), out_dir=tmp_path / "r").run()
    path = tmp_path / "r" / "metrics.csv"
    old = pd.read_csv(path).drop(columns="train_eval_loss")
    old.to_csv(path, index=False)
    check_metrics(tmp_path / "r")
    assert np.isnan(RunView.from_disk(tmp_path / "r").history.scalars()["train_eval_loss"]).all()
    old.drop(columns="val_loss").to_csv(path, index=False)
    with pytest.raises(CheckError, match="lacks the columns val_loss"):
        check_metrics(tmp_path / "r")
