"""Warm start (transfer) from a saved run's safetensors weights, and freezing parts of the model."""
from __future__ import annotations

from safetensors.torch import load_file
from torch import nn

from .config import ConfigError
from .store import run_dir


def load_warm_start(model: nn.Module, name: str) -> list[str]:
    """Copy every saved tensor whose name and shape fit; a shape mismatch is an error naming both shapes."""
    path = run_dir(name) / "model.safetensors"
    if not path.is_file():
        raise ConfigError(f"warm_start={name}: no saved weights at {path}")
    saved = load_file(path)
    own = model.state_dict()
    loaded = []
    for key, value in saved.items():
        if key not in own:
            continue
        if own[key].shape != value.shape:
            raise ConfigError(f"warm_start={name}: {key} has shape {tuple(value.shape)} in the saved run "
                              f"but {tuple(own[key].shape)} here")
        own[key].copy_(value)
        loaded.append(key)
    if not loaded:
        raise ConfigError(f"warm_start={name}: no saved tensor matches this model's parameters")
    return loaded


def frozen_parameters(model: nn.Module, freeze: str) -> set[int]:
    """ids of the parameters `freeze` keeps fixed: 'input' = embedding and the first layer's input weights,
    'recurrent' = every parameter of every recurrent layer."""
    ids: set[int] = set()
    if "input" in freeze:
        if model.embed is not None:
            ids.add(id(model.embed.weight))
        for layer in model.layers[0]:
            ids.add(id(layer.weight_ih))
    if "recurrent" in freeze:
        ids.update(id(p) for layer in model.recurrent_layers() for p in layer.parameters())
    return ids


def apply_freeze(model: nn.Module, freeze: str) -> list[nn.Parameter]:
    """Turn off gradients of the frozen parts; return the parameters left to train."""
    frozen = frozen_parameters(model, freeze)
    for p in model.parameters():
        if id(p) in frozen:
            p.requires_grad_(False)
    return [p for p in model.parameters() if p.requires_grad]
