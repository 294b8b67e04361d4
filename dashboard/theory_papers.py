"""The Theory page's "Reproduce" section: the paper checks' committed results, and each preset to
train live (through the server's training service) or to open in Explore.

The results come from docs/paper_checks.json, written by bench/papers.py; the presets and their
criteria from rnn_core.papers. A preset trained here is judged by the same criterion, from the run
it saved, once it has finished.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import streamlit as st

from rnn_core import papers, store

from . import jobs
from .safe import code, plain

RESULTS = Path(__file__).resolve().parents[1] / "docs" / "paper_checks.json"
POLL_S = 2.0  # the section redraws this often while a preset trains here


@dataclass
class ReproduceState:
    """This session's live presets: check id -> {run name in papers.RUNS: its Job}."""
    jobs: dict = field(default_factory=dict)
    error: str | None = None  # why the last Train live did not start, shown once
    # a Train or Stop click inside the polling fragment: the next fragment run reruns the whole
    # page, which switches the poll timer on or off (a callback itself cannot rerun the app)
    rerun_page: bool = False


def reproduce_state() -> ReproduceState:
    if "page:theory:reproduce" not in st.session_state:
        st.session_state["page:theory:reproduce"] = ReproduceState()
    return st.session_state["page:theory:reproduce"]


def load_results(path: Path = RESULTS) -> dict | None:
    """The committed results, or None when the file is missing or unreadable."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) and isinstance(data.get("checks"), list) else None


def results_table(data: dict) -> pd.DataFrame:
    """One row per check: published, ours, agree?"""
    rows = []
    for c in data["checks"]:
        rows.append({"paper": c.get("paper", ""), "check": c.get("title", ""), "published": c.get("claim", ""),
                     "ours": c.get("ours", ""), "agree?": papers.agreement_text(c.get("agree"))})
    return pd.DataFrame(rows)


def on_train(rs: ReproduceState, check_id: str) -> None:
    rs.error = None
    started = {}
    try:
        for name in papers.CHECK[check_id].runs:
            started[name] = jobs.start(papers.run_config(name), page="paper")
    except (jobs.ServiceError, store.RunStoreError, OSError) as err:
        for job in started.values():
            job.stop()
        rs.error = f"Could not start: {err}"
        return
    rs.jobs[check_id] = started
    rs.rerun_page = True


def on_stop(rs: ReproduceState, check_id: str) -> None:
    started = rs.jobs.get(check_id, {}).values()
    for job in started:
        job.stop()
    for job in started:
        job.wait(timeout=1.0)
    rs.rerun_page = True


def live_outcome(started: dict) -> tuple[str, papers.Outcome | None]:
    """(progress in words, the check's outcome once every run has ended) of a preset trained here."""
    parts, numbers = [], {}
    for name, job in started.items():
        job.poll()
        parts.append(f"{job.name}: {job.state}, step {job.steps_done}/{job.cfg.steps}")
        if job.done and job.out_dir is not None:
            try:
                numbers[name] = papers.load_numbers(job.out_dir)
            except (store.RunStoreError, OSError, ValueError, KeyError):
                pass
    if len(numbers) < len(started):
        return "; ".join(parts), None
    check = next(c for c in papers.CHECKS if set(c.runs) == set(started))
    return "; ".join(parts), papers.evaluate(check, numbers)


def _run_line(run: dict | None) -> str:
    """One saved run of the results file in words: status, steps, final loss, wall time, when."""
    if not run:
        return ""
    loss = run.get("final_val_loss")
    wall = run.get("wall_s")
    return (f"{run.get('status', '?')}, {run.get('steps_done', '?')} steps, final val loss "
            + (f"{loss:.4g}" if isinstance(loss, (int, float)) else "—")
            + (f", {wall:.0f} s of wall time" if isinstance(wall, (int, float)) else "")
            + (f", finished {run['finished']}" if run.get("finished") else ""))


def _check_block(c: papers.Check, row: dict | None, rs: ReproduceState, saved_runs: dict) -> None:
    with st.expander(f"{c.paper}: {c.title} — " + papers.agreement_text(row.get("agree") if row else None)):
        st.markdown(f"**Published.** {plain(c.claim)}")
        st.markdown(f"**Criterion.** {plain(c.criterion)}")
        st.markdown(f"**Settings.** {plain(c.settings)}")
        if row:
            st.markdown(f"**Ours** (committed results): {plain(row.get('ours', ''))}"
                        + (f" · {plain(row['detail'])}" if row.get("detail") else ""))
        for name in c.runs:
            st.code(papers.command_line(name), language="bash")
            if saved_runs.get(name):
                st.caption(plain(f"{name}: {_run_line(saved_runs[name])}"))
            if (store.run_dir(name) / "config.json").is_file():
                st.page_link("pages/explore.py", label=f"Open {name} in Explore", icon=":material/insights:",
                             query_params={"run": name})
            else:
                st.caption(f"{name} is not in this server's run store ({plain(str(store.runs_root()))}): "
                           "run bench/papers.py, or train it here.")
        started = rs.jobs.get(c.id)
        running = bool(started) and any(not j.done for j in started.values())
        a, b = st.columns(2)
        # Callbacks keep their click when a page reruns through the entry file (dashboard.entry).
        a.button("Train live", key=f"btn_paper_train_{c.id}", disabled=running, on_click=on_train, args=(rs, c.id),
                 help=f"Train this preset's run(s) here ({papers.BUDGET:,} steps each), through the training service.")
        b.button("Stop", key=f"btn_paper_stop_{c.id}", disabled=not running, on_click=on_stop, args=(rs, c.id))
        if started:
            progress, outcome = live_outcome(started)
            st.caption(plain(progress))
            if outcome is not None:
                st.markdown(f"**This session's run:** {plain(outcome.ours)} — **{papers.agreement_text(outcome.agree)}**")
            for job in started.values():
                if job.done:
                    st.page_link("pages/explore.py", label=f"Open {job.name} in Explore", icon=":material/insights:",
                                 query_params={"run": job.name})


def reproduce_section() -> None:
    rs = reproduce_state()
    st.markdown("Published results, ours on this machine, and whether they agree. Each check is one or more "
                "ordinary runs with settings fixed before any run and not tuned to the outcome "
                f"({papers.BUDGET:,} steps each); its criterion is a function of the numbers the run saved "
                "(rnn_core/papers.py).")
    if rs.error:
        st.error(plain(rs.error))
        rs.error = None
    data = load_results()
    if data is None:
        st.info("No results file yet: `nice -n 10 python bench/papers.py` trains the presets and writes "
                "docs/paper_checks.json.")
        rows, saved_runs = {}, {}
    else:
        st.dataframe(results_table(data), hide_index=True, width="stretch")
        done = sorted(str(r.get("finished")) for r in (data.get("runs") or {}).values()
                      if isinstance(r, dict) and r.get("finished"))
        when = f"runs finished {done[0]} to {done[-1]}" if done else f"written {data.get('generated', '?')}"
        st.caption(f"Made by {code(data.get('command', ''), 120)}, {plain(when)} "
                   f"({plain(str(data.get('machine', '')))})" + (" — a quick smoke run, not evidence" if data.get("quick") else ""))
        rows = {c.get("id"): c for c in data["checks"]}
        saved_runs = data.get("runs") if isinstance(data.get("runs"), dict) else {}
    live = any(not j.done for started in rs.jobs.values() for j in started.values())

    @st.fragment(run_every=POLL_S if live else None)
    def checks() -> None:
        if rs.rerun_page:
            rs.rerun_page = False
            st.rerun()
        for c in papers.CHECKS:
            _check_block(c, rows.get(c.id), rs, saved_runs)
        still = any(not j.done for started in rs.jobs.values() for j in started.values())
        if live and not still:
            st.rerun()  # the whole page, to switch the timer off

    checks()
