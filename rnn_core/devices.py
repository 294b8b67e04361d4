"""Which devices exist, and turning a config's `device` into a torch.device with a clear error."""
from __future__ import annotations

import torch

from .config import ConfigError


def available_devices() -> list[str]:
    out = ["cpu"]
    if torch.cuda.is_available():
        out.append("cuda")
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        out.append("mps")
    return out


def resolve_device(name: str) -> torch.device:
    avail = available_devices()
    if name == "auto":
        return torch.device(avail[1] if len(avail) > 1 else "cpu")
    if name not in avail:
        raise ConfigError(f"device={name} is not available on this machine (available: auto, {', '.join(avail)})")
    return torch.device(name)


def device_label(name: str) -> str:
    """'cuda (NVIDIA H100 80GB HBM3)' for a GPU, the plain name otherwise."""
    if name == "cuda" and torch.cuda.is_available():
        return f"cuda ({torch.cuda.get_device_name(0)})"
    return name
