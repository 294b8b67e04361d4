"""The config in the URL: every experiment is a link (tensorflow/playground's state.ts idea).

Only keys that differ from the default are written, so a link stays short and readable:
`?cell=lstm&seq_len=200`. Reading is forgiving: a key that cannot be used (unknown, a bad
value, given twice, no effect with the others, fixed by the task) keeps or takes the value
in use and gets one named warning, never an exception. The warnings are Markdown that shows
every value from the link literally (dashboard.safe).
"""
from __future__ import annotations

from typing import Any, Mapping

from rnn_core.config import OLD_NAMES, describe_allowed
from rnn_core.devices import available_devices

from .safe import code, plain
from .schema import check_value, defaults, effective_values, forced_value, relevance, widget_specs


def to_query_string(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:.12g}"  # 0.001 -> "0.001", 1.0 -> "1": short, and reads back to the same float
    return str(value)


def _as_lists(params: Mapping[str, str | list[str]]) -> dict[str, list[str]]:
    return {key: list(raw) if isinstance(raw, (list, tuple)) else [raw] for key, raw in params.items()}


def _renamed(params: dict[str, list[str]], warnings: list[str]) -> dict[str, list[str]]:
    """Old names (`?horizon=3`) read as the new ones, with a warning; the new name wins when both are given."""
    out = {}
    for key, raws in params.items():
        new = OLD_NAMES.get(key)
        if new is None:
            out.setdefault(key, raws)
            continue
        if new in params:
            warnings.append(f"{code(key)} was ignored: it is now called {code(new)}, which the link also gives")
            continue
        warnings.append(f"{code(key)} is now called {code(new)}: the link now says {code(new)}")
        out[new] = raws
    return out


def values_from_query(params: Mapping[str, str | list[str]]) -> tuple[dict[str, Any], list[str]]:
    """(the values to use, one Markdown warning per key of the link that was ignored or changed).

    `params` maps each key to every value the link gives it (Streamlit's
    `st.query_params.get_all(key)`); a plain string is one value. Keys missing or ignored
    keep their defaults.
    """
    values, warnings = defaults(), []
    offered = ["auto", *available_devices()]
    given: dict[str, str] = {}  # key -> the raw value used, for the relevance warnings below
    for key, raws in _renamed(_as_lists(params), warnings).items():
        if not raws:
            continue
        raw = raws[-1]  # ?k=a&k=b: the last one wins, as in a form
        if len(raws) > 1:
            warnings.append(f"{code(key)} was given {len(raws)} times: the last one, {code(f'{key}={raw}')}, is used")
        if key not in widget_specs():
            warnings.append(f"{code(key)} was ignored: it is not a setting")
            continue
        value, err = check_value(key, raw)
        if err is None and key == "device" and value not in offered:
            err = f"this machine offers {', '.join(offered)}"
        elif err is not None:
            err = describe_allowed(key)
        if err is not None:
            warnings.append(f"{code(f'{key}={raw}')} was ignored: {plain(err)}")
            continue
        values[key], given[key] = value, raw
    used = effective_values(values)
    for key, raw in given.items():
        if used[key] == values[key]:
            continue
        forced = forced_value(key, values)
        if forced is not None:
            reason = f"task={values['task']} with digits_mode={values['digits_mode']} fixes it to {forced}"
        else:
            reason = relevance(key, used)[1] or "it has no effect with the other settings"
        warnings.append(f"{code(f'{key}={raw}')} was ignored: {plain(reason)}")
    return {**values, **{k: used[k] for k in given}}, warnings


def query_from_values(values: Mapping[str, Any]) -> dict[str, str]:
    """The non-default, relevant values as URL strings (hidden fields are at their default already;
    a value the task fixes, digits' seq_len, is left out: the task brings it back)."""
    base = defaults()
    eff = effective_values(values)
    out = {}
    for name in widget_specs():
        if eff[name] != base[name] and forced_value(name, eff) is None:
            out[name] = to_query_string(eff[name])
    return out
