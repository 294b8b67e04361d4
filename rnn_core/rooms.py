"""Class rooms: a teacher's lesson and step that students follow, and the results their runs post.

    room = open_room("Ms Rivera")                 # Room(code="K7QX3M", key="…"): the key stays with the teacher
    set_step(room.code, "vanishing", 2, room.key)
    join(room.code, member, "Ada")                # member: new_member_id(), kept in the browser session
    current(room.code)                            # ("vanishing", 2)
    post(room.code, member, result)               # a finished run: config, outcome, horizon, losses
    board_frame(posts(room.code))                 # one row per post, in the trainability map's columns

A room is files in the run store's folder, so it survives a server restart:

    <runs root>/_rooms/CODE/room.json    teacher, lesson and step, members, last activity
    <runs root>/_rooms/CODE/posts.json   {member id: [its latest posts, oldest first]}
    <runs root>/_rooms/CODE/lock         flock'ed around every read-modify-write

Every change reads, edits and rewrites a file while holding the room's lock (fcntl.flock, which
also separates threads: each call opens its own file description), and each file is replaced
atomically (store.atomic_write_json), so readers never lock and never see half a file, and two
posts at the same moment both land. `_rooms` is no run name (rules.RUN_NAME), so the run store
never lists it.

What a room code protects, and what it does not. A code is not a secret: six characters that
the teacher shows the class, and that anyone who can reach the server could guess. With it
anyone can join (at most BPTT_LAB_ROOM_SIZE members), read the room's lesson and step, and post
the results of runs they trained. It gives no access to anything else: no accounts, no
passwords, a display name is whatever a student types. What only the teacher can do (change the
step, see the class board) needs the room's key, a random token handed out once by `open_room`
and kept in the teacher's link; the room stores only its SHA-256. A code never names a path: it
is checked against its alphabet before it touches the file system. Rooms are plain JSON files
that anyone with access to the server's disk can read.
"""
from __future__ import annotations

import fcntl
import hashlib
import hmac
import json
import math
import os
import re
import secrets
import shutil
import time
import unicodedata
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping

import pandas as pd

from .rules import run_name_problem, show
from .store import atomic_write_json, runs_root

ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O, no 1/I: read off a projector without doubt
CODE_LENGTH = 6  # 32^6 ≈ 1e9 codes: a collision between live rooms is a retry, not a worry
FOLDER = "_rooms"  # under the runs root; a leading "_" is never a run name
MEMBER_ID = re.compile(r"^[A-Za-z0-9_-]{8,64}$")  # new_member_id(): 16 url-safe characters
LESSON_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
NAME_LIMIT = 30  # characters of a display name: fits a board's hover and a table cell
MAX_STEP = 10_000  # lessons have a handful of steps; a bound keeps a bad request a clear refusal
TOUCH_EVERY_S = 60.0  # a teacher watching the board keeps the room alive, rewriting room.json at most this often
CONFIG_KEYS_MAX = 200  # keys of a posted config; RunConfig has about 40
TEXT_LIMIT = 200  # characters of a posted text value (a run name is at most 100)


class RoomError(ValueError):
    """One line for the person who typed the code or the name: what was wrong and what is allowed."""

    def __init__(self, message: str, expired: bool = False) -> None:
        super().__init__(message)
        self.expired = expired


def new_member_id() -> str:
    """A member of a room: a random id, kept in the browser session (no accounts)."""
    return secrets.token_urlsafe(12)


def check_code(raw: Any) -> str:
    """The room code `raw` names, upper-cased and trimmed (students type "k7qx3m "), or RoomError.

    Only CODE_LENGTH characters of ALPHABET pass, so a code can never be a path (`../x`, `/etc`,
    NUL, unicode look-alikes) before it is joined to the rooms folder."""
    text = raw.strip().upper() if isinstance(raw, str) and raw.isascii() else None
    if text is None or len(text) != CODE_LENGTH or any(c not in ALPHABET for c in text):
        shown = show(repr(raw) if not isinstance(raw, str) else raw.encode("unicode_escape").decode("ascii"))
        raise RoomError(f"'{shown}' is not a room code: a code is {CODE_LENGTH} characters from {ALPHABET}")
    return text


def clean_name(raw: Any) -> str:
    """A display name as shown to others: printable characters, single spaces, at most NAME_LIMIT.

    Control and format characters (newlines, NUL, bidi overrides) go; markup characters stay,
    since every page shows names as plain text (dashboard.safe)."""
    if not isinstance(raw, str):
        return ""
    text = "".join(c if unicodedata.category(c)[0] not in "CZ" else " " for c in raw)
    text = " ".join(text.split())
    return text[:NAME_LIMIT].strip()


def _check_member(member: Any) -> str:
    if not isinstance(member, str) or not MEMBER_ID.match(member):
        raise RoomError("this session's member id is not valid: it is 8-64 letters, digits, '_' or '-'")
    return member


def _check_step(lesson_id: Any, step: Any) -> tuple[str, int]:
    if not isinstance(lesson_id, str) or not LESSON_ID.match(lesson_id):
        raise RoomError(f"{show(repr(lesson_id))} is not a lesson id: use 1-64 letters, digits, '.', '_' or '-'")
    if isinstance(step, bool) or not isinstance(step, int) or not 1 <= step <= MAX_STEP:
        raise RoomError(f"{show(repr(step))} is not a lesson step: use a whole number from 1 to {MAX_STEP}")
    return lesson_id, step


def _hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def _number(v: Any) -> float | None:
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return None
    return float(v) if math.isfinite(v) else None


def _scalar(v: Any) -> Any:
    """A config value as a post keeps it: a finite number, a bool, None, or a text cut to TEXT_LIMIT."""
    if v is None or isinstance(v, bool):
        return v
    if isinstance(v, int):
        return v
    if isinstance(v, float):
        return v if math.isfinite(v) else None
    return show(str(v), TEXT_LIMIT)


def clean_result(result: Mapping[str, Any]) -> dict:
    """What a post keeps of a run's result, every value typed and bounded (a post is read by every
    board, so nothing unbounded or non-finite goes in). `run` must be a valid run name."""
    run = result.get("run")
    problem = run_name_problem(run) if isinstance(run, str) else "a post needs the run's name"
    if problem:
        raise RoomError(problem)
    config = result.get("config") or {}
    if not isinstance(config, Mapping):
        raise RoomError("a post's config must be a mapping of keys to values")
    keys = [k for k in config if isinstance(k, str) and re.fullmatch(r"[a-z][a-z0-9_]{0,39}", k)][:CONFIG_KEYS_MAX]
    horizon = result.get("memory_horizon")
    steps = result.get("steps_done")
    return {
        "run": run,
        "config": {k: _scalar(config[k]) for k in keys},
        "status": show(str(result.get("status", "")), 20),
        "outcome": show(str(result.get("outcome", "")), 40),  # rnn_core.summary.outcome's word
        "verdict": show(str(result.get("verdict", "")), TEXT_LIMIT),  # rnn_core.summary.verdict_text
        "beat_baseline": bool(result.get("beat_baseline", False)),
        "final_val_loss": _number(result.get("final_val_loss")),
        "baseline": _number(result.get("baseline")),
        "log10_ratio": _number(result.get("log10_ratio")),
        "memory_horizon": int(horizon) if _number(horizon) is not None and horizon >= 0 else None,
        "steps_done": int(steps) if _number(steps) is not None and steps >= 0 else None,
    }


@dataclass(frozen=True)
class Room:
    code: str
    teacher: str
    created: float
    active: float  # last join, post, step change or board view: expiry counts from here
    lesson_id: str | None = None  # None until the teacher picks a lesson
    step: int = 0  # 1-based, as the Lessons page's ?step=N; 0 until the teacher picks a lesson
    version: int = 0  # +1 on every set_step: followers rerun when it moves
    members: dict = field(default_factory=dict)  # member id -> {"name", "joined"}
    key: str | None = None  # the teacher's key: only in open_room's answer, never read back

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> "Room":
        return cls(str(data["code"]), str(data.get("teacher", "")), float(data["created"]), float(data["active"]),
                   data.get("lesson_id"), int(data.get("step", 0)), int(data.get("version", 0)),
                   dict(data.get("members", {})))


class RoomStore:
    """The rooms of one runs root. `clock` is injectable for expiry tests; the bounds default to the
    server's settings (BPTT_LAB_ROOM_SIZE, BPTT_LAB_ROOM_EXPIRE_H, BPTT_LAB_ROOM_POSTS)."""

    def __init__(self, root: Path | str | None = None, clock: Callable[[], float] = time.time,
                 size: int | None = None, expire_s: float | None = None, posts_per_member: int | None = None):
        if size is None or expire_s is None or posts_per_member is None:
            from .settings import load_settings

            s = load_settings()
            size = s.room_size if size is None else size
            expire_s = s.room_expire_h * 3600 if expire_s is None else expire_s
            posts_per_member = s.room_posts if posts_per_member is None else posts_per_member
        self.folder = Path(root if root is not None else runs_root()) / FOLDER
        self.clock, self.size, self.expire_s, self.posts_per_member = clock, size, expire_s, posts_per_member

    # --- files -----------------------------------------------------------------------------
    def _dir(self, code: Any) -> Path:
        return self.folder / check_code(code)

    @contextmanager
    def _locked(self, code: str) -> Iterator[Path]:
        d = self._dir(code)
        try:
            fd = os.open(d / "lock", os.O_RDWR | os.O_CREAT, 0o644)
        except (FileNotFoundError, NotADirectoryError):
            raise RoomError(self._missing(code)) from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield d
        finally:
            os.close(fd)  # releases the lock

    def _missing(self, code: str) -> str:
        return f"there is no room {code}: check the code, or ask your teacher for the room's link"

    def _read(self, d: Path, name: str) -> dict:
        try:
            data = json.loads((d / name).read_text())
        except FileNotFoundError:
            raise RoomError(self._missing(d.name)) from None
        except (OSError, ValueError):
            raise RoomError(f"room {d.name} could not be read: ask your teacher for a new room") from None
        if not isinstance(data, dict):
            raise RoomError(f"room {d.name} could not be read: ask your teacher for a new room")
        return data

    def _expired(self, data: Mapping[str, Any]) -> bool:
        return self.clock() - float(data.get("active", 0)) > self.expire_s

    def _live(self, d: Path) -> dict:
        data = self._read(d, "room.json")
        if self._expired(data):
            hours = self.expire_s / 3600
            raise RoomError(f"room {d.name} has expired (no activity for {hours:g} h): ask your teacher for a new "
                            "room", expired=True)
        return data

    # --- teacher -----------------------------------------------------------------------------
    def open_room(self, teacher_name: str = "") -> Room:
        """A new room with a fresh code and key. Expired rooms are removed first (lazily, here)."""
        self.sweep()
        self.folder.mkdir(parents=True, exist_ok=True)
        for _ in range(50):
            code = "".join(secrets.choice(ALPHABET) for _ in range(CODE_LENGTH))
            try:
                (self.folder / code).mkdir()  # exclusive: a code in use (or being made) raises
            except FileExistsError:
                continue
            break
        else:  # 50 collisions in a row: the folder is full of rooms, not unlucky
            raise RoomError("could not find a free room code: too many open rooms")
        key, now = secrets.token_urlsafe(16), self.clock()
        with self._locked(code) as d:
            data = {"code": code, "teacher": clean_name(teacher_name), "created": now, "active": now,
                    "lesson_id": None, "step": 0, "version": 0, "members": {}, "key_sha256": _hash(key)}
            atomic_write_json(d / "posts.json", {})
            atomic_write_json(d / "room.json", data)
        return replace(Room.from_json(data), key=key)

    def is_teacher(self, code: str, key: Any) -> bool:
        """Does `key` open room `code` for its teacher? (False for a missing or expired room.)"""
        try:
            data = self._live(self._dir(code))
        except RoomError:
            return False
        return isinstance(key, str) and hmac.compare_digest(_hash(key), str(data.get("key_sha256", "")))

    def set_step(self, code: str, lesson_id: str, step: int, key: str) -> Room:
        lesson_id, step = _check_step(lesson_id, step)
        with self._locked(code) as d:
            data = self._live(d)
            if not (isinstance(key, str) and hmac.compare_digest(_hash(key), str(data.get("key_sha256", "")))):
                raise RoomError(f"only room {d.name}'s teacher can change its step (this session has not its key)")
            data.update(lesson_id=lesson_id, step=step, version=int(data.get("version", 0)) + 1, active=self.clock())
            atomic_write_json(d / "room.json", data)
        return Room.from_json(data)

    def touch(self, code: str) -> None:
        """Mark the room active (the teacher's board calls this as it polls); at most one write a minute."""
        with self._locked(code) as d:
            data = self._live(d)
            if self.clock() - float(data["active"]) >= TOUCH_EVERY_S:
                data["active"] = self.clock()
                atomic_write_json(d / "room.json", data)

    # --- everyone ------------------------------------------------------------------------------
    def room(self, code: str) -> Room:
        """The room as it is now (no lock: room.json is always replaced whole)."""
        return Room.from_json(self._live(self._dir(code)))

    def current(self, code: str) -> tuple[str | None, int]:
        """(lesson id, step) the teacher has set; (None, 0) before the first set_step."""
        r = self.room(code)
        return r.lesson_id, r.step

    def join(self, code: str, member: str, name: str = "") -> Room:
        """Add `member` (again: only its name changes) or refuse with one line when the room is full."""
        member, name = _check_member(member), clean_name(name)
        with self._locked(code) as d:
            data = self._live(d)
            members = data.setdefault("members", {})
            if member not in members and len(members) >= self.size:
                raise RoomError(f"room {d.name} is full: it has {len(members)} members, the most a room takes "
                                f"(BPTT_LAB_ROOM_SIZE={self.size})")
            entry = members.setdefault(member, {"name": "", "joined": self.clock()})
            if name:
                entry["name"] = name
            data["active"] = self.clock()
            atomic_write_json(d / "room.json", data)
        return Room.from_json(data)

    def post(self, code: str, member: str, result: Mapping[str, Any]) -> bool:
        """Post one run's result for `member`; False (and nothing written) when this run was posted
        already, so a page may post on every rerun that sees the run finished. Keeps each member's
        latest `posts_per_member` posts."""
        member, clean = _check_member(member), clean_result(result)
        with self._locked(code) as d:
            data = self._live(d)
            if member not in data.get("members", {}):
                raise RoomError(f"this session is not a member of room {d.name}: open the room's link to join")
            posts = self._read(d, "posts.json")
            if any(p.get("run") == clean["run"] for own in posts.values() for p in own):
                return False
            now = self.clock()
            seq = 1 + max((int(p.get("seq", 0)) for own in posts.values() for p in own), default=0)  # post order
            clean.update(member=member, name=data["members"][member].get("name", ""), posted=now, seq=seq)
            posts[member] = (posts.get(member, []) + [clean])[-self.posts_per_member:]
            atomic_write_json(d / "posts.json", posts)
            data["active"] = now
            atomic_write_json(d / "room.json", data)
        return True

    def posts(self, code: str) -> list[dict]:
        """Every post of the room, oldest first."""
        d = self._dir(code)
        self._live(d)
        every = [p for own in self._read(d, "posts.json").values() if isinstance(own, list) for p in own]
        return sorted((p for p in every if isinstance(p, dict)), key=lambda p: p.get("seq", 0))

    def sweep(self) -> list[str]:
        """Remove every expired room; returns their codes. A room being changed is skipped this time."""
        gone = []
        if not self.folder.is_dir():
            return gone
        for d in sorted(self.folder.iterdir()):
            try:
                check_code(d.name)
            except RoomError:
                continue
            try:
                expired = self._expired(json.loads((d / "room.json").read_text()))
            except (OSError, ValueError):
                # no room.json yet: a room being opened (or a crash mid-open), old enough to be a crash?
                expired = self.clock() - d.stat().st_mtime > self.expire_s if d.exists() else False
            if expired:
                shutil.rmtree(d, ignore_errors=True)
                gone.append(d.name)
        return gone


# --- the board ----------------------------------------------------------------------------------
RESULT_COLUMNS = ("run", "name", "member", "seed", "verdict", "outcome", "beat_baseline", "final_val_loss",
                  "baseline", "loss_ratio", "memory_horizon", "log10_ratio", "steps_done", "posted", "seq")


def board_frame(posts: list[Mapping[str, Any]]) -> pd.DataFrame:
    """One row per post: every config key as a column (the map's grid keys), then RESULT_COLUMNS:
    `verdict` is the outcome word (solved / stuck at baseline / diverged / still learning),
    `loss_ratio` the final validation loss over the baseline."""
    rows = []
    for p in posts:
        cfg = dict(p.get("config") or {})
        loss, base = p.get("final_val_loss"), p.get("baseline")
        row = {**cfg, **{c: p.get(c) for c in RESULT_COLUMNS}}
        row.update(seed=cfg.get("seed"), verdict=p.get("outcome"),
                   loss_ratio=loss / base if loss is not None and base else None)
        rows.append(row)
    config_cols = sorted({k for p in posts for k in (p.get("config") or {}) if k not in RESULT_COLUMNS})
    return pd.DataFrame(rows, columns=config_cols + list(RESULT_COLUMNS))


def varying_keys(frame: pd.DataFrame) -> list[str]:
    """The config keys whose value differs between posts: the board's choices for x and y."""
    skip = set(RESULT_COLUMNS) - {"seed"}
    return [c for c in frame.columns if c not in skip and frame[c].astype(str).nunique(dropna=False) > 1]


# --- one store per runs root, for the app ---------------------------------------------------------
def default_store() -> RoomStore:
    """The rooms of the current runs root ($BPTT_LAB_RUNS, read on each call as the run store does)."""
    return RoomStore()


def open_room(teacher_name: str = "") -> Room:
    return default_store().open_room(teacher_name)


def set_step(code: str, lesson_id: str, step: int, key: str) -> Room:
    return default_store().set_step(code, lesson_id, step, key)


def current(code: str) -> tuple[str | None, int]:
    return default_store().current(code)


def join(code: str, member: str, name: str = "") -> Room:
    return default_store().join(code, member, name)


def post(code: str, member: str, result: Mapping[str, Any]) -> bool:
    return default_store().post(code, member, result)


def posts(code: str) -> list[dict]:
    return default_store().posts(code)


__all__ = ["ALPHABET", "CODE_LENGTH", "Room", "RoomError", "RoomStore", "board_frame", "check_code", "clean_name",
           "clean_result", "current", "default_store", "join", "new_member_id", "open_room", "post", "posts",
           "set_step", "varying_keys"]
