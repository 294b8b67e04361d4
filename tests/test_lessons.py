"""Lessons: the files, the loader's one-line errors, the answers (oracle), the page, presenter mode."""
from __future__ import annotations

import math
import os
import textwrap
from pathlib import Path

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from charts import charts
from dashboard.chart_layout import chart_height
from dashboard.style import present_css
from rnn_core import make_config, store
from rnn_core.diagnostics import memory_horizon
from rnn_core.history import History
from rnn_core.lesson_answers import answer, latest_profile, log10_ratio, run_numbers, train_step
from rnn_core.lessons import (COMPARE_CHARTS, RUN_CHARTS, LessonError, load_lesson, load_lessons, parse_lesson)
from rnn_core.trainer import Trainer
from rnn_core.view import RunView

APP = str(Path(__file__).resolve().parents[1] / "streamlit_app.py")
LESSONS, PROBLEMS = load_lessons()


# --- the lesson files ---------------------------------------------------------------------------
def test_every_lesson_file_loads():
    assert PROBLEMS == []
    assert len(LESSONS) >= 12
    files = sorted(p.stem for p in (Path(APP).parent / "lessons").glob("*.toml"))
    assert sorted(LESSONS) == files


def test_lessons_cover_every_technique():
    """Every technique of the app appears in some lesson's configs (what the issue asks them to teach)."""
    seen: dict[str, set] = {}
    for lesson in LESSONS.values():
        for k in range(len(lesson.steps)):
            for _, cfg in lesson.configs(k):
                for key, value in cfg.model_dump().items():
                    seen.setdefault(key, set()).add(value)
    assert {"xavier", "kaiming", "orthogonal", "identity"} <= seen["init"]
    assert {"sigmoid", "relu", "tanh"} <= seen["activation"]
    assert {"lstm", "gru"} <= seen["cell"]
    assert {"norm", "value"} <= seen["clip_mode"] and max(seen["clip"]) > 0
    assert max(seen["init_gain"]) > 1
    assert "dot" in seen["attention"] and True in seen["residual"] and "layer" in seen["norm"]
    assert len(seen["optimizer"]) >= 3 and "cosine" in seen["schedule"]
    assert max(seen["dropout"]) > 0 and max(seen["weight_decay"]) > 0 and max(seen["input_noise"]) > 0
    assert max(seen["early_stopping_patience"]) > 0 and max(seen["train_size"]) > 0
    assert True in seen["curriculum"] and len(seen["forget_bias"]) >= 3
    assert seen["warm_start"] - {""} and {"input", "recurrent"} <= seen["freeze"]


@pytest.mark.parametrize("lesson_id", sorted(LESSONS))
def test_every_lesson_runs_and_answers(lesson_id):
    """Every config of every step trains (3 steps here), in order, so a warm start finds its source;
    the answer names choices that exist and says why."""
    lesson = LESSONS[lesson_id]
    for k, step in enumerate(lesson.steps):
        views, ans = train_step(lesson, k, steps=3)
        assert len(views) == max(1, len(step.compare))
        assert all(v.steps_done >= 1 for v in views)
        assert set(ans.correct) <= set(range(len(lesson.choices(k))))
        assert ans.why and "\n" not in ans.why
        assert step.chart in (COMPARE_CHARTS if step.compare else RUN_CHARTS)


def test_saved_source_is_found_by_the_warm_start():
    lesson = LESSONS["transfer"]
    source = lesson.steps[0].save_as
    train_step(lesson, 0, steps=2)
    assert (store.run_dir(source) / "model.safetensors").is_file()
    views, _ = train_step(lesson, 1, steps=2)
    assert [v.cfg.warm_start for v in views] == ["", source, source, source]


# --- the loader's one-line errors ---------------------------------------------------------------
GOOD = """
title = "A lesson"
text = "Some words."
[[steps]]
text = "Do this."
chart = "profile"
config = { seq_len = 20 }
[steps.question]
text = "How far back?"
metric = "memory_horizon"
choices = [{ label = "short", max = 10 }, { label = "long", min = 10 }]
"""


def _write(tmp_path: Path, text: str, name: str = "bad.toml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def test_a_good_file_loads(tmp_path):
    lesson = load_lesson(_write(tmp_path, GOOD, "good.toml"))
    assert lesson.id == "good" and lesson.configs(0)[0][1] == make_config(seq_len=20)


@pytest.mark.parametrize("old, new, expected", [
    ('title = "A lesson"', 'title = "A lesson"\ncolour = 1', "bad.toml: unknown key 'colour'"),
    ('chart = "profile"', 'chart = "profile"\nfoo = 1', "bad.toml: step 1: unknown key 'foo'"),
    ("config = { seq_len = 20 }", "config = { seq_len = 1 }", "bad.toml: step 1: config: seq_len=1 is invalid"),
    ("config = { seq_len = 20 }", "config = { sequence = 20 }", "bad.toml: step 1: config: 'sequence' is not a config key"),
    ("config = { seq_len = 20 }", 'config = { residual = true }', "bad.toml: step 1: config: residual"),
    ('text = "Some words."', 'text = "' + "word " * 151 + '"', "bad.toml: text has 151 words (at most 150)"),
    ('text = "Do this."', 'text = "' + "word " * 91 + '"', "bad.toml: step 1: text has 91 words"),
    ('chart = "profile"', 'chart = "pie"', "bad.toml: step 1: chart='pie' is not a chart (allowed: heatmap, profile"),
    ('chart = "profile"', 'chart = "attention"', "bad.toml: step 1: chart='attention' is not drawn for this config"),
    ('metric = "memory_horizon"', 'metric = "accuracy"', "bad.toml: step 1: question.metric=accuracy is invalid (Input should be 'memory_horizon'"),
    ('metric = "memory_horizon"', 'metric = "best"', "bad.toml: step 1: question.metric='best' needs a comparison"),
    ('{ label = "long", min = 10 }', '{ label = "long", min = 12 }', "bad.toml: step 1: question.choices: each choice's max"),
    ('{ label = "short", max = 10 }', '{ label = "short", min = 0, max = 10 }', "bad.toml: step 1: question.choices: the first choice needs no min"),
    ('metric = "memory_horizon"', 'metric = "beat_baseline"', "bad.toml: step 1: question.choices: metric='beat_baseline' takes value"),
    ('title = "A lesson"', 'title = "A lesson"\nlocked = ["colour"]',
     "bad.toml: locked: 'colour' is not a config key"),
    ('text = "How far back?"', "", "bad.toml: step 1: question.text is missing"),
    ('title = "A lesson"', 'title = "A lesson"\nid = "x"', "bad.toml: unknown key 'id'"),
    ('title = "A lesson"', 'title = "A lesson', "bad.toml: not valid TOML"),
])
def test_a_bad_file_is_refused_in_one_line(tmp_path, old, new, expected):
    assert old in GOOD
    path = _write(tmp_path, GOOD.replace(old, new, 1))
    with pytest.raises(LessonError) as err:
        load_lesson(path)
    message = str(err.value)
    assert message.startswith(expected), message
    assert "\n" not in message


def test_bad_categorical_and_comparison_choices(tmp_path):
    yes_no = GOOD.replace('metric = "memory_horizon"', 'metric = "beat_baseline"').replace(
        'choices = [{ label = "short", max = 10 }, { label = "long", min = 10 }]',
        'choices = [{ label = "yes", value = true }, { label = "also yes", value = true }]')
    with pytest.raises(LessonError, match="give each of true, false exactly once"):
        parse_lesson(yes_no, "x")
    compare = GOOD.replace('config = { seq_len = 20 }', 'config = { seq_len = 20 }\n[[steps.compare]]\nlabel = "a"\n'
                           'config = {}\n[[steps.compare]]\nlabel = "a"\nconfig = { cell = "gru" }')
    compare = compare.replace("[steps.question]", "[steps.question]", 1)
    with pytest.raises(LessonError, match="step 1: compare: two configs have the same label"):
        parse_lesson(compare, "x")


def test_a_folder_with_a_bad_file_still_loads_the_others(tmp_path):
    _write(tmp_path, GOOD, "good.toml")
    _write(tmp_path, GOOD.replace('chart = "profile"', 'chart = "pie"'), "bad.toml")
    lessons, problems = load_lessons(tmp_path)
    assert list(lessons) == ["good"]
    assert len(problems) == 1 and problems[0].startswith("bad.toml: step 1: chart='pie'")


def test_an_edited_lesson_file_is_read_again(tmp_path):
    """Parsed lessons are cached by file size and modification time: an edit is seen on the next
    load, a file made bad is refused, and mended it loads again."""
    path = _write(tmp_path, GOOD, "good.toml")
    first = load_lessons(tmp_path)[0]["good"]
    assert load_lessons(tmp_path)[0]["good"] is first  # unchanged: the same (frozen) lesson
    path.write_text(GOOD.replace('chart = "profile"', 'chart = "loss"'), encoding="utf-8")
    os.utime(path, ns=(path.stat().st_atime_ns, path.stat().st_mtime_ns + 10**9))
    assert load_lessons(tmp_path)[0]["good"].steps[0].chart == "loss"
    path.write_text(GOOD.replace('chart = "profile"', 'chart = "pie"'), encoding="utf-8")
    os.utime(path, ns=(path.stat().st_atime_ns, path.stat().st_mtime_ns + 2 * 10**9))
    lessons, problems = load_lessons(tmp_path)
    assert lessons == {} and problems[0].startswith("good.toml: step 1: chart='pie'")
    path.write_text(GOOD, encoding="utf-8")
    os.utime(path, ns=(path.stat().st_atime_ns, path.stat().st_mtime_ns + 3 * 10**9))
    assert load_lessons(tmp_path)[0]["good"] == first


# --- the answers: oracle ------------------------------------------------------------------------
def horizon_by_hand(g: np.ndarray, ratio: float = 1e-3) -> int:
    """memory_horizon written as the definition reads: walk back from the last step."""
    last = max(i for i in range(len(g)) if math.isfinite(g[i]))
    if not g[last] > 0:
        return 0
    n = 0
    for t in range(last, -1, -1):
        if g[t] < ratio * g[last]:
            return n
        n += 1
    return n


def test_answers_from_the_live_trainer_and_from_disk_agree(tmp_path):
    """The same run read two independent ways, the Trainer in memory and the files on disk, gives
    the same numbers, and so the same answer to every kind of question."""
    cfg = make_config(seq_len=30, steps=60, record_every=5, eval_every=10)
    out = store.run_dir("oracle")
    tr = Trainer(cfg, out_dir=out)
    h = History()
    while not tr.done:
        h.add(tr.step())
    live = RunView("oracle", cfg, tr.status, tr.summary(), h)
    disk = RunView.from_disk(out)
    a, b = run_numbers(live), run_numbers(disk)
    assert a["memory_horizon"] == b["memory_horizon"]
    assert a["log10_ratio"] == pytest.approx(b["log10_ratio"], abs=1e-9)
    assert a["final_val_loss"] == pytest.approx(b["final_val_loss"], rel=1e-6)
    assert a["outcome"] == b["outcome"] and a["beat_baseline"] == b["beat_baseline"]
    # the horizon and the ratio by hand, from the Trainer's own last recorded profile
    last = np.asarray(tr.recorder.stacked()["timestep_grads"][-1][0], dtype=np.float64)
    assert a["memory_horizon"] == horizon_by_hand(last) == memory_horizon(last)
    by_hand = sum(math.log10(max(last[t], 1e-300)) - math.log10(max(last[t + 1], 1e-300)) for t in range(len(last) - 1))
    assert a["log10_ratio"] == pytest.approx(by_hand, abs=1e-5)  # the view keeps float32 profiles
    for text in LESSONS["vanishing"].steps[1:2]:  # one numeric question, asked of both
        labels = [c.label for c in text.question.choices]
        assert answer(text.question, [a], labels).correct == answer(text.question, [b], labels).correct


def _question(metric: str, choices: str, by: str = "final_val_loss"):
    lesson = parse_lesson(GOOD.replace('metric = "memory_horizon"', f'metric = "{metric}"').replace(
        'choices = [{ label = "short", max = 10 }, { label = "long", min = 10 }]', choices), "x")
    return lesson.steps[0].question


def test_numeric_ranges_are_half_open():
    q = _question("memory_horizon", 'choices = [{ label = "short", max = 10 }, { label = "long", min = 10 }]')
    nums = {"memory_horizon": 10, "seq_len": 20}
    assert answer(q, [nums], ["short", "long"]).correct == (1,)
    assert answer(q, [{**nums, "memory_horizon": 9}], ["short", "long"]).correct == (0,)
    ans = answer(q, [{**nums, "memory_horizon": 20}], ["short", "long"])
    assert ans.correct == (1,) and "≥ 20 steps" in ans.why
    missing = answer(q, [{**nums, "memory_horizon": None, "state": "diverged"}], ["short", "long"])
    assert missing.correct == () and "diverged" in missing.why


def test_best_picks_the_lowest_loss_or_longest_horizon_and_ties():
    lesson = LESSONS["irnn"]
    q = lesson.steps[0].question  # best by memory_horizon
    labels = lesson.choices(0)
    runs = [{"memory_horizon": 12, "seq_len": 50}, {"memory_horizon": 50, "seq_len": 50}]
    assert answer(q, runs, labels).correct == (1,)
    tie = [{"memory_horizon": 50, "seq_len": 50}, {"memory_horizon": 50, "seq_len": 50}]
    assert answer(q, tie, labels).correct == (0, 1)
    loss_q = LESSONS["deep_stack"].steps[0].question
    runs = [{"final_val_loss": 0.6}, {"final_val_loss": None}, {"final_val_loss": 0.3}]
    assert answer(loss_q, runs, LESSONS["deep_stack"].choices(0)).correct == (2,)


def test_log10_ratio_of_a_known_profile():
    g = np.array([1e-12, 1e-6, 1.0, np.nan])  # curriculum padding at the end: the last finite is 1.0
    assert log10_ratio(g) == pytest.approx(-12.0)
    assert log10_ratio(np.array([0.0, 1.0])) == pytest.approx(-300.0)  # an exact zero reads as 1e-300

    class H:
        def recorded(self, name):
            return np.array([[[1.0, 1.0]], [[np.nan, np.nan]]])  # the latest step diverged
    assert latest_profile(H()).tolist() == [1.0, 1.0]


# --- the page -------------------------------------------------------------------------------------
def lessons_app(**params) -> AppTest:
    """The app under st.navigation, switched to Lessons with `params` in its link (the first run is
    Explore's, as in tests/test_compare.py: the link is set again before Lessons runs)."""
    at = AppTest.from_file(APP, default_timeout=60).run()
    at.switch_page("pages/lessons.py")
    for k in list(at.query_params):
        del at.query_params[k]
    for k, v in params.items():
        at.query_params[k] = v
    return at.run()


def state(at: AppTest):
    return at.session_state["page:lessons"]


def wait_jobs(at: AppTest, timeout: float = 120) -> None:
    for job in state(at).jobs:
        assert job.wait(timeout=timeout), "the job did not end"


def test_page_lists_every_lesson():
    at = lessons_app()
    assert not at.exception
    assert {b.key for b in at.button} >= {f"les_open_{k}" for k in LESSONS}
    assert not at.warning


def test_open_predict_train_answer_and_step():
    at = lessons_app()
    at.button(key="les_open_vanishing").click().run()
    assert state(at).lesson == "vanishing" and state(at).step == 0
    assert at.query_params["lesson"] == "vanishing" and at.query_params["step"] == "1"
    # locked keys are shown disabled, hidden ones not at all
    assert at.selectbox(key="les_w_task").disabled and at.selectbox(key="les_w_cell").disabled
    with pytest.raises(KeyError):
        at.selectbox(key="les_w_device")
    assert at.button(key="les_train").disabled  # no prediction yet
    at.radio(key="les_q_vanishing_0").set_value(0).run()  # "yes"
    assert not at.button(key="les_train").disabled
    at.number_input(key="les_w_steps").set_value(120).run()  # a student's own variation
    at.button(key="les_train").click().run()
    assert not at.exception
    assert [c.steps for c in state(at).cfgs] == [120]
    wait_jobs(at)
    at.run()
    view = state(at).jobs[0].view()
    numbers = run_numbers(view)
    verdict = [s.value for s in at.success] + [w.value for w in at.warning]
    said = next(v for v in verdict if "You predicted" in v)
    assert ("That is what the run shows" in said) == numbers["beat_baseline"]
    assert f"{numbers['final_val_loss']:.4g}".replace(".", "\\.") in said  # the run's own number, shown
    assert at.radio(key="les_q_vanishing_0").disabled
    at.button(key="les_next").click().run()
    assert state(at).step == 1 and at.query_params["step"] == "2"
    assert at.number_input(key="les_w_seq_len").value == 60  # the new step's own settings
    assert not state(at).runs_here()
    at.button(key="les_back").click().run()
    assert state(at).step == 0 and at.button(key="les_back").disabled


def test_comparison_step_trains_every_config():
    at = lessons_app(lesson="attention", step="1")
    assert state(at).lesson == "attention"
    with pytest.raises(KeyError):  # the compared key is set per column, not in the sidebar
        at.selectbox(key="les_w_attention")
    at.number_input(key="les_w_steps").set_value(20).run()
    at.radio(key="les_q_attention_0").set_value(1).run()
    at.button(key="les_train").click().run()
    assert [c.attention for c in state(at).cfgs] == ["none", "dot"]
    wait_jobs(at)
    at.run()
    assert not at.exception
    texts = [x.value for x in [*at.success, *at.warning, *at.info]]
    assert any("longest memory horizon" in t for t in texts)


def test_lesson_link_opens_a_step_and_bad_links_fall_back():
    at = lessons_app(lesson="irnn", step="2")
    assert (state(at).lesson, state(at).step) == ("irnn", 1) and not at.warning
    at = lessons_app(lesson="nope](http://x)", step="1")
    assert state(at).lesson is None
    assert any("There is no lesson" in w.value and "`nope](http://x)`" in w.value for w in at.warning)
    assert not at.exception
    at = lessons_app(lesson="irnn", step="9")
    assert (state(at).lesson, state(at).step) == ("irnn", 0)
    assert any("steps 1 to 2" in w.value for w in at.warning)
    assert at.query_params["step"] == "1"


def test_transfer_step_2_waits_for_its_source():
    at = lessons_app(lesson="transfer", step="2")
    at.radio(key="les_q_transfer_1").set_value(0).run()
    assert at.button(key="les_train").disabled
    assert any("Train step 1 first" in w.value for w in at.warning)


def _plotly_specs(at: AppTest) -> list[dict]:
    return [c.spec for c in charts(at)]


def test_present_mode_on_explore_then_lessons():
    """?present=1 on the entry page (Explore): the mode is on for the session, the link keeps it,
    the page never warns about it, the sidebar is hidden and every chart is big; Lessons then
    draws big charts too. (AppTest runs a switched-to page's script alone, so the entry file's
    part is checked on Explore's run; tests/test_browser.py checks the whole in a browser.)"""
    at = AppTest.from_file(APP, default_timeout=60)
    at.query_params["present"] = "1"
    at.run()
    assert not at.exception and not at.warning
    assert at.session_state["present_mode"] is True
    assert at.query_params["present"] == "1"  # kept in the link
    assert any(present_css() in h.proto.body for h in at.get("html"))  # the sidebar hidden, every page
    specs = _plotly_specs(at)
    assert specs and all(s["layout"]["xaxis"]["tickfont"]["size"] >= 18 for s in specs)
    assert all(s["layout"]["xaxis"]["title"]["font"]["size"] >= 18 for s in specs)
    at.switch_page("pages/lessons.py")
    for k in list(at.query_params):
        del at.query_params[k]
    at.query_params["lesson"], at.query_params["step"] = "vanishing", "2"
    at.run()
    assert not at.exception and state(at).step == 1
    specs = _plotly_specs(at)
    assert specs and all(s["layout"]["xaxis"]["tickfont"]["size"] >= 18 for s in specs)
    at.button(key="les_next").click().run()
    assert state(at).step == 2 and not at.exception


def test_present_mode_off_and_a_bad_value():
    at = AppTest.from_file(APP, default_timeout=60)
    at.query_params["present"] = "0"
    at.run()
    assert at.session_state["present_mode"] is False
    assert not any(present_css() in h.proto.body for h in at.get("html"))
    at = AppTest.from_file(APP, default_timeout=60)
    at.query_params["present"] = "maybe"
    at.run()
    assert any("present=maybe" in w.value and "present=1" in w.value for w in at.warning)


def test_enlarge_matches_the_builders_big_layout():
    """Two ways to a presenter-mode chart agree: a builder's big=True, and present.enlarge of its
    normal figure (what Compare's small multiples get): fonts, line widths, margins, height."""
    from dashboard import figures as F
    from dashboard.present import enlarge

    steps = np.arange(50)
    pre = np.geomspace(1, 100, 50)
    post = np.minimum(pre, 5.0)
    args = (steps, pre, post, pre > 5.0, 5.0, "norm")
    big, small = F.clipping_figure(*args, big=True), F.clipping_figure(*args)
    made = enlarge(small)
    for fig in (big, made):
        assert fig.layout.xaxis.tickfont.size >= 18 and fig.layout.xaxis.title.font.size >= 18
        assert fig.layout.yaxis.tickfont.size >= 18 and fig.layout.legend.font.size >= 18
    assert made.layout.height == big.layout.height > small.layout.height
    assert made.layout.margin.l == big.layout.margin.l
    lines = [t.line.width for t in made.data if "lines" in (t.mode or "lines")]
    assert lines and min(lines) >= 3
    assert [t.line.width for t in made.data] == [t.line.width for t in big.data]


def test_present_mode_makes_compare_charts_big():
    at = AppTest.from_file(APP, default_timeout=60)
    at.query_params["present"] = "1"
    at.run()
    at.switch_page("pages/compare.py")
    for k in list(at.query_params):
        del at.query_params[k]
    at.run()
    assert not at.exception
    specs = _plotly_specs(at)
    assert len(specs) >= 5
    assert all(s["layout"]["xaxis"]["title"]["font"]["size"] >= 18 for s in specs)
    assert all(s["layout"]["height"] >= chart_height(big=True) for s in specs)


@pytest.mark.parametrize("lesson, cell", [("gru", "gru"), ("sigmoid", "rnn")])
def test_a_gates_step_frame_has_the_height_of_its_filled_chart(lesson, cell):
    """Before Train, a lesson step's gates frame is as tall as the chart that replaces it (an LSTM's
    or GRU's two panels are taller than an RNN's one), so the page does not move when it fills in."""
    import numpy as np

    from dashboard import figures as F

    at = AppTest.from_file(APP, default_timeout=60).run()
    at.switch_page("pages/lessons.py")
    at.query_params["lesson"], at.query_params["step"] = lesson, "2" if lesson == "gru" else "1"
    at.run()
    assert not at.exception
    (gates,) = [c for c in charts(at) if c.id.endswith("gates")]
    G, T = (3, 50) if cell == "gru" else (1, 50)
    filled = (F.gates_figure(np.zeros((G, T)), np.zeros((G, T)), cell) if cell != "rnn" else
              F.saturation_figure(np.zeros((1, T)), "sigmoid", 1))
    assert gates.spec["layout"]["height"] == filled.layout.height
