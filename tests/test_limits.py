"""Limits: every server setting that bounds what a session may ask for has a safe default, and going
over it gives one clear line naming the value, the limit and its setting."""
from __future__ import annotations

import tomllib
from pathlib import Path

import numpy as np
import pytest

from rnn_core import budget
from rnn_core.cli import main
from rnn_core.config import make_config
from rnn_core.history import History
from rnn_core.service import ServiceError, TrainingService
from rnn_core.settings import ServiceSettings, load_settings

ROOT = Path(__file__).resolve().parents[1]


def test_the_defaults():
    s = ServiceSettings()
    assert (s.max_shape, s.history_rows, s.history_mb, s.max_upload_mb, s.room_size) == (2**24, 500, 32, 200, 60)
    assert s.max_queue == 64 and 1 <= s.workers <= 64 and s.poll_s == 1.0
    streamlit = tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text())["server"]
    assert streamlit["maxUploadSize"] == s.max_upload_mb and streamlit["address"] == "127.0.0.1"


@pytest.mark.parametrize("var, value, allowed", [
    ("BPTT_LAB_MAX_SHAPE", "0", "greater than or equal to 1"), ("BPTT_LAB_WORKERS", "65", "less than or equal to 64"),
    ("BPTT_LAB_MAX_QUEUE", "-1", "greater than or equal to 0"), ("BPTT_LAB_HISTORY_ROWS", "1", "greater than or equal to 2"),
    ("BPTT_LAB_HISTORY_MB", "lots", "valid integer"), ("BPTT_LAB_MAX_UPLOAD_MB", "2000", "less than or equal to 1024"),
    ("BPTT_LAB_ROOM_SIZE", "0", "greater than or equal to 1"), ("BPTT_LAB_ROOM_SIZE", "nan", "valid integer"),
])
def test_a_bad_setting_is_one_line_naming_the_variable(monkeypatch, var, value, allowed):
    monkeypatch.setenv(var, value)
    with pytest.raises(ValueError) as err:
        load_settings()
    assert var in str(err.value) and allowed in str(err.value) and "\n" not in str(err.value)


def test_settings_are_read_again_when_a_variable_changes_and_each_caller_has_its_own(monkeypatch):
    """load_settings caches by the BPTT_LAB_ variables; a change of one is seen, in any case, and a
    caller that changes its copy (a test shortening a timeout) changes no one else's."""
    monkeypatch.setenv("BPTT_LAB_MAX_QUEUE", "7")
    first = load_settings()
    assert first.max_queue == 7
    first.max_queue = 99
    assert load_settings().max_queue == 7
    monkeypatch.setenv("bptt_lab_max_queue", "8")  # pydantic-settings reads names in any case
    monkeypatch.delenv("BPTT_LAB_MAX_QUEUE")
    assert load_settings().max_queue == 8
    monkeypatch.delenv("bptt_lab_max_queue")
    assert load_settings().max_queue == ServiceSettings().max_queue


def test_the_room_size_is_a_setting(monkeypatch):
    monkeypatch.setenv("BPTT_LAB_ROOM_SIZE", "30")
    assert load_settings().room_size == 30


def test_the_poll_period_is_a_setting_and_grows_with_the_live_runs(monkeypatch):
    """BPTT_LAB_POLL_S is what a page's fragment reruns on, times the class's load factor."""
    from types import SimpleNamespace

    from dashboard import jobs

    monkeypatch.setenv("BPTT_LAB_POLL_S", "2.5")
    counts = {"running": 1, "queued": 0, "workers": 2}
    fake = SimpleNamespace(settings=load_settings(), counts=lambda: counts)
    monkeypatch.setattr(jobs, "service", lambda: fake)
    assert jobs.poll_base() == 2.5 and jobs.poll_every() == 2.5  # few live runs: the setting itself
    counts.update(running=2, queued=10)  # 12 live runs on 2 workers, 2 pollers per worker: 3x slower
    assert jobs.poll_every() == pytest.approx(2.5 * 12 / (jobs.POLLERS_PER_WORKER * 2))
    monkeypatch.setenv("BPTT_LAB_POLL_S", "0")
    with pytest.raises(ValueError, match="BPTT_LAB_POLL_S"):
        load_settings()


# --- seq_len × hidden_size × batch_size × layers -------------------------------------------------------
def test_the_shape_limit_names_the_product_and_the_limit(monkeypatch):
    monkeypatch.setenv("BPTT_LAB_MAX_SHAPE", "100000")
    cfg = make_config(seq_len=100, hidden_size=64, batch_size=32, layers=2)  # 409,600: small in memory and time
    msg = budget.Limits().check(budget.estimate(cfg))
    assert msg == ("seq_len × hidden_size × batch_size × layers = 100 × 64 × 32 × 2 = 409,600 is over this "
                   "server's limit of 100,000 on CPU (BPTT_LAB_MAX_SHAPE): lower seq_len, hidden_size, layers "
                   "or batch_size")
    assert budget.Limits().check(budget.estimate(make_config(seq_len=40, hidden_size=64, batch_size=32))) is None
    # on a GPU the CPU's shape limit does not apply (memory and time still do)
    assert budget.Limits().check(budget.estimate(make_config(**{**cfg.model_dump(), "device": "cuda"}))) is None


def test_memory_and_time_messages_name_the_product_too():
    big = make_config(cell="lstm", seq_len=2000, hidden_size=512, layers=4, bidirectional=True)
    msg = budget.Limits().check(budget.estimate(big))
    assert "2000 × 512 × 32 × 4 × 2 = 262,144,000" in msg and "3.0 GB per run (BPTT_LAB_MAX_JOB_MB)" in msg
    slow = budget.Limits(max_bytes=2**50, max_step_s=0.001).check(budget.estimate(make_config(seq_len=500)))
    assert "500 × 64 × 32 × 1" in slow and "(BPTT_LAB_MAX_STEP_S)" in slow


def test_the_cli_and_the_service_refuse_over_the_shape_limit(monkeypatch, tmp_path, capsys):
    monkeypatch.setenv("BPTT_LAB_MAX_SHAPE", "1000")
    assert main(["train", "--set", "seq_len=50", "--out", str(tmp_path / "x"), "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: seq_len × hidden_size") and "1,000 on CPU" in err and "--no-limits" in err
    assert "\n" not in err and not (tmp_path / "x").exists()
    svc = TrainingService(ServiceSettings(workers=1, pool="thread", max_shape=1000))
    try:
        with pytest.raises(ServiceError, match="BPTT_LAB_MAX_SHAPE"):
            svc.submit(make_config(seq_len=50), tmp_path / "y")
    finally:
        svc.shutdown()
    assert not (tmp_path / "y").exists()


# --- trainings at once -----------------------------------------------------------------------------------
def test_trainings_at_once_are_the_workers_and_the_queue_refuses_past_max_queue(tmp_path):
    svc = TrainingService(ServiceSettings(workers=1, pool="thread", max_queue=2))
    cfg = make_config(steps=100_000, seq_len=8, hidden_size=4)
    jobs, refused = [], None
    try:
        for k in range(4):  # one trains, two wait, the fourth cannot
            try:
                jobs.append(svc.submit(cfg, tmp_path / f"r{k}"))
            except ServiceError as err:
                refused = str(err)
                break
        assert refused == "the server is busy: 2 runs are waiting already (at most 2); try again in a minute"
        assert svc.counts()["running"] + svc.counts()["queued"] <= 1 + 2
    finally:
        for job in jobs:
            job.stop()
        svc.shutdown()


# --- history kept per session --------------------------------------------------------------------------
def test_the_history_a_session_keeps_per_run_is_bounded_by_the_setting(monkeypatch):
    from rnn_core.trainer import Trainer

    monkeypatch.setenv("BPTT_LAB_HISTORY_ROWS", "8")
    h = History()
    assert h.max_recorded == 8
    tr = Trainer(make_config(steps=60, seq_len=6, hidden_size=4, record_every=1))
    for _ in range(60):
        h.add(tr.step())
    grads = h.recorded("timestep_grads")
    assert len(grads) <= 8 and h.n == 60  # every step's scalars, at most 8 heatmap rows, evenly thinned
    steps = h.rec_steps[: h.n_rec]
    assert steps[0] == 0 and len(set(np.diff(steps))) == 1
    monkeypatch.setenv("BPTT_LAB_HISTORY_MB", "1")
    assert History().max_row_bytes == 2**20


# --- upload size -----------------------------------------------------------------------------------------
def test_an_upload_over_the_limit_is_refused_in_one_line(monkeypatch):
    from dashboard.run_actions import import_upload

    monkeypatch.setenv("BPTT_LAB_MAX_UPLOAD_MB", "1")
    ok, text = import_upload("<b>big</b>.zip", b"\0" * (2**20 + 1))
    assert not ok and text == "'<b>big</b>.zip' is 1.0 MB; allowed: at most 1 MB (BPTT_LAB_MAX_UPLOAD_MB)"
