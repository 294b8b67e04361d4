"""Sidebar widgets generated from the config schema, and the URL kept in step with them.

`st.session_state["values"]` holds every field's value and outlives the widgets: Streamlit
drops the state of a widget that is not drawn in a run, so a field hidden for one cell (say
forget_bias for a GRU) would otherwise lose its value before it is shown again.

Each widget's on_change callback writes its new value into those values and into the link.
Callbacks run before the script, so every part of the page, and the address bar, holds the
new value in the run the change starts: a link copied at any moment is the experiment on screen.
"""
from __future__ import annotations

import math
from typing import Any, Iterable

import streamlit as st

from rnn_core import store
from rnn_core.config import RunConfig
from rnn_core.devices import available_devices, device_label

from .schema import (MAIN_FIELDS, WidgetSpec, advanced_fields, build_config, defaults, forced_value, relevance,
                     widget_specs)
from .state import KEYS
from .urlstate import query_from_values, values_from_query

VALUES, URL_WARNINGS, URL_SNAPSHOT = KEYS.values, KEYS.url_warnings, KEYS.url_snapshot  # dashboard/state.py


def widget_key(name: str, prefix: str = "") -> str:
    return f"{prefix}w_{name}"


def label(name: str) -> str:
    return name.replace("_", " ")


def read_query() -> dict[str, list[str]]:
    """Every value of every key of the link (`?cell=lstm&cell=gru` keeps both, to warn about it)."""
    return {key: st.query_params.get_all(key) for key in st.query_params}


def init_values(prefix: str = "", link: bool = True) -> None:
    """First run of a session: the values come from the link, with a warning for each key that was
    ignored or changed; then the link is rewritten to the settings in use, so what was ignored
    leaves the address bar."""
    if prefix + VALUES in st.session_state:
        return
    values, problems = values_from_query(read_query()) if link else (defaults(), [])
    st.session_state[prefix + VALUES] = values
    st.session_state[prefix + URL_WARNINGS] = problems
    st.session_state[prefix + URL_SNAPSHOT] = dict(values)
    if link:
        sync_url(values)


def _float_step(spec: WidgetSpec) -> float:
    if spec.default and spec.default > 0:
        return 10.0 ** math.floor(math.log10(spec.default)) / 10  # lr 1e-3 -> 1e-4, gain 1 -> 0.1
    return 0.01 if (spec.hi or 0) <= 1 else 0.05 if (spec.hi or 0) <= 10 else 0.5


def _options(spec: WidgetSpec, value: Any) -> list:
    if spec.name == "device":  # only devices this machine has
        return ["auto", *available_devices()]
    if spec.name == "warm_start":
        runs = store.list_runs()
        return ["", *runs] + ([value] if value and value not in runs else [])
    return list(spec.options)


def _draw(spec: WidgetSpec, value: Any, key: str, disabled: bool = False, **callback: Any) -> Any:
    """One widget for one field: Literal -> selectbox, bool -> toggle, bounded number -> input/slider."""
    name, help_text = spec.name, spec.help
    if key not in st.session_state:
        st.session_state[key] = value
    if spec.kind == "select" or spec.name == "warm_start":
        opts = _options(spec, value)
        if st.session_state[key] not in opts:
            st.session_state[key] = opts[0]
        fmt = device_label if name == "device" else (lambda v: v or "(none)") if name == "warm_start" else str
        return st.selectbox(label(name), opts, key=key, help=help_text, format_func=fmt, disabled=disabled,
                            **callback)
    if spec.kind == "toggle":
        return st.toggle(label(name), key=key, help=help_text, disabled=disabled, **callback)
    if spec.kind == "int":
        lo, hi = int(spec.lo), int(spec.hi)
        if hi - lo <= 16:  # layers 1..4: a slider reads better than a spin box
            return st.slider(label(name), lo, hi, step=1, key=key, help=help_text, disabled=disabled, **callback)
        return st.number_input(label(name), min_value=lo, max_value=hi, step=1, key=key, help=help_text,
                               disabled=disabled, **callback)
    if spec.kind == "float":
        step = _float_step(spec)
        lo = step / 100 if spec.lo_exclusive else float(spec.lo)  # lr > 0: the smallest value offered
        st.session_state[key] = float(st.session_state[key])
        return st.number_input(label(name), min_value=lo, max_value=float(spec.hi), step=step, format="%g",
                               key=key, help=help_text, disabled=disabled, **callback)
    return st.text_input(label(name), key=key, help=help_text, disabled=disabled, **callback)


def _on_change(name: str, prefix: str, link: bool) -> None:
    """A widget's callback: runs before the script, so the values and the link hold the new value
    before any part of the page reads them."""
    values = st.session_state[prefix + VALUES]
    values[name] = st.session_state[widget_key(name, prefix)]
    if link:
        sync_url(values)


def field_widget(name: str, values: dict, prefix: str = "", link: bool = True, disabled: bool = False) -> None:
    """Draw the widget of `name` where it matters, a one-line note where it does not; store its value.
    `disabled`: shown but not changeable (a lesson's locked key)."""
    spec = widget_specs()[name]
    shown, note = relevance(name, values)
    forced = forced_value(name, values)
    if not shown:
        st.caption(f"**{label(name)}**: not used, {note}.")
        return
    if forced is not None:
        key = f"{prefix}wf_{name}"
        st.session_state[key] = forced  # before the widget: Streamlit forbids it after
        _draw(spec, forced, key, disabled=True)
        st.caption(f"{label(name)} is fixed to {forced} by task={values['task']} ({values.get('digits_mode')}).")
        return
    if disabled:  # the value the form holds, not a widget state left from before
        st.session_state[widget_key(name, prefix)] = values[name]
    values[name] = _draw(spec, values[name], widget_key(name, prefix), disabled=disabled, on_change=_on_change,
                         args=(name, prefix, link))


def config_sidebar(prefix: str = "", link: bool = True, locked: Iterable[str] = (),
                   hidden: Iterable[str] = ()) -> tuple[RunConfig | None, str | None]:
    """All config widgets in the sidebar (the lesson's knobs on top, the rest in an expander).

    `prefix` goes in front of every widget and session key, so two forms can share a page;
    `link` says whether this form reads and writes the address bar (one form per page should).
    `locked` keys are shown disabled and `hidden` ones not at all (a lesson's fixed settings):
    both keep the value the form was given.
    Returns (config, None), or (None, the ConfigError message) for an invalid combination.
    """
    init_values(prefix, link)
    values = st.session_state[prefix + VALUES]
    locked, hidden = set(locked), set(hidden)
    with st.sidebar:
        st.subheader("Experiment")
        for name in MAIN_FIELDS:
            if name not in hidden:
                field_widget(name, values, prefix, link, disabled=name in locked)
        with st.expander("Advanced settings"):
            for name in advanced_fields():
                if name not in hidden:
                    field_widget(name, values, prefix, link, disabled=name in locked)
    cfg, err = build_config(values)
    if link:
        sync_url(values)  # a change that hid or forced another field changes the link too
    return cfg, err


def sync_url(values: dict) -> None:
    """Write the non-default values to the link (only when they changed: each write is a message)."""
    wanted = query_from_values(values)
    if wanted != st.query_params.to_dict() or any(len(st.query_params.get_all(k)) > 1 for k in st.query_params):
        st.query_params.from_dict(wanted)


def url_warning(prefix: str = "") -> None:
    """The link's warnings, until the first change in the sidebar (then they no longer describe it)."""
    problems = st.session_state.get(prefix + URL_WARNINGS) or []
    if problems and st.session_state[prefix + VALUES] == st.session_state.get(prefix + URL_SNAPSHOT):
        st.warning("Some settings in the link were not used as given:\n\n"
                   + "\n".join(f"- {p}" for p in problems))
