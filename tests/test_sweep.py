"""Sweeps: the spec, the local pool and Ray runners, resume, the CLI, the trainability map and the page."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from dashboard.map_figures import axis_order, cell_runs, cell_table, trainability_map


# --- the map builder ---------------------------------------------------------------------------
def _points() -> pd.DataFrame:
    """A 2 × 2 grid, 3 seeds, with one cell not run at all and one seed still waiting."""
    rows = []
    table = {  # (gain, T): verdicts of seeds 0, 1, 2
        (0.5, 10): ("solved", "solved", "stuck at baseline"),
        (1.0, 10): ("solved", "diverged", ""),  # seed 2 not run yet
        (0.5, 100): ("stuck at baseline",) * 3,
        (1.0, 100): ("", "", ""),  # nothing finished
    }
    for (gain, T), verdicts in table.items():
        for seed, v in enumerate(verdicts):
            done = bool(v)
            rows.append(dict(init_gain=gain, seq_len=T, seed=seed, verdict=v,
                             final_val_loss=(0.01 * (seed + 1) if v == "solved" else 0.2) if done else np.nan,
                             baseline=0.17 if done else np.nan, memory_horizon=T - seed if done else np.nan,
                             log10_ratio=-float(seed) if done else np.nan, run=f"s-{gain}-{T}-{seed}"))
    return pd.DataFrame(rows)


def test_map_cells_aggregate_seeds_and_leave_unfinished_blank():
    cells = cell_table(_points(), "init_gain", "seq_len", "verdict").set_index(["x_label", "y_label"])
    assert cells.loc[("0.5", "10"), "z"] == pytest.approx(2 / 3)
    assert cells.loc[("0.5", "10"), "text"] == "2/3"
    assert cells.loc[("1", "10"), "z"] == pytest.approx(1 / 2)  # the waiting seed does not count
    assert cells.loc[("1", "10"), "text"] == "1/2 ↯1 …"
    assert cells.loc[("0.5", "100"), "z"] == 0
    assert np.isnan(cells.loc[("1", "100"), "z"])
    horizon = cell_table(_points(), "init_gain", "seq_len", "memory_horizon").set_index(["x_label", "y_label"])
    assert horizon.loc[("0.5", "100"), "z"] == 99  # median of 100, 99, 98
    ratio = cell_table(_points(), "init_gain", "seq_len", "loss_ratio").set_index(["x_label", "y_label"])
    assert ratio.loc[("0.5", "10"), "z"] == pytest.approx(0.02 / 0.17)  # median of 0.01, 0.02, 0.2 over 0.17


def test_map_figure_hover_carries_every_seed_and_blank_cells():
    fig = trainability_map(_points(), "init_gain", "seq_len", "verdict")
    heat, marks = fig.data
    assert list(heat.x) == ["0.5", "1"] and list(heat.y) == ["10", "100"]
    z = np.array(heat.z, dtype=float)
    assert z[0, 0] == pytest.approx(2 / 3) and np.isnan(z[1, 1])  # (gain 1, T 100) has no finished seed
    hover = dict(zip(zip(marks.x, marks.y), marks.hovertext))
    for seed in range(3):
        assert f"seed {seed}: " in hover[("0.5", "10")]
    assert "seed 2: not run yet" in hover[("1", "10")]
    runs = dict(zip(zip(marks.x, marks.y), marks.customdata))
    assert runs[("1", "100")] == "s-1.0-100-0,s-1.0-100-1,s-1.0-100-2"
    for value in ("loss_ratio", "memory_horizon", "log10_ratio"):
        assert len(trainability_map(_points(), "init_gain", "seq_len", value).data) == 2
    with pytest.raises(ValueError, match="not one of"):
        trainability_map(_points(), "init_gain", "seq_len", "nonsense")


def test_map_axes_sorted_numerically_and_cell_runs():
    pts = _points()
    assert axis_order(pd.Series([100, 10, 20])) == ["10", "20", "100"]
    assert axis_order(pd.Series(["rnn", "lstm", "rnn"])) == ["rnn", "lstm"]
    assert list(cell_runs(pts, "init_gain", "seq_len", "0.5", "10")["run"]) == ["s-0.5-10-0", "s-0.5-10-1",
                                                                                 "s-0.5-10-2"]


def test_map_builds_at_1000_points():
    rng = np.random.default_rng(0)
    gains, lengths, seeds = np.linspace(0.5, 2.0, 16), [10, 20, 30, 50, 70, 100, 140, 200, 280, 330, 360, 400,
                                                       420, 450, 480, 500, 520, 540, 560, 580, 600], range(3)
    g, t, s = (a.ravel() for a in np.meshgrid(gains, lengths, list(seeds), indexing="ij"))
    n = len(g)
    assert n >= 1000
    pts = pd.DataFrame(dict(init_gain=g, seq_len=t, seed=s,
                            verdict=rng.choice(["solved", "stuck at baseline", "diverged", ""], n),
                            final_val_loss=rng.random(n), baseline=0.17, memory_horizon=rng.integers(1, 100, n),
                            log10_ratio=-10 * rng.random(n), run=[f"r{k}" for k in range(n)]))
    fig = trainability_map(pts, "init_gain", "seq_len", "log10_ratio")
    assert np.array(fig.data[0].z, dtype=float).shape == (len(lengths), len(gains))
    assert len(fig.data[1].x) == len(gains) * len(lengths)


# --- the spec ------------------------------------------------------------------------------------
import json  # noqa: E402
import math  # noqa: E402

from rnn_core import cli, store  # noqa: E402
from rnn_core.sweep import (CSV, INTERRUPTED, Sweep, SweepError, default_workers, local_service,  # noqa: E402
                            profile_numbers, run_local, run_name)
from rnn_core.sweep_spec import MAX_RUNS, SpecError, parse_spec  # noqa: E402

TINY = """
seeds = [0, 1]
[base]
task = "adding"
steps = 6
hidden_size = 4
batch_size = 4
eval_every = 3
record_every = 2
[grid]
init_gain = [0.5, 1.0]
seq_len = [5, 8]
"""


def test_spec_points_in_grid_order_with_each_seed():
    spec = parse_spec(TINY)
    runs = spec.runs()
    assert spec.keys == ["init_gain", "seq_len"] and spec.size == 8 == len(runs)
    assert [(r.point, r.values["init_gain"], r.values["seq_len"], r.seed) for r in runs[:3]] == [
        (0, 0.5, 5, 0), (0, 0.5, 5, 1), (1, 0.5, 8, 0)]
    assert runs[-1].cfg.init_gain == 1.0 and runs[-1].cfg.seq_len == 8 and runs[-1].cfg.seed == 1
    assert runs[-1].cfg.steps == 6 and runs[-1].cfg.task == "adding"
    assert parse_spec(spec.to_toml()) == spec  # saved beside sweep.csv and compared on a rerun


@pytest.mark.parametrize("text, says", [
    ("seeds = [0\n", "not valid TOML"),
    ("[grids]\nseq_len = [5]\n", "unknown table or key 'grids'"),
    ("[base]\ncell = 'rnn'\n", "needs a [grid] table"),
    ("[grid]\nseq_len = [5]\nlr = [0.1]\nhidden_size = [2]\nlayers = [1]\n", "at most 3"),
    ("[grid]\nseq_len = []\n", "non-empty list"),
    ("[grid]\nseq_len = 5\n", "non-empty list"),
    ("[grid]\nseq_len = [5, 5]\n", "twice"),
    ("[grid]\nsequence_length = [5]\n", "not a config key"),
    ("[grid]\nseed = [1, 2]\n", "seeds = [...]"),
    ("[base]\nseq_len = 5\n[grid]\nseq_len = [5]\n", "both in [base] and in [grid]"),
    ("seeds = []\n[grid]\nseq_len = [5]\n", "seeds must be a list"),
    ("seeds = [1.5]\n[grid]\nseq_len = [5]\n", "seeds must be a list"),
    ("[grid]\nseq_len = [5, 3000]\ncell = ['rnn']\n", "point seq_len=3000 cell=rnn is not a valid config: seq_len"),
    ("[base]\ncell = 'gru'\n[grid]\nforget_bias = [0.0, 2.0]\n", "point forget_bias=0.0"),
    (f"seeds = {list(range(100))}\n[grid]\nseq_len = {list(range(2, 102))}\nlr = [0.1, 0.2]\n", f"at most {MAX_RUNS:,}"),
])
def test_bad_spec_gets_one_line(text, says):
    with pytest.raises(SpecError) as err:
        parse_spec(text)
    assert says in str(err.value) and "\n" not in str(err.value)


def test_profile_numbers_against_the_linear_law():
    # a linear RNN with W = γ·Q has ‖∂L/∂h_t‖ = γ^(T−1−t)·‖∂L/∂h_{T−1}‖ exactly: the ratio is (T−1)·log10 γ, and
    # the horizon is the first k with γ^k < 1e-3, i.e. k = floor(3 / −log10 γ) + 1
    T, gamma = 40, 0.7
    g = gamma ** (T - 1 - np.arange(T))
    grads = np.stack([np.full((1, T), np.nan)[0], g])[:, None, :]  # a NaN row first: the last finite row counts
    horizon, ratio = profile_numbers(grads)
    assert ratio == pytest.approx((T - 1) * math.log10(gamma))
    assert horizon == math.floor(3 / -math.log10(gamma)) + 1
    assert profile_numbers(np.zeros((0, 1, T))) == (None, None)


def test_default_workers_one_per_core_or_the_gpu():
    assert default_workers("auto", cpus=2, gpus=0) == 2
    assert default_workers("cpu", cpus=16, gpus=1) == 16
    assert default_workers("auto", cpus=16, gpus=1) == 2
    assert default_workers("cuda", cpus=1, gpus=4) == 1


# --- running ------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def local_sweep(tmp_path_factory):
    """The tiny sweep through a local pool of 2 worker processes; then its run p0001-s1 deleted and
    p0002-s0 marked as killed mid-run, and the sweep run again through the same pool."""
    root = tmp_path_factory.mktemp("local")
    service = local_service(2)
    try:
        sweep = Sweep.create(parse_spec(TINY), root / "tiny")
        seen = []
        counts = run_local(sweep, service=service, on_row=seen.append)
        first = sweep.frame()
        mtimes = {t.name: (t.run_dir / "status.json").stat().st_mtime_ns for t in sweep.tasks}
        store.atomic_write_json(root / "tiny-p0002-s0" / "status.json",
                                {**json.loads((root / "tiny-p0002-s0" / "status.json").read_text()), "status": "running"})
        import shutil
        shutil.rmtree(root / "tiny-p0001-s1")
        again = Sweep.create(parse_spec(TINY), root / "tiny")
        before = again.frame().set_index("run")["status"].to_dict()
        redone = []
        run_local(again, service=service, on_row=redone.append)
    finally:
        service.shutdown()
    return dict(root=root, counts=counts, seen=seen, first=first, mtimes=mtimes, before=before, redone=redone,
                again=again)


def test_local_sweep_rows_match_the_saved_runs(local_sweep):
    root, first = local_sweep["root"], local_sweep["again"].frame()  # after the rerun: what is on disk now
    assert local_sweep["counts"] == {"runs": 8, "done": 8, "failed": 0} and len(local_sweep["seen"]) == 8
    assert list(first.columns[:3]) == ["init_gain", "seq_len", "seed"]
    for row in first.to_dict("records"):
        run = store.load_run(root / row["run"])  # an ordinary saved run beside the sweep dir
        s = run.status
        assert row["status"] == s["status"] == "finished"
        assert row["final_val_loss"] == s["final_val_loss"] and row["baseline"] == s["val_baseline"]
        assert row["verdict"] in ("solved", "stuck at baseline", "still learning", "diverged")
        assert run.config["init_gain"] == row["init_gain"] and run.config["seq_len"] == row["seq_len"]
        assert run.config["seed"] == row["seed"]
        assert row["ms_per_step"] == pytest.approx(float(run.metrics["step_time_ms"].median()))
        horizon, ratio = profile_numbers(run.arrays["timestep_grads"])
        assert row["memory_horizon"] == horizon and row["log10_ratio"] == pytest.approx(ratio)
    on_disk = pd.read_csv(root / "tiny" / CSV)
    assert list(on_disk["run"]) == list(first["run"])
    assert np.allclose(on_disk["final_val_loss"], first["final_val_loss"], rtol=0, atol=0)
    assert run_name("tiny", 3, 1) == "tiny-p0003-s1" and (root / "tiny-p0003-s1" / "config.json").is_file()


def test_resume_skips_finished_runs_and_redoes_interrupted_ones(local_sweep):
    before, redone, root = local_sweep["before"], local_sweep["redone"], local_sweep["root"]
    assert before["tiny-p0002-s0"] == INTERRUPTED and before["tiny-p0001-s1"] == "pending"
    assert sorted(r["run"] for r in redone) == ["tiny-p0001-s1", "tiny-p0002-s0"]
    for name, mtime in local_sweep["mtimes"].items():
        if name not in ("tiny-p0001-s1", "tiny-p0002-s0"):
            assert (root / name / "status.json").stat().st_mtime_ns == mtime  # untouched
    final = local_sweep["again"].frame()
    assert (final["status"] == "finished").all()
    # trained again from step 0: the same results as the first, uninterrupted time
    assert list(final["final_val_loss"]) == list(local_sweep["first"]["final_val_loss"])


def test_a_different_spec_in_the_same_dir_is_refused(local_sweep):
    with pytest.raises(SweepError, match="different sweep"):
        Sweep.create(parse_spec(TINY.replace("steps = 6", "steps = 7")), local_sweep["root"] / "tiny")


# --- the command line -------------------------------------------------------------------------------
def test_cli_bad_input_one_line_and_nothing_written(tmp_path, capsys):
    spec = tmp_path / "bad.toml"
    spec.write_text("[grid]\nseq_len = [5, 3000]\n")
    assert cli.main(["sweep", str(spec), "--out", str(tmp_path / "s")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: point seq_len=3000") and "\n" not in err
    assert not (tmp_path / "s").exists()
    assert cli.main(["sweep", str(tmp_path / "missing.toml"), "--out", str(tmp_path / "s")]) == 2
    assert "cannot read the spec" in capsys.readouterr().err
    spec.write_text(TINY)
    assert cli.main(["sweep", str(spec), "--out", str(tmp_path / "bad name!")]) == 2
    assert "sweep directory name" in capsys.readouterr().err
    assert cli.main(["sweep", str(spec), "--out", str(tmp_path / "s"), "--workers", "0"]) == 2
    assert "--workers 0" in capsys.readouterr().err
    big = tmp_path / "big.toml"
    big.write_text("[base]\ncell = 'lstm'\nhidden_size = 512\nlayers = 4\n[grid]\nseq_len = [2000]\n")
    assert cli.main(["sweep", str(big), "--out", str(tmp_path / "s")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: point seq_len=2000: ") and "this server allows" in err and "--no-limits" in err
    assert not (tmp_path / "s").exists()


def test_cli_reruns_a_finished_sweep_without_training(local_sweep, tmp_path, capsys):
    spec = tmp_path / "tiny.toml"
    spec.write_text(TINY)
    assert cli.main(["sweep", str(spec), "--out", str(local_sweep["root"] / "tiny"), "--quiet"]) == 0
    assert "8 of 8 runs done on this machine" in capsys.readouterr().out


# --- Ray ------------------------------------------------------------------------------------------------
def test_ray_gives_the_same_results_as_the_local_pool(local_ray, local_sweep, tmp_path):
    from rnn_core.sweep import run_ray

    sweep = Sweep.create(parse_spec(TINY), tmp_path / "tiny")
    counts = run_ray(sweep, address=None)
    assert counts == {"runs": 8, "done": 8, "failed": 0}
    ray_rows, local_rows = sweep.frame(), local_sweep["first"]
    for col in ("run", "status", "verdict", "final_val_loss", "baseline", "memory_horizon", "log10_ratio"):
        assert list(ray_rows[col]) == list(local_rows[col]), col  # to the last digit
    assert store.load_run(tmp_path / "tiny-p0003-s1").status["status"] == "finished"


# --- the Sweeps page under AppTest -----------------------------------------------------------------
import re  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

from streamlit.testing.v1 import AppTest  # noqa: E402

from dashboard.sweeps_form import NONE, parse_seeds, parse_values, spec_from_form  # noqa: E402

APP = str(Path(__file__).resolve().parents[1] / "streamlit_app.py")


def test_form_values_and_base():
    assert parse_values("0.5, 1, two, true,") == [0.5, 1, "two", True]
    assert parse_seeds("0-3") == [0, 1, 2, 3] and parse_seeds("4, 7") == [4, 7]
    spec = spec_from_form({"cell": "lstm", "seq_len": 99, "seed": 5, "forget_bias": 1.0},
                          [("seq_len", "10, 20"), (NONE, ""), ("hidden_size", "4")], "0, 1")
    assert spec.grid == {"seq_len": [10, 20], "hidden_size": [4]} and spec.seeds == (0, 1)
    assert spec.base == {"cell": "lstm"}  # seq_len is on the grid, the seed in seeds, forget_bias at its default
    with pytest.raises(SpecError, match="chosen twice"):
        spec_from_form({}, [("seq_len", "10"), ("seq_len", "20")], "0")
    with pytest.raises(SpecError, match="choose 1 to 3"):
        spec_from_form({}, [(NONE, "")], "0")


def texts(elements) -> str:
    return " ".join(re.sub(r"\\(.)", r"\1", e.value) for e in elements)


def sweeps_app() -> AppTest:
    at = AppTest.from_file(APP, default_timeout=60).run()
    return at.switch_page("pages/sweeps.py").run()


def fill(at: AppTest, rows, seeds="0", name="t-sweep") -> AppTest:
    for i, (key, values) in enumerate(rows):
        at.selectbox(key=f"sweep_key_{i}").set_value(key)
        at.text_input(key=f"sweep_values_{i}").input(values)
    at.text_input(key="sweep_seeds").input(seeds)
    at.text_input(key="sweep_name").input(name)
    at.button[[b.label for b in at.button].index("Start sweep")].click()
    return at.run()


def test_page_runs_a_tiny_sweep_and_draws_its_map():
    at = sweeps_app()
    assert not at.exception
    at = fill(at, [("steps", "3"), ("seq_len", "5, 6"), ("hidden_size", "2")], name="page-sweep")
    assert not at.exception and not at.error, texts(at.error)
    assert "Started the sweep page-sweep: 2 runs." in texts(at.success)
    from dashboard.sweeps import background

    assert background()["page-sweep"].join(timeout=120)
    at.run()
    assert not at.exception and not at.error
    assert "2 of 2 runs done · not running" in texts(at.caption)
    assert len(at.get("plotly_chart")) == 1
    csv = pd.read_csv(store.runs_root() / "page-sweep" / CSV)
    assert list(csv["status"]) == ["finished", "finished"] and list(csv["run"]) == ["page-sweep-p0000-s0",
                                                                                    "page-sweep-p0001-s0"]
    # a click on the cell (steps 3, seq_len 6) lists its run with a link that opens it in Explore
    at.session_state["sweep_map_page-sweep"] = {"selection": {"points": [{"x": "3", "y": "6"}], "point_indices": [1],
                                                              "box": [], "lasso": []}}
    at.run()
    assert not at.exception
    assert "(/?run=page-sweep-p0001-s0)" in " ".join(m.value for m in at.markdown)


def test_page_opens_a_saved_sweep_and_continues_it():
    Sweep.create(parse_spec(TINY), store.runs_root() / "saved-sweep")  # planned, nothing run
    at = sweeps_app()
    at.selectbox(key="sweep_open_pick").set_value("saved-sweep")
    at.button(key="sweep_open").click()
    at.run()
    assert not at.exception and not at.error
    assert "0 of 8 runs done · not running" in texts(at.caption)
    assert len(at.get("plotly_chart")) == 1  # every cell blank until a run ends
    assert any(b.label == "Continue" for b in at.button)


def test_page_bad_input_one_line():
    at = sweeps_app()
    at = fill(at, [("seq_len", "5, 9999"), (NONE, ""), (NONE, "")])
    assert not at.exception
    assert texts(at.error).startswith("point seq_len=9999 is not a valid config: seq_len=9999 is invalid")
    at = fill(at, [("seq_len", "5")], seeds="zero")
    assert "seeds must be a list" in texts(at.error)
    at = fill(at, [("seq_len", "5")], name="../escape")
    assert "is not allowed" in texts(at.error)
    assert not (store.runs_root() / "t-sweep").exists()
