"""The one config schema: it drives the CLI, the app's widgets, the URL and saved runs.

Every field has a type, a range or a closed set of choices, and a default with a
comment saying why. Field names are the public keys (`--set KEY=VALUE`, `?KEY=VALUE`).
The rules between keys (what has no effect where, what cannot be combined) live in rules.py;
neither module imports torch, so reading a config is cheap.
"""
from __future__ import annotations

from typing import Any, Literal, Mapping

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from . import rules

Task = Literal["adding", "copy", "temporal_order", "digits", "sine", "charlm"]
Cell = Literal["rnn", "lstm", "gru"]
Activation = Literal["tanh", "relu", "sigmoid", "linear"]
Init = Literal["default", "xavier", "kaiming", "orthogonal", "identity"]
Optimizer = Literal["sgd", "momentum", "adam", "adamw", "rmsprop", "nadam"]
ClipMode = Literal["norm", "value"]
Device = Literal["auto", "cpu", "cuda", "mps"]
Engine = Literal["auto", "fused", "unrolled"]
Norm = Literal["none", "layer", "batch"]
Attention = Literal["none", "dot", "additive"]
Schedule = Literal["constant", "step", "exponential", "cosine"]
Freeze = Literal["none", "input", "recurrent", "input+recurrent"]
DigitsMode = Literal["pixel", "row"]


class ConfigError(ValueError):
    """A bad config value; its message is one line naming the key, the value and what is allowed."""


class RunConfig(BaseModel):
    # Reject unknown keys and mutation after validation: a saved run must mean one thing.
    model_config = ConfigDict(extra="forbid", frozen=True, validate_default=True)

    # --- the problem -------------------------------------------------------
    task: Task = Field("adding", description="Synthetic or small real task the model learns.")
    # 50 steps is long enough for a tanh RNN to start vanishing, short enough to train in seconds.
    # Left out, a task that fixes its length (digits) takes that length.
    seq_len: int = Field(50, ge=2, le=2000, description="Timesteps the network sees (copy: 10 symbols, seq_len-21 blanks, "
                         "a delimiter, then 10 steps in which the answer is output; digits: fixed by digits_mode).")
    # 1 step ahead is the easiest forecast; its persistence baseline is already hard to beat.
    forecast_steps: int = Field(1, ge=1, le=100, description="sine: how many steps ahead to forecast.")
    digits_mode: DigitsMode = Field("pixel", description="digits: read 64 pixels (T=64) or 8 rows (T=8).")

    # --- the model ---------------------------------------------------------
    cell: Cell = Field("rnn", description="Recurrent cell: the vanilla RNN shows vanishing most clearly.")
    activation: Activation = Field("tanh", description="Nonlinearity of the vanilla RNN cell (LSTM and GRU have fixed ones).")
    init: Init = Field("default", description="Initialisation of the recurrent matrix W_hh (per gate block).")
    init_gain: float = Field(1.0, ge=0.0, le=10.0, description="Scale applied to W_hh after init; >1 explodes, <1 vanishes.")
    # 1.0 is Jozefowicz et al.'s advice; 0 shows how a closed forget gate kills memory.
    forget_bias: float = Field(1.0, ge=-10.0, le=10.0, description="LSTM forget-gate bias.")
    embed_size: int = Field(32, ge=1, le=512, description="charlm: size of the character embedding.")
    hidden_size: int = Field(64, ge=1, le=512, description="Hidden units per layer and direction.")
    layers: int = Field(1, ge=1, le=4, description="Stacked recurrent layers.")
    bidirectional: bool = Field(False, description="Add a backward direction to each layer.")
    residual: bool = Field(False, description="Skip connections between stacked layers (projection if sizes differ).")
    norm: Norm = Field("none", description="Normalisation of each layer's outputs.")
    dropout: float = Field(0.0, ge=0.0, le=0.9, description="Dropout between layers and on the readout.")
    attention: Attention = Field("none", description="Attention readout over the top layer's hidden states.")

    # --- optimisation ------------------------------------------------------
    batch_size: int = Field(32, ge=1, le=1024, description="Sequences per training step.")
    # 0 keeps the synthetic tasks' endless stream: a model never sees a sequence twice, so it cannot
    # overfit and the regularisers below have nothing to fix. N > 0 draws N sequences once (from the
    # seed) and reuses them in reshuffled epochs (a batch larger than what is left of an epoch wraps
    # into the next), so the gap between the training and the validation loss can open.
    train_size: int = Field(0, ge=0, le=100_000, description="Training sequences: 0 = fresh ones every step; "
                            "N = N sequences drawn once from the seed and reused, reshuffled each epoch.")
    # 300 steps train a default run in a few seconds; an IRNN learns the adding task at T=50 in 400
    # (tests/test_verdict.py), an LSTM needs more: a short run shows the gradients, not a solved task.
    steps: int = Field(300, ge=1, le=100_000, description="Training steps.")
    seed: int = Field(0, ge=0, le=2**31 - 1, description="Seeds the weights and the data stream.")
    optimizer: Optimizer = Field("adam", description="Update rule.")
    lr: float = Field(1e-3, gt=0.0, le=10.0, description="Peak learning rate.")
    weight_decay: float = Field(0.0, ge=0.0, le=1.0, description="L2 penalty (decoupled for adamw).")
    schedule: Schedule = Field("constant", description="Learning-rate schedule after warm-up.")
    warmup_steps: int = Field(0, ge=0, le=100_000, description="Linear warm-up from 0 to lr.")
    clip: float = Field(0.0, ge=0.0, le=1e6, description="Gradient clipping threshold; 0 turns clipping off.")
    clip_mode: ClipMode = Field("norm", description="norm: rescale the global norm; value: clamp each entry.")
    input_noise: float = Field(0.0, ge=0.0, le=10.0, description="Std of Gaussian noise added to training inputs.")
    early_stopping_patience: int = Field(0, ge=0, le=100_000, description="Stop after this many evaluations without a better val loss; 0 = off.")
    curriculum: bool = Field(False, description="Grow the sequence length from curriculum_start to seq_len.")
    curriculum_start: int = Field(10, ge=2, le=2000, description="First sequence length of the curriculum.")
    warm_start: str = Field("", max_length=100, description="Name of a saved run whose weights to load; empty = none.")
    freeze: Freeze = Field("none", description="Parts kept fixed during training (with warm_start).")

    # --- where and how -----------------------------------------------------
    device: Device = Field("auto", description="auto picks an accelerator when one is present.")
    engine: Engine = Field("auto", description="fused: PyTorch's kernels with gradient probes; unrolled: the reference loop.")
    # A recorded step costs 1.3-2.6x a plain fused step (the probes and the reads); every 10th step
    # keeps a live run within 1.3x of plain PyTorch and still gives the heatmap a row per 10 steps.
    record_every: int = Field(10, ge=1, le=10_000, description="Record the per-timestep diagnostics every N steps.")
    # The gate statistics and ‖∂L/∂c_t‖ are what a recorded LSTM step mostly reads (the gates are
    # recomputed from the kernel's outputs): taken on every recorded step, they cost a default LSTM
    # about 5% of its time at T=50 and at T=200 (bench/bench_service.py cadence). The page shows them for
    # the latest step only, so every 5th recorded step (every 50 steps by default) loses nothing live;
    # ‖∂L/∂h_t‖ stays on every recorded step. 1 takes them on every recorded step.
    gates_every: int = Field(5, ge=1, le=10_000, description="LSTM/GRU: gate statistics (and the LSTM's "
                             "‖∂L/∂c_t‖) on every Nth recorded step; ‖∂L/∂h_t‖ is on every recorded step.")
    # One evaluation of the 256 validation sequences costs about two plain LSTM steps at T=50.
    eval_every: int = Field(25, ge=1, le=10_000, description="Validation loss every N steps.")

    @model_validator(mode="before")
    @classmethod
    def _old_names_and_task_lengths(cls, data: Any) -> Any:
        """Old names still read (`horizon` in old links and saved runs); a left-out seq_len that
        the task fixes (digits) takes the task's length, so `--set task=digits` is enough."""
        if not isinstance(data, Mapping):
            return data
        data = dict(data)
        for old, new in OLD_NAMES.items():
            if old in data:
                value = data.pop(old)
                if new in data and str(data[new]) != str(value):
                    raise ValueError(f"{old} is the old name of {new}: give only {new}")
                data.setdefault(new, value)
        if "seq_len" not in data:
            fixed = rules.fixed_seq_len(str(data.get("task", "adding")), str(data.get("digits_mode", "pixel")))
            if fixed is not None:
                data["seq_len"] = fixed
        return data

    @model_validator(mode="after")
    def _cross_field(self) -> "RunConfig":
        found = rules.problems(self.model_dump(), DEFAULTS)
        if found:
            raise ValueError("; ".join(found))
        return self


OLD_NAMES = {"horizon": "forecast_steps"}  # renamed keys: old name -> new name
DEFAULTS = {name: field.default for name, field in RunConfig.model_fields.items()}


def _number(x: float) -> str:
    return f"{x:g}" if isinstance(x, float) else str(x)


def describe_allowed(key: str) -> str:
    """What the schema allows for `key`, in words, for error messages."""
    field = RunConfig.model_fields.get(key)
    if field is None:
        return "known keys: " + ", ".join(RunConfig.model_fields)
    choices = getattr(field.annotation, "__args__", None)
    if choices and all(isinstance(c, str) for c in choices):
        return "allowed: " + ", ".join(choices)
    if field.annotation is bool:
        return "allowed: true, false"
    bounds = {a: getattr(m, a) for m in field.metadata for a in ("ge", "gt", "le", "lt", "max_length")
              if getattr(m, a, None) is not None}
    kind = getattr(field.annotation, "__name__", str(field.annotation))
    if "ge" in bounds and "le" in bounds:  # both inclusive: the short form the messages have always used
        return f"allowed: {kind} in {_number(bounds['ge'])}..{_number(bounds['le'])}"
    words = {"ge": ">=", "gt": ">", "le": "<=", "lt": "<"}
    parts = [f"{words[a]} {_number(bounds[a])}" for a in words if a in bounds]
    if "max_length" in bounds:
        parts.append(f"at most {bounds['max_length']} characters")
    return f"allowed: {kind} " + " and ".join(parts) if parts else f"allowed: {kind}"


def format_validation_error(err: ValidationError) -> str:
    """One line per problem: key, bad value, what is allowed."""
    parts, unknown = [], []
    for e in err.errors():
        loc = ".".join(str(p) for p in e["loc"])
        if e["type"] == "extra_forbidden":
            if not unknown:  # the known keys are listed once, however many unknown ones there are
                parts.append("")
                at = len(parts) - 1
            unknown.append(f"'{rules.show(loc)}'")
            parts[at] = f"unknown key{'s' if len(unknown) > 1 else ''} {', '.join(unknown)} ({describe_allowed(loc)})"
        elif not loc:  # cross-field check: its message already names the keys
            parts.append(str(e["msg"]).removeprefix("Value error, "))
        else:
            parts.append(f"{loc}={rules.show(e.get('input'))} is invalid ({describe_allowed(loc)})")
    return "; ".join(parts)


def make_config(values: Mapping[str, Any] | None = None, **overrides: Any) -> RunConfig:
    """Validate a mapping (strings from a CLI or URL are coerced) into a RunConfig, or raise ConfigError."""
    merged = {**(values or {}), **overrides}
    try:
        return RunConfig.model_validate(merged)
    except ValidationError as err:
        raise ConfigError(format_validation_error(err)) from None


def parse_assignments(pairs: list[str]) -> dict[str, str]:
    """Turn ['cell=lstm', 'seq_len=50'] into a dict; a pair without '=' is a ConfigError."""
    out: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"'{rules.show(pair)}' is not KEY=VALUE (for example --set cell=lstm)")
        out[key.strip()] = value.strip()
    return out
