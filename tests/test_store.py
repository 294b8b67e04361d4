import os
from pathlib import Path

import numpy as np
import pytest

from rnn_core import store


@pytest.mark.parametrize("name", ["../x", "a/../../b", "/etc", "..", "", ".hidden", "a" * 101, "a b", "x/y"])
def test_run_names_cannot_escape(name):
    with pytest.raises(store.RunStoreError, match="not allowed"):
        store.run_dir(name)


def test_run_dir_stays_under_the_root(tmp_path):
    assert store.run_dir("lstm_T50.v2", tmp_path) == tmp_path / "lstm_T50.v2"
    assert store.runs_root() == Path(os.environ["BPTT_LAB_RUNS"])


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path, monkeypatch):
    path = tmp_path / "metrics.csv"
    store.atomic_write_bytes(path, b"old")

    def boom(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(OSError):
        store.atomic_write_bytes(path, b"new, half written")
    assert path.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["metrics.csv"]


def test_npy_round_trip_without_pickle(tmp_path):
    a = np.random.default_rng(0).random((3, 2, 5))
    store.atomic_write_npy(tmp_path / "a.npy", a)
    np.testing.assert_array_equal(np.load(tmp_path / "a.npy", allow_pickle=False), a)


def test_load_run_errors_are_clear(tmp_path):
    with pytest.raises(store.RunStoreError, match="holds no run"):
        store.load_run(tmp_path)
    (tmp_path / "config.json").write_text("{not json")
    with pytest.raises(store.RunStoreError, match="could not be read"):
        store.load_run(tmp_path)


def test_list_runs(tmp_path):
    for name in ["b", "a"]:
        store.atomic_write_json(tmp_path / name / "config.json", {})
    (tmp_path / "junk").mkdir()
    assert store.list_runs(tmp_path) == ["a", "b"]
