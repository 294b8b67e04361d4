"""Paper checks: train every run of rnn_core.papers and write docs/paper_checks.json.

Each run is an ordinary run, saved into the run store (`$BPTT_LAB_RUNS`, default ./runs, or
--runs DIR), so the app opens it with `/?run=NAME`. A run that is already there, finished with the
same config, is read back instead of trained again (--force trains it anew). Outcomes, not timings:
the run wall times in the file are for planning only (the machine is shared).

    nice -n 10 python bench/papers.py                      # every run: tens of minutes on 2 cores
    python bench/papers.py --only le2015                    # the runs of one check
    python bench/papers.py --quick --results /tmp/q.json    # 1/100 of the steps: checks the script, proves nothing

Progress goes to stderr, the table of checks to stdout. CPU, one torch thread.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run from anywhere without installing

from rnn_core import papers, store  # noqa: E402
from rnn_core.config import make_config  # noqa: E402
from rnn_core.trainer import Trainer  # noqa: E402

RESULTS = ROOT / "docs" / "paper_checks.json"
COMMAND = "nice -n 10 python bench/papers.py"


def _finished_same(path: Path, cfg) -> bool:
    try:
        data = store.load_run(path)
    except store.RunStoreError:
        return False
    return data.status.get("status") in ("finished", "diverged") and make_config(data.config) == cfg


def train(name: str, values: dict, root: Path, force: bool) -> dict:
    cfg = make_config(values)
    path = root / name
    if not force and _finished_same(path, cfg):
        print(f"{name}: already in {root}, read back", file=sys.stderr)
        previous = _previous_run(name)
        return {"wall_s": previous.get("wall_s")}  # the wall time of the command that trained it
    if path.exists():
        import shutil

        shutil.rmtree(path)  # a half-done or different run under this name: start clean
    t0 = time.perf_counter()
    tr = Trainer(cfg, out_dir=path)
    last = t0
    while not tr.done:
        tr.run(max_steps=500)
        now = time.perf_counter()
        if now - last > 30 or tr.done:
            print(f"{name}: step {tr.step_index}/{cfg.steps}, val {tr.last_val}, {now - t0:.0f} s", file=sys.stderr)
            last = now
    return {"wall_s": round(time.perf_counter() - t0, 1)}


def _previous_run(name: str) -> dict:
    try:
        return json.loads(RESULTS.read_text())["runs"].get(name, {})
    except (OSError, ValueError, KeyError):
        return {}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=Path, default=None, help="run store folder (default: $BPTT_LAB_RUNS or ./runs)")
    ap.add_argument("--results", type=Path, default=RESULTS, help="where to write the results JSON")
    ap.add_argument("--only", default=None, help="check id (hs1997, le2015, arjovsky2016, pascanu2013)")
    ap.add_argument("--quick", action="store_true", help="1/100 of the steps: a smoke test, not evidence")
    ap.add_argument("--force", action="store_true", help="train runs again even when already saved")
    args = ap.parse_args()
    torch.set_num_threads(1)
    root = args.runs or store.runs_root()
    checks = [c for c in papers.CHECKS if args.only in (None, c.id)]
    if not checks:
        sys.exit(f"--only {args.only}: no such check (known: {', '.join(papers.CHECK)})")
    names = list(dict.fromkeys(n for c in checks for n in c.runs))
    started = datetime.now(timezone.utc)
    runs: dict[str, dict] = {}
    for name in names:
        values = dict(papers.RUNS[name])
        if args.quick:
            values["steps"] = max(2, values["steps"] // 100)
        info = train(name, values, root, args.force)
        numbers = papers.load_numbers(root / name)
        s = numbers.summary
        finished = datetime.fromtimestamp((root / name / "status.json").stat().st_mtime, timezone.utc)
        runs[name] = {"config": papers.non_default(numbers.cfg), "command": papers.command_line(name),
                      "finished": finished.strftime("%Y-%m-%d %H:%M UTC"),
                      "status": s.get("status"), "steps_done": s.get("steps_done"),
                      "final_val_loss": s.get("final_val_loss"), "val_baseline": s.get("val_baseline"),
                      "beat_baseline": s.get("beat_baseline"), **info}
    numbers = {n: papers.load_numbers(root / n) for n in names}
    out = []
    for c in checks:
        o = papers.evaluate(c, numbers)
        out.append({"id": c.id, "paper": c.paper, "title": c.title, "claim": c.claim, "criterion": c.criterion,
                    "settings": c.settings, "runs": list(c.runs), "ours": o.ours, "value": o.value,
                    "agree": o.agree, "detail": o.detail})
        print(f"| {c.paper} | {c.title} | {o.ours} | {papers.agreement_text(o.agree)} |")
    result = {
        "generated": started.strftime("%Y-%m-%d %H:%M UTC"),  # when this file was written; each run has its own time
        "command": COMMAND + (" --quick" if args.quick else "") + (f" --only {args.only}" if args.only else ""),
        "quick": args.quick,
        "machine": f"{platform.machine()}, {os.cpu_count()} cores (shared), {torch.get_num_threads()} torch thread, "
                   f"torch {torch.__version__}",
        "runs": runs, "checks": out,
    }
    if args.only and args.results.is_file():  # keep the other checks' rows
        old = json.loads(args.results.read_text())
        if not old.get("quick") and not args.quick:
            kept = [c for c in old.get("checks", []) if c["id"] != args.only]
            result["checks"] = sorted(kept + out, key=lambda c: list(papers.CHECK).index(c["id"]))
            result["runs"] = {**old.get("runs", {}), **runs}
    args.results.parent.mkdir(parents=True, exist_ok=True)
    args.results.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n")
    print(f"wrote {args.results}", file=sys.stderr)


if __name__ == "__main__":
    main()
