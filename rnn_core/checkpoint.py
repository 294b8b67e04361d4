"""Resumable checkpoints without pickle: tensors in safetensors, everything else in JSON."""
from __future__ import annotations

import json
from typing import TYPE_CHECKING

import torch
from safetensors.torch import load_file

from . import store

if TYPE_CHECKING:
    from .trainer import Trainer


def save_checkpoint(tr: "Trainer") -> None:
    tensors = {f"model.{k}": v for k, v in tr.model.state_dict().items()}
    opt = tr.opt.state_dict()
    opt_meta: dict = {}
    for idx, state in opt["state"].items():
        opt_meta[str(idx)] = {}
        for key, value in state.items():
            if torch.is_tensor(value):
                tensors[f"opt.{idx}.{key}"] = value
            else:
                opt_meta[str(idx)][key] = value
    tensors.update({f"rng.{k}": v for k, v in tr.rng_state.items()})  # dropout's generator (cpu, cuda)
    tensors["rng.data"] = tr.gen.get_state()
    store.atomic_save_safetensors(tr.out_dir / "checkpoint.safetensors", tensors)
    store.atomic_write_json(tr.out_dir / "checkpoint.json", {
        "step": tr.step_index,
        "optimizer": {"param_groups": opt["param_groups"], "state": opt_meta},
        "best_val": tr.best_val if tr.best_val != float("inf") else None,
        "bad_evals": tr.bad_evals,
        "last_val": tr.last_val,
    })


def load_checkpoint(tr: "Trainer") -> None:
    path = tr.out_dir
    if not (path / "checkpoint.json").is_file():
        raise store.RunStoreError(f"{path} has no checkpoint to resume from")
    meta = json.loads((path / "checkpoint.json").read_text())
    tensors = load_file(path / "checkpoint.safetensors")
    tr.model.load_state_dict({k[6:]: v for k, v in tensors.items() if k.startswith("model.")})
    state: dict = {int(i): dict(s) for i, s in meta["optimizer"]["state"].items()}
    for key, value in tensors.items():
        if key.startswith("opt."):
            _, idx, name = key.split(".", 2)
            state.setdefault(int(idx), {})[name] = value.to(tr.device)
    tr.opt.load_state_dict({"state": state, "param_groups": meta["optimizer"]["param_groups"]})
    tr.rng_state = {"cpu": tensors["rng.cpu"]}
    if "rng.cuda" in tensors and tr.device.type == "cuda":
        tr.rng_state["cuda"] = tensors["rng.cuda"]
    tr.gen.set_state(tensors["rng.data"])
    tr.step_index = meta["step"]
    tr.best_val = meta["best_val"] if meta["best_val"] is not None else float("inf")
    tr.bad_evals = meta["bad_evals"]
    tr.last_val = meta["last_val"]
