"""Faults: a CLI run killed with SIGKILL at any moment, a server killed while 4 runs train, two
servers or CLIs sharing one runs folder.

The kills are deterministic where they can be: the child process kills itself at its N-th file
write of the run store (N seeded-random), at one of three moments of that write (half of the
temporary file written, the temporary file whole but not renamed in, just after the rename), so a
kill lands inside a save, between two files of one save, or between saves, and no test waits on
the clock. One more kill comes from outside, at a seeded-random step read from status.json, on a
run whose step budget is too large to finish first.
"""
from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from rnn_core import store
from rnn_core.checkpoint import saved_step
from rnn_core.cli import main
from rnn_core.view import INTERRUPTED, RunView

ROOT = Path(__file__).resolve().parents[1]
# Small: the child saves after every step (CHILD below), about 14 writes a step.
SETS = ["task=adding", "seq_len=12", "hidden_size=8", "steps=120", "record_every=3", "eval_every=10", "seed=7"]
TIMING = ("step_time_ms",)  # the only wall-clock column of metrics.csv

# The child: the real CLI, saving after every step or two, killing itself at write number KILL_AT.
CHILD = textwrap.dedent("""
    import os, signal, sys
    from pathlib import Path
    import rnn_core.persist as persist, rnn_core.store as store
    # a save after every step, so the count of writes (and where write N falls) never depends on the clock
    persist.RunWriter.on_step_end = lambda self, trainer, rec: None if trainer.done else self.save(trainer)
    kill_at, moment = int(os.environ["KILL_AT"]), os.environ["KILL_MOMENT"]
    count, write_temp, replace, link = [0], store._write_temp, os.replace, os.link

    def die():
        os.kill(os.getpid(), signal.SIGKILL)

    def counted_write_temp(path, data):
        count[0] += 1
        if count[0] == kill_at and moment == "mid-write":
            Path(path.parent / f".{path.name}.killed.tmp").write_bytes(data[: len(data) // 2])
            die()
        tmp = write_temp(path, data)
        if count[0] == kill_at and moment == "before-rename":
            die()
        return tmp

    def after(fn):
        def wrapped(*a, **k):
            out = fn(*a, **k)
            if count[0] == kill_at and moment == "after-rename":
                die()
            return out
        return wrapped

    store._write_temp = counted_write_temp
    store.os = type(sys)("os_shim")
    store.os.__dict__.update(os.__dict__)
    store.os.replace, store.os.link = after(replace), after(link)
    from rnn_core.cli import main
    raise SystemExit(main(sys.argv[1:]))
""")


def _child_env(**extra) -> dict:
    return {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1", **extra}


def _train_killed(out: Path, kill_at: int, moment: str) -> int:
    cmd = [sys.executable, "-c", CHILD, "train", *sum((["--set", s] for s in SETS), []), "--out", str(out), "--quiet"]
    done = subprocess.run(cmd, env=_child_env(KILL_AT=str(kill_at), KILL_MOMENT=moment), capture_output=True,
                          text=True, timeout=300)
    return done.returncode


def _load_every_file(run: Path) -> list[str]:
    """Read every file of a run directory with the reader its kind needs; returns the hidden
    temporaries (a killed write's), which are the only files allowed to be partial."""
    from safetensors import safe_open

    temporaries = []
    for path in sorted(run.iterdir()):
        if path.name.startswith("."):
            assert path.name.endswith(".tmp"), path.name
            temporaries.append(path.name)
            continue
        if path.suffix == ".json":
            assert isinstance(json.loads(path.read_text()), dict), path.name
        elif path.suffix == ".csv":
            pd.read_csv(path)
        elif path.suffix == ".npy":
            np.load(path, allow_pickle=False)
        elif path.suffix == ".safetensors":
            with safe_open(path, framework="pt") as f:
                for key in f.keys():
                    f.get_tensor(key)
        else:
            raise AssertionError(f"unexpected file {path.name}")
    return temporaries


def _final(run: Path) -> tuple[pd.DataFrame, dict[str, np.ndarray], dict]:
    data = store.load_run(run)
    return data.metrics.drop(columns=list(TIMING)), data.arrays, data.status


def _assert_same_run(a: Path, b: Path) -> None:
    ma, aa, sa = _final(a)
    mb, ab, sb = _final(b)
    pd.testing.assert_frame_equal(ma, mb, check_exact=True)
    assert sorted(aa) == sorted(ab)
    for name in aa:
        np.testing.assert_array_equal(aa[name], ab[name], err_msg=name)
    for key in ("status", "steps_done", "final_val_loss", "final_loss", "beat_baseline"):
        assert sa.get(key) == sb.get(key), key


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> Path:
    """The same config trained once, never killed."""
    out = tmp_path_factory.mktemp("reference") / "run"
    assert main(["train", *sum((["--set", s] for s in SETS), []), "--out", str(out), "--quiet"]) == 0
    return out


# Write 1 is config.json, 2 the first status.json; a save is metrics.csv, the arrays,
# model.safetensors, checkpoint.safetensors, checkpoint.json and status.json (about 14 writes).
_rng = random.Random(15)
KILLS = [(2, "after-rename"), (_rng.randint(3, 14), "mid-write")]  # before the first checkpoint
KILLS += [(_rng.randint(15, 1500), moment) for moment in ("mid-write", "before-rename", "after-rename")]


@pytest.mark.parametrize("kill_at, moment", KILLS, ids=[f"write{n}-{m}" for n, m in KILLS])
def test_a_cli_run_killed_at_any_write_resumes_to_the_same_run(tmp_path, reference, kill_at, moment):
    out = tmp_path / "killed"
    rc = _train_killed(out, kill_at, moment)
    assert rc == -signal.SIGKILL, f"the child was not killed (exit {rc}): write {kill_at} never came"
    temporaries = _load_every_file(out)
    view = RunView.from_disk(out)
    assert view.state == INTERRUPTED and view.resumable and "server stopped" in view.reason
    # the steps it shows are the steps a resume continues from, even when status.json lags behind
    assert view.steps_done == (saved_step(out) or 0)
    assert main(["resume", str(out), "--quiet"]) == 0
    assert not any(p.name in temporaries for p in out.iterdir())  # resume sweeps a killed write's leftovers
    _load_every_file(out)
    _assert_same_run(out, reference)


def test_a_run_whose_status_lags_its_checkpoint_shows_and_resumes_from_the_checkpoint(tmp_path):
    """A kill between a save's checkpoint and its status.json (seen once with 4 runs killed at once):
    the status says an older step. The view must show the checkpoint's step, where resume continues,
    so that "resume with N more steps" asks for a budget above what the run has really done."""
    from rnn_core import make_config
    from rnn_core.trainer import Trainer

    out = tmp_path / "lagging"
    trainer = Trainer(make_config(steps=1000, seq_len=10, hidden_size=8), out_dir=out)
    for _ in range(12):
        trainer.step()
    stale = {**trainer.summary(), "status": "running", "steps_done": 4}
    trainer.save()  # checkpoint at step 12 ...
    store.atomic_write_json(out / "status.json", stale)  # ... and the status of an earlier save
    trainer.writer.release()
    view = RunView.from_disk(out)
    assert view.state == INTERRUPTED and view.steps_done == saved_step(out) == 12
    assert main(["resume", str(out), "--steps", str(view.steps_done + 3), "--quiet"]) == 0
    assert RunView.from_disk(out).steps_done == 15


def test_a_run_killed_before_its_first_checkpoint_starts_again_from_step_0(tmp_path, reference, capsys):
    out = tmp_path / "early"
    assert _train_killed(out, 2, "after-rename") == -signal.SIGKILL  # config.json and status.json only
    assert not (out / "checkpoint.json").exists()
    assert RunView.from_disk(out).resumable
    assert main(["resume", str(out), "--quiet"]) == 0
    assert "has no checkpoint" not in capsys.readouterr().err
    _assert_same_run(out, reference)


def test_a_cli_run_killed_from_outside_at_a_random_step_resumes_to_the_same_run(tmp_path):
    """SIGKILL from another process at a seeded-random step (read from status.json, never a sleep
    and a hope): the run's budget is 100,000 steps, so it cannot end first; resume --steps 120
    then ends it where the reference run of 120 steps ends (a constant learning rate: the step
    budget changes nothing before the last step)."""
    target = random.Random(1515).randint(20, 90)
    out, ref = tmp_path / "outside", tmp_path / "ref"
    sets = [s for s in SETS if not s.startswith("steps=")]
    child = textwrap.dedent("""
        import sys
        import rnn_core.persist as persist
        persist.FLUSH_SECONDS, persist.MAX_SAVE_SHARE = 0.0, 1.0
        from rnn_core.cli import main
        raise SystemExit(main(sys.argv[1:]))
    """)
    cmd = [sys.executable, "-c", child, "train", *sum((["--set", s] for s in [*sets, "steps=100000"]), []),
           "--out", str(out), "--quiet"]
    proc = subprocess.Popen(cmd, env=_child_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        while True:
            assert proc.poll() is None, proc.stderr.read().decode()[-2000:]
            try:
                done = json.loads((out / "status.json").read_text()).get("steps_done", 0)
            except (OSError, ValueError):
                done = 0
            if done >= target:
                break
            time.sleep(0.01)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait(60)
    _load_every_file(out)
    assert RunView.from_disk(out).state == INTERRUPTED
    assert main(["resume", str(out), "--steps", "120", "--quiet"]) == 0
    assert main(["train", *sum((["--set", s] for s in [*sets, "steps=120"]), []), "--out", str(ref), "--quiet"]) == 0
    _assert_same_run(out, ref)


# --- two servers or CLIs on one runs folder ---------------------------------------------------------
def _claim_many(base: str, root: str, count: int, barrier) -> list[str]:
    barrier.wait()  # every thread or process asks at the same moment
    return [store.claim_run_dir(base, Path(root))[0] for _ in range(count)]


def _claim_into(base: str, root: str, count: int, barrier, out) -> None:
    out.put(_claim_many(base, root, count, barrier))


def test_run_names_stay_unique_across_threads_and_processes_in_the_same_millisecond(tmp_path):
    import multiprocessing as mp
    from concurrent.futures import ThreadPoolExecutor

    root, base = tmp_path / "runs", "explore-adding-rnn-20261202-101010-ab12"
    barrier = threading.Barrier(16)
    with ThreadPoolExecutor(16) as pool:
        threads = [n for part in pool.map(lambda _: _claim_many(base, str(root), 10, barrier), range(16)) for n in part]
    ctx = mp.get_context("spawn")
    pbarrier, out = ctx.Barrier(4), ctx.Queue()
    workers = [ctx.Process(target=_claim_into, args=(base, str(root), 15, pbarrier, out)) for _ in range(4)]
    for w in workers:
        w.start()
    procs = [n for _ in workers for n in out.get(timeout=300)]
    for w in workers:
        w.join(60)
    names = threads + procs
    assert len(names) == len(set(names)) == 16 * 10 + 4 * 15
    assert base in names and f"{base}-2" in names  # the first took the name as given, the rest numbered
    assert sorted(p.name for p in root.iterdir()) == sorted(names)


def test_the_app_names_each_new_run_once_even_when_30_sessions_click_together(tmp_path):
    from concurrent.futures import ThreadPoolExecutor

    from dashboard.jobs import new_run_name
    from rnn_core.config import make_config

    cfg = make_config()
    barrier = threading.Barrier(30)

    def one(_):
        barrier.wait()
        return new_run_name(cfg)

    with ThreadPoolExecutor(30) as pool:
        names = list(pool.map(one, range(30)))
    assert len(set(names)) == 30 and all(store.run_dir(n).is_dir() for n in names)


def test_two_clis_with_the_same_out_make_one_run_and_the_other_says_why(tmp_path):
    out = tmp_path / "shared"
    cmd = [sys.executable, "-m", "rnn_core", "train", *sum((["--set", s] for s in SETS), []), "--out", str(out), "--quiet"]
    procs = [subprocess.Popen(cmd, env=_child_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(2)]
    results = [(p.wait(300), p.stderr.read()) for p in procs]
    codes = sorted(rc for rc, _ in results)
    assert codes == [0, 2], results
    loser = next(err for rc, err in results if rc == 2)
    assert "already holds a run" in loser and "Traceback" not in loser and len(loser.strip().splitlines()) == 1
    assert store.load_run(out).status["status"] == "finished"
    _load_every_file(out)


def test_a_run_one_process_trains_cannot_be_resumed_by_another(tmp_path):
    """The writer holds a flock on the run directory while it trains: a second server's resume is
    refused before it touches a file; the kernel drops the lock when the trainer's process dies."""
    from rnn_core.config import make_config
    from rnn_core.store import RunTakenError
    from rnn_core.trainer import Trainer

    out = tmp_path / "busy"
    tr = Trainer(make_config(steps=40, seq_len=8, hidden_size=4), out_dir=out)
    tr.run(max_steps=5)
    tr.save()
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    other = subprocess.run([sys.executable, "-m", "rnn_core", "resume", str(out), "--quiet"], env=_child_env(),
                           capture_output=True, text=True, timeout=300)
    assert other.returncode == 2 and "being trained by another process" in other.stderr, other.stderr
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before  # nothing touched
    tr.stop()  # ends the run: the lock goes with it
    assert main(["resume", str(out), "--quiet"]) == 0
    assert store.load_run(out).status["status"] == "finished"


# --- killing the server -----------------------------------------------------------------------------
# A server's training service in a process of its own: 4 workers (processes, the default pool), 4
# runs that cannot finish first, and one line once every run has saved a checkpoint.
SERVER = textwrap.dedent("""
    import json, os, sys, time
    from rnn_core import store
    from rnn_core.config import make_config
    from rnn_core.service import TrainingService
    from rnn_core.settings import ServiceSettings
    svc = TrainingService(ServiceSettings(workers=4, pool="process", abandon_after_s=3600))
    cells = ["rnn", "lstm", "gru", "rnn"]
    jobs = [svc.submit(make_config(cell=c, seq_len=12, hidden_size=8, steps=100000, seed=k), store.run_dir(f"class-{k}"))
            for k, c in enumerate(cells)]
    def saved(j):
        try:
            return json.loads((j.out_dir / "status.json").read_text()).get("steps_done", 0) > 0
        except (OSError, ValueError):
            return False
    while not all(saved(j) for j in jobs):
        for j in jobs:
            j.poll()
            assert not j.done, (j.state, j.error)
        time.sleep(0.05)
    pids = [w.handle.pid for w in svc._workers]
    print(json.dumps({"pids": pids}), flush=True)
    while True:
        for j in jobs:
            j.poll()
        time.sleep(0.05)
""")


def _start_server(env_root: Path) -> tuple[subprocess.Popen, list[int]]:
    proc = subprocess.Popen([sys.executable, "-c", SERVER], env=_child_env(BPTT_LAB_RUNS=str(env_root)),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    line = proc.stdout.readline()  # blocks until every run has a checkpoint (or the server fails)
    assert line, proc.stderr.read()[-3000:]
    return proc, json.loads(line)["pids"]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie (exited, not yet reaped by its dead parent's successor) counts as gone
        return Path(f"/proc/{pid}/stat").read_text().split(") ")[1][0] != "Z"
    except OSError:
        return False


def _wait_gone(pids: list[int], timeout: float = 120.0) -> list[int]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and any(_alive(p) for p in pids):
        time.sleep(0.05)
    return [p for p in pids if _alive(p)]


def _resume_all_in_a_new_service(names: list[str]) -> None:
    from rnn_core.service import TrainingService
    from rnn_core.settings import ServiceSettings

    svc = TrainingService(ServiceSettings(workers=2, pool="thread"))
    try:
        jobs = []
        for name in names:
            view = RunView.from_disk(store.run_dir(name))
            assert view.resumable, (name, view.state)
            jobs.append(svc.resume(store.run_dir(name), steps=view.steps_done + 15, name=name))
        for job in jobs:
            assert job.wait(timeout=300) and job.state == "finished", (job.name, job.state, job.error)
    finally:
        svc.shutdown()
    for name in names:
        assert store.load_run(store.run_dir(name)).status["status"] == "finished"


def _every_run_whole_listed_interrupted_and_resumed(names: list[str]) -> None:
    """After a kill: every file of each run loads, the Runs page lists them all as interrupted,
    and each resumes to the end in a new service."""
    for name in names:
        _load_every_file(store.run_dir(name))
        assert RunView.from_disk(store.run_dir(name)).state == INTERRUPTED
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(ROOT / "streamlit_app.py"), default_timeout=60).run()
    at = at.switch_page("pages/runs.py").run()
    assert not at.exception
    table = at.dataframe[0].value.set_index("name")
    assert sorted(table.index) == sorted(names) and set(table["status"]) == {INTERRUPTED}
    _resume_all_in_a_new_service(names)


NAMES = [f"class-{k}" for k in range(4)]


def test_a_server_killed_with_its_workers_loses_no_run_and_each_resumes(tmp_path):
    """SIGKILL to the server's whole process group (the server and its 4 workers, mid-training):
    every run is on disk and readable, the Runs page lists all 4 as interrupted, each resumes."""
    root = store.runs_root()
    proc, pids = _start_server(root)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(60)
    assert not _wait_gone(pids)
    assert sorted(store.list_runs()) == NAMES
    _every_run_whole_listed_interrupted_and_resumed(NAMES)


def test_orphaned_workers_of_a_killed_server_save_their_runs_and_exit(tmp_path):
    """SIGKILL to the server process alone, as a crash that leaves its workers orphaned: each
    worker notices its parent is gone, stops its run inside the step, saves it (stopped, resumable)
    and exits instead of training on; nothing writes into the runs after that."""
    root = store.runs_root()
    proc, pids = _start_server(root)
    proc.send_signal(signal.SIGKILL)
    proc.wait(60)
    try:
        left = _wait_gone(pids)
        assert not left, f"orphaned workers still running: {left}"
    finally:
        for pid in pids:
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)
    snapshot = {name: {p.name: p.stat().st_mtime_ns for p in store.run_dir(name).iterdir()} for name in NAMES}
    for name in NAMES:
        _load_every_file(store.run_dir(name))
        status = store.load_run(store.run_dir(name)).status
        assert status["status"] == "stopped" and status["steps_done"] > 0, (name, status)
    assert snapshot == {name: {p.name: p.stat().st_mtime_ns for p in store.run_dir(name).iterdir()} for name in NAMES}
    _resume_all_in_a_new_service(NAMES)


def test_a_real_server_killed_while_compare_trains_4_columns_loses_no_run(tmp_path):
    """In a real browser (skips where Chromium or playwright is missing, like tests/test_browser.py):
    Compare with 4 columns, Train all, and once every column's run has saved a step, SIGKILL the
    server's whole process group. Every run is whole on disk; the Runs page (AppTest: a restarted
    app) lists all 4 as interrupted; each resumes and finishes."""
    from test_browser import CHROMIUM, CHROMIUM_ARGS, _free_port, _press, _wait_healthy

    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} is not installed")
    sync_api = pytest.importorskip("playwright.sync_api")
    runs = store.runs_root()
    port = _free_port()
    env = {**os.environ, "BPTT_LAB_RUNS": str(runs), "BPTT_LAB_POOL": "process", "BPTT_LAB_WORKERS": "4"}
    log = open(tmp_path / "server.log", "wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", "streamlit_app.py", "--server.address", "127.0.0.1",
         "--server.port", str(port), "--server.headless", "true", "--browser.gatherUsageStats", "false"],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        _wait_healthy(port, proc, timeout=60)
        with sync_api.sync_playwright() as pw:
            chromium = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
            try:
                page = chromium.new_page(viewport={"width": 1600, "height": 1400})
                page.goto(f"http://127.0.0.1:{port}/compare?cols=4&seq_len=12&hidden_size=8&steps=100000",
                          timeout=90_000)
                train = page.locator(".st-key-cmp_btn_train").get_by_role("button", name="Train all")
                train.wait_for(timeout=120_000)
                page.wait_for_function("() => !document.querySelector('.st-key-cmp_btn_train button').disabled",
                                       timeout=120_000)
                _press(page, train)

                def saved() -> list[str]:
                    out = []
                    for name in store.list_runs():
                        try:
                            if json.loads((store.run_dir(name) / "status.json").read_text()).get("steps_done", 0):
                                out.append(name)
                        except (OSError, ValueError):
                            pass
                    return out

                deadline = time.monotonic() + 240  # a bound on a hang, not a timing: 4 saves end it
                while len(saved()) < 4 and time.monotonic() < deadline and proc.poll() is None:
                    time.sleep(0.1)
                assert len(saved()) == 4, (store.list_runs(), (tmp_path / "server.log").read_text()[-2000:])
                assert page.locator('[data-testid="stException"]').count() == 0
            finally:
                chromium.close()
        os.killpg(proc.pid, signal.SIGKILL)  # the server and its 4 workers, mid-training
        proc.wait(60)
    finally:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        log.close()
    names = store.list_runs()
    assert len(names) == 4 and all(n.startswith("compare-") for n in names)
    _every_run_whole_listed_interrupted_and_resumed(names)
