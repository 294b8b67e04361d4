"""A run as one zip archive, to hand to someone else, and back into the run store.

    export_run("runs/demo", "demo.zip", report=html_report)   # report: dashboard.report.html_report
    import_run("demo.zip")                                     # -> "demo" (or "demo-2" when taken)

The archive is flat and readable without BPTT Lab (README_TEXT is its README.txt):

    config.json  status.json  metrics.csv           as in the run store
    model.safetensors  checkpoint.safetensors  checkpoint.json   weights and a resumable state
    arrays/<name>.npy                                each recorded array, as saved
    arrays/<name>.csv                                the same array as a table (array_table)
    report.html  README.txt                          an offline report, and what is where

Importing trusts nothing in the file. Before a byte is extracted: the file size, the member
count, the declared uncompressed total and each member's compression ratio are bounded
(LIMITS), and every member name must be one of the layout's, so none can land outside the
new run (no absolute path, '..', backslash, drive letter, symlink or duplicate). Members are
read in bounded chunks into a hidden directory inside the runs root, checked there as a run
(runcheck.check_run: config schema, array dtypes and shapes, metrics columns, safetensors
against the config's model) and only then renamed into place. Any failure removes that
directory: no run appears, none changes. The .csv tables, README.txt and report.html are
derived, so import skips them; what it extracts equals the exported run file for file.
The run's name is not inside any file: import takes it from `name` or the zip's file name.
"""
from __future__ import annotations

import io
import os
import re
import secrets
import shutil
import stat
import tempfile
import time
import zipfile
import zlib
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd

from . import store
from .records import ARRAY, ARRAYS
from .rules import run_name_problem, show
from .runcheck import REQUIRED, CheckError, check_run

# --- limits, checked before anything is extracted -----------------------------------------------
# The largest config (LSTM, 4 bidirectional layers of 512) has ~100 MB of weights and ~300 MB of
# checkpoint (weights and Adam's two moments), which random floats barely compress; the recorder
# caps the arrays at 64 MiB, and their .csv tables take ~3x that. The limits leave room for it.
MAX_ZIP_BYTES = 1 * 2**30  # size of the .zip file itself
MAX_MEMBERS = 200  # a run has at most 6 files + 10 arrays × 2 + README + report = 28 members
MAX_TOTAL_BYTES = 2 * 2**30  # declared uncompressed size of all members together
MAX_RATIO = 100  # uncompressed / compressed size of one member: a zip bomb's is ~1000
RATIO_FLOOR = 1 * 2**20  # ... checked for members over this size (tiny files compress oddly, and cannot bomb)
CHUNK = 1 * 2**20  # bytes read from a member at a time

RUN_FILES = ("config.json", "status.json", "metrics.csv", "model.safetensors", "checkpoint.safetensors",
             "checkpoint.json")  # extracted as they are
ARRAY_DIR = "arrays"
DERIVED = ("README.txt", "report.html")  # written by export, skipped by import
ALLOWED = f"{', '.join(RUN_FILES + DERIVED)}, {ARRAY_DIR}/<recorded array>.npy or .csv"

INDEX_COLUMN = {"LD": "layer_direction", "G": "gate", "Q": "query", "S": "sample"}  # a middle axis in a .csv
VALUE_PREFIX = {"T": "t", "G": "gate", "Q": "q"}  # the last axis, spread over columns: t0 .. t{T-1}

README_TEXT = """BPTT Lab run archive
====================

config.json        the run's full config (python -m rnn_core keys lists every key)
status.json        how the run ended: status, reason, steps done, final validation loss, the
                   input-blind baseline on the validation batch, and the verdict
metrics.csv        one row per training step: loss, val_loss (empty when not evaluated), gradient
                   norms before and after clipping, learning rate, ...; grad_norm/<group> per
                   parameter group
model.safetensors  the weights; checkpoint.safetensors + checkpoint.json: the full training
                   state, so the run can be resumed after import
report.html        every chart of the run, interactive, opens offline in a browser
arrays/NAME.npy    each recorded array (numpy; the first axis is the recorded step)
arrays/NAME.csv    the same array as a table. Columns:
                     recorded_step      the training step of the row (arrays/recorded_steps.npy)
                     layer_direction    layer * D + direction (D = 2 when bidirectional, else 1;
                                        direction 1 reads time backwards)
                     gate               gate block: LSTM i f g o, GRU r z n, vanilla RNN one block
                     sample, query      attention: which sampled sequence, which query step
                   then one column per entry of the last axis: t0 .. t{T-1} for time
                   (seq_len timesteps), gate0 .. for spectral_radius and sigma_max.
                   An empty cell is NaN: no value (a timestep a curriculum had not reached yet,
                   a saturation that a linear activation does not have).
                   recorded_steps.csv has the columns row, recorded_steps.

Import it with:  python -m rnn_core import FILE.zip [--name NAME]
"""


class ArchiveError(ValueError):
    """A run that cannot be exported, or an archive that cannot be imported: one line saying
    what was wrong and what is allowed."""


# --- export ---------------------------------------------------------------------------------------
def array_table(name: str, a: np.ndarray, recorded_steps: np.ndarray | None = None) -> pd.DataFrame:
    """A recorded array as a table: all but the last axis become rows (with index columns), the last
    axis becomes columns. a: (N, *dims) with the dims of rnn_core.records.ARRAY[name]."""
    a = np.asarray(a)
    N = a.shape[0]
    if a.ndim == 1:
        return pd.DataFrame({"row": np.arange(N), name: a})
    dims = ARRAY[name].dims
    steps = recorded_steps if recorded_steps is not None and len(recorded_steps) == N else np.arange(N)
    lead = a.shape[:-1]
    idx = np.indices(lead).reshape(len(lead), -1)  # (ndim-1, rows): row-major, as reshape flattens
    index = {"recorded_step": np.asarray(steps)[idx[0]]}
    index.update({INDEX_COLUMN[d]: idx[k + 1] for k, d in enumerate(dims[:-1])})
    prefix = VALUE_PREFIX[dims[-1]]
    values = pd.DataFrame(a.reshape(-1, a.shape[-1]), columns=[f"{prefix}{j}" for j in range(a.shape[-1])])
    return pd.concat([pd.DataFrame(index), values], axis=1)


def _too_compressed(info: zipfile.ZipInfo) -> bool:
    return info.file_size > RATIO_FLOOR and info.file_size > MAX_RATIO * max(1, info.compress_size)


def _write_zip(out: Path, members: list[tuple[str, Path | bytes]]) -> None:
    """Write atomically (a temporary file beside `out`, then renamed). A member that deflate would
    shrink past MAX_RATIO (an all-NaN array) is stored uncompressed, so every export imports."""
    fd, tmp = tempfile.mkstemp(dir=out.parent, prefix=f".{out.name}.", suffix=".tmp")
    os.close(fd)
    stored: set[str] = set()
    now = time.localtime()[:6]
    try:
        for _ in range(2):  # a second pass only when the first found a member to store
            with zipfile.ZipFile(tmp, "w") as zf:
                for arcname, src in members:
                    kind = zipfile.ZIP_STORED if arcname in stored else zipfile.ZIP_DEFLATED
                    if isinstance(src, Path):
                        zf.write(src, arcname, compress_type=kind)
                    else:
                        info = zipfile.ZipInfo(arcname, date_time=now)
                        info.external_attr = (stat.S_IFREG | 0o644) << 16
                        zf.writestr(info, src, compress_type=kind)
                over = {i.filename for i in zf.infolist() if _too_compressed(i)}
                total = sum(i.file_size for i in zf.infolist())
            if over <= stored:
                break
            stored |= over
        size = Path(tmp).stat().st_size
        if size > MAX_ZIP_BYTES or total > MAX_TOTAL_BYTES:
            raise ArchiveError(f"the archive would be {size / 2**20:.0f} MiB ({total / 2**20:.0f} MiB unpacked), over "
                               f"what import allows ({MAX_ZIP_BYTES // 2**20} MiB, {MAX_TOTAL_BYTES // 2**20} MiB)")
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, out)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def export_run(run_dir: str | Path, out_zip: str | Path, report: Callable[[Path], str] | None = None) -> Path:
    """Write the run in `run_dir` as a zip at `out_zip` (see the module docstring for its layout);
    `report(run_dir)` gives report.html's text. Returns out_zip."""
    run_dir, out = Path(run_dir), Path(out_zip)
    for name in REQUIRED:
        if not (run_dir / name).is_file():
            raise ArchiveError(f"{run_dir} holds no run (it has no {name})")
    if out.suffix.lower() != ".zip":
        raise ArchiveError(f"the archive {out} must be a .zip file")
    if out.is_dir() or not out.parent.is_dir():
        raise ArchiveError(f"cannot write {out}: {'it is a directory' if out.is_dir() else 'its directory does not exist'}")
    members: list[tuple[str, Path | bytes]] = [(f, run_dir / f) for f in RUN_FILES if (run_dir / f).is_file()]
    arrays: dict[str, np.ndarray] = {}
    for rec in ARRAYS:
        path = run_dir / f"{rec.name}.npy"
        if path.is_file():
            data = path.read_bytes()  # once: the .npy and its .csv must show the same values
            try:
                arrays[rec.name] = np.load(io.BytesIO(data), allow_pickle=False)
            except ValueError as err:
                raise ArchiveError(f"{path} is not a readable array: {show(str(err), 120)}") from None
            members.append((f"{ARRAY_DIR}/{rec.name}.npy", data))
    steps = arrays.get("recorded_steps")
    for name, a in arrays.items():
        members.append((f"{ARRAY_DIR}/{name}.csv", array_table(name, a, steps).to_csv(index=False).encode()))
    members.append(("README.txt", README_TEXT.encode()))
    if report is not None:
        members.append(("report.html", report(run_dir).encode()))
    _write_zip(out, members)
    return out


# --- import ---------------------------------------------------------------------------------------
def _target(name: str) -> str | None:
    """Where member `name` goes in the run directory (None: skipped), or ArchiveError."""
    shown = show(repr(name), 60)
    if "\\" in name:
        raise ArchiveError(f"member {shown} has a backslash in its path; allowed: {ALLOWED}")
    if name.startswith("/") or re.match(r"^[A-Za-z]:", name):
        raise ArchiveError(f"member {shown} has an absolute path; allowed: relative names ({ALLOWED})")
    parts = name.split("/")
    if ".." in parts:
        raise ArchiveError(f"member {shown} climbs out of the archive ('..'); allowed: {ALLOWED}")
    if name in RUN_FILES:
        return name
    if name in DERIVED or name == f"{ARRAY_DIR}/":
        return None
    if len(parts) == 2 and parts[0] == ARRAY_DIR:
        stem, dot, ext = parts[1].rpartition(".")
        if dot and ext in ("npy", "csv") and stem in ARRAY:
            return parts[1] if ext == "npy" else None
        raise ArchiveError(f"member {shown} is not a recorded array; allowed: {ARRAY_DIR}/NAME.npy or .csv for NAME "
                           f"in {', '.join(a.name for a in ARRAYS)}")
    raise ArchiveError(f"unexpected member {shown}; allowed: {ALLOWED}")


def _plan(zf: zipfile.ZipFile) -> list[tuple[zipfile.ZipInfo, str]]:
    """Check every member's name, kind and size; return the ones to extract with their file name."""
    infos = zf.infolist()
    if len(infos) > MAX_MEMBERS:
        raise ArchiveError(f"the archive has {len(infos)} members; allowed: at most {MAX_MEMBERS}")
    seen: set[str] = set()
    plan, total = [], 0
    for info in infos:
        name, shown = info.filename, show(repr(info.filename), 60)
        target = _target(name)
        if name in seen:
            raise ArchiveError(f"member {shown} appears twice; allowed: each name once")
        seen.add(name)
        mode = info.external_attr >> 16
        if stat.S_ISLNK(mode):
            raise ArchiveError(f"member {shown} is a symbolic link; allowed: plain files")
        if info.is_dir() != (name == f"{ARRAY_DIR}/"):
            raise ArchiveError(f"member {shown} is a directory; allowed: only {ARRAY_DIR}/")
        if info.flag_bits & 0x1:
            raise ArchiveError(f"member {shown} is encrypted; allowed: unencrypted members")
        if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
            raise ArchiveError(f"member {shown} uses compression method {info.compress_type}; allowed: stored or deflate")
        total += info.file_size
        if total > MAX_TOTAL_BYTES:
            raise ArchiveError(f"the archive unpacks to over {MAX_TOTAL_BYTES // 2**20} MiB (member {shown} declares "
                               f"{info.file_size:,} bytes); allowed: at most {MAX_TOTAL_BYTES // 2**20} MiB in all")
        if _too_compressed(info):
            raise ArchiveError(f"member {shown} expands {info.file_size / max(1, info.compress_size):.0f}-fold "
                               f"(a zip bomb?); allowed: at most {MAX_RATIO}-fold for members over "
                               f"{RATIO_FLOOR // 2**20} MiB")
        if target is not None:
            plan.append((info, target))
    return plan


def _extract(zf: zipfile.ZipFile, info: zipfile.ZipInfo, dest: Path) -> None:
    """Copy one member in bounded chunks, never more than the size it declared."""
    left = info.file_size
    with zf.open(info) as src, dest.open("xb") as out:
        while chunk := src.read(min(CHUNK, left + 1)):
            left -= len(chunk)
            if left < 0:
                raise ArchiveError(f"member {show(repr(info.filename), 60)} holds more than the {info.file_size:,} "
                                   "bytes it declares")
            out.write(chunk)
    if left:
        raise ArchiveError(f"member {show(repr(info.filename), 60)} ends {left:,} bytes short of its declared size")


def name_from_file(zip_path: Path) -> str:
    """A run name from an archive's file name: 'my run (1).zip' -> 'my-run-1'."""
    base = re.sub(r"[^A-Za-z0-9._-]+", "-", zip_path.stem)
    base = re.sub(r"\.{2,}", ".", base).strip("._-")[:100]
    return base if base and run_name_problem(base) is None else "imported"


def _claim_name(root: Path, base: str) -> str:
    """The first free name of base, base-2, base-3, ...: reserved by creating it (an empty directory,
    which no listing shows as a run and which the rename then replaces), so two imports never race."""
    for k in range(1, 10_000):
        suffix = "" if k == 1 else f"-{k}"
        name = base[: 100 - len(suffix)] + suffix
        try:
            os.mkdir(root / name)
            return name
        except FileExistsError:
            continue
    raise ArchiveError(f"no free run name of the form {base}-N in {root}")


def import_run(zip_path: str | Path, root: Path | None = None, name: str | None = None) -> str:
    """Check and unpack an archive from export_run as a new run in `root` (store.runs_root()); return its
    name: `name` (or one from the zip's file name), with -2, -3, ... when that is taken."""
    zip_path = Path(zip_path)
    root = Path(root) if root is not None else store.runs_root()
    if name is not None and (problem := run_name_problem(name)):
        raise ArchiveError(problem)
    base = name if name is not None else name_from_file(zip_path)
    if not zip_path.is_file():
        raise ArchiveError(f"{zip_path} is not a file")
    size = zip_path.stat().st_size
    if size > MAX_ZIP_BYTES:
        raise ArchiveError(f"{zip_path} is {size / 2**20:.0f} MiB; allowed: at most {MAX_ZIP_BYTES // 2**20} MiB")
    made_root = not root.exists()
    root.mkdir(parents=True, exist_ok=True)
    tmp = root / f".import-{secrets.token_hex(8)}.tmp"  # hidden: no run name starts with '.'
    os.mkdir(tmp)
    try:
        try:
            with zipfile.ZipFile(zip_path) as zf:
                for info, target in _plan(zf):
                    _extract(zf, info, tmp / target)
        except ArchiveError as err:
            raise ArchiveError(f"{zip_path.name}: {err}") from None
        except (zipfile.BadZipFile, zipfile.LargeZipFile, zlib.error, EOFError, OSError, RuntimeError,
                NotImplementedError, ValueError) as err:  # a truncated file, a bad CRC, a corrupt stream
            raise ArchiveError(f"{zip_path.name} is not a readable zip archive ({show(' '.join(str(err).split()), 120)})"
                               "; allowed: a .zip written by 'python -m rnn_core export'") from None
        try:
            check_run(tmp)
        except CheckError as err:
            raise ArchiveError(f"{zip_path.name}: {err}") from None
        final = _claim_name(root, base)
        try:
            os.rename(tmp, root / final)  # replaces the empty directory that reserved the name
        except OSError:
            os.rmdir(root / final)
            raise
        return final
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        if made_root:
            try:
                root.rmdir()
            except OSError:
                pass
        raise


# --- for the CLI ------------------------------------------------------------------------------
def resolve_run(run: str, root: Path | None = None) -> Path:
    """A run name in the store, or a path to a run directory."""
    if run_name_problem(run) is None and (store.run_dir(run, root) / "config.json").is_file():
        return store.run_dir(run, root)
    if (Path(run) / "config.json").is_file():
        return Path(run)
    raise ArchiveError(f"no run named {show(repr(run))} in {root or store.runs_root()} and no run directory at that path")
