"""The theory behind the charts, computed: W_hh's eigenvalues and the bounds they set on ∂L/∂h_t.

Convention (cells.py): h_k = φ(a_k), a_k = W_ih x_k + b_ih + W_hh h_{k−1} + b_hh, so

    ∂h_k/∂h_{k−1} = diag(φ'(a_k)) W_hh        (H, H)
    ∂L/∂h_t = ∂L/∂h_{T−1} · ∏_{k=t+1}^{T−1} ∂h_k/∂h_{k−1}   (the loss reads h_{T−1} only; t = 0..T−1)

and with γ = max|φ'| (1 for tanh, relu and linear, 1/4 for sigmoid),
‖∂h_k/∂h_{k−1}‖₂ ≤ γ·σ_max(W_hh), hence ‖∂L/∂h_t‖ ≤ (γσ_max)^(T−1−t) ‖∂L/∂h_{T−1}‖ (Pascanu et al. 2013).
The bound holds per sequence and so for the norm over the batch that the trainer records.
It needs the loss to reach h_t only through h_{T−1}: a last-step task, one layer, no attention.
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from .config import RunConfig

GAMMA = {"tanh": 1.0, "relu": 1.0, "linear": 1.0, "sigmoid": 0.25}  # max |φ'| of each activation
CANDIDATE = {"rnn": 0, "lstm": 2, "gru": 2}  # the block of W_hh that φ = tanh acts on (LSTM g, GRU n)
BLOCKS = {"rnn": ("W_hh",), "lstm": ("i", "f", "g", "o"), "gru": ("r", "z", "n")}
LOG_FLOOR = -300.0  # log10 of the smallest value a bound is drawn at (1e-300)


def gamma(cfg: RunConfig) -> float:
    """max|φ'| of the nonlinearity on the recurrent path: the cell's activation, tanh for LSTM/GRU candidates."""
    return GAMMA[cfg.activation] if cfg.cell == "rnn" else 1.0


def bound_applies(cfg: RunConfig) -> str | None:
    """None when the Pascanu bound holds for layer 1's recorded profile; otherwise why it does not."""
    if cfg.cell != "rnn":
        article = "an" if cfg.cell == "lstm" else "a"
        return f"{article} {cfg.cell.upper()}'s gradient also flows through its gates (and the LSTM's cell path), " \
               "which this bound does not cover"
    if cfg.attention != "none":
        return "with attention the readout reads every h_t: ∂L/∂h_t has a direct term outside the product"
    if cfg.task in ("copy", "sine", "charlm"):
        return f"{cfg.task} scores every step: ∂L/∂h_t has a direct term at every t"
    if cfg.layers > 1 or cfg.bidirectional:
        return "with stacked or bidirectional layers, layer 1's h_t also feeds the layer above at every t"
    return None


# --- eigenvalues and norms of W_hh ---------------------------------------------------------------
def recurrent_blocks(state: dict, cfg: RunConfig) -> np.ndarray:
    """(LD, G, H, H) float64 blocks of every W_hh from a model state_dict (layer-major, direction-minor)."""
    H = cfg.hidden_size
    D = 2 if cfg.bidirectional else 1
    out = []
    for l in range(cfg.layers):
        for d in range(D):
            w = state[f"layers.{l}.{d}.weight_hh"]
            w = np.asarray(w.detach().cpu().double().numpy() if hasattr(w, "detach") else w, np.float64)
            out.append(w.reshape(-1, H, H))
    return np.stack(out)


def eigenvalues(blocks: np.ndarray) -> np.ndarray:
    """(..., H) complex eigenvalues of each H×H block (numpy's LAPACK geev)."""
    return np.linalg.eigvals(blocks)


def spectral_norm(blocks: np.ndarray) -> np.ndarray:
    """(...) σ_max of each block: the largest singular value."""
    return np.linalg.svd(blocks, compute_uv=False)[..., 0]


def init_state(cfg: RunConfig) -> dict:
    """The model's weights at step 0, built from the config as the Trainer builds them (seeded, CPU).
    A warm start is loaded too; one that cannot be read raises store.RunStoreError."""
    from .model import build_model
    from .tasks import spec

    model = build_model(cfg, spec(cfg))
    if cfg.warm_start:
        from .warmstart import load_warm_start

        load_warm_start(model, cfg.warm_start)
    return model.state_dict()


def saved_state(run_dir: str | Path) -> dict | None:
    """The weights a run last saved (model.safetensors, written at every flush), or None if none yet."""
    path = Path(run_dir) / "model.safetensors"
    if not path.is_file():
        return None
    from safetensors.numpy import load_file

    try:
        return load_file(str(path))
    except (OSError, ValueError):
        return None


# --- bounds on the profile -------------------------------------------------------------------------
def pascanu_bound(g_last: float, T: int, rate: float) -> np.ndarray:
    """(T,) rate^(T−1−t)·g_last for t = 0..T−1, in log space (rate^2000 neither under- nor overflows);
    below 1e-300 it is clamped there."""
    out = np.full(T, np.nan)
    if not (g_last > 0 and rate > 0 and math.isfinite(g_last) and math.isfinite(rate)):
        return out
    k = np.arange(T - 1, -1, -1, dtype=np.float64)  # T−1−t
    log = np.clip(k * math.log10(rate) + math.log10(g_last), LOG_FLOOR, 300.0)
    return np.power(10.0, log)


def jacobian_profile(w_hh: np.ndarray, pre: np.ndarray, g_last: np.ndarray, activation: str = "tanh") -> np.ndarray:
    """(T,) ‖∂L/∂h_t‖ by multiplying the Jacobians out: g_t = g_{t+1} · diag(φ'(a_{t+1})) W_hh.

    w_hh (H, H); pre (T, B, H) the pre-activations a_t; g_last (B, H) = ∂L/∂h_{T−1}. The norm is
    over batch and hidden units, as the trainer records it. A reference for tests, not fast."""
    deriv = {"tanh": lambda a: 1 - np.tanh(a) ** 2, "relu": lambda a: (a > 0).astype(np.float64),
             "sigmoid": lambda a: (s := 1 / (1 + np.exp(-a))) * (1 - s), "linear": np.ones_like}[activation]
    T = pre.shape[0]
    g = np.asarray(g_last, np.float64)  # (B, H)
    out = np.zeros(T)
    out[T - 1] = np.linalg.norm(g)
    for t in range(T - 2, -1, -1):
        g = (g * deriv(pre[t + 1])) @ w_hh  # (B, H) @ (H, H): row vector times diag(φ') W_hh
        out[t] = np.linalg.norm(g)
    return out


def step0_arrays(cfg: RunConfig) -> dict[str, np.ndarray]:
    """The diagnostics of training step 0 (always recorded) on the CPU: ‖∂L/∂h_t‖ at initialisation
    (timestep_grads (LD, T)) with the spectra of the weights it was taken at. Costs one training step."""
    from .config import make_config
    from .trainer import Trainer

    tr = Trainer(make_config({**cfg.model_dump(), "device": "cpu"}))
    rec = tr.step()
    return dict(rec.arrays) if rec is not None and rec.arrays is not None else {}
