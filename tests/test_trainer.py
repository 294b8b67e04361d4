import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from rnn_core.config import make_config
from rnn_core.optim import clip_gradients, global_norm
from rnn_core.store import load_run
from rnn_core.trainer import Trainer


def _metrics(tr):
    return pd.DataFrame(tr.recorder.rows)


def test_same_config_same_numbers():
    cfg = make_config(cell="lstm", steps=8, seq_len=20, hidden_size=16, dropout=0.2, layers=2, input_noise=0.1)
    a, b = Trainer(cfg), Trainer(cfg)
    a.run(), b.run()
    pd.testing.assert_frame_equal(_metrics(a).drop(columns="step_time_ms"), _metrics(b).drop(columns="step_time_ms"))
    for k, v in a.recorder.stacked().items():
        np.testing.assert_array_equal(v, b.recorder.stacked()[k])


def test_records_every_n_steps_with_the_documented_shapes():
    cfg = make_config(cell="gru", steps=10, seq_len=15, hidden_size=8, layers=2, bidirectional=True, record_every=3)
    tr = Trainer(cfg)
    tr.run()
    arr = tr.recorder.stacked()
    np.testing.assert_array_equal(arr["recorded_steps"], [0, 3, 6, 9])
    assert arr["timestep_grads"].shape == (4, 4, 15) and arr["timestep_grads"].dtype == np.float64
    assert arr["gate_mean"].shape == (4, 4, 3, 15)
    assert arr["spectral_radius"].shape == (4, 4, 3)
    m = _metrics(tr)
    assert list(m.step) == list(range(10))
    assert m.val_loss.notna().sum() == 2  # steps 0 and 9 (last) with eval_every=10


def test_recorded_gradients_are_those_before_the_update():
    """Step 0's record equals a fresh model's gradients on the same batch: the update came after."""
    from rnn_core.model import build_model
    from rnn_core.tasks import make_batch
    from rnn_core.trainer import task_loss

    cfg = make_config(cell="rnn", steps=2, seq_len=12, hidden_size=8)
    tr = Trainer(cfg)
    rec = tr.step()
    model = build_model(cfg, tr.spec)
    x, y = make_batch(cfg, torch.Generator().manual_seed(cfg.seed + 1_000_003), cfg.batch_size)
    res = model(x, "unrolled", record=True)
    task_loss(tr.spec, res.pred, y).backward()
    np.testing.assert_allclose(rec.arrays["timestep_grads"][0], res.traces[0].read().grad_h, rtol=1e-5)
    assert rec.grad_norm_pre_clip == pytest.approx(global_norm([p.grad for p in model.parameters()]), rel=1e-5)


def test_clipping_by_norm_caps_the_norm_and_keeps_the_direction():
    torch.manual_seed(0)
    params = [torch.nn.Parameter(torch.randn(5, 3)) for _ in range(3)]
    for p in params:
        p.grad = torch.randn_like(p) * 10
    before = torch.cat([p.grad.flatten() for p in params]).clone()
    pre, post, fired = clip_gradients(make_config(clip=1.5), params)
    after = torch.cat([p.grad.flatten() for p in params])
    assert fired and pre == pytest.approx(float(before.double().norm()))
    assert post <= 1.5 * (1 + 1e-6) and post == pytest.approx(1.5, rel=1e-6)
    assert float(torch.nn.functional.cosine_similarity(before, after, dim=0)) == pytest.approx(1.0, abs=1e-6)
    # below the threshold nothing changes
    pre2, post2, fired2 = clip_gradients(make_config(clip=100.0), params)
    assert not fired2 and pre2 == post2


def test_clipping_by_value_clamps_each_entry():
    p = torch.nn.Parameter(torch.zeros(4))
    p.grad = torch.tensor([-3.0, 0.5, 2.0, -0.1])
    pre, post, fired = clip_gradients(make_config(clip=1.0, clip_mode="value"), [p])
    assert fired
    torch.testing.assert_close(p.grad, torch.tensor([-1.0, 0.5, 1.0, -0.1]))
    assert post == pytest.approx(float(torch.tensor([-1.0, 0.5, 1.0, -0.1]).double().norm()))


def test_clipping_in_training_is_recorded():
    tr = Trainer(make_config(steps=5, clip=1e-3, seq_len=10))
    tr.run()
    m = _metrics(tr)
    assert m.clipped.all()
    assert (m.grad_norm_post_clip <= 1e-3 * (1 + 1e-6)).all()
    assert (m.grad_norm_pre_clip > m.grad_norm_post_clip).all()


def test_divergence_stops_cleanly_and_keeps_the_history(tmp_path):
    cfg = make_config(cell="rnn", activation="relu", init="identity", init_gain=3.0, optimizer="sgd", lr=10.0,
                      steps=200, seq_len=60, hidden_size=16)
    tr = Trainer(cfg, out_dir=tmp_path / "run")
    status = tr.run()
    assert status == "diverged" and tr.diverged_at is not None
    m = _metrics(tr)
    assert len(m) == tr.diverged_at + 1 and m.step.iloc[-1] == tr.diverged_at
    assert tr.recorder.stacked()["timestep_grads"].shape[0] == tr.diverged_at + 1
    saved = load_run(tmp_path / "run")
    assert saved.status["status"] == "diverged" and saved.status["diverged_at"] == tr.diverged_at
    assert len(saved.metrics) == tr.diverged_at + 1
    with pytest.raises(RuntimeError):
        tr.step()


def test_stop_and_resume_give_the_same_numbers_as_an_uninterrupted_run(tmp_path):
    cfg = make_config(cell="lstm", steps=12, seq_len=15, hidden_size=8, dropout=0.1, layers=2, eval_every=3)
    whole = Trainer(cfg, out_dir=tmp_path / "whole")
    whole.run()
    part = Trainer(cfg, out_dir=tmp_path / "part")
    part.run(max_steps=5)
    part.stop()
    assert json.loads((tmp_path / "part" / "status.json").read_text())["status"] == "stopped"
    resumed = Trainer.resume(tmp_path / "part")
    assert resumed.step_index == 5
    resumed.run()
    a, b = load_run(tmp_path / "whole"), load_run(tmp_path / "part")
    pd.testing.assert_frame_equal(a.metrics.drop(columns="step_time_ms"), b.metrics.drop(columns="step_time_ms"))
    np.testing.assert_array_equal(a.arrays["timestep_grads"], b.arrays["timestep_grads"])
    assert b.status["status"] == "finished"


def test_resume_can_extend_a_finished_run(tmp_path):
    cfg = make_config(steps=4, seq_len=10, hidden_size=8)
    Trainer(cfg, out_dir=tmp_path / "r").run()
    tr = Trainer.resume(tmp_path / "r", steps=6)
    tr.run()
    assert len(load_run(tmp_path / "r").metrics) == 6


def test_callbacks_see_every_step_and_can_stop_the_run():
    tr = Trainer(make_config(steps=50, seq_len=10, hidden_size=8))
    seen = []

    def on_step(trainer, rec):
        seen.append(rec.step)
        if rec.step == 6:
            trainer.request_stop()

    ended = []
    tr.add_callback("on_step_end", on_step)
    tr.add_callback("on_run_end", lambda trainer: ended.append(trainer.status))
    assert tr.run() == "stopped"
    assert seen == list(range(7)) and ended == ["stopped"]


def test_run_store_files(tmp_path):
    cfg = make_config(cell="lstm", steps=6, seq_len=12, hidden_size=8, record_every=1)
    Trainer(cfg, out_dir=tmp_path / "r").run()
    run = load_run(tmp_path / "r")
    for col in ["step", "loss", "val_loss", "grad_norm_pre_clip", "grad_norm_post_clip", "clipped", "lr", "step_time_ms"]:
        assert col in run.metrics.columns
    assert run.arrays["timestep_grads"].shape == (6, 1, 12) and run.arrays["timestep_grads"].dtype == np.float64
    assert run.arrays["cell_grads"].shape == (6, 1, 12)
    assert run.config == cfg.model_dump()
    assert (tmp_path / "r" / "model.safetensors").is_file()
    assert not list((tmp_path / "r").glob("*.tmp"))
    from safetensors.torch import load_file

    weights = load_file(tmp_path / "r" / "model.safetensors")
    assert weights["layers.0.0.weight_hh"].shape == (32, 8)


def test_flush_denormals_on_cpu():
    Trainer(make_config(steps=1, seq_len=5))
    assert float(torch.tensor([1e-40], dtype=torch.float32) * 1.0) == 0.0


def test_cuda_request_without_cuda_is_a_clear_error():
    from rnn_core.config import ConfigError

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    with pytest.raises(ConfigError, match="device=cuda is not available"):
        Trainer(make_config(device="cuda"))


def _offer(rec, step, T=6):
    from rnn_core.recorder import StepRecord

    arrays = {"recorded_steps": np.asarray(step), "timestep_grads": np.full((1, T), float(step))}
    rec.add(StepRecord(step, 1.0, None, 1.0, 1.0, False, 1e-3, 1.0, T, {"l0.hh": 2.0}, arrays))


def test_recorder_keeps_every_metric_row_and_a_bounded_evenly_spaced_set_of_arrays():
    from rnn_core.recorder import Recorder

    rec = Recorder(seq_len=6, max_kept=4)
    for step in range(20):
        _offer(rec, step)
    kept = rec.stacked()["recorded_steps"]
    assert len(rec) == 20 and list(rec.metrics().step) == list(range(20))  # every row
    assert 2 < len(kept) <= 4 and rec.stride == 8
    np.testing.assert_array_equal(kept, [0, 8, 16])  # evenly spaced from the start
    np.testing.assert_array_equal(rec.stacked()["timestep_grads"][:, 0, 0], kept)  # each array with its own step
    assert rec.metrics()["grad_norm/l0.hh"].eq(2.0).all() and rec.metrics().val_loss.isna().all()


def test_recorder_byte_cap_thins_too():
    from rnn_core.recorder import Recorder

    rec = Recorder(seq_len=6, max_kept=1000, max_bytes=5 * (8 + 6 * 8))  # room for five steps' arrays
    for step in range(12):
        _offer(rec, step)
    assert rec.kept() <= 5 and rec.stacked()["timestep_grads"].nbytes + rec.stacked()["recorded_steps"].nbytes <= 280


def test_resume_after_thinning_keeps_the_same_steps_as_an_uninterrupted_run(tmp_path, monkeypatch):
    from rnn_core import recorder

    monkeypatch.setattr(recorder, "MAX_KEPT", 4)
    cfg = make_config(cell="gru", steps=20, seq_len=10, hidden_size=8, record_every=2)
    whole = Trainer(cfg, out_dir=tmp_path / "whole")
    whole.run()
    part = Trainer(cfg, out_dir=tmp_path / "part")
    part.run(max_steps=11)
    part.stop()
    Trainer.resume(tmp_path / "part").run()
    a, b = load_run(tmp_path / "whole"), load_run(tmp_path / "part")
    np.testing.assert_array_equal(a.arrays["recorded_steps"], [0, 8, 16])  # offers 0..9, stride 4
    for name in a.arrays:
        np.testing.assert_array_equal(a.arrays[name], b.arrays[name])
    pd.testing.assert_frame_equal(a.metrics.drop(columns="step_time_ms"), b.metrics.drop(columns="step_time_ms"))


def test_pre_clip_norm_summed_from_the_groups_equals_the_global_norm():
    """The Trainer takes the global norm from the per-group norms; the two ways agree to float64 rounding."""
    cfg = make_config(cell="lstm", steps=3, seq_len=12, hidden_size=8, layers=2, bidirectional=True, norm="layer",
                      residual=True, attention="additive", clip=0.0)
    tr = Trainer(cfg)
    assert tr._norm_from_groups
    seen = []
    tr.add_callback("on_step_end", lambda t, rec: seen.append(
        (rec.grad_norm_pre_clip, global_norm([p.grad for p in t.trainable if p.grad is not None]))))
    tr.step()  # the callback runs after the update, so compare on a step whose grads are still there
    pre, direct = seen[0]
    assert pre == pytest.approx(direct, rel=1e-12)


# --- state, checkpoints and a stop inside a step ----------------------------------------

def test_checkpoint_serialises_a_nested_state_without_pickle(tmp_path):
    from rnn_core.checkpoint import load_state, save_state

    state = {"step": 3, "best": None, "inf": float("inf"), "name": "x", "pairs": [1, 2.5, True],
             "t": torch.arange(6, dtype=torch.float32).view(2, 3), "rng": torch.get_rng_state(),
             "opt": {"state": {0: {"step": torch.tensor(4.0), "exp_avg": torch.ones(2)}, 7: {"n": 1}},
                     "param_groups": [{"params": [0, 7], "betas": (0.9, 0.999), "foreach": None}]},
             "losses": np.linspace(0, 1, 5)}
    save_state(tmp_path, state)
    back = load_state(tmp_path)
    assert back["step"] == 3 and back["best"] is None and back["inf"] == float("inf") and back["name"] == "x"
    assert back["pairs"] == [1, 2.5, True] and set(back["opt"]["state"]) == {0, 7}
    torch.testing.assert_close(back["t"], state["t"], rtol=0, atol=0)
    assert torch.equal(back["rng"], state["rng"]) and back["opt"]["state"][0]["step"].item() == 4.0
    assert back["opt"]["param_groups"][0] == {"params": [0, 7], "betas": [0.9, 0.999], "foreach": None}
    np.testing.assert_array_equal(back["losses"], state["losses"])
    source = (Path(__file__).parents[1] / "rnn_core" / "checkpoint.py").read_text()
    assert "from .trainer" not in source and "Trainer\"" not in source  # it serialises a state, nothing more


def test_an_old_or_missing_checkpoint_is_a_clear_error(tmp_path):
    from rnn_core.checkpoint import load_state
    from rnn_core.store import RunStoreError

    with pytest.raises(RunStoreError, match="no checkpoint"):
        load_state(tmp_path)
    (tmp_path / "checkpoint.json").write_text(json.dumps({"step": 3, "optimizer": {}}))
    with pytest.raises(RunStoreError, match="older version"):
        load_state(tmp_path)


def test_state_and_load_state_continue_exactly():
    cfg = make_config(cell="gru", steps=10, seq_len=12, hidden_size=8, dropout=0.3, layers=2, norm="batch",
                      input_noise=0.1, eval_every=2)
    a = Trainer(cfg)
    a.run(max_steps=4)
    b = Trainer(cfg)
    b.load_state(a.state())  # the live tensors: load_state must copy what it keeps
    a.run(), b.run()
    assert a.summary() == b.summary()
    for pa, pb in zip(a.model.state_dict().values(), b.model.state_dict().values()):
        assert torch.equal(pa, pb)


def _files_equal(a_dir, b_dir):
    from safetensors.torch import load_file

    a, b = load_run(a_dir), load_run(b_dir)
    pd.testing.assert_frame_equal(a.metrics.drop(columns="step_time_ms"), b.metrics.drop(columns="step_time_ms"))
    assert a.arrays.keys() == b.arrays.keys()
    for name in a.arrays:
        np.testing.assert_array_equal(a.arrays[name], b.arrays[name], err_msg=name)
    wa, wb = load_file(a_dir / "model.safetensors"), load_file(b_dir / "model.safetensors")
    assert wa.keys() == wb.keys() and all(torch.equal(wa[k], wb[k]) for k in wa)
    sa, sb = (dict(r.status) for r in (a, b))
    for s in (sa, sb):
        s.pop("reason")
    assert sa == sb


# dropout and batch norm: the dropout RNG and the running statistics must be put back too
STOP_CFG = dict(cell="lstm", steps=8, seq_len=14, hidden_size=8, layers=3, dropout=0.2, norm="batch",
                input_noise=0.1, eval_every=3, record_every=2)


def _stop_inside_step(tmp_path, install, at_step=3):
    """Run to `at_step`, install a hook that makes a stop arrive inside that step, check the step is
    undone, then resume and finish: the files equal those of an uninterrupted run."""
    cfg = make_config(**STOP_CFG)
    Trainer(cfg, out_dir=tmp_path / "whole").run()
    tr = Trainer(cfg, out_dir=tmp_path / "part")
    tr.run(max_steps=at_step)
    before = {k: v.detach().clone() for k, v in tr.model.state_dict().items()}
    data = tr.gen.get_state().clone()
    ended = []
    tr.add_callback("on_run_end", lambda t: ended.append(t.status))
    remove = install(tr)
    assert tr.step() is None
    remove()
    assert tr.status == "stopped" and tr.reason == f"stopped by request during step {at_step}"
    assert tr.step_index == at_step and len(tr.recorder) == at_step and ended == ["stopped"]
    assert all(p.grad is None for p in tr.model.parameters())
    assert all(torch.equal(v, before[k]) for k, v in tr.model.state_dict().items())  # no update, same buffers
    assert torch.equal(tr.gen.get_state(), data) and tr.model.training
    assert json.loads((tmp_path / "part" / "status.json").read_text())["steps_done"] == at_step  # saved
    resumed = Trainer.resume(tmp_path / "part")
    assert resumed.step_index == at_step
    resumed.run()
    _files_equal(tmp_path / "whole", tmp_path / "part")


def test_a_stop_from_another_thread_ends_the_forward_pass_mid_step(tmp_path):
    import threading

    def install(tr):
        started, requested = threading.Event(), threading.Event()

        def after_layer_0(module, inputs, output):
            if module.training and not started.is_set():  # the training forward, between layer 0 and 1
                started.set()
                assert requested.wait(10)  # hold the step here until the other thread has asked

        def stopper():
            assert started.wait(10)
            tr.request_stop()
            requested.set()

        timer = threading.Timer(0.2, stopper)
        timer.start()
        handle = tr.model.norms[0].register_forward_hook(after_layer_0)
        return lambda: (handle.remove(), timer.join())

    _stop_inside_step(tmp_path, install)


def test_a_stop_during_backward_aborts_before_the_update(tmp_path):
    def install(tr):  # the readout's backward runs first; the recurrent layers' after it
        handle = tr.model.readout.register_full_backward_hook(lambda m, gi, go: tr.request_stop())
        return handle.remove

    _stop_inside_step(tmp_path, install)


def test_a_stop_during_the_evaluation_takes_the_update_back(tmp_path):
    def install(tr):
        def in_eval(module, inputs, output):
            if not module.training:
                tr.request_stop()

        handle = tr.model.norms[0].register_forward_hook(in_eval)
        return handle.remove

    _stop_inside_step(tmp_path, install, at_step=6)  # 6 % eval_every == 0


def test_a_stop_between_steps_from_another_thread_does_no_step():
    tr = Trainer(make_config(steps=5, seq_len=8, hidden_size=4))
    tr.step()
    tr.request_stop()
    assert tr.step() is None and tr.step_index == 1
    assert tr.status == "stopped" and tr.reason == "stopped by request after step 0"


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_gates_every_reads_less_and_changes_nothing_else(cell):
    """Oracle: the same run with the gate statistics on every recorded step (gates_every=1) and on
    every 3rd. Reading is after backward and before the update, so both train to the same bits;
    ‖∂L/∂h_t‖ is on every recorded step of both, and the gates the sparse run takes are the same."""
    base = dict(cell=cell, steps=13, seq_len=12, hidden_size=8, record_every=2)
    every, sparse = Trainer(make_config(**base, gates_every=1)), Trainer(make_config(**base, gates_every=3))
    every.run()
    sparse.run()
    a, b = every.recorder.stacked(), sparse.recorder.stacked()
    assert [r["loss"] for r in every.recorder.rows] == [r["loss"] for r in sparse.recorder.rows]
    np.testing.assert_array_equal(a["recorded_steps"], [0, 2, 4, 6, 8, 10, 12])
    np.testing.assert_array_equal(a["timestep_grads"], b["timestep_grads"])
    taken = np.array([s % 6 == 0 for s in a["recorded_steps"]])  # recorded steps 0, 3, 6 of 0..6
    names = ["gate_mean", "gate_saturation"] + (["cell_grads"] if cell == "lstm" else [])
    for name in names:
        assert np.isfinite(a[name]).all(), name
        rows = ~np.isnan(b[name]).reshape(len(taken), -1).all(axis=1)
        np.testing.assert_array_equal(rows, taken, err_msg=name)
        np.testing.assert_array_equal(b[name][taken], a[name][taken], err_msg=name)
    assert ("cell_grads" in b) == (cell == "lstm")
