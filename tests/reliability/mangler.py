"""A small HTTP proxy on 127.0.0.1 in front of a sandbox server that spoils chosen answers:
non-JSON, truncated JSON, JSON of the wrong shape, a ``Link`` that loops, a PUT answered
200 without reaching the server. Everything else passes through unchanged (``Link`` URLs
rewritten to the proxy, as a real reverse proxy would).

    with Mangler(sb.canvas_url, [Rule("/courses/101/students/submissions", "non_json")]) as m:
        m.url  # use it as the Connection's host
"""

from __future__ import annotations

import http.client
import json
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

MAINTENANCE = b"<html><body><h1>Scheduled maintenance</h1><p>Back soon.</p></body></html>"
HOP = {
    "connection",
    "keep-alive",
    "transfer-encoding",
    "content-length",
    "content-encoding",
    "date",
    "server",
}


@dataclass
class Rule:
    path: str | tuple[str, ...]  # the request path (and query) contains this (all of these)
    mode: str  # non_json | truncated | json | transform | link_loop | swallow
    method: str = "GET"
    body: Any = None  # mode json: the answer; mode transform: a function of the parsed answer
    skip: int = 0  # let this many matching requests through first
    times: int | None = None  # spoil at most this many (None: all)
    seen: int = field(default=0, init=False)
    spoiled: int = field(default=0, init=False)

    def take(self, method: str, path: str) -> bool:
        wanted = (self.path,) if isinstance(self.path, str) else self.path
        if method != self.method or not all(w in path for w in wanted):
            return False
        self.seen += 1
        if self.seen <= self.skip or (self.times is not None and self.spoiled >= self.times):
            return False
        self.spoiled += 1
        return True


class Mangler:
    def __init__(self, target: str, rules: list[Rule]):
        self.target = target.rstrip("/")
        parts = urlsplit(self.target)
        self.host, self.port = parts.hostname, parts.port
        self.rules = rules
        self.lock = threading.Lock()
        handler = self._handler()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, name="mangler", daemon=True)

    def __enter__(self) -> Mangler:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=10)

    def spoiled(self) -> dict[str, int]:
        return {f"{r.method} {r.path} {r.mode}": r.spoiled for r in self.rules}

    def _rule(self, method: str, path: str) -> Rule | None:
        with self.lock:
            return next((r for r in self.rules if r.take(method, path)), None)

    def _handler(self):
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:  # quiet
                pass

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                data = self.rfile.read(length) if length else None
                rule = proxy._rule(self.command, self.path)
                if rule is not None and rule.mode in ("non_json", "swallow"):
                    self._send(200, {"Content-Type": "text/html"}, MAINTENANCE)
                    return
                status, headers, body = self._forward(data)
                if rule is not None:
                    status, headers, body = self._spoil(rule, status, headers, body)
                self._send(status, headers, body)

            def _forward(self, data: bytes | None) -> tuple[int, dict[str, str], bytes]:
                conn = http.client.HTTPConnection(proxy.host, proxy.port, timeout=60)
                try:
                    headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP | {"host"}}
                    conn.request(self.command, self.path, body=data, headers=headers)
                    resp = conn.getresponse()
                    body = resp.read()
                    out = {k: v for k, v in resp.getheaders() if k.lower() not in HOP}
                    if "Link" in out:
                        out["Link"] = out["Link"].replace(proxy.target, proxy.url)
                    return resp.status, out, body
                finally:
                    conn.close()

            def _spoil(self, rule: Rule, status: int, headers: dict, body: bytes):
                if rule.mode == "truncated":
                    return status, headers, body[: max(1, len(body) // 2)]
                if rule.mode == "json":
                    return (
                        200,
                        {**headers, "Content-Type": "application/json"},
                        json.dumps(rule.body).encode(),
                    )
                if rule.mode == "transform":
                    fn: Callable[[Any], Any] = rule.body
                    return status, headers, json.dumps(fn(json.loads(body))).encode()
                if rule.mode == "link_loop":
                    return status, {**headers, "Link": f'<{proxy.url}{self.path}>; rel="next"'}, body
                raise ValueError(rule.mode)

            def _send(self, status: int, headers: dict[str, str], body: bytes) -> None:
                self.send_response(status)
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Connection", "close")
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_PUT = do_POST = do_DELETE = do_PATCH = _handle

        return Handler
