"""Run-scoped stage files. ``root`` is any path object with ``/``, ``open`` and ``mkdir``:
an Airflow ``ObjectStoragePath`` (local ``file://`` or ``s3://``) or a ``pathlib.Path``."""

from __future__ import annotations

import io
import json
from typing import Any

import pandas as pd


def _parent(path: Any) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotImplementedError):
        pass


def write_json(path: Any, obj: Any) -> None:
    """One ``write`` of the whole text: ``json.dump`` writes token by token, and through an
    ``ObjectStoragePath`` file each write is a Python call chain (a shard's ``canvas.json``
    took 15 s instead of 0.1 s at district scale)."""
    _parent(path)
    text = json.dumps(obj, default=str)
    with path.open("w") as fh:
        fh.write(text)


def read_json(path: Any, default: Any = None) -> Any:
    if default is not None and not path.exists():
        return default
    with path.open("r") as fh:
        return json.load(fh)


def write_frame(path: Any, df: pd.DataFrame) -> None:
    _parent(path)
    buffer = io.BytesIO()  # Arrow writes in many small pieces: buffer them, write once
    df.to_parquet(buffer, index=False)
    with path.open("wb") as fh:
        fh.write(buffer.getvalue())


def read_frame(path: Any) -> pd.DataFrame:
    with path.open("rb") as fh:
        return pd.read_parquet(fh)
