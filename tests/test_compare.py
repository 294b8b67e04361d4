"""The Compare page: its link, same data in every column, one colour scale, readable axes, and the
page under AppTest (diff view, Train all, saved runs)."""
from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import numpy as np
import pytest
import torch
from streamlit.testing.v1 import AppTest

from dashboard import compare_figures as CF
from dashboard.compare_table import diff_rows, first_beat_step, summary_row
from dashboard.compare_url import compare_link, comparison_from_query, query_from_comparison, runs_from_query
from dashboard.schema import build_config, defaults, effective_values
from rnn_core import make_config, store
from rnn_core import trainer as trainer_mod
from rnn_core.history import History
from rnn_core.trainer import Trainer
from rnn_core.view import RunView

APP = str(Path(__file__).resolve().parents[1] / "streamlit_app.py")


def unescaped(text: str) -> str:
    return re.sub(r"\\(.)", r"\1", text)


# --- the link ---------------------------------------------------------------------------------
def test_url_round_trip():
    shared = {**defaults(), "seq_len": 100, "clip": 1.0}
    overrides = [{"cell": "rnn"}, {"cell": "lstm", "forget_bias": 2.0}, {}, {"clip": 0.0}]
    q = query_from_comparison(shared, overrides)
    assert q == {"seq_len": "100", "clip": "1", "a.cell": "rnn", "b.cell": "lstm", "b.forget_bias": "2",
                 "d.clip": "0"}
    back, ovs, warnings = comparison_from_query(q)
    assert warnings == []
    assert effective_values(back) == effective_values(shared) and ovs == overrides


def test_trailing_empty_columns_are_kept_by_cols():
    shared = defaults()
    q = query_from_comparison(shared, [{"cell": "gru"}, {}, {}])
    assert q == {"cols": "3", "a.cell": "gru"}
    assert comparison_from_query(q)[1] == [{"cell": "gru"}, {}, {}]
    assert query_from_comparison(shared, [{}, {}]) == {}


def test_compare_link_opens_two_equal_columns():
    cfg = make_config(seq_len=100, cell="lstm", clip=1.0)
    link = compare_link(cfg)
    parts = urlsplit(link)
    assert parts.path == "/compare"
    shared, overrides, warnings = comparison_from_query({k: v for k, v in parse_qs(parts.query).items()})
    assert warnings == [] and overrides == [{}, {}]
    assert build_config(shared)[0] == cfg
    assert compare_link(make_config()) == "/compare"


@pytest.mark.parametrize("params, needle", [
    ({"foo": "1"}, "`foo` was ignored: it is not a setting"),
    ({"a.foo": "1"}, "`a.foo=1` was ignored: it is not a setting"),
    ({"a.clip": "x"}, "`a.clip=x` was ignored"),
    ({"e.cell": "gru"}, "`e.cell=gru` was ignored: columns are a, b, c, d"),
    ({"b.forget_bias": "2"}, "`b.forget_bias=2` was ignored"),  # no effect on an RNN
    ({"cols": "9"}, "`cols=9` was ignored"),
])
def test_bad_links_warn_and_fall_back(params, needle):
    shared, overrides, warnings = comparison_from_query(params)
    assert any(needle in unescaped(w) for w in warnings), warnings
    assert effective_values(shared) == effective_values(defaults())
    assert overrides == [{}, {}]


def test_a_column_seed_is_kept_with_a_warning():
    _, overrides, warnings = comparison_from_query({"a.seed": "3"})
    assert overrides == [{"seed": 3}, {}]
    assert len(warnings) == 1 and "different data" in warnings[0]


def test_runs_link():
    assert runs_from_query({"runs": "x, y,x"}) == (["x", "y"], [])
    names, warnings = runs_from_query({"runs": "only"})
    assert names == ["only"] and "needs 2 to 4" in unescaped(warnings[0])
    assert runs_from_query({"runs": "a,b,c,d,e"})[0] == ["a", "b", "c", "d"]


# --- same seed, same data ----------------------------------------------------------------------
@pytest.mark.parametrize("a, b", [({"cell": "rnn"}, {"cell": "lstm"}), ({"clip": 0.0}, {"clip": 1.0}),
                                  ({"optimizer": "sgd"}, {"init": "orthogonal"})])
def test_columns_draw_identical_batches(monkeypatch, a, b):
    drawn: list[tuple[torch.Tensor, torch.Tensor]] = []
    real = trainer_mod.make_batch

    def capture(cfg, gen, batch_size, seq_len=None, split="train"):
        x, y = real(cfg, gen, batch_size, seq_len, split)
        if split == "train":
            drawn.append((x.clone(), y.clone()))
        return x, y

    monkeypatch.setattr(trainer_mod, "make_batch", capture)
    shared = {**defaults(), "seq_len": 12, "hidden_size": 8, "steps": 50}
    batches = []
    for ov in (a, b):
        cfg, err = build_config({**shared, **ov})
        assert err is None
        drawn.clear()
        tr = Trainer(cfg)
        for _ in range(4):
            tr.step()
        batches.append(list(drawn))
    assert len(batches[0]) == len(batches[1]) == 4
    for (xa, ya), (xb, yb) in zip(*batches):
        assert torch.equal(xa, xb) and torch.equal(ya, yb)


# --- small multiples ---------------------------------------------------------------------------
def _view(name: str, grads: list[np.ndarray] | None = None, pre: np.ndarray | None = None, **cfg) -> RunView:
    h = History()
    for step, g in enumerate(grads or []):
        h.add_arrays(step, {"timestep_grads": np.asarray(g, dtype=np.float64)[None, :]})
    if pre is not None:
        for step, v in enumerate(pre):
            h.add_scalars({"step": step, "loss": 1.0, "grad_norm_pre_clip": v, "grad_norm_post_clip": v,
                           "clipped": False, "step_time_ms": 2.0})
    return RunView(name, make_config(seq_len=5, **cfg), "running", {}, h)


def test_heatmaps_share_one_colour_scale():
    small = [np.array([1e-8, 1e-6, 1e-4, 1e-2, 1.0])] * 3
    large = [np.array([1e-1, 1.0, 10.0, 100.0, 1e3])] * 3
    figs = CF.heatmaps({"a": _view("a", small), "b": _view("b", large)})
    za, zb = figs["a"].data[0], figs["b"].data[0]
    assert (za.zmin, za.zmax) == (zb.zmin, zb.zmax) == pytest.approx((-8.0, 3.0))
    assert CF.shared_zrange([None, np.array([[0.0, 1.0]])]) == pytest.approx((-0.5, 0.5))  # a zero is not the floor
    assert CF.shared_zrange([None]) is None


def test_an_early_spike_does_not_set_the_norm_range():
    pre = np.ones(600)
    pre[0] = 1e6  # the first step's norm exploded, then training settled
    pre[1:] = np.linspace(0.5, 2.0, 599)
    fig = CF.norms_figure({"a": _view("a", pre=pre), "b": _view("b", pre=pre * 3)})
    lo, hi = fig.layout.yaxis.range
    assert hi < 2  # log10: well under the spike's 6
    assert lo < np.log10(0.5) and hi > np.log10(6.0)  # the recent window of both columns fits
    assert CF.recent_log_range([np.array([1e6, 1.0, 1.0])], window=2) == pytest.approx([-0.8, 0.8])


def test_profiles_overlay_one_colour_per_column_and_log_range_from_latest():
    early = np.array([1e9, 1e9, 1e9, 1e9, 1e9])  # an old profile must not set the range
    va = _view("a", [early, np.array([1e-4, 1e-3, 1e-2, 1e-1, 1.0])])
    vb = _view("b", [np.array([1e-2, 1e-2, 1e-1, 1e-1, 1.0])], cell="lstm")
    fig = CF.profiles_figure({"a": va, "b": vb})
    lines = [t for t in fig.data if t.line.dash is None]
    assert [t.line.color for t in lines] == [CF.colour("a"), CF.colour("b")]
    lo, hi = fig.layout.yaxis.range
    assert lo == pytest.approx(-4.3) and hi == pytest.approx(0.3)


def test_loss_baselines_one_line_when_shared_each_when_they_differ():
    def with_bar(v: RunView, bar: float) -> RunView:
        return RunView(v.name, v.cfg, v.state, {"val_baseline": bar}, v.history)

    same = CF.losses_figure({"a": with_bar(_view("a", pre=np.ones(3)), 0.17),
                             "b": with_bar(_view("b", pre=np.ones(3)), 0.17)})
    assert sum("baseline" in t.name for t in same.data) == 1
    differ = CF.losses_figure({"a": with_bar(_view("a", pre=np.ones(3)), 0.17),
                               "b": with_bar(RunView("b", make_config(seq_len=9), "running", {},
                                                     _view("b", pre=np.ones(3)).history), 0.2)})
    assert sum("baseline" in t.name for t in differ.data) == 2
    assert "baselines" in differ.layout.title.subtitle.text


# --- tables --------------------------------------------------------------------------------------
def test_diff_rows_list_the_differing_keys_only():
    a = effective_values({**defaults(), "cell": "lstm"})
    b = effective_values(defaults())
    assert diff_rows({"a": a, "b": b}) == [{"key": "cell", "a": "lstm", "b": "rnn"}]
    assert len(diff_rows({"a": a, "b": b}, show_all=True)) == len(defaults())


def test_first_beat_step_and_summary_row():
    steps = np.arange(6)
    val = np.array([np.nan, 1.0, np.nan, 0.995, 0.98, 0.5])
    assert first_beat_step(steps, val, 1.0) == 4  # 0.995 is not 1% below
    assert first_beat_step(steps, val, None) is None
    v = _view("a", [np.ones(5)], pre=np.ones(10))
    row = summary_row("a", v)
    assert row["column"] == "a" and row["ms / step"] == "2" and row["clipped"] == "0 %"
    assert row["memory horizon"] == "≥ 5"


# --- the page ------------------------------------------------------------------------------------
def compare_app(**params) -> AppTest:
    """The app under st.navigation, switched to Compare with `params` in its link (the first run is
    Explore's, which rewrites the link to its own keys: the link is set again before Compare runs)."""
    at = AppTest.from_file(APP, default_timeout=60).run()
    at.switch_page("pages/compare.py")
    for k in list(at.query_params):
        del at.query_params[k]
    for k, v in params.items():
        at.query_params[k] = v
    return at.run()


def diff_table(at: AppTest):
    """AppTest gives a dataframe no key: the diff table is the page's first, the summary its second."""
    return at.dataframe[0]


def summary_table(at: AppTest):
    assert len(at.dataframe) == 2, "no summary table"
    return at.dataframe[1]


def wait(job, until=None, timeout: float = 120) -> None:
    assert job.wait(timeout=timeout, until=until), "the job did not get there"


def test_page_loads_clean():
    at = compare_app()
    assert not at.exception and not at.error and not at.warning
    assert at.title[0].value.startswith("Compare")
    assert not at.button(key="cmp_btn_train").disabled


def test_the_diff_view_lists_exactly_the_overridden_keys():
    at = compare_app(**{"seq_len": "20", "a.cell": "lstm", "b.clip": "1"})
    assert not at.exception and not at.warning
    diff = diff_table(at).value
    assert list(diff.index) == ["cell", "clip"]
    assert diff.loc["cell"].tolist() == ["lstm", "rnn"] and diff.loc["clip"].tolist() == ["0", "1"]
    at.toggle(key="cmp_show_all").set_value(True).run()
    assert len(diff_table(at).value) == len(defaults())


def test_bad_link_warns_and_an_invalid_column_disables_train():
    at = compare_app(**{"seq_len": "10", "a.task": "copy", "e.cell": "gru", "a.seed": "4"})
    assert not at.exception
    text = unescaped(" ".join(w.value for w in at.warning))
    assert "e.cell=gru" in text and "a.seed=4" in text
    assert any("Column a" in e.value and "too short" in unescaped(e.value) for e in at.error)
    assert at.button(key="cmp_btn_train").disabled


def test_add_and_remove_columns_write_the_link():
    at = compare_app()
    at.button(key="cmp_btn_add").click().run()
    assert not at.exception and at.query_params["cols"] == "3"
    at.multiselect(key="cmp_c_keys").set_value(["cell"]).run()
    at.selectbox(key="cmp_c_w_cell").set_value("gru").run()
    assert not at.exception and at.query_params["c.cell"] == "gru" and "cols" not in at.query_params
    assert list(diff_table(at).value.index) == ["cell"]
    at.button(key="cmp_btn_remove").click().run()
    assert not at.exception and "c.cell" not in at.query_params
    assert at.button(key="cmp_btn_remove").disabled


def test_train_all_trains_every_column_with_the_same_data():
    at = compare_app(**{"seq_len": "10", "hidden_size": "8", "steps": "30", "b.clip": "1"})
    at.button(key="cmp_btn_train").click().run()
    assert not at.exception
    cs = at.session_state["page:compare"]
    assert set(cs.jobs) == {"a", "b"}
    for job in cs.jobs.values():
        wait(job)
        assert job.state == "finished"
    at.run()
    assert not at.exception and not at.error
    summary = summary_table(at).value
    assert list(summary.index) == ["a", "b"]
    assert set(summary["verdict"]) <= {"solved", "stuck at baseline", "diverged", "still learning"}
    a, b = (cs.jobs[k].view() for k in "ab")
    assert a.summary["val_baseline"] == b.summary["val_baseline"]  # same seed: the same validation batch
    assert at.button(key="cmp_btn_stop").disabled


def _saved(name: str, **cfg) -> None:
    Trainer(make_config(seq_len=10, hidden_size=8, steps=12, record_every=2, **cfg),
            out_dir=store.run_dir(name)).run()


def test_saved_runs_are_drawn_side_by_side_and_a_bad_name_warns():
    _saved("run-rnn")
    _saved("run-lstm", cell="lstm")
    at = compare_app(runs="run-rnn,run-lstm,nope,../x")
    assert not at.exception
    text = unescaped(" ".join(w.value for w in at.warning))
    assert "nope" in text and "../x" in text
    summary = summary_table(at).value
    assert summary["run"].tolist() == ["run-rnn", "run-lstm"]
    assert "cell" in diff_table(at).value.index
    assert not any(b.key == "cmp_btn_train" for b in at.button)  # saved runs are not trainable


def test_waiting_columns_say_their_place_in_the_queue():
    at = compare_app(**{"seq_len": "10", "hidden_size": "8", "steps": "100000", "cols": "4"})
    at.button(key="cmp_btn_train").click().run()
    cs = at.session_state["page:compare"]
    try:
        workers = cs.jobs["a"]._service.settings.workers
        if workers >= 4:
            pytest.skip("every column has a worker on this machine: none waits")
        at.run()
        queued = [i.value for i in at.info if "queued" in i.value]
        assert any(q.endswith("queued: 1st") for q in queued), queued
        if workers <= 2:
            assert any(q.startswith("d: queued: 2nd") for q in queued), queued
    finally:
        at.button(key="cmp_btn_stop").click().run()
        for job in cs.jobs.values():
            wait(job)


def test_a_new_link_is_read_anew_and_an_emptied_one_keeps_the_comparison():
    at = compare_app(**{"a.cell": "lstm"})
    at.selectbox(key="cmp_a_w_cell").set_value("gru").run()
    assert at.query_params["a.cell"] == "gru"
    for k in list(at.query_params):  # the navigation between pages empties the link
        del at.query_params[k]
    at.run()
    assert not at.exception and at.selectbox(key="cmp_a_w_cell").value == "gru"
    assert at.query_params["a.cell"] == "gru"  # written back
    for k in list(at.query_params):
        del at.query_params[k]
    at.query_params["seq_len"] = "30"  # Explore's "Open in Compare" with its own settings
    at.run()
    assert not at.exception
    assert at.session_state["page:compare"].overrides == [{}, {}]
    assert at.number_input(key="cmp_w_seq_len").value == 30
    assert list(at.query_params) == ["seq_len"]
