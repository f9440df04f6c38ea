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
        self.reset()

    def reset(self) -> None:
        """Forget everything so far (a forked task process starts its own count)."""
        self._lock = threading.Lock()
        self._in_flight = 0
        self._since = 0.0
        self._busy = 0.0
        self.requests = 0
        self.intervals: list[tuple[float, float]] = []  # (start, end) of each busy stretch

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
                now = time.perf_counter()
                self._busy += now - self._since
                self.intervals.append((self._since, now))

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


def union_seconds(intervals: list[tuple[float, float]]) -> float:
    """The length of the union of (start, end) intervals (``perf_counter`` is one clock for
    every process of the machine, so the intervals of several processes can be merged)."""
    total, end = 0.0, float("-inf")
    for a, b in sorted(intervals):
        if b <= end:
            continue
        total += b - max(a, end)
        end = b
    return total


def outside_by_stage(
    busy: list[tuple[float, float]], tasks: list[tuple[str, float, float]], start: float, end: float
) -> dict[str, float]:
    """Where the time outside HTTP waits went: each stretch of [start, end] with no request in
    flight, shared equally among the stages of the tasks running then ("(none)": no task ran,
    e.g. the worker forking or importing)."""
    merged: list[list[float]] = []  # the union of the busy intervals, disjoint and sorted
    for a, b in sorted(busy):
        if merged and a <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], b)
        else:
            merged.append([a, b])
    points = sorted(
        {start, end, *(t for iv in merged for t in iv), *(t for _, a, b in tasks for t in (a, b))}
    )
    out: dict[str, float] = {}
    i = 0
    for a, b in zip(points, points[1:], strict=False):
        if a < start or b > end or b <= a:
            continue
        while i < len(merged) and merged[i][1] <= a:
            i += 1
        if i < len(merged) and merged[i][0] <= a:  # a request was in flight
            continue
        running = [stage for stage, x, y in tasks if x <= a and b <= y] or ["(none)"]
        for stage in running:
            out[stage] = out.get(stage, 0.0) + (b - a) / len(running)
    return {k: round(v, 3) for k, v in sorted(out.items(), key=lambda kv: -kv[1])}


def pss_bytes(pid: int) -> int:
    """Proportional set size of a process: pages shared with others (a forked parent) count
    once over all of them, so the sum over a process tree is what the tree really holds."""
    try:
        with open(f"/proc/{pid}/smaps_rollup") as fh:
            for line in fh:
                if line.startswith("Pss:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


class _Sampler:
    """Calls ``sample()`` every ``interval`` seconds on a daemon thread, from ``start()`` to ``stop()``."""

    def __init__(self, interval: float, name: str) -> None:
        self.interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def start(self):
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.sample()

    def sample(self) -> None:  # pragma: no cover - abstract
        raise NotImplementedError


class TreeSampler(_Sampler):
    """Every ``interval`` seconds, the PSS summed over this process and the task processes
    it runs (``pids``); ``peak`` is the largest sum seen."""

    def __init__(self, interval: float = 0.1) -> None:
        super().__init__(interval, "pss-sampler")
        self.peak = 0
        self.pids: set[int] = set()

    def sample(self) -> None:
        self.peak = max(self.peak, pss_bytes(os.getpid()) + sum(pss_bytes(p) for p in list(self.pids)))


def rss_bytes() -> int:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * _PAGE


def peak_rss_bytes() -> int:
    """The process's peak RSS so far (Linux reports ``ru_maxrss`` in KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


class RssSampler(_Sampler):
    """Samples RSS every ``interval`` seconds on a daemon thread; ``window()`` gives the max
    seen since the window opened."""

    def __init__(self, interval: float = 0.02) -> None:
        super().__init__(interval, "rss-sampler")
        self._max = 0

    def sample(self) -> None:
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

    def add(self, name: str, task: dict[str, Any]) -> None:
        """A stage task that ran in another process: its wall, HTTP time, requests, peak RSS."""
        s = self.stages.setdefault(name, {"wall_s": 0.0, "http_s": 0.0, "requests": 0, "rss_max_mb": 0.0})
        s["wall_s"] += task["wall_s"]
        s["http_s"] += task["http_s"]
        s["requests"] += task["requests"]
        s["rss_max_mb"] = max(s["rss_max_mb"], task["rss_max_mb"])

    def summary(self) -> dict[str, dict[str, float]]:
        out = {}
        for name, s in self.stages.items():
            out[name] = {
                "wall_s": round(s["wall_s"], 3),
                "http_s": round(s["http_s"], 3),
                "outside_http_s": round(s["wall_s"] - s["http_s"], 3),
                "requests": int(s["requests"]),
                "rss_max_mb": round(s["rss_max_mb"], 1),
            }
        return out
