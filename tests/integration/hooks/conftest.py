"""Fixtures of the hook tests: Connections from env vars, fast retry settings, recorded sleeps."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from .hook_stub_server import ASPEN_CLIENT_ID, ASPEN_SECRET, CANVAS_TOKEN

# retries fast enough for a unit test, still exercising every branch
FAST = {"backoff_base": 0.01, "backoff_max": 0.05, "timeout": 5, "max_attempts": 4}


def conn_env(
    conn_type: str, host: str, *, login: str | None = None, password: str | None = None, **extra: Any
) -> str:
    conn: dict[str, Any] = {"conn_type": conn_type, "host": host, "extra": extra}
    if login is not None:
        conn["login"] = login
    if password is not None:
        conn["password"] = password
    return json.dumps(conn)


@pytest.fixture
def set_conn(monkeypatch: pytest.MonkeyPatch) -> Callable[..., None]:
    """``set_conn("canvas_default", conn_type, host, password=…, **extra)`` as ``AIRFLOW_CONN_*``."""

    def _set(conn_id: str, conn_type: str, host: str, **kwargs: Any) -> None:
        monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", conn_env(conn_type, host, **kwargs))

    return _set


class SleepRecorder:
    """Replaces a hook's sleep: records the asked seconds, sleeps at most ``cap`` for real."""

    def __init__(self, cap: float = 0.0) -> None:
        self.calls: list[float] = []
        self.cap = cap

    def __call__(self, seconds: float) -> None:
        import time

        self.calls.append(seconds)
        if self.cap:
            time.sleep(min(seconds, self.cap))


@pytest.fixture
def canvas_hook(set_conn: Callable[..., None]) -> Callable[..., Any]:
    from canvas_aspen.hooks.canvas import CanvasHook

    def _make(url: str, *, token: str = CANVAS_TOKEN, record_sleep: bool = True, **extra: Any) -> CanvasHook:
        set_conn("canvas_test", "canvas", url, password=token, **{**FAST, **extra})
        hook = CanvasHook(canvas_conn_id="canvas_test")
        if record_sleep:
            hook._sleep = SleepRecorder()
        return hook

    return _make


@pytest.fixture
def aspen_hook(set_conn: Callable[..., None]) -> Callable[..., Any]:
    from canvas_aspen.hooks.aspen import AspenHook

    def _make(
        url: str,
        *,
        client_id: str = ASPEN_CLIENT_ID,
        secret: str = ASPEN_SECRET,
        record_sleep: bool = True,
        **extra: Any,
    ) -> AspenHook:
        set_conn("aspen_test", "aspen", url, login=client_id, password=secret, **{**FAST, **extra})
        hook = AspenHook(aspen_conn_id="aspen_test")
        if record_sleep:
            hook._sleep = SleepRecorder()
        return hook

    return _make
