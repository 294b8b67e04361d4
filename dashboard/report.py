"""One saved run as a single self-contained HTML page: every chart (interactive), the summary and
the config. It opens offline: plotly.js is embedded once, inline, in the first chart; no file,
font or script is fetched from anywhere. Every string that comes from the run (its name, config
values, the status's reason) is HTML-escaped; plotly escapes what it puts into its JSON.

    html = html_report("runs/demo")   # what `python -m rnn_core export` puts into report.html
"""
from __future__ import annotations

import math
from html import escape
from pathlib import Path

import plotly.graph_objects as go

from rnn_core.config import DEFAULTS, RunConfig
from rnn_core.rules import show
from rnn_core.summary import verdict_text
from rnn_core.view import RunView

from . import figures as F
from .run_figures import CHARTS, build_figures

PLOTLY_CONFIG = {"displaylogo": False, "responsive": True}  # as the app's charts (chart_config.plotly_config), sized to the page
PER_DIRECTION = ("heatmap", "gates")  # charts drawn once per layer-direction of a multi-layer run
STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1200px; padding: 0 1em; color: #222; }
h1 { font-size: 1.6em; } h2 { font-size: 1.2em; margin-top: 2em; border-bottom: 1px solid #ddd; }
table { border-collapse: collapse; margin: 0.5em 0; } td, th { border: 1px solid #ddd; padding: 0.25em 0.6em;
  text-align: left; vertical-align: top; } th { background: #f5f5f5; }
.charts { display: grid; grid-template-columns: repeat(auto-fit, minmax(480px, 1fr)); gap: 1em; }
.muted { color: #666; font-size: 0.9em; }
"""


def _number(v: object, digits: int = 4) -> str:
    if isinstance(v, bool) or v is None:
        return "—" if v is None else str(v).lower()
    if isinstance(v, (int, float)) and math.isfinite(v):
        return f"{v:.{digits}g}"
    return str(v)


def chart_list(view: RunView) -> list[tuple[str, go.Figure]]:
    """(div id, figure) of every chart, in the app's order; a multi-layer run gets its heatmap and
    gate charts once per layer-direction."""
    cfg = view.cfg
    D = 2 if cfg.bidirectional else 1
    ld = cfg.layers * D
    base = build_figures(view, 0)
    if ld == 1:
        return [(f"chart-{name}", base[name]) for name in CHARTS if name in base]
    picks = [base] + [build_figures(view, k) for k in range(1, ld)]
    out = []
    for name in CHARTS:
        if name not in base:
            continue
        if name in PER_DIRECTION:
            out += [(f"chart-{name}-{k}", picks[k][name]) for k in range(ld)]
        else:
            out.append((f"chart-{name}", base[name]))
    return out


def _summary(view: RunView) -> str:
    s, h, cfg = view.summary, view.history, view.cfg
    T = cfg.seq_len
    horizon = "—" if h.horizon_last is None else (f"≥ {h.horizon_last}" if h.horizon_last >= T else str(h.horizon_last))
    try:
        verdict = verdict_text(s)
    except (KeyError, TypeError, ValueError):  # a status.json from another version lacks a key
        verdict = "no verdict"
    rows = [
        ("Status", f"{view.state}: {s.get('reason', '')}"),
        ("Steps", f"{view.steps_done} of {cfg.steps}"),
        ("Final validation loss", _number(s.get("final_val_loss"))),
        ("Baseline on the validation batch", f"{_number(s.get('val_baseline'))} ({s.get('baseline_name', '')}; "
                                             f"{_number(s.get('baseline'))} in expectation)"),
        ("Verdict", verdict),
        ("Memory horizon", f"{horizon} timesteps (layer 1, last recorded step; of T = {T})"),
        ("Engine and device", f"{s.get('engine', '')} on {s.get('device', '')}"),
    ]
    if s.get("final_val_accuracy") is not None:
        rows.insert(3, ("Final validation accuracy", _number(s.get("final_val_accuracy"))))
    return _table(("", ""), rows, header=False)


def _table(head: tuple[str, ...], rows: list[tuple], header: bool = True) -> str:
    """Every cell is escaped here (numbers too: one rule, no cell forgotten)."""
    out = ["<table>"]
    if header:
        out.append("<tr>" + "".join(f"<th>{escape(h)}</th>" for h in head) + "</tr>")
    for row in rows:
        cells = [f"<th>{escape(str(row[0]))}</th>"] + [f"<td>{escape(str(c))}</td>" for c in row[1:]]
        out.append("<tr>" + "".join(cells) + "</tr>")
    return "\n".join(out + ["</table>"])


def _config(cfg: RunConfig) -> str:
    values = cfg.model_dump()
    changed = [(k, show(v, 200), show(DEFAULTS[k], 200)) for k, v in values.items() if v != DEFAULTS[k]]
    every = [(k, show(v, 200), RunConfig.model_fields[k].description or "") for k, v in values.items()]
    first = (_table(("key", "value", "default"), changed) if changed
             else "<p class='muted'>Every key has its default value.</p>")
    return (f"<h3>Changed from the defaults</h3>\n{first}\n<h3>Every key</h3>\n"
            + _table(("key", "value", "what it does"), every))


def html_report(run_dir: str | Path) -> str:
    """The page for the saved run in `run_dir`. Raises store.RunStoreError (or ConfigError) for a
    directory that holds no readable run."""
    view = RunView.from_disk(run_dir)
    name = escape(view.name)
    charts = []
    for k, (div_id, fig) in enumerate(chart_list(view)):
        # the first chart carries plotly.js inline; the others use it
        charts.append(fig.to_html(full_html=False, include_plotlyjs=k == 0, div_id=div_id, config=PLOTLY_CONFIG))
    D = 2 if view.cfg.bidirectional else 1
    directions = ", ".join(F.direction_labels(view.cfg.layers * D, D))
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>BPTT Lab run {name}</title>
<style>{STYLE}</style>
</head>
<body>
<h1>BPTT Lab run <code>{name}</code></h1>
<p class="muted">{escape(view.cfg.cell)} on {escape(view.cfg.task)}, T = {view.cfg.seq_len}. Layer-directions: {escape(directions)}.
Charts are interactive (zoom, hover for values); this page needs no network.</p>
<h2>Summary</h2>
{_summary(view)}
<h2>Charts</h2>
<div class="charts">
{chr(10).join(f'<div class="chart">{c}</div>' for c in charts)}
</div>
<h2>Config</h2>
{_config(view.cfg)}
</body>
</html>
"""
