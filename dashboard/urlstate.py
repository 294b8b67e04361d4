"""The config in the URL: every experiment is a link (tensorflow/playground's state.ts idea).

Only keys that differ from the default are written, so a link stays short and readable:
`?cell=lstm&seq_len=200`. Reading is forgiving: an unknown key or a bad value is dropped
(that key keeps its default) and reported in one warning line, never raised.
"""
from __future__ import annotations

from typing import Any, Mapping

from rnn_core.devices import available_devices

from .schema import check_value, defaults, effective_values, widget_specs


def to_query_string(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:.12g}"  # 0.001 -> "0.001", 1.0 -> "1": short, and reads back to the same float
    return str(value)


def values_from_query(params: Mapping[str, str | list[str]]) -> tuple[dict[str, Any], list[str]]:
    """(values with defaults for everything missing or bad, one message per ignored key)."""
    values, problems = defaults(), []
    offered = ["auto", *available_devices()]
    for key, raw in params.items():
        if isinstance(raw, list):  # ?k=a&k=b: the last one wins, as in a form
            raw = raw[-1] if raw else ""
        value, err = check_value(key, raw)
        if err is None and key == "device" and value not in offered:
            err = f"device={value} is not available on this machine (available: {', '.join(offered)})"
        if err is not None:
            problems.append(err)
            continue
        values[key] = value
    return values, problems


def query_from_values(values: Mapping[str, Any]) -> dict[str, str]:
    """The non-default, relevant values as URL strings (hidden fields are at their default already)."""
    base = defaults()
    eff = effective_values(values)
    out = {}
    for name in widget_specs():
        if eff[name] != base[name]:
            out[name] = to_query_string(eff[name])
    return out
