"""The rules between config keys, written once, for everyone (validator, widgets, URL, CLI).

Plain Python on purpose: this module imports only the standard library, so the config schema
(and the app's sidebar) can be read without loading torch, numpy or pandas.

Three tables:
- per-task facts: the shortest sequence a task can be laid out in, a length the task fixes,
  whether every step is scored, whether the task forecasts;
- relevance: a key that only has an effect in some contexts (forget_bias only on an LSTM);
  a non-default value where it has no effect is a problem, so a saved run means one thing;
- cannot-combine: values that each are fine alone but not together.

`problems(values, defaults)` returns every cross-field problem as one line each; `values` are
typed (already validated one key at a time), as in `RunConfig.model_dump()`.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Callable, Mapping

SHOW_LIMIT = 40  # characters of a user value echoed in a message; a 10,000-character value is cut


def show(value: Any, limit: int = SHOW_LIMIT) -> str:
    """A value as a message shows it: bools as true/false (like a URL or --set), cut to `limit` with …,
    and on one line: a newline, NUL or other control character reads as its escape (\\n, \\x00)."""
    text = ("true" if value else "false") if isinstance(value, bool) else str(value)
    text = text if len(text) <= limit else text[: limit - 1] + "…"
    if not text.isprintable():
        text = "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in text)
    return text


# --- per-task facts -----------------------------------------------------------------
COPY_SYMBOLS = 10  # the copy task's symbols; tasks.py lays them out (a test checks they agree)
# copy: 10 symbols, T-21 blanks, a delimiter, 10 answer steps, so T >= 21 (zero blanks).
# temporal_order: two marked symbols in the 1st and the 2nd half need a few steps around them.
MIN_SEQ_LEN = {"adding": 2, "copy": 2 * COPY_SYMBOLS + 1, "temporal_order": 8, "digits": 2, "sine": 2,
               "charlm": 2}
DIGITS_SEQ_LEN = {"pixel": 64, "row": 8}  # digits reads an 8x8 image: 64 pixels or 8 rows
EVERY_STEP_TASKS = frozenset({"copy", "sine", "charlm"})  # the loss scores every step, not only the last
FORECAST_TASKS = frozenset({"sine", "charlm"})  # the target at t is the input at a later step
MAX_SEQ_LEN = 2000  # RunConfig's bound, named here for the messages


def min_seq_len(task: str) -> int:
    return MIN_SEQ_LEN.get(task, 2)


def fixed_seq_len(task: str, digits_mode: str = "pixel") -> int | None:
    """The length a task fixes (digits: 64 pixels or 8 rows), None where seq_len is free."""
    return DIGITS_SEQ_LEN.get(digits_mode) if task == "digits" else None


def fused_supported(cell: str, activation: str) -> bool:
    """PyTorch's fused kernels exist for the LSTM, the GRU and the tanh/relu RNN."""
    return cell != "rnn" or activation in ("tanh", "relu")


# --- run names ----------------------------------------------------------------------
RUN_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")


class RunStoreError(ValueError):
    """A bad run name, a missing run or an unreadable run file."""


def run_name_problem(name: str) -> str | None:
    if not RUN_NAME.match(name or "") or ".." in name:
        return (f"run name {show(repr(name))} is not allowed: use 1-100 letters, digits, '.', '_' or '-', "
                "starting with a letter or digit, and no '..'")
    return None


def check_run_name(name: str) -> str:
    """`name` when it is a safe directory name, else RunStoreError (a name can never leave the store)."""
    problem = run_name_problem(name)
    if problem:
        raise RunStoreError(problem)
    return name


# --- relevance: where a key has an effect ----------------------------------------------
@dataclass(frozen=True)
class Relevance:
    shown: Callable[[Mapping[str, Any]], bool]  # does the key have an effect with these values?
    context: str  # the values that take its effect away, formatted with show()d values
    note: str  # why it has no effect, in a few words (the sidebar shows it in place of the widget)


RELEVANCE: dict[str, Relevance] = {
    "activation": Relevance(lambda v: v["cell"] == "rnn", "with cell={cell}",
                            "only the vanilla RNN has a choice of activation"),
    "forget_bias": Relevance(lambda v: v["cell"] == "lstm", "with cell={cell}", "only the LSTM has a forget gate"),
    "forecast_steps": Relevance(lambda v: v["task"] == "sine", "with task={task}", "only the sine task forecasts ahead"),
    "digits_mode": Relevance(lambda v: v["task"] == "digits", "with task={task}",
                             "only the digits task reads pixels or rows"),
    "embed_size": Relevance(lambda v: v["task"] == "charlm", "with task={task}", "only charlm embeds tokens"),
    "clip_mode": Relevance(lambda v: float(v["clip"]) > 0, "with clip={clip}", "clipping is off"),
    "residual": Relevance(lambda v: int(v["layers"]) >= 2, "with layers={layers}",
                          "skip connections need 2 or more layers"),
    "curriculum": Relevance(lambda v: fixed_seq_len(v["task"], v["digits_mode"]) is None, "with task={task}",
                            "the task fixes its own length, so there is nothing to grow"),
    "curriculum_start": Relevance(lambda v: bool(v["curriculum"]), "with curriculum={curriculum}",
                                  "the curriculum is off"),
    "freeze": Relevance(lambda v: bool(v["warm_start"]), "without warm_start", "freezing needs a warm start"),
    "gates_every": Relevance(lambda v: v["cell"] != "rnn", "with cell={cell}", "the vanilla RNN has no gates"),
    "bidirectional": Relevance(lambda v: v["task"] not in FORECAST_TASKS, "with task={task}",
                               "a forecasting task would read the future it must predict"),
}


def relevance(name: str, values: Mapping[str, Any]) -> tuple[bool, str]:
    """(shown, note): whether key `name` has any effect given the other values, and why not."""
    rule = RELEVANCE.get(name)
    if rule is None or rule.shown(values):
        return True, ""
    return False, rule.note


def no_effect(name: str, values: Mapping[str, Any], default: Any) -> str:
    """The line for a non-default `name` where it has no effect (call it when relevance says hidden)."""
    rule = RELEVANCE[name]
    context = rule.context.format(**{k: show(v) for k, v in values.items()})
    return f"{name}={show(values[name])} has no effect {context}: {rule.note} (leave it at {show(default)})"


# --- cannot combine -----------------------------------------------------------------
def _seq_len_min(v: Mapping[str, Any]) -> str | None:
    lo = min_seq_len(v["task"])
    if v["seq_len"] < lo:
        return f"seq_len={v['seq_len']} is too short for task={v['task']}: allowed {lo}..{MAX_SEQ_LEN}"
    return None


def _seq_len_fixed(v: Mapping[str, Any]) -> str | None:
    fixed = fixed_seq_len(v["task"], v["digits_mode"])
    if fixed is not None and v["seq_len"] != fixed:
        return (f"seq_len={v['seq_len']} does not fit task={v['task']} with digits_mode={v['digits_mode']}: "
                f"it must be {fixed} (or leave seq_len out)")
    return None


def _fused_activation(v: Mapping[str, Any]) -> str | None:
    if v["engine"] == "fused" and not fused_supported(v["cell"], v["activation"]):
        return (f"engine=fused has no activation={v['activation']} (PyTorch's fused RNN has tanh and relu): "
                "use engine=auto or engine=unrolled")
    return None


ATTENTION_MAX_SEQ_LEN = {"dot": 512, "additive": 200}  # every step against every step: T^2 scores per sequence


def _attention_length(v: Mapping[str, Any]) -> str | None:
    limit = ATTENTION_MAX_SEQ_LEN.get(v["attention"])
    if v["task"] in EVERY_STEP_TASKS and limit and v["seq_len"] > limit:
        return (f"attention={v['attention']} on task={v['task']} scores every step against every step: "
                f"seq_len={v['seq_len']} is too long, allowed 2..{limit}")
    return None


def _curriculum_start(v: Mapping[str, Any]) -> str | None:
    growing = v["curriculum"] and relevance("curriculum", v)[0]  # else "no effect" already says it
    if growing and v["curriculum_start"] > v["seq_len"]:
        return f"curriculum_start={v['curriculum_start']} exceeds seq_len={v['seq_len']}: allowed 2..{v['seq_len']}"
    return None


def _warm_start_name(v: Mapping[str, Any]) -> str | None:
    return run_name_problem(v["warm_start"]) if v["warm_start"] else None


DIGITS_TRAIN_IMAGES = 1500  # tasks.py holds out the last 297 of the 1797 digits (a test checks they agree)
# A fixed training set is held in memory: train_size × seq_len timesteps, at most 80 MB for copy's
# one-hot inputs (10 floats a step), 16 MB for adding.
MAX_TRAIN_TIMESTEPS = 2_000_000


def _train_size_curriculum(v: Mapping[str, Any]) -> str | None:
    growing = v["curriculum"] and relevance("curriculum", v)[0]  # else "no effect" already says it
    if v["train_size"] and growing:
        return (f"train_size={v['train_size']} cannot be combined with curriculum=true: a fixed training set has one "
                "length and the curriculum grows it (use train_size=0 or curriculum=false)")
    return None


def _train_size_digits(v: Mapping[str, Any]) -> str | None:
    if v["task"] == "digits" and v["train_size"] > DIGITS_TRAIN_IMAGES:
        return (f"train_size={v['train_size']} is more than task=digits has: {DIGITS_TRAIN_IMAGES} training images, "
                f"allowed 0..{DIGITS_TRAIN_IMAGES}")
    return None


def _train_size_memory(v: Mapping[str, Any]) -> str | None:
    if v["train_size"] * v["seq_len"] > MAX_TRAIN_TIMESTEPS:
        return (f"train_size={v['train_size']} with seq_len={v['seq_len']} would hold "
                f"{v['train_size'] * v['seq_len']:,} timesteps in memory: allowed train_size 0.."
                f"{MAX_TRAIN_TIMESTEPS // v['seq_len']} at this seq_len (train_size × seq_len ≤ {MAX_TRAIN_TIMESTEPS:,})")
    return None


CANNOT_COMBINE: dict[str, Callable[[Mapping[str, Any]], str | None]] = {
    "seq_len_min": _seq_len_min,
    "seq_len_fixed": _seq_len_fixed,
    "fused_activation": _fused_activation,
    "attention_length": _attention_length,
    "curriculum_start": _curriculum_start,
    "warm_start_name": _warm_start_name,
    "train_size_curriculum": _train_size_curriculum,
    "train_size_digits": _train_size_digits,
    "train_size_memory": _train_size_memory,
}


def conflicts(values: Mapping[str, Any]) -> dict[str, str]:
    """rule name -> its line, for every cannot-combine rule these values break."""
    found = {name: check(values) for name, check in CANNOT_COMBINE.items()}
    return {name: line for name, line in found.items() if line}


def ineffective(values: Mapping[str, Any], defaults: Mapping[str, Any]) -> dict[str, str]:
    """key -> its line, for every key set away from its default where it has no effect."""
    return {name: no_effect(name, values, defaults[name]) for name in RELEVANCE
            if values[name] != defaults[name] and not relevance(name, values)[0]}


def problems(values: Mapping[str, Any], defaults: Mapping[str, Any]) -> list[str]:
    """Every cross-field problem of `values`, one line each; empty when they fit together."""
    return [*ineffective(values, defaults).values(), *conflicts(values).values()]
