"""What the Runs page does to the run store: rename, delete, export, import. No Streamlit here.

Every function returns one line for the page to show (or raises nothing the page must catch):
a bad name, a taken name, a run that is training, a file that is not a run archive. `live` is
the set of run names that a job of this server trains or has queued (dashboard.runs asks the
training service); such a run's directory is being written, so it is never renamed or deleted.
"""
from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Collection

from rnn_core import archive, store
from rnn_core.rules import run_name_problem, show


def _busy(name: str) -> str:
    return f"run {show(repr(name))} is training on this server: stop it on Explore first"


def _inside(path: Path, root: Path) -> bool:
    """Is `path` a real directory directly inside `root` (not a link pointing elsewhere)?"""
    return not path.is_symlink() and path.is_dir() and path.resolve().parent == root.resolve()


def rename_run(old: str, new: str, live: Collection[str] = (), root: Path | None = None) -> str | None:
    """Rename run `old` to `new` with one os.rename of its directory; None when done, else why not."""
    root = Path(root) if root is not None else store.runs_root()
    new = new.strip()
    if problem := run_name_problem(old):
        return problem
    if problem := run_name_problem(new):
        return f"new {problem}"
    src, dst = store.run_dir(old, root), store.run_dir(new, root)
    if not _inside(src, root) or not (src / "config.json").is_file():
        return f"there is no run {show(repr(old))} in the run store"
    if new == old:
        return f"the run is already called {show(repr(new))}"
    if old in live:
        return _busy(old)
    if os.path.lexists(dst) or new in live:
        return f"the name {show(repr(new))} is taken: pick another"
    try:
        os.rename(src, dst)
    except OSError as err:
        return f"could not rename {show(repr(old))}: {err.strerror or err}"
    return None


def delete_runs(names: Collection[str], live: Collection[str] = (), root: Path | None = None) -> tuple[list[str], list[str]]:
    """Delete each named run's directory; returns (deleted names, one line per run not deleted)."""
    root = Path(root) if root is not None else store.runs_root()
    deleted, problems = [], []
    for name in names:
        if problem := run_name_problem(name):
            problems.append(problem)
            continue
        path = store.run_dir(name, root)
        if name in live:
            problems.append(_busy(name))
        elif not _inside(path, root):
            problems.append(f"run {show(repr(name))} is not a directory of the run store {root}: left alone")
        else:
            try:
                shutil.rmtree(path)
                deleted.append(name)
            except OSError as err:
                problems.append(f"could not delete {show(repr(name))}: {err.strerror or err}")
    return deleted, problems


def export_bytes(name: str, root: Path | None = None) -> bytes:
    """The run as the zip that archive.export_run writes, with the offline report. Raises
    archive.ArchiveError (one line) for a run that cannot be exported."""
    from .report import html_report  # plotly: only when a download is asked for

    run = store.run_dir(name, Path(root) if root is not None else None)
    with tempfile.TemporaryDirectory(prefix="bptt-lab-export-") as tmp:
        try:
            out = archive.export_run(run, Path(tmp) / f"{name}.zip", report=html_report)
            return out.read_bytes()
        except OSError as err:
            raise archive.ArchiveError(f"could not export {show(repr(name))}: {err.strerror or err}") from None


def import_upload(file_name: str, data: bytes, root: Path | None = None) -> tuple[bool, str]:
    """Import an uploaded archive: (True, the new run's name) or (False, why not, in one line).
    The upload is written to a temporary file named after it (archive.name_from_file cleans the
    name), so the new run is named after the uploaded file, with -2, -3, ... when that is taken."""
    from rnn_core.settings import load_settings

    limit = load_settings().max_upload_mb  # Streamlit's server.maxUploadSize refuses larger ones first
    if len(data) > limit * 2**20:
        return False, (f"{show(repr(file_name))} is {len(data) / 2**20:.1f} MB; allowed: at most {limit} MB "
                       "(BPTT_LAB_MAX_UPLOAD_MB)")
    base = archive.name_from_file(Path(os.path.basename(str(file_name).replace("\\", "/")) or "upload.zip"))
    with tempfile.TemporaryDirectory(prefix="bptt-lab-import-") as tmp:
        path = Path(tmp) / f"{base}.zip"
        try:
            path.write_bytes(data)
            return True, archive.import_run(path, root=root)
        except archive.ArchiveError as err:
            return False, str(err)
        except OSError as err:
            return False, f"could not import {show(repr(file_name))}: {err.strerror or err}"


__all__ = ["rename_run", "delete_runs", "export_bytes", "import_upload"]
