"""The widget table, derived from RunConfig: which widget each field gets, and when it matters.

Nothing here is written out per field except two short lists: which fields sit at the top of
the sidebar (the knobs a class turns), and the rules that hide a field where it has no effect.
Every other property (kind, choices, bounds, default, help text) is read from the schema, so a
new config field shows up in the Advanced expander without touching this file.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from types import SimpleNamespace
from typing import Annotated, Any, Literal, Mapping, get_args, get_origin

from pydantic import TypeAdapter, ValidationError

from rnn_core.config import ConfigError, RunConfig, make_config
from rnn_core.tasks import fixed_seq_len

# The knobs of the lesson, in the order a teacher turns them; everything else is Advanced.
MAIN_FIELDS = ("task", "cell", "activation", "init", "init_gain", "forget_bias", "hidden_size", "layers",
               "seq_len", "clip", "clip_mode", "optimizer", "lr", "steps", "seed", "device")

WidgetKind = Literal["select", "toggle", "int", "float", "text"]


@dataclass(frozen=True)
class WidgetSpec:
    name: str
    kind: WidgetKind
    default: Any
    help: str
    options: tuple[str, ...] = ()
    lo: float | None = None  # inclusive lower bound (a gt bound becomes the smallest sensible step above it)
    hi: float | None = None
    lo_exclusive: bool = False


def _bound(field, names: tuple[str, ...]):
    return next((getattr(m, a) for m in field.metadata for a in names if getattr(m, a, None) is not None), None)


@lru_cache(maxsize=None)
def widget_specs() -> dict[str, WidgetSpec]:
    """One WidgetSpec per RunConfig field, in schema order."""
    out = {}
    for name, field in RunConfig.model_fields.items():
        ann, help_text = field.annotation, field.description or ""
        if get_origin(ann) is Literal:
            out[name] = WidgetSpec(name, "select", field.default, help_text, options=tuple(get_args(ann)))
        elif ann is bool:
            out[name] = WidgetSpec(name, "toggle", field.default, help_text)
        elif ann in (int, float):
            lo, hi = _bound(field, ("ge",)), _bound(field, ("le",))
            gt = _bound(field, ("gt",))
            out[name] = WidgetSpec(name, "int" if ann is int else "float", field.default, help_text,
                                   lo=gt if lo is None else lo, hi=hi, lo_exclusive=lo is None and gt is not None)
        else:
            out[name] = WidgetSpec(name, "text", field.default, help_text)
    return out


def advanced_fields() -> list[str]:
    return [n for n in widget_specs() if n not in MAIN_FIELDS]


def defaults() -> dict[str, Any]:
    return {n: s.default for n, s in widget_specs().items()}


def relevance(name: str, values: Mapping[str, Any]) -> tuple[bool, str]:
    """(shown, note): whether field `name` has any effect given the other values, and why not.

    A hidden field takes its default in the config, so a stale value (activation=relu left over
    from an RNN, now an LSTM) never leaks into the run or the link.
    """
    v = values
    rules = {
        "activation": (v["cell"] == "rnn", "only the vanilla RNN has a choice of activation"),
        "forget_bias": (v["cell"] == "lstm", "only the LSTM has a forget gate"),
        "horizon": (v["task"] == "sine", "only the sine task forecasts ahead"),
        "digits_mode": (v["task"] == "digits", "only the digits task reads pixels or rows"),
        "embed_size": (v["task"] == "charlm", "only charlm embeds tokens"),
        "clip_mode": (float(v["clip"]) > 0, "clipping is off (clip = 0)"),
        "residual": (int(v["layers"]) >= 2, "skip connections need 2 or more layers"),
        "curriculum_start": (bool(v["curriculum"]), "the curriculum is off"),
        "freeze": (bool(v["warm_start"]), "freezing needs a warm start"),
        "bidirectional": (v["task"] not in ("sine", "charlm"), "a forecasting task cannot read the future"),
    }
    return rules.get(name, (True, ""))


def forced_value(name: str, values: Mapping[str, Any]) -> Any | None:
    """A value the other fields fix (digits has T = 64 pixels or 8 rows); None when free."""
    if name == "seq_len" and values["task"] == "digits":
        return fixed_seq_len(SimpleNamespace(task="digits", digits_mode=values["digits_mode"]))
    return None


def effective_values(values: Mapping[str, Any]) -> dict[str, Any]:
    """The values that go into the config: hidden fields at their default, forced fields forced."""
    base = defaults()
    merged = {**base, **{k: values[k] for k in base if k in values}}
    out = {}
    for name in base:
        shown, _ = relevance(name, merged)
        forced = forced_value(name, merged)
        out[name] = forced if forced is not None else (merged[name] if shown else base[name])
    return out


def build_config(values: Mapping[str, Any]) -> tuple[RunConfig | None, str | None]:
    """(config, None) or (None, the ConfigError's one-line message): never raises for bad input."""
    try:
        return make_config(effective_values(values)), None
    except ConfigError as err:
        return None, str(err)


@lru_cache(maxsize=None)
def _adapter(name: str) -> TypeAdapter:
    field = RunConfig.model_fields[name]
    return TypeAdapter(Annotated[(field.annotation, *field.metadata)]) if field.metadata else TypeAdapter(field.annotation)


def check_value(name: str, raw: Any) -> tuple[Any, str | None]:
    """Validate one field on its own (type, range, choices; not the cross-field checks).

    Returns (coerced value, None) or (None, message). The message is make_config's own
    ConfigError text for that key, so the app and the CLI word a bad value the same way.
    """
    if name not in RunConfig.model_fields:
        return None, f"unknown key '{name}'"
    try:
        return _adapter(name).validate_python(raw), None
    except ValidationError:
        try:
            make_config({name: raw})
        except ConfigError as err:
            return None, str(err)
        return None, f"{name}={raw!r} is invalid"  # pragma: no cover - both validators agree on field errors
