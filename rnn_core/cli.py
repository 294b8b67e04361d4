"""Command line: python -m rnn_core train --set KEY=VALUE ... --out DIR

    python -m rnn_core train --set cell=lstm --set task=adding --set seq_len=50 --out runs/x
    python -m rnn_core resume runs/x [--steps 600]
    python -m rnn_core keys          # every key, its default and what is allowed
    python -m rnn_core export RUN --out FILE.zip     # RUN: a run name in the store, or a run directory
    python -m rnn_core import FILE.zip [--name NAME]  # checks the archive, prints the new run's name
    python -m rnn_core sweep SPEC.toml --out DIR [--workers N] [--ray-address ADDRESS]  # rnn_core/sweep_cli.py

Bad keys or values exit with status 2 and one line saying what was wrong; nothing is written.
A config whose estimated memory or time per step is over the server's limits (rnn_core.budget) is
refused the same way; `train --no-limits` trains it anyway.
A task that fixes its length (digits) takes it when seq_len is not given: --set task=digits is enough.
"""
from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

from .config import ConfigError, RunConfig, describe_allowed, make_config, parse_assignments
from .rules import SHOW_LIMIT, RunStoreError, show


class _Parser(argparse.ArgumentParser):
    """argparse's own refusals (a bad subcommand, a missing value) quote the word given: cut it, so a
    10,000-character argument is one short line after the usage, as every other error is."""

    def error(self, message: str) -> None:  # type: ignore[override]
        message = re.sub(r"'([^']*)'", lambda m: f"'{show(m.group(1))}'", message)
        self.print_usage(sys.stderr)
        self.exit(2, f"{self.prog}: error: {_shorten(show(message, 400), [])}\n")


def _parser() -> argparse.ArgumentParser:
    p = _Parser(prog="python -m rnn_core", description="Train a small RNN and record its gradients through time.")
    sub = p.add_subparsers(dest="command", required=True)
    t = sub.add_parser("train", help="train a run and save it into --out")
    t.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE",
                   help="a config value; repeat once per key (see 'python -m rnn_core keys')")
    t.add_argument("--out", required=True, help="directory to write the run into (must not hold a run already)")
    t.add_argument("--quiet", action="store_true", help="no progress bar")
    t.add_argument("--no-limits", action="store_true",
                   help="train even when the estimate is over the app server's limits (memory, time per step)")
    r = sub.add_parser("resume", help="continue a stopped run")
    r.add_argument("dir")
    r.add_argument("--steps", type=int, default=None, help="new total step budget")
    r.add_argument("--quiet", action="store_true")
    sub.add_parser("keys", help="list every config key with its default and allowed values")
    e = sub.add_parser("export", help="write a run as one .zip: its files, readable .csv tables, an offline HTML report")
    e.add_argument("run", help="a run name in the store (BPTT_LAB_RUNS, default runs/) or a run directory")
    e.add_argument("--out", required=True, help="the .zip file to write")
    i = sub.add_parser("import", help="check an exported .zip and add it to the store as a new run")
    i.add_argument("zip")
    i.add_argument("--name", default=None, help="the new run's name (default: the zip's file name; -2, -3, ... "
                                                "when taken)")
    from .sweep_cli import add_parser as add_sweep_parser

    add_sweep_parser(sub)  # sweep: rnn_core/sweep_cli.py
    return p


def _train(trainer, quiet: bool) -> int:
    from tqdm import tqdm

    bar = tqdm(total=trainer.cfg.steps, initial=trainer.step_index, disable=quiet, unit="step", file=sys.stderr)

    def show(tr, rec):
        bar.update(1)
        bar.set_postfix(loss=f"{rec.loss:.4g}", refresh=False)

    trainer.add_callback("on_step_end", show)
    try:
        trainer.run()
    except KeyboardInterrupt:
        trainer.stop()
    finally:
        bar.close()
    trainer.save()
    s = trainer.summary()
    from .summary import verdict_text

    loss = "n/a" if s["final_val_loss"] is None else f"{s['final_val_loss']:.4g}"
    extra = f" ({s['reason']})" if s["status"] != "finished" else ""
    print(f"{s['status']}{extra}: final val loss {loss} vs {s['val_baseline']:.4g} for the input-blind predictor on "
          f"the validation batch ({s['baseline_name']}; baseline {s['baseline']:.4g} in expectation): "
          f"{verdict_text(s)}; {s['steps_done']} steps; run saved to {trainer.out_dir}")
    return 0 if s["status"] in ("finished", "stopped") else 1


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "sweep":
        from .sweep_cli import run as run_sweep

        return run_sweep(args)
    if args.command in ("export", "import"):
        return _archive(args, argv if argv is not None else sys.argv[1:])
    from .trainer import Trainer

    try:
        if args.command == "keys":
            for name, field in RunConfig.model_fields.items():
                print(f"{name:24} default={field.default!r:12} {describe_allowed(name)}  {field.description or ''}")
            return 0
        if args.command == "train":
            cfg = make_config(parse_assignments(args.sets))
            out = Path(args.out)
            if (out / "config.json").exists():
                raise ConfigError(f"--out {out} already holds a run: choose a new directory or use 'resume {out}'")
            if not args.no_limits:
                _check_limits(cfg)
            trainer = Trainer(cfg, out_dir=out)
        else:
            trainer = Trainer.resume(args.dir, steps=args.steps)
        return _train(trainer, args.quiet)
    except (ConfigError, RunStoreError, OSError, ValueError) as err:  # OSError: a path the system refuses (too long, no access)
        print(f"error: {_shorten(_describe(err), argv if argv is not None else sys.argv[1:])}", file=sys.stderr)
        return 2


def _check_limits(cfg: RunConfig) -> None:
    """The app server's limits (rnn_core.settings, BPTT_LAB_MAX_JOB_MB / BPTT_LAB_MAX_STEP_S), so a
    config that would take the machine down is refused before it allocates; --no-limits skips it."""
    from . import budget
    from .settings import load_settings

    s = load_settings()
    problem = budget.Limits(s.max_job_mb * 2**20, s.max_step_s).check(budget.estimate(cfg))
    if problem:
        raise ConfigError(f"{problem} (or pass --no-limits to train it anyway)")


def _archive(args, argv: list[str]) -> int:
    """export and import (rnn_core.archive); export adds the HTML report when dashboard is importable."""
    from . import archive

    try:
        if args.command == "import":
            print(archive.import_run(args.zip, name=args.name))
            return 0
        try:
            from dashboard.report import html_report
        except ImportError as err:
            html_report = None
            print(f"note: no report.html in the archive (dashboard.report is not importable: {err})", file=sys.stderr)
        out = archive.export_run(archive.resolve_run(args.run), args.out, report=html_report)
        print(f"exported to {out}", file=sys.stderr)
        return 0
    except (archive.ArchiveError, ConfigError, RunStoreError, OSError, ValueError) as err:  # OSError, ValueError: a
        print(f"error: {_shorten(_describe(err), argv)}", file=sys.stderr)  # path too long, with NUL, no access
        return 2


def _shorten(message: str, argv: list[str]) -> str:
    """Cut every long command-line word that a message echoes (a path, a value) to SHOW_LIMIT characters.

    rnn_core's own messages already cut the values they echo; this also covers the messages that
    name a path (--out, resume DIR), so a 10,000-character argument is never printed in full."""
    words = {w for arg in argv for w in (arg, arg.partition("=")[2]) if len(w) > SHOW_LIMIT}
    for word in sorted(words, key=len, reverse=True):
        message = message.replace(word, show(word))
    # one line, whatever a path or value held: control characters (\n, NUL, U+0085) read as escapes
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in message)


def _describe(err: Exception) -> str:
    """An error's line: an OSError names its path cut to SHOW_LIMIT (its own text repeats the whole path)."""
    if isinstance(err, OSError) and err.filename is not None:
        return f"{err.strerror or type(err).__name__}: {show(repr(str(err.filename)))}"
    return str(err)
