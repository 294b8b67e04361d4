"""Hostile input at every door, property-based (hypothesis): the CLI, every page's URL, imported
zips, run names, lesson files and room codes.

What is thrown: wrong types, NaN and ±inf, huge and negative numbers, unknown and repeated keys,
very long strings, unicode, control characters, HTML and Markdown, path-like names (`../x`,
absolute paths, NUL). What must hold, for every case: a clear one-line message (a typed error or a
warning) and a safe fallback; no other exception; no file written outside the runs folder (or the
CLI's own --out); no change to another run (its files hashed before and after).

Examples are bounded (DOOR_EXAMPLES per door) so the whole file stays well under 90 s on 2 cores,
and each door counts the cases it tried: `pytest tests/test_fuzz.py -s` prints the counts.
"""
from __future__ import annotations

import hashlib
import io
import json
import math
import os
import re
import struct
import zipfile
from collections import Counter
from contextlib import contextmanager, redirect_stderr, redirect_stdout
from pathlib import Path
from unittest import mock

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rnn_core import cli, store
from rnn_core.config import ConfigError, RunConfig, make_config
from rnn_core.rules import RUN_NAME, RunStoreError, check_run_name, run_name_problem

ROOT = Path(__file__).resolve().parents[1]
APP = str(ROOT / "streamlit_app.py")
DOOR_EXAMPLES = int(os.environ.get("BPTT_LAB_FUZZ_EXAMPLES", "100"))  # more for a longer soak
FUZZ = settings(max_examples=DOOR_EXAMPLES, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture,
                                       HealthCheck.data_too_large, HealthCheck.filter_too_much])
COUNTS: Counter = Counter()  # door -> cases tried

# --- what is thrown ----------------------------------------------------------------------------------
PAYLOADS = [
    "../x", "../../etc/passwd", "/abs", "/etc/passwd", "a\x00b", "\x00", "C:\\x", "x\\..\\y", ".", "..", "~",
    "**bold**", "_em_", "[l](http://127.0.0.1:9/x)", "![i](http://127.0.0.1:9/i.png)", "<b>x</b>",
    "<script>alert(1)</script>", "<img src=x onerror=alert(1)>", ":red[x]", "$x^2$", "$$\\int$$", ":material/home:",
    "`code`", "``", "\n# heading", "line\r\nbreak", "tab\there", "\u202eevil", "\u200b", "\ufeff", "🙂", "é", "ﬁ",
    "nan", "NaN", "inf", "-inf", "Infinity", "1e309", "-1e309", "-1", "0", "-0", "1e-400", "9" * 400, "0x10", "1_000",
    "true", "True", "yes", "", " ", "null", "None", "[]", "{}", "1,2", "1;2", "%00", "%2e%2e%2f", "a=b", "=", "==",
    "x" * 10_000,
]
# no subnormals: the Trainer flushes denormals process-wide (torch.set_flush_denormal), which hypothesis refuses
numbers = st.one_of(st.floats(allow_nan=True, allow_infinity=True, allow_subnormal=False), st.integers(-10**40, 10**40))
hostile_text = st.one_of(st.sampled_from(PAYLOADS), st.text(max_size=60), numbers.map(str),
                         st.text(min_size=200, max_size=3000),
                         st.lists(st.sampled_from(PAYLOADS), min_size=2, max_size=4).map("".join))
config_keys = st.sampled_from(sorted(RunConfig.model_fields))
keys = st.one_of(config_keys, hostile_text, st.sampled_from(["horizon", "Cell", "cell ", "a.cell", "x.y", "cols", "runs"]))
hostile_value = st.one_of(hostile_text, numbers, st.none(), st.booleans(), st.lists(st.integers(), max_size=3),
                          st.dictionaries(st.text(max_size=5), st.integers(), max_size=2))

SPECIAL_OUTSIDE_CODE = "[]<>$*`"
CODE_SPAN = re.compile(r"(?<![\\`])(`+)(?!`)(.*?)(?<!`)\1(?!`)", re.S)  # an escaped \` opens no code span


def assert_safe_markdown(md: str) -> None:
    """One line, and outside code spans every character that starts markup is backslash-escaped,
    so Streamlit shows the link's text as typed (no link, image, colour, HTML or maths)."""
    assert isinstance(md, str) and "\n" not in md and "\r" not in md, repr(md)
    rest = CODE_SPAN.sub("", md)
    for i, ch in enumerate(rest):
        if ch in SPECIAL_OUTSIDE_CODE:
            slashes = len(rest[:i]) - len(rest[:i].rstrip("\\"))
            assert slashes % 2 == 1, f"unescaped {ch!r} in {md!r}"
    assert all(c.isprintable() or c == " " for c in md), repr(md)


def assert_one_line(message: str, limit: int = 1200) -> None:
    assert message and "\n" not in message.strip() and len(message) <= limit, repr(message[:300])
    assert "Traceback" not in message


# --- what must not change ------------------------------------------------------------------------------
def tree(path: Path) -> dict[str, str]:
    """Every file under `path` with the hash of its bytes."""
    out = {}
    for p in sorted(path.rglob("*")):
        if p.is_file() and not p.is_symlink():
            out[str(p.relative_to(path))] = hashlib.sha256(p.read_bytes()).hexdigest()
    return out


@pytest.fixture(scope="module")
def bystander(tmp_path_factory) -> Path:
    """A finished run that every door must leave alone (copied into each test's store)."""
    from rnn_core.trainer import Trainer

    root = tmp_path_factory.mktemp("bystander")
    Trainer(make_config(steps=6, seq_len=6, hidden_size=4, record_every=2), out_dir=root / "bystander").run()
    return root / "bystander"


@pytest.fixture()
def world(tmp_path, bystander):
    """(tmp root, runs root, the bystander's hashes): the runs root holds one run, the bystander."""
    import shutil

    runs = store.runs_root()
    runs.mkdir(parents=True, exist_ok=True)
    shutil.copytree(bystander, runs / "bystander")
    return tmp_path, runs, tree(runs / "bystander")


def assert_untouched(world, allowed: Path | None = None) -> None:
    """The bystander run is byte-identical and nothing was written outside the runs root (or
    outside `allowed`, the CLI's own --out)."""
    tmp, runs, before = world
    assert tree(runs / "bystander") == before
    for p in tmp.rglob("*"):
        inside = p.is_relative_to(runs) or (allowed is not None and p.is_relative_to(allowed))
        assert inside or p == allowed or p in (runs, *runs.parents), f"written outside the runs root: {p}"


@pytest.fixture(scope="module", autouse=True)
def _report():
    yield
    print("\nfuzz cases tried per door: " + ", ".join(f"{door} {n}" for door, n in sorted(COUNTS.items())))


# --- the CLI -----------------------------------------------------------------------------------------------
@contextmanager
def captured():
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        yield out, err


def run_cli(argv: list[str]) -> tuple[int, str]:
    """cli.main in-process with training itself stubbed out (a valid config is accepted, its
    config.json written, and nothing trained): (exit status, stderr)."""
    with captured() as (_, err), mock.patch.object(cli, "_train", lambda trainer, quiet: 0):
        try:
            rc = cli.main(argv)
        except SystemExit as exc:  # argparse: a bad subcommand or flag
            rc = exc.code
    return rc, err.getvalue()


def _to_set(key, value) -> str:
    return f"{key}={value}" if not isinstance(value, str) or value != "\0" else key


@FUZZ
@given(sets=st.lists(st.tuples(keys, hostile_value), min_size=1, max_size=4))
def test_cli_train_with_hostile_sets(world, sets):
    COUNTS["CLI"] += 1
    tmp = world[0]
    out = tmp / "out" / f"r{COUNTS['CLI']}"
    argv = ["train", *[a for k, v in sets for a in ("--set", _to_set(k, v))], "--out", str(out), "--quiet"]
    rc, err = run_cli(argv)
    assert rc in (0, 2), (rc, err)
    if rc == 2 and err.startswith("usage: "):  # argparse's own refusal (`--set -`): usage, then one error line
        assert "error: " in err.strip().splitlines()[-1] and "Traceback" not in err
    elif rc == 2:
        assert err.startswith("error: ")
        assert_one_line(err)
        assert not (out / "config.json").exists()
    else:
        make_config(json.loads((out / "config.json").read_text()))  # what was accepted reads back
    assert_untouched(world, allowed=tmp / "out")


cli_word = st.one_of(hostile_text, st.sampled_from(["train", "resume", "keys", "export", "import", "sweep", "--set",
                                                     "--out", "--steps", "--name", "--no-limits", "-h", "bystander"]))


@FUZZ
@given(argv=st.one_of(
    st.lists(cli_word, max_size=5),
    st.tuples(st.just("resume"), hostile_text).map(list),
    st.tuples(st.just("resume"), st.just("RUNS/target"), st.just("--steps"), hostile_text).map(list),
    st.tuples(st.just("export"), hostile_text, st.just("--out"), hostile_text).map(list),
    st.tuples(st.just("import"), hostile_text, st.just("--name"), hostile_text).map(list),
    st.tuples(st.just("train"), st.just("--set"), hostile_text, st.just("--out"), hostile_text).map(list),
))
def test_cli_hostile_commands_and_paths(world, argv):
    """Bad subcommands and flags exit 2 with argparse's usage line; bad paths for --out, resume,
    export and import exit 2 with one line; none leaves a file outside the runs root (the working
    directory is a scratch folder inside the tmp tree, so a relative --out lands there)."""
    COUNTS["CLI"] += 1
    tmp, runs, _ = world
    scratch = tmp / "cwd"
    scratch.mkdir(exist_ok=True)
    if "RUNS/target" in argv:  # a run this command may change (resume it): a copy, never the bystander
        import shutil

        shutil.rmtree(runs / "target", ignore_errors=True)
        shutil.copytree(runs / "bystander", runs / "target")
    argv = [str(runs / "target") if a == "RUNS/target" else a for a in argv]
    if "-h" in argv or "--help" in argv:
        argv = [a for a in argv if a not in ("-h", "--help")]
    # never export into or import over the real tree: a fresh scratch folder per case
    cwd = os.getcwd()
    os.chdir(scratch)
    try:
        rc, err = run_cli(argv)
    finally:
        os.chdir(cwd)
    assert rc in (0, 1, 2), (rc, err)
    assert "Traceback" not in err
    if rc == 2:
        last = err.strip().splitlines()[-1] if err.strip() else ""
        assert "error" in last, err[-500:]
        assert len(last) <= 1200
    assert_untouched(world, allowed=scratch)


# --- every page's URL --------------------------------------------------------------------------------------
query = st.dictionaries(keys, st.one_of(hostile_text, st.lists(hostile_text, max_size=3)), max_size=5)


@FUZZ
@given(params=query)
def test_explore_url(params):
    from dashboard.schema import effective_values
    from dashboard.urlstate import values_from_query

    COUNTS["URL Explore"] += 1
    values, warnings = values_from_query(params)
    for w in warnings:
        assert_safe_markdown(w)
    try:
        make_config(effective_values(values))  # the fallback is a usable config, or one line Train shows
    except ConfigError as err:
        assert_one_line(str(err))


compare_keys = st.one_of(keys, st.tuples(st.sampled_from(["a", "b", "c", "d", "e", "A", "", "a.b"]), keys)
                         .map(lambda t: f"{t[0]}.{t[1]}"), st.sampled_from(["cols", "runs"]))


@FUZZ
@given(params=st.dictionaries(compare_keys, st.one_of(hostile_text, st.lists(hostile_text, max_size=3)), max_size=6))
def test_compare_url(params):
    from dashboard.compare_url import MAX_COLS, MIN_COLS, comparison_from_query, runs_from_query

    COUNTS["URL Compare"] += 1
    shared, overrides, warnings = comparison_from_query(params)
    assert MIN_COLS <= len(overrides) <= MAX_COLS
    for ov in overrides:
        for name, value in ov.items():
            assert name in RunConfig.model_fields
    names, run_warnings = runs_from_query(params)
    assert len(names) <= MAX_COLS
    for n in names:  # the page opens each through check_run_name: a bad one is one line, never a path
        if run_name_problem(n) is not None:
            with pytest.raises(RunStoreError) as err:
                store.run_dir(n)
            assert_one_line(str(err.value), 400)
    for w in warnings + run_warnings:
        assert_safe_markdown(w)


@FUZZ
@given(name=hostile_text)
def test_runs_link_opens_a_saved_run_or_says_why(world, name):
    """Explore's ?run=NAME (the Runs page's Open in Explore): a view of a run of the store, or one
    line; nothing outside the store is read as a run."""
    from dashboard.runs import open_saved
    from dashboard.safe import plain

    COUNTS["URL Runs (?run=)"] += 1
    got = open_saved(name)
    if isinstance(got, str):
        assert_one_line(got, 600)
        assert_safe_markdown(plain(got))
    else:
        assert name == "bystander" and got.out_dir.parent == store.runs_root()
    assert_untouched(world)


@FUZZ
@given(params=st.dictionaries(st.one_of(st.sampled_from(["lesson", "step"]), hostile_text),
                              st.one_of(hostile_text, st.lists(hostile_text, max_size=3)), max_size=4))
def test_lessons_url(params):
    from dashboard.lessons_link import lesson_from_query

    COUNTS["URL Lessons"] += 1
    lessons = _lessons()
    lesson_id, step, warning = lesson_from_query(params, lessons)
    assert lesson_id is None or (lesson_id in lessons and 0 <= step < len(lessons[lesson_id].steps))
    if warning is not None:
        assert_safe_markdown(warning)


_LESSONS: dict = {}


def _lessons() -> dict:
    if not _LESSONS:
        from rnn_core.lessons import load_lessons

        _LESSONS.update(load_lessons()[0])
    return _LESSONS


@FUZZ
@given(raw=st.one_of(hostile_value, st.text(alphabet="ABCDEFGHJKLMNPQRSTUVWXYZ23456789abc0O1I ", max_size=8)))
def test_room_codes(tmp_path, raw):
    from rnn_core.rooms import ALPHABET, CODE_LENGTH, RoomError, RoomStore, check_code, new_member_id

    COUNTS["room codes"] += 1
    try:
        code = check_code(raw)
    except RoomError as err:
        assert_one_line(str(err), 400)
    else:
        assert len(code) == CODE_LENGTH and set(code) <= set(ALPHABET)
    rooms = RoomStore(root=tmp_path / "rooms-root", size=60, expire_s=3600, posts_per_member=5)
    before = set((tmp_path / "rooms-root").rglob("*")) if (tmp_path / "rooms-root").exists() else set()
    with pytest.raises(RoomError) as err:  # no room has this code: refused, nothing made
        rooms.join(raw, new_member_id(), name=str(raw)[:50])
    assert_one_line(str(err.value), 400)
    after = set((tmp_path / "rooms-root").rglob("*")) if (tmp_path / "rooms-root").exists() else set()
    assert after <= before | {tmp_path / "rooms-root", tmp_path / "rooms-root" / "_rooms"}


@FUZZ
@given(name=hostile_value, result=st.dictionaries(st.one_of(st.sampled_from(
    ["run", "config", "verdict", "outcome", "final_val_loss", "memory_horizon", "seed", "name"]), hostile_text),
    hostile_value, max_size=6))
def test_room_names_and_posts(tmp_path, name, result):
    from rnn_core.rooms import NAME_LIMIT, RoomError, RoomStore, clean_name, new_member_id

    COUNTS["room posts"] += 1
    shown = clean_name(name)
    assert len(shown) <= NAME_LIMIT and all(c.isprintable() for c in shown)
    rooms = RoomStore(root=tmp_path / "r", size=60, expire_s=3600, posts_per_member=5)
    room = rooms.open_room(teacher_name=name if isinstance(name, str) else "")
    member = new_member_id()
    rooms.join(room.code, member, name=name if isinstance(name, str) else "")
    try:
        rooms.post(room.code, member, result)
    except RoomError as err:
        assert_one_line(str(err), 600)
    for post in rooms.posts(room.code):  # what the board reads back: plain JSON values, names cleaned
        json.dumps(post)
        assert len(str(post.get("name", ""))) <= NAME_LIMIT
    assert all(p.is_relative_to(tmp_path / "r") for p in tmp_path.rglob("*") if p != tmp_path / "r")


# --- lesson files ----------------------------------------------------------------------------------------
def _toml_value(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        return "nan" if math.isnan(v) else ("inf" if v > 0 else "-inf") if math.isinf(v) else repr(v)
    if isinstance(v, int):
        return str(v)
    if isinstance(v, list):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{" + ", ".join(f"{json.dumps(str(k))} = {_toml_value(x)}" for k, x in v.items()) + "}"
    return json.dumps(str(v))


LESSON_KEYS = ["title", "text", "order", "base", "locked", "hidden", "steps", "chart", "config", "question", "id",
               "seq_len", "cell", "compare"]


@FUZZ
@given(edits=st.lists(st.tuples(st.one_of(st.sampled_from(LESSON_KEYS), hostile_text), hostile_value), max_size=3),
       where=st.sampled_from(["top", "base", "step", "question", "replace"]), garbage=st.one_of(st.none(), hostile_text))
def test_lesson_files(tmp_path, edits, where, garbage):
    from rnn_core.lessons import LessonError, load_lesson, parse_lesson

    COUNTS["lesson files"] += 1
    files = sorted((ROOT / "lessons").glob("*.toml"))
    source = files[COUNTS["lesson files"] % len(files)]
    text = source.read_text()
    lines = [f"{json.dumps(str(k))} = {_toml_value(v)}" for k, v in edits]
    if where == "top":
        text = "\n".join(lines) + "\n" + text
    elif where == "replace":
        if edits:
            text = re.sub(r"(?m)^(\w+) = .*$", lambda m: f"{m.group(1)} = {_toml_value(edits[0][1])}", text,
                          count=1)
    else:
        header = {"base": "[base]", "step": "[[steps]]", "question": "[steps.question]"}[where]
        text = text.replace(header, header + "\n" + "\n".join(lines), 1)
    if garbage is not None:
        text += "\n" + garbage
    try:
        parse_lesson(text, source.stem)
    except LessonError as err:
        assert_one_line(str(err), 1500)
    path = tmp_path / f"{source.stem}.toml"
    path.write_bytes(text.encode("utf-8", "surrogatepass") + (b"\xff\xfe" if garbage == "" else b""))
    try:
        load_lesson(path)
    except LessonError as err:
        assert str(err).startswith(path.name) and "\n" not in str(err)


# --- run names ----------------------------------------------------------------------------------------------
run_names = st.one_of(hostile_text, st.from_regex(RUN_NAME, fullmatch=True), st.sampled_from(
    ["CON", "nul", "aux.txt", "a..b", "-x", ".x", "_rooms", "bystander", "bystander/", "a" * 100, "a" * 101]))


@FUZZ
@given(name=run_names, new=run_names)
def test_run_names(world, name, new):
    from dashboard.run_actions import delete_runs, rename_run

    COUNTS["run names"] += 1
    runs = world[1]
    problem = run_name_problem(name)
    if problem is None:
        path = store.run_dir(name)
        assert path.parent == runs and path.name == name and "/" not in name and "\0" not in name
        assert name not in (".", "..") and not name.startswith((".", "_", "-"))
        claimed, made = store.claim_run_dir(name)
        assert made.parent == runs and made.is_dir()
        made.rmdir()
    else:
        assert_one_line(problem, 400)
        with pytest.raises(RunStoreError):
            check_run_name(name)
    # a rename to a hostile name, or a delete of one, never touches the bystander
    said = rename_run("bystander", new)
    if said is None:  # a good new name: renamed inside the store; put it back for the check
        assert run_name_problem(new) is None and (runs / new / "config.json").is_file()
        assert rename_run(new, "bystander") is None
    else:
        assert_one_line(said, 400)
    if name != "bystander":
        deleted, problems = delete_runs([name])
        assert deleted == [] or (deleted == [name] and run_name_problem(name) is None)
    assert_untouched(world)


# --- imported zips --------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def good_zip(bystander, tmp_path_factory) -> bytes:
    from rnn_core.archive import export_run

    out = tmp_path_factory.mktemp("zip") / "good.zip"
    export_run(bystander, out)
    return out.read_bytes()


def _members(data: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        return {i.filename: zf.read(i) for i in zf.infolist()}


member_names = st.one_of(
    st.sampled_from(["config.json", "status.json", "metrics.csv", "model.safetensors", "checkpoint.json",
                     "checkpoint.safetensors", "arrays/timestep_grads.npy", "arrays/recorded_steps.npy", "arrays/",
                     "README.txt", "report.html", "arrays/x.npy", "arrays/timestep_grads.pkl"]),
    hostile_text.filter(lambda s: 0 < len(s) < 300),
    st.sampled_from(["../x", "../../x", "/abs", "/etc/passwd", "a/../../x", "arrays/../../x", "C:/x", "x\\y",
                     "config.json\x00../x", "./config.json", "config.json/", "ARRAYS/x.npy"]))
contents = st.one_of(st.binary(max_size=200), hostile_text.map(lambda s: s.encode("utf-8", "surrogatepass")),
                     st.sampled_from([b"{", b"[]", b'{"a": NaN}', b"\x93NUMPY", b"PK\x03\x04", b"\x00" * 64,
                                      json.dumps({"cell": "<b>x</b>", "seq_len": -5}).encode()]))
mutations = st.lists(st.tuples(st.sampled_from(["replace", "add", "drop", "rename", "symlink", "huge", "dir"]),
                               member_names, contents), min_size=1, max_size=3)


def _build(good: dict[str, bytes], muts) -> bytes:
    members = dict(good)
    flags: dict[str, str] = {}
    for kind, name, data in muts:
        if kind == "drop" and members:
            members.pop(sorted(members)[len(name) % len(members)])
        elif kind == "rename" and members:
            old = sorted(members)[len(name) % len(members)]
            members[name] = members.pop(old)
        elif kind == "replace" and members:
            members[sorted(members)[len(name) % len(members)]] = data
        else:
            members[name] = data
            if kind in ("symlink", "huge", "dir"):
                flags[name] = kind
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            info = zipfile.ZipInfo(name)
            info.compress_type = zipfile.ZIP_DEFLATED
            if flags.get(name) == "symlink":
                info.external_attr = 0o120777 << 16
            elif flags.get(name) == "dir":
                info.external_attr = (0o40755 << 16) | 0x10
            zf.writestr(info, data)
    raw = bytearray(buf.getvalue())
    for name, kind in flags.items():  # a central-directory entry that declares 4 GB uncompressed
        if kind != "huge":
            continue
        encoded = zipfile.ZipInfo(name).filename.encode("utf-8")
        pos = raw.find(b"PK\x01\x02")
        while pos != -1:
            n = struct.unpack_from("<H", raw, pos + 28)[0]
            if bytes(raw[pos + 46: pos + 46 + n]) == encoded:
                struct.pack_into("<I", raw, pos + 24, 0xFFFFFFF0)
            pos = raw.find(b"PK\x01\x02", pos + 4)
    return bytes(raw)


@FUZZ
@given(muts=mutations, name=st.one_of(st.none(), run_names))
def test_imported_zips(world, good_zip, muts, name):
    from rnn_core.archive import ArchiveError, import_run

    COUNTS["imported zips"] += 1
    tmp, runs, _ = world
    data = _build(_members(good_zip), muts)
    path = tmp / "upload.zip"
    path.write_bytes(data)
    before = set(runs.iterdir())
    try:
        made = import_run(path, name=name)
    except ArchiveError as err:
        assert_one_line(str(err), 800)
        assert set(runs.iterdir()) == before  # no run, no temporary directory left behind
    else:
        assert run_name_problem(made) is None and (runs / made).is_dir() and not (runs / made).is_symlink()
        assert all(not p.is_symlink() and p.resolve().is_relative_to((runs / made).resolve())
                   for p in (runs / made).rglob("*"))
        import shutil

        shutil.rmtree(runs / made)
    path.unlink()
    assert_untouched(world)


@FUZZ
@given(data=st.one_of(st.binary(max_size=400), st.just(b"PK\x05\x06" + bytes(18))), file_name=hostile_text)
def test_uploaded_bytes_that_are_not_zips(world, data, file_name):
    """The Runs page's import: any bytes under any file name give one line, never a run or a file."""
    from dashboard.run_actions import import_upload

    COUNTS["imported zips"] += 1
    before = set(world[1].iterdir())
    ok, text = import_upload(file_name, data)
    assert not ok
    assert_one_line(text, 800)
    assert set(world[1].iterdir()) == before
    assert_untouched(world)


# --- a few real pages with hostile links (AppTest) ---------------------------------------------------------------
# (page, the link's parameters, what the page must show of them, literally: as inline code)
HOSTILE_LINKS = [
    ("explore", {"cell": "![i](http://127.0.0.1:9/i.png)", "seq_len": "1e309", "<b>k</b>": "**x**", "lr": "nan",
                 "steps": "-5"},
     ["cell=![i](http://127.0.0.1:9/i.png)", "seq_len=1e309", "<b>k</b>", "lr=nan", "steps=-5"]),
    ("compare", {"a.cell": ":red[x] $y$", "cols": "99", "b.<script>": "1"}, ["a.cell=:red[x] $y$", "cols=99"]),
    ("compare", {"runs": "../x,/abs"}, ["../x", "/abs"]),
    ("explore", {"run": "../../etc/passwd", "room": "<img src=x>", "present": "[l](http://x)"},
     ["present=[l](http://x)"]),
    ("lessons", {"lesson": "<b>no</b>", "x": "$$"}, ["<b>no</b>", "x"]),
    ("lessons", {"lesson": "gru", "step": "-1e309"}, ["step=-1e309"]),
    ("theory", {"present": "<b>on</b>", "cell": "$x$"}, []),  # Theory reads no link: nothing to warn about
    ("class", {"room": "../../x", "key": "**k**"}, []),
    ("sweeps", {"grid": "[l](http://x)", "room": "\x00"}, []),  # Sweeps reads no link either
]


@pytest.mark.parametrize("page, params, literal", HOSTILE_LINKS, ids=[f"{p}-{i}" for i, (p, _, _) in enumerate(HOSTILE_LINKS)])
def test_pages_with_hostile_links_show_the_values_literally(world, page, params, literal):
    from streamlit.testing.v1 import AppTest

    from dashboard.safe import code

    COUNTS["AppTest pages"] += 1
    at = AppTest.from_file(APP, default_timeout=90)
    if page != "explore":
        at.run()
        at.switch_page(f"pages/{page}.py")
        for k in list(at.query_params):
            del at.query_params[k]
    for k, v in params.items():
        at.query_params[k] = v
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    bodies = [e.value for e in (*at.warning, *at.error, *at.info)]
    for body in bodies:  # the link's text only inside code spans (or escaped): nothing of it is markup
        rest = CODE_SPAN.sub("", body)
        for markup in ("<img", "<script", "<b>", "](http", ":red[", "$y$"):
            for m in re.finditer(re.escape(markup), rest):
                before = rest[: m.start()]
                assert (len(before) - len(before.rstrip("\\"))) % 2 == 1, (markup, body)  # escaped: shown as typed
    shown = " ".join(bodies)
    for text in literal:
        assert code(text) in shown, (text, shown[:800])
    assert_untouched(world)
