"""Each remedy key changes the model or the update as stated: a setting that changes nothing is a defect."""

import numpy as np
import pytest
import torch

from rnn_core.config import ConfigError, make_config
from rnn_core.model import build_model
from rnn_core.optim import build_optimizer, lr_factor
from rnn_core.tasks import make_batch, spec
from rnn_core.trainer import Trainer, task_loss


def _model_and_batch(cfg, B=6):
    sp = spec(cfg)
    return build_model(cfg, sp), make_batch(cfg, torch.Generator().manual_seed(1), B)


# --- optimisation -----------------------------------------------------------------

def test_sgd_weight_decay_shrinks_weights_by_exactly_lr_wd_w_on_a_zero_gradient_step():
    cfg = make_config(optimizer="sgd", lr=0.1, weight_decay=0.01)
    p = torch.nn.Parameter(torch.randn(4, 3))
    w0 = p.detach().clone()
    opt = build_optimizer(cfg, [p])
    p.grad = torch.zeros_like(p)
    opt.step()
    torch.testing.assert_close(p.detach(), w0 - 0.1 * 0.01 * w0)


def test_adamw_decays_decoupled_from_the_gradient_scale():
    """AdamW on a zero gradient shrinks by lr·wd·w; Adam's L2 goes through the adaptive step instead."""
    p1, p2 = (torch.nn.Parameter(torch.full((3,), 2.0)) for _ in range(2))
    adamw = build_optimizer(make_config(optimizer="adamw", lr=0.1, weight_decay=0.5), [p1])
    adam = build_optimizer(make_config(optimizer="adam", lr=0.1, weight_decay=0.5), [p2])
    for p, opt in ((p1, adamw), (p2, adam)):
        p.grad = torch.zeros_like(p)
        opt.step()
    torch.testing.assert_close(p1.detach(), torch.full((3,), 2.0 - 0.1 * 0.5 * 2.0))
    torch.testing.assert_close(p2.detach(), torch.full((3,), 2.0 - 0.1), rtol=1e-5, atol=1e-5)  # sign step of Adam


@pytest.mark.parametrize("optimizer", ["sgd", "momentum", "adam", "adamw", "rmsprop", "nadam"])
def test_every_optimizer_trains(optimizer):
    tr = Trainer(make_config(optimizer=optimizer, steps=3, seq_len=10, hidden_size=8, lr=0.01))
    before = [p.detach().clone() for p in tr.model.parameters()]
    tr.run()
    assert any(not torch.equal(a, b) for a, b in zip(before, tr.model.parameters()))
    assert type(tr.opt).__name__ == {"sgd": "SGD", "momentum": "SGD", "adam": "Adam", "adamw": "AdamW",
                                     "rmsprop": "RMSprop", "nadam": "NAdam"}[optimizer]


def test_schedules_hit_their_documented_values():
    base = dict(steps=101, warmup_steps=0)
    assert lr_factor(make_config(schedule="constant", **base), 77) == 1.0
    c = make_config(schedule="cosine", **base)
    assert lr_factor(c, 0) == 1.0 and lr_factor(c, 50) == pytest.approx(0.5) and lr_factor(c, 100) == pytest.approx(0.0, abs=1e-12)
    e = make_config(schedule="exponential", **base)
    assert lr_factor(e, 100) == pytest.approx(0.01) and lr_factor(e, 50) == pytest.approx(0.1)
    s = make_config(schedule="step", **base)
    assert [lr_factor(s, k) for k in (0, 49, 50, 74, 75, 100)] == pytest.approx([1, 1, 0.1, 0.1, 0.01, 0.01])
    w = make_config(schedule="cosine", steps=110, warmup_steps=10)
    assert [lr_factor(w, k) for k in range(10)] == pytest.approx([(k + 1) / 10 for k in range(10)])
    assert lr_factor(w, 10) == 1.0


def test_the_trainer_applies_the_schedule():
    tr = Trainer(make_config(schedule="step", steps=8, warmup_steps=2, lr=0.1, seq_len=5, hidden_size=4))
    tr.run()
    lrs = [r["lr"] for r in tr.recorder.rows]
    # post-warm-up progress 0, .2, .4, .6, .8, 1: ×0.1 from 50% (step 5) and again from 75% (step 6)
    assert lrs == pytest.approx([0.05, 0.1, 0.1, 0.1, 0.1, 0.01, 0.001, 0.001])
    assert tr.opt.param_groups[0]["lr"] == pytest.approx(0.001)


def test_early_stopping_stops_and_says_why():
    # lr ~ 0: the validation loss cannot improve after the first evaluation
    tr = Trainer(make_config(steps=500, eval_every=2, early_stopping_patience=3, lr=1e-12, optimizer="sgd", seq_len=8, hidden_size=4))
    assert tr.run() == "stopped"
    assert tr.step_index == 7  # evaluations at steps 0, 2, 4, 6: the last three did not improve
    assert "early stopping at step 6" in tr.reason


def test_input_noise_changes_the_training_inputs_only():
    a = Trainer(make_config(steps=1, seq_len=10, hidden_size=4))
    b = Trainer(make_config(steps=1, seq_len=10, hidden_size=4, input_noise=0.5))
    assert torch.equal(a.val_batch[0], b.val_batch[0])  # the validation batch is clean
    ra, rb = a.step(), b.step()
    assert ra.loss != rb.loss


def test_curriculum_grows_the_sequence_and_pads_what_did_not_exist():
    tr = Trainer(make_config(curriculum=True, curriculum_start=5, seq_len=25, steps=5, hidden_size=4, record_every=1))
    tr.run()
    lens = [r["seq_len_active"] for r in tr.recorder.rows]
    assert lens == [5, 10, 15, 20, 25]
    g = tr.recorder.stacked()["timestep_grads"]  # (5, 1, 25)
    assert g.shape == (5, 1, 25)
    for k, n in enumerate(lens):
        assert np.all(np.isfinite(g[k, 0, :n])) and np.all(np.isnan(g[k, 0, n:]))


# --- architecture -------------------------------------------------------------------

def test_bidirectional_records_each_direction():
    tr = Trainer(make_config(bidirectional=True, layers=2, steps=1, seq_len=12, hidden_size=4))
    g = tr.step().arrays["timestep_grads"]
    assert g.shape == (4, 12)
    # the loss reads the forward direction at t = T-1 and the backward one at t = 0
    assert np.argmax(g[2]) == 11 and np.argmax(g[3]) == 0


def test_residual_adds_the_layer_input_to_its_output():
    cfg = make_config(residual=True, layers=3, hidden_size=6, seq_len=7)
    model, (x, y) = _model_and_batch(cfg)
    assert isinstance(model.skips[0], torch.nn.Linear)  # input size 2 -> 6 needs a projection
    assert isinstance(model.skips[1], torch.nn.Identity)
    plain = make_config(layers=3, hidden_size=6, seq_len=7)
    other = build_model(plain, spec(plain))
    other.load_state_dict({k: v for k, v in model.state_dict().items() if not k.startswith("skips")})
    assert not torch.allclose(model(x).pred, other(x).pred)


@pytest.mark.parametrize("norm", ["layer", "batch"])
def test_norm_normalises_each_layers_outputs(norm):
    cfg = make_config(norm=norm, layers=2, hidden_size=8, seq_len=9)
    model, (x, _) = _model_and_batch(cfg, B=16)
    captured = []
    model.norms[0].register_forward_hook(lambda m, i, o: captured.append(o.detach()))
    model.train()
    model(x)
    y = captured[0]  # (T, B, F)
    if norm == "layer":
        torch.testing.assert_close(y.mean(-1), torch.zeros(9, 16), atol=1e-5, rtol=0)
    else:  # statistics over every (t, b) of each feature
        torch.testing.assert_close(y.mean((0, 1)), torch.zeros(8), atol=1e-5, rtol=0)


def test_dropout_is_on_in_training_and_off_in_eval():
    cfg = make_config(dropout=0.5, layers=2, hidden_size=16, seq_len=6)
    model, (x, _) = _model_and_batch(cfg)
    model.train()
    assert not torch.equal(model(x).pred, model(x).pred)
    model.eval()
    torch.testing.assert_close(model(x).pred, model(x).pred, rtol=0, atol=0)
    no_drop = make_config(dropout=0.0, layers=2, hidden_size=16, seq_len=6)
    other = build_model(no_drop, spec(no_drop)).eval()
    torch.testing.assert_close(model(x).pred, other(x).pred)  # eval is the dropout-free model


@pytest.mark.parametrize("kind", ["dot", "additive"])
def test_attention_weights_are_recorded_and_open_a_direct_path(kind):
    cfg = make_config(attention=kind, steps=1, seq_len=20, hidden_size=8)
    rec = Trainer(cfg).step()
    w = rec.arrays["attention_mean"]
    assert w.shape == (1, 20) and np.allclose(w.sum(-1), 1.0, atol=1e-5)
    assert rec.arrays["attention_samples"].shape == (4, 1, 20)
    # without attention the loss reaches h_t (t < T-1) only through the recurrence; with it, directly
    for attention, direct_expected in (("none", False), (kind, True)):
        c = make_config(attention=attention, seq_len=20, hidden_size=8)
        model, (x, y) = _model_and_batch(c)
        res = model(x, "fused", record=True)
        task_loss(spec(c), res.pred, y).backward()
        direct = res.traces[0].out.grad[:-1].abs().sum()
        assert (float(direct) > 0) == direct_expected


def test_attention_on_every_step_tasks_is_causal():
    cfg = make_config(task="copy", attention="dot", seq_len=30, hidden_size=8, steps=1)
    w = Trainer(cfg).step().arrays["attention_samples"]  # (4, Q, T) for the last 30 queries
    Q, T = w.shape[1:]
    for q in range(Q):
        t = T - Q + q
        assert np.all(w[:, q, t + 1:] == 0)


# --- transfer ----------------------------------------------------------------------

def _saved_run(name, **kw):
    from rnn_core.store import run_dir

    tr = Trainer(make_config(**kw), out_dir=run_dir(name))
    tr.run()
    return tr


def test_warm_start_loads_the_saved_weights_and_freeze_keeps_them_bit_identical():
    src = _saved_run("src", task="charlm", cell="lstm", steps=3, seq_len=20, hidden_size=16)
    cfg = make_config(task="charlm", cell="lstm", steps=5, seq_len=20, hidden_size=16, warm_start="src", freeze="input", seed=5)
    tr = Trainer(cfg)
    emb = src.model.embed.weight.detach().clone()
    torch.testing.assert_close(tr.model.embed.weight.detach(), emb, rtol=0, atol=0)  # pre-trained embeddings reused
    w_hh0 = tr.model.layers[0][0].weight_hh.detach().clone()
    tr.run()
    assert torch.equal(tr.model.embed.weight.detach(), emb)
    assert torch.equal(tr.model.layers[0][0].weight_ih.detach(), src.model.layers[0][0].weight_ih.detach())
    assert not torch.equal(tr.model.layers[0][0].weight_hh.detach(), w_hh0)  # the rest trains
    assert tr.recorder.rows[-1]["grad_norm/embedding"] == 0.0


def test_freeze_recurrent_keeps_every_recurrent_parameter():
    _saved_run("src2", cell="gru", steps=2, seq_len=10, hidden_size=8)
    tr = Trainer(make_config(cell="gru", steps=3, seq_len=10, hidden_size=8, warm_start="src2", freeze="recurrent"))
    before = [p.detach().clone() for p in tr.model.recurrent_layers()[0].parameters()]
    ro = tr.model.readout.weight.detach().clone()
    tr.run()
    for a, b in zip(before, tr.model.recurrent_layers()[0].parameters()):
        assert torch.equal(a, b)
    assert not torch.equal(ro, tr.model.readout.weight)


def test_warm_start_shape_mismatch_names_both_shapes():
    _saved_run("small", steps=1, seq_len=10, hidden_size=8)
    with pytest.raises(ConfigError, match=r"layers.0.0.bias_hh has shape \(8,\) in the saved run but \(16,\) here"):
        Trainer(make_config(hidden_size=16, warm_start="small"))
    with pytest.raises(ConfigError, match="no saved weights"):
        Trainer(make_config(warm_start="missing"))
