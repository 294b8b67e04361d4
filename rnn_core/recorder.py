"""What a run has recorded so far, kept as numpy and written to the run store.

Per-step scalars become rows of metrics.csv. Per-timestep arrays are kept for the
recorded steps only (every `record_every` steps), padded with NaN to seq_len where a
curriculum made the sequence shorter: a timestep that did not exist has no gradient.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from .store import atomic_write_csv, atomic_write_npy

# arrays whose last axis is time: padded with NaN to seq_len when a curriculum made the sequence shorter
TIME_ARRAYS = {"timestep_grads", "cell_grads", "hidden_saturation", "gate_mean", "gate_saturation",
               "attention_mean", "attention_samples"}
METRIC_COLUMNS = ["step", "loss", "val_loss", "grad_norm_pre_clip", "grad_norm_post_clip", "clipped", "lr",
                  "step_time_ms", "seq_len_active"]


@dataclass
class StepRecord:
    step: int
    loss: float
    val_loss: float | None
    grad_norm_pre_clip: float
    grad_norm_post_clip: float
    clipped: bool
    lr: float
    step_time_ms: float
    seq_len_active: int
    group_norms: dict[str, float]
    arrays: dict[str, np.ndarray] | None = None  # this step's per-timestep diagnostics, when recorded

    def row(self) -> dict:
        row = {c: getattr(self, c) for c in METRIC_COLUMNS}
        row.update({f"grad_norm/{k}": v for k, v in self.group_norms.items()})
        return row


@dataclass
class Recorder:
    seq_len: int
    rows: list[dict] = field(default_factory=list)
    arrays: dict[str, list[np.ndarray]] = field(default_factory=dict)

    def add(self, rec: StepRecord) -> None:
        self.rows.append(rec.row())
        if rec.arrays is not None:
            for name, value in rec.arrays.items():
                value = np.asarray(value)
                self.arrays.setdefault(name, []).append(self._pad(value) if name in TIME_ARRAYS else value)

    def _pad(self, a: np.ndarray) -> np.ndarray:
        # time is the last axis of every per-timestep array; shorter (curriculum) ones are NaN-padded
        if a.shape[-1] < self.seq_len:
            pad = [(0, 0)] * (a.ndim - 1) + [(0, self.seq_len - a.shape[-1])]
            a = np.pad(a, pad, constant_values=np.nan)
        return a

    def metrics(self) -> pd.DataFrame:
        return pd.DataFrame(self.rows, columns=None if self.rows else METRIC_COLUMNS)

    def stacked(self) -> dict[str, np.ndarray]:
        return {name: np.stack(values) for name, values in self.arrays.items()}

    def write(self, path: Path) -> None:
        atomic_write_csv(path / "metrics.csv", self.metrics())
        for name, array in self.stacked().items():
            atomic_write_npy(path / f"{name}.npy", array)

    def truncate(self, steps: int) -> None:
        """Keep what was recorded before `steps` (resuming from a checkpoint taken at `steps`)."""
        self.rows = [r for r in self.rows if r["step"] < steps]
        if "recorded_steps" in self.arrays:
            keep = [i for i, s in enumerate(self.arrays["recorded_steps"]) if int(s) < steps]
            self.arrays = {k: [v[i] for i in keep] for k, v in self.arrays.items()}
