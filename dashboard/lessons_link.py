"""A lesson in the URL: `/lessons?lesson=ID&step=N` opens lesson ID at step N (from 1), ready to run.

Reading is forgiving, as everywhere in the app: an unknown lesson or a bad step gives one
warning (Markdown made safe with dashboard.safe) and a safe fallback: the lesson list, or the
lesson's first step. Pure: no Streamlit.
"""
from __future__ import annotations

from typing import Mapping

from rnn_core.lessons import Lesson

from .safe import code

LESSON_KEY, STEP_KEY = "lesson", "step"
PAGE_PATH = "/lessons"  # the page's url_path under st.navigation (its file is pages/lessons.py)


def _last(raw: str | list[str] | None) -> str | None:
    if isinstance(raw, (list, tuple)):
        return raw[-1] if raw else None
    return raw


def lesson_from_query(params: Mapping[str, str | list[str]],
                      lessons: Mapping[str, Lesson]) -> tuple[str | None, int, str | None]:
    """(lesson id or None for the list, 0-based step, one Markdown warning or None)."""
    lesson_id, raw_step = _last(params.get(LESSON_KEY)), _last(params.get(STEP_KEY))
    others = [k for k in params if k not in (LESSON_KEY, STEP_KEY)]
    extra = f" ({', '.join(code(k) for k in others)} ignored: a lesson link takes only lesson and step)" if others else ""
    if lesson_id is None:
        if raw_step is not None:
            return None, 0, f"{code(f'step={raw_step}')} was ignored: it needs a lesson{extra}"
        return None, 0, extra.strip(" ()") or None
    if lesson_id not in lessons:
        return None, 0, (f"There is no lesson {code(lesson_id)}: the list below has every lesson "
                         f"(known: {', '.join(code(k) for k in lessons) or 'none'}){extra}")
    n = len(lessons[lesson_id].steps)
    if raw_step is None:
        return lesson_id, 0, extra.strip(" ()") or None
    text = raw_step.strip()
    if not text.isdigit() or not 1 <= int(text) <= n:
        return lesson_id, 0, f"{code(f'step={raw_step}')} was ignored: this lesson has steps 1 to {n}; it opens at step 1{extra}"
    return lesson_id, int(text) - 1, extra.strip(" ()") or None


def query_for(lesson_id: str | None, step: int) -> dict[str, str]:
    """The link's query for a lesson and 0-based step (empty for the list)."""
    return {} if lesson_id is None else {LESSON_KEY: lesson_id, STEP_KEY: str(step + 1)}


def lesson_link(lesson_id: str, step: int = 0) -> str:
    """The path that opens a lesson at a step, ready to run: /lessons?lesson=ID&step=N."""
    return f"{PAGE_PATH}?{LESSON_KEY}={lesson_id}&{STEP_KEY}={step + 1}"
