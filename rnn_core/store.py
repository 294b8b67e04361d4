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
old one, so a killed run leaves either the previous or the new file, never half of one. A new
run's directory and its config.json are created exclusively (claim_run_dir, atomic_create_json),
so two servers or CLIs sharing one runs folder never write into the same run.
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

from .rules import RUN_NAME, RunStoreError, check_run_name, show  # noqa: F401 - the name rule is in the rules table

STATUSES = ("running", "finished", "stopped", "diverged")


def runs_root() -> Path:
    return Path(os.environ.get("BPTT_LAB_RUNS", "runs"))


def run_dir(name: str, root: Path | None = None) -> Path:
    """The directory of run `name`, which cannot escape the runs root."""
    return (root or runs_root()) / check_run_name(name)


class RunTakenError(RunStoreError):
    """Another writer (a second server or CLI on the same runs folder) already made this run."""


def _write_temp(path: Path, data: bytes) -> str:
    """`data` in a new hidden file beside `path`, flushed to disk; returns its name."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return tmp


def atomic_write_bytes(path: Path, data: bytes) -> None:
    tmp = _write_temp(path, data)
    try:
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_create_bytes(path: Path, data: bytes) -> None:
    """Like atomic_write_bytes, but only when `path` does not exist yet (RunTakenError if it does):
    a hard link is created whole and fails when the name is taken, so of two writers racing for
    the same run exactly one wins, and nobody ever sees half a file."""
    tmp = _write_temp(path, data)
    try:
        os.link(tmp, path)
    except FileExistsError:
        raise RunTakenError(f"{path.parent} already holds a run (another server or CLI made it): "
                            "choose a new directory") from None
    finally:
        Path(tmp).unlink(missing_ok=True)


def atomic_create_json(path: Path, obj: Any) -> None:
    atomic_create_bytes(path, json.dumps(obj, indent=2, sort_keys=True).encode())


def claim_run_dir(base: str, root: Path | None = None) -> tuple[str, Path]:
    """A new, empty run directory named `base`, or base-2, base-3, ... when taken: (name, path).

    os.mkdir either creates the directory or fails because it exists, atomically, so two servers,
    threads or CLIs asking for the same name in the same millisecond get different runs."""
    root = root or runs_root()
    root.mkdir(parents=True, exist_ok=True)
    check_run_name(base)
    for k in range(1, 10_000):
        suffix = "" if k == 1 else f"-{k}"
        name = base[: 100 - len(suffix)] + suffix
        try:
            os.mkdir(run_dir(name, root))
            return name, root / name
        except FileExistsError:
            continue
    raise RunStoreError(f"no free run name of the form {show(base)}-N in {root}")


def atomic_write_json(path: Path, obj: Any) -> None:
    atomic_write_bytes(path, json.dumps(obj, indent=2, sort_keys=True).encode())


def atomic_write_npy(path: Path, array: np.ndarray) -> None:
    import io

    buf = io.BytesIO()
    np.save(buf, array, allow_pickle=False)
    atomic_write_bytes(path, buf.getvalue())


def atomic_write_csv(path: Path, frame: pd.DataFrame) -> None:
    atomic_write_bytes(path, frame.to_csv(index=False).encode())


def atomic_save_safetensors(path: Path, tensors: dict, metadata: dict[str, str] | None = None) -> None:
    from safetensors.torch import save

    atomic_write_bytes(path, save({k: v.detach().cpu().contiguous() for k, v in tensors.items()}, metadata=metadata))


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
