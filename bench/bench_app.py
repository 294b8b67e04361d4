"""App benchmarks: memory of one session's history, and time from Train to the first chart.

    python bench/bench_app.py memory              # history after 10,000 default steps (synthetic records)
    python bench/bench_app.py memory --real 300   # the same from real default-config steps, extrapolated
    python bench/bench_app.py first-chart         # serve the app, click Train in Chromium, time the heatmap
    python bench/bench_app.py first-chart --full-run   # also click to "Finished", against the run's compute

`memory` feeds StepRecords shaped exactly like the default config's (adding, rnn, 1 layer, T=50) with
record_every=1 into rnn_core.history.History and prints the bytes its numpy arrays hold.
`first-chart --full-run` also prints the CPU seconds each kind of process used from the press to
"Finished" (every Chromium process, the server, its training workers; read from /proc).
`--real N` also trains N real steps and checks the synthetic records have the same arrays.
The same records are fed to rnn_core's Recorder, which the session's Trainer keeps for the
run store (every metrics row, a bounded set of recorded steps): it is printed too, because it
lives in the same session.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
import tracemalloc
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from rnn_core.history import History  # noqa: E402
from rnn_core import make_config  # noqa: E402
from rnn_core.recorder import Recorder, StepRecord  # noqa: E402


def default_like_record(step: int, T: int = 50) -> StepRecord:
    rng = np.random.default_rng(step)
    arrays = {"recorded_steps": np.asarray(step, np.int64), "timestep_grads": 10.0 ** rng.uniform(-12, 0, (1, T)),
              "hidden_saturation": rng.uniform(0, 1, (1, T)), "spectral_radius": rng.uniform(0.5, 1.5, (1, 1)),
              "sigma_max": rng.uniform(0.5, 2, (1, 1))}
    return StepRecord(step, float(rng.uniform()), float(rng.uniform()) if step % 10 == 0 else None,
                      float(rng.uniform(0.1, 10)), float(rng.uniform(0.1, 1)), bool(step % 3 == 0), 1e-3,
                      float(rng.uniform(5, 15)), T, {"l0.ih": 1.0, "l0.hh": 1.0, "l0.bias": 1.0, "readout": 1.0},
                      arrays)


def _fed(target, steps: int) -> tuple[float, float, float]:
    """Feed `steps` default-like records; return (MiB held, MiB peak, seconds), by tracemalloc."""
    tracemalloc.start()
    t0 = time.perf_counter()
    for s in range(steps):
        target.add(default_like_record(s))
    seconds = time.perf_counter() - t0
    current, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return current / 2**20, peak / 2**20, seconds


def memory(steps: int, real: int) -> None:
    h = History()
    held, peak, feed_s = _fed(h, steps)
    print(f"history after {steps} default-config steps: {h.nbytes() / 2**20:.2f} MiB in numpy arrays "
          f"({h.n} step points, {h.n_rec} recorded steps kept of {steps}, stride {h.rec_stride}); "
          f"tracemalloc: {held:.2f} MiB held, {peak:.2f} MiB peak; fed in {feed_s:.1f} s")
    rec = Recorder(seq_len=50)
    held, peak, feed_s = _fed(rec, steps)
    print(f"Trainer recorder after {steps} default-config steps: {rec.nbytes() / 2**20:.2f} MiB of values "
          f"({len(rec)} metrics rows, {rec.kept()} recorded steps kept of {steps}, stride {rec.stride}); "
          f"tracemalloc: {held:.2f} MiB held, {peak:.2f} MiB peak; fed in {feed_s:.1f} s")
    if real:
        from rnn_core.trainer import Trainer

        tr = Trainer(make_config(steps=max(real, 1), record_every=1))  # every step recorded: the worst case
        hr = History()
        for _ in range(real):
            rec = tr.step()
            hr.add(rec)
        synth = default_like_record(0).arrays
        assert set(rec.arrays) == set(synth), (set(rec.arrays), set(synth))
        assert all(np.shape(rec.arrays[k]) == np.shape(synth[k]) for k in synth)
        assert set(tr.recorder.columns) == set(default_like_record(0).row()), "synthetic rows lack a column"
        print(f"real default-config steps: {real}; their records have the same arrays, shapes and metric columns "
              f"as the synthetic ones; history {hr.nbytes() / 2**20:.3f} MiB, recorder "
              f"{tr.recorder.nbytes() / 2**20:.3f} MiB.")


def first_chart(repeats: int, full_run: bool = False) -> None:
    """Serve the app once; for each repeat open a fresh tab (a new session), wait for the chart
    frames, click Train and time the first filled heatmap. Same steps as tests/test_browser.py."""
    import signal
    import subprocess
    import tempfile

    sys.path.insert(0, str(ROOT / "tests"))
    from playwright.sync_api import sync_playwright
    from test_browser import (CHART_FRAMES, CHROMIUM, CHROMIUM_ARGS, HEATMAP_FILLED, RECORD_MOUSEDOWN, _free_port,
                              _press, _wait_healthy)

    compute = []  # the run's compute alone, timed just before each browser run (the VM's speed drifts)
    if full_run:
        _warm_up()
    port = _free_port()
    tmp = tempfile.mkdtemp(prefix="bench_app_")
    proc = subprocess.Popen([sys.executable, "-m", "streamlit", "run", "streamlit_app.py", "--server.address",
                             "127.0.0.1", "--server.port", str(port), "--server.headless", "true"],
                            cwd=ROOT, env={**os.environ, "BPTT_LAB_RUNS": tmp, "BPTT_LAB_POOL": "process"}, stdout=subprocess.DEVNULL,
                            stderr=subprocess.STDOUT, start_new_session=True)
    times, run_times, cpu, draws, phases = [], [], [], [], []
    try:
        _wait_healthy(port, proc)
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
            for _ in range(repeats):
                if full_run:  # the server idle, no page open: the same run alone, just before this one
                    compute += _compute_outside(1)
                page = browser.new_page(viewport={"width": 1400, "height": 1700})
                page.goto(f"http://127.0.0.1:{port}/", timeout=60_000)
                page.wait_for_function(CHART_FRAMES, timeout=60_000)
                page.get_by_text("Estimate:").wait_for(timeout=60_000)  # the training workers are up
                page.wait_for_timeout(1000)
                page.evaluate(RECORD_MOUSEDOWN)
                if full_run:
                    page.evaluate(RECORD_FINISHED)
                before = set(os.listdir(tmp))
                cpu0 = _cpu_seconds(proc.pid)
                _press(page, page.locator(".st-key-btn_train").get_by_role("button", name="Train"))
                page.wait_for_function(HEATMAP_FILLED, timeout=30_000, polling=20)
                down = page.evaluate("() => window.__mousedown") / 1000  # when the click reached the page
                times.append(time.time() - down)
                if full_run:  # let the default run (300 steps) finish: time until the "Finished" banner
                    page.wait_for_function("() => window.__finished", timeout=120_000, polling="raf")
                    run_times.append(page.evaluate("() => window.__finished") / 1000 - down)
                    (run,) = set(os.listdir(tmp)) - before
                    phases.append(_phases(Path(tmp) / run, down, down + run_times[-1]))
                    draws.append(page.evaluate("() => Array.from(document.querySelectorAll('.bptt-chart'), "
                                               "d => d.__draws || 0)"))
                    cpu1 = _cpu_seconds(proc.pid)
                    cpu.append({k: cpu1[k] - cpu0[k] for k in cpu0})
                else:
                    _press(page, page.locator(".st-key-btn_stop").get_by_role("button", name="Stop"))
                    page.wait_for_timeout(500)
                page.close()
            browser.close()
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=10)
    print("time from the Train mousedown to the first filled heatmap (s): " + ", ".join(f"{t:.3f}" for t in times) +
          f"; median {np.median(times):.3f}, min {min(times):.3f}, max {max(times):.3f}")
    if run_times:
        print("time from the Train mousedown to the Finished banner of the default run, in the browser (s): " +
              ", ".join(f"{t:.2f}" for t in run_times) + f"; median {np.median(run_times):.2f}")
        ratios = [r / c for r, c in zip(run_times, compute)]
        print("the same run's compute outside the browser, Trainer(make_config()).run() with one thread, timed "
              "just before each browser run (s): " + ", ".join(f"{t:.2f}" for t in compute) +
              f"; median {np.median(compute):.2f}")
        print("browser/compute, each run against the compute timed just before it: " +
              ", ".join(f"{r:.2f}" for r in ratios) + f"; median {np.median(ratios):.2f} (target <= 1.3)")
        per_s = [np.median(d) / t for d, t in zip(draws, run_times) if d]
        print(f"chart redraws per chart during a run: median {np.median([np.median(d) for d in draws if d]):.1f} "
              f"({np.median(per_s):.2f} a second; {len(draws[0])} charts on the page)")
        print("where a run's time goes, medians (from the run store's files and each step's own step_time_ms): " +
              ", ".join(f"{k} {np.median([p[k] for p in phases]):.2f} s" for k in phases[0]))
        print("CPU seconds used from the press to Finished, median per run: " +
              ", ".join(f"{k} {np.median([c[k] for c in cpu]):.2f}" for k in cpu[0]))


# When the "Finished" banner is first painted: the frame after the text enters the page. Playwright's
# own wait for a text (locator.wait_for) polls ever more slowly, up to every 500 ms, and saw the
# banner 0.3-0.55 s after it was in the page; a page function on every frame adds nothing the page
# would not do anyway.
RECORD_FINISHED = """() => { const seen = n => (n.textContent || '').includes('Finished: all');
    const obs = new MutationObserver(records => {
        if (window.__finished || !records.some(r => seen(r.target) || Array.from(r.addedNodes).some(seen))) return;
        obs.disconnect();
        requestAnimationFrame(() => { window.__finished = performance.timeOrigin + performance.now(); });
    });
    obs.observe(document.body, {subtree: true, childList: true, characterData: true}); }"""


def _phases(run: Path, pressed: float, finished: float) -> dict[str, float]:
    """Press to the job's start in its worker (config.json written), the job (to status.json, its
    last file), the sum of its steps' own times, and the job's end to the Finished banner."""
    import pandas as pd

    start, end = (run / "config.json").stat().st_mtime, (run / "status.json").stat().st_mtime
    steps = float(pd.read_csv(run / "metrics.csv")["step_time_ms"].sum()) / 1000
    return {"press to start": start - pressed, "job": end - start, "its steps": steps, "end to Finished": finished - end}


def _cpu_seconds(server_pid: int) -> dict[str, float]:
    """CPU time (user + system, from /proc) of every Chromium process, the server, and the server's
    training workers: who used the 2 cores during a run."""
    tick = os.sysconf("SC_CLK_TCK")
    out = {"chromium": 0.0, "server": 0.0, "workers": 0.0}
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:  # the process ended meanwhile
            continue
        fields = stat.rsplit(")", 1)[1].split()
        seconds, ppid = (int(fields[11]) + int(fields[12])) / tick, int(fields[1])
        if b"chromium" in cmd:
            out["chromium"] += seconds
        elif int(pid) == server_pid:
            out["server"] += seconds
        elif ppid == server_pid:
            out["workers"] += seconds
    return out


def _warm_up() -> None:
    """torch's lazy set-up, as the app's workers do at start, once before the runs are timed."""
    import torch

    from rnn_core.trainer import Trainer

    torch.set_num_threads(1)
    Trainer(make_config(steps=3)).run()


def _compute_outside(repeats: int) -> list[float]:
    """The default run's own compute: the same Trainer, no app, no browser, one torch thread."""
    import torch

    from rnn_core.trainer import Trainer

    torch.set_num_threads(1)
    out = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        Trainer(make_config()).run()
        out.append(time.perf_counter() - t0)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    m = sub.add_parser("memory")
    m.add_argument("--steps", type=int, default=10_000)
    m.add_argument("--real", type=int, default=0, help="also train this many real steps and compare")
    fc = sub.add_parser("first-chart")
    fc.add_argument("--repeats", type=int, default=5)
    fc.add_argument("--full-run", action="store_true", help="also time the whole default run, click to 'Finished'")
    args = ap.parse_args()
    if args.cmd == "memory":
        memory(args.steps, args.real)
    else:
        first_chart(args.repeats, args.full_run)


if __name__ == "__main__":
    main()
