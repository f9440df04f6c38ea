"""Course leases: a nightly run and a manual backfill never hold the same course (issue 8)."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest

from canvas_aspen.ledger import Ledger

from .conftest import T0

HOUR = timedelta(hours=1)


def test_free_courses_are_granted(ledger: Ledger) -> None:
    assert ledger.acquire_courses([3, 1, 2, 1], "nightly", HOUR, now=T0) == ([1, 2, 3], {})


def test_a_course_held_by_another_live_run_is_refused(ledger: Ledger) -> None:
    ledger.acquire_courses([1, 2], "nightly", HOUR, now=T0)
    assert ledger.acquire_courses([2, 3], "backfill", HOUR, now=T0 + timedelta(minutes=5)) == (
        [3],
        {2: "nightly"},
    )


def test_the_same_run_acquiring_again_extends_its_lease(ledger: Ledger) -> None:
    ledger.acquire_courses([1], "nightly", HOUR, now=T0)
    assert ledger.acquire_courses([1], "nightly", HOUR, now=T0 + timedelta(minutes=50)) == ([1], {})
    # still held 1h50 after the first acquisition: the lease was extended
    assert ledger.acquire_courses([1], "backfill", HOUR, now=T0 + timedelta(minutes=100)) == (
        [],
        {1: "nightly"},
    )


def test_an_expired_lease_is_taken_over(ledger: Ledger) -> None:
    ledger.acquire_courses([1, 2], "crashed", HOUR, now=T0)
    assert ledger.acquire_courses([1], "backfill", HOUR, now=T0 + HOUR) == ([1], {})
    assert ledger.acquire_courses([1, 2], "nightly", HOUR, now=T0 + HOUR) == ([2], {1: "backfill"})


def test_release_frees_the_runs_courses_only(ledger: Ledger) -> None:
    ledger.acquire_courses([1, 2], "nightly", HOUR, now=T0)
    ledger.acquire_courses([3], "backfill", HOUR, now=T0)
    assert ledger.release_courses("nightly", [2]) == 1
    assert ledger.acquire_courses([1, 2, 3], "other", HOUR, now=T0) == ([2], {1: "nightly", 3: "backfill"})
    assert ledger.release_courses("nightly") == 1
    assert ledger.release_courses("nightly") == 0
    assert ledger.acquire_courses([1], "other", HOUR, now=T0) == ([1], {})


def test_nothing_asked_nothing_granted(ledger: Ledger) -> None:
    assert ledger.acquire_courses([], "nightly", HOUR) == ([], {})


@pytest.mark.parametrize("overlap", ["same", "reversed"])
def test_two_runs_racing_for_the_same_courses_exactly_one_wins_each(ledger_url: str, overlap: str) -> None:
    """Two connections (two Ledger instances, two threads) released at the same instant."""
    courses = list(range(1, 41))
    ledgers = {"nightly": Ledger(ledger_url), "backfill": Ledger(ledger_url)}
    wanted = {"nightly": courses, "backfill": courses if overlap == "same" else courses[::-1]}
    try:
        for round_no in range(5):
            barrier = threading.Barrier(2)
            results: dict[str, tuple[list[int], dict[int, str]]] = {}
            errors: list[BaseException] = []

            def acquire(
                run: str, barrier: threading.Barrier = barrier, results: dict = results, errors: list = errors
            ) -> None:
                barrier.wait()
                try:
                    results[run] = ledgers[run].acquire_courses(wanted[run], run, HOUR, now=T0)
                except BaseException as exc:  # collected and asserted below
                    errors.append(exc)

            if round_no == 0:
                ledgers["nightly"].migrate()
            threads = [threading.Thread(target=acquire, args=(run,)) for run in ledgers]
            for t in threads:
                t.start()
            for t in threads:
                t.join(timeout=60)

            assert errors == []
            (granted_n, refused_n), (granted_b, refused_b) = results["nightly"], results["backfill"]
            assert sorted(granted_n + granted_b) == courses  # every course won exactly once
            assert refused_n == dict.fromkeys(granted_b, "backfill")
            assert refused_b == dict.fromkeys(granted_n, "nightly")
            for run in ledgers:
                ledgers[run].release_courses(run)
    finally:
        for lg in ledgers.values():
            lg.dispose()
