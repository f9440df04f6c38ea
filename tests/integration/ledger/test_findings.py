"""Findings: replaced per scope, so a retried shard/stage never doubles them."""

from __future__ import annotations

import numpy as np
import pytest

from canvas_aspen.findings import FIELDS, finding
from canvas_aspen.ledger import Ledger


def _over_max(student: str, score: float) -> dict:
    return finding(
        "over_max",
        "score above the maximum",
        canvas_course_id=np.int64(101),
        aspen_class_id="CLS-1",
        assignment_id=7,
        assignment_name="Quiz 1",
        group_name="Quizzes",
        student_sis_id=student,
        value=np.float64(score),
        limit=10.0,
    )


def _warning(name: str) -> dict:
    return finding("unweighted_group", f"group {name} has no weight", canvas_course_id=101, group_name=name)


def test_findings_round_trip_with_every_report_field(ledger: Ledger) -> None:
    ledger.record_findings("r1", [_over_max("S1", 12.5)], scope="shard-0000/validate")
    [got] = ledger.findings("r1")
    assert list(got) == list(FIELDS)
    assert got == {**_over_max("S1", 12.5), "canvas_course_id": 101, "value": 12.5}
    assert type(got["value"]) is float and type(got["canvas_course_id"]) is int


def test_recording_a_scope_again_replaces_only_that_scope(ledger: Ledger) -> None:
    ledger.record_findings("r1", [_over_max("S1", 11), _over_max("S2", 12)], scope="shard-0000/validate")
    ledger.record_findings("r1", [_warning("Labs")], scope="shard-0000/match")
    ledger.record_findings("r2", [_warning("Other run")], scope="shard-0000/validate")

    ledger.record_findings("r1", [_over_max("S3", 13)], scope="shard-0000/validate")  # the retry

    got = ledger.findings("r1")
    assert [(f["kind"], f["student_sis_id"] or f["group_name"]) for f in got] == [
        ("unweighted_group", "Labs"),
        ("over_max", "S3"),
    ]
    assert [f["group_name"] for f in ledger.findings("r2")] == ["Other run"]
    assert [f["kind"] for f in ledger.findings("r1", scope="shard-0000/match")] == ["unweighted_group"]


def test_an_empty_list_clears_the_scope(ledger: Ledger) -> None:
    ledger.record_findings("r1", [_warning("Labs")], scope="s")
    ledger.record_findings("r1", [], scope="s")
    assert ledger.findings("r1") == []


def test_order_within_a_scope_is_kept(ledger: Ledger) -> None:
    students = [f"S{i}" for i in (5, 1, 3, 2, 4)]
    ledger.record_findings("r1", [_over_max(s, 11) for s in students], scope="s")
    assert [f["student_sis_id"] for f in ledger.findings("r1")] == students


def test_non_finite_and_text_values_are_stored_as_json(ledger: Ledger) -> None:
    nan = finding("non_numeric_score", "not a number", value=float("nan"), limit="A-")
    inf = finding("non_numeric_score", "infinite", value=float("inf"))
    ledger.record_findings("r1", [nan, inf], scope="s")
    assert [(f["value"], f["limit"]) for f in ledger.findings("r1")] == [(None, "A-"), ("inf", None)]


def test_unknown_fields_are_refused_before_anything_changes(ledger: Ledger) -> None:
    ledger.record_findings("r1", [_warning("Labs")], scope="s")
    with pytest.raises(ValueError, match="student_name"):
        ledger.record_findings("r1", [{**_warning("X"), "student_name": "Ann"}], scope="s")
    assert [f["group_name"] for f in ledger.findings("r1")] == ["Labs"]
