"""The Runs page: the table built from the store (dashboard.run_table), the store actions
(dashboard.run_actions), the chart image config, and the page under AppTest.

AppTest cannot click a table's row boxes, but a table's selection is widget state: a test sets
at.session_state[<table key>] = {"selection": {"rows": [...]}} as the browser would.
"""
from __future__ import annotations

import io
import json
import shutil
import zipfile
from pathlib import Path

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from dashboard.chart_config import image_file_name, plotly_config
from dashboard.run_actions import delete_runs, export_bytes, import_upload, rename_run
from dashboard.run_table import COLUMNS, CONFIG_KEYS, filter_rows, last_horizon, run_rows, values_of, verdict
from dashboard.runs import open_saved
from rnn_core import make_config, store
from rnn_core.diagnostics import memory_horizon
from rnn_core.trainer import Trainer
from rnn_core.view import RunView

APP = str(Path(__file__).resolve().parents[1] / "streamlit_app.py")
SMALL = dict(hidden_size=8, seq_len=10)


# --- a store with one run of each kind, built once and copied into each test's store ------------
@pytest.fixture(scope="module")
def built(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("built")
    Trainer(make_config(steps=20, **SMALL), out_dir=root / "finished-run").run()
    tr = Trainer(make_config(steps=40, cell="lstm", **SMALL), out_dir=root / "stopped-run")
    tr.run(max_steps=12)
    tr.stop()
    Trainer(make_config(activation="linear", init="orthogonal", init_gain=10, seq_len=60, hidden_size=16),
            out_dir=root / "diverged-run").run()
    (root / "broken-run").mkdir()
    (root / "broken-run" / "config.json").write_text("{not json")
    return root


@pytest.fixture()
def runs(built) -> Path:
    root = store.runs_root()
    shutil.copytree(built, root)
    return root


def names_in(root: Path) -> set[str]:
    return set(store.list_runs(root))


# --- the table ------------------------------------------------------------------------------------
def test_run_rows_columns_statuses_and_verdicts(runs):
    frame = run_rows(runs)
    assert list(frame.columns) == list(COLUMNS)
    assert set(CONFIG_KEYS) | {"steps", "device"} <= set(frame.columns)  # every config key is a column
    by = frame.set_index("name")
    assert by.loc["finished-run", "status"] == "finished" and by.loc["finished-run", "steps done"] == 20
    assert by.loc["stopped-run", "status"] == "stopped" and by.loc["stopped-run", "steps done"] == 12
    assert by.loc["stopped-run", "steps"] == 40 and by.loc["stopped-run", "cell"] == "lstm"
    assert by.loc["diverged-run", "status"] == "diverged" and by.loc["diverged-run", "verdict"] == "diverged"
    # 20 steps of a tanh RNN do not beat the input-blind predictor
    assert by.loc["finished-run", "verdict"] == "stuck at baseline"
    assert by.loc["broken-run", "status"] == "unreadable" and by.loc["broken-run", "verdict"] == ""
    assert "JSONDecodeError" in by.loc["broken-run", "reason"]
    assert by.loc["finished-run", "ran on"] == "cpu" and by.loc["finished-run", "final loss"] > 0
    for name in ("finished-run", "stopped-run"):  # the horizon of the last recorded profile, from the array
        grads = np.load(runs / name / "timestep_grads.npy")
        assert by.loc[name, "memory horizon"] == memory_horizon(grads[-1, 0])
    assert str(frame["hidden_size"].dtype) == "Int64"  # the unreadable row's gap keeps integers integers


def test_run_rows_reads_no_array_without_being_asked(runs):
    asked = []
    frame = run_rows(runs, horizon=lambda d: asked.append(d.name) or 7)
    assert sorted(asked) == ["diverged-run", "finished-run", "stopped-run"]  # not for the unreadable run
    assert set(frame.loc[frame["status"] != "unreadable", "memory horizon"]) == {7}


def test_run_rows_unreadable_files_never_raise(runs):
    (runs / "finished-run" / "status.json").write_text("[1, 2]")  # JSON, but not an object
    (runs / "stopped-run" / "config.json").write_text(json.dumps({"hidden_size": "many"}))
    (runs / "diverged-run" / "timestep_grads.npy").write_bytes(b"garbage")
    by = run_rows(runs).set_index("name")
    assert by.loc["finished-run", "status"] == "unreadable" and "list" in by.loc["finished-run", "reason"]
    assert by.loc["stopped-run", "status"] == "unreadable" and "hidden_size" in by.loc["stopped-run", "reason"]
    assert by.loc["diverged-run", "status"] == "diverged" and by.loc["diverged-run", "memory horizon"] is pd_na()


def pd_na():
    import pandas as pd

    return pd.NA


def test_run_rows_empty_and_missing_store(tmp_path):
    assert run_rows(tmp_path / "nowhere").empty
    assert list(run_rows(tmp_path / "nowhere").columns) == list(COLUMNS)


def test_running_without_a_live_job_is_interrupted(runs):
    status = json.loads((runs / "stopped-run" / "status.json").read_text())
    (runs / "stopped-run" / "status.json").write_text(json.dumps({**status, "status": "running"}))
    assert run_rows(runs, live={"stopped-run"}).set_index("name").loc["stopped-run", "status"] == "running"
    assert run_rows(runs, live=set()).set_index("name").loc["stopped-run", "status"] == "interrupted"


def test_created_field_wins_over_the_file_time(runs):
    path = runs / "finished-run" / "status.json"
    path.write_text(json.dumps({**json.loads(path.read_text()), "created": "2020-01-02T03:04:05"}))
    frame = run_rows(runs)
    assert str(frame.set_index("name").loc["finished-run", "created"]) == "2020-01-02 03:04:05"
    assert frame["name"].iloc[-1] == "finished-run"  # newest first: the oldest is last


@pytest.mark.parametrize("status, expected", [
    ({"status": "diverged", "beat_baseline": False}, "diverged"),
    ({"status": "failed"}, "diverged"),
    ({"status": "finished", "beat_baseline": True, "beat_margin": 0.5}, "solved"),
    ({"status": "stopped", "beat_baseline": True, "beat_margin": 0.02}, "solved"),
    ({"status": "finished", "beat_baseline": False, "beat_margin": 0.001}, "stuck at baseline"),
    ({"status": "finished", "beat_baseline": False, "beat_margin": None}, "stuck at baseline"),
    ({"status": "stopped", "beat_baseline": False, "beat_margin": -3.0}, "stuck at baseline"),
    ({"status": "finished", "beat_baseline": False, "beat_margin": 0.05}, "still learning"),  # lower, not yet significant
    ({"status": "running", "beat_baseline": False, "beat_margin": 0.0}, "still learning"),
    (None, ""),  # no readable status.json
])
def test_verdict_rules(status, expected):
    assert verdict(status) == expected


def test_last_horizon_reads_the_last_row_of_direction_0(tmp_path):
    T = 30
    decay = 0.5 ** np.arange(T)[::-1]  # ×2 per step towards the end: falls below 1e-3 ten steps back
    grads = np.stack([np.ones((2, T)), np.stack([decay, np.ones(T)])]).astype(np.float32)  # (N=2, LD=2, T)
    np.save(tmp_path / "timestep_grads.npy", grads)
    assert last_horizon(tmp_path) == memory_horizon(decay) == 10
    np.save(tmp_path / "timestep_grads.npy", np.zeros((0, 1, T), np.float32))
    assert last_horizon(tmp_path) is None
    assert last_horizon(tmp_path / "none") is None


def test_filter_rows_by_name_and_config(runs):
    frame = run_rows(runs)
    assert values_of(frame, "cell") == ["lstm", "rnn"]
    assert values_of(frame, "hidden_size") == [8, 16]
    assert set(filter_rows(frame, "RUN")["name"]) == set(frame["name"])
    assert set(filter_rows(frame, "stop")["name"]) == {"stopped-run"}
    assert set(filter_rows(frame, "", {"cell": ["rnn"]})["name"]) == {"finished-run", "diverged-run"}
    assert set(filter_rows(frame, "fin", {"cell": ["rnn"], "hidden_size": []})["name"]) == {"finished-run"}
    assert filter_rows(frame, "", {"cell": ["gru"]}).empty
    assert set(filter_rows(frame, "", {"bidirectional": [False]})["name"]) == set(frame["name"]) - {"broken-run"}


# --- the store actions ---------------------------------------------------------------------------
def test_rename_run(runs):
    assert rename_run("finished-run", "renamed.1") is None
    assert "renamed.1" in names_in(runs) and "finished-run" not in names_in(runs)
    assert "taken" in rename_run("renamed.1", "stopped-run")
    assert "not allowed" in rename_run("renamed.1", "../escape")
    assert "not allowed" in rename_run("renamed.1", "")
    assert "no run" in rename_run("ghost", "ghost-2")
    assert "training" in rename_run("stopped-run", "other", live={"stopped-run"})
    assert "taken" in rename_run("stopped-run", "queued-name", live={"queued-name"})
    assert names_in(runs) == {"renamed.1", "stopped-run", "diverged-run", "broken-run"}


def test_delete_runs_only_inside_the_store(runs, tmp_path):
    outside = tmp_path / "precious"
    outside.mkdir()
    (outside / "config.json").write_text("{}")
    (runs / "linked").symlink_to(outside, target_is_directory=True)
    deleted, problems = delete_runs(["diverged-run", "linked", "stopped-run", "../x"], live={"stopped-run"})
    assert deleted == ["diverged-run"]
    assert len(problems) == 3 and "training" in problems[1] and "not allowed" in problems[2]
    assert (outside / "config.json").is_file() and (runs / "stopped-run").is_dir()


def test_export_then_import_round_trip(runs):
    data = export_bytes("stopped-run")
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        assert {"config.json", "status.json", "report.html", "arrays/timestep_grads.npy"} <= set(zf.namelist())
    ok, name = import_upload("stopped-run.zip", data)
    assert ok and name == "stopped-run-2"
    view = open_saved(name)
    assert isinstance(view, RunView) and view.steps_done == 12 and view.resumable


def hostile_zip() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("config.json", "{}")
        zf.writestr("../x", "gotcha")
    return buf.getvalue()


def test_import_refuses_a_hostile_or_broken_archive(runs):
    before = names_in(runs)
    ok, text = import_upload("evil.zip", hostile_zip())
    assert not ok and "'..'" in text and "\n" not in text
    ok, text = import_upload("../../evil.zip", b"not a zip at all")
    assert not ok and "not a readable zip" in text
    assert names_in(runs) == before and not (runs.parent / "x").exists()
    assert not [p for p in runs.iterdir() if p.name.startswith(".")]  # no half-imported directory left


def test_open_saved():
    assert "no saved run" in open_saved("ghost")
    assert "not allowed" in open_saved("../etc")


def test_open_saved_stopped_run_is_resumable(runs):
    view = open_saved("stopped-run")
    assert isinstance(view, RunView) and view.source == "disk" and view.resumable
    assert isinstance(open_saved("broken-run"), str)


def test_plotly_config():
    assert plotly_config("adding-rnn-1") == {
        "displaylogo": False, "toImageButtonOptions": {"format": "png", "filename": "adding-rnn-1", "scale": 3}}
    assert plotly_config("x", "svg")["toImageButtonOptions"] == {"format": "svg", "filename": "x"}
    assert image_file_name("../a b/<c>") == "a-b-c" and image_file_name("..") == "chart"
    with pytest.raises(ValueError):
        plotly_config("x", "gif")


# --- the page under AppTest ----------------------------------------------------------------------
def runs_app() -> AppTest:
    at = AppTest.from_file(APP, default_timeout=60).run()
    return at.switch_page("pages/runs.py").run()


def shown(at: AppTest) -> list[str]:
    return at.dataframe[0].value["name"].tolist()


def select(at: AppTest, *names: str) -> AppTest:
    rows = [shown(at).index(n) for n in names]
    at.session_state[at.dataframe[0].key] = {"selection": {"rows": rows, "columns": []}}
    return at.run()


def texts(elements) -> str:
    import re

    return " ".join(re.sub(r"\\(.)", r"\1", e.value) for e in elements)


def test_page_empty_store():
    at = runs_app()
    assert not at.exception
    assert "No saved runs yet" in texts(at.info)
    assert not at.dataframe


def test_page_table_and_filters(runs):
    at = runs_app()
    assert not at.exception and not at.error
    assert set(shown(at)) == {"finished-run", "stopped-run", "diverged-run", "broken-run"}
    at.text_input(key="runs_filter_name").input("stop").run()
    assert shown(at) == ["stopped-run"]
    at.text_input(key="runs_filter_name").input("").run()
    at.multiselect(key="runs_filter_keys").select("cell").run()
    at.multiselect(key="runs_filter_cell").select("rnn").run()
    assert set(shown(at)) == {"finished-run", "diverged-run"}
    assert "2 of 4 runs shown" in texts(at.caption)


def test_page_buttons_follow_the_selection(runs):
    at = runs_app()
    assert at.button(key="runs_open").disabled and at.button(key="runs_compare").disabled
    assert at.button(key="runs_delete").disabled and at.button(key="runs_prepare").disabled
    select(at, "finished-run")
    assert not at.button(key="runs_open").disabled and at.button(key="runs_compare").disabled
    select(at, "finished-run", "stopped-run")
    assert at.button(key="runs_open").disabled and not at.button(key="runs_compare").disabled
    assert at.button(key="runs_delete").label == "Delete 2 runs"


def test_page_rename(runs):
    at = select(runs_app(), "finished-run")
    at.text_input(key="runs_new_name").input("stopped-run").run()
    at.button(key="runs_rename").click().run()
    assert "taken" in texts(at.error) and "finished-run" in names_in(runs)
    at = select(at, "finished-run")
    at.text_input(key="runs_new_name").input("no/slash").run()
    at.button(key="runs_rename").click().run()
    assert "not allowed" in texts(at.error) and "finished-run" in names_in(runs)
    at = select(at, "finished-run")
    at.text_input(key="runs_new_name").input("best-run").run()
    at.button(key="runs_rename").click().run()
    assert not at.exception and "Renamed" in texts(at.success)
    assert "best-run" in names_in(runs) and "finished-run" not in names_in(runs)
    assert "best-run" in shown(at) and "finished-run" not in shown(at)


def test_page_refuses_to_rename_or_delete_a_training_run(runs, monkeypatch):
    import dashboard.runs

    monkeypatch.setattr(dashboard.runs, "live_runs", lambda: {"stopped-run"})
    at = select(runs_app(), "stopped-run")
    at.text_input(key="runs_new_name").input("moved").run()
    at.button(key="runs_rename").click().run()
    assert "training on this server" in texts(at.error)
    at = select(at, "stopped-run")
    at.button(key="runs_delete").click().run()
    at.button(key="runs_really_delete").click().run()
    assert "training on this server" in texts(at.error) and "stopped-run" in names_in(runs)


def test_page_delete_asks_first(runs):
    at = select(runs_app(), "finished-run", "diverged-run")
    at.button(key="runs_delete").click().run()
    assert names_in(runs) == {"finished-run", "stopped-run", "diverged-run", "broken-run"}  # the first click asks
    assert at.button(key="runs_really_delete").label == "Really delete 2 runs"
    at.button(key="runs_cancel_delete").click().run()
    assert not [b for b in at.button if b.key == "runs_really_delete"]
    at = select(at, "finished-run", "diverged-run")
    at.button(key="runs_delete").click().run()
    at.button(key="runs_really_delete").click().run()
    assert not at.exception and "Deleted" in texts(at.success)
    assert names_in(runs) == {"stopped-run", "broken-run"} and set(shown(at)) == {"stopped-run", "broken-run"}


def test_page_delete_unreadable_run(runs):
    at = select(runs_app(), "broken-run")
    at.button(key="runs_delete").click().run()
    at.button(key="runs_really_delete").click().run()
    assert "broken-run" not in names_in(runs)


def test_page_export_gives_a_download(runs):
    at = select(runs_app(), "stopped-run")
    assert not at.download_button
    at.button(key="runs_prepare").click().run()
    assert not at.exception and not at.error
    assert at.download_button(key="runs_download").label == "Download stopped-run.zip"
    name, data = at.session_state["page:runs"].export
    assert name == "stopped-run" and zipfile.ZipFile(io.BytesIO(data)).testzip() is None
    select(at, "finished-run")
    assert not at.download_button and at.session_state["page:runs"].export is None  # the bytes are let go


def test_page_import(runs, built):
    data = export_bytes("finished-run")
    at = runs_app()
    at.file_uploader(key="runs_upload").set_value(("shared run.zip", data, "application/zip")).run()
    assert not at.exception and "Imported as" in texts(at.sidebar.success) and "shared-run" in texts(at.sidebar.success)
    assert "shared-run" in names_in(runs) and "shared-run" in shown(at)
    at.run()  # the upload stays in the widget: it is not imported twice
    assert not [n for n in names_in(runs) if n.startswith("shared-run-")]
    before = names_in(runs)
    at.file_uploader(key="runs_upload").set_value(("evil.zip", hostile_zip(), "application/zip")).run()
    assert not at.exception
    errors = [texts([e]) for e in at.sidebar.error]
    assert len(errors) == 1 and "Not imported: evil.zip: member '../x' climbs out" in errors[0]
    assert "\n" not in errors[0]
    assert names_in(runs) == before


def test_page_import_into_an_empty_store():
    at = runs_app()
    data = hostile_zip()
    at.file_uploader(key="runs_upload").set_value(("x.zip", data, "application/zip")).run()
    assert not at.exception and "No saved runs yet" in texts(at.info) and at.sidebar.error


def test_page_open_in_explore(runs):
    at = select(runs_app(), "stopped-run")
    at.button(key="runs_open").click().run()
    assert not at.exception
    assert [t.value for t in at.title] == ["Explore: gradients through time"]


def test_page_switches_with_the_run_names(runs, monkeypatch):
    import streamlit as st

    calls = []
    monkeypatch.setattr(st, "switch_page", lambda page, query_params=None: calls.append((page, query_params)))
    at = select(runs_app(), "stopped-run")
    at.button(key="runs_open").click().run()
    at = select(at, "diverged-run", "stopped-run")
    at.button(key="runs_compare").click().run()
    assert calls == [("pages/explore.py", {"run": "stopped-run"}),
                     ("pages/compare.py", {"runs": "diverged-run,stopped-run"})]
    at = select(at, "broken-run")
    at.button(key="runs_open").click().run()
    assert len(calls) == 2 and "cannot be opened" in texts(at.error)  # said here, not on Explore


def test_page_export_of_an_unreadable_run_says_why(runs):
    at = select(runs_app(), "broken-run")
    at.button(key="runs_prepare").click().run()
    assert not at.exception and not at.download_button
    assert "Could not export `broken-run`" in texts(at.error) and "no status.json" in texts(at.error)
