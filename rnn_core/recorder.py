"""What a run has recorded so far, kept as numpy and written to the run store.

Per-step scalars become rows of metrics.csv: every step, one float64 per column (stdlib
`array`, 8 bytes a value; a dict per row cost ~780 bytes). Per-timestep arrays are kept for
the recorded steps only (every `record_every` steps), padded with NaN to seq_len where a
curriculum made the sequence shorter: a timestep that did not exist has no gradient. The
names, dtypes and dims of both are declared once, in rnn_core.records.

The per-timestep arrays are bounded: at most `max_kept` recorded steps and `max_bytes` of
arrays, thinned by the rule of rnn_core.thinning, so what remains stays evenly spaced over the
whole run (its `recorded_steps` array says which steps they are).
"""
from __future__ import annotations

import math
from array import array
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from .records import EVALUATED_METRICS, GROUP_NORM_PREFIX, METRIC, METRIC_COLUMNS, METRICS, pad_time
from .store import atomic_write_csv, atomic_write_npy
from .thinning import Thinning

MAX_KEPT = 2_000  # recorded steps of per-timestep arrays kept (the app's history keeps 500)
MAX_BYTES = 64 * 2**20  # and at most this much of them: T=1000 LSTM steps are ~56 kB each


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
    val_accuracy: float | None = None  # classification tasks, when evaluated
    train_eval_loss: float | None = None  # train_size > 0, when evaluated: the loss on the training set's head

    def row(self) -> dict:
        row = {c: getattr(self, c) for c in METRIC_COLUMNS}
        row.update({f"{GROUP_NORM_PREFIX}{k}": v for k, v in self.group_norms.items()})
        return row


@dataclass
class Recorder:
    seq_len: int
    max_kept: int | None = None  # None: MAX_KEPT (read when the recorder is made)
    max_bytes: int | None = None  # None: MAX_BYTES
    columns: dict[str, array] = field(default_factory=dict)  # metric -> one float64 per step
    arrays: dict[str, list[np.ndarray]] = field(default_factory=dict)  # name -> one array per kept step
    thinning: Thinning = field(default_factory=Thinning)  # which recorded steps are kept

    def __post_init__(self) -> None:
        self.max_kept = MAX_KEPT if self.max_kept is None else self.max_kept
        self.max_bytes = MAX_BYTES if self.max_bytes is None else self.max_bytes
        if self.max_kept < 2:
            raise ValueError("max_kept must be at least 2: thinning halves it")

    # --- adding -----------------------------------------------------------------
    def add(self, rec: StepRecord) -> None:
        self.add_row(rec.row())
        if rec.arrays is not None:
            self.add_arrays(rec.arrays)

    def add_row(self, row: dict) -> None:
        n = len(self)
        for name, value in row.items():
            col = self.columns.get(name)
            if col is None:  # a column first seen now: NaN for the steps before
                col = self.columns[name] = array("d", [math.nan]) * n
            col.append(math.nan if value is None else float(value))
        for name, col in self.columns.items():  # a column this row lacks
            if len(col) == n:
                col.append(math.nan)

    def add_arrays(self, arrays: dict[str, np.ndarray]) -> None:
        kept = {name: pad_time(name, v, self.seq_len) for name, v in arrays.items()}
        n = self.kept()
        step_bytes = sum(v.nbytes for v in kept.values())  # every kept step has the same shapes (padded to seq_len)
        thin, keep = self.thinning.offer(n >= self.max_kept or (n + 1) * step_bytes > self.max_bytes)
        if thin:
            self.arrays = {name: values[::2] for name, values in self.arrays.items()}
        if keep:
            for name, value in kept.items():
                self.arrays.setdefault(name, []).append(value)

    @property
    def stride(self) -> int:
        return self.thinning.stride

    # --- reading ----------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.columns["step"]) if "step" in self.columns else 0

    def kept(self) -> int:
        return len(self.arrays.get("recorded_steps", ()))

    def last(self, name: str) -> float | None:
        col = self.columns.get(name)
        return col[-1] if col else None

    def _typed(self, name: str, v: float):
        metric = METRIC.get(name)
        if metric is not None and metric.read_as is not float and not math.isnan(v):
            return metric.read_as(v)
        return None if name in EVALUATED_METRICS and math.isnan(v) else v

    @property
    def rows(self) -> list[dict]:
        """Every step's metrics as dicts (built on demand: for tests and one-off readers, not per step)."""
        names = list(self.columns)
        return [{k: self._typed(k, v) for k, v in zip(names, values)}
                for values in zip(*(self.columns[k] for k in names))]

    def metrics(self) -> pd.DataFrame:
        if not self.columns:
            return pd.DataFrame(columns=METRIC_COLUMNS)
        df = pd.DataFrame({k: np.frombuffer(v, dtype=np.float64) for k, v in self.columns.items()})
        for m in METRICS:
            if m.read_as is not float and m.name in df and not df[m.name].isna().any():
                df[m.name] = df[m.name].astype(m.read_as)
        return df

    def stacked(self) -> dict[str, np.ndarray]:
        return {name: np.stack(values) for name, values in self.arrays.items()}

    def nbytes(self) -> int:
        """Bytes of recorded values held: the metric columns plus the kept arrays."""
        return (sum(c.itemsize * len(c) for c in self.columns.values())
                + sum(a.nbytes for values in self.arrays.values() for a in values))

    def write(self, path: Path) -> None:
        atomic_write_csv(path / "metrics.csv", self.metrics())
        # recorded_steps last: a save killed half-way leaves it no newer than any other array, so
        # each array holds at least the rows it names (load keeps those)
        arrays = self.stacked()
        for name in sorted(arrays, key=lambda n: n == "recorded_steps"):
            atomic_write_npy(path / f"{name}.npy", arrays[name])

    # --- resuming ---------------------------------------------------------------
    def load(self, metrics: pd.DataFrame, arrays: dict[str, np.ndarray], steps: int, record_every: int) -> None:
        """Refill from a saved run, keeping what was recorded before `steps` (the checkpoint's step)."""
        metrics = metrics[metrics["step"] < steps] if len(metrics) else metrics
        self.columns = {name: array("d", metrics[name].astype(np.float64).to_numpy()) for name in metrics.columns}
        offered = len(range(0, steps, record_every))  # steps s < steps with s % record_every == 0
        self.arrays, self.thinning = {}, Thinning(1, offered)
        recorded = arrays.get("recorded_steps")
        if recorded is None:
            return
        keep = np.flatnonzero(recorded < steps)
        # an array longer than recorded_steps is from a later save that was killed before its
        # recorded_steps.npy: its first rows are the same steps
        self.arrays = {name: list(a[keep]) for name, a in arrays.items() if len(a) >= len(recorded)}
        if len(keep) > 1:  # go on at the saved spacing: the gap between kept steps, in recorded steps
            self.thinning.stride = int(np.diff(recorded[keep]).min()) // record_every
