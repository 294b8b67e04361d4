"""The Class page: a teacher opens a room, sets the lesson step the class follows, and watches the
class board fill in; a student sees the room it is in and where the class is.

The room lives in files (rnn_core.rooms), so the board is the same for every session and
survives a server restart; the page only reads them, in a fragment that polls every BOARD_S.
"""
from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

import streamlit as st

from rnn_core import rooms

from . import present
from .map_figures import VALUES
from .room_board import axis_choices, board_figure, board_table, default_axes
from .room_follow import (KEY_PARAM, PARAM, RoomSession, enter, followed, leave, lesson_page_link, lesson_titles,
                          room_session)
from .safe import code, plain

BOARD_S = 2.0  # the board reads the room's posts this often: a run posts once, at its end


def app_link(query: str) -> str:
    """The app's address with `query` (e.g. "room=K7QX3M"), as the browser reached this page."""
    url = st.context.url or "http://127.0.0.1:8501/"
    parts = urlsplit(url)
    path = parts.path.rsplit("/", 1)[0] + "/" if parts.path else "/"  # the app's root, not this page
    return urlunsplit((parts.scheme, parts.netloc, path, query, ""))


def loopback(url: str) -> bool:
    """Does `url` name this computer only (localhost, 127.x, ::1)? Then students elsewhere cannot open it."""
    host = (urlsplit(url).hostname or "").lower()
    return host == "localhost" or host.startswith("127.") or host == "::1"


# --- actions -----------------------------------------------------------------------------------
NOTICE = "room_page_notice"  # session state: the last action's one-line problem, shown once on this page


def _say(text: str) -> None:
    st.session_state[NOTICE] = text


def on_open(rs: RoomSession) -> None:
    try:
        room = rooms.default_store().open_room(st.session_state.get("room_teacher_name", ""))
    except (rooms.RoomError, OSError) as err:
        _say(f"Could not open a room: {err}")
        return
    rs.code, rs.key, rs.version = room.code, room.key, -1


def on_join(rs: RoomSession) -> None:
    problem = enter(rs, st.session_state.get("room_join_code", ""), name=st.session_state.get("room_join_name", ""))
    if problem:
        _say(f"Could not join: {problem}")


def on_rename(rs: RoomSession) -> None:
    try:
        room = rooms.default_store().join(rs.code, rs.member, st.session_state.get("room_my_name", ""))
    except rooms.RoomError as err:
        _say(str(err))
        return
    rs.name = room.members.get(rs.member, {}).get("name", "")


def on_set_step(rs: RoomSession) -> None:
    try:
        rooms.default_store().set_step(rs.code, st.session_state["room_lesson"], int(st.session_state["room_step"]),
                                       rs.key)
    except (rooms.RoomError, KeyError, TypeError, ValueError) as err:
        _say(f"Could not set the step: {err}")


# --- views -------------------------------------------------------------------------------------
def lobby(rs: RoomSession) -> None:
    teach, learn = st.columns(2, gap="large")
    with teach:
        st.subheader("Teach: open a room")
        st.caption("You get a short code and a link for your students. They follow the lesson step you set, "
                   "and each finished run of theirs lands on your class board.")
        st.text_input("Your name (optional)", key="room_teacher_name", max_chars=rooms.NAME_LIMIT)
        st.button("Open a room", key="btn_room_open", type="primary", icon=":material/meeting_room:",
                  on_click=on_open, args=(rs,))
    with learn:
        st.subheader("Learn: join a room")
        st.caption(f"Type the code your teacher shows ({rooms.CODE_LENGTH} characters), or open their link.")
        st.text_input("Room code", key="room_join_code", max_chars=20)
        st.text_input("Your name on the board (optional)", key="room_join_name", max_chars=rooms.NAME_LIMIT)
        st.button("Join", key="btn_room_join", icon=":material/login:", on_click=on_join, args=(rs,))


def step_picker(rs: RoomSession, room: rooms.Room) -> None:
    from rnn_core.lessons import load_lessons

    lessons, problems = load_lessons()
    for p in problems:
        st.warning(f"A lesson file was refused: {plain(p)}")
    if not lessons:
        st.info("No lessons are installed, so there is no step to set yet.")
        return
    ids = list(lessons)
    if st.session_state.get("room_lesson") not in ids:
        st.session_state["room_lesson"] = room.lesson_id if room.lesson_id in ids else ids[0]
    a, b, c = st.columns([3, 1, 1.4], vertical_alignment="bottom")
    lesson_id = a.selectbox("Lesson", ids, key="room_lesson", format_func=lambda i: lessons[i].title)
    n = len(lessons[lesson_id].steps)
    if "room_step" not in st.session_state and lesson_id == room.lesson_id:
        st.session_state["room_step"] = room.step  # a teacher back with the link starts at the class's step
    if not 1 <= int(st.session_state.get("room_step", 1)) <= n:
        st.session_state["room_step"] = 1
    b.number_input(f"Step (1-{n})", min_value=1, max_value=n, step=1, key="room_step")
    c.button("Set for the class", key="btn_room_step", type="primary", icon=":material/campaign:",
             on_click=on_set_step, args=(rs,))
    if room.lesson_id:
        title = lesson_titles().get(room.lesson_id, room.lesson_id)
        st.caption(f"The class follows **{plain(title)}**, step {room.step}.")
        lesson_page_link(room.lesson_id, room.step, "Open this step")
    else:
        st.caption("The class waits for a step: pick one and press **Set for the class**.")


def board(rs: RoomSession) -> None:
    @st.fragment(run_every=BOARD_S)
    def live() -> None:
        store = rooms.default_store()
        try:
            store.touch(rs.code)  # a teacher watching keeps the room alive
            room, posts = store.room(rs.code), store.posts(rs.code)
        except rooms.RoomError as err:
            st.warning(plain(str(err)))
            return
        st.caption(f"{len(room.members)} of {store.size} members · {len(posts)} results")
        if not posts:
            st.info("No results yet: each student's finished run appears here as a cell of the map.")
            return
        frame = rooms.board_frame(posts)
        choices = axis_choices(frame)
        x0, y0 = default_axes(choices)
        a, b, c = st.columns(3)
        x = a.selectbox("x", choices, index=choices.index(x0) if x0 in choices else 0, key="room_board_x")
        ys = [k for k in choices if k != x] or [y0]
        y = b.selectbox("y", ys, index=ys.index(y0) if y0 in ys else 0, key="room_board_y")
        value = c.selectbox("colour", list(VALUES), key="room_board_value", format_func=lambda v: VALUES[v].label)
        if frame[[x, y]].isna().all().any():
            st.info(f"No result has a value for {plain(x)} and {plain(y)} yet: pick other keys.")
            return
        fig = board_figure(frame, x, y, value, big=present.on())  # ?present=1: for the back of the room
        st.plotly_chart(fig, key="room_board_map", width="stretch")
        st.dataframe(board_table(frame, x, y), hide_index=True, width="stretch", key="room_board_table")

    live()


def teacher_view(rs: RoomSession) -> None:
    try:
        room = rooms.default_store().room(rs.code)
    except rooms.RoomError as err:
        st.warning(plain(str(err)))
        st.button("Open a new room", key="btn_room_reopen", on_click=leave, args=(rs,))
        return
    st.markdown(f"### Room code: {code(room.code)}")
    st.caption("Students open this link, or type the code on this page:")
    link = app_link(f"{PARAM}={room.code}")
    st.code(link, language=None)
    if loopback(link):
        st.caption(":material/info: This address works on this computer only: open the app at the address the "
                   "students' computers reach it by (the server's network address, see the README's Serving a "
                   "class) and the link above follows.")
    with st.expander("Your teacher link (do not project it)"):
        st.caption("Reopens this room as its teacher after a reload or on another device. Anyone with it can "
                   "set the class's step and see the board.")
        st.code(app_link(f"{PARAM}={room.code}&{KEY_PARAM}={rs.key}"), language=None)
    step_picker(rs, room)
    st.subheader("Class board")
    board(rs)
    st.button("Leave this room", key="btn_room_leave", on_click=leave, args=(rs,),
              help="The room stays open for its students until it expires.")


def student_view(rs: RoomSession) -> None:
    try:
        room = rooms.default_store().room(rs.code)
    except rooms.RoomError as err:
        st.warning(plain(str(err)))
        st.button("Join another room", key="btn_room_rejoin", on_click=leave, args=(rs,))
        return
    st.markdown(f"### You are in room {code(room.code)}")
    if "room_my_name" not in st.session_state:
        st.session_state["room_my_name"] = rs.name
    st.text_input("Your name on the board", key="room_my_name", max_chars=rooms.NAME_LIMIT, on_change=on_rename,
                  args=(rs,))
    step = followed()  # reruns this page when the teacher moves on
    if step is not None:
        _, lesson_id, n = step
        st.write(f"The class is at **{plain(lesson_titles().get(lesson_id, lesson_id))}**, step {n}.")
        lesson_page_link(lesson_id, n, "Go to this step")
    else:
        st.info("Waiting for the teacher to pick a lesson step.")
    mine = [p for p in rooms.default_store().posts(rs.code) if p.get("member") == rs.member]
    st.caption(f"Your runs on the board: {len(mine)}" + (" (each finished lesson run is posted once)" if not mine
                                                          else ""))
    st.button("Leave this room", key="btn_room_leave", on_click=leave, args=(rs,))


def class_page() -> None:
    rs = room_session()
    st.title("Class room")
    notice = st.session_state.pop(NOTICE, None)
    if notice:
        st.warning(plain(notice), icon=":material/groups:")
    if rs.teacher:
        teacher_view(rs)
    elif rs.student:
        student_view(rs)
    else:
        lobby(rs)
