"""Class rooms (rnn_core.rooms): join, follow, post, the board, expiry, restart, bounds, concurrent
posts from threads and processes, and the Class page under AppTest."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from rnn_core import make_config, rooms
from rnn_core.rooms import RoomError, RoomStore, board_frame, new_member_id

ROOT = Path(__file__).resolve().parents[1]
APP = str(ROOT / "streamlit_app.py")


class Clock:
    def __init__(self, t: float = 1_000_000.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def result(run: str, outcome: str = "solved", **cfg) -> dict:
    config = {"seed": 0, "init_gain": 1.0, "seq_len": 20, **cfg}
    return {"run": run, "config": config, "status": "finished", "outcome": outcome,
            "beat_baseline": outcome == "solved", "final_val_loss": 0.1, "baseline": 0.2, "memory_horizon": 7,
            "log10_ratio": -2.5, "steps_done": 10}


@pytest.fixture
def store(tmp_path) -> RoomStore:
    return RoomStore(tmp_path / "runs", clock=Clock(), size=60, expire_s=4 * 3600, posts_per_member=20)


# --- join, follow, post ----------------------------------------------------------------------------
def test_open_join_follow_post(store):
    room = store.open_room("Ms Rivera")
    assert len(room.code) == rooms.CODE_LENGTH and set(room.code) <= set(rooms.ALPHABET) and room.key
    assert store.current(room.code) == (None, 0)  # nothing to follow before the teacher picks
    ada, bob = new_member_id(), new_member_id()
    store.join(room.code, ada, "Ada")
    store.join(room.code.lower() + " ", bob)  # students type codes in lower case, with a space
    store.set_step(room.code, "vanishing", 2, room.key)
    assert store.current(room.code) == ("vanishing", 2)
    assert store.room(room.code).version == 1
    assert store.post(room.code, ada, result("run-a", init_gain=0.5)) is True
    assert store.post(room.code, ada, result("run-a", init_gain=0.5)) is False  # idempotent per run name
    assert store.post(room.code, bob, result("run-a")) is False  # ... whoever posts it again
    assert store.post(room.code, bob, result("run-b", "diverged")) is True
    got = store.posts(room.code)
    assert [(p["run"], p["name"], p["outcome"]) for p in got] == [("run-a", "Ada", "solved"), ("run-b", "", "diverged")]
    assert got[0]["config"]["init_gain"] == 0.5 and got[0]["member"] == ada


def test_only_the_key_sets_the_step(store):
    room = store.open_room()
    other = store.open_room()
    with pytest.raises(RoomError, match="only room .* teacher"):
        store.set_step(room.code, "vanishing", 1, other.key)
    assert store.is_teacher(room.code, room.key) and not store.is_teacher(room.code, other.key)
    assert not store.is_teacher(room.code, None)
    stored = json.loads((store.folder / room.code / "room.json").read_text())
    assert room.key not in json.dumps(stored)  # only its hash is on disk
    for lesson, step in [("../x", 1), ("", 1), ("ok", 0), ("ok", True), ("ok", 1.5), ("ok", 10**9)]:
        with pytest.raises(RoomError) as err:
            store.set_step(room.code, lesson, step, room.key)
        assert "\n" not in str(err.value)
    assert store.current(room.code) == (None, 0)


def test_posts_are_bounded_per_member_and_cleaned(store):
    store.posts_per_member = 3
    room = store.open_room()
    m = new_member_id()
    store.join(room.code, m)
    for i in range(5):
        store.post(room.code, m, {**result(f"run-{i}"), "final_val_loss": float("nan"), "memory_horizon": "x",
                                  "config": {"seed": i, "init_gain": float("inf"), "Bad Key": 1, "note": "x" * 5000}})
    got = store.posts(room.code)
    assert [p["run"] for p in got] == ["run-2", "run-3", "run-4"]  # the latest 3
    p = got[-1]
    assert p["final_val_loss"] is None and p["memory_horizon"] is None and p["config"]["init_gain"] is None
    assert "Bad Key" not in p["config"] and len(p["config"]["note"]) == rooms.TEXT_LIMIT
    with pytest.raises(RoomError, match="run name"):
        store.post(room.code, m, {**result("x"), "run": "../../etc"})
    with pytest.raises(RoomError, match="not a member"):
        store.post(room.code, new_member_id(), result("run-z"))


# --- the board ------------------------------------------------------------------------------------
GRID = [  # (init_gain, seq_len, outcome): two students at some cells, as two seeds of a sweep
    (0.5, 10, "solved"), (0.5, 10, "stuck at baseline"), (0.5, 50, "stuck at baseline"),
    (1.0, 10, "solved"), (1.0, 50, "solved"), (1.0, 50, "diverged"), (2.0, 50, "diverged"),
]


def test_board_frame_and_map_from_posts(store):
    from dashboard.room_board import axis_choices, board_figure, board_table, default_axes

    room = store.open_room()
    for i, (gain, T, outcome) in enumerate(GRID):
        m = new_member_id()
        store.join(room.code, m, f"student {i}")
        store.post(room.code, m, result(f"run-{i}", outcome, init_gain=gain, seq_len=T, seed=i))
    frame = board_frame(store.posts(room.code))
    assert len(frame) == len(GRID) and list(frame["run"]) == [f"run-{i}" for i in range(len(GRID))]
    for col in ("init_gain", "seq_len", "seed", "verdict", "final_val_loss", "baseline", "memory_horizon",
                "log10_ratio", "run"):
        assert col in frame.columns
    assert axis_choices(frame)[:2] == ["init_gain", "seq_len"]  # the keys that vary, lesson knobs first
    assert "seed" in axis_choices(frame) and "cell" not in axis_choices(frame)
    x, y = default_axes(axis_choices(frame))
    fig = board_figure(frame, x, y, "verdict")
    heat = fig.data[0]
    assert list(heat.x) == ["0.5", "1", "2"] and list(heat.y) == ["10", "50"]
    # oracle: the share of solved runs per cell, counted from the posted list by hand
    for (gain, T) in {(g, t) for g, t, _ in GRID}:
        cell = [o for g, t, o in GRID if (g, t) == (gain, T)]
        want = sum(o == "solved" for o in cell) / len(cell)
        assert heat.z[list(heat.y).index(str(T))][list(heat.x).index(f"{gain:g}")] == pytest.approx(want)
    assert np.isnan(heat.z[0][2])  # nobody ran init_gain=2 at T=10: blank
    table = board_table(frame, x, y)
    assert list(table.columns[:3]) == ["name", "init_gain", "seq_len"] and table["run"].iloc[0] == "run-6"
    with pytest.raises(ValueError):
        board_figure(frame, "seq_len", "seq_len")


def test_board_of_one_post_draws_its_cell(store):
    from dashboard.room_board import axis_choices, board_figure, default_axes

    room = store.open_room()
    m = new_member_id()
    store.join(room.code, m)
    store.post(room.code, m, result("only"))
    frame = board_frame(store.posts(room.code))
    x, y = default_axes(axis_choices(frame))
    assert (x, y) == ("init_gain", "seq_len")
    assert board_figure(frame, x, y).data[0].z[0][0] == 1.0


# --- expiry and restart -------------------------------------------------------------------------------
def test_expiry_after_inactivity_and_lazy_cleanup(store):
    clock = store.clock
    room = store.open_room()
    m = new_member_id()
    store.join(room.code, m)
    clock.t += 3 * 3600
    store.post(room.code, m, result("r1"))  # activity: the 4 hours count from here
    clock.t += 3.9 * 3600
    assert store.current(room.code) == (None, 0)
    clock.t += 0.2 * 3600
    with pytest.raises(RoomError, match=f"room {room.code} has expired") as err:
        store.current(room.code)
    assert err.value.expired
    for call in (lambda: store.join(room.code, m), lambda: store.post(room.code, m, result("r2")),
                 lambda: store.posts(room.code), lambda: store.set_step(room.code, "x", 1, room.key)):
        with pytest.raises(RoomError, match="has expired"):
            call()
    assert (store.folder / room.code).is_dir()  # read as expired, removed lazily: by the next open_room
    fresh = store.open_room()
    assert not (store.folder / room.code).exists() and (store.folder / fresh.code).is_dir()
    with pytest.raises(RoomError, match=f"there is no room {room.code}"):
        store.current(room.code)


def test_a_watching_teacher_keeps_the_room_alive(store):
    room = store.open_room()
    for _ in range(6):
        store.clock.t += 3600
        store.touch(room.code)
    assert store.current(room.code) == (None, 0)


def test_rooms_survive_a_restart(store, tmp_path):
    room = store.open_room("T")
    m = new_member_id()
    store.join(room.code, m, "Ada")
    store.set_step(room.code, "vanishing", 3, room.key)
    store.post(room.code, m, result("run-1"))
    again = RoomStore(tmp_path / "runs", clock=store.clock, size=60, expire_s=4 * 3600, posts_per_member=20)
    assert again.current(room.code) == ("vanishing", 3)
    assert again.room(room.code).members[m]["name"] == "Ada" and again.room(room.code).teacher == "T"
    assert [p["run"] for p in again.posts(room.code)] == ["run-1"]
    assert again.is_teacher(room.code, room.key)
    assert again.post(room.code, m, result("run-1")) is False


def test_module_functions_use_the_run_store(tmp_path):
    room = rooms.open_room()
    assert (tmp_path / "runs" / rooms.FOLDER / room.code / "room.json").is_file()  # conftest's BPTT_LAB_RUNS
    m = new_member_id()
    rooms.join(room.code, m)
    rooms.set_step(room.code, "l1", 1, room.key)
    assert rooms.current(room.code) == ("l1", 1)
    assert rooms.post(room.code, m, result("r")) and len(rooms.posts(room.code)) == 1
    from rnn_core import store as run_store

    assert run_store.list_runs() == []  # the rooms folder is no run


def test_room_size_comes_from_the_settings(tmp_path, monkeypatch):
    monkeypatch.setenv("BPTT_LAB_ROOM_SIZE", "3")
    monkeypatch.setenv("BPTT_LAB_ROOM_EXPIRE_H", "0.5")
    s = RoomStore(tmp_path / "x")
    assert s.size == 3 and s.expire_s == 1800


# --- bounds -------------------------------------------------------------------------------------------
def test_the_61st_member_is_refused_in_one_line(store):
    room = store.open_room()
    members = [new_member_id() for _ in range(60)]
    for m in members:
        store.join(room.code, m)
    with pytest.raises(RoomError) as err:
        store.join(room.code, new_member_id(), "late")
    assert str(err.value) == (f"room {room.code} is full: it has 60 members, the most a room takes "
                              "(BPTT_LAB_ROOM_SIZE=60)")
    store.join(room.code, members[0], "renamed")  # a member who joins again is no new member
    assert len(store.room(room.code).members) == 60


def test_names_are_sanitized_and_capped(store):
    room = store.open_room("T" * 500)
    assert store.room(room.code).teacher == "T" * rooms.NAME_LIMIT
    cases = {"Ada\nLovelace": "Ada Lovelace", "a\x00b\u202ec": "a b c", "  lots   of\tspace ": "lots of space",
             "x" * 1000: "x" * rooms.NAME_LIMIT, "**bold** <b>": "**bold** <b>", "Zoë 学生": "Zoë 学生"}
    for raw, want in cases.items():
        m = new_member_id()
        store.join(room.code, m, raw)
        assert store.room(room.code).members[m]["name"] == want
    assert rooms.clean_name(None) == "" and rooms.clean_name(12) == ""
    with pytest.raises(RoomError, match="member id"):
        store.join(room.code, "../../x", "evil")


BAD_CODES = ["", "ABC", "ABCDEFG", "../x", "../../etc", "/etc/passwd", "AB/DEF", "AB\\DEF", "AB\x00DEF", "ÄBCDEF",
             "ＡＢＣＤＥＦ", "O0I1AB", "abc.de", "A" * 10_000, None, 123, 4.5, ["ABCDEF"], b"ABCDEF", "AB DEF"]


@pytest.mark.parametrize("raw", BAD_CODES, ids=range(len(BAD_CODES)))
def test_bad_codes_get_one_line_and_touch_no_path(store, tmp_path, raw):
    store.open_room()
    before = sorted(p for p in tmp_path.rglob("*"))
    for call in (lambda: store.current(raw), lambda: store.join(raw, new_member_id()), lambda: store.posts(raw),
                 lambda: store.post(raw, new_member_id(), result("r")), lambda: store.touch(raw),
                 lambda: store.set_step(raw, "x", 1, "k"), lambda: rooms.check_code(raw)):
        with pytest.raises(RoomError) as err:
            call()
        line = str(err.value)
        assert "\n" not in line and "\x00" not in line and len(line) < 200
        assert "is not a room code" in line or "there is no room" in line or "member id" in line
    assert not store.is_teacher(raw, "k")
    assert sorted(p for p in tmp_path.rglob("*")) == before  # nothing made, inside the store or out


def test_a_well_formed_unknown_code(store):
    with pytest.raises(RoomError, match="there is no room ABCDEF"):
        store.current("abcdef")


# --- concurrency ----------------------------------------------------------------------------------------
def test_concurrent_posts_from_threads_lose_nothing(store):
    room = store.open_room()
    members = [new_member_id() for _ in range(12)]
    barrier = threading.Barrier(len(members))
    errors = []

    def student(i: int, m: str) -> None:
        try:
            barrier.wait()
            store.join(room.code, m, f"s{i}")
            for k in range(8):
                store.post(room.code, m, result(f"t{i}-{k}", seed=k))
        except Exception as err:  # noqa: BLE001 - collected, then asserted empty
            errors.append(err)

    threads = [threading.Thread(target=student, args=(i, m)) for i, m in enumerate(members)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert sorted(p["run"] for p in store.posts(room.code)) == sorted(f"t{i}-{k}" for i in range(12) for k in range(8))
    assert len(store.room(room.code).members) == 12


def test_concurrent_joins_stop_at_the_room_size(store):
    store.size = 10
    room = store.open_room()
    barrier = threading.Barrier(16)
    outcomes = []

    def join() -> None:
        barrier.wait()
        try:
            store.join(room.code, new_member_id())
            outcomes.append("in")
        except RoomError as err:
            outcomes.append(str(err))

    threads = [threading.Thread(target=join) for _ in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert outcomes.count("in") == 10 and len(store.room(room.code).members) == 10
    assert all("is full" in o for o in outcomes if o != "in")


POSTER = """
import sys
from rnn_core.rooms import RoomStore
root, code, who, n = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
s = RoomStore(root, size=60, expire_s=3600, posts_per_member=100)
member = "member-" + who
s.join(code, member, who)
sys.stdin.read()  # every process starts posting at once, when the test closes stdin
for k in range(n):
    s.post(code, member, {"run": f"p{who}-{k}", "config": {"seed": k}, "outcome": "solved"})
"""


def test_concurrent_posts_from_processes_lose_nothing(tmp_path):
    store = RoomStore(tmp_path / "runs", size=60, expire_s=3600, posts_per_member=100)
    room = store.open_room()
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    procs = [subprocess.Popen([sys.executable, "-c", POSTER, str(tmp_path / "runs"), room.code, str(i), "15"],
                              stdin=subprocess.PIPE, env=env, cwd=ROOT) for i in range(4)]
    for p in procs:
        p.stdin.close()
    assert [p.wait(timeout=120) for p in procs] == [0, 0, 0, 0]
    assert sorted(p["run"] for p in store.posts(room.code)) == sorted(f"p{i}-{k}" for i in range(4) for k in range(15))
    assert not list((store.folder / room.code).glob(".*.tmp"))  # every atomic write was renamed into place


# --- a real run posted from its view ------------------------------------------------------------------------
def test_a_finished_run_posts_its_own_numbers(tmp_path):
    from dashboard.room_follow import result_from_view
    from dashboard.run_table import last_horizon
    from rnn_core.trainer import Trainer
    from rnn_core.view import RunView

    out = tmp_path / "runs" / "lesson-run"
    Trainer(make_config(steps=12, seq_len=10, hidden_size=6, record_every=1), out_dir=out).run()
    view = RunView.from_disk(out)
    got = result_from_view(view)
    status = json.loads((out / "status.json").read_text())
    assert got["run"] == "lesson-run" and got["config"] == json.loads((out / "config.json").read_text()) | got["config"]
    assert got["final_val_loss"] == pytest.approx(status["final_val_loss"])
    assert got["baseline"] == pytest.approx(status["val_baseline"])
    assert got["memory_horizon"] == last_horizon(out)  # the History's number, and the Runs table's mmap read
    store = RoomStore(tmp_path / "runs")
    room = store.open_room()
    m = new_member_id()
    store.join(room.code, m)
    assert store.post(room.code, m, got)
    frame = board_frame(store.posts(room.code))
    assert frame["seq_len"].iloc[0] == 10 and frame["verdict"].iloc[0] == got["outcome"]


# --- the Class page under AppTest ---------------------------------------------------------------------------
LESSON = """
title = "Room test lesson"
text = "A lesson for the class room tests."
base = { steps = 4, seq_len = 10, hidden_size = 4 }
{steps}
"""
STEP = """
[[steps]]
text = "Train once and look."
chart = "heatmap"
[steps.question]
text = "Does it beat the baseline?"
metric = "beat_baseline"
choices = [{ label = "yes", value = true }, { label = "no", value = false }]
"""


@pytest.fixture
def lessons(tmp_path, monkeypatch):
    import rnn_core.lessons as lessons_mod
    from dashboard.room_follow import lesson_titles

    folder = tmp_path / "lessons"
    folder.mkdir()
    (folder / "roomtest.toml").write_text(LESSON.replace("{steps}", STEP * 3))
    monkeypatch.setattr(lessons_mod, "LESSONS_DIR", folder)
    lesson_titles.clear()
    yield "roomtest"
    lesson_titles.clear()


def class_app(**params) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=60)
    for k, v in params.items():
        at.query_params[k] = v
    at.run()
    assert not at.exception
    return at.switch_page("pages/class.py").run()


def texts(at: AppTest) -> str:
    """Every text of the page and of its sidebar."""
    parts = [e.value for kind in ("markdown", "caption", "warning", "info", "code") for e in getattr(at, kind)]
    return "\n".join(map(str, parts))


def open_as_teacher(lessons: str) -> tuple[AppTest, str, str]:
    at = class_app()
    at.text_input(key="room_teacher_name").input("Ms R")
    at.button(key="btn_room_open").click().run()
    assert not at.exception
    rs = at.session_state["room_session"]
    return at, rs.code, rs.key


def test_class_page_teacher_opens_room_and_sets_step(lessons):
    at, code, key = open_as_teacher(lessons)
    assert f"Room code: `{code}`" in texts(at)
    assert any(c.value.endswith(f"/?room={code}") for c in at.code)
    assert rooms.current(code) == (None, 0)
    assert at.selectbox(key="room_lesson").value == lessons
    at.number_input(key="room_step").set_value(2)
    at.button(key="btn_room_step").click().run()
    assert not at.exception and rooms.current(code) == (lessons, 2)
    assert "The class follows **Room test lesson**, step 2" in texts(at)
    assert "0 of 60 members · 0 results" in texts(at)


def test_a_student_with_the_link_joins_and_follows(lessons):
    teacher, code, key = open_as_teacher(lessons)
    rooms.set_step(code, lessons, 1, key)
    student = AppTest.from_file(APP, default_timeout=60)
    student.query_params["room"] = code.lower()
    student.run()  # Explore: any page joins
    assert not student.exception
    # the sidebar of every page (AppTest shows the entry file's elements on a session's first run only)
    captions = [c.value for c in student.sidebar.caption]
    assert f"Class room **{code}**" in captions and "The class is at step 1 of:" in captions
    links = [(e.proto.label, e.proto.page) for e in student.sidebar.get("page_link")]
    assert ("Room test lesson", "lessons") in links
    assert student.query_params["room"] == code  # back in the link after the page: a reload follows
    assert not [w for w in student.warning]  # Explore's link code never saw the key
    student.switch_page("pages/class.py").run()
    rs = student.session_state["room_session"]
    assert rs.code == code and rs.key is None and rs.member in rooms.default_store().room(code).members
    assert len(rooms.default_store().room(code).members) == 1  # the second page joined no one again
    assert f"You are in room `{code}`" in texts(student)
    assert "The class is at **Room test lesson**, step 1." in texts(student)
    rooms.set_step(code, lessons, 3, key)  # the teacher moves on
    student.run()
    assert "The class is at **Room test lesson**, step 3." in texts(student)
    student.text_input(key="room_my_name").input("Ada").run()
    assert rooms.default_store().room(code).members[rs.member]["name"] == "Ada"


def test_the_board_shows_posted_runs(lessons):
    at, code, key = open_as_teacher(lessons)
    store = rooms.default_store()
    for i, (gain, T, outcome) in enumerate(GRID):
        m = new_member_id()
        store.join(code, m, f"student <b>{i}</b>")
        store.post(code, m, result(f"run-{i}", outcome, init_gain=gain, seq_len=T, seed=i))
    at.run()
    assert not at.exception
    assert f"{len(GRID)} of 60 members · {len(GRID)} results" in texts(at)
    table = at.dataframe[0].value
    assert sorted(table["run"]) == sorted(f"run-{i}" for i in range(len(GRID)))
    assert "student <b>3</b>" in set(table["name"])  # a table cell is text, never markup
    charts = at.get("plotly_chart")
    assert len(charts) == 1
    spec = json.loads(charts[0].proto.spec)
    heat = spec["data"][0]
    assert heat["x"] == ["0.5", "1", "2"] and heat["y"] == ["10", "50"]
    assert at.selectbox(key="room_board_x").value == "init_gain"
    at.selectbox(key="room_board_x").set_value("seed").run()
    assert json.loads(at.get("plotly_chart")[0].proto.spec)["data"][0]["x"] == [str(i) for i in range(len(GRID))]


BAD_LINKS = ["../x", "AB\x00DEF", "[x](http://127.0.0.1:9/x.png)", "ÄBCDEF", "A" * 5000, ":red[big]"]


def all_warnings(at: AppTest) -> list[str]:
    return [w.value for w in at.warning]  # the page's and the sidebar's


def assert_safe(line: str, raw: str) -> None:
    assert "is not a room code" in line and len(line) < 400 and "\n" not in line
    for ch in "[]():":  # every markup character of the user's text is escaped (dashboard.safe.plain)
        assert line.count(ch) == line.count("\\" + ch)


@pytest.mark.parametrize("raw", BAD_LINKS, ids=range(len(BAD_LINKS)))
def test_a_bad_room_link_shows_one_safe_warning(raw, tmp_path):
    at = AppTest.from_file(APP, default_timeout=60)
    at.query_params["room"] = raw
    at.run()
    assert not at.exception
    warnings = all_warnings(at)
    assert len(warnings) == 1
    assert_safe(warnings[0], raw)
    assert at.session_state["room_session"].code is None
    assert "room" not in at.query_params  # a bad code does not stay in the link
    assert not (tmp_path / "runs" / rooms.FOLDER).exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["runs"] or not any(tmp_path.iterdir())
    at.switch_page("pages/class.py").run()
    assert all_warnings(at) == []  # shown once
    assert at.button(key="btn_room_join")  # the lobby: open or join a room


@pytest.mark.parametrize("raw", BAD_LINKS[:3], ids=range(3))
def test_joining_with_a_bad_code_on_the_class_page(raw):
    at = class_app()
    at.text_input(key="room_join_code").input(raw[:20])
    at.button(key="btn_room_join").click().run()
    assert not at.exception
    warnings = all_warnings(at)
    assert len(warnings) == 1 and warnings[0].startswith("Could not join")
    assert_safe(warnings[0], raw)
    assert at.session_state["room_session"].code is None


def test_an_expired_room_link_says_so(lessons):
    teacher, code, key = open_as_teacher(lessons)
    data_path = rooms.default_store().folder / code / "room.json"
    data = json.loads(data_path.read_text())
    data["active"] -= 5 * 3600
    data_path.write_text(json.dumps(data))
    at = AppTest.from_file(APP, default_timeout=60)
    at.query_params["room"] = code
    at.run()
    assert all_warnings(at) == [f"room {code} has expired \\(no activity for 4 h\\)\\: ask your teacher for a new room"]
    assert at.session_state["room_session"].code is None


def test_the_teacher_link_reopens_the_room(lessons):
    teacher, code, key = open_as_teacher(lessons)
    again = class_app(room=code, key=key)
    rs = again.session_state["room_session"]
    assert rs.teacher and rs.code == code
    assert "room" not in again.query_params and "key" not in again.query_params  # the key never stays in the link
    assert rs.member not in rooms.default_store().room(code).members  # the teacher is no student
    wrong = class_app(room=code, key="not-the-key")
    assert wrong.session_state["room_session"].student  # a wrong key only joins, as the code alone does


def test_a_student_on_the_lessons_page_follows_the_teacher_and_posts_once(lessons):
    room = rooms.open_room("T")
    rooms.set_step(room.code, lessons, 2, room.key)
    at = AppTest.from_file(APP, default_timeout=60)
    at.query_params["room"] = room.code
    at.run()
    at.switch_page("pages/lessons.py").run()
    assert not at.exception

    def shown() -> tuple[str | None, int]:
        ls = at.session_state["page:lessons"]
        return ls.lesson, ls.step

    assert shown() == (lessons, 1) and at.query_params["step"] == "2"  # the teacher's step 2, 0-based 1
    at.button(key="les_next").click().run()  # a student may look ahead...
    at.run()
    assert shown() == (lessons, 2)  # ...and stays there while the teacher stays
    rooms.set_step(room.code, lessons, 1, room.key)  # the teacher moves on
    at.run()
    assert shown() == (lessons, 0) and at.query_params["step"] == "1"
    at.radio(key=f"les_q_{lessons}_0").set_value(0).run()
    at.button(key="les_train").click().run()
    job = at.session_state["page:lessons"].jobs[0]
    assert job.wait(timeout=120), "the lesson's run did not end"
    at.run()
    at.run()  # a page that sees the finished run again posts nothing more
    posts = rooms.posts(room.code)
    assert [p["run"] for p in posts] == [job.name]
    assert posts[0]["final_val_loss"] == pytest.approx(job.view().summary["final_val_loss"])
    assert posts[0]["config"]["seq_len"] == 10 and posts[0]["outcome"]
    frame = board_frame(posts)
    assert frame["run"].tolist() == [job.name] and frame["verdict"].iloc[0] == posts[0]["outcome"]


def test_the_student_link_is_the_app_root_and_a_loopback_one_says_so():
    from dashboard.room_page import loopback

    assert loopback("http://127.0.0.1:8501/?room=ABCDEF") and loopback("http://localhost:8501/")
    assert loopback("http://[::1]:8501/") and not loopback("http://192.168.1.20:8501/?room=ABCDEF")
    at, code, _ = open_as_teacher("none")
    link = next(c.value for c in at.code if c.value.endswith(f"room={code}"))
    assert "/class" not in link  # any page joins: the link opens the app's first page
    assert ("works on this computer only" in texts(at)) == loopback(link)
