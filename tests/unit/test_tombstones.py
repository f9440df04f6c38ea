"""A OneRoster record whose status is ``tobedeleted`` (any case) is as good as absent wherever an
Aspen answer is read: categories (R2), roster users (R22), line items (R21) and results (R8)."""

from __future__ import annotations

import pandas as pd

from canvas_aspen import match, oneroster, students


def test_r2_a_deleted_category_in_any_case_is_no_category():
    answer = [
        {"sourcedId": "cat-1", "title": "Tests"},
        {"sourcedId": "cat-2", "title": "Quizzes", "status": "ToBeDeleted"},
        {"sourcedId": "cat-3", "title": "Homework", "status": "tobedeleted"},
        {"sourcedId": "cat-4", "title": "Labs", "status": "active"},
    ]
    assert [c.sourced_id for c in match.active_categories(answer)] == ["cat-1", "cat-4"]


def test_r22_a_deleted_roster_user_in_any_case_is_not_matched():
    users = [
        {"sourcedId": "std_1", "status": "TOBEDELETED"},
        {"sourcedId": "std_2", "status": "active"},
        {"sourcedId": "std_3"},
    ]
    assert sorted(students.roster(users).by_key) == ["std_2", "std_3"]


def test_r8_r21_deleted_line_items_and_results_leave_the_frame_and_a_frame_without_status_is_kept():
    frame = pd.DataFrame(
        {"sourcedId": ["a", "b", "c", "d"], "status": ["active", "tobedeleted", None, "ToBeDeleted"]}
    )
    assert oneroster.without_tombstones(frame)["sourcedId"].tolist() == ["a", "c"]
    plain = pd.DataFrame({"sourcedId": ["a"]})
    assert oneroster.without_tombstones(plain) is plain
    assert [oneroster.is_tombstone(s) for s in ("tobedeleted", "ToBeDeleted", "active", None, 3)] == [
        True,
        True,
        False,
        False,
        False,
    ]
