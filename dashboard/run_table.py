"""The Runs page's table of saved runs, built from the run store without Streamlit.

    frame = run_rows(store.runs_root())                 # one row per run, newest first
    shown = filter_rows(frame, "lstm", {"cell": ["lstm"]})

Each run is read cheaply: its status.json and config.json, never the arrays. The one number
that needs an array, the memory horizon, comes from `horizon(run_dir)`, which reads only the
last recorded row of timestep_grads.npy; the page passes a cached version of it. A run whose
files cannot be read is a row with status "unreadable" and the reason, so one bad directory
never hides the others.
"""
from __future__ import annotations

import json
import math
from datetime import datetime
from pathlib import Path
from typing import Any, Callable, Collection, Mapping

import numpy as np
import pandas as pd

from rnn_core import store
from rnn_core.config import DEFAULTS, ConfigError, make_config
from rnn_core.diagnostics import memory_horizon
from rnn_core.rules import show
from rnn_core.summary import outcome
from rnn_core.view import INTERRUPTED

UNREADABLE = "unreadable"
# INTERRUPTED: status.json says running, but no job of this server trains it (as RunView.from_disk says)
# The summary columns, in the order shown; then every config key (rnn_core.config.DEFAULTS).
# "ran on" is the device the run used (status.json); the config key "device" is the one asked for (auto, ...).
SUMMARY_COLUMNS = ("name", "status", "verdict", "final loss", "memory horizon", "steps done", "steps", "created",
                   "ran on", "reason")
CONFIG_KEYS = tuple(k for k in DEFAULTS if k not in SUMMARY_COLUMNS)  # "steps" is shown beside "steps done"
COLUMNS = SUMMARY_COLUMNS + CONFIG_KEYS


def verdict(status: Mapping[str, Any] | None) -> str:
    """Where a run stands in one phrase (rnn_core.summary.outcome); empty for a run with no readable status."""
    return outcome(dict(status)) if isinstance(status, Mapping) else ""


def last_horizon(run_dir: Path) -> int | None:
    """The memory horizon of the last recorded ‖∂L/∂h_t‖ profile of layer-direction 0, or None when the
    run recorded none. Memory-maps the array and reads only that row: (N, LD, T) -> (T,)."""
    path = Path(run_dir) / "timestep_grads.npy"
    if not path.is_file():
        return None
    try:
        grads = np.load(path, mmap_mode="r", allow_pickle=False)
        if grads.ndim != 3 or grads.shape[0] == 0 or grads.shape[1] == 0:
            return None
        return memory_horizon(np.array(grads[-1, 0]))
    except (OSError, ValueError):
        return None


def _number(v: Any) -> float | None:
    try:
        x = float(v)
    except (TypeError, ValueError):
        return None
    return x if math.isfinite(x) else None


def _read_json(path: Path) -> dict:
    value = json.loads(path.read_text())
    if not isinstance(value, dict):
        raise ValueError(f"{path.name} holds a {type(value).__name__}, not an object")
    return value


def _created(run_dir: Path, config: Mapping[str, Any], status: Mapping[str, Any]) -> datetime | None:
    stamp = status.get("created", config.get("created"))
    if isinstance(stamp, str):
        try:
            return datetime.fromisoformat(stamp).replace(tzinfo=None)
        except ValueError:
            pass
    try:
        return datetime.fromtimestamp((run_dir / "config.json").stat().st_mtime)
    except OSError:
        return None


def _unreadable(name: str, run_dir: Path, reason: str) -> dict:
    row: dict[str, Any] = {c: None for c in COLUMNS}
    row.update(name=name, status=UNREADABLE, verdict="", reason=show(reason, 160), created=_created(run_dir, {}, {}))
    return row


def run_row(name: str, run_dir: Path, horizon: Callable[[Path], int | None] = last_horizon,
            live: Collection[str] | None = None) -> dict:
    """One run's row: the COLUMNS as a dict. `live`: names of runs a job of this server trains; with it,
    a run that status.json calls running but no job trains shows as interrupted."""
    try:
        raw = _read_json(run_dir / "config.json")
        status = _read_json(run_dir / "status.json") if (run_dir / "status.json").is_file() else {}
        cfg = make_config({k: v for k, v in raw.items() if k != "created"})
    except (OSError, ValueError, ConfigError) as err:  # JSONDecodeError and ConfigError are ValueErrors
        return _unreadable(name, run_dir, f"{type(err).__name__}: {' '.join(str(err).split())}")
    state = str(status.get("status", "stopped"))
    if state == "running" and live is not None and name not in live:
        state = INTERRUPTED
    done = _number(status.get("steps_done"))
    row: dict[str, Any] = {
        "name": name, "status": state, "verdict": verdict(status), "final loss": _number(status.get("final_val_loss")),
        "memory horizon": horizon(run_dir), "steps done": int(done) if done is not None else 0,
        "created": _created(run_dir, raw, status), "ran on": str(status.get("device", "")),
        "reason": show(str(status.get("reason", "")), 160),
    }
    row.update(cfg.model_dump())
    return {c: row.get(c) for c in COLUMNS}


def run_rows(root: Path | None = None, horizon: Callable[[Path], int | None] = last_horizon,
             live: Collection[str] | None = None) -> pd.DataFrame:
    """Every saved run in `root` (store.runs_root()) as one row of COLUMNS, newest first."""
    root = Path(root) if root is not None else store.runs_root()
    rows = [run_row(name, store.run_dir(name, root), horizon, live) for name in store.list_runs(root)]
    frame = pd.DataFrame(rows, columns=list(COLUMNS))
    # Nullable dtypes: an unreadable run's empty cells leave the others' integers integers (not 8.0).
    for col in ("memory horizon", "steps done", "steps") + tuple(k for k in CONFIG_KEYS if type(DEFAULTS[k]) is int):
        frame[col] = frame[col].astype("Int64")
    for col in (k for k in CONFIG_KEYS if type(DEFAULTS[k]) is bool):
        frame[col] = frame[col].astype("boolean")
    frame["created"] = pd.to_datetime(frame["created"])
    return frame.sort_values(["created", "name"], ascending=[False, True], na_position="last").reset_index(drop=True)


def values_of(frame: pd.DataFrame, key: str) -> list:
    """The distinct values of config key `key` among readable runs, sorted, for a filter's choices."""
    if key not in frame.columns:
        return []
    values = {v.item() if isinstance(v, np.generic) else v for v in frame[key].dropna()}
    return sorted(values, key=lambda v: (str(type(v)), v))


def filter_rows(frame: pd.DataFrame, name_text: str = "", chosen: Mapping[str, Collection] | None = None) -> pd.DataFrame:
    """The rows whose name contains `name_text` (any case) and whose value of each key in `chosen` is one
    of its chosen values (a key with no values chosen filters nothing)."""
    keep = pd.Series(True, index=frame.index)
    if name_text.strip():
        keep &= frame["name"].str.contains(name_text.strip(), case=False, regex=False)
    for key, values in (chosen or {}).items():
        if key in frame.columns and values:
            keep &= frame[key].isin(list(values))
    return frame[keep].reset_index(drop=True)


__all__ = ["COLUMNS", "CONFIG_KEYS", "SUMMARY_COLUMNS", "UNREADABLE", "INTERRUPTED", "verdict", "last_horizon",
           "run_row", "run_rows", "values_of", "filter_rows"]
