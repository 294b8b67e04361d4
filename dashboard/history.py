"""What one browser session keeps of its run: bounded numpy arrays, never tensors or figures.

A session lives until its tab has been gone for server.disconnectedSessionTTL, so whatever it
holds must not grow with the run. Two bounds:

- per-step scalars (loss, gradient norms, clipping, ...) grow by doubling up to MAX_STEPS
  points; past that every other point is dropped and only every 2nd later step is kept,
  so the points stay evenly spaced over the whole run;
- per-timestep arrays of recorded steps (the heatmap rows) are preallocated for MAX_RECORDED
  steps and thinned the same way when full.

Gradient norms are kept as float32 log10 with an exact zero at FLOOR: float32 alone would turn
a vanished 1e-60 into 0, while its log (-60) is an ordinary number. Norms of the whole gradient
(pre/post clip) stay float64 because an exploding one passes float32's 3.4e38 before the NaN.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

import numpy as np

from rnn_core.diagnostics import memory_horizon

from .figures import FLOOR

MAX_RECORDED = 500  # heatmap rows kept; 500 × T=50 × float32 is 100 kB per array
MAX_STEPS = 100_000  # per-step points kept (RunConfig allows at most 100,000 steps per run)
LOG_ARRAYS = ("timestep_grads", "cell_grads")  # stored as log10, read back as values
SKIP_ARRAYS = ("recorded_steps", "attention_samples")  # the step is kept apart; samples only as `latest`

SCALARS: dict[str, Any] = {  # name -> dtype of the per-step columns
    "step": np.int64, "loss": np.float32, "val_loss": np.float32, "grad_norm_pre_clip": np.float64,
    "grad_norm_post_clip": np.float64, "clipped": np.bool_, "lr": np.float32, "step_time_ms": np.float32,
    "seq_len_active": np.int32,
}


def _thin(a: np.ndarray, n: int) -> int:
    """Keep every other of the first n rows of `a` in place; return the new count."""
    keep = a[:n:2]
    a[: len(keep)] = keep
    return len(keep)


@dataclass
class History:
    max_recorded: int = MAX_RECORDED
    max_steps: int = MAX_STEPS
    n: int = 0  # per-step points held
    step_stride: int = 1  # keep a step when (offered steps) % step_stride == 0
    steps_offered: int = 0
    cols: dict[str, np.ndarray] = field(default_factory=dict)
    n_rec: int = 0  # recorded steps held
    rec_stride: int = 1
    rec_offered: int = 0
    rec_steps: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    rec: dict[str, np.ndarray] = field(default_factory=dict)  # name -> (max_recorded, *shape) float32
    latest: dict[str, np.ndarray] = field(default_factory=dict)  # the last recorded step's arrays, as given
    latest_step: int | None = None
    horizon_last: int | None = None
    horizon_prev: int | None = None

    def __post_init__(self) -> None:
        if self.max_recorded % 2 or self.max_steps % 2:
            raise ValueError("history caps must be even: thinning halves them")

    # --- adding --------------------------------------------------------------------
    def add(self, rec: Any) -> None:
        """Add one rnn_core StepRecord (or anything with its fields)."""
        self.add_scalars({c: getattr(rec, c) for c in SCALARS})
        if rec.arrays is not None:
            self.add_arrays(rec.step, rec.arrays)

    def add_scalars(self, row: Mapping[str, Any]) -> None:
        offered = self.steps_offered
        self.steps_offered += 1
        if offered % self.step_stride:
            return
        if self.n == self.max_steps:
            for a in self.cols.values():
                kept = _thin(a, self.n)
            self.n, self.step_stride = kept, self.step_stride * 2
            if offered % self.step_stride:
                return
        if not self.cols or self.n == len(self.cols["step"]):
            self._grow_cols()
        for name, a in self.cols.items():
            v = row.get(name)
            a[self.n] = np.nan if v is None and a.dtype.kind == "f" else (0 if v is None else v)
        self.n += 1

    def _grow_cols(self) -> None:
        cap = min(self.max_steps, max(1024, 2 * self.n))
        new = {name: np.zeros(cap, dtype) for name, dtype in SCALARS.items()}
        for name, a in self.cols.items():
            new[name][: self.n] = a[: self.n]
        self.cols = new

    def add_arrays(self, step: int, arrays: Mapping[str, np.ndarray]) -> None:
        self.latest = {k: np.array(v, copy=True) for k, v in arrays.items()}  # one step: small, bounded
        self.latest_step = int(step)
        if "timestep_grads" in arrays:
            self.horizon_prev, self.horizon_last = self.horizon_last, memory_horizon(np.asarray(arrays["timestep_grads"])[0])
        offered = self.rec_offered
        self.rec_offered += 1
        if offered % self.rec_stride:
            return
        if self.n_rec == self.max_recorded:
            for a in (self.rec_steps, *self.rec.values()):
                kept = _thin(a, self.n_rec)
            self.n_rec, self.rec_stride = kept, self.rec_stride * 2
            if offered % self.rec_stride:
                return
        if not self.rec:
            self.rec_steps = np.zeros(self.max_recorded, np.int64)
        for name, value in arrays.items():
            if name in SKIP_ARRAYS:
                continue
            value = np.asarray(value, dtype=np.float64)
            if name in LOG_ARRAYS:
                value = np.log10(np.maximum(value, FLOOR))  # NaN (no such timestep) stays NaN
            if name not in self.rec:
                self.rec[name] = np.full((self.max_recorded, *value.shape), np.nan, np.float32)
            if self.rec[name].shape[1:] != value.shape:
                raise ValueError(f"{name} changed shape from {self.rec[name].shape[1:]} to {value.shape}")
            self.rec[name][self.n_rec] = value
        self.rec_steps[self.n_rec] = step
        self.n_rec += 1

    # --- reading -------------------------------------------------------------------
    def scalars(self) -> dict[str, np.ndarray]:
        return {name: a[: self.n] for name, a in self.cols.items()} if self.cols else \
            {name: np.zeros(0, dtype) for name, dtype in SCALARS.items()}

    def recorded(self, name: str) -> np.ndarray | None:
        """(recorded steps, ...) array; gradient norms come back as values (10**log), float64."""
        a = self.rec.get(name)
        if a is None:
            return None
        a = a[: self.n_rec]
        return np.power(10.0, a.astype(np.float64)) if name in LOG_ARRAYS else a

    def recorded_steps(self) -> np.ndarray:
        return self.rec_steps[: self.n_rec]

    def nbytes(self) -> int:
        arrays = [*self.cols.values(), self.rec_steps, *self.rec.values(), *self.latest.values()]
        return int(sum(a.nbytes for a in arrays))

    # --- filling from a saved run (resume in a new session) -----------------------------
    @classmethod
    def from_recorder(cls, rows: list[dict], arrays: Mapping[str, list[np.ndarray]]) -> "History":
        h = cls()
        for row in rows:
            h.add_scalars(row)
        steps = arrays.get("recorded_steps", [])
        for i, s in enumerate(steps):
            h.add_arrays(int(s), {k: v[i] for k, v in arrays.items() if len(v) == len(steps)})
        return h
