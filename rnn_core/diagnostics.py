"""Per-step diagnostics that do not come from the backward trace: spectra and parameter-group norms."""
from __future__ import annotations

import math
from concurrent.futures import Future, ThreadPoolExecutor

import numpy as np
import torch

from .model import SeqModel
from .optim import param_norms

HORIZON_RATIO = 1e-3  # the memory horizon ends where the gradient drops below 1e-3 of its last value


def recurrent_spectra(model: SeqModel) -> tuple[np.ndarray, np.ndarray]:
    """Spectral radius and largest singular value of each H×H gate block of each W_hh.

    Returns two (layers × directions, gates) float64 arrays (gates = 1 for the vanilla RNN,
    4 for the LSTM in i f g o order, 3 for the GRU in r z n order). For a linear RNN the
    spectral radius γ is the rate at which the gradient shrinks or grows per step.

    Every block of every layer goes to LAPACK in one batched call on the CPU, in float64.
    σ_max is the square root of the top eigenvalue of the symmetric AᵀA (eigvalsh), which is
    cheaper than the SVD that matrix_norm(ord=2) runs and exact to float64 rounding.
    """
    layers = model.recurrent_layers()
    H = layers[0].hidden_size
    W = torch.cat([layer.weight_hh.detach() for layer in layers]).double().cpu()  # (LD·G·H, H), one transfer
    blocks = W.view(len(layers), -1, H, H)  # (LD, G, H, H)
    radius = torch.linalg.eigvals(blocks).abs().amax(-1)  # (LD, G)
    sigma = torch.linalg.eigvalsh(blocks.mT @ blocks)[..., -1].clamp_min(0).sqrt()  # ascending: last is largest
    return radius.numpy(), sigma.numpy()


_POOL: ThreadPoolExecutor | None = None


def spectra_async(model: SeqModel) -> Future:
    """Start `recurrent_spectra` on a worker thread; `.result()` gives (radius, sigma).

    The spectra depend only on the weights before this step's update, so they can be computed
    while the step's forward and backward run: LAPACK releases the GIL. On a GPU the host thread
    is mostly waiting for kernels; on a CPU whose step uses fewer threads than there are cores the
    solve runs on an idle core. Either way it leaves the step's critical path.
    The caller must collect the result before the optimiser changes the weights.
    """
    global _POOL
    if _POOL is None:  # one shared worker: trainers in several threads queue, they do not multiply threads
        # The worker takes the caller's intra-op thread count: OpenMP keeps one per thread, and a
        # worker left at the default would fan out over every core, onto the step's own.
        _POOL = ThreadPoolExecutor(max_workers=1, thread_name_prefix="bptt-spectra",
                                   initializer=torch.set_num_threads, initargs=(torch.get_num_threads(),))
    return _POOL.submit(recurrent_spectra, model)


def parameter_groups(model: SeqModel) -> dict[str, list[torch.nn.Parameter]]:
    """Named groups for per-group gradient norms: input, recurrent and bias weights of each layer and direction."""
    groups: dict[str, list[torch.nn.Parameter]] = {}
    if model.embed is not None:
        groups["embedding"] = [model.embed.weight]
    D = model.directions
    for k, layer in enumerate(model.recurrent_layers()):
        tag = f"l{k // D}" + ("r" if k % D else "")
        groups[f"{tag}.ih"] = [layer.weight_ih]
        groups[f"{tag}.hh"] = [layer.weight_hh]
        groups[f"{tag}.bias"] = [layer.bias_ih, layer.bias_hh]
    extra = [p for m in (model.norms, model.skips, model.attention) if m is not None for p in m.parameters()]
    if extra:
        groups["norm_skip_attn"] = extra
    groups["readout"] = list(model.readout.parameters())
    return groups


def group_norms(groups: dict[str, list[torch.nn.Parameter]]) -> dict[str, float]:
    """float64 gradient norm of each group (0 for a group with no gradient, e.g. frozen). One host sync."""
    grads, owner = [], []
    for k, params in enumerate(groups.values()):
        for p in params:
            if p.grad is not None:
                grads.append(p.grad)
                owner.append(k)
    sq = [0.0] * len(groups)
    # a dozen floats: summed in Python, where numpy's add.at cost more than the norms themselves
    for k, v in zip(owner, param_norms(grads).tolist() if grads else ()):
        sq[k] += v * v
    return {name: math.sqrt(v) for name, v in zip(groups, sq)}


def memory_horizon(profile: np.ndarray, ratio: float = HORIZON_RATIO) -> int:
    """Timesteps back from the last step until ‖∂L/∂h_t‖ first falls below `ratio` × its last value.

    profile: (T,) gradient norms over time. The last step is the last finite entry (a curriculum
    pads the end with NaN). Returns last + 1 (the whole sequence) when the gradient never falls
    that far, and 0 when the last value is 0 or missing (no reference to compare with).
    """
    g = np.asarray(profile, dtype=np.float64)
    finite = np.flatnonzero(np.isfinite(g))
    if len(finite) == 0:
        return 0
    last = int(finite[-1])
    ref = g[last]
    if not ref > 0:
        return 0
    with np.errstate(invalid="ignore"):
        below = np.flatnonzero(g[:last] < ratio * ref)
    return last + 1 if len(below) == 0 else last - int(below[-1])
