"""The real-Airflow harness (``sandbox/airflow_stack.py``) refuses cleanly when its services are not
there: a clear ``StackUnavailable`` naming the service, and nothing left behind (no home, no process).
The harness running for real is covered by tests/e2e/test_celery_cluster.py (CeleryExecutor) and
tests/e2e/test_ui_browser.py (LocalExecutor)."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest

from sandbox.airflow_stack import AirflowStack, StackUnavailable, free_port


def _homes() -> set[Path]:
    return set(Path(tempfile.gettempdir()).glob("canvas-aspen-airflow-stack-*"))


def test_no_postgres_is_a_clear_unavailable_and_leaves_nothing(monkeypatch):
    port = free_port()  # nothing listens there
    monkeypatch.setenv("CANVAS_ASPEN_TEST_PG_URL", f"postgresql://postgres@127.0.0.1:{port}/test")
    before = _homes()
    with pytest.raises(
        StackUnavailable, match=rf"PostgreSQL not reachable at postgresql://postgres@127.0.0.1:{port}"
    ):
        AirflowStack.start(conn_env={})
    assert _homes() == before


def test_unknown_executor_is_refused_before_anything_starts():
    with pytest.raises(ValueError, match="LocalExecutor or CeleryExecutor"):
        AirflowStack.start(executor="SequentialExecutor")
