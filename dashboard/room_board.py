"""The class board without Streamlit: the room's posts as the trainability map and a table.

    frame = rooms.board_frame(store.posts(code))       # one row per student's run
    x, y = default_axes(axis_choices(frame))           # e.g. init_gain × seq_len
    fig = board_figure(frame, x, y, "verdict")         # dashboard.map_figures, as on the Sweeps page

The map is the Sweeps page's (map_figures.trainability_map): each student's run is one point of
the grid, runs with the same x and y share a cell as seeds do, so the class builds the map a
sweep would. The axes are the keys that vary among the posts, the lesson's knobs first.
"""
from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go

from rnn_core.rooms import varying_keys

from .map_figures import VALUES, trainability_map

PREFERRED = ("init_gain", "seq_len", "cell", "init", "activation", "hidden_size", "clip", "lr", "forget_bias",
             "layers", "optimizer", "task")  # the lesson's knobs, in the order a board offers them
TABLE_COLUMNS = ("name", "outcome", "final_val_loss", "baseline", "memory_horizon", "log10_ratio", "run")


def axis_choices(frame: pd.DataFrame) -> list[str]:
    """Keys to put on x and y: those that vary among the posts (the lesson's knobs first), then the
    knobs that do not vary yet (a board with one post still draws its one cell)."""
    varying = varying_keys(frame)
    ordered = [k for k in PREFERRED if k in varying] + sorted(k for k in varying if k not in PREFERRED)
    return ordered + [k for k in PREFERRED if k in frame.columns and k not in ordered]


def default_axes(choices: list[str]) -> tuple[str, str]:
    """The first two choices; init_gain × seq_len for a board with nothing to choose from yet."""
    picked = (choices + [k for k in ("init_gain", "seq_len") if k not in choices])[:2]
    return picked[0], picked[1]


def board_figure(frame: pd.DataFrame, x: str, y: str, value: str = "verdict", big: bool = False) -> go.Figure:
    """The map of the class's runs over x × y, coloured by `value` (map_figures.VALUES)."""
    if value not in VALUES:
        raise ValueError(f"value {value!r} is not one of {', '.join(VALUES)}")
    if x == y:
        raise ValueError("x and y must be two different keys")
    # one line: a title wrapped onto two lines lost its first line above the chart in Chromium
    return trainability_map(frame, x, y, value, big=big, title=f"The class: {VALUES[value].label}")


def board_table(frame: pd.DataFrame, x: str, y: str) -> pd.DataFrame:
    """One row per post for the table under the map, newest first: who, x, y, the numbers."""
    cols = ["name", x, y] + [c for c in TABLE_COLUMNS if c not in ("name", x, y)]
    out = frame.sort_values("seq", ascending=False)[[c for c in cols if c in frame.columns]].copy()
    out["name"] = out["name"].where(out["name"].astype(bool), "(no name)")
    return out.reset_index(drop=True)
