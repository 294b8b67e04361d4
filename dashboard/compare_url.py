"""A comparison in the URL: `/compare?seq_len=100&a.cell=rnn&b.cell=lstm`.

Shared keys are written as on Explore (only non-default ones, dashboard.urlstate), so a link
from Explore is also a comparison of two equal columns. A column's own keys carry its letter:
`a.` to `d.`. The number of columns is the highest letter present, or `cols=3` when the last
columns override nothing. `?runs=NAME1,NAME2` compares saved runs instead.

Reading is forgiving, as on Explore: every key that cannot be used is named in one warning
(through dashboard.safe) and the comparison falls back to what can be used. Pure: no Streamlit.
"""
from __future__ import annotations

from typing import Any, Mapping
from urllib.parse import urlencode

from rnn_core.config import RunConfig, describe_allowed
from rnn_core.devices import available_devices

from .safe import code, plain
from .schema import check_value, effective_values, relevance, widget_specs
from .urlstate import query_from_values, to_query_string, values_from_query

LETTERS = ("a", "b", "c", "d")  # column names, in order; the URL prefixes their keys with "a." ...
MIN_COLS, MAX_COLS = 2, 4  # fewer is not a comparison; more no longer fits side by side
COLS_KEY = "cols"
RUNS_KEY = "runs"
PAGE_PATH = "/compare"  # the page's url_path under st.navigation (its file is pages/compare.py)

Overrides = list[dict[str, Any]]  # one dict per column: the keys that column sets itself


def _as_lists(params: Mapping[str, str | list[str]]) -> dict[str, list[str]]:
    return {k: list(v) if isinstance(v, (list, tuple)) else [v] for k, v in params.items()}


def _last(key: str, raws: list[str], warnings: list[str]) -> str:
    if len(raws) > 1:
        warnings.append(f"{code(key)} was given {len(raws)} times: the last one, {code(f'{key}={raws[-1]}')}, is used")
    return raws[-1]


def _column_value(key: str, name: str, raw: str) -> tuple[Any, str | None]:
    """One column key checked on its own, worded as Explore words a bad value."""
    if name not in widget_specs():
        return None, "it is not a setting"
    value, err = check_value(name, raw)
    if err is not None:
        return None, describe_allowed(name)
    if name == "device" and value not in ("auto", *available_devices()):
        return None, f"this machine offers {', '.join(['auto', *available_devices()])}"
    return value, None


def _cols(raws: list[str], warnings: list[str]) -> int:
    raw = _last(COLS_KEY, raws, warnings)
    if raw.strip().isdigit() and MIN_COLS <= int(raw) <= MAX_COLS:
        return int(raw)
    warnings.append(f"{code(f'{COLS_KEY}={raw}')} was ignored: allowed: {MIN_COLS} to {MAX_COLS} columns")
    return MIN_COLS


def comparison_from_query(params: Mapping[str, str | list[str]]) -> tuple[dict[str, Any], Overrides, list[str]]:
    """(shared values, overrides per column, one Markdown warning per key ignored or changed).

    Shared keys go through urlstate.values_from_query (Explore's rules and words); a column key
    `a.name` is checked with schema.check_value, and dropped when it has no effect in that
    column. `a.seed` is kept but warned about: that column sees different data.
    """
    lists = _as_lists(params)
    warnings: list[str] = []
    shared_params = {k: v for k, v in lists.items() if "." not in k and k not in (COLS_KEY, RUNS_KEY)}
    shared, shared_warnings = values_from_query(shared_params)
    warnings += shared_warnings
    n = _cols(lists[COLS_KEY], warnings) if lists.get(COLS_KEY) else MIN_COLS
    found: list[dict[str, Any]] = [{} for _ in LETTERS]
    raw_of: dict[tuple[int, str], str] = {}
    for key, raws in lists.items():
        if "." not in key or not raws:
            continue
        letter, name = key.split(".", 1)
        raw = _last(key, raws, warnings)
        if letter not in LETTERS:
            warnings.append(f"{code(f'{key}={raw}')} was ignored: columns are {', '.join(LETTERS)}")
            continue
        value, err = _column_value(key, name, raw)
        if err is not None:
            warnings.append(f"{code(f'{key}={raw}')} was ignored: {plain(err)}")
            continue
        col = LETTERS.index(letter)
        found[col][name], raw_of[(col, name)] = value, raw
        n = max(n, col + 1)
    overrides = found[:n]
    for col, ov in enumerate(overrides):
        merged = {**shared, **ov}
        used = effective_values(merged)
        for name in list(ov):
            key = f"{LETTERS[col]}.{name}"
            if used[name] != ov[name]:
                reason = relevance(name, used)[1] or "it has no effect with the other settings"
                warnings.append(f"{code(f'{key}={raw_of[(col, name)]}')} was ignored: {plain(reason)}")
                del ov[name]
            elif name == "seed":
                warnings.append(f"{code(f'{key}={raw_of[(col, name)]}')}: column {LETTERS[col]} has its own seed, "
                                "so it sees different data and starts from different weights")
    return shared, overrides, warnings


def query_from_comparison(shared: Mapping[str, Any], overrides: Overrides) -> dict[str, str]:
    """The URL of a comparison: shared keys as on Explore, then `a.name=value` per column override,
    and `cols=N` only when the last columns override nothing."""
    out = dict(query_from_values(shared))
    last = max((k + 1 for k, ov in enumerate(overrides) if ov), default=0)
    if len(overrides) > max(last, MIN_COLS):
        out[COLS_KEY] = str(len(overrides))
    for letter, ov in zip(LETTERS, overrides):
        for name, value in ov.items():
            out[f"{letter}.{name}"] = to_query_string(value)
    return out


def runs_from_query(params: Mapping[str, str | list[str]]) -> tuple[list[str], list[str]]:
    """(run names of `?runs=A,B`, warnings): at most MAX_COLS, each once, in the link's order."""
    lists = _as_lists(params)
    warnings: list[str] = []
    raw = _last(RUNS_KEY, lists.get(RUNS_KEY) or [""], warnings)
    names: list[str] = []
    for name in (part.strip() for part in raw.split(",")):
        if name and name not in names:
            names.append(name)
    if len(names) > MAX_COLS:
        warnings.append(f"{code(RUNS_KEY)} names {len(names)} runs: the first {MAX_COLS} are compared")
        names = names[:MAX_COLS]
    if len(names) < MIN_COLS:
        warnings.append(f"{code(RUNS_KEY)} needs {MIN_COLS} to {MAX_COLS} run names separated by commas, "
                        f"got {len(names)}")
    extra = sorted(k for k in lists if k != RUNS_KEY)
    if extra:
        warnings.append(f"{', '.join(code(k) for k in extra)} ignored: a comparison of saved runs uses their own "
                        "settings")
    return names, warnings


def compare_link(cfg: RunConfig) -> str:
    """The path and query that open Compare with columns a and b both equal to `cfg` (as shared keys)."""
    query = query_from_values(cfg.model_dump())
    return PAGE_PATH + (f"?{urlencode(query)}" if query else "")


__all__ = ["LETTERS", "MIN_COLS", "MAX_COLS", "comparison_from_query", "query_from_comparison", "runs_from_query",
           "compare_link"]
