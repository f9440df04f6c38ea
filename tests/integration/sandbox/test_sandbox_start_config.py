"""Configuration given at start: custom Aspen paths, faults and settings, and reset() bringing them back."""

from __future__ import annotations

import json

import httpx
import pytest

from .sandbox_helpers import aspen_token, canvas_client


@pytest.fixture(scope="module")
def configured(request):
    from sandbox.control import Sandbox

    with Sandbox.start(
        "demo",
        aspen_error_style="text",
        canvas_faults={"fail_next": [503], "latency_ms": 50},
        aspen_token_path="/oauth/token",
        aspen_api_path="/api/oneroster/v1p1",
    ) as sb:
        yield sb


def test_custom_aspen_paths(configured):
    sb = configured
    assert sb.aspen_token_path == "/oauth/token"
    token = aspen_token(sb)
    with httpx.Client(
        base_url=sb.aspen_url, headers={"Authorization": f"Bearer {token}"}, trust_env=False
    ) as c:
        assert c.get("/api/oneroster/v1p1/gradingPeriods").status_code == 200
        assert c.get("/ims/oneroster/v1p1/gradingPeriods").status_code == 404
        missing = c.get("/api/oneroster/v1p1/classes/NOPE/students")
    assert missing.headers["content-type"].startswith("text/plain") and missing.text.startswith(
        "Class Not Found"
    )
    extra = json.loads(sb.airflow_conn_env()["AIRFLOW_CONN_ASPEN_DEFAULT"])["extra"]
    assert extra == {"token_path": "/oauth/token", "api_path": "/api/oneroster/v1p1"}


def test_start_faults_and_reset_restores_them(configured):
    sb = configured
    with canvas_client(sb) as c:
        assert [c.get("/api/v1/courses/101").status_code for _ in range(2)] == [503, 200]
    sb.set_faults("canvas")
    sb.set_settings(aspen_error_style="json")
    assert sb.faults("canvas")["latency_ms"] == 0
    sb.reset()
    assert sb.faults("canvas")["latency_ms"] == 50 and sb.faults("canvas")["fail_next"] == [503]
    assert sb.settings()["aspen_error_style"] == "text"
    assert sb.settings()["aspen_api_path"] == "/api/oneroster/v1p1"
