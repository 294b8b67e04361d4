"""The two tables of a comparison, pure: which keys differ between the columns, and how each run
came out. Plain lists of dicts (a DataFrame is made by the page), so tests read them directly.
"""
from __future__ import annotations

import math
from typing import Any, Mapping, Sequence

import numpy as np

from rnn_core.summary import outcome
from rnn_core.view import RunView

from .schema import widget_specs
from .urlstate import to_query_string

BEAT_FACTOR = 0.99  # "beat the baseline at step": the first evaluation below 0.99 × the validation-batch baseline
# Keys that change the batches a column draws (the Trainer's data stream is seeded by seed and
# drawn with task, seq_len and batch_size): overriding one means the columns no longer see the same data.
DATA_KEYS = ("seed", "task", "seq_len", "batch_size", "digits_mode", "forecast_steps", "curriculum",
             "curriculum_start", "input_noise")


# --- which keys differ ---------------------------------------------------------------------------
def differing_keys(columns: Sequence[Mapping[str, Any]]) -> list[str]:
    """Keys (schema order) whose value is not the same in every column; `columns` are effective values."""
    return [k for k in widget_specs() if len({to_query_string(c.get(k)) for c in columns}) > 1]


def diff_rows(columns: Mapping[str, Mapping[str, Any]], show_all: bool = False) -> list[dict[str, str]]:
    """One row per key that differs between any two columns (every key with show_all), one
    column per letter: [{"key": "cell", "a": "rnn", "b": "lstm"}, ...]."""
    cols = list(columns.values())
    keys = list(widget_specs()) if show_all else differing_keys(cols)
    return [{"key": k, **{letter: to_query_string(c.get(k)) for letter, c in columns.items()}} for k in keys]


# --- how each run came out -------------------------------------------------------------------------
def first_beat_step(steps: np.ndarray, val_loss: np.ndarray, val_baseline: float | None) -> int | None:
    """The step of the first evaluation with val_loss < BEAT_FACTOR × val_baseline, None if none yet."""
    if val_baseline is None or not math.isfinite(val_baseline):
        return None
    val = np.asarray(val_loss, dtype=np.float64)
    with np.errstate(invalid="ignore"):
        hit = np.flatnonzero(np.isfinite(val) & (val < BEAT_FACTOR * val_baseline))
    return int(np.asarray(steps)[hit[0]]) if len(hit) else None


def _number(value: float | None, fmt: str = ".4g") -> str:
    return "—" if value is None or not math.isfinite(value) else format(value, fmt)


def summary_row(letter: str, view: RunView) -> dict[str, str]:
    """One run's row of the summary table (strings, as shown)."""
    h, s, T = view.history, view.summary, view.cfg.seq_len
    sc = h.scalars()
    beat = first_beat_step(sc["step"], sc["val_loss"], s.get("val_baseline"))
    times = np.asarray(sc["step_time_ms"], dtype=np.float64)
    times = times[np.isfinite(times)]
    clipped = np.asarray(sc["clipped"], dtype=bool)
    horizon = h.horizon_last
    return {
        "column": letter,
        "run": view.name,
        "state": view.state,
        "steps": f"{view.steps_done} / {view.cfg.steps}",
        "final val loss": _number(s.get("final_val_loss")),
        "verdict": outcome(s) if s else "—",
        "memory horizon": "—" if horizon is None else (f"≥ {horizon}" if horizon >= T else str(horizon)),
        f"beat {BEAT_FACTOR:g} × baseline at step": "—" if beat is None else str(beat),
        "clipped": f"{100 * clipped.mean():.0f} %" if len(clipped) else "—",
        "ms / step": _number(float(np.median(times)) if len(times) else None, ".3g"),
        "device": view.device or view.cfg.device,
    }


def summary_rows(views: Mapping[str, RunView]) -> list[dict[str, str]]:
    return [summary_row(k, v) for k, v in views.items()]
