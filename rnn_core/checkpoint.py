"""Serialise a nested state (dicts, lists, numbers, strings, tensors, numpy arrays) without pickle.

Tensors and arrays go to `<name>.safetensors`, under their path in the state ("model.readout.weight",
"optimizer.state.3.exp_avg"); everything else goes to `<name>.json`, with a {"__tensor__": key}
marker where a tensor was. This module knows nothing of what the state means: the Trainer
builds it (Trainer.state) and takes it back (Trainer.load_state).
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import SafetensorError, safe_open

from . import store

FORMAT = 2  # 1: the Trainer's fields, written by the old save_checkpoint (not readable here)
TENSOR, ARRAY, ITEMS = "__tensor__", "__ndarray__", "__items__"


def _encode(obj: Any, key: str, tensors: dict[str, torch.Tensor]) -> Any:
    if torch.is_tensor(obj):
        tensors[key] = obj
        return {TENSOR: key}
    if isinstance(obj, np.ndarray):
        tensors[key] = torch.from_numpy(np.ascontiguousarray(obj))
        return {ARRAY: key}
    if isinstance(obj, dict):
        if all(isinstance(k, str) for k in obj):
            return {k: _encode(v, f"{key}.{k}", tensors) for k, v in obj.items()}
        # the optimizer's state is keyed by parameter index: JSON objects only have string keys
        return {ITEMS: [[k, _encode(v, f"{key}.{k}", tensors)] for k, v in obj.items()]}
    if isinstance(obj, (list, tuple)):
        return [_encode(v, f"{key}.{i}", tensors) for i, v in enumerate(obj)]
    if isinstance(obj, (np.integer, np.floating, np.bool_)):
        return obj.item()
    return obj


def _decode(obj: Any, tensors: dict[str, torch.Tensor]) -> Any:
    if isinstance(obj, dict):
        if TENSOR in obj:
            return tensors[obj[TENSOR]]
        if ARRAY in obj:
            return tensors[obj[ARRAY]].numpy()
        if ITEMS in obj:
            return {k: _decode(v, tensors) for k, v in obj[ITEMS]}
        return {k: _decode(v, tensors) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_decode(v, tensors) for v in obj]
    return obj


META_KEY = "bptt_lab_checkpoint"  # the JSON part, also kept in the .safetensors file's own metadata


def save_state(path: Path, state: dict, name: str = "checkpoint") -> None:
    """Write `state` as path/name.safetensors and path/name.json, each atomically.

    The tensors file also carries the JSON part in its metadata, and that copy is the one read
    back: a process killed between the two renames leaves new tensors beside the old JSON (an
    older step), and the pair would resume the new weights at the old step. One file is one
    rename, so the tensors and the step they belong to are always of the same save."""
    tensors: dict[str, torch.Tensor] = {}
    meta = {"format": FORMAT, "state": _encode(state, "state", tensors)}
    store.atomic_save_safetensors(path / f"{name}.safetensors", tensors, metadata={META_KEY: json.dumps(meta)})
    store.atomic_write_json(path / f"{name}.json", meta)  # for readers that only check or show it


def has_state(path: Path, name: str = "checkpoint") -> bool:
    """Is there a checkpoint to read? (A run killed before its first save has none.)"""
    return (Path(path) / f"{name}.json").is_file()  # written after its tensors


def saved_step(path: Path, name: str = "checkpoint") -> int | None:
    """The step a resume continues from: the one in the tensors file's own metadata (see
    save_state), read from its header alone. None without a readable checkpoint.

    A run killed after its checkpoint but before its status.json holds an older step in the
    status; a page that showed that step, or asked for that step + N, would be wrong."""
    try:
        with safe_open(Path(path) / f"{name}.safetensors", framework="numpy") as f:
            step = json.loads((f.metadata() or {})[META_KEY])["state"]["step"]
        return int(step)
    except (OSError, ValueError, KeyError, TypeError, SafetensorError):
        return None


def load_state(path: Path, name: str = "checkpoint") -> dict:
    """Read back what save_state wrote; tensors come back on the CPU."""
    path = Path(path)
    if not has_state(path, name):
        raise store.RunStoreError(f"{path} has no checkpoint to resume from")
    try:
        meta = json.loads((path / f"{name}.json").read_text())
        if not isinstance(meta, dict) or meta.get("format") != FORMAT:
            found = meta.get("format", 1) if isinstance(meta, dict) else "unknown"
            raise store.RunStoreError(f"{path}: its checkpoint was written by an older version of BPTT Lab "
                                      f"(format {found}, this one reads {FORMAT}) and cannot be resumed")
        with safe_open(path / f"{name}.safetensors", framework="pt") as f:
            embedded = (f.metadata() or {}).get(META_KEY)
            tensors = {k: f.get_tensor(k) for k in f.keys()}
        # the embedded copy belongs to these tensors; the .json beside them may be a save older
        if embedded:
            meta = json.loads(embedded)
        return _decode(meta["state"], tensors)
    except (OSError, ValueError, KeyError, TypeError, AttributeError, SafetensorError) as err:
        if isinstance(err, store.RunStoreError):
            raise
        raise store.RunStoreError(f"{path}: its checkpoint could not be read: {err}") from None
