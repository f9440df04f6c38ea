"""Ledger fixtures: every ledger test runs on SQLite (a temporary file) and on PostgreSQL.

PostgreSQL is the one on 127.0.0.1:5432 (trust auth, user ``postgres``, database ``test``;
``CANVAS_ASPEN_TEST_PG_URL`` overrides it). The session creates a uniquely named database
and drops it at the end; each test gets a fresh schema in it. When the server cannot be
reached the PostgreSQL cases skip with the reason, unless ``CI_REQUIRE_SERVICES=1``, where
they fail.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa
from sqlalchemy.pool import NullPool

from canvas_aspen.ledger import Ledger

PG_URL = os.environ.get("CANVAS_ASPEN_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")
T0 = datetime(2026, 3, 1, 3, 0, tzinfo=UTC)


def _unreachable(reason: str) -> None:
    if os.environ.get("CI_REQUIRE_SERVICES") == "1":
        pytest.fail(f"{reason} (CI_REQUIRE_SERVICES=1: PostgreSQL is required)")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def pg_database() -> Iterator[sa.URL]:
    """A uniquely named PostgreSQL database for this session, dropped afterwards."""
    admin_url = sa.make_url(PG_URL)
    admin = sa.create_engine(
        admin_url, isolation_level="AUTOCOMMIT", poolclass=NullPool, connect_args={"connect_timeout": 3}
    )
    try:
        with admin.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
    except Exception as exc:  # any failure to connect means: no server to test against
        admin.dispose()
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        _unreachable(
            f"PostgreSQL not reachable at {admin_url.render_as_string()}: {type(exc).__name__}: {first_line}"
        )
    name = f"ledger_test_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    try:
        yield admin_url.set(database=name)
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


@pytest.fixture
def pg_schema_url(pg_database: sa.URL) -> Iterator[str]:
    """A fresh, empty schema of the session database, as the URL's search_path."""
    schema = f"t_{uuid.uuid4().hex[:12]}"
    engine = sa.create_engine(pg_database, isolation_level="AUTOCOMMIT", poolclass=NullPool)
    with engine.connect() as conn:
        conn.exec_driver_sql(f'CREATE SCHEMA "{schema}"')
    try:
        yield pg_database.update_query_dict({"options": f"-csearch_path={schema}"}).render_as_string(
            hide_password=False
        )
    finally:
        with engine.connect() as conn:
            conn.exec_driver_sql(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        engine.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def ledger_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An empty database: a SQLite file, or a fresh PostgreSQL schema."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'ledger.db'}"
    return request.getfixturevalue("pg_schema_url")


@pytest.fixture
def ledger(ledger_url: str) -> Iterator[Ledger]:
    """A migrated ledger on ``ledger_url``."""
    instance = Ledger(ledger_url)
    instance.migrate()
    yield instance
    instance.dispose()


@pytest.fixture
def results_frame() -> Callable[..., pd.DataFrame]:
    """Build a frame as ``record_posted_results`` takes it: ``n`` results of one line item
    spread over ``classes`` Aspen classes, with any column overridden by keyword."""

    def make(n: int = 3, *, classes: int = 1, assignment_id: int = 7, **overrides: object) -> pd.DataFrame:
        users = np.arange(1, n + 1)
        sections = users % classes
        frame = pd.DataFrame(
            {
                "result_id": [
                    f"canvas-a{assignment_id}-s{s}-u{u}" for s, u in zip(sections, users, strict=True)
                ],
                "line_item_id": [f"canvas-a{assignment_id}-s{s}" for s in sections],
                "aspen_class_id": [f"CLS-{s}" for s in sections],
                "canvas_course_id": 101,
                "assignment_id": assignment_id,
                "canvas_user_id": users,
                "student_sis_id": [f"S{u:06d}" for u in users],
                "score": (users % 10).astype(float),
                "score_status": "fully graded",
                "canvas_status": "graded",
            }
        )
        for column, value in overrides.items():
            frame[column] = value
        return frame

    return make
