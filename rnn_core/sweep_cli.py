"""`python -m rnn_core sweep SPEC.toml --out DIR [--workers N] [--ray-address ADDRESS]`: the CLI's
sweep subcommand (rnn_core.cli adds the parser and calls `run`).

    python -m rnn_core sweep bench/sweeps/gain_by_length.toml --out runs/gain_by_length
    python -m rnn_core sweep SPEC.toml --out runs/x --ray-address auto     # a running Ray cluster

Every point is validated first (a bad one exits with status 2 and one line, nothing is written);
then a progress bar counts the runs. Running it again skips the finished runs; Ctrl-C stops the
runs in flight, writes sweep.csv and says how to continue.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path


def add_parser(sub) -> None:
    s = sub.add_parser("sweep", help="train every point x seed of a sweep spec (TOML) into DIR, with DIR/sweep.csv")
    s.add_argument("spec", help="the sweep spec: [base] config keys, [grid] up to 3 keys with lists, seeds = [...]")
    s.add_argument("--out", required=True, help="the sweep's directory, e.g. runs/NAME: its runs go beside it, "
                                                "as runs/NAME-p0000-s0, ...; an existing one is continued")
    s.add_argument("--workers", type=int, default=None, help="runs that train at once on this machine "
                                                             "(default: one per core)")
    s.add_argument("--ray-address", default=None, metavar="ADDRESS",
                   help="run the points as Ray tasks on the cluster at ADDRESS: auto, or HOST:PORT "
                        "(pip install -r requirements-ray.txt)")
    s.add_argument("--quiet", action="store_true", help="no progress bar")
    s.add_argument("--no-limits", action="store_true",
                   help="train points even when their estimate is over the app server's limits")


def run(args: argparse.Namespace) -> int:
    from .config import ConfigError
    from .rules import show
    from .sweep import Sweep, SweepError, connect_ray
    from .sweep_spec import SpecError, parse_spec

    try:
        if args.workers is not None and not 1 <= args.workers <= 256:
            raise SweepError(f"--workers {args.workers} is not allowed: give 1 to 256")
        path = Path(args.spec)
        try:
            text = path.read_text()
        except (OSError, UnicodeDecodeError) as err:
            raise SweepError(f"cannot read the spec {show(str(path))}: {type(err).__name__}") from None
        spec = parse_spec(text)
        if not args.no_limits:
            _check_limits(spec)
        # before anything is written: a clear line when Ray is missing or the cluster does not answer
        joined = connect_ray(args.ray_address) if args.ray_address is not None else False
        sweep = Sweep.create(spec, args.out)
    except (SpecError, SweepError, ConfigError, OSError) as err:
        print(f"error: {show(str(err), 400)}", file=sys.stderr)
        return 2
    try:
        return _run(args, sweep)
    finally:
        if joined:
            import ray

            ray.shutdown()


def _run(args: argparse.Namespace, sweep) -> int:
    from tqdm import tqdm

    from .rules import show
    from .sweep import SweepError, run_local, run_ray

    todo = len(sweep.todo())
    total = len(sweep.tasks)
    bar = tqdm(total=total, initial=total - todo, disable=args.quiet, unit="run", file=sys.stderr)

    def on_row(row: dict) -> None:
        bar.update(1)
        bar.set_postfix_str(f"{row['run']}: {row.get('verdict') or row['status']}", refresh=False)

    where = f"Ray at {args.ray_address}" if args.ray_address is not None else "this machine"
    try:
        if args.ray_address is not None:
            counts = run_ray(sweep, None, on_row=on_row)  # connected above
        else:
            counts = run_local(sweep, args.workers, on_row=on_row)
    except KeyboardInterrupt:
        bar.close()
        c = sweep.counts()
        print(f"interrupted: {c['done']} of {c['runs']} runs done, the rest marked in {sweep.dir / 'sweep.csv'}; "
              "run the same command again to continue", file=sys.stderr)
        return 130
    except SweepError as err:
        bar.close()
        print(f"error: {show(str(err), 400)}", file=sys.stderr)
        return 2
    bar.close()
    failed = f", {counts['failed']} failed (rerun to retry; sweep.csv says why)" if counts["failed"] else ""
    print(f"{counts['done']} of {counts['runs']} runs done on {where}{failed}; table in {sweep.dir / 'sweep.csv'}")
    return 0 if counts["done"] == counts["runs"] else 1


def _check_limits(spec) -> None:
    """Every point against the app server's limits (as `train` does), before anything runs."""
    from . import budget
    from .settings import load_settings
    from .sweep_spec import SpecError, point_label

    s = load_settings()
    limits = budget.Limits(s.max_job_mb * 2**20, s.max_step_s)
    for run in spec.runs():
        problem = limits.check(budget.estimate(run.cfg))
        if problem:
            raise SpecError(f"point {point_label(run.values)}: {problem} (or pass --no-limits)")
