"""A sweep spec: a base config, a grid of up to three keys and a list of seeds, read from TOML.
Torch-free, like rnn_core.config: the page and the CLI validate a whole sweep before anything runs.

    # bench/sweeps/gain_by_length.toml
    seeds = [0, 1, 2]
    [base]              # any RunConfig keys, shared by every point
    task = "adding"
    cell = "rnn"
    [grid]              # up to three keys, each a list of values; every combination is a point
    init_gain = [0.5, 1.0, 2.0]
    seq_len = [10, 100, 400]

    spec = parse_spec(text)       # SpecError: one line saying what is wrong
    for run in spec.runs(): ...   # every point × seed as a validated RunConfig, in grid order

A point whose config is invalid (a value out of range, a combination the rules refuse) makes
the whole spec invalid, named by its values and the config's own one-line error.
"""
from __future__ import annotations

import itertools
import math
import tomllib
from dataclasses import dataclass, field
from typing import Any, Mapping

from .config import ConfigError, RunConfig, make_config
from .rules import show

MAX_GRID_KEYS = 3  # a map has two axes and a selector: a fourth key could not be drawn
MAX_VALUES = 100  # values per grid key
MAX_RUNS = 10_000  # points × seeds: a sweep this size already takes days on one machine
MAX_SEEDS = 100
TABLES = ("base", "grid", "seeds")


class SpecError(ValueError):
    """A sweep spec that cannot run: one line naming the table, key or point and what is allowed."""


@dataclass(frozen=True)
class PlannedRun:
    """One point of the grid with one seed: its index in grid order and its validated config."""
    point: int  # index of the grid point (0 ... points − 1), seeds of a point share it
    values: dict  # the grid keys' values at this point
    seed: int
    cfg: RunConfig


@dataclass(frozen=True)
class SweepSpec:
    base: dict = field(default_factory=dict)
    grid: dict = field(default_factory=dict)  # key -> list of values, in the file's order
    seeds: tuple[int, ...] = (0,)

    @property
    def keys(self) -> list[str]:
        return list(self.grid)

    @property
    def size(self) -> int:
        return math.prod(len(v) for v in self.grid.values()) * len(self.seeds)

    def points(self) -> list[dict]:
        """Every combination of the grid's values, the last key varying fastest."""
        return [dict(zip(self.grid, combo)) for combo in itertools.product(*self.grid.values())]

    def runs(self) -> list[PlannedRun]:
        """Every point × seed with its config. Raises SpecError naming the first bad point."""
        out, bad = [], []
        for k, values in enumerate(self.points()):
            for seed in self.seeds:
                try:
                    cfg = make_config({**self.base, **values, "seed": seed})
                except ConfigError as err:
                    bad.append((values, str(err)))
                    break  # the other seeds of this point fail the same way
                out.append(PlannedRun(k, values, seed, cfg))
        if bad:
            values, err = bad[0]
            more = f" ({len(bad) - 1} more bad points)" if len(bad) > 1 else ""
            raise SpecError(f"point {point_label(values)} is not a valid config: {err}{more}")
        return out

    def to_toml(self) -> str:
        """The spec as TOML again (saved beside sweep.csv, so a rerun can check it is the same sweep)."""
        lines = [f"seeds = {_toml(list(self.seeds))}", "", "[base]"]
        lines += [f"{k} = {_toml(v)}" for k, v in self.base.items()]
        lines += ["", "[grid]"] + [f"{k} = {_toml(v)}" for k, v in self.grid.items()]
        return "\n".join(lines) + "\n"


def point_label(values: Mapping[str, Any]) -> str:
    return " ".join(f"{k}={show(str(v))}" for k, v in values.items()) or "(the base config)"


def _toml(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    if isinstance(v, list):
        return "[" + ", ".join(_toml(x) for x in v) + "]"
    return '"' + str(v).replace("\\", "\\\\").replace('"', '\\"') + '"'


def _scalar(v: Any) -> bool:
    return isinstance(v, (str, int, float, bool))


def parse_spec(text: str) -> SweepSpec:
    """A SweepSpec from TOML text, or SpecError with one line."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise SpecError(f"the spec is not valid TOML: {err}") from None
    return spec_from_dict(data)


def spec_from_dict(data: Mapping[str, Any]) -> SweepSpec:
    """Check the shape of a spec (tables, grid size, seeds, point count) and every point's config."""
    unknown = [k for k in data if k not in TABLES]
    if unknown:
        raise SpecError(f"unknown table or key {show(repr(unknown[0]))}: a sweep spec has [base], [grid] and seeds = [...]")
    base, grid, seeds = data.get("base", {}), data.get("grid"), data.get("seeds", [0])
    if not isinstance(base, Mapping):
        raise SpecError("base must be a table of config keys: [base] then key = value lines")
    if not isinstance(grid, Mapping) or not grid:
        raise SpecError("the spec needs a [grid] table with 1 to 3 keys, each a list of values, e.g. seq_len = [10, 50]")
    if len(grid) > MAX_GRID_KEYS:
        raise SpecError(f"the grid has {len(grid)} keys ({', '.join(map(show, grid))}); at most {MAX_GRID_KEYS} "
                        "can be drawn: move the others to [base]")
    known = RunConfig.model_fields
    for key, values in grid.items():
        if key == "seed":
            raise SpecError("seed cannot be a grid key: list the seeds in seeds = [...]")
        if key not in known:
            raise SpecError(f"grid key {show(repr(key))} is not a config key (see 'python -m rnn_core keys')")
        if key in base:
            raise SpecError(f"{show(key)} is both in [base] and in [grid]: keep it in one")
        if not isinstance(values, list) or not values:
            raise SpecError(f"grid key {show(key)} must be a non-empty list of values, e.g. {show(key)} = [1, 2]")
        if len(values) > MAX_VALUES:
            raise SpecError(f"grid key {show(key)} has {len(values)} values; at most {MAX_VALUES}")
        if not all(_scalar(v) for v in values):
            raise SpecError(f"grid key {show(key)} must list plain values (numbers, text, true/false), not tables or lists")
        if len({repr(v) for v in values}) < len(values):
            raise SpecError(f"grid key {show(key)} lists a value twice")
    for key, v in base.items():
        if key == "seed":
            raise SpecError("seed cannot be in [base]: list the seeds in seeds = [...]")
        if not _scalar(v):
            raise SpecError(f"[base] {show(key)} must be a plain value (a number, text or true/false)")
    if (not isinstance(seeds, list) or not seeds or len(seeds) > MAX_SEEDS or
            not all(isinstance(s, int) and not isinstance(s, bool) and 0 <= s < 2**31 for s in seeds)):
        raise SpecError(f"seeds must be a list of 1 to {MAX_SEEDS} whole numbers from 0 to 2^31-1, e.g. seeds = [0, 1, 2]")
    if len(set(seeds)) < len(seeds):
        raise SpecError("seeds lists a seed twice")
    spec = SweepSpec(dict(base), {k: list(v) for k, v in grid.items()}, tuple(seeds))
    if spec.size > MAX_RUNS:
        raise SpecError(f"the sweep has {spec.size:,} runs (points × seeds); at most {MAX_RUNS:,}")
    spec.runs()  # every point's config, before anything runs
    return spec
