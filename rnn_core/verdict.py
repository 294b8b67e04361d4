"""Did the model beat the task's input-blind predictor by more than noise can explain?

The rule, on the fixed validation batch (n = 256 sequences), with per-sequence losses m_i of the
model and b_i of the input-blind predictor on the same sequences:

    beat  ⇔  mean(m) < (1 − MARGIN) · mean(b)   and   p < P_MAX,

where p is the one-sided paired t-test of d_i = b_i − m_i > 0. A mean below the bar alone is
not enough: a tanh RNN at T=200 that only learned the mean scores 0.16771 against the best
constant's 0.16780, a difference that any other batch could reverse.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import torch
import torch.nn.functional as F

from .tasks import TaskSpec, _corpus_vocab, _digits_prior

if TYPE_CHECKING:
    from .config import RunConfig

MARGIN = 0.01  # the model's mean loss must be at least 1% below the baseline's
P_MAX = 0.01  # and the paired test must make "no better than the baseline" unlikely at this level


@dataclass(frozen=True)
class Verdict:
    beat: bool
    model_loss: float  # mean per-sequence loss of the model
    baseline_loss: float  # mean per-sequence loss of the input-blind predictor: the bar
    margin: float  # relative: 1 − model / baseline (0.05 = 5% below the bar)
    p_value: float  # one-sided paired test that the model is no better than the baseline


def judge(model: np.ndarray, baseline: np.ndarray) -> Verdict:
    """Apply the rule to per-sequence losses of the model and of the baseline on the same sequences."""
    m, b = np.asarray(model, np.float64), np.asarray(baseline, np.float64)
    mm, bm = float(m.mean()), float(b.mean())
    if not (np.isfinite(m).all() and len(m) > 1):
        return Verdict(False, mm, bm, math.nan, math.nan)
    d = b - m
    sd = float(d.std(ddof=1))
    if sd == 0:
        p = 0.0 if d.mean() > 0 else 1.0
    else:
        t = float(d.mean()) / (sd / math.sqrt(len(d)))
        # The t distribution with n − 1 = 255 degrees of freedom is the normal one to within
        # 1e-3 in p around p = 0.01 (scipy is not a dependency): p = 1 − Φ(t).
        p = 0.5 * math.erfc(t / math.sqrt(2))
    margin = 1 - mm / bm if bm > 0 else math.nan
    return Verdict(bool(mm < (1 - MARGIN) * bm and p < P_MAX), mm, bm, margin, p)


def sequence_losses(spec: TaskSpec, pred: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """(B,) loss of each sequence, the mean over time for every-step tasks; its mean is the task loss."""
    if spec.loss == "mse":
        per = (pred - y) ** 2  # (B, O) or (T, B, O)
        return per.mean(-1) if spec.read == "last" else per.mean((0, 2))
    ce = F.cross_entropy(pred.reshape(-1, pred.shape[-1]), y.reshape(-1), reduction="none")
    return ce if spec.read == "last" else ce.view(y.shape).mean(0)  # y (B,) or (T, B)


def accuracy(spec: TaskSpec, pred: torch.Tensor, y: torch.Tensor) -> float | None:
    """Share of correct argmax predictions (every step for every-step tasks); None for regression."""
    if spec.loss != "ce":
        return None
    return float((pred.argmax(-1) == y).double().mean())


def baseline_losses(cfg: "RunConfig", spec: TaskSpec, x: torch.Tensor, y: torch.Tensor) -> np.ndarray:
    """(B,) loss of the task's input-blind predictor on each sequence; its mean is tasks.baseline_loss."""
    B = y.shape[1] if spec.read == "every" else y.shape[0]
    if cfg.task == "adding":  # the batch's best constant: its mean
        per = (y - y.mean()) ** 2  # (B, 1)
        return per.mean(1).double().numpy()
    if cfg.task == "sine":  # persistence: x is the series `horizon` steps back
        return ((y - x) ** 2).mean((0, 2)).double().numpy()
    if cfg.task in ("digits", "charlm"):  # the training prior, whatever the input
        prior = _digits_prior() if cfg.task == "digits" else torch.from_numpy(_corpus_vocab()[1])
        nll = -prior.log()[y]  # y (B,) or (T, B)
        return (nll if nll.dim() == 1 else nll.mean(0)).double().numpy()
    return np.full(B, spec.baseline)  # copy, temporal_order: the same loss on every sequence
