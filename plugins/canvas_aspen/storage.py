"""Run-scoped stage files. ``root`` is any path object with ``/``, ``open`` and ``mkdir``:
an Airflow ``ObjectStoragePath`` (local ``file://`` or ``s3://``) or a ``pathlib.Path``."""

from __future__ import annotations

import json
from typing import Any

import pandas as pd


def _parent(path: Any) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotImplementedError):
        pass


def write_json(path: Any, obj: Any) -> None:
    _parent(path)
    with path.open("w") as fh:
        json.dump(obj, fh, default=str)


def read_json(path: Any, default: Any = None) -> Any:
    if default is not None and not path.exists():
        return default
    with path.open("r") as fh:
        return json.load(fh)


def write_frame(path: Any, df: pd.DataFrame) -> None:
    _parent(path)
    with path.open("wb") as fh:
        df.to_parquet(fh, index=False)


def read_frame(path: Any) -> pd.DataFrame:
    with path.open("rb") as fh:
        return pd.read_parquet(fh)
