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


@pytest.fixture(scope="module")
def local_ray():
    """A local Ray instance on 127.0.0.1 (2 CPUs, usage stats off) for one test module; the
    test skips where Ray, an optional extra (requirements-ray.txt), is not installed."""
    ray = pytest.importorskip("ray")
    import os

    from rnn_core.sweep import ray_runtime_env

    os.environ["RAY_USAGE_STATS_ENABLED"] = "0"
    ray.init(num_cpus=2, include_dashboard=False, _node_ip_address="127.0.0.1", log_to_driver=False,
             runtime_env=ray_runtime_env())
    yield ray
    ray.shutdown()
