"""What the benchmark measures inside the process that runs the stages.

* :class:`HttpClock` – the time during which at least one HTTP request of this process is
  in flight (the union of the requests' intervals, measured around
  ``requests.Session.request``, i.e. send + wait + read of the body). Wall time minus this
  is the time the run spends *outside* HTTP waits: pandas, Great Expectations, the ledger,
  stage files, JSON decoding of pages when nothing else is in flight, thread hand-offs.
* :class:`RssSampler` – resident set size sampled every few milliseconds, max per stage, and
  the process's peak (``ru_maxrss``).
"""

from __future__ import annotations

import os
import resource
import threading
import time
from contextlib import contextmanager
from typing import Any

_PAGE = os.sysconf("SC_PAGE_SIZE")


class HttpClock:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._in_flight = 0
        self._since = 0.0
        self._busy = 0.0
        self.requests = 0

    def enter(self) -> None:
        with self._lock:
            if self._in_flight == 0:
                self._since = time.perf_counter()
            self._in_flight += 1
            self.requests += 1

    def exit(self) -> None:
        with self._lock:
            self._in_flight -= 1
            if self._in_flight == 0:
                self._busy += time.perf_counter() - self._since

    def busy(self) -> float:
        """Seconds with ≥ 1 request in flight so far."""
        with self._lock:
            extra = time.perf_counter() - self._since if self._in_flight else 0.0
            return self._busy + extra

    def install(self) -> None:
        """Wrap ``requests.Session.request`` (every hook's HTTP goes through it)."""
        import requests

        original = requests.Session.request
        clock = self

        def timed(session, *args: Any, **kwargs: Any):
            clock.enter()
            try:
                return original(session, *args, **kwargs)
            finally:
                clock.exit()

        requests.Session.request = timed  # type: ignore[method-assign]


def rss_bytes() -> int:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * _PAGE


def peak_rss_bytes() -> int:
    """The process's peak RSS so far (Linux reports ``ru_maxrss`` in KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


class RssSampler:
    """Samples RSS every ``interval`` seconds on a daemon thread; ``window()`` gives the max
    seen since the window opened."""

    def __init__(self, interval: float = 0.02) -> None:
        self.interval = interval
        self._max = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rss-sampler", daemon=True)

    def start(self) -> RssSampler:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=1)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self._max = max(self._max, rss_bytes())

    def open_window(self) -> None:
        self._max = rss_bytes()

    def window_max(self) -> int:
        return max(self._max, rss_bytes())


class StageTimer:
    """Wall time, HTTP-busy time and max RSS per stage (summed over the shards of a stage)."""

    def __init__(self, clock: HttpClock, sampler: RssSampler) -> None:
        self.clock, self.sampler = clock, sampler
        self.stages: dict[str, dict[str, float]] = {}

    @contextmanager
    def stage(self, name: str):
        self.sampler.open_window()
        t0, h0, r0 = time.perf_counter(), self.clock.busy(), self.clock.requests
        try:
            yield
        finally:
            wall = time.perf_counter() - t0
            http = self.clock.busy() - h0
            s = self.stages.setdefault(name, {"wall_s": 0.0, "http_s": 0.0, "requests": 0, "rss_max_mb": 0.0})
            s["wall_s"] += wall
            s["http_s"] += http
            s["requests"] += self.clock.requests - r0
            s["rss_max_mb"] = max(s["rss_max_mb"], self.sampler.window_max() / 2**20)

    def summary(self) -> dict[str, dict[str, float]]:
        out = {}
        for name, s in self.stages.items():
            out[name] = {"wall_s": round(s["wall_s"], 3), "http_s": round(s["http_s"], 3),
                         "outside_http_s": round(s["wall_s"] - s["http_s"], 3), "requests": int(s["requests"]),
                         "rss_max_mb": round(s["rss_max_mb"], 1)}
        return out
