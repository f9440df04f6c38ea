"""Fault injection and request statistics, as two small ASGI middlewares shared by both servers.

``StatsMiddleware`` (outermost) counts every API request per endpoint: status codes, latency,
and the highest number of requests in flight at once. ``FaultMiddleware`` (innermost) adds
latency and, with a seeded RNG, answers some requests with 5xx, 429 + ``Retry-After``, or
closes the connection without answering. Requests under ``/_sandbox/`` (the admin API) are
never faulted nor counted, and are only served to loopback clients.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import math
import random
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

ADMIN_PREFIX = "/_sandbox"
LOOPBACK = {"127.0.0.1", "::1", "localhost"}

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict]]
Send = Callable[[dict], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]
# (status, retry_after or None) -> (headers, body) for a fault answered by the server itself
ErrorBody = Callable[[int], tuple[str, bytes]]


@dataclass
class Faults:
    """What can go wrong on one server. All off by default; every rate is a probability per request."""

    latency_ms: float = 0.0  # added to every API request (asyncio.sleep: the loop keeps serving)
    jitter_ms: float = 0.0  # + uniform(0, jitter_ms)
    spike_rate: float = 0.0  # probability of a latency spike ...
    spike_ms: float = 0.0  # ... of this many extra milliseconds
    error_rate: float = 0.0  # answer with one of error_statuses
    error_statuses: list[int] = field(default_factory=lambda: [500, 502, 503])
    rate_429: float = 0.0  # answer 429 with Retry-After
    retry_after_s: int = 1
    drop_rate: float = 0.0  # close the connection without any response
    max_concurrency: int | None = None  # requests arriving above this many in flight are refused (429)
    fail_next: list[int | str] = field(default_factory=list)  # scripted: next matching requests get these
    methods: list[str] | None = None  # error/429/drop/fail_next only hit these methods (None: all)
    path_contains: str | None = None  # ... and only paths containing this text (None: all)
    seed: int = 0
    # Aspen only: business-level faults.
    reject_result_ids: list[str] = field(default_factory=list)  # PUT of these results -> 422
    lost_write_rate: float = 0.0  # PUT answered 2xx but not stored (what verify, R18, must catch)
    expire_tokens_every: int | None = None  # every N-th API request first expires all tokens (mid-run expiry)

    @classmethod
    def from_dict(cls, values: dict[str, Any] | None, base: Faults | None = None) -> Faults:
        faults = dataclasses.replace(base) if base else cls()
        known = {f.name for f in dataclasses.fields(cls)}
        for key, value in (values or {}).items():
            if key not in known:
                raise ValueError(f"unknown fault {key!r}; known: {sorted(known)}")
            setattr(faults, key, value)
        faults.validate()
        return faults

    def validate(self) -> None:
        for name in ("spike_rate", "error_rate", "rate_429", "drop_rate", "lost_write_rate"):
            value = getattr(self, name)
            if not 0.0 <= float(value) <= 1.0:
                raise ValueError(f"{name} must be within [0, 1]")
        if self.error_rate + self.rate_429 + self.drop_rate > 1.0:
            raise ValueError("error_rate + rate_429 + drop_rate must not exceed 1")
        if self.latency_ms < 0 or self.jitter_ms < 0 or self.spike_ms < 0 or self.retry_after_s < 0:
            raise ValueError("latencies and retry_after_s must be >= 0")
        if self.latency_ms + self.jitter_ms + self.spike_ms > 60_000:
            raise ValueError("faults are bounded: at most 60 s of added latency")
        for item in self.fail_next:
            if item != "drop" and not (isinstance(item, int) and 400 <= item <= 599):
                raise ValueError("fail_next items are HTTP statuses 400-599 or 'drop'")
        for status in self.error_statuses:
            if not (isinstance(status, int) and 400 <= status <= 599):
                raise ValueError("error_statuses must be HTTP statuses 400-599")
        if self.max_concurrency is not None and self.max_concurrency < 1:
            raise ValueError("max_concurrency must be >= 1")
        if self.expire_tokens_every is not None and self.expire_tokens_every < 1:
            raise ValueError("expire_tokens_every must be >= 1")

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


class FaultState:
    """The current ``Faults`` of one server plus its seeded RNG; replaced at run time by the admin API."""

    def __init__(self, faults: Faults) -> None:
        self.initial = dataclasses.replace(faults)
        self.set(faults)

    def set(self, faults: Faults) -> None:
        self.faults = faults
        self.fail_next = list(faults.fail_next)
        self.rng = random.Random(faults.seed)
        self.api_requests = 0

    def tokens_expire_now(self) -> bool:
        """Counts an authenticated API request; True on every ``expire_tokens_every``-th one."""
        self.api_requests += 1
        every = self.faults.expire_tokens_every
        return every is not None and self.api_requests % every == 0

    def reset(self) -> None:
        self.set(dataclasses.replace(self.initial))

    def applies_to(self, method: str, path: str) -> bool:
        f = self.faults
        if f.methods is not None and method.upper() not in {m.upper() for m in f.methods}:
            return False
        return f.path_contains is None or f.path_contains in path

    def delay_s(self) -> float:
        f = self.faults
        ms = f.latency_ms
        if f.jitter_ms:
            ms += self.rng.uniform(0.0, f.jitter_ms)
        if f.spike_rate and self.rng.random() < f.spike_rate:
            ms += f.spike_ms
        return ms / 1000.0

    def decide(self, method: str, path: str) -> int | str | None:
        """None (serve normally), an HTTP status to answer with, or "drop"."""
        if not self.applies_to(method, path):
            return None
        if self.fail_next:
            return self.fail_next.pop(0)
        f = self.faults
        if not (f.drop_rate or f.rate_429 or f.error_rate):
            return None
        r = self.rng.random()
        if r < f.drop_rate:
            return "drop"
        if r < f.drop_rate + f.rate_429:
            return 429
        if r < f.drop_rate + f.rate_429 + f.error_rate:
            return self.rng.choice(f.error_statuses)
        return None

    def lose_write(self) -> bool:
        rate = self.faults.lost_write_rate
        return bool(rate) and self.rng.random() < rate


@dataclass
class EndpointStats:
    count: int = 0
    statuses: Counter = field(default_factory=Counter)
    latency_s_total: float = 0.0
    latency_s_max: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "count": self.count,
            "statuses": {str(k): v for k, v in sorted(self.statuses.items(), key=lambda kv: str(kv[0]))},
            "latency_s_total": round(self.latency_s_total, 6),
            "latency_s_max": round(self.latency_s_max, 6),
        }


class Stats:
    """Per-endpoint counters of one server. ``in_flight`` is read by the concurrency cap."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.requests = 0
        self.in_flight = 0
        self.max_in_flight = 0
        self.dropped = 0
        self.statuses: Counter = Counter()
        self.endpoints: dict[str, EndpointStats] = {}
        self.since = time.time()

    def record(self, endpoint: str, status: int | str, elapsed: float) -> None:
        self.statuses[status] += 1
        ep = self.endpoints.get(endpoint)
        if ep is None:
            ep = self.endpoints[endpoint] = EndpointStats()
        ep.count += 1
        ep.statuses[status] += 1
        ep.latency_s_total += elapsed
        ep.latency_s_max = max(ep.latency_s_max, elapsed)

    def as_dict(self) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "in_flight": self.in_flight,
            "max_in_flight": self.max_in_flight,
            "dropped": self.dropped,
            "statuses": {str(k): v for k, v in sorted(self.statuses.items(), key=lambda kv: str(kv[0]))},
            "latency_s_total": round(sum(e.latency_s_total for e in self.endpoints.values()), 6),
            "endpoints": {name: ep.as_dict() for name, ep in sorted(self.endpoints.items())},
            "since": self.since,
        }


def is_admin(scope: Scope) -> bool:
    return scope["path"].startswith(ADMIN_PREFIX)


async def send_simple(send: Send, status: int, body: bytes, content_type: str, headers=()) -> None:
    raw = [(b"content-type", content_type.encode()), (b"content-length", str(len(body)).encode())]
    raw += [(k.lower().encode(), str(v).encode()) for k, v in headers]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})


async def drop_connection(send: Send) -> None:
    """Close the TCP connection without writing a byte of response."""
    cycle = getattr(send, "__self__", None)  # uvicorn's RequestResponseCycle
    transport = getattr(cycle, "transport", None)
    if transport is None:  # not under uvicorn: the nearest thing is an error
        raise ConnectionAbortedError("sandbox: dropped connection")
    transport.close()
    if hasattr(cycle, "disconnected"):
        cycle.disconnected = True  # so uvicorn does not try to answer 500 on a closed socket
    await asyncio.sleep(0)


def endpoint_name(scope: Scope, resolve: Callable[[Scope], str | None]) -> str:
    route = scope.get("route")
    template = getattr(route, "path", None) or resolve(scope) or "unmatched"
    return f"{scope['method']} {template}"


class StatsMiddleware:
    """Outermost: counts API requests; admin requests pass straight through, loopback only."""

    def __init__(self, app: ASGIApp, stats: Stats, resolve: Callable[[Scope], str | None]) -> None:
        self.app, self.stats, self.resolve = app, stats, resolve

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if is_admin(scope):
            client = (scope.get("client") or ("",))[0]
            if client not in LOOPBACK:
                await send_simple(send, 403, b'{"error":"admin API is loopback only"}', "application/json")
                return
            await self.app(scope, receive, send)
            return
        stats = self.stats
        stats.requests += 1
        stats.in_flight += 1
        stats.max_in_flight = max(stats.max_in_flight, stats.in_flight)
        status_box: list[int | str] = ["dropped"]

        async def counting_send(message: dict) -> None:
            if message["type"] == "http.response.start":
                status_box[0] = message["status"]
            await send(message)

        started = time.perf_counter()
        try:
            await self.app(scope, receive, wrap_send(counting_send, send))
        finally:
            stats.in_flight -= 1
            if status_box[0] == "dropped":
                stats.dropped += 1
            stats.record(endpoint_name(scope, self.resolve), status_box[0], time.perf_counter() - started)


class _BoundSend:
    """A send wrapper that still exposes uvicorn's cycle as ``__self__`` (for ``drop_connection``)."""

    __slots__ = ("_fn", "__self__")

    def __init__(self, fn: Send, original: Send) -> None:
        self._fn = fn
        self.__self__ = getattr(original, "__self__", None)

    async def __call__(self, message: dict) -> None:
        await self._fn(message)


def wrap_send(fn: Send, original: Send) -> Send:
    return _BoundSend(fn, original)


class FaultMiddleware:
    """Innermost: latency, then (maybe) a refusal, an injected error, or a dropped connection."""

    def __init__(
        self,
        app: ASGIApp,
        state: FaultState,
        stats: Stats,
        error_body: ErrorBody,
        busy_status: Callable[[], int] = lambda: 429,
    ) -> None:
        self.app, self.state, self.stats = app, state, stats
        self.error_body, self.busy_status = error_body, busy_status

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or is_admin(scope):
            await self.app(scope, receive, send)
            return
        state = self.state
        cap = state.faults.max_concurrency
        if cap is not None and self.stats.in_flight > cap:
            await self._answer(send, self.busy_status(), retry_after=state.faults.retry_after_s)
            return
        delay = state.delay_s()
        if delay > 0:
            scope.setdefault("state", {})["sandbox_latency_s"] = delay
            await asyncio.sleep(delay)
        decision = state.decide(scope["method"], scope["path"])
        if decision is None:
            await self.app(scope, receive, send)
        elif decision == "drop":
            await drop_connection(send)
        else:
            retry = state.faults.retry_after_s if decision == 429 else None
            await self._answer(send, int(decision), retry_after=retry)

    async def _answer(self, send: Send, status: int, retry_after: int | None = None) -> None:
        content_type, body = self.error_body(status)
        headers = [("Retry-After", retry_after)] if retry_after is not None else []
        await send_simple(send, status, body, content_type, headers)


def proxy_error_body(status: int) -> tuple[str, bytes] | None:
    """What a load balancer in front of the app answers: HTML, not the API's JSON."""
    titles = {502: "Bad Gateway", 503: "Service Unavailable", 504: "Gateway Timeout"}
    if status not in titles:
        return None
    html = (
        f"<html><head><title>{status} {titles[status]}</title></head>"
        f"<body><h1>{status} {titles[status]}</h1></body></html>"
    )
    return "text/html", html.encode()


def json_bytes(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()


_encode_str = json.encoder.encode_basestring  # the C encoder for one string


def js(value: Any) -> str:
    """One JSON scalar as text, for the hand-rolled renderers of the high-volume endpoints."""
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, str):
        return _encode_str(value)
    if isinstance(value, int | float):
        return json.dumps(value) if isinstance(value, float) and not math.isfinite(value) else repr(value)
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)
