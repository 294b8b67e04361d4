"""How good is rnn_core.budget's estimate? Each config trains 3 steps in a fresh process (one
torch thread); its peak resident memory and its step time are printed beside the estimate, as the
app shows it.

    python bench/bench_budget.py
"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from rnn_core import budget, make_config  # noqa: E402

CASES = [dict(cell="rnn"), dict(cell="lstm"), dict(cell="gru"),
         dict(cell="rnn", seq_len=1000, hidden_size=256), dict(cell="lstm", seq_len=1000, hidden_size=256),
         dict(cell="gru", seq_len=1000, hidden_size=256),
         dict(cell="lstm", seq_len=500, hidden_size=256, layers=2, bidirectional=True),
         dict(cell="lstm", seq_len=1000, hidden_size=128, batch_size=128)]

CHILD = r"""
import json, resource, sys, time, torch
torch.set_num_threads(1)
sys.path.insert(0, sys.argv[2])
from rnn_core import make_config
from rnn_core.trainer import Trainer
tr = Trainer(make_config(steps=3, **json.loads(sys.argv[1])))
times = []
for _ in range(3):
    t0 = time.perf_counter(); tr.step(); times.append(time.perf_counter() - t0)
print(json.dumps({"peak": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024, "step": sorted(times)[1]}))
"""


def main() -> None:
    print("| config | estimated memory | peak RSS | estimated step | measured step (median of 3, eval included) |")
    print("|---|---|---|---|---|")
    for kw in CASES:
        est = budget.estimate(make_config(**kw))
        out = subprocess.run([sys.executable, "-c", CHILD, json.dumps(kw), str(ROOT)], capture_output=True,
                             text=True, check=True).stdout
        got = json.loads(out.strip().splitlines()[-1])
        label = " ".join(f"{k}={v}" for k, v in kw.items())
        print(f"| {label} | {est.bytes / 2**20:.0f} MB | {got['peak'] / 2**20:.0f} MB | {est.step_s * 1e3:.0f} ms "
              f"| {got['step'] * 1e3:.0f} ms |", flush=True)


if __name__ == "__main__":
    main()
