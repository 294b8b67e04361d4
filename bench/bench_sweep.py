"""Sweep benchmarks: the local pool's throughput, Ray against the local pool, the map's drawing time,
and the picture of a finished sweep's map.

    python bench/bench_sweep.py pool              # 16 short runs: 2 workers vs 1 (target >= 1.7x)
    python bench/bench_sweep.py ray               # the same 16 runs as Ray tasks on a local head: overhead
                                                  # per task (ms), time to the first result
    python bench/bench_sweep.py map               # trainability_map at 1,000 points (target < 1 s)
    python bench/bench_sweep.py all               # the three above
    python bench/bench_sweep.py all --quick       # a smoke run of each (4 runs, 1 repeat): proves nothing
    python bench/bench_sweep.py picture runs/gain_by_length --out docs/gain_by_length.png [--value verdict]

`ray` starts its own local Ray instance (ray.init on 127.0.0.1, usage stats off) unless
--ray-address names a running one (`ray start --head --node-ip-address 127.0.0.1 --disable-usage-stats`,
then --ray-address 127.0.0.1:6379; `ray stop` afterwards). Timings need a quiet machine.

`picture` writes the map as HTML (plotly.js embedded) and, where Chromium is installed, as a PNG
screenshot of that page (kaleido is not a dependency of the lab).
"""
from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from rnn_core.sweep import Sweep, local_service, read_csv, run_local, run_ray  # noqa: E402
from rnn_core.sweep_spec import parse_spec  # noqa: E402

# 16 short runs: 4 lengths x 4 seeds of a tanh RNN on adding, about 1-2 s each on one core
BENCH_SPEC = """
seeds = [0, 1, 2, 3]
[base]
task = "adding"
steps = {steps}
[grid]
seq_len = [20, 30, 40, 50]
"""


def _spec(quick: bool):
    text = BENCH_SPEC.format(steps=20 if quick else 150)
    if quick:
        text = text.replace("seeds = [0, 1, 2, 3]", "seeds = [0]")
    return parse_spec(text)


def _ready(service, n: int, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while service.counts()["ready"] < n and time.monotonic() < deadline:
        time.sleep(0.1)


def _timed_local(spec, workers: int, root: Path) -> dict:
    """Wall time of the sweep on a pool whose workers are already up (start-up is paid once per server)."""
    service = local_service(workers)
    try:
        _ready(service, workers)
        sweep = Sweep.create(spec, root / f"pool{workers}")
        first = []
        t0 = time.perf_counter()
        run_local(sweep, service=service, on_row=lambda row: first.append(time.perf_counter()) if not first else None)
        wall = time.perf_counter() - t0
    finally:
        service.shutdown()
    return {"wall_s": wall, "first_s": first[0] - t0, "runs": len(sweep.tasks), "frame": sweep.frame()}


def bench_pool(quick: bool) -> None:
    spec = _spec(quick)
    with tempfile.TemporaryDirectory() as tmp:
        one = _timed_local(spec, 1, Path(tmp))
        two = _timed_local(spec, 2, Path(tmp))
    print(f"local pool, {one['runs']} runs: 1 worker {one['wall_s']:.2f} s, 2 workers {two['wall_s']:.2f} s; "
          f"throughput 2 workers / 1 worker = {one['wall_s'] / two['wall_s']:.2f}x (target >= 1.7)")


def bench_ray(quick: bool, address: str | None) -> None:
    try:
        import ray
    except ImportError:
        print("ray: not installed (pip install -r requirements-ray.txt); skipped")
        return
    from rnn_core.sweep import ray_runtime_env

    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    spec = _spec(quick)
    with tempfile.TemporaryDirectory() as tmp:
        local = _timed_local(spec, 2, Path(tmp))
        t0 = time.perf_counter()
        if address:
            ray.init(address=address, runtime_env=ray_runtime_env(), log_to_driver=False)
        else:
            ray.init(num_cpus=2, include_dashboard=False, _node_ip_address="127.0.0.1", log_to_driver=False,
                     runtime_env=ray_runtime_env())
        init_s = time.perf_counter() - t0
        try:
            noop = ray.remote(num_cpus=1)(lambda: None)
            ray.get([noop.remote() for _ in range(4)])  # workers up
            n = 20 if quick else 200
            trips = []
            for _ in range(n):
                t = time.perf_counter()
                ray.get(noop.remote())
                trips.append(time.perf_counter() - t)
            sweep = Sweep.create(spec, Path(tmp) / "ray")
            first = []
            t1 = time.perf_counter()
            run_ray(sweep, address=None,
                    on_row=lambda row: first.append(time.perf_counter()) if not first else None)
            wall = time.perf_counter() - t1
        finally:
            ray.shutdown()
        same = np.array_equal(sweep.frame()["final_val_loss"].to_numpy(), local["frame"]["final_val_loss"].to_numpy())
    runs = local["runs"]
    print(f"ray: init {init_s:.1f} s; empty task round trip median {1000 * statistics.median(trips):.2f} ms "
          f"over {n}; {runs} runs on 2 CPUs {wall:.2f} s vs local pool {local['wall_s']:.2f} s: "
          f"overhead {1000 * (wall - local['wall_s']) * 2 / runs:+.0f} ms per task (2 at a time); time to first "
          f"result {first[0] - t1:.2f} s vs {local['first_s']:.2f} s; same final losses: {same}")


def _points(n: int, seed: int = 0) -> pd.DataFrame:
    """n synthetic runs: 3 seeds over a grid of about n/3 cells."""
    rng = np.random.default_rng(seed)
    cells = n // 3
    nx = int(np.ceil(np.sqrt(cells)))
    ny = int(np.ceil(cells / nx))
    g, t, s = (a.ravel()[:n] for a in np.meshgrid(np.round(np.linspace(0.5, 2.0, nx), 3),
                                                   np.arange(1, ny + 1) * 10, [0, 1, 2], indexing="ij"))
    k = len(g)
    return pd.DataFrame(dict(init_gain=g, seq_len=t, seed=s,
                             verdict=rng.choice(["solved", "stuck at baseline", "diverged", ""], k),
                             final_val_loss=rng.random(k), baseline=0.17, memory_horizon=rng.integers(1, 400, k),
                             log10_ratio=-10 * rng.random(k), run=[f"r{i}" for i in range(k)]))


def bench_map(quick: bool) -> None:
    from dashboard.map_figures import trainability_map

    pts = _points(1000)
    trainability_map(pts, "init_gain", "seq_len")  # plotly's lazy imports, once
    for value in ("verdict", "loss_ratio", "memory_horizon", "log10_ratio"):
        build, to_json = [], []
        for _ in range(1 if quick else 7):
            t = time.perf_counter()
            fig = trainability_map(pts, "init_gain", "seq_len", value)
            build.append(time.perf_counter() - t)
            t = time.perf_counter()
            fig.to_json()
            to_json.append(time.perf_counter() - t)
        print(f"map at {len(pts)} points, {value}: build {1000 * statistics.median(build):.1f} ms, "
              f"to_json {1000 * statistics.median(to_json):.1f} ms (median; target < 1 s in all)")


def picture(sweep_dir: str, out: str, value: str, x: str | None, y: str | None) -> None:
    from dashboard.map_figures import trainability_map

    pts = read_csv(sweep_dir)
    cols = list(pts.columns)
    keys = cols[:cols.index("seed")]
    x, y = x or keys[0], y or (keys[1] if len(keys) > 1 else "seed")
    fig = trainability_map(pts, x, y, value, title=f"{Path(sweep_dir).name}: {value}")
    fig.update_layout(width=900, height=650)
    out_path = Path(out)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    html = out_path.with_suffix(".html")
    fig.write_html(html, include_plotlyjs=True, config={"displayModeBar": False})
    print(f"wrote {html}")
    if out_path.suffix.lower() != ".png":
        return
    chromium = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
    if not chromium:
        print("no Chromium on PATH: open the HTML and use the camera button for a PNG")
        return
    subprocess.run([chromium, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                    f"--screenshot={out_path.resolve()}", "--window-size=920,670", "--virtual-time-budget=5000",
                    html.resolve().as_uri()], check=True, capture_output=True, timeout=120)
    print(f"wrote {out_path}")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("what", choices=("pool", "ray", "map", "all", "picture"))
    p.add_argument("sweep_dir", nargs="?", help="picture: the sweep's directory (it holds sweep.csv)")
    p.add_argument("--quick", action="store_true", help="a smoke run: few runs, one repeat")
    p.add_argument("--ray-address", default=None, help="ray: a running cluster instead of a local instance")
    p.add_argument("--out", default="docs/sweep_map.png", help="picture: .png (needs Chromium) or .html")
    p.add_argument("--value", default="verdict", help="picture: verdict, loss_ratio, memory_horizon or log10_ratio")
    p.add_argument("--x", default=None)
    p.add_argument("--y", default=None)
    a = p.parse_args(argv)
    if a.what == "picture":
        if not a.sweep_dir:
            p.error("picture needs the sweep's directory")
        picture(a.sweep_dir, a.out, a.value, a.x, a.y)
        return 0
    if a.what in ("map", "all"):
        bench_map(a.quick)
    if a.what in ("pool", "all"):
        bench_pool(a.quick)
    if a.what in ("ray", "all"):
        bench_ray(a.quick, a.ray_address)
    return 0


if __name__ == "__main__":
    sys.exit(main())
