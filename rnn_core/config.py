"""The one config schema: it drives the CLI, the app's widgets, the URL and saved runs.

Every field has a type, a range or a closed set of choices, and a default with a
comment saying why. Field names are the public keys (`--set KEY=VALUE`, `?KEY=VALUE`).
"""
from __future__ import annotations

from typing import Any, Literal, Mapping

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

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
    seq_len: int = Field(50, ge=2, le=2000, description="Timesteps the network sees (copy: 10 symbols + gap + delimiter + 9 blanks).")
    horizon: int = Field(1, ge=1, le=100, description="sine: how many steps ahead to forecast.")
    digits_mode: DigitsMode = Field("pixel", description="digits: read 64 pixels (T=64) or 8 rows (T=8).")

    # --- the model ---------------------------------------------------------
    cell: Cell = Field("rnn", description="Recurrent cell: the vanilla RNN shows vanishing most clearly.")
    activation: Activation = Field("tanh", description="Nonlinearity of the vanilla RNN cell (ignored by LSTM/GRU).")
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
    # 300 steps with Adam is enough for an LSTM to beat the adding baseline at T=50.
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
    record_every: int = Field(1, ge=1, le=10_000, description="Record the per-timestep diagnostics every N steps.")
    eval_every: int = Field(10, ge=1, le=10_000, description="Validation loss every N steps.")

    @model_validator(mode="after")
    def _cross_field(self) -> "RunConfig":
        from .tasks import min_seq_len, fixed_seq_len

        lo = min_seq_len(self)
        if self.seq_len < lo:
            raise ValueError(f"seq_len={self.seq_len} is too short for task={self.task}: allowed {lo}..2000")
        fixed = fixed_seq_len(self)
        if fixed is not None and self.seq_len != fixed:
            raise ValueError(f"seq_len={self.seq_len} does not fit task={self.task} with digits_mode={self.digits_mode}: it must be {fixed}")
        from .engines import fused_supported

        if self.engine == "fused" and not fused_supported(self.cell, self.activation):
            raise ValueError(f"engine=fused has no activation={self.activation} (PyTorch's fused RNN has tanh and relu): use engine=auto or engine=unrolled")
        if self.residual and self.layers < 2:
            raise ValueError("residual=true needs layers >= 2: skips connect stacked layers")
        if self.bidirectional and self.task in ("sine", "charlm"):
            raise ValueError(f"bidirectional=true would let task={self.task} read the future it must predict: use bidirectional=false")
        every_step = self.task in ("copy", "sine", "charlm")
        limit = {"dot": 512, "additive": 200}.get(self.attention)
        if every_step and limit and self.seq_len > limit:
            raise ValueError(f"attention={self.attention} on task={self.task} scores every step against every step: seq_len={self.seq_len} is too long, allowed 2..{limit}")
        if self.curriculum and self.curriculum_start > self.seq_len:
            raise ValueError(f"curriculum_start={self.curriculum_start} exceeds seq_len={self.seq_len}: allowed 2..{self.seq_len}")
        if self.freeze != "none" and not self.warm_start:
            raise ValueError(f"freeze={self.freeze} needs warm_start: freezing random weights teaches nothing")
        if self.warm_start:
            from .store import check_run_name

            check_run_name(self.warm_start)
        return self


def describe_allowed(key: str) -> str:
    """What the schema allows for `key`, in words, for error messages."""
    field = RunConfig.model_fields.get(key)
    if field is None:
        return "known keys: " + ", ".join(RunConfig.model_fields)
    choices = getattr(field.annotation, "__args__", None)
    if choices and all(isinstance(c, str) for c in choices):
        return "allowed: " + ", ".join(choices)
    lo = next((getattr(m, a) for m in field.metadata for a in ("ge", "gt") if getattr(m, a, None) is not None), None)
    hi = next((getattr(m, a) for m in field.metadata for a in ("le", "lt") if getattr(m, a, None) is not None), None)
    if field.annotation is bool:
        return "allowed: true, false"
    if lo is not None or hi is not None:
        return f"allowed: {field.annotation.__name__} in {lo}..{hi}"
    return f"allowed: {getattr(field.annotation, '__name__', field.annotation)}"


def format_validation_error(err: ValidationError) -> str:
    """One line per problem: key, bad value, what is allowed."""
    parts = []
    for e in err.errors():
        loc = ".".join(str(p) for p in e["loc"])
        if e["type"] == "extra_forbidden":
            parts.append(f"unknown key '{loc}' ({describe_allowed(loc)})")
        elif not loc:  # cross-field check: its message already names the keys
            parts.append(str(e["msg"]).removeprefix("Value error, "))
        else:
            parts.append(f"{loc}={e.get('input')} is invalid ({describe_allowed(loc)})")
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
            raise ConfigError(f"'{pair}' is not KEY=VALUE (for example --set cell=lstm)")
        out[key.strip()] = value.strip()
    return out
