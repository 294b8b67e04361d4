"""The rules table: the validator and the sidebar agree on every key, task and cell.

The app drops a key to its default where the sidebar hides it; the validator rejects a
non-default value of such a key. These tests walk every key × every non-default allowed value
× task × cell × a few contexts that switch keys on (a warm start, clipping, 2 layers, the
curriculum), and check that the two sides name the same keys.
"""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import get_args

import pytest

from dashboard.schema import build_config, effective_values, relevance, widget_specs
from rnn_core import rules
from rnn_core.config import DEFAULTS, Cell, ConfigError, Task, make_config

ROOT = Path(__file__).resolve().parents[1]
TASKS, CELLS = get_args(Task), get_args(Cell)
CONTEXTS = [{}, {"warm_start": "base"}, {"clip": 1.0}, {"layers": 2}, {"curriculum": True},
            {"attention": "additive"}, {"engine": "fused"}]

# Cannot-combine rules a single changed key may break in one of the contexts, and why.
# Any other cannot-combine line is a failure.
ALLOWED_CONFLICTS = {
    "seq_len": {"seq_len_min",  # copy needs 21 steps, temporal_order 8: seq_len=2 is too short
                "seq_len_fixed",  # digits fixes 64 or 8: any other seq_len is refused
                "curriculum_start",  # with the curriculum on, seq_len=2 is below curriculum_start=10
                "attention_length"},  # additive attention on an every-step task: at most 200 steps
    "curriculum_start": {"curriculum_start"},  # with the curriculum on, a start above seq_len=50
    "activation": {"fused_activation"},  # engine=fused has no sigmoid or linear RNN
    "train_size": {"train_size_curriculum",  # a fixed set has one length, the curriculum grows it
                   "train_size_digits",  # digits has 1500 training images
                   "train_size_memory"},  # 100,000 sequences of 50 steps are over train_size × seq_len ≤ 2M
}


def candidates(name: str) -> list:
    """Every non-default allowed value of a key: all choices, or both bounds and one value inside."""
    spec = widget_specs()[name]
    if spec.kind == "select":
        out = list(spec.options)
    elif spec.kind == "toggle":
        out = [True, False]
    elif spec.kind == "text":
        out = ["base", "run-2.v1"]
    else:
        lo = spec.lo + (1e-6 if spec.lo_exclusive else 0)
        out = [lo, spec.hi, (lo + spec.hi) / 2]
        out = [int(v) for v in out] if spec.kind == "int" else [float(v) for v in out]
    return [v for v in dict.fromkeys(out) if v != spec.default]


def case(task: str, cell: str, context: dict, key: str, value) -> dict:
    values = {**DEFAULTS, "task": task, "cell": cell, **context, key: value}
    if key != "seq_len":  # made valid for the task: the length it fixes, or the default
        fixed = rules.fixed_seq_len(values["task"], values["digits_mode"])
        values["seq_len"] = fixed or max(DEFAULTS["seq_len"], rules.min_seq_len(values["task"]))
    return values


def validator_lines(values: dict) -> list[str]:
    try:
        make_config(values)
    except ConfigError as err:
        return str(err).split("; ")
    return []


def test_validator_and_sidebar_agree_on_every_key_task_and_cell():
    checked = 0
    for task in TASKS:
        for cell in CELLS:
            for context in CONTEXTS:
                base = case(task, cell, context, "task", task)
                if validator_lines(base):
                    continue  # the context itself has no effect here (the curriculum on digits)
                for key in DEFAULTS:
                    for value in candidates(key):
                        values = case(task, cell, context, key, value)
                        lines = validator_lines(values)
                        no_effect = {ln.split("=", 1)[0] for ln in lines if " has no effect " in ln}
                        others = [ln for ln in lines if " has no effect " not in ln]
                        where = (task, cell, context, key, value, lines)
                        # the key itself: rejected as having no effect exactly where the sidebar hides it
                        assert (key in no_effect) == (not relevance(key, values)[0]), where
                        # every key: the validator names exactly the keys the app drops to their default
                        eff = effective_values(values)
                        dropped = {k for k in DEFAULTS if eff[k] != values[k]}
                        if rules.fixed_seq_len(values["task"], values["digits_mode"]) is not None:
                            dropped.discard("seq_len")  # forced, not dropped: the seq_len_fixed rule
                        assert no_effect == dropped, where
                        # the rest are cannot-combine rules this key is listed for
                        broken = rules.conflicts(values)
                        assert sorted(others) == sorted(broken.values()), where
                        assert set(broken) <= ALLOWED_CONFLICTS.get(key, set()), where
                        # what the app builds from these values never has a no-effect line
                        _, err = build_config(values)
                        assert err is None or " has no effect " not in err, where
                        checked += 1
    assert checked > 5000  # a real walk, not an empty loop


def test_each_allowed_conflict_happens():
    """The exceptions above are real, not left over."""
    assert set(rules.conflicts(case("copy", "rnn", {}, "seq_len", 2))) == {"seq_len_min"}
    assert set(rules.conflicts(case("digits", "rnn", {}, "seq_len", 50))) == {"seq_len_fixed"}
    values = case("adding", "rnn", {"curriculum": True}, "curriculum_start", 2000)
    assert set(rules.conflicts(values)) == {"curriculum_start"}
    assert set(rules.conflicts(case("adding", "rnn", {"curriculum": True}, "seq_len", 2))) == {"curriculum_start"}
    assert set(rules.conflicts(case("copy", "rnn", {"attention": "additive"}, "seq_len", 201))) == {"attention_length"}
    assert set(rules.conflicts(case("adding", "rnn", {"engine": "fused"}, "activation", "linear"))) == {"fused_activation"}
    assert set(rules.conflicts(case("adding", "rnn", {"curriculum": True}, "train_size", 100))) == {"train_size_curriculum"}
    assert set(rules.conflicts(case("digits", "rnn", {}, "train_size", 1501))) == {"train_size_digits"}
    assert set(rules.conflicts(case("adding", "rnn", {}, "train_size", 40_001))) == {"train_size_memory"}
    assert not rules.conflicts(case("adding", "rnn", {}, "train_size", 40_000))  # 40,000 × 50 = 2M: the limit


@pytest.mark.parametrize("values, line", [
    ({"cell": "rnn", "forget_bias": 5.0},
     "forget_bias=5.0 has no effect with cell=rnn: only the LSTM has a forget gate (leave it at 1.0)"),
    ({"clip_mode": "value"}, "clip_mode=value has no effect with clip=0.0: clipping is off (leave it at norm)"),
    ({"residual": True}, "residual=true has no effect with layers=1: skip connections need 2 or more layers"),
    ({"freeze": "input"}, "freeze=input has no effect without warm_start: freezing needs a warm start"),
    ({"task": "sine", "bidirectional": True}, "bidirectional=true has no effect with task=sine"),
    ({"cell": "gru", "activation": "relu"}, "activation=relu has no effect with cell=gru"),
    ({"forecast_steps": 3}, "forecast_steps=3 has no effect with task=adding: only the sine task forecasts ahead"),
    ({"embed_size": 8}, "embed_size=8 has no effect with task=adding"),
    ({"digits_mode": "row"}, "digits_mode=row has no effect with task=adding"),
    ({"curriculum_start": 5}, "curriculum_start=5 has no effect with curriculum=false: the curriculum is off"),
    ({"task": "digits", "curriculum": True}, "curriculum=true has no effect with task=digits"),
])
def test_no_effect_lines(values, line):
    with pytest.raises(ConfigError) as err:
        make_config(values)
    assert line in str(err.value)


def test_relevance_shows_keys_where_they_matter():
    v = {**DEFAULTS, "cell": "lstm", "clip": 1.0, "layers": 2, "curriculum": True, "warm_start": "x", "task": "sine"}
    for name in ("forget_bias", "clip_mode", "residual", "curriculum", "curriculum_start", "freeze", "forecast_steps"):
        assert rules.relevance(name, v) == (True, ""), name
    assert rules.relevance("bidirectional", v) == (False, "a forecasting task would read the future it must predict")
    assert rules.relevance("hidden_size", v) == (True, "")  # not in the table: always matters


def test_task_facts():
    from rnn_core import tasks

    assert rules.MIN_SEQ_LEN["copy"] == 2 * tasks.COPY_SYMBOLS + 1 == 21
    assert rules.COPY_SYMBOLS == tasks.COPY_SYMBOLS
    assert (rules.fixed_seq_len("digits", "pixel"), rules.fixed_seq_len("digits", "row")) == (64, 8)
    assert rules.fixed_seq_len("adding") is None
    assert rules.EVERY_STEP_TASKS == {t for t in TASKS if tasks.spec(make_config(task=t)).read == "every"}
    assert rules.FORECAST_TASKS == {"sine", "charlm"}


def test_copy_layout_matches_the_words():
    """10 symbols, T-21 blanks, a delimiter, then 10 steps in which the answer is output."""
    import torch

    from rnn_core import tasks

    T = 30
    x, y = tasks.make_batch(make_config(task="copy", seq_len=T), torch.Generator().manual_seed(0), 4)
    tokens = x.argmax(2)  # (T, B)
    assert (tokens[:10] >= 1).all() and (tokens[:10] <= 8).all()
    assert (tokens[10:T - 11] == 0).all() and T - 11 - 10 == T - 21
    assert (tokens[T - 11] == 9).all()
    assert (tokens[T - 10:] == 0).all() and (y[T - 10:] == tokens[:10]).all() and (y[:T - 10] == 0).all()


def test_fused_supported_is_one_rule():
    from rnn_core import engines

    assert engines.fused_supported is rules.fused_supported
    assert [rules.fused_supported("rnn", a) for a in ("tanh", "relu", "sigmoid", "linear")] == [True, True, False, False]
    assert rules.fused_supported("lstm", "sigmoid") and rules.fused_supported("gru", "linear")


def test_run_names():
    assert rules.check_run_name("explore-adding-rnn-1") == "explore-adding-rnn-1"
    for bad in ("", "../etc", "a/b", ".hidden", "x" * 101, "a..b"):
        with pytest.raises(rules.RunStoreError):
            rules.check_run_name(bad)
    from rnn_core import store

    assert store.check_run_name is rules.check_run_name and store.RunStoreError is rules.RunStoreError
    assert len(rules.run_name_problem("../" + "x" * 10_000)) < 200  # the name is cut in the message


def test_rules_import_only_the_standard_library():
    import ast

    tree = ast.parse((ROOT / "rnn_core" / "rules.py").read_text())
    imported = {a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    imported |= {n.module.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
    assert imported <= set(sys.stdlib_module_names), imported - set(sys.stdlib_module_names)
    code = ("import sys; import rnn_core.rules; "
            "bad = [m for m in ('torch', 'numpy', 'pandas') if m in sys.modules]; assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True, timeout=60)
