"""Every name a run records, declared once: read by the Recorder, the page's History and the run store.

Metrics are one value per training step (rows of metrics.csv). Arrays are per recorded step
(every `record_every` steps), saved as `<name>.npy` with the recorded steps as a leading axis;
the sparse ones (gate statistics, ‖∂L/∂c_t‖) hold values on every `gates_every`-th recorded step
and NaN on the others.

Dims use these letters: LD = layers × directions (layer-major, direction-minor), G = gates
(1 for the vanilla RNN, i f g o for the LSTM, r z n for the GRU), T = seq_len, Q = recorded
attention queries, S = raw attention samples.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True)
class Metric:
    name: str
    read_as: type  # metrics.csv stores float64 (NaN for a missing value); a full column reads back as this
    history: Any  # numpy dtype of the page's History column
    doc: str
    required: bool = True  # False: added later, so a run saved (or exported) before it lacks the column


@dataclass(frozen=True)
class ArrayRecord:
    name: str
    dtype: Any  # as stored in <name>.npy
    dims: tuple[str, ...]  # per recorded step
    time_last: bool  # the last axis is time: NaN-padded to seq_len where a curriculum made it shorter
    rows: bool  # the History keeps one row per recorded step (heatmaps); otherwise only the latest
    log10: bool  # the History stores log10 (float32 would flush a vanished 1e-60 to 0; its log is -60)
    doc: str
    # Taken only on every `gates_every`-th recorded step (config.py says why); all NaN on the
    # recorded steps between, so every array keeps one row per recorded step.
    sparse: bool = False


# Gradient norms of the whole gradient stay float64 in the History: an exploding one passes
# float32's 3.4e38 before it becomes Inf.
METRICS: tuple[Metric, ...] = (
    Metric("step", int, np.int64, "0-based training step"),
    Metric("loss", float, np.float32, "training loss of the step's batch"),
    Metric("val_loss", float, np.float32, "loss on the fixed validation batch; NaN when not evaluated"),
    Metric("val_accuracy", float, np.float32, "classification tasks: share of correct argmax predictions "
                                              "(per step for copy and charlm); NaN otherwise"),
    Metric("grad_norm_pre_clip", float, np.float64, "global gradient norm before clipping"),
    Metric("grad_norm_post_clip", float, np.float64, "global gradient norm after clipping"),
    Metric("clipped", bool, np.bool_, "whether clipping changed the gradient"),
    Metric("lr", float, np.float32, "learning rate of the step"),
    Metric("step_time_ms", float, np.float32, "wall time of the whole step, recording and evaluation included"),
    Metric("seq_len_active", int, np.int32, "sequence length of the step (a curriculum grows it)"),
    Metric("train_eval_loss", float, np.float32, "train_size > 0: loss on (up to 256 of) the training sequences, "
                                                 "measured like val_loss (eval mode, no noise); NaN otherwise",
           required=False),
)
GROUP_NORM_PREFIX = "grad_norm/"  # plus one column per parameter group: grad_norm/l0.hh, grad_norm/readout, ...

ARRAYS: tuple[ArrayRecord, ...] = (
    ArrayRecord("recorded_steps", np.int64, (), False, True, False, "the training step of each recorded row"),
    ArrayRecord("timestep_grads", np.float64, ("LD", "T"), True, True, True, "‖∂L/∂h_t‖ over batch and hidden units"),
    ArrayRecord("cell_grads", np.float64, ("LD", "T"), True, True, True, "LSTM: ‖∂L/∂c_t‖", sparse=True),
    ArrayRecord("hidden_saturation", np.float64, ("LD", "T"), True, False, False,
                "saturated fraction of h_t (relu: dead fraction; linear: NaN)"),
    ArrayRecord("gate_mean", np.float32, ("LD", "G", "T"), True, False, False, "LSTM/GRU: mean activation of each gate",
                sparse=True),
    ArrayRecord("gate_saturation", np.float32, ("LD", "G", "T"), True, False, False,
                "LSTM/GRU: fraction of units saturated in each gate", sparse=True),
    ArrayRecord("spectral_radius", np.float64, ("LD", "G"), False, False, False,
                "spectral radius of each H×H gate block of W_hh, before the step's update"),
    ArrayRecord("sigma_max", np.float64, ("LD", "G"), False, False, False, "largest singular value of each block"),
    ArrayRecord("attention_mean", np.float32, ("Q", "T"), True, False, False, "attention weights, batch mean"),
    ArrayRecord("attention_samples", np.float32, ("S", "Q", "T"), True, False, False, "attention weights of a few sequences"),
)

METRIC = {m.name: m for m in METRICS}
ARRAY = {a.name: a for a in ARRAYS}
METRIC_COLUMNS = [m.name for m in METRICS]
REQUIRED_METRIC_COLUMNS = [m.name for m in METRICS if m.required]
EVALUATED_METRICS = frozenset({"val_loss", "val_accuracy", "train_eval_loss"})  # NaN (None) between evaluations
TIME_ARRAYS = frozenset(a.name for a in ARRAYS if a.time_last)
ROW_ARRAYS = tuple(a.name for a in ARRAYS if a.rows and a.name != "recorded_steps")
LOG_ARRAYS = frozenset(a.name for a in ARRAYS if a.log10)
SPARSE_ARRAYS = frozenset(a.name for a in ARRAYS if a.sparse)  # NaN on the recorded steps gates_every skips


def pad_time(name: str, a: np.ndarray, seq_len: int) -> np.ndarray:
    """NaN-pad a per-timestep array to seq_len along its last axis: a timestep that did not exist has no value."""
    a = np.asarray(a)
    if name not in TIME_ARRAYS or a.shape[-1] >= seq_len:
        return a
    pad = [(0, 0)] * (a.ndim - 1) + [(0, seq_len - a.shape[-1])]
    return np.pad(a, pad, constant_values=np.nan)

