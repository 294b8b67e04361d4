import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


@pytest.fixture(autouse=True)
def _runs_root(tmp_path, monkeypatch):
    # every test gets its own run store: no test writes into the repo's runs/
    monkeypatch.setenv("BPTT_LAB_RUNS", str(tmp_path / "runs"))
    # The app's training service (one per process, cached by Streamlit) uses threads under AppTest:
    # no worker process to start per test run. The process pool, the default, has its own tests.
    monkeypatch.setenv("BPTT_LAB_POOL", "thread")
    torch.set_num_threads(1)  # tiny models: a second intra-op thread gains little and stalls under load
    yield
