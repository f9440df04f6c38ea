"""``python -m sandbox serve`` and ``sandbox.control.Sandbox``: start, URLs file, stop, Airflow
connections."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from urllib.parse import urlparse

import httpx
import pytest

from sandbox.control import Sandbox, SandboxError


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie child of ours counts as gone
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().split()[2] != "Z"
    except FileNotFoundError:
        return False


def test_start_exposes_urls_and_credentials_and_stops_on_exit(demo_sandbox):
    sb = demo_sandbox
    for url in (sb.canvas_url, sb.aspen_url):
        assert urlparse(url).hostname == "127.0.0.1"
    assert sb.canvas_url != sb.aspen_url
    assert (sb.canvas_token, sb.aspen_client_id, sb.aspen_client_secret, sb.canvas_account_id) == (
        "sandbox-canvas-token",
        "sandbox-aspen-client",
        "sandbox-aspen-secret",
        "1",
    )
    assert sb.pid == sb.process.pid


def test_airflow_connection_env(demo_sandbox):
    env = demo_sandbox.airflow_conn_env()
    canvas = json.loads(env["AIRFLOW_CONN_CANVAS_DEFAULT"])
    aspen = json.loads(env["AIRFLOW_CONN_ASPEN_DEFAULT"])
    assert canvas == {
        "conn_type": "canvas",
        "host": demo_sandbox.canvas_url,
        "password": "sandbox-canvas-token",
        "extra": {"account_id": "1"},
    }
    assert aspen == {
        "conn_type": "aspen",
        "host": demo_sandbox.aspen_url,
        "login": "sandbox-aspen-client",
        "password": "sandbox-aspen-secret",
        "extra": {"token_path": "/oauth/rest/v2.0/auth", "api_path": "/ims/oneroster/v1p1"},
    }


def test_the_server_is_stopped_even_when_the_block_fails():
    with pytest.raises(RuntimeError, match="boom"), Sandbox.start("demo") as sb:
        pid = sb.pid
        raise RuntimeError("boom")
    assert not _alive(pid)
    with pytest.raises(httpx.TransportError):
        httpx.get(f"{sb.canvas_url}/_sandbox/health", trust_env=False, timeout=2)
    sb.stop()  # idempotent


def test_a_scenario_given_as_a_dict_on_fixed_ports(sandbox_factory, repo_root):
    data = json.loads((repo_root / "sandbox/scenarios/demo.json").read_text())
    data["canvas"]["token"] = "another-token"
    with socket.socket() as s1, socket.socket() as s2:
        s1.bind(("127.0.0.1", 0))
        s2.bind(("127.0.0.1", 0))
        ports = s1.getsockname()[1], s2.getsockname()[1]
    sb = sandbox_factory(data, canvas_port=ports[0], aspen_port=ports[1])
    assert (urlparse(sb.canvas_url).port, urlparse(sb.aspen_url).port) == ports
    assert sb.canvas_token == "another-token"
    r = httpx.get(
        f"{sb.canvas_url}/api/v1/courses/101",
        headers={"Authorization": "Bearer another-token"},
        trust_env=False,
    )
    assert r.status_code == 200


def test_a_broken_scenario_fails_fast_with_the_reason(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text(
        json.dumps(
            {
                "canvas": {"account_id": 1, "token": "t", "courses": [{"id": 1}]},
                "aspen": {"client_id": "a", "client_secret": "b", "classes": [], "grading_periods": []},
            }
        )
    )
    with pytest.raises(SandboxError, match="name is required"):
        Sandbox.start(str(bad))
    with pytest.raises(SandboxError, match="no scenario"):
        Sandbox.start("no-such-scenario")


def test_serve_cli_writes_the_urls_file_and_stops_on_sigterm(tmp_path, repo_root):
    urls = tmp_path / "urls.json"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "sandbox",
            "serve",
            "--scenario",
            "demo",
            "--urls-file",
            str(urls),
            "--aspen-error-style",
            "text",
            "--canvas-latency-ms",
            "5",
        ],
        cwd=repo_root,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 120
        while not urls.exists():
            assert proc.poll() is None, proc.stdout.read()
            assert time.monotonic() < deadline
            time.sleep(0.05)
        info = json.loads(urls.read_text())
        assert set(info) >= {
            "canvas_url",
            "aspen_url",
            "canvas_token",
            "aspen_client_id",
            "aspen_client_secret",
            "canvas_account_id",
            "pid",
        }
        assert info["pid"] == proc.pid
        r = httpx.get(f"{info['aspen_url']}/_sandbox/settings", trust_env=False).json()
        assert r["aspen_error_style"] == "text"
        f = httpx.get(f"{info['canvas_url']}/_sandbox/faults", trust_env=False).json()
        assert f["latency_ms"] == 5
        attached = Sandbox.attach(urls)
        assert attached.canvas_url == info["canvas_url"] and attached.state(summary=True)["classes"] == 5
        attached.stop()  # not ours: the server keeps running
        assert httpx.get(f"{info['canvas_url']}/_sandbox/health", trust_env=False).status_code == 200
    finally:
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 0
    assert info["canvas_url"] in out and info["aspen_url"] in out
    assert not urls.exists()
