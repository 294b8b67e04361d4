"""The seeded mitigation table: what each remedy for vanishing and exploding gradients does.

Every row is one seeded run of the library, `Trainer(make_config(...)).run()`, read back through
`trainer.summary()` and `trainer.recorder`. Hyper-parameters were fixed before the runs (Adam,
lr 1e-3, batch 32, hidden 64, seed 0 unless a row says otherwise) and are not tuned to the outcome.

    flock /tmp/bptt_cpu.lock python bench/experiments.py            # the table in the README
    python bench/experiments.py --quick                               # 1/10 of the steps: a smoke test, not evidence
    python bench/experiments.py --only attention --json /tmp/x.json   # rows whose name contains 'attention'
    python bench/experiments.py --group 6                             # one group: 6 overfitting (~3 minutes)

The markdown table goes to stdout, progress to stderr. CPU only, not part of CI.
"""
from __future__ import annotations

import argparse
import json
import math
import sys
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from anywhere without installing

from rnn_core.config import RunConfig, make_config  # noqa: E402
from rnn_core.diagnostics import memory_horizon  # noqa: E402
from rnn_core.trainer import Trainer  # noqa: E402

FLOOR = 1e-300  # an exactly vanished gradient (0.0) is read as this, so its log stays finite
LAST_RECORDED = 5  # gradient profiles are averaged over this many last recorded steps
HIDDEN = ("steps", "record_every", "eval_every")  # bookkeeping keys left out of the config column
ALWAYS_SHOWN = ("task", "seq_len", "cell")  # shown even at their defaults, so each row reads on its own

ADDING = {"task": "adding", "seq_len": 150}  # T=150: where Le et al. (2015) show the tanh RNN failing
# Copy with a 100-step delay: our seq_len counts 10 symbols + gap + delimiter + 9 blanks, so delay 100 = 120.
COPY = {"task": "copy", "seq_len": 120}
IRNN = {"cell": "rnn", "activation": "relu", "init": "identity"}  # Le et al.: ReLU, W_hh = I, zero bias
# A run built to blow up: the IRNN at T=50 with plain SGD at lr 0.1 (no clipping, no adaptive step size).
EXPLODE = {"task": "adding", "seq_len": 50, **IRNN, "optimizer": "sgd", "lr": 0.1}
# Overfitting needs a finite training set: 64 sequences of the adding task at T=20, reused for 3,000
# steps (1,500 epochs) by an LSTM with 128 units, enough to learn each by heart. T=20 keeps memory
# out of the way: with fresh sequences the same model learns the task. The remedies' strengths are
# the usual first tries, fixed before any run: dropout 0.5 (on the readout: one layer), AdamW's
# decoupled weight decay 0.1, input noise of std 0.1, early stopping after 5 evaluations (250 steps)
# without a better validation loss.
OVERFIT = {"task": "adding", "seq_len": 20, "cell": "lstm", "hidden_size": 128, "lr": 3e-3, "train_size": 64}


@dataclass(frozen=True)
class Experiment:
    effect: str  # the known effect this row is evidence for
    name: str
    settings: dict  # config keys that differ from the defaults
    steps: int
    record_every: int = 50  # profiles every 50 steps are enough for the gradient-path columns
    notes: str = ""


EXPERIMENTS: list[Experiment] = [
    # 1. Vanishing gradients on the adding task: the tanh RNN stays at the baseline, LSTM and IRNN do not.
    Experiment("1 adding T=150", "tanh RNN", {**ADDING}, 3000),
    Experiment("1 adding T=150", "LSTM (forget bias 1)", {**ADDING, "cell": "lstm"}, 3000),
    # Le et al. clip the gradient norm for every model; clip=1 is their setting, Adam lr 1e-3 ours.
    Experiment("1 adding T=150", "IRNN", {**ADDING, **IRNN, "clip": 1.0}, 3000),
    # 2. Long memory: the LSTM with an open forget gate beats the memoryless copy baseline; bias 0 is the control.
    Experiment("2 copy delay 100", "LSTM forget bias 1", {**COPY, "cell": "lstm", "forget_bias": 1.0}, 3000),
    Experiment("2 copy delay 100", "LSTM forget bias 0", {**COPY, "cell": "lstm", "forget_bias": 0.0}, 3000),
    # 3. Exploding gradients: the same run without and with clipping.
    Experiment("3 clipping", "IRNN SGD lr 0.1, no clip", {**EXPLODE}, 1500),
    Experiment("3 clipping", "IRNN SGD lr 0.1, clip norm 1", {**EXPLODE, "clip": 1.0}, 1500),
    Experiment("3 clipping", "IRNN SGD lr 0.1, clip value 0.1", {**EXPLODE, "clip": 0.1, "clip_mode": "value"}, 1500),
    # 4. Attention gives every h_t a direct path to the loss: the gradient profile flattens.
    Experiment("4 attention", "tanh RNN, attention none", {**ADDING}, 1000, record_every=10),
    Experiment("4 attention", "tanh RNN, attention dot", {**ADDING, "attention": "dot"}, 1000, record_every=10),
    # Other remedies on the adding task at T=150, same settings as effect 1.
    Experiment("5 other remedies", "GRU", {**ADDING, "cell": "gru"}, 3000),
    Experiment("5 other remedies", "tanh RNN, orthogonal W_hh", {**ADDING, "init": "orthogonal"}, 3000),
    Experiment("5 other remedies", "tanh RNN, curriculum 10→150", {**ADDING, "curriculum": True, "curriculum_start": 10}, 3000),
    # 6. Overfitting a finite training set, and each remedy for it (the gap: val − training-set loss).
    Experiment("6 overfitting", "LSTM, 64 sequences", {**OVERFIT}, 3000),
    Experiment("6 overfitting", "+ dropout 0.5", {**OVERFIT, "dropout": 0.5}, 3000),
    Experiment("6 overfitting", "+ weight decay 0.1 (AdamW)", {**OVERFIT, "optimizer": "adamw", "weight_decay": 0.1}, 3000),
    Experiment("6 overfitting", "+ input noise 0.1", {**OVERFIT, "input_noise": 0.1}, 3000),
    Experiment("6 overfitting", "+ early stopping (patience 5)", {**OVERFIT, "early_stopping_patience": 5}, 3000),
    Experiment("6 overfitting", "4,096 sequences (reference)", {**OVERFIT, "train_size": 4096}, 3000),
    Experiment("6 overfitting", "fresh sequences (reference)", {**OVERFIT, "train_size": 0}, 3000),
]


@dataclass
class Result:
    experiment: Experiment
    config: str
    steps: int  # the step budget it ran with (scaled by --quick)
    summary: dict
    seconds: float
    grad_ratio_log10: float | None = None  # mean log10(‖∂L/∂h_0‖ / ‖∂L/∂h_{T-1}‖) over the last recorded steps
    horizon: float | None = None  # mean steps back to a 1e-3 drop (T when it never drops that far)
    horizon_capped: bool = False  # some profile never dropped by 1e-3: the horizon is at least T
    val_blind: float | None = None  # regression read at the last step: best constant's MSE on this val set


def config_text(cfg: RunConfig) -> str:
    """The keys that differ from the defaults (and the task, length and cell always), as KEY=VALUE."""
    defaults = RunConfig()
    keys = [k for k in RunConfig.model_fields if k not in HIDDEN
            and (k in ALWAYS_SHOWN or getattr(cfg, k) != getattr(defaults, k))]
    return " ".join(f"{k}={_fmt_value(getattr(cfg, k))}" for k in keys)


def _fmt_value(v) -> str:
    return str(v).lower() if isinstance(v, bool) else f"{v:g}" if isinstance(v, float) else str(v)


def gradient_path(trainer: Trainer) -> tuple[float | None, float | None, bool]:
    """Summarise ‖∂L/∂h_t‖ of the top layer over the last recorded finite profiles.

    A curriculum step's profile is NaN-padded past its active length: each profile is read over
    its own length, so "T-1" means that step's last timestep.
    Returns (mean log10 of g_0 / g_{T-1}, mean memory horizon in steps, whether a horizon hit its T).
    """
    arrays = trainer.recorder.stacked()
    if "timestep_grads" not in arrays:
        return None, None, False
    cfg = trainer.cfg
    top = (cfg.layers - 1) * (2 if cfg.bidirectional else 1)  # forward direction of the top layer
    profiles = []
    for g in arrays["timestep_grads"][:, top, :]:  # (T,) per recorded step
        n = len(g) - int(np.isnan(g[::-1]).cumprod().sum())  # drop the trailing NaN padding only
        g = g[:n]
        if n >= 2 and np.isfinite(g).all() and g[-1] > 0:  # a diverged step's profile drops out
            profiles.append(np.maximum(g, FLOOR))
    profiles = profiles[-LAST_RECORDED:]
    if not profiles:
        return None, None, False
    ratios = [np.log10(g[0] / g[-1]) for g in profiles]
    horizons = [memory_horizon(g) for g in profiles]  # the app's own definition, ratio HORIZON_RATIO
    capped = any(h == len(g) for h, g in zip(horizons, profiles))  # never fell: the whole length
    return float(np.mean(ratios)), float(np.mean(horizons)), capped


def val_blind_loss(trainer: Trainer) -> float | None:
    """The best input-blind guess on the run's own 256 validation sequences (last-step MSE tasks).

    The task baseline is the population value (1/6 for adding); a 256-sequence val set can sit well
    below it (0.152 at T=50, seed 0), so a net that learnt nothing can still "beat" the baseline.
    """
    if trainer.spec.loss != "mse" or trainer.spec.read != "last":
        return None
    return trainer.val_baseline  # for adding, rnn_core's tasks.baseline_loss is that best constant


def run_one(exp: Experiment, scale: float) -> Result:
    steps = max(2, int(round(exp.steps * scale)))
    cfg = make_config(exp.settings, steps=steps, seed=0, record_every=exp.record_every, eval_every=50)
    t0 = time.perf_counter()
    trainer = Trainer(cfg)
    trainer.run()
    seconds = time.perf_counter() - t0
    ratio, horizon, capped = gradient_path(trainer)
    return Result(exp, config_text(cfg), steps, trainer.summary(), seconds, ratio, horizon, capped,
                  val_blind_loss(trainer))


def _num(x: float | None, digits: int = 4) -> str:
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "—" if x is None else str(x)
    return f"{x:.{digits}g}"


def _gap(s: dict) -> str:
    """'0.1234 (train set 0.0012)' for a run with a finite training set, — otherwise."""
    gap, train = s.get("generalization_gap"), s.get("final_train_eval_loss")
    return "—" if gap is None else f"{_num(gap)} (train set {_num(train)})"


def markdown_table(results: list[Result]) -> str:
    head = ["effect", "experiment", "config (non-default keys)", "steps", "final val loss", "baseline",
            "val-set best constant", "beat baseline?", "status", "log10 g(0)/g(T-1)", "memory horizon (steps)",
            "gap: val − train set"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in results:
        s = r.summary
        steps = f"{s['steps_done']}/{r.steps}"
        if s["status"] == "diverged":
            steps = f"{s['steps_done']} (diverged at {s['diverged_at']})"
        horizon = "—" if r.horizon is None else ("≥" if r.horizon_capped else "") + f"{r.horizon:.0f}"
        lines.append("| " + " | ".join([
            r.experiment.effect, r.experiment.name, f"`{r.config}`", steps,
            _num(s["final_val_loss"]), _num(s["baseline"]), _num(r.val_blind), "yes" if s["beat_baseline"] else "no",
            s["status"], "—" if r.grad_ratio_log10 is None else f"{r.grad_ratio_log10:.1f}", horizon,
            _gap(s),
        ]) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="1/10 of the steps: checks the script, proves nothing")
    ap.add_argument("--only", default="", help="run only experiments whose name or effect contains this text")
    ap.add_argument("--group", default="", help="run only one group, by its number (e.g. 6: overfitting)")
    ap.add_argument("--json", default="", help="also write the results to this JSON file")
    args = ap.parse_args(argv)

    # One thread: the matrices are tiny (B=32, H=64) and the 2 cores are shared; with 2 threads a
    # contended step took 2-3x longer than with 1.
    torch.set_num_threads(1)
    scale = 0.1 if args.quick else 1.0
    chosen = [e for e in EXPERIMENTS if args.only.lower() in (e.name + " " + e.effect).lower()
              and (not args.group or e.effect.split(" ", 1)[0] == args.group)]
    if not chosen:
        groups = sorted({e.effect.split(" ", 1)[0] for e in EXPERIMENTS})
        ap.error(f"--only {args.only!r} --group {args.group!r} match no experiment (groups: {', '.join(groups)})")
    started = time.perf_counter()
    results = []
    for i, exp in enumerate(chosen, 1):
        print(f"[{i}/{len(chosen)}] {exp.name} ...", end=" ", file=sys.stderr, flush=True)
        r = run_one(exp, scale)
        s = r.summary
        print(f"{s['status']}, val {_num(s['final_val_loss'])} vs {_num(s['baseline'])}, {r.seconds:.0f} s",
              file=sys.stderr, flush=True)
        results.append(r)
    total = time.perf_counter() - started

    when = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    print(f"<!-- bench/experiments.py{' --quick' if args.quick else ''}; {when}; torch {torch.__version__}, "
          f"1 thread, {total / 60:.1f} min -->")
    print(markdown_table(results))
    if args.json:
        Path(args.json).write_text(json.dumps([{
            "effect": r.experiment.effect, "name": r.experiment.name, "config": r.config, "seconds": r.seconds,
            "grad_ratio_log10": r.grad_ratio_log10, "horizon": r.horizon, "horizon_capped": r.horizon_capped,
            "val_blind": r.val_blind,
            **r.summary} for r in results], indent=1, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
