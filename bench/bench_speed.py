"""How much does recording every diagnostic cost, against plain fused PyTorch training?

    python bench/bench_speed.py                          # CPU table, a few minutes on 2 cores
    python bench/bench_speed.py --device cuda            # GPU table
    python bench/bench_speed.py --cells lstm --T 200 --reps 5   # a quick look
    python bench/bench_speed.py --profile --cells lstm --T 200  # where a recording step spends its time

Per (cell, T) it times one training step, in ms, of the default adding task (B=32, H=64, Adam,
MSE), each way on the same device:

  plain     torch.nn.RNN/LSTM/GRU + nn.Linear, Adam, MSE on a pre-drawn batch: the floor
  bare      our model forward with record=True + backward + trace.read() for every layer
            (the engine's own cost: no optimiser step, no clipping, no spectra)
  step      Trainer.step() with record_every=1: everything recorded, as the app runs it
  unrolled  Trainer.step() with engine=unrolled: the retain_grad-per-h_t reference

The ways are measured interleaved (warm-up, then plain, bare, step, unrolled, plain, ...).
The ms columns are medians; each ratio is the median of the per-round ratios (way / plain of
the same round), so a slow spell of the machine, which lands on one round, cancels out.
Validation is switched off (eval_every=10000) so the timed steps are training steps only.
"""
from __future__ import annotations

import argparse
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from rnn_core.config import make_config  # noqa: E402
from rnn_core.model import build_model  # noqa: E402
from rnn_core.tasks import make_batch, spec as task_spec  # noqa: E402
from rnn_core.trainer import Trainer, task_loss  # noqa: E402

WAYS = ("plain", "bare", "step", "unrolled")
POOL = 4  # pre-drawn batches the plain and bare ways cycle through


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def _config(cell: str, T: int, device: str, engine: str = "fused"):
    # steps and eval_every at their maximum: no validation pass lands in a timed step
    return make_config(cell=cell, seq_len=T, steps=100_000, eval_every=10_000, record_every=1,
                       engine=engine, device=device)


def _batches(cfg, device: torch.device) -> list[tuple[torch.Tensor, torch.Tensor]]:
    gen = torch.Generator().manual_seed(7)
    return [tuple(t.to(device) for t in make_batch(cfg, gen, cfg.batch_size)) for _ in range(POOL)]


def plain_step(cell: str, T: int, device: torch.device):
    """The floor: PyTorch's own module, same shapes, optimiser and loss, nothing recorded."""
    cfg = _config(cell, T, device.type)
    torch.manual_seed(0)
    rnn = {"rnn": torch.nn.RNN, "lstm": torch.nn.LSTM, "gru": torch.nn.GRU}[cell](2, cfg.hidden_size).to(device)
    head = torch.nn.Linear(cfg.hidden_size, 1).to(device)
    opt = torch.optim.Adam([*rnn.parameters(), *head.parameters()], lr=cfg.lr)
    batches = _batches(cfg, device)
    k = [0]

    def step() -> None:
        x, y = batches[k[0] % POOL]
        k[0] += 1
        out, _ = rnn(x)  # (T, B, H)
        loss = torch.nn.functional.mse_loss(head(out[-1]), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        float(loss.detach())  # a training loop reads its loss: one sync, as Trainer.step has

    return step


def bare_step(cell: str, T: int, device: torch.device):
    """Our fused engine alone: forward with record=True, backward, read every trace."""
    cfg = _config(cell, T, device.type)
    sp = task_spec(cfg)
    model = build_model(cfg, sp).to(device).train()
    batches = _batches(cfg, device)
    k = [0]

    def step() -> None:
        x, y = batches[k[0] % POOL]
        k[0] += 1
        res = model(x, "fused", True)
        loss = task_loss(sp, res.pred, y)
        model.zero_grad(set_to_none=True)
        loss.backward()
        for tr in res.traces:
            tr.read()

    return step


def trainer_step(cell: str, T: int, device: torch.device, engine: str):
    tr = Trainer(_config(cell, T, device.type, engine))
    return tr.step


def time_case(cell: str, T: int, device: torch.device, reps: int, warmup: int,
              ways: tuple[str, ...]) -> tuple[dict[str, float], dict[str, float]]:
    """Medians of ms per step for each way, and medians of the per-round ratios way / plain."""
    makers = {"plain": lambda: plain_step(cell, T, device), "bare": lambda: bare_step(cell, T, device),
              "step": lambda: trainer_step(cell, T, device, "fused"),
              "unrolled": lambda: trainer_step(cell, T, device, "unrolled")}
    fns = {w: makers[w]() for w in ways}
    for _ in range(warmup):
        for fn in fns.values():
            fn()
    times: dict[str, list[float]] = {w: [] for w in ways}
    for _ in range(reps):  # interleaved: a burst of load from elsewhere lands on every way alike
        for w, fn in fns.items():
            _sync(device)
            t0 = time.perf_counter()
            fn()
            _sync(device)
            times[w].append((time.perf_counter() - t0) * 1e3)
    ms = {w: statistics.median(v) for w, v in times.items()}
    ratio = {w: statistics.median(a / b for a, b in zip(v, times["plain"])) for w, v in times.items()}
    if "unrolled" in times:
        ratio["unrolled/step"] = statistics.median(a / b for a, b in zip(times["unrolled"], times["step"]))
    return ms, ratio


def hardware(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(0)
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
        model = next(line.split(":", 1)[1].strip() for line in out.splitlines() if line.startswith("Model name"))
    except Exception:  # no lscpu: fall back to what Python knows
        model = platform.processor() or platform.machine()
    import os
    return f"{model}, {os.cpu_count()} cores"


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    ap.add_argument("--cells", default="rnn,lstm,gru")
    ap.add_argument("--T", default="50,200,1000", help="comma-separated sequence lengths")
    ap.add_argument("--reps", type=int, default=15, help="timed repetitions of each way (medians are reported)")
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--no-unrolled", action="store_true", help="skip the slow unrolled reference")
    ap.add_argument("--threads", type=int, default=0, help="torch intra-op threads (0: leave torch's default)")
    ap.add_argument("--profile", action="store_true", help="print a torch.profiler table of Trainer.step instead")
    args = ap.parse_args(argv)

    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        sys.exit("--device cuda: no CUDA device on this machine")
    if args.threads:
        torch.set_num_threads(args.threads)
    cells = args.cells.split(",")
    Ts = [int(t) for t in args.T.split(",")]
    if args.profile:
        from _profile_step import profile_step  # bench/ is on sys.path when run as a script
        for cell in cells:
            for T in Ts:
                profile_step(_config(cell, T, device.type), steps=max(3, args.reps // 3))
        return
    ways = tuple(w for w in WAYS if not (args.no_unrolled and w == "unrolled"))

    print(f"# bench_speed: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, device {device.type} "
          f"({hardware(device)}), torch {torch.__version__}, {torch.get_num_threads()} threads, "
          f"B=32, H=64, adding task, Adam; median of {args.reps} interleaved rounds after {args.warmup} warm-up; "
          "ratios are medians of per-round ratios")
    print(f"# command: python {' '.join(sys.argv)}\n")
    head = "| cell | T | plain ms | bare ms | step ms |" + (" unrolled ms |" if "unrolled" in ways else "")
    head += " bare/plain | step/plain |" + (" unrolled/step |" if "unrolled" in ways else "")
    print(head)
    print("|" + "---|" * (head.count("|") - 1))
    for cell in cells:
        for T in Ts:
            m, r = time_case(cell, T, device, args.reps, args.warmup, ways)
            row = f"| {cell} | {T} | {m['plain']:.2f} | {m['bare']:.2f} | {m['step']:.2f} |"
            if "unrolled" in m:
                row += f" {m['unrolled']:.2f} |"
            row += f" {r['bare']:.2f} | {r['step']:.2f} |"
            if "unrolled" in m:
                row += f" {r['unrolled/step']:.2f} |"
            print(row, flush=True)


if __name__ == "__main__":
    main()
