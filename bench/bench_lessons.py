"""Every lesson, every step, every config, trained through the library on this machine: how long
each lesson takes with its own settings (the target: under 30 s on the CPU) and what its
questions' answers come to.

    python bench/bench_lessons.py            # every lesson, its own settings (a few minutes on 2 cores)
    python bench/bench_lessons.py --quick    # 5 steps per run: checks that every lesson runs
    python bench/bench_lessons.py --lessons vanishing,gru --threads 1

Runs go to a temporary run store (BPTT_LAB_RUNS is set to it), deleted at the end. One torch
thread by default, as a training worker of the app runs.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

TARGET_S = 30.0  # a lesson with all its steps, on the CPU


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="5 training steps per run (checks, not timings)")
    ap.add_argument("--lessons", default="", help="comma-separated lesson ids (default: all)")
    ap.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    args = ap.parse_args()

    with tempfile.TemporaryDirectory(prefix="bench-lessons-") as tmp:
        os.environ["BPTT_LAB_RUNS"] = tmp
        import torch

        from rnn_core.lesson_answers import train_step
        from rnn_core.lessons import load_lessons

        torch.set_num_threads(args.threads)
        lessons, problems = load_lessons()
        for p in problems:
            print(f"refused: {p}")
        wanted = [x for x in args.lessons.split(",") if x] or list(lessons)
        steps = 5 if args.quick else None
        print(f"{'lesson':14s} {'step':>4s} {'runs':>4s} {'train steps':>11s} {'seconds':>8s}  answer")
        totals = {}
        for lid in wanted:
            lesson = lessons[lid]
            total = 0.0
            for k in range(len(lesson.steps)):
                t0 = time.perf_counter()
                views, ans = train_step(lesson, k, steps=steps)
                dt = time.perf_counter() - t0
                total += dt
                labels = lesson.choices(k)
                picked = " / ".join(labels[i] for i in ans.correct) or "—"
                n_steps = "+".join(str(v.steps_done) for v in views)
                print(f"{lid:14s} {k + 1:4d} {len(views):4d} {n_steps:>11s} {dt:8.1f}  {picked}: {ans.why}", flush=True)
            totals[lid] = total
        print()
        print(f"{'lesson':14s} {'seconds':>8s}  under {TARGET_S:g} s")
        for lid, total in totals.items():
            print(f"{lid:14s} {total:8.1f}  {'yes' if total < TARGET_S else 'NO'}")
        if args.quick:
            print("(--quick: 5 steps per run; the times are not the lessons' own)")


if __name__ == "__main__":
    main()
