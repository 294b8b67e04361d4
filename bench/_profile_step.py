"""Where does a recording Trainer.step spend its time? torch.profiler's op table plus cProfile's Python view."""
from __future__ import annotations

import cProfile
import io
import pstats

from torch.profiler import ProfilerActivity, profile

from rnn_core.trainer import Trainer


def profile_step(cfg, steps: int = 5, rows: int = 20) -> None:
    tr = Trainer(cfg)
    for _ in range(3):  # warm-up: first-call allocations and kernel selection are not the steady state
        tr.step()
    acts = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if tr.device.type == "cuda" else [])
    with profile(activities=acts) as prof:
        for _ in range(steps):
            tr.step()
    print(f"\n## {cfg.cell} T={cfg.seq_len} device={tr.device}: torch.profiler, {steps} steps")
    sort = "self_cuda_time_total" if tr.device.type == "cuda" else "self_cpu_time_total"
    print(prof.key_averages().table(sort_by=sort, row_limit=rows))
    pr = cProfile.Profile()
    pr.enable()
    for _ in range(steps):
        tr.step()
    pr.disable()
    buf = io.StringIO()
    pstats.Stats(pr, stream=buf).sort_stats("cumulative").print_stats(rows)
    print(f"## cProfile, {steps} steps (cumulative)\n" + buf.getvalue())
