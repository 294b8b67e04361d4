"""Training-service benchmarks: throughput in the app against plain PyTorch, and a pool of runs.

    python bench/bench_service.py throughput     # rnn/lstm/gru at T = 50, 200, 1000: job steps/s vs plain (~6 min)
    python bench/bench_service.py four           # one default run, then four at once: process pool, thread pool
    python bench/bench_service.py breakdown      # one Trainer, no service: unrecorded, recorded and evaluation steps
    python bench/bench_service.py cadence        # what the gate statistics cost: gates_every=1 against the default 5
    python bench/bench_service.py all

`throughput`: a job trains in the service's worker process (one torch thread, the app's
setting) while this process does what a page does: every 0.3 s it takes a view of the job and
builds every chart from it (dashboard.panel.build_figures). Its steps per second of wall time
are divided by those of plain fused PyTorch (nn.RNN/LSTM/GRU, same shapes, optimiser and loss,
nothing recorded; bench_speed.plain_step), also steps over wall time, timed in this process
with one thread; the medians of single steps are printed beside them. `four`: wall time of one default run through the pool against four started
together (2 workers on 2 cores), and two started together: four can take no less than twice
two. Both say what else was running: on a shared machine the other load moves every figure.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import torch  # noqa: E402

from rnn_core import make_config  # noqa: E402
from rnn_core.service import TrainingService  # noqa: E402
from rnn_core.settings import ServiceSettings  # noqa: E402

POLL_S = 0.3  # a page polling faster than the app does (BPTT_LAB_POLL_S, default 1.0): the stricter case


def _plain_ms(cell: str, T: int, seconds: float) -> tuple[float, float]:
    """(wall ms per step over the whole window, median step ms) of plain fused PyTorch. Throughput is
    steps over wall time, so the ratios use the wall figure on both sides: a median would leave out
    plain's own slow steps (a collection, the page process) while the app's wall counts its own."""
    from bench_speed import plain_step

    torch.set_num_threads(1)
    torch.set_flush_denormal(True)  # as the Trainer does in the worker: denormals slow CPU steps 2-8x
    step = plain_step(cell, T, torch.device("cpu"))
    for _ in range(3):
        step()
    times = []
    t_start = time.perf_counter()
    t_end = t_start + seconds
    while time.perf_counter() < t_end or len(times) < 5:
        t0 = time.perf_counter()
        step()
        times.append(time.perf_counter() - t0)
    return (time.perf_counter() - t_start) * 1e3 / len(times), statistics.median(times) * 1e3


def _job_ms(svc: TrainingService, cfg, out: Path) -> tuple[float, float, float]:
    """(median step ms of the job, wall ms per step from start to end, steady wall ms per step),
    with a page polling and drawing. "Steady" runs from the first published steps to the end: it
    leaves out building the Trainer (model, validation batch) and includes everything else."""
    from dashboard.run_figures import build_figures

    job = svc.submit(cfg, out, check_limits=False)
    first = None
    while not job.done:
        job.poll()
        if first is None and job.steps_done > 0:
            first = (time.monotonic(), job.steps_done)
        build_figures(job.view())
        time.sleep(POLL_S)
    assert job.state == "finished", job.error
    step_ms = job.history.scalars()["step_time_ms"][5:]  # the first steps warm the caches
    started = job.started_at or job.submitted_at
    wall_ms = (job.ended_at - started) * 1e3 / cfg.steps
    steady_ms = (job.ended_at - first[0]) * 1e3 / (cfg.steps - first[1])
    return float(statistics.median(step_ms)), wall_ms, steady_ms


def throughput(seconds: float, rounds: int, cells=("rnn", "lstm", "gru"), lengths=(50, 200, 1000)) -> None:
    """Plain and the app's job alternate, plain first and last (plain, job, plain, job, ..., plain):
    each job's ratio takes the plain windows either side of it, so a slow spell of this VM (its
    speed drifts by up to 1.5× within minutes) lands on both sides of a ratio. Figures are medians
    over the rounds."""
    svc = TrainingService(ServiceSettings(pool="process", workers=1))
    tmp = Path(tempfile.mkdtemp(prefix="bench_service_"))
    print(f"| cell | T | plain wall ms/step | plain step ms (median) | app step ms (median) | app wall ms/step | "
          f"steady wall ms/step | plain/app wall | plain/app steady (target ≥ {1 / 1.3:.2f}) |")
    print("|---|---|---|---|---|---|---|---|---|")
    med = statistics.median
    try:
        for cell in cells:
            for T in lengths:
                plains = [_plain_ms(cell, T, seconds / 4)]
                jobs, walls, steadies = [], [], []
                for r in range(rounds):
                    steps = max(30, int(seconds * 1e3 / (plains[0][0] * 1.6)))
                    cfg = make_config(cell=cell, seq_len=T, steps=steps, seed=r)
                    step, wall, steady = _job_ms(svc, cfg, tmp / f"{cell}-{T}-{r}")
                    plains.append(_plain_ms(cell, T, seconds / 4))
                    around = (plains[-2][0] + plains[-1][0]) / 2
                    jobs.append(step)
                    walls.append((wall, around / wall))
                    steadies.append((steady, around / steady))
                print(f"| {cell} | {T} | {med(p[0] for p in plains):.2f} | {med(p[1] for p in plains):.2f} "
                      f"| {med(jobs):.2f} | {med(w for w, _ in walls):.2f} | {med(w for w, _ in steadies):.2f} "
                      f"| {med(r for _, r in walls):.2f} | {med(r for _, r in steadies):.2f} |", flush=True)
    finally:
        svc.shutdown()


def breakdown(cases=(("rnn", 50, 600), ("lstm", 200, 300), ("rnn", 1000, 100))) -> None:
    """Where a default job's wall goes: each Trainer.step() of one run timed on its own, in this
    process (no service, no page), split by kind: plain (neither recorded nor evaluated), recorded
    (every record_every-th), evaluated (every eval_every-th, not recorded)."""
    from rnn_core.trainer import Trainer

    torch.set_num_threads(1)
    for cell, T, steps in cases:
        Trainer(make_config(cell=cell, seq_len=T, steps=3)).run()  # torch's lazy set-up
        trainer = Trainer(make_config(cell=cell, seq_len=T, steps=steps), out_dir=tempfile.mkdtemp())
        kinds: dict[str, list[float]] = {"plain": [], "recorded": [], "evaluated": []}
        t_run = time.perf_counter()
        while not trainer.done:
            t0 = time.perf_counter()
            rec = trainer.step()
            ms = (time.perf_counter() - t0) * 1e3
            kind = "recorded" if rec.arrays is not None else "evaluated" if rec.val_loss is not None else "plain"
            kinds[kind].append(ms)
        wall = (time.perf_counter() - t_run) * 1e3 / steps
        parts = ", ".join(f"{k} {statistics.median(v):.2f} ms (x{len(v)})" for k, v in kinds.items() if v)
        print(f"{cell} T={T}: wall {wall:.2f} ms/step; median step by kind: {parts}", flush=True)


def cadence(steps: int, cases=(("lstm", 50), ("lstm", 200), ("gru", 50))) -> None:
    """What the gate statistics cost (gates_every): plain PyTorch and three Trainers of the default
    config (gates on every recorded step, the default every 5th, none: record_every=10000 also
    drops ‖∂L/∂h_t‖) take one step each in turn, in this process, so a slow spell of the VM lands
    on all of them alike. Prints ms per step (evaluations included) and plain/trainer."""
    from bench_speed import plain_step
    from rnn_core.trainer import Trainer

    torch.set_num_threads(1)
    torch.set_flush_denormal(True)
    ways = {"gates_every=1": {"gates_every": 1}, "default (gates_every=5)": {},
            "nothing recorded": {"record_every": 10_000}}
    print("| cell | T | plain ms/step | " + " | ".join(f"{w} ms/step (plain/it)" for w in ways) + " |")
    print("|---|---|---|" + "---|" * len(ways))
    for cell, T in cases:
        trainers = {w: Trainer(make_config(cell=cell, seq_len=T, steps=100_000, **v)) for w, v in ways.items()}
        plain = plain_step(cell, T, torch.device("cpu"))
        total = dict.fromkeys(["plain", *ways], 0.0)
        for k in range(30 + steps):  # 30 warm-up steps
            t0 = time.perf_counter()
            plain()
            times = {"plain": time.perf_counter() - t0}
            for w, tr in trainers.items():
                t0 = time.perf_counter()
                tr.step()
                times[w] = time.perf_counter() - t0
            if k >= 30:
                for w, t in times.items():
                    total[w] += t
        p = total["plain"]
        print(f"| {cell} | {T} | {p * 1e3 / steps:.2f} | "
              + " | ".join(f"{total[w] * 1e3 / steps:.2f} ({p / total[w]:.2f})" for w in ways) + " |", flush=True)


def four(repeats: int, pool: str = "process") -> None:
    svc = TrainingService(ServiceSettings(pool=pool, workers=os.cpu_count() or 2))
    tmp = Path(tempfile.mkdtemp(prefix="bench_four_"))
    while svc.counts()["ready"] < svc.counts()["workers"]:
        time.sleep(0.1)
    ones, twos, fours = [], [], []
    try:
        for r in range(repeats):
            t0 = time.perf_counter()
            job = svc.submit(make_config(), tmp / f"one-{r}")
            job.wait()
            ones.append(time.perf_counter() - t0)
            t0 = time.perf_counter()  # two at once: what the two cores give when nothing queues
            pair = [svc.submit(make_config(seed=10 + k), tmp / f"two-{r}-{k}") for k in range(2)]
            for j in pair:
                j.wait()
            twos.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            jobs = [svc.submit(make_config(seed=k), tmp / f"four-{r}-{k}") for k in range(4)]
            for j in jobs:
                j.wait()
            fours.append(time.perf_counter() - t0)
            assert all(j.state == "finished" for j in [job, *jobs])
    finally:
        svc.shutdown()
    one, two, fo = statistics.median(ones), statistics.median(twos), statistics.median(fours)
    print(f"{pool} pool: one default run: {', '.join(f'{t:.2f}' for t in ones)} s (median {one:.2f}); "
          f"two at once: {', '.join(f'{t:.2f}' for t in twos)} s (median {two:.2f}, two/one = {two / one:.2f}: "
          f"what running side by side costs on these cores); "
          f"four at once on {svc.settings.workers} workers: {', '.join(f'{t:.2f}' for t in fours)} s "
          f"(median {fo:.2f}); four/one = {fo / one:.2f} (target ≤ 2.3); four/(2 × two) = {fo / (2 * two):.2f} "
          f"(the queue's own cost: 1.00 is none)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("what", choices=("throughput", "breakdown", "cadence", "four", "all"))
    ap.add_argument("--seconds", type=float, default=6.0, help="training time per throughput case")
    ap.add_argument("--repeats", type=int, default=3, help="rounds of `four`")
    ap.add_argument("--steps", type=int, default=1500, help="cadence: timed steps of each way per case")
    ap.add_argument("--rounds", type=int, default=3, help="jobs per throughput case, each between two plain windows")
    ap.add_argument("--cells", nargs="+", default=["rnn", "lstm", "gru"], choices=["rnn", "lstm", "gru"],
                    help="throughput: the cells to time")
    ap.add_argument("--T", nargs="+", type=int, default=[50, 200, 1000], help="throughput: the sequence lengths")
    args = ap.parse_args()
    print(f"torch {torch.__version__}, {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} at start")
    if args.what in ("throughput", "all"):
        throughput(args.seconds, args.rounds, args.cells, args.T)
    if args.what in ("breakdown", "all"):
        breakdown()
    if args.what in ("cadence", "all"):
        cadence(args.steps)
    if args.what in ("four", "all"):
        for pool in ("process", "thread"):
            four(args.repeats, pool)
    print(f"load average {os.getloadavg()[0]:.1f} at the end")


if __name__ == "__main__":
    main()
