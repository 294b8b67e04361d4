"""The Explore page under streamlit.testing.v1.AppTest: controls, Train / Stop / Resume, links.

AppTest runs the whole script on each .run(), fragment included (its run_every timer does not
tick here). Training happens in the server's training service (threads here: see conftest), so a
test that trains waits on the job with a bounded loop, then runs the page again to draw it.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from charts import charts
from dashboard.schema import MAIN_FIELDS, advanced_fields, widget_specs
from rnn_core import make_config, store
from rnn_core.config import RunConfig
from rnn_core.trainer import Trainer

APP = str(Path(__file__).resolve().parents[1] / "streamlit_app.py")

# A non-default value for every field, and what must be set first for the field to matter.
CHANGES: dict[str, tuple[object, dict]] = {
    "task": ("copy", {}), "seq_len": (51, {}), "forecast_steps": (2, {"task": "sine"}),
    "digits_mode": ("row", {"task": "digits"}), "cell": ("gru", {}), "activation": ("relu", {}),
    "init": ("orthogonal", {}), "init_gain": (1.5, {}), "forget_bias": (2.0, {"cell": "lstm"}),
    "embed_size": (33, {"task": "charlm"}), "hidden_size": (65, {}), "layers": (2, {}),
    "bidirectional": (True, {}), "residual": (True, {"layers": 2}), "norm": ("layer", {}), "dropout": (0.1, {}),
    "attention": ("dot", {}), "batch_size": (33, {}), "train_size": (64, {}), "steps": (301, {}), "seed": (1, {}), "optimizer": ("sgd", {}),
    "lr": (0.002, {}), "weight_decay": (0.01, {}), "schedule": ("cosine", {}), "warmup_steps": (1, {}),
    "clip": (1.0, {}), "clip_mode": ("value", {"clip": 1.0}), "input_noise": (0.1, {}),
    "early_stopping_patience": (1, {}), "curriculum": (True, {}), "curriculum_start": (11, {"curriculum": True}),
    "warm_start": ("base", {}), "freeze": ("input", {"warm_start": "base"}), "device": ("cpu", {}),
    "engine": ("unrolled", {}), "record_every": (2, {}), "gates_every": (2, {"cell": "lstm"}), "eval_every": (11, {}),
}


def new_app(**params) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=60)
    for k, v in params.items():
        at.query_params[k] = v
    return at.run()


def widget(at: AppTest, name: str):
    key = f"w_{name}"
    kind = widget_specs()[name].kind
    if kind == "toggle":
        return at.toggle(key=key)
    if kind in ("select", "text"):
        return at.selectbox(key=key)
    for finder in (at.number_input, at.slider):
        try:
            return finder(key=key)
        except KeyError:
            continue
    raise KeyError(key)


def cfg_of(at: AppTest) -> RunConfig | None:
    return at.session_state["panel:explore"].cfg


def unescaped(text: str) -> str:
    """Alert text as the user reads it: the page backslash-escapes Markdown characters."""
    import re

    return re.sub(r"\\(.)", r"\1", text)


def test_schema_covers_every_field_once():
    assert set(MAIN_FIELDS) | set(advanced_fields()) == set(RunConfig.model_fields)
    assert set(CHANGES) == set(RunConfig.model_fields)


def test_app_starts_clean_with_defaults():
    at = new_app()
    assert not at.exception
    assert not at.error and not at.warning
    assert cfg_of(at) == make_config()
    assert [b.label for b in at.button][:3] == ["Train", "Stop", "Resume"]
    assert at.button(key="btn_stop").disabled and at.button(key="btn_resume").disabled
    # fields that do not matter with the defaults are notes, not widgets
    for hidden in ("forget_bias", "forecast_steps", "digits_mode", "embed_size", "clip_mode", "residual",
                   "curriculum_start", "freeze"):
        with pytest.raises(KeyError):
            widget(at, hidden)
    assert widget(at, "device").options == ["auto", "cpu"] or "cuda" in widget(at, "device").options


def test_every_control_reaches_the_config():
    # a finished run to warm-start from, so warm_start and freeze have a valid choice
    Trainer(make_config(steps=1, seq_len=51, hidden_size=65), out_dir=store.run_dir("base")).run()
    at = new_app()
    for name, (value, needs) in CHANGES.items():
        for k, v in needs.items():
            widget(at, k).set_value(v)
            at.run()
        widget(at, name).set_value(value)
        at.run()
        assert not at.exception, name
        cfg = cfg_of(at)
        assert cfg is not None, (name, [e.value for e in at.error])
        got = getattr(cfg, name)
        assert got == pytest.approx(value) if isinstance(value, float) else got == value, name
        # put things back, so each field is checked on its own
        for k in [name, *needs]:
            try:
                widget(at, k).set_value(widget_specs()[k].default)
            except KeyError:
                pass  # already hidden again
            at.run()
    assert not at.exception


def test_invalid_combination_shows_error_and_disables_train():
    at = new_app()
    widget(at, "task").set_value("copy")
    widget(at, "seq_len").set_value(10)
    at.run()
    assert not at.exception
    assert cfg_of(at) is None
    assert any("seq_len=10 is too short for task=copy" in unescaped(e.value) for e in at.error)
    assert at.button(key="btn_train").disabled


def test_digits_fixes_the_sequence_length():
    at = new_app()
    widget(at, "task").set_value("digits")
    at.run()
    assert cfg_of(at).seq_len == 64
    widget(at, "digits_mode").set_value("row")
    at.run()
    assert cfg_of(at).seq_len == 8 and not at.error


def test_bad_link_warns_and_falls_back_to_defaults():
    at = new_app(seq_len="abc", cell="lstm", bogus="1", clip="-3", device="tpu")
    assert not at.exception
    text = " ".join(w.value for w in at.warning)
    assert "seq_len=abc" in text and "bogus" in text and "clip" in text and "device" in text
    cfg = cfg_of(at)
    assert cfg.cell == "lstm"  # the good key was kept
    assert cfg.seq_len == 50 and cfg.clip == 0.0  # the bad ones have their defaults


def test_link_restores_an_experiment_and_widgets_write_it_back():
    at = new_app(cell="gru", seq_len="120", clip="1", clip_mode="value")
    assert not at.warning
    cfg = cfg_of(at)
    assert (cfg.cell, cfg.seq_len, cfg.clip, cfg.clip_mode) == ("gru", 120, 1.0, "value")
    widget(at, "hidden_size").set_value(32)
    at.run()
    q = at.query_params
    assert q["hidden_size"] in ("32", ["32"]) and q["cell"] in ("gru", ["gru"])
    assert "task" not in q  # defaults stay out of the link


def panel(at: AppTest):
    return at.session_state["panel:explore"]


def wait(job, cond=lambda j: j.done, timeout=120):
    """Bound a wait on the service (never a timing assertion)."""
    import time

    deadline = time.monotonic() + timeout
    while not cond(job):
        job.poll()
        assert time.monotonic() < deadline, "the job did not get there"
        time.sleep(0.02)


def test_train_records_steps_stop_stops_and_resume_continues():
    at = new_app(seq_len="20", hidden_size="16", steps="100000")
    at.button(key="btn_train").click().run()
    assert not at.exception
    job = panel(at).job
    assert job is not None
    wait(job, lambda j: j.steps_done >= 3)
    assert (store.run_dir(job.name) / "config.json").is_file()
    at.run()
    assert not at.exception and "steps/s" in at.get("progress")[0].proto.text
    at.button(key="btn_stop").click().run()
    wait(job)
    assert job.state == "stopped"
    stopped_at = job.steps_done
    at.run()
    assert job.steps_done == stopped_at  # nothing trains after Stop
    assert any("Stopped" in i.value for i in at.info)
    assert not at.button(key="btn_resume").disabled
    at.button(key="btn_resume").click().run()
    resumed = panel(at).job
    assert not at.exception and resumed is not job and resumed.name == job.name
    wait(resumed, lambda j: j.steps_done > stopped_at)
    resumed.stop()
    wait(resumed)
    view = resumed.view()
    assert view.history.recorded_steps()[0] == 0  # the charts start from what the store held


def test_lstm_with_attention_layers_and_directions_draw_without_error():
    at = new_app(cell="lstm", attention="dot", layers="2", bidirectional="true", seq_len="16", hidden_size="8",
                 steps="20")
    at.button(key="btn_train").click().run()
    wait(panel(at).job)
    at.run()
    assert not at.exception and not at.error
    assert at.selectbox(key="view_ld").options == ["layer 1 →", "layer 1 ←", "layer 2 →", "layer 2 ←"]
    at.selectbox(key="view_ld").set_value(3).run()
    assert not at.exception
    h = panel(at).job.view().history
    assert h.recorded("timestep_grads").shape[1:] == (4, 16) and "attention_mean" in h.latest
    assert any("Finished" in s.value for s in at.success)


def test_divergence_shows_banner_with_step_and_keeps_charts():
    # a linear RNN with W_hh scaled by 10 overflows at once
    at = new_app(activation="linear", init="orthogonal", init_gain="10", seq_len="60", hidden_size="16")
    at.button(key="btn_train").click().run()
    job = panel(at).job
    wait(job)
    at.run()
    assert not at.exception
    assert job.state == "diverged"
    step = job.summary["diverged_at"]
    assert any(f"Diverged at step {step}" in e.value for e in at.error)
    assert job.view().history.n >= 1  # the steps up to the divergence are still there to plot


def test_curriculum_trains_in_the_app():
    # was: "Training failed at step 3: ValueError: timestep_grads changed shape from (1, 10) to (1, 11)"
    at = new_app(curriculum="true", steps="40", record_every="1")
    at.button(key="btn_train").click().run()
    job = panel(at).job
    wait(job)
    at.run()
    assert job.state == "finished", job.error
    assert not at.exception and not at.error
    grads = job.view().history.recorded("timestep_grads")
    assert grads.shape[-1] == 50 and np.isnan(grads[0, 0, -1]) and np.isfinite(grads[-1, 0, -1])


def test_a_config_too_large_for_the_server_is_refused_beside_train():
    at = new_app(cell="lstm", seq_len="2000", hidden_size="512", layers="4", bidirectional="true", steps="1000")
    assert not at.exception
    assert at.button(key="btn_train").disabled
    assert any("Too large for this server" in e.value for e in at.error)


def test_the_estimate_is_shown_beside_train():
    at = new_app()
    assert any("Estimate:" in c.value and "ms/step" in c.value for c in at.caption)


def test_resume_a_saved_run_in_a_new_session():
    first = Trainer(make_config(seq_len=12, hidden_size=8, steps=500), out_dir=store.run_dir("saved-one"))
    first.run(max_steps=7)
    first.stop()
    at = new_app()
    assert "saved-one" in at.selectbox(key="saved_pick").options
    at.selectbox(key="saved_pick").set_value("saved-one")
    at.button(key="btn_resume_saved").click().run()
    assert not at.exception and not at.error
    job = panel(at).job
    assert job.name == "saved-one"
    wait(job, lambda j: j.steps_done > 7)
    job.stop()
    wait(job)
    h = job.view().history
    assert h.recorded_steps()[0] == 0 and h.n > 7  # the charts start from what the run store held


def test_open_in_compare_carries_the_settings():
    at = new_app(cell="lstm", seq_len="80")
    link = next(e for e in at.get("page_link") if e.proto.label == "Open in Compare")
    assert link.proto.query_string in ("cell=lstm&seq_len=80", "seq_len=80&cell=lstm")


def test_a_saved_run_opens_from_a_link_and_resumes():
    tr = Trainer(make_config(seq_len=12, hidden_size=8, steps=300, record_every=1), out_dir=store.run_dir("from-runs"))
    tr.run(max_steps=6)
    tr.stop()
    at = new_app(run="from-runs")
    assert not at.exception and not at.error and not at.warning  # `run` is read, not an unknown key
    assert "run" not in at.query_params
    assert any("Stopped" in i.value for i in at.info)
    assert panel(at).saved.steps_done == 6
    assert not at.button(key="btn_resume").disabled
    at.button(key="btn_resume").click().run()
    job = panel(at).job
    wait(job, lambda j: j.steps_done > 6)
    job.stop()
    wait(job)
    assert job.name == "from-runs" and job.view().history.recorded_steps()[0] == 0


def test_a_bad_saved_run_link_says_so_in_one_line():
    at = new_app(run="../etc")
    assert not at.exception
    assert any("Could not open the saved run" in unescaped(e.value) for e in at.error)


def test_chart_downloads_are_png_for_slides_or_svg_named_after_the_run():
    at = new_app(seq_len="12", hidden_size="8", steps="10")
    at.button(key="btn_train").click().run()
    wait(panel(at).job)
    at.run()

    def image_options():
        return next(c for c in charts(at) if c.id.endswith("chart_heatmap")).config["toImageButtonOptions"]

    name = panel(at).job.name
    assert image_options() == {"format": "png", "filename": name, "scale": 3}
    at.radio(key="chart_format").set_value("svg").run()
    assert image_options() == {"format": "svg", "filename": name}


class _FakeJob:
    """A job as Explore's poll sees it: a step count, a rate, and a wait that records its timeout."""

    def __init__(self, steps_done: int, rate: float, steps: int = 300):
        self.cfg = make_config(steps=steps)
        self.steps_done, self.rate, self.done, self.waited = steps_done, rate, False, None

    def poll(self):
        pass

    def steps_per_second(self):
        return self.rate

    def wait(self, timeout):
        self.waited = timeout
        return True

    def view(self):
        return "view"


@pytest.mark.parametrize("steps_done, rate, waits", [
    (200, 100.0, True),   # 1.0 s to go: within a poll and a half, so the poll waits for the end
    (160, 100.0, True),   # 1.4 s to go: the job's tail (last evaluation, save) still fits
    (100, 100.0, False),  # 2.0 s to go: the next poll draws it
    (0, 0.0, False),      # no rate yet
])
def test_a_poll_waits_for_a_job_due_to_end_within_a_poll_and_a_half(monkeypatch, steps_done, rate, waits):
    from types import SimpleNamespace

    from dashboard import explore, jobs

    monkeypatch.setattr(jobs, "poll_base", lambda: 1.0)
    job = _FakeJob(steps_done, rate)
    assert explore._view(SimpleNamespace(job=job, saved=None), finish_wait=True) == "view"
    assert job.waited == (explore.FINISH_WAIT_POLLS * 1.0 if waits else None)
