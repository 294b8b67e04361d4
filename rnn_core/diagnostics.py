"""Per-step diagnostics that do not come from the backward trace: spectra and parameter-group norms."""
from __future__ import annotations

import numpy as np
import torch

from .model import SeqModel
from .optim import global_norm


def recurrent_spectra(model: SeqModel) -> tuple[np.ndarray, np.ndarray]:
    """Spectral radius and largest singular value of each H×H gate block of each W_hh.

    Returns two (layers × directions, gates) float64 arrays (gates = 1 for the vanilla RNN,
    4 for the LSTM in i f g o order, 3 for the GRU in r z n order). For a linear RNN the
    spectral radius γ is the rate at which the gradient shrinks or grows per step.
    """
    radius, sigma = [], []
    for layer in model.recurrent_layers():
        blocks = layer.weight_hh.detach().double().cpu().split(layer.hidden_size, 0)  # G × (H, H)
        stacked = torch.stack(blocks)  # (G, H, H)
        radius.append(torch.linalg.eigvals(stacked).abs().amax(-1).numpy())
        sigma.append(torch.linalg.matrix_norm(stacked, ord=2).numpy())
    return np.stack(radius), np.stack(sigma)


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
    """float64 gradient norm of each group (0 for a group with no gradient, e.g. frozen)."""
    out = {}
    for name, params in groups.items():
        out[name] = global_norm([p.grad for p in params if p.grad is not None])
    return out
