"""Export and import of runs: a byte-equal round trip that resumes, an offline HTML report, and
hostile archives that are each refused with one line, leaving the run store as it was."""
from __future__ import annotations

import hashlib
import io
import json
import re
import shutil
import stat
import zipfile
from pathlib import Path

import numpy as np
import pytest

from rnn_core import archive, store
from rnn_core.archive import ArchiveError, array_table, export_run, import_run
from rnn_core.cli import main
from rnn_core.config import make_config
from rnn_core.records import ARRAY
from rnn_core.trainer import Trainer

TINY = dict(steps=20, hidden_size=8, seq_len=10, record_every=1)


def _train(out: Path, **kw) -> Path:
    Trainer(make_config({**TINY, **kw}), out_dir=out).run()
    return out


@pytest.fixture(scope="module")
def source(tmp_path_factory) -> Path:
    """One small run outside every test's store, exported once to demo.zip beside it."""
    return _train(tmp_path_factory.mktemp("src") / "demo")


@pytest.fixture(scope="module")
def demo_zip(source) -> Path:
    from dashboard.report import html_report

    return export_run(source, source.parent / "demo.zip", report=html_report)


def _files(d: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(d.iterdir())}


def _snapshot(root: Path) -> dict[str, str]:
    """Every path under the runs root with a hash of its bytes: what an import must not change when it fails."""
    if not root.exists():
        return {}
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else "dir"
            for p in sorted(root.rglob("*"))}


def _members(zip_path: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(zip_path) as zf:
        return {i.filename: zf.read(i) for i in zf.infolist()}


def _write(path: Path, members: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return path


def _npy(a: np.ndarray, pickle: bool = False) -> bytes:
    buf = io.BytesIO()
    np.save(buf, a, allow_pickle=pickle)
    return buf.getvalue()


# --- round trip ---------------------------------------------------------------------------------
def test_export_holds_every_file_and_a_table_per_array(source, demo_zip):
    names = set(_members(demo_zip))
    arrays = sorted(p.stem for p in source.glob("*.npy"))
    assert {"config.json", "status.json", "metrics.csv", "model.safetensors", "checkpoint.safetensors",
            "checkpoint.json", "README.txt", "report.html"} <= names
    assert {f"arrays/{a}.{ext}" for a in arrays for ext in ("npy", "csv")} <= names
    assert all("/" not in n or n.startswith("arrays/") for n in names)
    assert not list(demo_zip.parent.glob(".*.tmp"))  # the temporary file was renamed into place


def test_round_trip_is_byte_equal(source, demo_zip):
    name = import_run(demo_zip)
    assert name == "demo"  # from the zip's file name: no file of a run holds its name
    assert _files(store.run_dir(name)) == _files(source)
    assert store.list_runs() == ["demo"]
    assert not [p for p in store.runs_root().iterdir() if p.name.startswith(".")]  # no temporary directory left


def test_imported_run_resumes_and_trains_on(demo_zip):
    name = import_run(demo_zip)
    trainer = Trainer.resume(store.run_dir(name), steps=25)
    assert trainer.step_index == 20
    trainer.run()
    assert trainer.summary()["status"] == "finished" and trainer.step_index == 25
    assert len(store.load_run(store.run_dir(name)).metrics) == 25


def test_multilayer_lstm_with_attention_round_trips(tmp_path):
    src = _train(tmp_path / "big", cell="lstm", layers=2, bidirectional=True, attention="dot", task="copy", seq_len=25)
    name = import_run(export_run(src, tmp_path / "big.zip"), name="copy-lstm")
    assert name == "copy-lstm"
    assert _files(store.run_dir(name)) == _files(src)


def test_taken_name_gets_a_new_one(demo_zip):
    assert [import_run(demo_zip) for _ in range(3)] == ["demo", "demo-2", "demo-3"]
    assert import_run(demo_zip, name="demo") == "demo-4"
    assert import_run(demo_zip, name="mine") == "mine"
    assert archive.name_from_file(Path("my run (1).zip")) == "my-run-1"
    assert archive.name_from_file(Path("...zip")) == "imported"


def test_array_table_rows_are_the_array(source):
    """Oracle: every row of the .csv table is one slice of the .npy array, at its index columns."""
    a = np.load(source / "timestep_grads.npy")  # (N, LD, T)
    steps = np.load(source / "recorded_steps.npy")
    table = array_table("timestep_grads", a, steps)
    T = a.shape[-1]
    assert list(table.columns) == ["recorded_step", "layer_direction"] + [f"t{j}" for j in range(T)]
    assert len(table) == a.shape[0] * a.shape[1]
    for _, row in table.iterrows():
        k = int(np.flatnonzero(steps == row["recorded_step"])[0])
        np.testing.assert_array_equal(row[[f"t{j}" for j in range(T)]].to_numpy(float), a[k, int(row["layer_direction"])])
    g = np.arange(2 * 3 * 4 * 5, dtype=np.float32).reshape(2, 3, 4, 5)  # (N, LD, G, T)
    t = array_table("gate_mean", g)
    assert list(t.columns[:3]) == ["recorded_step", "layer_direction", "gate"]
    np.testing.assert_array_equal(t.iloc[:, 3:].to_numpy(), g.reshape(-1, 5))


def test_an_incompressible_export_member_is_stored(tmp_path):
    """A large all-NaN array would deflate past MAX_RATIO: export stores it, so its own archives import."""
    out = tmp_path / "x.zip"
    archive._write_zip(out, [("report.html", b"\0" * (archive.RATIO_FLOOR + 10))])
    info = zipfile.ZipFile(out).getinfo("report.html")
    assert info.compress_type == zipfile.ZIP_STORED and not archive._too_compressed(info)


# --- the report ---------------------------------------------------------------------------------
def _without_plotly_js(page: str) -> str:
    start = page.index("<script>/**\n* plotly.js")
    return page[:start] + page[page.index("</script>", start):]


def test_report_is_self_contained(source):
    from dashboard.report import chart_list, html_report
    from dashboard.run_figures import build_figures
    from rnn_core.view import RunView

    page = html_report(source)
    assert page.count("* plotly.js v") == 1  # embedded once, by the first chart
    rest = _without_plotly_js(page)
    assert not re.search(r"https?://", rest)
    assert not re.search(r"<script[^>]*\ssrc\s*=", page) and not re.search(r"<link\b", page)
    view = RunView.from_disk(source)
    for name in build_figures(view):
        assert f'id="chart-{name}"' in page
    assert len(re.findall(r'class="plotly-graph-div"', page)) == len(chart_list(view))


def test_report_draws_each_layer_direction(tmp_path):
    from dashboard.report import html_report

    page = html_report(_train(tmp_path / "deep", layers=2, bidirectional=True, cell="gru"))
    for k in range(4):
        assert f'id="chart-heatmap-{k}"' in page and f'id="chart-gates-{k}"' in page


def test_report_escapes_what_the_run_says(source, tmp_path):
    from dashboard.report import html_report

    evil = '<img src=x onerror="alert(1)">&'
    d = tmp_path / evil
    shutil.copytree(source, d)
    status = json.loads((d / "status.json").read_text())
    status.update(reason="</table><script>alert(2)</script>", baseline_name="<b>bold</b>")
    (d / "status.json").write_text(json.dumps(status))
    page = html_report(d)
    rest = _without_plotly_js(page)
    assert "<img" not in rest and "<script>alert" not in rest and "<b>bold" not in rest
    assert "&lt;img src=x onerror=&quot;alert(1)&quot;&gt;&amp;" in page
    assert "&lt;/table&gt;&lt;script&gt;alert(2)&lt;/script&gt;" in page


def test_report_lists_changed_config_keys_first(tmp_path):
    from dashboard.report import html_report

    page = html_report(_train(tmp_path / "r", cell="gru", lr=0.01))
    changed = page[page.index("Changed from the defaults"):page.index("Every key")]
    assert "<th>cell</th><td>gru</td><td>rnn</td>" in changed and "<th>lr</th>" in changed
    assert "<th>optimizer</th>" not in changed and "<th>optimizer</th>" in page


# --- hostile archives ---------------------------------------------------------------------------
def _refused(zip_path: Path, match: str, **kw) -> str:
    """Import must fail with one line matching `match` and leave the store exactly as it was."""
    before = _snapshot(store.runs_root())
    with pytest.raises(ArchiveError, match=match) as err:
        import_run(zip_path, **kw)
    assert "\n" not in str(err.value)
    assert _snapshot(store.runs_root()) == before
    return str(err.value)


@pytest.fixture
def store_with_a_run(demo_zip) -> None:
    """A store that already holds a run: a failed import must change nothing in it."""
    import_run(demo_zip, name="keep")


def _edited(demo_zip: Path, tmp_path: Path, replace: dict[str, bytes] | None = None, drop: tuple = ()) -> Path:
    """The demo archive with some members replaced (or added) and some dropped."""
    m = {k: v for k, v in _members(demo_zip).items() if k not in drop}
    m.update(replace or {})
    return _write(tmp_path / "hostile.zip", m)


@pytest.mark.parametrize("name, match", [
    ("../x", r"climbs out"), ("arrays/../../x.npy", r"climbs out"), ("/etc/passwd", "absolute path"),
    ("C:/x/config.json", "absolute path"), ("arrays\\timestep_grads.npy", "backslash"),
    ("evil.sh", "unexpected member"), ("arrays/evil.npy", "not a recorded array"), ("sub/", "unexpected member"),
])
def test_member_names_that_could_escape_are_refused(demo_zip, tmp_path, store_with_a_run, name, match):
    m = _members(demo_zip)
    m[name] = b"x"
    _refused(_write(tmp_path / "hostile.zip", m), match)


def test_a_symlink_member_is_refused(demo_zip, tmp_path, store_with_a_run):
    path = tmp_path / "link.zip"
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in _members(demo_zip).items():
            if name != "metrics.csv":
                zf.writestr(name, data)
        link = zipfile.ZipInfo("metrics.csv")
        link.external_attr = (stat.S_IFLNK | 0o777) << 16
        zf.writestr(link, "/etc/passwd")
    _refused(path, "symbolic link")


def test_a_duplicate_member_is_refused(demo_zip, tmp_path, store_with_a_run):
    path = tmp_path / "dup.zip"
    with pytest.warns(UserWarning, match="Duplicate name"), zipfile.ZipFile(path, "w") as zf:
        for name, data in _members(demo_zip).items():
            zf.writestr(name, data)
        zf.writestr("config.json", b"{}")
    _refused(path, "appears twice")


def test_a_zip_bomb_is_refused_before_extracting(demo_zip, tmp_path, store_with_a_run):
    m = _members(demo_zip)
    m["report.html"] = b"\0" * (20 * 2**20)  # deflates ~1000-fold
    _refused(_write(tmp_path / "bomb.zip", m), r"expands \d+-fold")


def test_a_declared_size_over_the_limit_is_refused(demo_zip, tmp_path, store_with_a_run):
    """The central directory claims 4 GiB for one member: refused from the header alone."""
    data = bytearray(demo_zip.read_bytes())
    entry = data.index(b"PK\x01\x02")  # the first central-directory entry
    data[entry + 24:entry + 28] = (0xFFFFFFFE).to_bytes(4, "little")  # its uncompressed size
    path = tmp_path / "huge.zip"
    path.write_bytes(bytes(data))
    _refused(path, "unpacks to over")


def test_too_many_members_are_refused(demo_zip, tmp_path, store_with_a_run):
    m = _members(demo_zip)
    m.update({f"arrays/pad{k}.csv": b"" for k in range(archive.MAX_MEMBERS)})
    _refused(_write(tmp_path / "many.zip", m), f"at most {archive.MAX_MEMBERS}")


def test_a_truncated_zip_is_refused(demo_zip, tmp_path, store_with_a_run):
    path = tmp_path / "cut.zip"
    path.write_bytes(demo_zip.read_bytes()[: demo_zip.stat().st_size // 2])
    _refused(path, "not a readable zip archive")
    (tmp_path / "text.zip").write_text("hello")
    _refused(tmp_path / "text.zip", "not a readable zip archive")


def test_a_corrupt_member_is_refused(demo_zip, tmp_path, store_with_a_run):
    """A flipped byte inside config.json's compressed data: the CRC check refuses it."""
    data = bytearray(demo_zip.read_bytes())
    with zipfile.ZipFile(demo_zip) as zf:
        info = zf.getinfo("config.json")
    start = info.header_offset + 30 + len(info.filename.encode()) + len(info.extra)
    data[start + 5] ^= 0xFF
    path = tmp_path / "crc.zip"
    path.write_bytes(bytes(data))
    _refused(path, "not a readable zip archive")


def test_a_pickled_array_is_refused(demo_zip, tmp_path, store_with_a_run):
    evil = _npy(np.array([{"__reduce__": "os.system"}], dtype=object), pickle=True)
    _refused(_edited(demo_zip, tmp_path, {"arrays/timestep_grads.npy": evil}), "pickled")


@pytest.mark.parametrize("config, match", [
    (b"{not json", "config.json is not valid JSON"),
    (b"[1, 2]", "must hold a JSON object"),
    (json.dumps({"cell": "transformer"}).encode(), "not a config this version accepts.*cell"),
    (json.dumps({"hidden_size": 8, "bogus": 1}).encode(), "unknown key"),
])
def test_a_bad_config_is_refused(demo_zip, tmp_path, store_with_a_run, config, match):
    _refused(_edited(demo_zip, tmp_path, {"config.json": config}), match)


def test_a_config_that_does_not_fit_the_files_is_refused(demo_zip, tmp_path, store_with_a_run):
    """A valid config for a bigger model: the arrays' shapes (seq_len) and the weights no longer fit."""
    cfg = json.loads(_members(demo_zip)["config.json"])
    _refused(_edited(demo_zip, tmp_path, {"config.json": json.dumps({**cfg, "seq_len": 12}).encode()}),
             r"\w+\.npy has shape \(20, 1, 10\); allowed: \(recorded steps, LD=1, T=12\)")
    _refused(_edited(demo_zip, tmp_path, {"config.json": json.dumps({**cfg, "hidden_size": 9}).encode()}),
             r"model.safetensors: tensor .* has shape")


def test_a_wrong_array_is_refused(demo_zip, tmp_path, store_with_a_run):
    grads = np.load(io.BytesIO(_members(demo_zip)["arrays/timestep_grads.npy"]))
    _refused(_edited(demo_zip, tmp_path, {"arrays/timestep_grads.npy": _npy(grads[:, :, :9])}), "has shape")
    _refused(_edited(demo_zip, tmp_path, {"arrays/timestep_grads.npy": _npy(grads[:5])}), "recorded steps")
    _refused(_edited(demo_zip, tmp_path, {"arrays/timestep_grads.npy": _npy(grads.astype(np.float32))}), "dtype")
    _refused(_edited(demo_zip, tmp_path, {"arrays/cell_grads.npy": _npy(grads)}), "not recorded by this config")
    _refused(_edited(demo_zip, tmp_path, {"arrays/timestep_grads.npy": b"not an array"}), "not a readable .npy")


def test_bad_metrics_status_and_weights_are_refused(demo_zip, tmp_path, store_with_a_run):
    m = _members(demo_zip)
    csv = m["metrics.csv"].decode()
    _refused(_edited(demo_zip, tmp_path, {"metrics.csv": csv.replace("val_loss", "v", 1).encode()}), "lacks the columns")
    _refused(_edited(demo_zip, tmp_path, {"metrics.csv": csv.replace("\n1,", "\nabc,", 1).encode()}), "non-numeric")
    _refused(_edited(demo_zip, tmp_path, {"status.json": b'{"status": "hacked"}'}), "is not one of")
    _refused(_edited(demo_zip, tmp_path, drop=("status.json",)), "no status.json")
    _refused(_edited(demo_zip, tmp_path, {"model.safetensors": b"\x08\x00\x00\x00\x00\x00\x00\x00{}garbage"}),
             "not a readable safetensors")
    _refused(_edited(demo_zip, tmp_path, drop=("checkpoint.safetensors",)), "come as a pair")
    ckpt = json.loads(m["checkpoint.json"])
    ckpt["state"]["extra"] = {"__tensor__": "state.nowhere"}
    _refused(_edited(demo_zip, tmp_path, {"checkpoint.json": json.dumps(ckpt).encode()}), "disagree on tensor")


def test_a_failed_import_into_a_new_root_leaves_no_root(demo_zip, tmp_path):
    root = tmp_path / "fresh"
    m = _members(demo_zip)
    m["../x"] = b""
    with pytest.raises(ArchiveError):
        import_run(_write(tmp_path / "h.zip", m), root=root)
    assert not root.exists() and not (tmp_path / "x").exists()


# --- command line -------------------------------------------------------------------------------
def test_cli_export_and_import(source, tmp_path, capsys):
    shutil.copytree(source, store.run_dir("cli-run"))
    out = tmp_path / "cli.zip"
    assert main(["export", "cli-run", "--out", str(out)]) == 0
    assert "report.html" in _members(out)
    capsys.readouterr()
    assert main(["import", str(out), "--name", "copy"]) == 0
    assert capsys.readouterr().out == "copy\n"
    assert _files(store.run_dir("copy")) == _files(source)
    assert main(["export", str(store.run_dir("copy")), "--out", str(tmp_path / "by-path.zip")]) == 0  # a directory


@pytest.mark.parametrize("argv, match", [
    (["import", "missing.zip"], "missing.zip is not a file"),
    (["import", "x.zip", "--name", "../up"], "run name .* is not allowed"),
    (["export", "no-such-run", "--out", "x.zip"], "no run named 'no-such-run'"),
])
def test_cli_errors_are_one_line(argv, match, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and re.search(match, err)


def test_cli_refuses_a_hostile_archive_in_one_line(demo_zip, tmp_path, capsys):
    m = _members(demo_zip)
    m["/abs"] = b""
    assert main(["import", str(_write(tmp_path / "h.zip", m))]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: h.zip: member '/abs' has an absolute path") and err.count("\n") == 1
    assert store.list_runs() == []


def test_registry_dims_all_have_a_table_layout():
    """Every dim letter of the registry has a column name: a new array cannot break export."""
    for rec in ARRAY.values():
        assert all(d in archive.INDEX_COLUMN for d in rec.dims[:-1])
        assert not rec.dims or rec.dims[-1] in archive.VALUE_PREFIX
