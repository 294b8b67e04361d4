"""Following a class room from any page: `?room=CODE` joins it, the sidebar says where the class is.

The entry file calls `read_link()` before the page runs and `keep_in_link()` after it (as
dashboard.present does for `?present=1`): the code is taken out of the query parameters while
the page runs, so no page's own link code sees a key it does not know, and put back afterwards,
so a reload still follows the room. The session keeps its membership in a RoomSession: a random
member id (no accounts), the display name, and for the teacher the room's key.

`room_sidebar()` (entry file, every full run) names the room and links the class's step. A page
that follows the teacher (Lessons, the Class page) calls `followed()` for (code, lesson id, step):
it also starts `watch()`, a fragment that polls the room every FOLLOW_S and reruns the page when
the teacher moves on. When that page sees a finished run it calls `post_finished(view)`.

The poll lives in the following page, not in the entry file: a fragment drawn by the entry file
of an `st.navigation` app vanished after the next full run (seen under AppTest, Streamlit 1.67).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Mapping

import streamlit as st

from rnn_core import rooms

from .safe import plain

PARAM = "room"  # ?room=CODE on any page joins the room
KEY_PARAM = "key"  # ?room=CODE&key=KEY (the teacher's own link) reopens the room as its teacher
STATE_KEY = "room_session"
FOLLOW_S = 3.0  # the sidebar reads the room's step this often: 60 students read one small file every 3 s
LESSONS_PAGE = "pages/lessons.py"
POSTABLE = ("finished", "diverged")  # a run that ended by itself: a stopped run's numbers are half a run


@dataclass
class RoomSession:
    code: str | None = None  # the room this session is in
    member: str = field(default_factory=rooms.new_member_id)  # this browser session, no account
    name: str = ""  # shown on the teacher's board
    key: str | None = None  # the teacher's key: this session opened the room (or came back with its link)
    error: str | None = None  # why the link, the room or a post did not work: one line in the sidebar, once
    version: int = -1  # the room's step version this session last saw
    applied: int = -1  # the step version a following page last moved this session to (step_to_show)
    posted: set = field(default_factory=set)  # run names this session posted (the room refuses repeats too)

    @property
    def teacher(self) -> bool:
        return self.code is not None and self.key is not None

    @property
    def student(self) -> bool:
        return self.code is not None and self.key is None


def room_session() -> RoomSession:
    if STATE_KEY not in st.session_state:
        st.session_state[STATE_KEY] = RoomSession()
    return st.session_state[STATE_KEY]


def enter(rs: RoomSession, raw_code: Any, key: Any = None, name: str = "") -> str | None:
    """Join room `raw_code` as a student, or as its teacher when `key` opens it. Returns None, or
    one line saying why not (the session then keeps the room it was in, if any)."""
    store = rooms.default_store()
    try:
        code = rooms.check_code(raw_code)
        if key is not None and store.is_teacher(code, key):
            store.room(code)
            rs.code, rs.key = code, key
        else:
            room = store.join(code, rs.member, name or rs.name)
            rs.code, rs.key = code, None
            rs.name = room.members.get(rs.member, {}).get("name", rs.name)
    except rooms.RoomError as err:
        return str(err)
    rs.version, rs.applied = -1, -1
    return None


def leave(rs: RoomSession) -> None:
    rs.code, rs.key, rs.version, rs.applied = None, None, -1, -1


def read_link() -> None:
    """Before the page: take `room` (and the teacher's `key`) out of the link and join that room,
    unless this session is in it already."""
    rs = room_session()
    if PARAM not in st.query_params:
        return
    raw, key = st.query_params.get(PARAM, ""), st.query_params.get(KEY_PARAM)
    del st.query_params[PARAM]
    if key is not None:
        del st.query_params[KEY_PARAM]
    same = rs.code is not None and str(raw).strip().upper() == rs.code
    if not same or (key is not None and not rs.teacher):
        rs.error = enter(rs, raw, key)


def keep_in_link() -> None:
    """After the page: a student's `room=CODE` back in the address bar, so a reload still follows.
    The teacher's key never stays there (a projected address bar would show it)."""
    rs = room_session()
    if rs.student and st.query_params.get(PARAM) != rs.code:
        st.query_params[PARAM] = rs.code


def followed() -> tuple[str, str, int] | None:
    """(code, lesson id, step) of the room this session follows, once its teacher has set a step;
    None otherwise (no room, the teacher's own session, or the room expired: rs.error says so).
    Starts `watch()` where it is called: the page reruns when the teacher moves on."""
    rs = room_session()
    if not rs.student:
        return None
    try:
        room = rooms.default_store().room(rs.code)
    except rooms.RoomError as err:
        rs.error = str(err)
        return None
    rs.version = room.version
    watch()
    return (room.code, room.lesson_id, room.step) if room.lesson_id else None


def step_to_show(lessons: Mapping[str, Any]) -> tuple[str, int] | None:
    """(lesson id, 0-based step) a following page should move to: the teacher's step, the first time
    this session follows the room and each time the teacher sets a step after that; None in between,
    so a student may look at another step until the teacher moves on. `lessons`: the page's lessons
    by id (a lesson this server does not have, or a step past its end, is not followed)."""
    rs = room_session()
    at = followed()
    if at is None or rs.applied == rs.version:
        return None
    rs.applied = rs.version
    _, lesson_id, step = at
    lesson = lessons.get(lesson_id)
    if lesson is None or not 1 <= step <= len(lesson.steps):
        rs.error = f"the teacher's step ({lesson_id}, step {step}) is not a lesson step of this server"
        return None
    return lesson_id, step - 1


def watch() -> None:
    """A fragment that draws nothing and reads the room every FOLLOW_S: when the teacher has set
    another step (or lesson) since this session last looked, the whole page reruns to show it."""
    rs = room_session()

    @st.fragment(run_every=FOLLOW_S)
    def poll() -> None:
        try:
            version = rooms.default_store().room(rs.code).version
        except rooms.RoomError as err:
            rs.error = str(err)
            return
        if version != rs.version:
            rs.version = version
            st.rerun(scope="app")

    if rs.student:
        poll()


def result_from_view(view: Any) -> dict:
    """A run's result as a room keeps it: its config, outcome, verdict, memory horizon, losses."""
    from rnn_core.lesson_answers import run_numbers
    from rnn_core.summary import verdict_text

    n, s = run_numbers(view), dict(view.summary)
    base = s.get("val_baseline") if s.get("val_baseline") is not None else s.get("baseline")
    return {"run": view.name, "config": view.cfg.model_dump(), "status": n["state"], "outcome": n["outcome"],
            "verdict": verdict_text(s) if "beat_baseline" in s else "", "beat_baseline": n["beat_baseline"],
            "final_val_loss": n["final_val_loss"], "baseline": base if isinstance(base, float) and math.isfinite(base)
            else None, "memory_horizon": n["memory_horizon"], "log10_ratio": n["log10_ratio"],
            "steps_done": n["steps_done"]}


def post_finished(view: Any) -> bool:
    """Post a run that has ended by itself to this session's room, once per run name (a page may
    call this on every rerun that sees the run). True when this call posted it."""
    rs = room_session()
    if not rs.student or view is None or view.state not in POSTABLE or view.name in rs.posted:
        return False
    try:
        posted = rooms.default_store().post(rs.code, rs.member, result_from_view(view))
    except rooms.RoomError as err:
        rs.error = str(err)
        return False
    rs.posted.add(view.name)
    return posted


def lesson_link(lesson_id: str, step: int) -> dict:
    """The Lessons page's query for a lesson step (its own link format: ?lesson=ID&step=N)."""
    return {"lesson": lesson_id, "step": str(step)}


@st.cache_data(ttl=60, show_spinner=False)
def lesson_titles() -> dict[str, str]:
    """Lesson id -> title, read from the lesson files at most once a minute (every follower asks)."""
    from rnn_core.lessons import load_lessons

    return {lid: lesson.title for lid, lesson in load_lessons()[0].items()}


def _lesson_title(lesson_id: str) -> str:
    return lesson_titles().get(lesson_id, lesson_id)


def room_sidebar() -> None:
    """The room this session is in and the class's step, in the sidebar of every page (each full
    run reads it again; the following pages also poll it, see watch)."""
    rs = room_session()
    if rs.error:
        st.sidebar.warning(plain(rs.error), icon=":material/groups:")
        rs.error = None
    if not rs.student:
        return
    with st.sidebar:
        try:
            room = rooms.default_store().room(rs.code)
        except rooms.RoomError as err:
            st.warning(plain(str(err)), icon=":material/groups:")
            return
        st.caption(f"Class room **{room.code}**" + (f" · you are {plain(rs.name)}" if rs.name else ""))
        if not room.lesson_id:
            st.caption("Waiting for the teacher to pick a lesson.")
            return
        st.caption(f"The class is at step {room.step} of:")
        lesson_page_link(room.lesson_id, room.step, _lesson_title(room.lesson_id))  # a narrow sidebar: the title alone


def lesson_page_link(lesson_id: str, step: int, label: str) -> None:
    """A link to the Lessons page at this step (call after st.navigation: it needs the pages registered)."""
    st.page_link(LESSONS_PAGE, label=plain(label), icon=":material/school:", query_params=lesson_link(lesson_id, step))


__all__ = ["RoomSession", "room_session", "enter", "leave", "read_link", "keep_in_link", "followed",
           "result_from_view", "post_finished", "lesson_link", "lesson_page_link", "lesson_titles", "room_sidebar",
           "step_to_show", "watch"]
