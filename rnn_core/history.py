"""What a page (or a training service) keeps of a run for its charts: bounded numpy, never tensors.

A browser session lives until its tab has been gone for server.disconnectedSessionTTL, so what
it holds must not grow with the run, nor with the model. Bounds, by the one thinning rule of
rnn_core.thinning (what remains is evenly spaced over the whole run):

- per-step scalars (loss, gradient norms, clipping, ...): at most MAX_STEPS points;
- per-recorded-step rows of the arrays the registry (rnn_core.records) marks as rows, the
  heatmaps' ‖∂L/∂h_t‖ and ‖∂L/∂c_t‖: at most MAX_RECORDED steps and MAX_ROW_BYTES;
- every other array (gates, saturation, spectra, attention) only as `latest`: the last
  recorded step's values, and `latest_finite`, those of the last step whose gradient profile
  was finite (a diverged run's last profile is often all NaN). The gate statistics are taken
  on every `gates_every`-th recorded step only: `latest` keeps the last ones taken, and
  `gates_step` says which step that was.

Time-axis arrays are held at the longest length seen (seq_len once the Trainer pads them), with
NaN where a curriculum has not reached yet. Gradient norms are kept as float32 log10 with an
exact zero at FLOOR: float32 alone would turn a vanished 1e-60 into 0, while its log (-60) is an
ordinary number. Norms of the whole gradient (pre/post clip) stay float64.

The same History comes from a live run (`add` each StepRecord) or a saved one (`from_run`), so
both draw the same figures.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Mapping

import numpy as np

from .diagnostics import memory_horizon
from .records import ARRAY, LOG_ARRAYS, METRICS, ROW_ARRAYS, SPARSE_ARRAYS, TIME_ARRAYS
from .thinning import Thinning, thin_rows

if TYPE_CHECKING:
    from .store import RunData

MAX_RECORDED = 500  # heatmap rows kept; 500 × T=50 × float32 is 100 kB per array
MAX_ROW_BYTES = 32 * 2**20  # and at most this much of them: T=2000 with 8 layer-directions is 64 kB a row
MAX_STEPS = 100_000  # per-step points kept (RunConfig allows at most 100,000 steps per run)
FLOOR = 1e-300  # an exact zero gradient is stored (and drawn) here: log10 has no zero
SCALARS: dict[str, Any] = {m.name: m.history for m in METRICS}  # name -> dtype of the per-step columns


def _pad_to(a: np.ndarray, width: int) -> np.ndarray:
    if a.shape[-1] >= width:
        return a
    return np.pad(a, [(0, 0)] * (a.ndim - 1) + [(0, width - a.shape[-1])], constant_values=np.nan)


def _session_cap(name: str) -> int:
    """The server's cap on what a session keeps per run (BPTT_LAB_HISTORY_ROWS, BPTT_LAB_HISTORY_MB)."""
    from .settings import load_settings

    s = load_settings()
    return s.history_rows if name == "rows" else s.history_mb * 2**20


@dataclass
class History:
    max_recorded: int = field(default_factory=lambda: _session_cap("rows"))  # MAX_RECORDED unless set
    max_steps: int = MAX_STEPS
    max_row_bytes: int = field(default_factory=lambda: _session_cap("bytes"))  # MAX_ROW_BYTES unless set
    n: int = 0  # per-step points held
    step_thinning: Thinning = field(default_factory=Thinning)
    cols: dict[str, np.ndarray] = field(default_factory=dict)
    n_rec: int = 0  # recorded steps held
    rec_thinning: Thinning = field(default_factory=Thinning)
    rec_steps: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    rec: dict[str, np.ndarray] = field(default_factory=dict)  # row arrays: name -> (capacity, *shape) float32
    latest: dict[str, np.ndarray] = field(default_factory=dict)  # the last recorded step's arrays
    latest_step: int | None = None
    gates_step: int | None = None  # the step of the gate statistics in `latest` (taken every gates_every-th)
    latest_finite: dict[str, np.ndarray] = field(default_factory=dict)  # the last with finite timestep_grads
    latest_finite_step: int | None = None
    finite_gates_step: int | None = None  # gates_step of latest_finite
    horizon_last: int | None = None
    horizon_prev: int | None = None
    _max_rows: int = MAX_RECORDED  # recorded steps that fit both caps, for the current row size

    def __post_init__(self) -> None:
        if self.max_recorded < 2 or self.max_steps < 2:
            raise ValueError("history caps must be at least 2: thinning halves them")
        self._max_rows = min(self._max_rows, self.max_recorded)

    @property
    def step_stride(self) -> int:
        return self.step_thinning.stride

    @property
    def rec_stride(self) -> int:
        return self.rec_thinning.stride

    # --- adding --------------------------------------------------------------------
    def add(self, rec: Any) -> None:
        """Add one rnn_core StepRecord (or anything with its fields)."""
        self.add_scalars({c: getattr(rec, c, None) for c in SCALARS})
        if rec.arrays is not None:
            self.add_arrays(rec.step, rec.arrays)

    def add_scalars(self, row: Mapping[str, Any]) -> None:
        thin, keep = self.step_thinning.offer(self.n == self.max_steps)
        if thin:
            for a in self.cols.values():
                kept = thin_rows(a, self.n)
            self.n = kept
        if not keep:
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
        arrays = {k: np.asarray(v) for k, v in arrays.items()}
        width = max([self._width()] + [a.shape[-1] for k, a in arrays.items() if k in TIME_ARRAYS])
        latest = {k: (_pad_to(v, width) if k in TIME_ARRAYS else v).copy() for k, v in arrays.items()}
        taken = [k for k in SPARSE_ARRAYS if k in latest and not np.isnan(latest[k]).all()]
        if taken:
            self.gates_step = int(step)
        for k in SPARSE_ARRAYS - set(taken):  # not taken at this step (gates_every): the last taken stay
            if k in latest and k in self.latest:
                latest[k] = _pad_to(self.latest[k], width)
        self.latest = latest
        self.latest_step = int(step)
        grads = arrays.get("timestep_grads")
        if grads is not None:
            self.horizon_prev, self.horizon_last = self.horizon_last, memory_horizon(grads[0])
            if _finite_profile(grads):
                self.latest_finite, self.latest_finite_step = self.latest, self.latest_step
                self.finite_gates_step = self.gates_step
        rows = {}
        for name in ROW_ARRAYS:
            if name not in arrays:
                continue
            value = _pad_to(arrays[name].astype(np.float64), width)
            if name in LOG_ARRAYS:
                with np.errstate(invalid="ignore"):
                    value = np.log10(np.maximum(value, FLOOR))  # NaN (no such timestep) stays NaN
            rows[name] = value.astype(np.float32)
        if not rows:
            return
        row_bytes = sum(v.nbytes for v in rows.values())
        self._max_rows = min(self.max_recorded, max(2, self.max_row_bytes // row_bytes))
        thin, keep = self.rec_thinning.offer(self.n_rec >= self._max_rows)
        if thin:
            for a in (self.rec_steps, *self.rec.values()):
                kept = thin_rows(a, self.n_rec)
            self.n_rec = kept
        if not keep:
            return
        for name, value in rows.items():
            self._fit(name, value.shape)
            self.rec[name][self.n_rec] = value
        if self.n_rec == len(self.rec_steps):
            self.rec_steps = self._grown(self.rec_steps, fill=0)
        self.rec_steps[self.n_rec] = step
        self.n_rec += 1

    def _width(self) -> int:
        return max((a.shape[-1] for k, a in self.rec.items() if k in TIME_ARRAYS), default=0)

    def _capacity(self) -> int:
        return min(self._max_rows, max(16, 2 * self.n_rec))

    def _grown(self, a: np.ndarray, fill) -> np.ndarray:
        new = np.full((self._capacity(), *a.shape[1:]), fill, a.dtype)
        new[: self.n_rec] = a[: self.n_rec]
        return new

    def _fit(self, name: str, shape: tuple[int, ...]) -> None:
        """Make room for one more row of `shape`: grow by doubling, widen the time axis with NaN."""
        a = self.rec.get(name)
        if a is None:
            self.rec[name] = np.full((self._capacity(), *shape), np.nan, np.float32)
            return
        if a.shape[1:-1] != shape[:-1] or a.shape[-1] > shape[-1]:
            raise ValueError(f"{name} changed shape from {a.shape[1:]} to {shape}")
        if a.shape[-1] < shape[-1]:  # a longer sequence than before (a record that was not padded)
            a = _pad_to(a, shape[-1])
        if self.n_rec == len(a):
            a = self._grown(a, fill=np.nan)
        self.rec[name] = a

    # --- reading -------------------------------------------------------------------
    def scalars(self) -> dict[str, np.ndarray]:
        return {name: a[: self.n] for name, a in self.cols.items()} if self.cols else \
            {name: np.zeros(0, dtype) for name, dtype in SCALARS.items()}

    def recorded(self, name: str) -> np.ndarray | None:
        """(recorded steps, ...) array of a row array; gradient norms come back as values (10**log), float64."""
        a = self.rec.get(name)
        if a is None:
            return None
        a = a[: self.n_rec]
        return np.power(10.0, a.astype(np.float64)) if name in LOG_ARRAYS else a

    def recorded_steps(self) -> np.ndarray:
        return self.rec_steps[: self.n_rec]

    def nbytes(self) -> int:
        arrays = [*self.cols.values(), self.rec_steps, *self.rec.values(), *self.latest.values()]
        if self.latest_finite is not self.latest:
            arrays += list(self.latest_finite.values())
        return int(sum(a.nbytes for a in arrays))

    # --- filling from a saved run ----------------------------------------------------
    @classmethod
    def from_recorder(cls, rows: list[dict], arrays: Mapping[str, list[np.ndarray]]) -> "History":
        """From a Trainer's recorder (its `rows` and `arrays`): a resumed run in a new session."""
        h = cls()
        for row in rows:
            h.add_scalars(row)
        steps = arrays.get("recorded_steps", [])
        for i, s in enumerate(steps):
            h.add_arrays(int(s), {k: v[i] for k, v in arrays.items() if len(v) == len(steps)})
        return h

    @classmethod
    def from_run(cls, run: "RunData") -> "History":
        """From a run on disk (store.load_run): metrics.csv and the recorded arrays."""
        h = cls()
        m = run.metrics
        columns = {name: m[name].to_numpy() for name in SCALARS if name in m.columns}
        for i in range(len(m)):
            h.add_scalars({name: (None if _missing(col[i]) else col[i]) for name, col in columns.items()})
        steps = run.arrays.get("recorded_steps")
        if steps is not None:
            per_step = {k: a for k, a in run.arrays.items() if k in ARRAY and len(a) >= len(steps)}  # longer: a later, killed save
            for i, s in enumerate(steps):
                h.add_arrays(int(s), {k: a[i] for k, a in per_step.items()})
        return h


def _finite_profile(grads: np.ndarray) -> bool:
    """(LD, T): finite wherever the sequence existed; the trailing all-NaN columns are a curriculum's padding."""
    existed = np.flatnonzero(~np.isnan(grads).all(axis=0))
    return len(existed) > 0 and bool(np.isfinite(grads[:, : existed[-1] + 1]).all())


def _missing(v: Any) -> bool:
    return isinstance(v, float) and v != v  # NaN in a float column: no value at that step
