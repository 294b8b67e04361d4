"""Check that a directory's files are a run this version can draw and resume: the gate an
imported archive passes before it enters the run store (archive.import_run).

Every file is read as data, never as code: JSON through the config schema, arrays with
`allow_pickle=False` and their dtypes and shapes checked against the config, metrics.csv
against the registry's columns, safetensors files against the model the config builds.
A problem raises CheckError with one line naming the file, what is wrong and what is allowed.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from .config import ConfigError, RunConfig, make_config
from .records import ARRAY, GROUP_NORM_PREFIX, METRIC_COLUMNS, REQUIRED_METRIC_COLUMNS
from .rules import show
from .store import STATUSES

MAX_JSON_BYTES = 16 * 2**20  # config.json is ~1 kB, checkpoint.json ~10 kB a layer: far below this
MAX_METRICS_BYTES = 256 * 2**20  # metrics.csv is read whole: 100,000 steps × ~35 columns is ~70 MB
REQUIRED = ("config.json", "status.json")  # what every run has from its first moment (RunWriter.attach)
CHECKPOINT_KEYS = ("step", "status", "model", "optimizer", "rng", "data_rng")  # what Trainer.load_state reads first


class CheckError(ValueError):
    """One line: which file of a run is wrong, how, and what is allowed."""


def _one_line(err: BaseException, limit: int = 160) -> str:
    return show(" ".join(str(err).split()) or type(err).__name__, limit)


def read_json_object(path: Path) -> dict:
    if path.stat().st_size > MAX_JSON_BYTES:
        raise CheckError(f"{path.name} is over {MAX_JSON_BYTES // 2**20} MiB (a run's JSON files are far smaller)")
    try:
        obj = json.loads(path.read_bytes())
    except (ValueError, RecursionError) as err:  # bad UTF-8 or JSON, or nesting deeper than Python's stack
        raise CheckError(f"{path.name} is not valid JSON ({_one_line(err)})") from None
    if not isinstance(obj, dict):
        raise CheckError(f"{path.name} must hold a JSON object, not {type(obj).__name__}")
    return obj


def recorded_arrays(cfg: RunConfig) -> set[str]:
    """The arrays a run of `cfg` records (as Trainer._read_diagnostics writes them)."""
    names = {"recorded_steps", "timestep_grads", "hidden_saturation", "spectral_radius", "sigma_max"}
    if cfg.cell == "lstm":
        names.add("cell_grads")
    if cfg.cell in ("lstm", "gru"):
        names |= {"gate_mean", "gate_saturation"}
    if cfg.attention != "none":
        names |= {"attention_mean", "attention_samples"}
    return names


def dim_sizes(cfg: RunConfig) -> dict[str, int]:
    """The size of each registry dim letter (rnn_core.records) for a run of `cfg`."""
    from .cells import GATE_MULT
    from .model import ATTN_KEEP_QUERIES, ATTN_SAMPLES
    from .tasks import spec

    every = spec(cfg).read == "every"
    return {"LD": cfg.layers * (2 if cfg.bidirectional else 1), "G": GATE_MULT[cfg.cell], "T": cfg.seq_len,
            "Q": min(ATTN_KEEP_QUERIES, cfg.seq_len) if every else 1, "S": ATTN_SAMPLES}


def check_config(path: Path) -> RunConfig:
    try:
        return make_config(read_json_object(path / "config.json"))
    except ConfigError as err:
        raise CheckError(f"config.json is not a config this version accepts: {err}") from None


def check_status(path: Path) -> dict:
    status = read_json_object(path / "status.json")
    if "status" in status and status["status"] not in STATUSES:
        raise CheckError(f"status.json: status {show(repr(status['status']))} is not one of {', '.join(STATUSES)}")
    steps = status.get("steps_done", 0)
    if not isinstance(steps, int) or isinstance(steps, bool) or steps < 0:
        raise CheckError(f"status.json: steps_done={show(repr(steps))} must be a whole number >= 0")
    return status


def check_arrays(path: Path, cfg: RunConfig) -> None:
    """Names from the registry, dtypes from the registry, shapes from the config, one row count for all."""
    present = {p.stem for p in path.glob("*.npy")}
    if not present:
        return
    expected = recorded_arrays(cfg)
    if present != expected:
        extra, missing = sorted(present - expected), sorted(expected - present)
        what = "; ".join(filter(None, [extra and f"not recorded by this config: {', '.join(extra)}",
                                       missing and f"missing: {', '.join(missing)}"]))
        raise CheckError(f"the arrays do not match the config (cell={cfg.cell}, attention={cfg.attention}): {what}")
    sizes, rows = dim_sizes(cfg), None
    for name in sorted(present):
        rec, file = ARRAY[name], f"{name}.npy"
        a = _load_npy(path / file)
        want_dtype = np.dtype(rec.dtype)
        if a.dtype != want_dtype:
            raise CheckError(f"{file} has dtype {a.dtype}; allowed: {want_dtype}")
        want = tuple(sizes[d] for d in rec.dims)
        if a.ndim != 1 + len(want) or a.shape[1:] != want:
            dims = ", ".join(f"{d}={sizes[d]}" for d in rec.dims)
            raise CheckError(f"{file} has shape {a.shape}; allowed: (recorded steps{', ' if dims else ''}{dims}) "
                             f"for this config")
        if rows is not None and a.shape[0] != rows:
            raise CheckError(f"{file} has {a.shape[0]} recorded steps, the other arrays {rows}: all must agree")
        rows = a.shape[0]
    steps = np.load(path / "recorded_steps.npy", allow_pickle=False)
    if len(steps) and (steps.min() < 0 or (np.diff(steps) <= 0).any()):
        raise CheckError("recorded_steps.npy must hold training steps >= 0 in increasing order")


def _load_npy(p: Path) -> np.ndarray:
    """Header and data length checked, data memory-mapped (not read): allow_pickle=False refuses object arrays."""
    try:
        with p.open("rb") as f:
            version = np.lib.format.read_magic(f)
            read = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
            _, _, dtype = read(f)
        if dtype.hasobject:
            raise CheckError(f"{p.name} holds Python objects (pickled data); allowed: plain numeric arrays")
        return np.load(p, allow_pickle=False, mmap_mode="r")
    except CheckError:
        raise
    except (ValueError, OSError, EOFError) as err:
        raise CheckError(f"{p.name} is not a readable .npy array ({_one_line(err)})") from None


def check_metrics(path: Path) -> None:
    import pandas as pd

    if (path / "metrics.csv").stat().st_size > MAX_METRICS_BYTES:
        raise CheckError(f"metrics.csv is over {MAX_METRICS_BYTES // 2**20} MiB (100,000 steps take ~70 MB)")
    try:
        df = pd.read_csv(path / "metrics.csv")
    except (ValueError, OSError) as err:  # pandas' parser and empty-data errors are ValueErrors
        raise CheckError(f"metrics.csv is not a readable CSV table ({_one_line(err)})") from None
    missing = [c for c in REQUIRED_METRIC_COLUMNS if c not in df.columns]
    if missing:
        raise CheckError(f"metrics.csv lacks the columns {', '.join(missing)} (required: {', '.join(REQUIRED_METRIC_COLUMNS)})")
    unknown = [c for c in df.columns if c not in METRIC_COLUMNS and not str(c).startswith(GROUP_NORM_PREFIX)]
    if unknown:
        raise CheckError(f"metrics.csv has unknown columns {show(', '.join(map(str, unknown)), 80)} (allowed: "
                         f"{', '.join(METRIC_COLUMNS)} and {GROUP_NORM_PREFIX}<group>)")
    if len(df):
        bad = [c for c in df.columns if not pd.api.types.is_numeric_dtype(df[c])]  # bool counts as numeric
        if bad:
            raise CheckError(f"metrics.csv: column {show(bad[0])} holds non-numeric values; allowed: numbers, "
                             "True/False, empty for a missing value")


def _tensor_shapes(p: Path) -> dict[str, tuple[list[int], str]]:
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(p), framework="pt") as f:  # reads the header; tensors stay on disk
            return {k: (list(f.get_slice(k).get_shape()), f.get_slice(k).get_dtype()) for k in f.keys()}
    except (SafetensorError, OSError, ValueError) as err:
        raise CheckError(f"{p.name} is not a readable safetensors file ({_one_line(err)})") from None


def _model_shapes(cfg: RunConfig) -> dict[str, list[int]]:
    """Parameter and buffer names and shapes of the model the config builds (on the CPU, from its seed)."""
    from .model import build_model
    from .tasks import spec

    return {k: list(v.shape) for k, v in build_model(cfg, spec(cfg)).state_dict().items()}


def _compare(file: str, found: dict, model: dict[str, list[int]], prefix: str = "") -> None:
    want = {prefix + k: v for k, v in model.items()}
    missing = sorted(set(want) - set(found))
    if missing:
        raise CheckError(f"{file} lacks the model tensor {show(missing[0], 80)} (and {len(missing) - 1} more) that "
                         "this config's model has")
    for k, shape in want.items():
        if found[k][0] != shape:
            raise CheckError(f"{file}: tensor {show(k, 80)} has shape {found[k][0]}; the config's model needs {shape}")


def _markers(obj: Any, out: set[str]) -> None:
    from .checkpoint import ARRAY as NDARRAY, ITEMS, TENSOR

    if isinstance(obj, dict):
        for key in (TENSOR, NDARRAY):
            if key in obj:
                if not isinstance(obj[key], str):
                    raise CheckError(f"checkpoint.json: a {key} marker must name a tensor")
                out.add(obj[key])
                return
        for v in (obj[ITEMS] if ITEMS in obj else obj.values()):
            _markers(v, out)
    elif isinstance(obj, list):
        for v in obj:
            _markers(v, out)


def check_weights(path: Path, cfg: RunConfig) -> None:
    has = {f: (path / f).is_file() for f in ("model.safetensors", "checkpoint.safetensors", "checkpoint.json")}
    if has["checkpoint.safetensors"] != has["checkpoint.json"]:
        raise CheckError("checkpoint.safetensors and checkpoint.json come as a pair: give both or neither")
    if not any(has.values()):
        return
    model = _model_shapes(cfg)
    if has["model.safetensors"]:
        _compare("model.safetensors", _tensor_shapes(path / "model.safetensors"), model)
    if has["checkpoint.json"]:
        from .checkpoint import FORMAT

        meta = read_json_object(path / "checkpoint.json")
        if meta.get("format") != FORMAT or not isinstance(meta.get("state"), dict):
            raise CheckError(f"checkpoint.json must be format {FORMAT} with a state object (found format "
                             f"{show(repr(meta.get('format')))})")
        state = meta["state"]
        missing = [k for k in CHECKPOINT_KEYS if k not in state]
        if missing:
            raise CheckError(f"checkpoint.json: the state lacks {', '.join(missing)}")
        step = state["step"]
        if not isinstance(step, int) or isinstance(step, bool) or not 0 <= step <= cfg.steps:
            raise CheckError(f"checkpoint.json: step={show(repr(step))} must be a whole number in 0..{cfg.steps}")
        named: set[str] = set()
        try:
            _markers(state, named)
        except RecursionError:
            raise CheckError("checkpoint.json is nested too deeply to be a checkpoint") from None
        tensors = _tensor_shapes(path / "checkpoint.safetensors")
        if named != set(tensors):
            odd = sorted(named ^ set(tensors))
            raise CheckError(f"checkpoint.json and checkpoint.safetensors disagree on tensor {show(odd[0], 80)}: "
                             "every tensor the JSON names must be in the safetensors file, and no other")
        _compare("checkpoint.safetensors", tensors, model, prefix="state.model.")
        import torch

        rng = {"state.data_rng": torch.Generator().get_state(), "state.rng.cpu": torch.get_rng_state()}
        for k, ref in rng.items():
            if tensors.get(k) != (list(ref.shape), "U8"):
                raise CheckError(f"checkpoint.safetensors: {k} must be a random generator state "
                                 f"(uint8, shape {list(ref.shape)})")


def check_run(path: Path | str) -> RunConfig:
    """Every check, cheapest first; returns the run's config."""
    path = Path(path)
    for name in REQUIRED:
        if not (path / name).is_file():
            raise CheckError(f"the run has no {name} (required: {', '.join(REQUIRED)})")
    cfg = check_config(path)
    check_status(path)
    check_arrays(path, cfg)
    if (path / "metrics.csv").is_file():
        check_metrics(path)
    check_weights(path, cfg)
    return cfg
