"""Deployment settings, read from the environment (an ``.env`` file in docker compose).

Secrets never live here: they are Airflow Connections (``canvas_default``,
``aspen_default``, ``canvas_aspen_ledger``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path


def _airflow_home() -> Path:
    return Path(os.environ.get("AIRFLOW_HOME") or Path.home() / "airflow")


@dataclass(frozen=True)
class Settings:
    airflow_home: Path
    shard_count: int  # the most shards a run is split into
    courses_per_shard: int  # fewer courses than this per shard only when shard_count caps it
    stage_root: str  # an ObjectStoragePath URL: file:///… by default, s3://… on a cluster
    reports_dir: Path
    timezone: str
    canvas_conn_id: str
    aspen_conn_id: str
    ledger_conn_id: str
    lease_minutes: int
    terms: str = ""  # R19: Canvas term ids or sis_term_id:X, comma-separated; empty = the current terms

    @classmethod
    def from_env(cls) -> Settings:
        env = os.environ.get
        home = _airflow_home()
        return cls(
            airflow_home=home,
            shard_count=max(1, int(env("CANVAS_ASPEN_SHARDS", "8"))),
            courses_per_shard=max(1, int(env("CANVAS_ASPEN_COURSES_PER_SHARD", "10"))),
            stage_root=env("CANVAS_ASPEN_STAGE_ROOT") or f"file://{home / 'canvas_aspen' / 'stage'}",
            reports_dir=Path(env("CANVAS_ASPEN_REPORTS_DIR") or home / "canvas_aspen" / "reports"),
            timezone=env("CANVAS_ASPEN_TIMEZONE", "America/New_York"),
            canvas_conn_id=env("CANVAS_ASPEN_CANVAS_CONN_ID", "canvas_default"),
            aspen_conn_id=env("CANVAS_ASPEN_ASPEN_CONN_ID", "aspen_default"),
            ledger_conn_id=env("CANVAS_ASPEN_LEDGER_CONN_ID", "canvas_aspen_ledger"),
            lease_minutes=int(env("CANVAS_ASPEN_LEASE_MINUTES", "240")),
            terms=env("CANVAS_ASPEN_TERMS", "").strip(),
        )
