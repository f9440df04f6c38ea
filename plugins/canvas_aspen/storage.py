"""Run-scoped stage files. ``root`` is any path object with ``/``, ``open`` and ``mkdir``:
an Airflow ``ObjectStoragePath`` (local ``file://`` or ``s3://``) or a ``pathlib.Path``.

Stage files hold student SIS ids and scores: on the local file system the stage root, each
run's folder and everything in it are readable by their owner only (folders ``0700``, files
``0600``), like the reports. An object store (``s3://`` …) is left to its own access control.
"""

from __future__ import annotations

import io
import json
import logging
import os
from pathlib import Path
from typing import Any

import pandas as pd

from canvas_aspen import jsonfast

log = logging.getLogger(__name__)

_LOCAL_PROTOCOLS = ("file", "local", "")


def local_path(path: Any) -> Path | None:
    """``path`` on the local file system (a ``pathlib.Path``, or an ``ObjectStoragePath`` of
    ``file://``), else None (an object store)."""
    protocol = getattr(path, "protocol", None)
    if protocol is None:
        return Path(path) if isinstance(path, os.PathLike) else None
    if isinstance(protocol, (tuple, list)):
        protocol = protocol[0] if protocol else ""
    return Path(path.path) if protocol in _LOCAL_PROTOCOLS else None


def private_dir(folder: Path) -> Path:
    """A folder only its owner can enter: made ``0700`` if missing; an existing one that its
    group or others may use is tightened to ``0700``, with a warning naming it (reports and
    stage files hold student SIS ids and scores)."""
    folder = Path(folder)
    try:
        mode = folder.stat().st_mode & 0o777
    except FileNotFoundError:
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        mode = None
    if mode is not None and mode & 0o077:
        log.warning(
            "%s was open to its group or others (mode %s); made it owner-only (0700)", folder, oct(mode)
        )
    if mode != 0o700:
        os.chmod(folder, 0o700)
    return folder


def write_private(path: Path, data: bytes) -> Path:
    """Write ``data`` to a file only its owner can read (``0600``, also when it existed)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
    os.chmod(path, 0o600)
    return path


def private_run_dir(run_dir: Any) -> None:
    """The stage root and this run's folder in it, owner-only (local file system only)."""
    local = local_path(run_dir)
    if local is not None:
        private_dir(local.parent)
        private_dir(local)


def _parent(path: Any) -> None:
    local = local_path(path)
    if local is not None:
        private_dir(local.parent)
        return
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotImplementedError):
        pass


def _write(path: Any, data: bytes) -> None:
    _parent(path)
    local = local_path(path)
    if local is not None:
        write_private(local, data)
        return
    with path.open("wb") as fh:
        fh.write(data)


def write_json(path: Any, obj: Any) -> None:
    """One ``write`` of the whole text: ``json.dump`` writes token by token, and through an
    ``ObjectStoragePath`` file each write is a Python call chain (a shard's ``canvas.json``
    took 15 s instead of 0.1 s at district scale)."""
    _write(path, json.dumps(obj, default=str).encode())


def read_json(path: Any, default: Any = None) -> Any:
    if default is not None and not path.exists():
        return default
    with path.open("rb") as fh:
        return jsonfast.loads(fh.read())


def write_frame(path: Any, df: pd.DataFrame) -> None:
    buffer = io.BytesIO()  # Arrow writes in many small pieces: buffer them, write once
    df.to_parquet(buffer, index=False)
    _write(path, buffer.getvalue())


def read_frame(path: Any, columns: list[str] | None = None) -> pd.DataFrame:
    """A stage frame; with ``columns``, only those of them the file has (parquet reads just those)."""
    with path.open("rb") as fh:
        if columns is None:
            return pd.read_parquet(fh)
        import pyarrow.parquet as pq

        names = set(pq.read_schema(fh).names)
        fh.seek(0)
        return pd.read_parquet(fh, columns=[c for c in columns if c in names])
