"""A manual backfill triggered while the nightly run is in flight (issue 8).

Two runs on one ledger and one Aspen, interleaved stage by stage. A run leases its
courses before it reads Canvas (extract) and checks its leases again before it writes
(post); a course another live run holds is still read (its grades are counted) but its
grades end ``failed`` with "course busy: run X holds it; retried next run", and the run
ends failed after its report. So no grade is ever posted by both runs, and a value a
teacher enters while the runs are in flight is posted by the next run: never lost.
"""

from __future__ import annotations

from datetime import timedelta

import pytest

from .conftest import EXPECTED, STAGES, assert_buckets_add_up, assert_ledger_agrees, course

pytestmark = [pytest.mark.slow, pytest.mark.timeout(420)]

RESULT = "canvas-a3001-s1011-u5001"  # Algebra I, HW 1, S1001: 8 in Canvas at the start


def result_puts(sb) -> int:
    endpoints = sb.stats("aspen")["endpoints"]
    return sum(e["count"] for name, e in endpoints.items() if name.startswith("PUT") and "/results/" in name)


def free(ledger, courses) -> bool:
    granted, refused = ledger.acquire_courses(courses, "probe", timedelta(minutes=1))
    ledger.release_courses("probe")
    return not refused


@pytest.mark.parametrize("first_name", ["nightly", "backfill"])
def test_backfill_during_the_nightly_run_posts_each_grade_once_and_keeps_the_later_value(
    first_name, sb, pipeline, ledger
):
    sb.reset()
    nightly = pipeline(sb, "scheduled__nightly")
    backfill = pipeline(sb, "manual__backfill", course_ids=[101])
    first, second = (nightly, backfill) if first_name == "nightly" else (backfill, nightly)

    first.plan()
    first.run_stage("extract")
    sb.canvas_set_submission(101, 3001, 5001, score=9.5)  # a teacher's later value, after `first` read Canvas
    second.plan()
    second.run_stage("extract")
    for stage in STAGES[1:]:
        first.run_stage(stage)
        second.run_stage(stage)
    first_state, first_report = first.report()
    second_state, second_report = second.report()

    assert first_state == "success", first_report["courses"]
    assert second_state == "failed"
    busy = course(second_report, 101)
    assert busy["error"] == f"course busy: run {first.run_id} holds it; retried next run"
    assert busy["posted"] == 0 and busy["failed"] == course(first_report, 101)["posted"] > 0
    for other in second_report["courses"]:
        if other["canvas_course_id"] != 101:
            assert other["failed"] == 0 and other["error"] is None, other
    assert_buckets_add_up(first_report)
    assert_buckets_add_up(second_report)
    # each grade went once, from one run; Aspen holds what the lease holder read
    assert (
        result_puts(sb)
        == first_report["totals"]["posted"] + second_report["totals"]["posted"]
        == len(EXPECTED["results"])
    )
    assert sb.state()["results"][RESULT]["score"] == 8
    assert free(ledger, [101, 102, 103])  # both runs gave their leases back

    # the next run posts the later value, and nothing else
    state, report = pipeline(sb, "scheduled__next").run()
    assert state == "success"
    assert report["totals"]["posted"] == 1
    final = sb.state()
    assert final["results"][RESULT]["score"] == 9.5
    assert result_puts(sb) == len(EXPECTED["results"]) + 1
    assert_ledger_agrees(ledger, final)


def test_a_lease_lost_mid_run_is_checked_again_before_posting(sb, pipeline, ledger):
    """The nightly run's lease on course 101 ran out while it was computing and the backfill
    took the course: the nightly run's post writes nothing of 101; the backfill posts it."""
    sb.reset()
    nightly = pipeline(sb, "scheduled__slow")
    backfill = pipeline(sb, "manual__backfill", course_ids=[101])
    nightly.plan()
    for stage in ("extract", "validate", "match", "deltas"):
        nightly.run_stage(stage)
    ledger.release_courses(nightly.run_id, [101])  # as if its lease had expired
    backfill.plan()
    backfill.run_stage("extract")  # the backfill takes 101
    nightly.run_stage("post")
    for stage in ("validate", "match", "deltas", "post", "verify"):
        backfill.run_stage(stage)
    nightly.run_stage("verify")
    n_state, n_report = nightly.report()
    b_state, b_report = backfill.report()

    assert b_state == "success"
    assert n_state == "failed"
    assert course(n_report, 101)["error"] == f"course busy: run {backfill.run_id} holds it; retried next run"
    assert course(n_report, 101)["posted"] == 0
    assert course(n_report, 101)["failed"] == course(b_report, 101)["posted"] > 0
    assert result_puts(sb) == len(EXPECTED["results"])  # nothing posted twice
    assert free(ledger, [101, 102, 103])
    assert_ledger_agrees(ledger, sb.state())
