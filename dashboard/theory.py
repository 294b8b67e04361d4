"""The Theory page: the equations of vanishing and exploding gradients, the same quantities computed
live from the session's config and latest run, and the paper checks.

The config is Explore's: the same sidebar over the same session values (dashboard/widgets.py), so
the link (`/theory?cell=lstm&init_gain=1.5`) works as on Explore. "At initialisation" is the model
the library builds from that config, before any update; "now" is the session's latest run on
Explore (a live job or a saved run opened there): the weights it last saved (model.safetensors,
written as it trains) and its latest recorded profile.
"""
from __future__ import annotations

import json

import numpy as np
import streamlit as st

from rnn_core import budget, store, theory
from rnn_core.checkpoint import saved_step
from rnn_core.config import ConfigError, RunConfig, make_config
from rnn_core.view import RunView

from .panel import chart_format_control, draw_chart
from .safe import plain
from .state import KEYS, panel_state
from .theory_figures import bound_figure, eigen_figure
from .theory_papers import reproduce_section
from .theory_text import equations
from .widgets import config_sidebar, url_warning, widget_key

try:  # presenter mode (dashboard/present.py, ?present=1): big charts for a projector
    from .present import on as presenting
except ImportError:  # an older tree without presenter mode
    def presenting() -> bool:
        return False

PREFIX = "theory:"  # the sidebar's widget keys on this page (its values are Explore's)
MAX_STEP0_S = 1.5  # the step-0 profile costs one training step: not for configs slower than the server's limit


@st.cache_data(max_entries=64, show_spinner=False)
def _init_spectrum(cfg_json: str, row: int, block: int) -> tuple[np.ndarray, float]:
    """(eigenvalues (H,) complex, σ_max) of one block of W_hh at initialisation: one block, not all,
    because a 512-unit 4-layer bidirectional LSTM has 32 of them."""
    cfg = make_config(json.loads(cfg_json))
    blocks = theory.recurrent_blocks(theory.init_state(cfg), cfg)[row, block]
    return theory.eigenvalues(blocks), float(theory.spectral_norm(blocks))


@st.cache_data(max_entries=16, show_spinner="Computing the step-0 gradient profile…")
def _step0(cfg_json: str) -> dict:
    return theory.step0_arrays(make_config(json.loads(cfg_json)))


def _key(cfg: RunConfig) -> str:
    return json.dumps(cfg.model_dump(), sort_keys=True)


def latest_run() -> RunView | None:
    """The session's latest run on Explore, live or opened from disk."""
    ps = panel_state("explore")
    if ps.job is not None:
        ps.job.poll()
        return ps.job.view()
    return ps.saved


def _now_spectrum(view: RunView, row: int, block: int) -> tuple[np.ndarray, float] | None:
    """(eigenvalues, σ_max) of one block of the weights the run last saved, or None."""
    if view.out_dir is None:
        return None
    state = theory.saved_state(view.out_dir)
    if state is None:
        return None
    try:
        blocks = theory.recurrent_blocks(state, view.cfg)
    except (KeyError, ValueError):
        return None
    if row >= blocks.shape[0] or block >= blocks.shape[1]:
        return None
    return theory.eigenvalues(blocks[row, block]), float(theory.spectral_norm(blocks[row, block]))


def _differing(a: RunConfig, b: RunConfig) -> list[str]:
    x, y = a.model_dump(), b.model_dump()
    return [k for k in x if x[k] != y[k]]


def _pickers(cfg: RunConfig) -> tuple[int, int]:
    """(layer-direction row, gate block) to show: the candidate block by default, layer 1."""
    names = theory.BLOCKS[cfg.cell]
    D = 2 if cfg.bidirectional else 1
    a, b = st.columns(2)
    block = theory.CANDIDATE[cfg.cell]
    if len(names) > 1:
        labels = [f"{n} (candidate: the tanh block)" if k == block else n for k, n in enumerate(names)]
        block = a.selectbox("W_hh block", range(len(names)), index=block, format_func=lambda k: labels[k],
                            key=f"theory_block_{cfg.cell}", help="The LSTM's W_hh stacks four H×H blocks (gates i, f, g, o), the "
                            "GRU's three (r, z, n). The candidate block is the one tanh acts on, as in a vanilla RNN: "
                            "Explore's envelope uses its spectral radius.")
    rows = cfg.layers * D
    row = 0
    if rows > 1:
        labels = [f"layer {k // D + 1}" + ((" →" if k % 2 == 0 else " ←") if D == 2 else "") for k in range(rows)]
        row = b.selectbox("layer", range(rows), format_func=lambda k: labels[k], key=f"theory_layer_{rows}")
    return row, block


def live_section(cfg: RunConfig, big: bool = False) -> None:
    view = latest_run()
    row, block = _pickers(cfg)
    names = theory.BLOCKS[cfg.cell]
    block_name = "W_hh" if cfg.cell == "rnn" else f"W_hh, block {names[block]}"
    eig0, sig0 = _init_spectrum(_key(cfg), row, block)
    comparable = view is not None and view.cfg.cell == cfg.cell  # the pickers' blocks are the sidebar cell's
    now = _now_spectrum(view, row, block) if comparable else None
    same = view is not None and view.cfg == cfg
    now_eigs = now[0] if now is not None else None
    run_init = None
    if view is not None and not same and now is not None:  # the run's own start, beside the sidebar's
        run_init = _init_spectrum(_key(view.cfg), row, block)
    if view is None:
        st.caption("No run in this session yet: train one on Explore to see where training moves the eigenvalues.")
    elif not comparable:
        st.caption(f"Now: {plain(view.name)} is {'an' if view.cfg.cell == 'lstm' else 'a'} {view.cfg.cell.upper()}: "
                   f"set cell={view.cfg.cell} in the sidebar to see its W_hh beside the start.")
    else:
        saved = saved_step(view.out_dir) if view.out_dir is not None else None
        st.caption(f"Now: {plain(view.name)} ({plain(view.state)}, step {view.steps_done}); its weights as last saved"
                   + (f", after {saved} steps." if saved is not None else " (none saved yet).")
                   + ("" if same else f" Its settings differ from the sidebar's ({plain(', '.join(_differing(view.cfg, cfg)))}): "
                                      "its own start is drawn beside the sidebar's."))
    note = (f"ρ = max|λ| = {np.abs(eig0).max():.3g}, σ_max = {sig0:.3g} at initialisation"
            + (f"; the run's start ρ = {np.abs(run_init[0]).max():.3g}" if run_init is not None else "")
            + (f"; now ρ = {np.abs(now_eigs).max():.3g}, σ_max = {now[1]:.3g}" if now is not None else ""))
    left, right = st.columns(2)
    with left:
        draw_chart(eigen_figure(eig0, now_eigs, block_name, run_init=run_init[0] if run_init is not None else None,
                                note=note, big=big), "theory_chart_eigen",
                   "theory-eigenvalues")
    with right:
        _bound_chart(cfg, view, row, block, big)


def _bound_chart(cfg: RunConfig, view: RunView | None, row: int, block: int, big: bool) -> None:
    """The latest recorded profile of the session's run, or the step-0 profile of the sidebar's config."""
    source_cfg, arrays, step, where = cfg, None, None, ""
    if view is not None and view.history.latest_finite:
        source_cfg, arrays = view.cfg, view.history.latest_finite
        step, where = view.history.latest_finite_step, f"{view.name}, latest recorded step"
    elif budget.estimate(cfg).step_s <= MAX_STEP0_S:
        arrays, step, where = _step0(_key(cfg)), 0, "the sidebar's config at initialisation (one step computed here)"
    if not arrays or "timestep_grads" not in arrays:
        st.info("This config is too slow to compute a step here: train it on Explore to see its profile.")
        return
    grads, rad, sig = arrays["timestep_grads"], arrays.get("spectral_radius"), arrays.get("sigma_max")
    r = min(row, len(grads) - 1)
    b = min(block, rad.shape[1] - 1) if rad is not None else 0
    gamma = theory.gamma(source_cfg)
    why_not = theory.bound_applies(source_cfg) if r == 0 else "only layer 1's profile is bounded by its own W_hh"
    note = f"{where}; γ = {gamma:g}"
    draw_chart(bound_figure(grads[r], float(rad[r, b]) if rad is not None else None,
                            float(sig[r, b]) if sig is not None else None, gamma, step, note=note, big=big),
               "theory_chart_bound", "theory-bound")
    st.caption("ρ and σ_max of the weights the profile's step started from (recorded before its update)."
               + (f" **The bound does not apply here:** {why_not}." if why_not else
                  " The bound applies: the measured line stays under the dashed one."))
    if source_cfg.cell != "rnn":
        st.caption(f"ρ and σ_max of block {theory.BLOCKS[source_cfg.cell][b]} of {source_cfg.cell.upper()}'s W_hh; "
                   "its gated paths are not products of this block alone.")


def _share_values() -> None:
    """One set of values for Explore and Theory, under widgets of their own (PREFIX): a widget key
    drawn on two pages comes back at its default on the second (Streamlit keys widget state by
    page) and would overwrite the shared value. Each widget is set from the values before it is
    drawn, so a change made on Explore shows here."""
    shared = st.session_state.get(KEYS.values)
    if shared is not None:
        st.session_state[PREFIX + KEYS.values] = shared  # the same dict: a change here is a change there
    for name, value in (st.session_state.get(PREFIX + KEYS.values) or {}).items():
        st.session_state[widget_key(name, PREFIX)] = value


def theory_page() -> None:
    _share_values()
    cfg, err = config_sidebar(PREFIX)
    st.session_state.setdefault(KEYS.values, st.session_state[PREFIX + KEYS.values])  # Theory opened first
    chart_format_control()
    st.title("Theory: why gradients vanish or explode")
    st.caption("The equations behind Explore's charts, the same quantities computed from your settings and your "
               "latest run, and published results checked on this machine. The sidebar is Explore's: a change "
               "here is a change there, and the link holds it.")
    url_warning(PREFIX)
    equations_tab, live_tab, papers_tab = st.tabs(["Equations", "Your config", "Reproduce"])
    with equations_tab:
        equations()
    with live_tab:
        if err or cfg is None:
            st.error(f"These settings do not fit together: {plain(err or '')}")
        else:
            try:
                live_section(cfg, presenting())
            except (store.RunStoreError, ConfigError) as e:  # a warm start that cannot be read
                st.error(f"Could not build the model: {plain(str(e), 300)}")
    with papers_tab:
        reproduce_section()


__all__ = ["theory_page", "latest_run"]
