"""The widget table, derived from RunConfig: which widget each field gets, and when it matters.

Nothing here is written out per field except one short list: which fields sit at the top of
the sidebar (the knobs a class turns). Where a field has no effect comes from rnn_core.rules,
the table the validator reads too. Every other property (kind, choices, bounds, default, help
text) is read from the schema, so a new config field shows up in the Advanced expander without
touching this file.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Annotated, Any, Literal, Mapping, get_args, get_origin

from pydantic import TypeAdapter, ValidationError

from rnn_core import rules
from rnn_core.config import ConfigError, RunConfig, make_config

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

    The rules are rnn_core.rules' (the validator reads the same table). A hidden field takes
    its default in the config, so a stale value (activation=relu left over from an RNN, now an
    LSTM) never leaks into the run or the link.
    """
    return rules.relevance(name, values)


def forced_value(name: str, values: Mapping[str, Any]) -> Any | None:
    """A value the other fields fix (digits has T = 64 pixels or 8 rows); None when free."""
    if name == "seq_len":
        return rules.fixed_seq_len(values["task"], values["digits_mode"])
    return None


def effective_values(values: Mapping[str, Any]) -> dict[str, Any]:
    """The values that go into the config: hidden fields at their default, forced fields forced.

    Repeated until nothing changes, since hiding one field can hide another (digits hides the
    curriculum, which hides curriculum_start)."""
    base = defaults()
    out = {**base, **{k: values[k] for k in base if k in values}}
    for _ in range(len(base)):
        before = dict(out)
        for name in base:
            forced = forced_value(name, before)
            out[name] = forced if forced is not None else (before[name] if relevance(name, before)[0] else base[name])
        if out == before:
            break
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
