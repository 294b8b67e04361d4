"""What a run comes to, as a plain dict (status.json, the CLI's last line, the page's badges)."""
from __future__ import annotations

import math
from typing import Any

from .verdict import MARGIN, P_MAX, judge


def _finite_or_none(v: float | None) -> float | None:
    return v if v is not None and math.isfinite(v) else None


def summarize(tr: Any) -> dict:
    """The summary of a Trainer: status, final validation numbers and the verdict against the baseline
    (rnn_core.verdict) on the last evaluation's per-sequence losses."""
    final = tr.last_val if tr.last_val is not None else tr.recorder.last("loss")
    verdict = judge(tr.val_losses, tr.val_baseline_losses) if tr.val_losses is not None else None
    out = {
        "status": tr.status, "reason": tr.reason, "steps_done": tr.step_index, "diverged_at": tr.diverged_at,
        "final_val_loss": final, "final_val_accuracy": tr.last_val_accuracy,
        "baseline": tr.spec.baseline, "baseline_name": tr.spec.baseline_name,
        "val_baseline": tr.val_baseline,  # the input-blind predictor on the validation batch: the bar
        "beat_baseline": bool(verdict is not None and verdict.beat),
        "beat_margin": _finite_or_none(verdict.margin) if verdict else None,  # 1 − model / baseline
        "beat_p_value": _finite_or_none(verdict.p_value) if verdict else None,
        "engine": tr.engine, "device": str(tr.device),
    }
    if tr.cfg.train_size:  # a finite training set: its loss measured like the validation loss, and the gap
        train = tr.last_train_eval
        out["final_train_eval_loss"] = train
        gap = tr.last_val - train if tr.last_val is not None and train is not None else None
        out["generalization_gap"] = _finite_or_none(gap)  # val − train at the last evaluation: > 0 overfits
    if tr.cfg.task == "charlm":  # cross-entropy in nats / ln 2 = bits per character
        out["final_val_bits_per_char"] = final / math.log(2) if final is not None else None
        out["baseline_bits_per_char"] = tr.spec.baseline / math.log(2)
    return out


def verdict_text(s: dict) -> str:
    """The verdict of a summary in words, e.g. "not beaten (needs 1% lower and p<0.01; got 0.05% lower, p=0.47)"."""
    margin, p = s.get("beat_margin"), s.get("beat_p_value")
    if margin is None or p is None:
        return "no verdict (no finite validation loss)"
    got = f"{abs(margin):.2%} {'lower' if margin >= 0 else 'higher'}, p={p:.2g}"
    if s["beat_baseline"]:
        return f"beaten ({got})"
    return f"not beaten (needs {MARGIN:.0%} lower and p<{P_MAX:g}; got {got})"


OUTCOMES = ("solved", "stuck at baseline", "diverged", "still learning")


def outcome(s: dict) -> str:
    """One word for where a run stands, from its summary (status.json), for tables and Compare:

    - diverged: the loss or the gradient became NaN/Inf, or the run failed;
    - solved: the verdict says it beat the baseline (1% lower and p < 0.01, rnn_core.verdict);
    - stuck at baseline: it ended (finished or stopped) with its validation loss not even 1% below
      the input-blind predictor's on the same batch;
    - still learning: anything else: it is running, or it is below the bar by 1% or more but not
      yet by more than noise can explain.
    """
    status = s.get("status")
    if status in ("diverged", "failed"):
        return "diverged"
    if s.get("beat_baseline"):
        return "solved"
    margin = s.get("beat_margin")
    if status in ("finished", "stopped") and (margin is None or margin < MARGIN):
        return "stuck at baseline"
    return "still learning"
