"""Progress lines of long stages, and the fan-out every stage makes over a hook."""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from canvas_aspen.hooks.protocols import ConcurrentApi

log = logging.getLogger(__name__)


@dataclass
class Progress:
    """Logs "done of total" at most every few seconds on long stages."""

    what: str
    total: int
    hook: Any = None  # when given, the log line also says how many requests were sent
    every: float = 5.0
    done: int = 0
    _t0: float = field(default_factory=time.monotonic)
    _last: float = -math.inf  # the first step always logs (monotonic() may be small after boot)

    def step(self, n: int = 1) -> None:
        self.done += n
        now = time.monotonic()
        if self.done == self.total or now - self._last >= self.every:
            self._last = now
            elapsed = max(now - self._t0, 1e-9)
            sent = self.hook.stats.get("requests", 0) if self.hook is not None else None
            log.info(
                "%s: %d of %d done (%.1f/s)%s",
                self.what,
                self.done,
                self.total,
                self.done / elapsed,
                "" if sent is None else f", {sent} requests sent ({sent / elapsed:.1f}/s)",
            )


def each(hook: ConcurrentApi, fn: Callable[[Any], Any], items: list, what: str) -> list:
    """``fn`` over ``items`` within the hook's concurrency cap, with progress lines; an
    exception stands in the place of its item's answer (one failure never hides the rest)."""
    progress = Progress(what, len(items), hook)

    def one(item):
        try:
            return fn(item)
        finally:
            progress.step()

    return hook.map_concurrent(one, items, on_error="collect") if items else []
