"""Per-grade rules (canvas_aspen.rules) and the rows frame built from Canvas answers."""

import math
from datetime import date

import pandas as pd
import pytest

from canvas_aspen import ids, rows, rules

PERIODS = [
    rules.GradingPeriod("GP-Q1", "Q1", date(2026, 8, 25), date(2026, 10, 31), locked=False),
    rules.GradingPeriod("GP-Q2", "Q2", date(2026, 11, 1), date(2027, 1, 20), locked=True),
]
TZ = "America/New_York"


def _assignment(aid=10, **kw):
    a = {
        "id": aid,
        "name": f"A{aid}",
        "published": True,
        "post_to_sis": True,
        "grading_type": "points",
        "points_possible": 10,
        "due_at": "2026-09-15T03:59:59Z",
        "created_at": "2026-09-01T12:00:00Z",
        "only_visible_to_overrides": False,
        "overrides": [],
    }
    a.update(kw)
    return a


def _bundle(assignments, submissions, enrollments=None, sections=None):
    return {
        "course": {
            "id": 1,
            "name": "Biology",
            "sis_course_id": "BIO-1",
            "apply_assignment_group_weights": True,
        },
        "sections": sections
        or [
            {"id": 100, "sis_section_id": "CLS-100", "course_id": 1},
            {"id": 200, "sis_section_id": "CLS-200", "course_id": 1},
        ],
        "enrollments": enrollments
        or [
            {"user_id": 7, "course_section_id": 100, "sis_user_id": "S7"},
            {"user_id": 8, "course_section_id": 200, "user": {"sis_user_id": "S8"}},
            {"user_id": 9, "course_section_id": 200, "sis_user_id": None},
        ],
        "assignment_groups": [{"id": 5, "name": "Quizzes", "group_weight": 40, "assignments": assignments}],
        "submissions": submissions,
    }


def _sub(aid, uid, **kw):
    s = {
        "assignment_id": aid,
        "user_id": uid,
        "score": 8.0,
        "grade": "8",
        "excused": False,
        "late": False,
        "missing": False,
        "late_policy_status": None,
        "workflow_state": "graded",
        "graded_at": "2026-09-16T10:00:00Z",
    }
    s.update(kw)
    return s


@pytest.mark.parametrize(
    "change, sent",
    [
        ({}, True),
        ({"published": False}, False),
        ({"post_to_sis": False}, False),
        ({"grading_type": "not_graded"}, False),
        ({"grading_type": "letter_grade"}, True),
    ],
)
def test_R1_only_published_assignments_with_sync_to_sis_are_sent(change, sent):
    assert rules.is_sendable(_assignment(**change)) is sent
    frame = rows.build_rows([_bundle([_assignment(**change)], [_sub(10, 7)])], PERIODS, TZ)
    assert len(frame) == (1 if sent else 0)


def test_R3_named_student_assignment_counts_only_for_its_students_and_sections():
    a = _assignment(
        only_visible_to_overrides=True,
        due_at=None,
        overrides=[
            {"id": 1, "student_ids": [7], "due_at": "2026-09-20T03:59:59Z"},
            {"id": 2, "course_section_id": 200, "due_at": "2026-11-05T04:59:59Z"},
        ],
    )
    subs = [_sub(10, 7), _sub(10, 8), _sub(10, 9)]
    enr = [
        {"user_id": 7, "course_section_id": 100, "sis_user_id": "S7"},
        {"user_id": 8, "course_section_id": 200, "sis_user_id": "S8"},
        {"user_id": 9, "course_section_id": 100, "sis_user_id": "S9"},
    ]  # 9: same section as 7, not named
    frame = rows.build_rows([_bundle([a], subs, enrollments=enr)], PERIODS, TZ)
    assert sorted(frame["canvas_user_id"]) == [7, 8]
    by_user = frame.set_index("canvas_user_id")
    # the section override's date for section 200; the named student's date in section 100
    assert by_user.loc[8, "grading_period_id"] == "GP-Q2"
    assert by_user.loc[7, "grading_period_id"] == "GP-Q1"
    assert by_user.loc[7, "due_at"].isoformat().startswith("2026-09-20T03:59:59")


def test_R4_text_and_non_finite_scores_become_nan_for_the_gate():
    assert math.isnan(rules.grade_of(_sub(1, 1, score="A-", grade="A-")).score)
    assert math.isnan(rules.grade_of(_sub(1, 1, score=None, grade="complete")).score)
    assert math.isnan(rules.grade_of(_sub(1, 1, score=True)).score)
    assert math.isinf(rules.grade_of(_sub(1, 1, score=float("inf"))).score)
    g = rules.grade_of(_sub(1, 1, score=None, grade="incomplete"))
    assert g.canvas_status == "graded" and g.score_raw == "incomplete"


def test_R6_late_missing_excused_map_to_oneroster_status():
    assert rules.grade_of(_sub(1, 1, excused=True, score=None)) == rules.Grade("excused", "exempt", None, "8")
    missing = rules.grade_of(_sub(1, 1, missing=True, score=None, grade=None))
    assert (missing.canvas_status, missing.score_status, missing.score) == ("missing", "not submitted", 0.0)
    kept = rules.grade_of(_sub(1, 1, late_policy_status="missing", score=3.0))
    assert (kept.score_status, kept.score) == ("not submitted", 3.0)
    late = rules.grade_of(_sub(1, 1, late=True, late_policy_status="late", score=7.5))
    assert (late.canvas_status, late.score_status, late.score) == ("late", "fully graded", 7.5)


def test_R7_empty_grade_is_counted_as_empty_not_a_finding():
    g = rules.grade_of(_sub(1, 1, score=None, grade=None, workflow_state="unsubmitted"))
    assert g == rules.Grade("empty", None, None, None)
    frame = rows.build_rows([_bundle([_assignment()], [_sub(10, 7, score=None, grade="")])], PERIODS, TZ)
    assert frame["bucket"].tolist() == ["empty"]


def test_r20_hidden_grade_is_not_sent_it_is_counted_hidden():
    hidden = _sub(10, 7, score=8.0, posted_at=None)
    assert rules.is_hidden(hidden) and rules.is_hidden(_sub(10, 7, excused=True, score=None, posted_at=None))
    assert not rules.is_hidden(_sub(10, 7, score=8.0, posted_at="2026-11-20T12:00:00Z"))
    assert not rules.is_hidden(_sub(10, 7, score=8.0))  # a Canvas answer without the field: taken as posted
    # nothing graded: empty (R7), not hidden, even with posted_at null
    assert not rules.is_hidden(_sub(10, 7, score=None, grade=None, posted_at=None))
    frame = rows.build_rows(
        [
            _bundle(
                [_assignment()],
                [
                    hidden,
                    _sub(10, 8, score=6.0, posted_at="2026-11-20T12:00:00Z"),
                    _sub(10, 9, score=None, grade=None, posted_at=None),
                ],
            )
        ],
        PERIODS,
        TZ,
    )
    assert frame.set_index("canvas_user_id")["bucket"].to_dict() == {7: "hidden", 8: "eligible", 9: "empty"}


def test_r20_hidden_grades_are_counted_per_assignment_not_per_grade():
    subs = [
        _sub(10, 7, score=8.0, posted_at=None),
        _sub(10, 8, score=5.0, posted_at=None),
        _sub(10, 9, excused=True, score=None, posted_at=None),
        _sub(11, 7, score=9.0, posted_at=None),
        _sub(12, 7, score=9.0, posted_at="2026-11-20T12:00:00Z"),
    ]
    frame = rows.build_rows([_bundle([_assignment(10), _assignment(11), _assignment(12)], subs)], PERIODS, TZ)
    found = rules.hidden_findings(frame)
    assert [(f["rule"], f["kind"], f["severity"], f["assignment_id"], f["value"]) for f in found] == [
        ("R20", "hidden_grades", "info", 10, 3),
        ("R20", "hidden_grades", "info", 11, 1),
    ]
    assert found[0]["aspen_class_id"] == "CLS-100, CLS-200" and found[0]["student_sis_id"] is None
    assert "first run after the teacher posts them" in found[0]["message"]


def test_R15_grading_period_is_read_from_the_local_due_date():
    # 2026-11-01 03:59Z is still October 31st, 23:59 in New York: Q1, not Q2
    assert rules.grading_period_for("2026-11-01T03:59:59Z", PERIODS, TZ).sourced_id == "GP-Q1"
    assert rules.grading_period_for("2026-11-01T05:00:00Z", PERIODS, TZ).sourced_id == "GP-Q2"
    assert rules.grading_period_for("2027-06-01T05:00:00Z", PERIODS, TZ) is None
    assert rules.grading_period_for(None, PERIODS, TZ) is None
    frame = rows.build_rows(
        [_bundle([_assignment(due_at="2026-11-10T05:00:00Z")], [_sub(10, 7)])], PERIODS, TZ
    )
    assert frame.loc[0, "grading_period_locked"] == True  # noqa: E712  (locked Q2: the gate holds it)


def test_R16_student_and_section_sis_ids_are_carried_for_the_gate():
    sections = [{"id": 100, "sis_section_id": "CLS-100"}, {"id": 200, "sis_section_id": None}]
    frame = rows.build_rows(
        [_bundle([_assignment()], [_sub(10, 7), _sub(10, 8), _sub(10, 9)], sections=sections)], PERIODS, TZ
    )
    by_user = frame.set_index("canvas_user_id")
    assert by_user.loc[7, "aspen_class_id"] == "CLS-100" and by_user.loc[7, "student_sis_id"] == "S7"
    assert by_user.loc[8, "student_sis_id"] == "S8"  # read from enrollment.user
    assert pd.isna(by_user.loc[8, "aspen_class_id"])
    assert pd.isna(by_user.loc[9, "student_sis_id"])


def test_rows_carry_deterministic_sourced_ids():
    frame = rows.build_rows([_bundle([_assignment()], [_sub(10, 8)])], PERIODS, TZ)
    assert frame.loc[0, "line_item_id"] == ids.line_item_id(10, 200) == "canvas-a10-s200"
    assert frame.loc[0, "result_id"] == "canvas-a10-s200-u8"
    assert ids.parse_line_item_id("canvas-a10-s200") == (10, 200)
    assert ids.parse_line_item_id("teacher-made-item") is None


def test_cross_listed_course_rows_go_to_each_sections_class():
    frame = rows.build_rows([_bundle([_assignment()], [_sub(10, 7), _sub(10, 8)])], PERIODS, TZ)
    assert sorted(frame["aspen_class_id"].dropna()) == ["CLS-100", "CLS-200"]
