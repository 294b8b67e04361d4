"""The run charts an AppTest run drew, whichever element drew them.

A run chart is a `bptt_chart` component (dashboard/live_chart.py): AppTest lists it as a
bidi_component whose JSON data holds the figure and the Plotly config. Where plotly.js could
not be served the same chart is an st.plotly_chart; other charts (the class board, the sweep
map) are always one. Both come back here as (element id, figure dict, config dict).
"""
from __future__ import annotations

import json
from typing import NamedTuple

from streamlit.testing.v1 import AppTest

from dashboard.live_chart import NAME


class Chart(NamedTuple):
    id: str  # the element id: it ends with the chart's key, e.g. "...-chart_heatmap"
    spec: dict  # the Plotly figure: {"data": [...], "layout": {...}}
    config: dict  # the Plotly config: toolbar, image downloads


def charts(at: AppTest) -> list[Chart]:
    found = [Chart(e.proto.id, json.loads(e.proto.spec), json.loads(e.proto.config)) for e in at.get("plotly_chart")]
    for e in at.get("bidi_component"):
        if e.proto.component_name == NAME:
            data = json.loads(e.proto.json)
            found.append(Chart(e.proto.id, json.loads(data["spec"]), json.loads(data["config"])))
    return found
