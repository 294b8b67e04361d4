"""The Lessons page's session state: which lesson and step is open, its runs, the predictions."""
from __future__ import annotations

from dataclasses import dataclass, field

import streamlit as st

STATE_KEY = "page:lessons"


@dataclass
class LessonsState:
    lesson: str | None = None  # the open lesson's id; None: the list
    step: int = 0  # the open step, 0-based (the link says step=1 for the first)
    jobs: list = field(default_factory=list)  # the step's live Jobs, one per config, in order
    labels: list = field(default_factory=list)  # their labels ("run", or the compared configs' labels)
    cfgs: list = field(default_factory=list)  # RunConfigs: what each job trains
    trained_for: tuple | None = None  # (lesson, step) the jobs belong to: another step shows no stale runs
    predictions: dict = field(default_factory=dict)  # (lesson, step) -> the choice picked before Train
    start_error: str | None = None  # why the last Train did not start, shown once
    link_warning: str | None = None  # the last link's problem (Markdown made safe), until the next change
    last_query: dict | None = None  # the link this page last wrote: another one is read anew
    form_for: tuple | None = None  # (lesson, step) the sidebar form was filled from
    timer_on: bool = False  # is the browser's poll timer running (declared by the last full run)

    def runs_here(self) -> bool:
        return bool(self.jobs) and self.trained_for == (self.lesson, self.step)


def lessons_state() -> LessonsState:
    if STATE_KEY not in st.session_state:
        st.session_state[STATE_KEY] = LessonsState()
    return st.session_state[STATE_KEY]


__all__ = ["LessonsState", "lessons_state"]
