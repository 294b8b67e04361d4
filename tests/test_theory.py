"""The Theory page and the paper checks: the theory's numbers computed two ways, the bound against
measured profiles, the papers' criteria on synthetic numbers, the results file, and the page."""
from __future__ import annotations

import json
import math
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from streamlit.testing.v1 import AppTest

from charts import charts as run_charts
from dashboard import theory_figures as TF
from dashboard.figures import linear_envelope
from dashboard.theory_papers import RESULTS, load_results, results_table
from rnn_core import make_config, papers, store, theory
from rnn_core.config import parse_assignments
from rnn_core.diagnostics import recurrent_spectra
from rnn_core.model import build_model
from rnn_core.papers import Outcome, RunNumbers
from rnn_core.tasks import make_batch, spec
from rnn_core.trainer import Trainer

APP = str(Path(__file__).resolve().parents[1] / "streamlit_app.py")


# --- eigenvalues and norms: numpy against torch -------------------------------------------------------
@pytest.mark.parametrize("values", [dict(cell="rnn"), dict(cell="lstm", hidden_size=8),
                                    dict(cell="gru", hidden_size=6, layers=2, bidirectional=True),
                                    dict(cell="rnn", init="orthogonal", init_gain=1.3, hidden_size=12)])
def test_init_spectra_match_torch_and_the_trainers_record(values):
    cfg = make_config(values)
    blocks = theory.recurrent_blocks(theory.init_state(cfg), cfg)  # (LD, G, H, H)
    eig, sig = theory.eigenvalues(blocks), theory.spectral_norm(blocks)
    model = build_model(cfg, spec(cfg))
    layers = model.recurrent_layers()
    assert blocks.shape == (len(layers), len(theory.BLOCKS[cfg.cell]), cfg.hidden_size, cfg.hidden_size)
    for k, layer in enumerate(layers):
        for g, w in enumerate(layer.weight_hh.detach().double().split(cfg.hidden_size)):
            ours = np.sort_complex(eig[k, g])
            ref = np.sort_complex(torch.linalg.eigvals(w).numpy())
            assert np.allclose(ours, ref, atol=1e-9)
            assert sig[k, g] == pytest.approx(float(torch.linalg.matrix_norm(w, ord=2)), rel=1e-9)
    # the trainer's spectra (eigvals + eigvalsh of AᵀA, batched) are the same numbers
    radius, sigma = recurrent_spectra(model)
    assert np.allclose(np.abs(eig).max(-1), radius, rtol=1e-9)
    assert np.allclose(sig, sigma, rtol=1e-7)


def test_saved_weights_give_the_spectra_the_run_recorded(tmp_path):
    cfg = make_config(steps=3, seq_len=8, hidden_size=5, record_every=1)
    tr = Trainer(cfg, out_dir=tmp_path / "r")
    tr.run()
    state = theory.saved_state(tmp_path / "r")
    blocks = theory.recurrent_blocks(state, cfg)
    ref = tr.model.recurrent_layers()[0].weight_hh.detach().double().numpy()
    assert np.allclose(blocks[0, 0], ref)
    assert theory.saved_state(tmp_path / "nothing") is None


# --- the Jacobian product: the library's recorded profile against a hand-unrolled product --------------
@pytest.mark.parametrize("activation", ["tanh", "sigmoid", "relu"])
def test_recorded_profile_is_the_product_of_jacobians(activation):
    cfg = make_config(task="adding", seq_len=9, hidden_size=4, batch_size=3, activation=activation,
                      init_gain=1.5, steps=1)
    arrays = theory.step0_arrays(cfg)
    recorded = arrays["timestep_grads"][0]  # (T,) from the fused kernel's probes
    # the same step by hand: same seeded weights, same first batch, forward in float64, then
    # ∂L/∂h_{T−1} from the readout alone and the Jacobians multiplied out
    model = build_model(cfg, spec(cfg))
    x, y = make_batch(cfg, torch.Generator().manual_seed(cfg.seed + 1_000_003), cfg.batch_size)
    layer = model.recurrent_layers()[0]
    w_ih, w_hh, b_ih, b_hh = (p.detach().double() for p in layer.weights())
    h = torch.zeros(cfg.batch_size, cfg.hidden_size, dtype=torch.float64)
    pre = []
    for t in range(cfg.seq_len):
        a = x[t].double() @ w_ih.T + b_ih + h @ w_hh.T + b_hh  # (B, H)
        pre.append(a)
        h = {"tanh": torch.tanh, "sigmoid": torch.sigmoid, "relu": torch.relu}[activation](a)
    h_last = h.clone().requires_grad_(True)
    readout = model.readout
    loss = torch.nn.functional.mse_loss(h_last @ readout.weight.double().T + readout.bias.double(), y.double())
    (g_last,) = torch.autograd.grad(loss, h_last)
    by_hand = theory.jacobian_profile(w_hh.numpy(), torch.stack(pre).numpy(), g_last.numpy(), activation)
    assert np.allclose(recorded, by_hand, rtol=1e-4, atol=1e-12)


@pytest.mark.parametrize("values", [dict(), dict(init_gain=2.0), dict(init="orthogonal"),
                                    dict(activation="sigmoid", init_gain=3.0), dict(activation="relu", init="identity"),
                                    dict(seq_len=120, init_gain=1.2, seed=3)])
def test_the_bound_bounds_the_measured_profile_of_a_tanh_rnn_at_init(values):
    cfg = make_config({"task": "adding", "seq_len": 60, "steps": 1, **values})
    assert theory.bound_applies(cfg) is None
    a = theory.step0_arrays(cfg)
    g = a["timestep_grads"][0]
    bound = theory.pascanu_bound(g[-1], len(g), theory.gamma(cfg) * a["sigma_max"][0, 0])
    assert np.all(g <= bound * (1 + 1e-6))
    assert g[0] < g[-1] or theory.gamma(cfg) * a["sigma_max"][0, 0] >= 1  # γσ < 1 forces a fall


@pytest.mark.parametrize("gain", [0.9, 1.05])
def test_the_envelope_is_exact_for_a_linear_rnn_with_a_scaled_orthogonal_w_hh(gain):
    # W_hh = gain·Q: every Jacobian is gain·Q, so ‖∂L/∂h_t‖ = gain^(T−1−t)‖∂L/∂h_{T−1}‖ exactly, and
    # ρ = σ_max = gain: Explore's envelope, the bound and the measured profile are one line
    cfg = make_config(task="adding", seq_len=40, activation="linear", init="orthogonal", init_gain=gain, steps=1)
    a = theory.step0_arrays(cfg)
    g, rho, sigma = a["timestep_grads"][0], a["spectral_radius"][0, 0], a["sigma_max"][0, 0]
    assert rho == pytest.approx(gain, rel=1e-6) and sigma == pytest.approx(gain, rel=1e-6)
    assert np.allclose(g, linear_envelope(g, rho), rtol=1e-4)
    assert np.allclose(g, theory.pascanu_bound(g[-1], len(g), sigma), rtol=1e-4)


def test_bound_applies_says_why_not():
    assert "gates" in theory.bound_applies(make_config(cell="lstm"))
    assert "direct term" in theory.bound_applies(make_config(attention="dot"))
    assert "every step" in theory.bound_applies(make_config(task="copy", seq_len=40))
    assert "stacked" in theory.bound_applies(make_config(layers=2))
    assert theory.gamma(make_config(activation="sigmoid")) == 0.25 and theory.gamma(make_config(cell="gru")) == 1.0


def test_pascanu_bound_in_log_space():
    b = theory.pascanu_bound(2.0, 5, 0.5)
    assert np.allclose(b, [2 * 0.5 ** 4, 2 * 0.5 ** 3, 2 * 0.25, 1.0, 2.0])
    assert np.all(np.isfinite(theory.pascanu_bound(1.0, 2000, 1e-3)))  # 1e-6000 clamps at 1e-300
    assert theory.pascanu_bound(1.0, 2000, 1e-3)[0] == pytest.approx(1e-300)
    assert np.isnan(theory.pascanu_bound(0.0, 4, 0.5)).all()


# --- the figure builders --------------------------------------------------------------------------
def test_eigen_figure_draws_the_unit_circle_and_both_spectra():
    init = np.array([0.5 + 0.5j, 0.5 - 0.5j, -0.2])
    now = np.array([1.2, 0.1j, -0.1j])
    fig = TF.eigen_figure(init, now, "W_hh")
    circle, b, a = fig.data  # now drawn first, the start's hollow circles on top
    assert np.allclose(np.hypot(circle.x, circle.y), 1.0)
    assert np.allclose(a.x, init.real) and np.allclose(a.y, init.imag) and "0.707" in a.name
    assert np.allclose(b.x, now.real) and "1.2" in b.name
    assert fig.layout.xaxis.range[1] == pytest.approx(1.1 * 1.2)  # room for the eigenvalue outside the circle
    assert fig.layout.yaxis.scaleanchor == "x"
    assert len(TF.eigen_figure(init, None).data) == 2
    assert TF.eigen_figure(None, None).layout.annotations
    assert TF.eigen_figure(init, now, big=True).layout.height > fig.layout.height


def test_bound_figure_draws_bound_and_the_apps_envelope():
    T = 30
    g = 0.1 * 0.7 ** np.arange(T - 1, -1, -1.0)
    fig = TF.bound_figure(g, rho=0.8, sigma=1.2, gamma=1.0, step=40)
    measured, bound, env = fig.data
    assert np.allclose(measured.y, g)
    assert np.allclose(bound.y, 0.1 * 1.2 ** np.arange(T - 1, -1, -1.0))
    assert np.allclose(env.y, linear_envelope(g, 0.8))  # Explore's envelope, the same numbers
    assert "step 40" in fig.layout.title.text.replace("<br>", " ") and fig.layout.yaxis.type == "log"
    sig = TF.bound_figure(g, rho=0.8, sigma=1.2, gamma=0.25)
    assert np.allclose(sig.data[1].y, 0.1 * 0.3 ** np.arange(T - 1, -1, -1.0))
    curriculum = np.concatenate([g[:20], np.full(10, np.nan)])  # padded end: anchored at the last real step
    assert TF.bound_figure(curriculum, 0.8, 1.2, 1.0).data[1].y[-1] == pytest.approx(g[19])
    assert TF.bound_figure(None, None, None, 1.0).layout.annotations
    zero_end = TF.bound_figure(np.zeros(5), 0.8, 1.2, 1.0)
    assert len(zero_end.data) == 1 and zero_end.layout.annotations


# --- the paper criteria on synthetic numbers ----------------------------------------------------------
def _numbers(cfg_values: dict, summary: dict | None = None, val: np.ndarray | None = None, arrays=None) -> RunNumbers:
    return RunNumbers(make_config(cfg_values), summary or {}, val, arrays or {})


def test_hs1997_criterion():
    name = "paper-hs1997-lstm-adding100"
    cfg = papers.RUNS[name]
    good = np.full(256, 0.02 ** 2)
    good[:20] = 0.1 ** 2  # 92% within 0.04
    bad = np.full(256, 0.05 ** 2)
    assert papers.judge_hs1997({name: _numbers(cfg, {"final_val_loss": 0.01}, good)}).agree is True
    out = papers.judge_hs1997({name: _numbers(cfg, {"final_val_loss": 0.01}, bad)})
    assert out.agree is False and out.value == 0.0 and "100.0% within 0.08" in out.detail
    assert papers.judge_hs1997({name: _numbers(cfg, {"status": "diverged"}, None)}).agree is False
    assert papers.judge_hs1997({}).agree is None
    assert papers.fraction_within(np.array([0.03 ** 2, 0.05 ** 2]), 0.04) == 0.5


def test_le2015_criterion():
    irnn, tanh = "paper-le2015-irnn-adding150", "paper-le2015-tanh-adding150"
    won = {"final_val_loss": 0.001, "beat_baseline": True, "val_baseline": 0.17}
    lost = {"final_val_loss": 0.172, "beat_baseline": False, "val_baseline": 0.17}
    runs = lambda a, b: {irnn: _numbers(papers.RUNS[irnn], a), tanh: _numbers(papers.RUNS[tanh], b)}  # noqa: E731
    assert papers.judge_le2015(runs(won, lost)).agree is True
    assert papers.judge_le2015(runs(lost, lost)).agree is False
    assert papers.judge_le2015(runs(won, won)).agree is False  # the tanh RNN must fail
    assert papers.judge_le2015({irnn: _numbers(papers.RUNS[irnn], won)}).agree is None


def test_arjovsky2016_criterion_and_the_copy_mapping():
    name = "paper-arjovsky2016-lstm-copy100"
    cfg = papers.run_config(name)
    # their T = 100 is our seq_len 120, and their baseline is the task's own
    assert papers.copy_baseline(cfg.seq_len) == pytest.approx(10 * math.log(8) / 120)
    assert spec(cfg).baseline == pytest.approx(papers.copy_baseline(cfg.seq_len))
    x, y = make_batch(cfg, torch.Generator().manual_seed(0), 2)
    assert (x[:10].argmax(-1) > 0).all() and (x[10:cfg.seq_len - 11].argmax(-1) == 0).all()  # 99 blanks
    assert cfg.seq_len - 11 - 10 == 99 and (y[-10:] == x[:10].argmax(-1)).all()
    beat = {"final_val_loss": 0.1, "beat_baseline": True, "beat_margin": 0.42}
    assert papers.judge_arjovsky2016({name: _numbers(papers.RUNS[name], beat)}).agree is True
    stuck = {"final_val_loss": 0.1741, "beat_baseline": False, "beat_margin": -0.005}
    out = papers.judge_arjovsky2016({name: _numbers(papers.RUNS[name], stuck)})
    assert out.agree is False and "above" in out.ours


def _profile_arrays(rate: float, rho: float, sigma: float, T: int = 150, g_last: float = 1e-2, bump: bool = False):
    g = g_last * rate ** np.arange(T - 1, -1, -1.0)
    if bump:
        g[50] = g[-1] * 10  # above the bound
    grads = np.stack([g[None], g[None]])  # (R=2, LD=1, T)
    return {"recorded_steps": np.array([0, 9950]), "timestep_grads": grads,
            "spectral_radius": np.full((2, 1, 1), rho), "sigma_max": np.full((2, 1, 1), sigma)}


def test_pascanu2013_criterion():
    name = "paper-le2015-tanh-adding150"
    cfg = papers.RUNS[name]
    ok = papers.judge_pascanu2013({name: _numbers(cfg, arrays=_profile_arrays(0.6, 0.62, 1.1))})
    assert ok.agree is True and ok.value == pytest.approx(0.6)
    assert papers.judge_pascanu2013({name: _numbers(cfg, arrays=_profile_arrays(0.9, 0.6, 1.1))}).agree is False
    assert papers.judge_pascanu2013({name: _numbers(cfg, arrays=_profile_arrays(0.6, 0.6, 0.9, bump=True))}).agree is False
    assert papers.judge_pascanu2013({name: _numbers(cfg, arrays={})}).agree is None


def test_fit_rate_leaves_out_underflow_and_the_readout_transient():
    T = 150
    g = 1e-2 * 0.55 ** np.arange(T - 1, -1, -1.0)
    g[g < 1e-38] = 0.0  # float32 flushed to zero
    g[-5:] *= 3  # a transient near the readout
    fit = papers.fit_rate(g, 0.55, 1.1)
    assert fit.rate == pytest.approx(0.55, rel=1e-6) and fit.r2 > 0.999
    assert fit.points == int(((1e-2 * 0.55 ** np.arange(T - 1, -1, -1.0)) > papers.FIT_FLOOR)[: T - 11].sum())


def test_load_numbers_reads_what_the_trainer_saved(tmp_path):
    cfg = make_config(task="adding", seq_len=10, hidden_size=4, steps=4, eval_every=2, record_every=2)
    tr = Trainer(cfg, out_dir=tmp_path / "r")
    tr.run()
    disk, memory = papers.load_numbers(tmp_path / "r"), papers.numbers_from_trainer(tr)
    assert disk.cfg == cfg and disk.summary["status"] == "finished"
    assert np.allclose(disk.val_losses, memory.val_losses) and len(disk.val_losses) == 256
    assert np.allclose(disk.arrays["timestep_grads"], memory.arrays["timestep_grads"])
    assert list(disk.arrays["recorded_steps"]) == [0, 2]


# --- the presets and the results file --------------------------------------------------------------
def test_presets_are_valid_configs_and_their_commands_rebuild_them():
    for name, values in papers.RUNS.items():
        cfg = papers.run_config(name)
        assert cfg.steps == papers.BUDGET
        line = papers.command_line(name).split()
        sets = [line[i + 1] for i, w in enumerate(line) if w == "--set"]
        assert make_config(parse_assignments(sets)) == cfg
        assert line[line.index("--out") + 1] == f"runs/{name}"
        store.check_run_name(name)
    for c in papers.CHECKS:
        assert set(c.runs) <= set(papers.RUNS) and c.claim and c.criterion and c.settings


def test_results_file_is_readable_and_matches_the_presets():
    data = load_results()
    assert data is not None, f"{RESULTS} is missing or unreadable"
    assert not data["quick"]
    assert [c["id"] for c in data["checks"]] == [c.id for c in papers.CHECKS]
    for row in data["checks"]:
        check = papers.CHECK[row["id"]]
        assert row["runs"] == list(check.runs) and row["claim"] == check.claim and row["criterion"] == check.criterion
        assert row["agree"] in (True, False, None) and row["ours"]
    for name in {n for c in papers.CHECKS for n in c.runs}:
        run = data["runs"][name]
        assert run["config"] == papers.non_default(papers.run_config(name))  # made by these very presets
        assert run["command"] == papers.command_line(name) and run["steps_done"] == papers.BUDGET
    table = results_table(data)
    assert list(table.columns) == ["paper", "check", "published", "ours", "agree?"] and len(table) == len(papers.CHECKS)
    assert load_results(Path("/nonexistent/paper_checks.json")) is None


def test_a_bad_results_file_reads_as_none(tmp_path):
    p = tmp_path / "x.json"
    p.write_text("{not json")
    assert load_results(p) is None
    p.write_text(json.dumps({"checks": "nope"}))
    assert load_results(p) is None


def test_outcome_words():
    assert papers.agreement_text(True) == "agrees" and papers.agreement_text(False) == "does not agree (yet)"
    assert isinstance(Outcome("x", None, None).agree, type(None))


# --- the page -----------------------------------------------------------------------------------------
def theory_app(**params) -> AppTest:
    """The app switched to Theory before its first run, with `params` in the link (a link to /theory)."""
    at = AppTest.from_file(APP, default_timeout=90)
    at.switch_page("pages/theory.py")
    for k, v in params.items():
        at.query_params[k] = v
    return at.run()


def typed(a) -> np.ndarray:
    """A plotly JSON array: a list, or a typed array {"dtype", "bdata": base64}."""
    if isinstance(a, dict):
        import base64

        return np.frombuffer(base64.b64decode(a["bdata"]), dtype=np.dtype(a["dtype"]))
    return np.asarray(a, dtype=np.float64)


def captions(at: AppTest) -> str:
    return " ".join(c.value for c in at.caption)


def test_page_loads_with_the_default_config():
    at = theory_app()
    assert not at.exception and not at.error
    assert len(at.latex) >= 8 and [t.label for t in at.tabs] == ["Equations", "Your config", "Reproduce"]
    assert "No run in this session yet" in captions(at)
    assert at.session_state["values"]["cell"] == "rnn"
    assert len(at.dataframe) == 1  # the committed results table
    assert any(b.key == "btn_paper_train_le2015" for b in at.button)


def test_page_reads_a_config_from_the_link():
    at = theory_app(cell="lstm", init_gain="1.5", hidden_size="16")
    assert not at.exception and not at.warning
    values = at.session_state["values"]
    assert (values["cell"], values["init_gain"], values["hidden_size"]) == ("lstm", 1.5, 16)
    block = at.selectbox(key="theory_block_lstm")
    assert block.value == 2  # the candidate block g
    block.set_value(1).run()
    assert not at.exception


def test_a_warm_start_that_cannot_be_read_is_one_line():
    at = theory_app(warm_start="nope")
    assert not at.exception
    assert any("warm_start=nope: no saved weights" in e.value.replace("\\", "") for e in at.error)


def test_page_survives_a_hostile_link():
    at = theory_app(cell="![x](http://127.0.0.1:9/x.png)", init_gain="1e999", seq_len="$\\frac{1}{0}$", run="../../etc")
    assert not at.exception
    text = " ".join(w.value for w in at.warning)
    assert "cell" in text and "init_gain" in text and "seq_len" in text
    assert "`cell=![x](http://127.0.0.1:9/x.png)`" in text  # fenced as code: never an image
    assert at.session_state["values"]["cell"] == "rnn"


def test_page_shows_the_sessions_run_after_explore_trained_one():
    at = AppTest.from_file(APP, default_timeout=90)
    at.query_params.update(seq_len="12", hidden_size="8", steps="30")
    at.run()
    at.button(key="btn_train").click().run()
    job = at.session_state["panel:explore"].job
    deadline = time.monotonic() + 120
    while not job.done:  # a bounded wait, never a timing assertion
        job.poll()
        assert time.monotonic() < deadline
        time.sleep(0.05)
    at.switch_page("pages/theory.py").run()
    assert not at.exception and not at.error
    text = captions(at)
    assert f"Now: {job.name}".replace("-", "\\-") in text or f"Now: {job.name}" in text
    charts = {c.id: c.spec for c in run_charts(at)}
    eigen = next(v for k, v in charts.items() if "theory_chart_eigen" in k)
    assert [d["name"].split(":")[0] for d in eigen["data"]] == ["unit circle |λ| = 1", "now", "at initialisation"]
    bound = next(v for k, v in charts.items() if "theory_chart_bound" in k)
    assert "latest recorded step" in bound["layout"]["title"]["subtitle"]["text"].replace("<br>", " ")
    assert len(bound["data"]) == 3 and len(bound["data"][0]["y"]) == 12


def test_train_live_starts_the_presets_runs(monkeypatch):
    started = []

    class FakeJob:
        def __init__(self, cfg, name):
            self.cfg, self.name, self.state, self.steps_done, self.out_dir, self.done = cfg, name, "running", 0, None, False

        def poll(self):
            pass

        def stop(self):
            self.done, self.state = True, "stopped"

        def wait(self, timeout=None):
            return True

    def fake_start(cfg, page="explore"):
        started.append(cfg)
        return FakeJob(cfg, f"{page}-{len(started)}")

    from dashboard import jobs

    monkeypatch.setattr(jobs, "start", fake_start)
    at = theory_app()
    at.button(key="btn_paper_train_le2015").click().run()
    assert not at.exception
    assert started == [papers.run_config(n) for n in papers.CHECK["le2015"].runs]
    assert at.button(key="btn_paper_train_le2015").disabled
    at.button(key="btn_paper_stop_le2015").click().run()
    assert not at.exception and not at.button(key="btn_paper_train_le2015").disabled


def test_a_preset_trained_live_is_judged_by_its_criterion(monkeypatch):
    # the le2015 preset shrunk to seconds (the real one is 10,000 steps): the same page path, a real service
    small = {"seq_len": 12, "hidden_size": 8, "steps": 20, "record_every": 5, "eval_every": 10}
    for name in papers.CHECK["le2015"].runs:
        monkeypatch.setitem(papers.RUNS, name, {**papers.RUNS[name], **small})
    at = theory_app()
    at.button(key="btn_paper_train_le2015").click().run()
    assert not at.exception
    live = at.session_state["page:theory:reproduce"].jobs["le2015"]
    assert set(live) == set(papers.CHECK["le2015"].runs)
    deadline = time.monotonic() + 120
    while not all(j.done for j in live.values()):  # a bounded wait, never a timing assertion
        for j in live.values():
            j.poll()
        assert time.monotonic() < deadline
        time.sleep(0.05)
    at.run()
    assert not at.exception
    judged = [m.value for m in at.markdown if "This session's run" in m.value]
    assert len(judged) == 1 and "does not agree (yet)" in judged[0]  # 20 steps solve nothing
    numbers = {n: papers.load_numbers(j.out_dir) for n, j in live.items()}
    assert papers.judge_le2015(numbers).agree is False
    links = [e.proto.query_string for e in at.get("page_link")]
    assert all(f"run={j.name}" in links for j in live.values())


def test_explore_and_theory_edit_one_set_of_values():
    at = AppTest.from_file(APP, default_timeout=90)
    at.query_params.update(cell="lstm", seq_len="12")
    at.run()
    values = lambda: {k: at.session_state["values"][k] for k in ("cell", "seq_len")}  # noqa: E731
    at.switch_page("pages/theory.py").run()
    assert values() == {"cell": "lstm", "seq_len": 12} and not at.exception  # Explore's values, not widget defaults
    at.selectbox(key="theory:w_cell").set_value("gru").run()
    assert values() == {"cell": "gru", "seq_len": 12} and at.query_params["cell"] in ("gru", ["gru"])
    at.switch_page("pages/explore.py").run()
    assert at.selectbox(key="w_cell").value == "gru" and at.session_state["panel:explore"].cfg.cell == "gru"
    at.number_input(key="w_seq_len").set_value(33).run()
    at.switch_page("pages/theory.py").run()
    assert at.number_input(key="theory:w_seq_len").value == 33 and values() == {"cell": "gru", "seq_len": 33}


def test_eigen_figure_draws_the_runs_own_start_when_it_differs():
    fig = TF.eigen_figure(np.array([0.1, 0.2]), np.array([0.9]), run_init=np.array([0.5j, -0.5j]))
    assert [d.name.split(":")[0] for d in fig.data] == ["unit circle |λ| = 1", "now", "the run at initialisation",
                                                        "at initialisation"]


def test_a_saved_run_opened_in_explore_is_drawn_with_its_own_start():
    cfg = make_config(seq_len=10, hidden_size=6, steps=12, init_gain=1.4, record_every=4)
    Trainer(cfg, out_dir=store.run_dir("saved-theory")).run()
    at = AppTest.from_file(APP, default_timeout=90)
    at.query_params["run"] = "saved-theory"
    at.run()
    at.switch_page("pages/theory.py").run()
    assert not at.exception and not at.error
    assert "Its settings differ from the sidebar" in captions(at).replace("\\", "")
    charts = {c.id: c.spec for c in run_charts(at)}
    eigen = next(v for k, v in charts.items() if "theory_chart_eigen" in k)
    names = [d["name"].split(":")[0] for d in eigen["data"]]
    assert names == ["unit circle |λ| = 1", "now", "the run at initialisation", "at initialisation"]
    drawn = eigen["data"][2]
    run_start = typed(drawn["x"]) + 1j * typed(drawn["y"])
    ref = theory.eigenvalues(theory.recurrent_blocks(theory.init_state(cfg), cfg))[0, 0]
    assert np.allclose(np.sort_complex(run_start), np.sort_complex(ref))
    bound = next(v for k, v in charts.items() if "theory_chart_bound" in k)
    assert "step 8" in bound["layout"]["title"]["text"].replace("<br>", " ")  # its latest recorded step
