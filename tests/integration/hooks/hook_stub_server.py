"""A tiny scripted HTTP server on 127.0.0.1 for the hooks' own tests.

Real sockets, real ``requests``: each request goes to ``handler(req)`` which returns
``(status, headers, body)`` or the string ``"drop"`` (close the connection without a byte)
or ``("sleep", seconds, answer)`` to answer late. Every request is recorded, and the
highest number of requests in flight at once is kept.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

CANVAS_TOKEN = "canvas-test-token-7f3a9c1e5b"
ASPEN_CLIENT_ID = "aspen-client-id"
ASPEN_SECRET = "aspen-test-secret-0d4e8b2f6a"


@dataclass
class Req:
    method: str
    path: str
    query: list[tuple[str, str]]
    headers: dict[str, str]
    body: bytes
    raw_path: str

    def q(self, name: str) -> str | None:
        return next((v for k, v in self.query if k == name), None)

    def json(self) -> Any:
        return json.loads(self.body)


Answer = Any
Handler = Callable[[Req], Answer]


def js(status: int, data: Any, headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    return status, {"Content-Type": "application/json", **(headers or {})}, json.dumps(data).encode()


def text(status: int, body: str, headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    return status, {"Content-Type": "text/plain", **(headers or {})}, body.encode()


@dataclass
class StubServer:
    handler: Handler
    requests: list[Req] = field(default_factory=list)
    max_in_flight: int = 0
    _in_flight: int = 0

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        stub = self

        class _H(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:  # quiet
                pass

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                parts = urlsplit(self.path)
                req = Req(
                    method=self.command,
                    path=parts.path,
                    query=parse_qsl(parts.query, keep_blank_values=True),
                    headers={k: v for k, v in self.headers.items()},
                    body=body,
                    raw_path=self.path,
                )
                with stub._lock:
                    stub.requests.append(req)
                    stub._in_flight += 1
                    stub.max_in_flight = max(stub.max_in_flight, stub._in_flight)
                try:
                    answer = stub.handler(req)
                    if isinstance(answer, tuple) and answer and answer[0] == "sleep":
                        time.sleep(answer[1])
                        answer = answer[2]
                    if answer == "drop":
                        self.close_connection = True
                        try:
                            self.connection.shutdown(socket.SHUT_RDWR)
                        except OSError:
                            pass
                        return
                    status, headers, payload = answer
                    self.send_response(status)
                    for k, v in headers.items():
                        self.send_header(k, v)
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                finally:
                    with stub._lock:
                        stub._in_flight -= 1

            do_GET = do_POST = do_PUT = do_DELETE = _handle

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _H)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def __enter__(self) -> StubServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._server.shutdown()
        self._server.server_close()

    def paths(self) -> list[str]:
        return [r.path for r in self.requests]


# ==================== scripted answers shared by the hook tests


def scripted(*answers):
    """A handler answering the given answers in order, then repeating the last one."""
    queue = list(answers)
    lock = threading.Lock()

    def handler(req: Req):
        with lock:
            return queue.pop(0) if len(queue) > 1 else queue[0]

    return handler


def canvas_pages(total: int, per_page: int, *, path: str):
    def handler(req: Req):
        assert req.headers.get("Authorization") == f"Bearer {CANVAS_TOKEN}"
        page = int(req.q("page") or 1)
        size = int(req.q("per_page") or per_page)
        items = [{"id": i} for i in range((page - 1) * size, min(total, page * size))]
        last = max(1, -(-total // size))
        base = f"http://{req.headers['Host']}{path}"
        links = [
            f'<{base}?page={page}&per_page={size}>; rel="current"',
            f'<{base}?page=1&per_page={size}>; rel="first"',
        ]
        if page < last:
            links.insert(0, f'<{base}?page={page + 1}&per_page={size}>; rel="next"')
        return js(200, items, {"Link": ", ".join(links), "X-Rate-Limit-Remaining": "700.0"})

    return handler


class AspenStub:
    """Token endpoint + OneRoster collections with limit/offset, tokens that expire on demand."""

    def __init__(self, *, expires_in: int = 3600, items: int = 0, error_style: str = "json"):
        self.expires_in = expires_in
        self.items = [{"sourcedId": f"li-{i}", "title": f"t{i}"} for i in range(items)]
        self.valid: set[str] = set()
        self.issued = 0
        self.error_style = error_style
        self.put_bodies: list[tuple[str, dict]] = []
        self.lock = threading.Lock()

    def revoke_all(self) -> None:
        with self.lock:
            self.valid.clear()

    def __call__(self, req: Req):
        if req.path == "/oauth/rest/v2.0/auth":
            form = dict(parse_qsl(req.body.decode()))
            if form != {
                "grant_type": "client_credentials",
                "client_id": ASPEN_CLIENT_ID,
                "client_secret": ASPEN_SECRET,
            }:
                return js(401, {"error": "invalid_client"})
            with self.lock:
                self.issued += 1
                token = f"access-token-{self.issued:04d}-zz"
                self.valid.add(token)
            return js(200, {"access_token": token, "token_type": "Bearer", "expires_in": self.expires_in})
        token = (req.headers.get("Authorization") or "").removeprefix("Bearer ")
        if token not in self.valid:
            return text(401, "Unauthorized")
        api = "/ims/oneroster/v1p1"
        path = req.path.removeprefix(api)
        limit, offset = int(req.q("limit") or 100), int(req.q("offset") or 0)
        if req.method == "GET" and path == "/classes/c%201/lineItems":
            return js(200, {"lineItems": self.items[offset : offset + limit]})
        if req.method == "GET" and path == "/gradingPeriods":
            return js(200, {"gradingPeriods": [{"sourcedId": "gp1"}][offset : offset + limit]})
        if req.method == "GET" and path == "/categories":
            return js(200, {"categories": [{"sourcedId": "cat1", "filter": req.q("filter")}]})
        if req.method == "PUT" and path.startswith("/lineItems/"):
            body = req.json()
            if body["lineItem"].get("category", {}).get("sourcedId") == "missing":
                if self.error_style == "json":
                    return js(
                        400,
                        {
                            "imsx_codeMajor": "failure",
                            "imsx_severity": "error",
                            "imsx_description": "Grading Category Not Found",
                        },
                    )
                return text(400, "Grading Category Not Found")
            self.put_bodies.append((path, body))
            return js(201, body)
        if req.method == "PUT" and path.startswith("/results/"):
            self.put_bodies.append((path, req.json()))
            return 204, {}, b""
        if req.method == "DELETE" and path.startswith("/lineItems/"):
            return (204, {}, b"") if path.endswith("/li-1") else text(404, "Not Found")
        return text(404, f"no route {req.method} {path}")
