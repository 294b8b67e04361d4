"""The Sweeps page's form as data: Explore's settings and the chosen grid become a SweepSpec.
Pure (no Streamlit), so the rules are tested without a page.

    spec = spec_from_form(explore_values, [("init_gain", "0.5, 1, 2"), ("seq_len", "10, 100")], "0, 1")
"""
from __future__ import annotations

from typing import Any, Mapping

from rnn_core.config import DEFAULTS
from rnn_core.sweep_spec import MAX_GRID_KEYS, SpecError, SweepSpec, spec_from_dict

from .schema import effective_values

NONE = "—"  # the select box's "no key" choice
GRID_KEYS = tuple(k for k in DEFAULTS if k != "seed")  # seed has its own field


def parse_value(token: str) -> Any:
    """One value as typed: a whole number, a decimal, true/false, else the text itself."""
    t = token.strip()
    for kind in (int, float):
        try:
            return kind(t)
        except ValueError:
            pass
    if t.lower() in ("true", "false"):
        return t.lower() == "true"
    return t


def parse_values(text: str) -> list:
    """'0.5, 1, 2' -> [0.5, 1, 2]; empty entries are dropped."""
    return [parse_value(tok) for tok in str(text).split(",") if tok.strip()]


def parse_seeds(text: str) -> list:
    """'0, 1, 2' or a range '0-4' (0, 1, 2, 3, 4)."""
    t = str(text).strip()
    lo, sep, hi = t.partition("-")
    if sep and lo.strip().isdigit() and hi.strip().isdigit():
        if int(hi) - int(lo) > 1000:
            raise SpecError(f"seeds {t}: at most 100 seeds")
        return list(range(int(lo), int(hi) + 1))
    return parse_values(t)


def base_from(values: Mapping[str, Any]) -> dict:
    """The non-default settings in effect (a key with no effect is at its default), without the seed."""
    eff = effective_values(values)
    return {k: v for k, v in eff.items() if k in DEFAULTS and k != "seed" and v != DEFAULTS[k]}


def spec_from_form(values: Mapping[str, Any], rows: list[tuple[str, str]], seeds: str) -> SweepSpec:
    """The sweep of Explore's settings `values` over the grid `rows` ((key, 'v1, v2'), NONE rows
    skipped). SpecError with one line when it is not a valid sweep."""
    grid: dict = {}
    for key, text in rows:
        if key == NONE or not key:
            continue
        if key in grid:
            raise SpecError(f"{key} is chosen twice: pick each grid key once")
        grid[key] = parse_values(text)
        if not grid[key]:
            raise SpecError(f"give the values of {key}, separated by commas, e.g. 10, 50, 100")
    if not grid:
        raise SpecError(f"choose 1 to {MAX_GRID_KEYS} grid keys and their values")
    base = {k: v for k, v in base_from(values).items() if k not in grid}
    return spec_from_dict({"base": base, "grid": grid, "seeds": parse_seeds(seeds)})
