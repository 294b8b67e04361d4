"""Links: every ignored or changed key is named, user text never renders as markup, the
address bar follows every change in the run that makes it."""
from __future__ import annotations

import re
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from dashboard.safe import code, plain
from dashboard.schema import defaults
from dashboard.urlstate import query_from_values, values_from_query

APP = str(Path(__file__).resolve().parents[1] / "streamlit_app.py")
HOSTILE = ["**bold**", "[link](http://x)", "![img](http://127.0.0.1:9/x.png)", ":red[RED]", "$x^2$",
           "<b>html</b><script>alert(1)</script>", "a\nb\n# heading", "`tick` ``two``", "\\*already\\*"]


def unescaped(text: str, token: str) -> bool:
    """Does `token` occur with its first character not preceded by an escaping backslash?"""
    for m in re.finditer(re.escape(token), text):
        backslashes = len(text[:m.start()]) - len(text[:m.start()].rstrip("\\"))
        if backslashes % 2 == 0:
            return True
    return False


def unescape(text: str) -> str:
    """What CommonMark shows for backslash escapes (the inverse of plain, but for control characters)."""
    return re.sub(r"\\(.)", r"\1", text)


# --- dashboard.safe ------------------------------------------------------------------

@pytest.mark.parametrize("text", HOSTILE)
def test_plain_escapes_every_markup_character(text):
    out = plain(text)
    for token in ("[", "](", "**", ":red[", "$", "<", "!", "`", "#", ":"):
        assert not unescaped(out, token), (token, out)
    assert "\n" not in out  # a new line could start a heading or a list
    assert unescape(out) == text.replace("\n", "n")  # shows the same characters (a newline as \n)


def test_plain_cuts_long_text():
    assert plain("x" * 10_000, limit=40) == "x" * 39 + "…"
    assert plain("ok", limit=40) == "ok"


@pytest.mark.parametrize("value", HOSTILE + ["x" * 10_000, "", 3.5, True])
def test_code_is_one_code_span(value):
    out = code(value)
    fence = re.match(r"`+", out).group(0)
    assert out.endswith(fence) and len(out) > 2 * len(fence)
    inner = out[len(fence):-len(fence)]
    assert fence not in inner  # nothing inside can close the span early
    assert "\n" not in out and len(inner) <= 42  # cut to 40 characters (and at most a pad each side)


# --- reading a link ---------------------------------------------------------------------

def warnings_of(params) -> tuple[dict, str]:
    values, warnings = values_from_query(params)
    return values, " | ".join(warnings)


def test_a_key_given_twice_says_which_value_was_used():
    values, text = warnings_of({"cell": ["lstm", "gru"]})
    assert values["cell"] == "gru"
    assert "`cell` was given 2 times" in text and "`cell=gru`, is used" in text


@pytest.mark.parametrize("params, words", [
    ({"residual": "true"}, "`residual=true` was ignored: skip connections need 2 or more layers"),
    ({"task": "sine", "bidirectional": "true"}, "`bidirectional=true` was ignored: a forecasting task"),
    ({"clip_mode": "value"}, "`clip_mode=value` was ignored: clipping is off"),
    ({"forget_bias": "5"}, "`forget_bias=5` was ignored: only the LSTM has a forget gate"),
    ({"freeze": "input"}, "`freeze=input` was ignored: freezing needs a warm start"),
    ({"task": "digits", "seq_len": "50"}, "`seq_len=50` was ignored: task=digits with digits\\_mode=pixel fixes it to 64"),
    ({"task": "digits", "curriculum": "true", "curriculum_start": "5"}, "`curriculum_start=5` was ignored"),
    ({"bogus": "1"}, "`bogus` was ignored: it is not a setting"),
    ({"seq_len": "abc"}, "`seq_len=abc` was ignored: allowed\\: int in 2\\.\\.2000"),
    ({"device": "tpu"}, "`device=tpu` was ignored"),
])
def test_every_ignored_key_is_named(params, words):
    values, text = warnings_of(params)
    assert words in text, text
    assert query_from_values(values).keys() <= set(params) - {"bogus"}  # ignored keys leave the link
    for key in params:
        if key in defaults() and key not in ("task", "seq_len"):
            assert values[key] == defaults()[key], key


def test_old_name_horizon_reads_as_forecast_steps():
    values, text = warnings_of({"task": "sine", "horizon": "3"})
    assert values["forecast_steps"] == 3 and "`horizon` is now called `forecast_steps`" in text
    assert query_from_values(values) == {"task": "sine", "forecast_steps": "3"}
    values, text = warnings_of({"task": "sine", "horizon": "3", "forecast_steps": "2"})
    assert values["forecast_steps"] == 2 and "`horizon` was ignored" in text


def test_a_good_link_has_no_warning():
    values, text = warnings_of({"cell": ["lstm"], "forget_bias": ["2"], "clip": "1", "clip_mode": "value"})
    assert text == "" and (values["cell"], values["forget_bias"], values["clip_mode"]) == ("lstm", 2.0, "value")


@pytest.mark.parametrize("hostile", HOSTILE + ["y" * 10_000])
def test_hostile_values_only_show_as_code(hostile):
    _, warnings = values_from_query({"cell": hostile, hostile: "1", "warm_start": hostile})
    for w in warnings:
        outside = re.sub(r"(`+).*?\1", "", w)  # what is left outside the code spans
        for token in ("[", "](", "**", ":red[", "$", "<"):
            assert not unescaped(outside, token), (token, w)
        assert len(w) < 300


# --- the app: the address bar ----------------------------------------------------------

def new_app(**params) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=60)
    for k, v in params.items():
        at.query_params[k] = v
    return at.run()


def query(at: AppTest) -> dict[str, str]:
    return {k: v[-1] if isinstance(v, list) else v for k, v in at.query_params.items()}


def test_the_link_follows_each_change_in_the_same_run():
    at = new_app()
    assert query(at) == {}
    at.selectbox(key="w_cell").set_value("gru").run()
    assert query(at) == {"cell": "gru"}  # not one change behind
    at.selectbox(key="w_init").set_value("orthogonal").run()
    assert query(at) == {"cell": "gru", "init": "orthogonal"}
    at.selectbox(key="w_cell").set_value("rnn").run()
    assert query(at) == {"init": "orthogonal"}


def test_reading_a_link_rewrites_it_to_the_settings_in_use():
    at = AppTest.from_file(APP, default_timeout=60)
    at.query_params["cell"] = ["lstm", "gru"]
    at.query_params["residual"] = "true"
    at.query_params["bogus"] = "1"
    at.query_params["horizon"] = "2"
    at.run()
    assert not at.exception
    assert query(at) == {"cell": "gru"}  # the duplicate, the ignored and the unknown keys are gone
    text = " ".join(w.value for w in at.warning)
    for words in ("`cell` was given 2 times", "`residual=true` was ignored", "`bogus` was ignored",
                  "`horizon` is now called `forecast_steps`"):
        assert words in text, text
