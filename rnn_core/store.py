"""The run store: one directory per run, every file written atomically.

    runs/NAME/
      config.json            the full validated config
      status.json            running | finished | stopped | diverged, with step, reason and the verdict
                             (summary.summarize)
      metrics.csv            one row per step: the metric columns of rnn_core.records.METRICS, then
                             grad_norm/<group> per parameter group; empty where not measured
      <name>.npy             one per array of rnn_core.records.ARRAYS that the run records, with the
                             recorded steps as leading axis: recorded_steps, timestep_grads (‖∂L/∂h_t‖),
                             cell_grads, gate_mean, ...; dtypes and dims are in the registry
      model.safetensors      weights (never pickle)
      checkpoint.safetensors the tensors of Trainer.state(): model, optimizer, RNG states (checkpoint.py)
      checkpoint.json        the rest of Trainer.state(), naming each tensor

Writing is persist.RunWriter's job, reading back is load_run's; the Recorder (recorder.py) holds
what is written as metrics and arrays.

A file is written to a temporary name in the same directory, then renamed over the
old one, so a killed run leaves either the previous or the new file, never half of one.
"""
from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .rules import RUN_NAME, RunStoreError, check_run_name  # noqa: F401 - the name rule is in the rules table

STATUSES = ("running", "finished", "stopped", "diverged")


def runs_root() -> Path:
    return Path(os.environ.get("BPTT_LAB_RUNS", "runs"))


def run_dir(name: str, root: Path | None = None) -> Path:
    """The directory of run `name`, which cannot escape the runs root."""
    return (root or runs_root()) / check_run_name(name)


def atomic_write_bytes(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_json(path: Path, obj: Any) -> None:
    atomic_write_bytes(path, json.dumps(obj, indent=2, sort_keys=True).encode())


def atomic_write_npy(path: Path, array: np.ndarray) -> None:
    import io

    buf = io.BytesIO()
    np.save(buf, array, allow_pickle=False)
    atomic_write_bytes(path, buf.getvalue())


def atomic_write_csv(path: Path, frame: pd.DataFrame) -> None:
    atomic_write_bytes(path, frame.to_csv(index=False).encode())


def atomic_save_safetensors(path: Path, tensors: dict) -> None:
    from safetensors.torch import save

    atomic_write_bytes(path, save({k: v.detach().cpu().contiguous() for k, v in tensors.items()}))


@dataclass
class RunData:
    """A saved run read back: what the app's Compare view and tests consume."""
    path: Path
    config: dict
    status: dict
    metrics: pd.DataFrame
    arrays: dict[str, np.ndarray]


def load_run(path: Path | str) -> RunData:
    path = Path(path)
    if not (path / "config.json").is_file():
        raise RunStoreError(f"{path} holds no run (no config.json)")
    try:
        config = json.loads((path / "config.json").read_text())
        status = json.loads((path / "status.json").read_text()) if (path / "status.json").is_file() else {}
        metrics = pd.read_csv(path / "metrics.csv") if (path / "metrics.csv").is_file() else pd.DataFrame()
        arrays = {p.stem: np.load(p, allow_pickle=False) for p in sorted(path.glob("*.npy"))}
    except (OSError, ValueError) as err:
        raise RunStoreError(f"{path} could not be read: {err}") from None
    return RunData(path, config, status, metrics, arrays)


def list_runs(root: Path | None = None) -> list[str]:
    root = root or runs_root()
    if not root.is_dir():
        return []
    return sorted(p.name for p in root.iterdir() if RUN_NAME.match(p.name) and (p / "config.json").is_file())
