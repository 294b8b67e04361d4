"""A lesson question answered from the run's own numbers, never from the lesson file.

`run_numbers(view)` reads what a finished run says (its summary, its latest recorded profile);
`answer(question, numbers, labels)` picks the choice those numbers support and says why, with the
number. Both are plain Python and numpy on a view's fields, so a test can feed them a live run
and the same run read back from disk and get one answer (tests/test_lessons.py).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from .lessons import BEST_BY, NUMERIC, Lesson, Question

FLOOR = 1e-300  # an exact zero gradient counts as this (as the charts draw it): log10 = -300

METRIC_WORDS = {
    "memory_horizon": "memory horizon",
    "log10_ratio": "log10 ‖∂L/∂h_0‖ / ‖∂L/∂h_{T−1}‖",
    "final_val_loss": "final validation loss",
    "beat_baseline": "beat the baseline",
    "outcome": "outcome",
}


@dataclass(frozen=True)
class Answer:
    correct: tuple[int, ...]  # the choices the numbers support (two when a comparison ties); () when none can be read
    value: Any  # the number (or word) read from the run(s)
    why: str  # one sentence with the number, for the page


def latest_profile(history: Any) -> np.ndarray | None:
    """‖∂L/∂h_t‖ of layer 1 (forward) at the last recorded step with a finite gradient, or None."""
    grads = history.recorded("timestep_grads")  # (recorded, L·D, T)
    if grads is None:
        return None
    for row in np.asarray(grads, dtype=np.float64)[::-1, 0]:
        if np.isfinite(row).any():
            return row
    return None


def log10_ratio(profile: np.ndarray | None) -> float | None:
    """log10 ‖∂L/∂h_0‖ − log10 ‖∂L/∂h_last‖ (last: the last finite timestep); an exact zero reads
    as FLOOR. Negative: the gradient vanished on its way back; positive: it grew (exploded)."""
    if profile is None:
        return None
    g = np.asarray(profile, dtype=np.float64)
    finite = np.flatnonzero(np.isfinite(g))
    if len(finite) < 2 or not np.isfinite(g[0]):
        return None
    first, last = max(g[0], FLOOR), max(g[finite[-1]], FLOOR)
    return math.log10(first) - math.log10(last)


def run_numbers(view: Any) -> dict[str, Any]:
    """Every metric a question can ask, from a RunView (live or from disk): the summary's final
    validation loss and verdict, summary.outcome, the memory horizon the page shows (History's, of
    the latest recorded step) and the log ratio of the latest finite profile."""
    from .summary import outcome, verdict_text  # the one definition of an outcome and of a verdict

    s = dict(view.summary)
    state = "stopped" if view.state == "interrupted" else view.state
    final = s.get("final_val_loss")
    profile = latest_profile(view.history)
    return {
        "final_val_loss": float(final) if final is not None and math.isfinite(final) else None,
        "beat_baseline": bool(s.get("beat_baseline")),
        "outcome": outcome({**s, "status": state}),
        "memory_horizon": view.history.horizon_last,
        "log10_ratio": log10_ratio(profile),
        "val_baseline": s.get("val_baseline"),
        "verdict": verdict_text(s) if "beat_margin" in s else None,
        "seq_len": view.cfg.seq_len,
        "steps_done": int(s.get("steps_done") or 0),
        "state": state,
    }


def _shown(metric: str, value: Any, numbers: dict) -> str:
    if metric == "memory_horizon":
        T = numbers.get("seq_len")
        return (f"≥ {T} steps (the whole sequence)" if T is not None and value >= T else f"{value} steps") + (
            f" of T = {T}" if T is not None and value < T else "")
    if metric == "log10_ratio":
        return f"{value:.1f} (‖∂L/∂h_0‖ is 10^{value:.1f} of ‖∂L/∂h_{{T−1}}‖)"
    if metric == "final_val_loss":
        return f"{value:.4g}"
    if metric == "beat_baseline":
        return "yes" if value else "no"
    return str(value)


def _missing(metric: str, numbers: dict) -> str:
    if numbers.get("state") == "diverged":
        return f"The run diverged, so it has no finite {METRIC_WORDS[metric]}: none of the choices can be read."
    return f"The run has no {METRIC_WORDS[metric]} yet (no recorded step): none of the choices can be read."


def answer(question: Question, runs: Sequence[dict], labels: Sequence[str]) -> Answer:
    """The choice the numbers support. `runs`: run_numbers of each run of the step (one, or one per
    compared config, in order); `labels`: the choices shown (for 'best', the compared labels)."""
    metric = question.metric
    if metric == "best":
        return _best(question, runs, labels)
    numbers = runs[0]
    value = numbers.get(metric)
    if value is None:
        return Answer((), None, _missing(metric, numbers))
    if metric in NUMERIC:
        picked = tuple(k for k, c in enumerate(question.choices)
                       if (c.min is None or value >= c.min) and (c.max is None or value < c.max))
    else:
        picked = tuple(k for k, c in enumerate(question.choices) if c.value == value)
    which = " or ".join(f"“{labels[k]}”" for k in picked) or "none of the choices"
    return Answer(picked, value, f"{_reading(metric, value, numbers)}: {which}.")


def _against_bar(numbers: dict) -> str:
    final, bar = numbers.get("final_val_loss"), numbers.get("val_baseline")
    if final is None or bar is None:
        return "no finite validation loss"
    verdict = f"; {numbers['verdict']}" if numbers.get("verdict") else ""
    return f"final validation loss {final:.4g} against the baseline's {bar:.4g} on the same batch{verdict}"


def _reading(metric: str, value: Any, numbers: dict) -> str:
    """What the run says, in words with its numbers."""
    if metric == "beat_baseline":
        return f"The run {'beat' if value else 'did not beat'} the baseline ({_against_bar(numbers)})"
    if metric == "outcome":
        return f"The run ended {value} ({_against_bar(numbers)})"
    return f"The run's {METRIC_WORDS[metric]} is {_shown(metric, value, numbers)}"


def _best(question: Question, runs: Sequence[dict], labels: Sequence[str]) -> Answer:
    by = question.by
    values = [r.get(by) for r in runs]
    known = [(k, v) for k, v in enumerate(values) if v is not None]
    listed = "; ".join(f"{labels[k]}: {_shown(by, v, runs[k]) if v is not None else 'none (diverged)'}"
                       for k, v in enumerate(values))
    if not known:
        return Answer((), None, f"No run has a {METRIC_WORDS[by]} ({listed}).")
    if by == "memory_horizon":  # ≥ T counts as T: two runs that both reach the start tie
        score = {k: min(v, runs[k].get("seq_len") or v) for k, v in known}
        top = max(score.values())
    else:
        score = dict(known)
        top = min(score.values())
    picked = tuple(k for k, v in score.items() if v == top)
    which = " and ".join(f"“{labels[k]}”" for k in picked)
    verb = "tie for" if len(picked) > 1 else "has"
    return Answer(picked, top, f"{which} {verb} the {BEST_BY[by]} ({listed}).")


def train_step(lesson: Lesson, index: int, steps: int | None = None) -> tuple[list[Any], Answer]:
    """Train every run of a lesson step here, through the library (no service), into the run store,
    and answer its question: what the page does, for tests and bench/bench_lessons.py.

    steps: override every config's `steps` (a quick check). Runs go to the run store ($BPTT_LAB_RUNS);
    a step with save_as trains under that name, so a later step can warm-start from it.
    """
    from secrets import token_hex

    from . import store
    from .config import make_config
    from .trainer import Trainer
    from .view import RunView

    step = lesson.steps[index]
    out = []
    for label, cfg in lesson.configs(index):
        if steps is not None:
            cfg = make_config({**cfg.model_dump(), "steps": steps})
        name = step.save_as or store.check_run_name(f"lesson-{lesson.id}-{index + 1}-{token_hex(3)}")
        path = store.run_dir(name)
        Trainer(cfg, out_dir=path).run()
        out.append(RunView.from_disk(path))
    return out, answer(step.question, [run_numbers(v) for v in out], lesson.choices(index))
