"""Course leases: a nightly run and a manual backfill never post the same course at once."""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from canvas_aspen.ledger import Ledger

log = logging.getLogger(__name__)


def lease_courses(
    ledger: Ledger | None, run_id: str | None, lease: timedelta | None, course_ids: list[int]
) -> dict[str, str]:
    """Take, or extend, this run's leases on courses; {course: why} for those another live run
    holds. A run leases its courses before it reads Canvas (extract) and checks again before it
    writes (post); a busy course's grades end ``failed`` and go with the next run. No ledger,
    run id or lease (a dry run, a test): nothing is leased."""
    if ledger is None or run_id is None or lease is None or not course_ids:
        return {}
    _, refused = ledger.acquire_courses(course_ids, run_id, lease)
    busy = {str(c): f"course busy: run {holder} holds it; retried next run" for c, holder in refused.items()}
    for course, why in busy.items():
        log.warning("course %s: %s", course, why)
    return busy
