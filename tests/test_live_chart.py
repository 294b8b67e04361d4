"""Run charts drawn in place (dashboard/live_chart.py): the figure sent, plotly.js served, the fallback.

The drawing itself (one element per chart across polls, the latest figure always drawn) is
checked in a real browser by tests/test_browser.py.
"""
from __future__ import annotations

import base64
import json
from pathlib import Path

import numpy as np
import plotly
import plotly.graph_objects as go
from streamlit.testing.v1 import AppTest

from charts import charts
from dashboard import live_chart
from dashboard.live_chart import NAME, THEME, figure_spec

ROOT = Path(__file__).resolve().parents[1]
PLOTLY_JS = Path(plotly.__file__).parent / "package_data" / "plotly.min.js"


def _decoded(value) -> np.ndarray:
    """A trace array as plotly.js reads it: a list, or a base64 typed array {dtype, bdata, shape}."""
    if isinstance(value, dict):
        flat = np.frombuffer(base64.b64decode(value["bdata"]), dtype=np.dtype(value["dtype"]))
        shape = value.get("shape")
        return flat.reshape([int(n) for n in str(shape).split(",")]) if shape else flat
    return np.asarray(value, dtype=float)


def test_the_figure_sent_has_our_theme_for_template_and_the_exact_numbers():
    z = np.random.default_rng(0).normal(size=(7, 5))
    fig = go.Figure([go.Heatmap(z=z), go.Scatter(x=np.arange(5), y=z[0], name="row 0")],
                    layout=dict(title=dict(text="t"), height=330))
    spec = json.loads(figure_spec(fig))
    assert spec["layout"]["template"] == {"layout": THEME}  # plotly.py's default template is not sent
    assert spec["layout"]["height"] == 330 and spec["layout"]["title"]["text"] == "t"
    np.testing.assert_array_equal(_decoded(spec["data"][0]["z"]), z)
    np.testing.assert_array_equal(_decoded(spec["data"][1]["y"]), z[0])
    assert spec["data"][1]["name"] == "row 0"


def test_plotly_js_is_copied_whole_and_a_stale_copy_is_replaced(tmp_path, monkeypatch):
    monkeypatch.setattr(live_chart, "STATIC", tmp_path / "static")
    served = live_chart.plotly_js_served.__wrapped__  # the uncached function
    assert served()
    copy = tmp_path / "static" / "plotly.min.js"
    assert copy.read_bytes() == PLOTLY_JS.read_bytes()
    assert [p.name for p in copy.parent.iterdir()] == ["plotly.min.js"]  # no temporary file left behind
    copy.write_text("/* an older plotly.js */")
    assert served() and copy.read_bytes() == PLOTLY_JS.read_bytes()


def test_where_plotly_js_cannot_be_served_the_answer_is_no(tmp_path, monkeypatch):
    blocker = tmp_path / "a file"
    blocker.write_text("")
    monkeypatch.setattr(live_chart, "STATIC", blocker / "static")  # a folder under a file cannot be made
    assert live_chart.plotly_js_served.__wrapped__() is False


def test_explore_draws_its_charts_as_live_charts_and_falls_back_to_plotly_chart(monkeypatch):
    at = AppTest.from_file(str(ROOT / "streamlit_app.py"), default_timeout=60).run()
    assert not at.exception
    live = [e for e in at.get("bidi_component") if e.proto.component_name == NAME]
    assert len(live) >= 5 and not at.get("plotly_chart")
    data = json.loads(live[0].proto.json)
    assert data["src"] == "./app/static/plotly.min.js" and data["height"] > 0
    keys = sorted(c.id.rsplit("-", 1)[-1] for c in charts(at))
    monkeypatch.setattr(live_chart, "plotly_js_served", lambda: False)
    at = AppTest.from_file(str(ROOT / "streamlit_app.py"), default_timeout=60).run()
    assert not at.exception and len(at.get("plotly_chart")) == len(keys)
    assert sorted(c.id.rsplit("-", 1)[-1] for c in charts(at)) == keys  # the same charts, by key


def test_a_frozen_figure_is_serialised_once_and_forgotten_when_gone(monkeypatch):
    import gc

    import plotly.graph_objects as go

    from dashboard import live_chart as LC

    fig = LC.frozen(go.Figure(go.Scatter(y=[1, 2, 3]), layout={"title": {"text": "frame"}}))
    same = go.Figure(fig)  # an equal figure, not frozen
    calls = []
    real = LC._spec
    monkeypatch.setattr(LC, "_spec", lambda f: calls.append(f) or real(f))
    first = LC.figure_spec(fig)
    assert LC.figure_spec(fig) == first and json.loads(first) == json.loads(real(same))
    assert len(calls) == 1  # the frozen one was serialised once
    LC.figure_spec(same), LC.figure_spec(same)
    assert len(calls) == 3  # an ordinary figure every time: it may have changed
    key = id(fig)
    calls.clear()  # it held the figure
    del fig
    gc.collect()
    assert key not in LC._FROZEN
