"""What a config will cost before it runs: memory and time per step, estimated from its shapes.

A run that cannot fit is refused with one line before any memory is taken, instead of growing
a server to 15 GB. The estimate is a model fitted on this project's own measurements (peak RSS
and step time on a 2-core CPU, one torch thread; `bench/bench_budget.py` prints both), not a guarantee:

- memory: the fused kernels keep every gate activation of every timestep for the backward
  pass, and the probes and recomputed gates of the exact-gradient read add as much again, so
  the bytes grow as T·B·H per layer and direction, with a per-cell constant (measured 108, 113
  and 250 bytes for rnn, lstm and gru at T=1000, H=256);
- time: a fixed cost per step, a cost per timestep and layer-direction (the scans and the
  kernels' own loops), and the matmul FLOPs at the machine's measured rate.

Nothing here imports torch. The estimate is not timed against the machine's load of the moment:
a probe timed at server start, while the workers import torch, read 10x slow and would refuse
configs this machine serves well.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from .config import RunConfig

VAL_BATCH = 256  # the trainer's validation batch (trainer.VAL_BATCH): evaluated without a graph
BYTES_PER_UNIT = {"rnn": 110.0, "lstm": 120.0, "gru": 250.0}  # per T·B·H·(layer-direction), fitted
GATES = {"rnn": 1, "lstm": 4, "gru": 3}
BASE_BYTES = 400 * 2**20  # the process itself: torch, the model, the recorder's bounded arrays
STEP_OVERHEAD_S = 0.004  # Python and dispatch per step (measured ~4-8 ms for a tiny model)
PER_TIMESTEP_S = 6e-6  # per timestep and layer-direction: the scans and the kernels' time loops
REFERENCE_FLOPS_PER_S = 25e9  # fused fwd+bwd+read on the 2-core CPU this was fitted on, 1 thread
# How much slower than its FLOPs each cell's kernels and reads run there (bench/bench_budget.py at
# T=1000, H=256: the GRU's reset-gate product and scans, the RNN's ATen loop; oneDNN's LSTM is close)
CELL_TIME_FACTOR = {"rnn": 1.7, "lstm": 1.15, "gru": 2.7}
INPUT_SIZE = {"adding": 2, "copy": 10, "temporal_order": 8, "sine": 1}  # digits, charlm: below



@dataclass(frozen=True)
class Estimate:
    bytes: int  # peak resident memory of a process running this config
    step_s: float  # seconds per training step
    run_s: float  # seconds for all `steps`
    # seq_len × hidden_size × batch_size × layers (× 2 bidirectional): what memory and time grow with
    shape: int = 0
    shape_text: str = ""  # that product written out, for the messages
    on_cpu: bool = True  # device cpu or auto: the shape limit is a CPU server's

    def describe(self) -> str:
        return f"≈ {_size(self.bytes)} · ≈ {_duration(self.step_s)}/step · ≈ {_duration(self.run_s)} for the run"


def _max_shape_setting() -> int:
    from .settings import load_settings

    return load_settings().max_shape


LOWER = "lower seq_len, hidden_size, layers or batch_size"


@dataclass(frozen=True)
class Limits:
    max_bytes: int = 3 * 2**30  # one job; the pool runs one job per core, so 2 cores hold 6 GB
    # a step that would take longer cannot be stopped within about a second (see Trainer.request_stop)
    max_step_s: float = 1.5
    # the largest seq_len × hidden_size × batch_size × layers (× directions) on CPU: BPTT_LAB_MAX_SHAPE
    max_shape: int = field(default_factory=_max_shape_setting)

    def check(self, est: Estimate) -> str | None:
        """None when the config fits, else one line saying what is over, by how much, and the limit."""
        product = f" ({est.shape_text})" if est.shape_text else ""
        if est.bytes > self.max_bytes:
            return (f"this config needs {est.describe().split(' · ')[0]} of memory{product}; this server allows "
                    f"{_size(self.max_bytes)} per run (BPTT_LAB_MAX_JOB_MB): {LOWER}")
        if est.step_s > self.max_step_s:
            return (f"one step would take {_duration(est.step_s)}{product}; this server allows "
                    f"{_duration(self.max_step_s)} per step (BPTT_LAB_MAX_STEP_S): {LOWER}")
        if est.on_cpu and est.shape > self.max_shape:
            return (f"{est.shape_text} is over this server's limit of {self.max_shape:,} on CPU "
                    f"(BPTT_LAB_MAX_SHAPE): {LOWER}")
        return None


def input_size(cfg: RunConfig) -> int:
    if cfg.task == "digits":
        return 1 if cfg.digits_mode == "pixel" else 8
    if cfg.task == "charlm":
        return cfg.embed_size
    return INPUT_SIZE[cfg.task]


def flops_per_step(cfg: RunConfig) -> float:
    """FLOPs of the recurrent matmuls: forward, backward (×3 together) and the exact read (×0.5),
    plus the validation forward amortised over eval_every steps."""
    H, D, G = cfg.hidden_size, 2 if cfg.bidirectional else 1, GATES[cfg.cell]
    total = 0.0
    for layer in range(cfg.layers):
        inp = input_size(cfg) if layer == 0 else D * H
        total += D * G * H * (inp + H) * 2 * cfg.seq_len * cfg.batch_size
    evals = VAL_BATCH / cfg.batch_size / cfg.eval_every  # a forward of the val batch every eval_every steps
    return total * (3.5 + evals)


def estimate(cfg: RunConfig, flops_per_s: float | None = None) -> Estimate:
    rate = flops_per_s or REFERENCE_FLOPS_PER_S
    ld = cfg.layers * (2 if cfg.bidirectional else 1)
    units = cfg.seq_len * cfg.batch_size * cfg.hidden_size * ld
    step = STEP_OVERHEAD_S + PER_TIMESTEP_S * cfg.seq_len * ld + CELL_TIME_FACTOR[cfg.cell] * flops_per_step(cfg) / rate
    nbytes = int(BASE_BYTES + BYTES_PER_UNIT[cfg.cell] * units)
    return Estimate(nbytes, step, step * cfg.steps, units, shape_text(cfg), cfg.device in ("cpu", "auto"))


def shape_text(cfg: RunConfig) -> str:
    """'seq_len × hidden_size × batch_size × layers = 2000 × 512 × 32 × 4 × 2 directions = 262,144,000'."""
    bi = cfg.bidirectional
    names = "seq_len × hidden_size × batch_size × layers" + (" × 2 directions" if bi else "")
    factors = [cfg.seq_len, cfg.hidden_size, cfg.batch_size, cfg.layers] + ([2] if bi else [])
    total = 1
    for f in factors:
        total *= f
    return f"{names} = {' × '.join(map(str, factors))} = {total:,}"


def _size(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit != "GB" else f"{n:.1f} GB"
        n /= 1024
    return f"{n:.1f} GB"


def _duration(s: float) -> str:
    if s < 1:
        return f"{s * 1e3:.0f} ms"
    if s < 120:
        return f"{s:.1f} s"
    if s < 7200:
        return f"{s / 60:.0f} min"
    return f"{s / 3600:.1f} h"
