"""The few things that need Airflow: hooks, the ledger's connection, the run folder.

Kept apart from the pure modules so that they stay testable without an Airflow runtime.
"""

from __future__ import annotations

import json
import logging
from functools import lru_cache
from pathlib import Path
from typing import Any

from canvas_aspen.settings import Settings

log = logging.getLogger(__name__)

_SQLALCHEMY_SCHEMES = {"postgres": "postgresql+psycopg2", "postgresql": "postgresql+psycopg2", "sqlite": "sqlite"}


def settings() -> Settings:
    return Settings.from_env()


def hooks(s: Settings):
    from canvas_aspen.hooks.aspen import AspenHook
    from canvas_aspen.hooks.canvas import CanvasHook

    return CanvasHook(canvas_conn_id=s.canvas_conn_id), AspenHook(aspen_conn_id=s.aspen_conn_id)


def ledger_url(s: Settings) -> str:
    """The ``canvas_aspen_ledger`` connection (extra ``sqlalchemy_url``, or a postgres /
    sqlite connection), else a SQLite file under the Airflow home."""
    from airflow.sdk import BaseHook
    from airflow.sdk.exceptions import AirflowNotFoundException

    from canvas_aspen.ledger import default_sqlite_url

    try:
        conn = BaseHook.get_connection(s.ledger_conn_id)
    except AirflowNotFoundException:
        return default_sqlite_url(s.airflow_home)
    extra = conn.extra_dejson
    if extra.get("sqlalchemy_url"):
        return extra["sqlalchemy_url"]
    scheme = _SQLALCHEMY_SCHEMES.get(conn.conn_type or "")
    if scheme is None:
        raise ValueError(f"connection {s.ledger_conn_id!r}: unsupported type {conn.conn_type!r} for the ledger")
    uri = conn.get_uri()
    return scheme + uri[uri.index("://"):]


@lru_cache(maxsize=4)
def _ledger(url: str):
    from canvas_aspen.ledger import Ledger

    ledger = Ledger(url)
    ledger.migrate()
    return ledger


def ledger(s: Settings):
    return _ledger(ledger_url(s))


def lease(s: Settings):
    """How long a run may hold its courses against a concurrent run (course leases)."""
    from datetime import timedelta

    return timedelta(minutes=s.lease_minutes)


def run_date(ctx: Any, s: Settings):
    """The run's date in the district's calendar (R19's "today"): when the run was due
    (``run_after``: 22:00 New York for the nightly run, the trigger time for a manual one)."""
    from datetime import datetime, timezone
    from zoneinfo import ZoneInfo

    dag_run = ctx.get("dag_run")
    when = getattr(dag_run, "run_after", None) or ctx.get("logical_date") or datetime.now(timezone.utc)
    return when.astimezone(ZoneInfo(s.timezone)).date()


def run_dir(s: Settings, run_id: str):
    from airflow.sdk import ObjectStoragePath

    from canvas_aspen.ids import run_folder_name

    return ObjectStoragePath(s.stage_root) / run_folder_name(run_id)


def mappings(params: dict[str, Any]) -> dict[str, dict[str, str]]:
    """Per-class category mapping overrides: the trigger form's object, over the file's."""
    from canvas_aspen.match import load_mappings

    merged = load_mappings(Path(params["mapping_file"])) if params.get("mapping_file") else {}
    for class_id, groups in (params.get("category_mappings") or {}).items():
        merged.setdefault(str(class_id), {}).update({str(k): str(v) for k, v in groups.items()})
    return merged


def params_for_report(params: dict[str, Any]) -> dict[str, Any]:
    return json.loads(json.dumps(dict(params), default=str))
