"""R22: a Canvas student is the Aspen roster user whose ``student_id_field`` equals the SIS id."""

import pandas as pd
import pytest

from canvas_aspen import match, oneroster, students

ROSTER = [
    {"sourcedId": "std_000101", "identifier": "1001", "username": "ava.t", "email": "Ava.T@district.org"},
    {"sourcedId": "std_000102", "identifier": "1002", "username": "liam.n", "email": "liam.n@district.org"},
    {"sourcedId": "std_000103", "identifier": "1003", "username": "sofia.m", "email": None},
    {"sourcedId": "std_000104", "identifier": "1003", "username": "sofia.m2", "email": "s@district.org"},
    {"sourcedId": "std_000105", "identifier": "1005", "status": "tobedeleted"},
]


def _match(field: str, sis_ids: list) -> students.StudentMatch:
    rosters = {"CLS": students.roster(ROSTER, field)}
    return students.match_students(["CLS"] * len(sis_ids), sis_ids, rosters)


def test_r22_by_identifier_the_student_number_names_the_roster_users_sourced_id():
    m = _match("identifier", ["1001", " 1002 ", "1009", "std_000101"])
    assert m.aspen_student_id == ["std_000101", "std_000102", None, None]
    assert m.in_roster == [True, True, False, False]
    assert m.roster_ambiguous == [False] * 4


def test_r22_default_sourced_id_is_the_old_behaviour():
    m = _match("sourcedId", ["std_000102", "1002"])
    assert m.aspen_student_id == ["std_000102", None] and m.in_roster == [True, False]


@pytest.mark.parametrize(
    "field, sis, want",
    [
        ("username", "LIAM.N", "std_000102"),
        ("email", "ava.t@district.org", "std_000101"),
    ],
)
def test_r22_username_and_email_match_without_regard_to_case(field, sis, want):
    assert _match(field, [sis]).aspen_student_id == [want]


def test_r22_two_roster_users_with_the_same_key_are_ambiguous_and_get_no_id():
    m = _match("identifier", ["1003"])
    assert m.aspen_student_id == [None]
    assert (m.in_roster, m.roster_ambiguous) == ([True], [True])
    assert m.roster_candidates == ["std_000103, std_000104"]


def test_r22_tombstoned_users_and_unknown_classes_are_not_on_the_roster():
    assert _match("identifier", ["1005"]).in_roster == [False]
    m = students.match_students(
        ["OTHER", None], ["1001", "1001"], {"CLS": students.roster(ROSTER, "identifier")}
    )
    assert m.in_roster == [False, False] and m.aspen_student_id == [None, None]


def test_r22_results_name_the_aspen_sourced_id_not_the_canvas_sis_id():
    rows = pd.DataFrame(
        {"aspen_class_id": ["CLS"], "group_id": [1], "group_name": ["Tests"], "student_sis_id": ["1002"]}
    )
    table = match.match_table(rows, {"CLS": [match.Category("CAT", "Tests", None)]})
    row = match.apply_matches(rows, table, {"CLS": students.roster(ROSTER, "identifier")}).iloc[0].to_dict()
    row.update(result_id="r1", line_item_id="li1", score=8.0, score_status="fully graded", graded_at=None)
    body = oneroster.result_body(row, pd.Timestamp("2026-12-01", tz="UTC"))
    assert body["student"]["sourcedId"] == "std_000102"


def test_r22_submissions_of_a_student_without_an_active_enrollment_are_not_considered():
    from canvas_aspen import rows, rules
    from sandbox import scenario
    from sandbox.canvas_state import CanvasState

    demo = scenario.load("demo")
    state = CanvasState(demo)
    c = state.course(102)  # Biology: Henry (5105) dropped it, his enrollment is inactive
    keys = state.submission_keys(c, ["all"], [], None)
    bundle = {
        "course": state.course_json(c),
        "sections": state.sections_json(c),
        "enrollments": state.enrollments_json(c, ["StudentEnrollment"], ["active"]),
        "assignment_groups": state.groups_json(c, True, True),
        "submissions": [state.submission_json(a, uid) for a, uid in keys],
    }
    assert all(e["user_id"] != 5105 for e in bundle["enrollments"])
    # a Canvas that lists his old submission anyway (student_ids[]=all may include former students)
    bundle["submissions"].append(dict(bundle["submissions"][0], user_id=5105, score=12.0, grade="12"))
    periods = [rules.GradingPeriod.from_oneroster(p) for p in demo["aspen"]["grading_periods"]]
    frame = rows.build_rows([bundle], periods, "America/New_York")
    assert len(frame) > 0 and 5105 not in set(frame["canvas_user_id"])
