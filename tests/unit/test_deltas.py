"""R8, R9, R7 (cleared) and R10 as decided by canvas_aspen.deltas: one test per case.

Values are written (score_status, score); D = Canvas now, L = the ledger's last post,
A = Aspen now; None means the system does not hold the result at all.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from canvas_aspen import ids
from canvas_aspen.deltas import (
    aspen_holds,
    cleared_findings,
    hidden_after_posting_findings,
    line_item_actions,
    orphans,
    payload_hash,
    result_actions,
)

GRADED, MISSING, EXEMPT = "fully graded", "not submitted", "exempt"
NAN = float("nan")


def _rid(user: int, assignment: int = 7, section: int = 3) -> str:
    return ids.result_id(assignment, section, user)


def _rows(*values: tuple[str, float]) -> pd.DataFrame:
    """Eligible rows, student ``k + 1`` holding ``values[k]``, as the deltas stage sees them."""
    users = range(1, len(values) + 1)
    return pd.DataFrame(
        {
            "row_id": list(users),
            "result_id": [_rid(u) for u in users],
            "line_item_id": ids.line_item_id(7, 3),
            "canvas_course_id": 101,
            "aspen_class_id": "CLS-3",
            "canvas_user_id": list(users),
            "student_sis_id": [f"S{u:04d}" for u in users],
            "assignment_id": 7,
            "assignment_name": "Quiz 1",
            "group_name": "Quizzes",
            "score": [v[1] for v in values],
            "score_status": [v[0] for v in values],
            "canvas_status": ["excused" if v[0] == EXEMPT else "graded" for v in values],
        }
    )


def _held(*values: tuple[str, float] | None) -> pd.DataFrame:
    """What the ledger or Aspen holds: student ``k + 1`` -> ``values[k]`` (None: nothing)."""
    held = [(_rid(u), v) for u, v in enumerate(values, start=1) if v is not None]
    return pd.DataFrame(
        {
            "result_id": [r for r, _ in held],
            "score": pd.Series([v[1] for _, v in held], dtype="float64"),
            "score_status": pd.Series([v[0] for _, v in held], dtype="string"),
        }
    )


def _decide(d: list, l: list, a: list, **kwargs):  # noqa: E741 - D, L, A as in the module doc
    return result_actions(_rows(*d), _held(*l), _held(*a), **kwargs)


def _outcome(deltas) -> list[tuple[str, str]]:
    return list(zip(deltas.actions["action"], deltas.actions["reason"], strict=True))


# --------------------------------------------------------------------------- R8


def test_R8_only_changed_grades_are_posted() -> None:
    deltas = _decide(
        d=[(GRADED, 8.0), (GRADED, 9.0), (MISSING, 0.0), (GRADED, 5.0)],
        l=[(GRADED, 8.0), (GRADED, 7.0), (MISSING, 0.0), None],
        a=[(GRADED, 8.0), (GRADED, 7.0), (MISSING, 0.0), None],
    )
    assert _outcome(deltas) == [
        ("unchanged", "same"),
        ("post", "changed_in_canvas"),
        ("unchanged", "same"),
        ("post", "missing_in_aspen"),
    ]
    assert deltas.findings == [] and deltas.adopt.empty


def test_a_grade_aspen_lacks_is_posted_even_if_the_ledger_has_it() -> None:
    deltas = _decide(d=[(GRADED, 8.0)], l=[(GRADED, 8.0)], a=[None])
    assert _outcome(deltas) == [("post", "missing_in_aspen")]


def test_a_grade_never_posted_over_a_different_aspen_value_is_new() -> None:
    deltas = _decide(d=[(GRADED, 8.0)], l=[None], a=[(GRADED, 6.0)])
    assert _outcome(deltas) == [("post", "new")]


def test_a_canvas_change_is_posted_even_over_an_aspen_edit() -> None:
    deltas = _decide(d=[(GRADED, 9.0)], l=[(GRADED, 8.0)], a=[(GRADED, 6.0)])
    assert _outcome(deltas) == [("post", "changed_in_canvas")]
    assert deltas.findings == []


def test_a_status_change_with_the_same_score_is_posted() -> None:
    deltas = _decide(d=[(GRADED, 0.0)], l=[(MISSING, 0.0)], a=[(MISSING, 0.0)])
    assert _outcome(deltas) == [("post", "changed_in_canvas")]


def test_scores_compare_within_a_tolerance_of_1e_6() -> None:
    deltas = _decide(
        d=[(GRADED, 8.0000004), (GRADED, 8.00001)],
        l=[(GRADED, 8.0), (GRADED, 8.0)],
        a=[(GRADED, 8.0), (GRADED, 8.0)],
    )
    assert _outcome(deltas) == [("unchanged", "same"), ("post", "changed_in_canvas")]


def test_an_exempt_grade_ignores_the_score() -> None:
    deltas = _decide(d=[(EXEMPT, NAN)], l=[(EXEMPT, 0.0)], a=[(EXEMPT, NAN)])
    assert _outcome(deltas) == [("unchanged", "same")]


def test_statuses_compare_without_case_or_spaces() -> None:
    deltas = _decide(d=[(GRADED, 8.0)], l=[(GRADED, 8.0)], a=[(" Fully Graded", 8.0)])
    assert _outcome(deltas) == [("unchanged", "same")]


def test_a_deleted_aspen_result_counts_as_missing() -> None:
    aspen = _held((GRADED, 8.0)).assign(status="tobedeleted")
    deltas = result_actions(_rows((GRADED, 8.0)), _held((GRADED, 8.0)), aspen)
    assert _outcome(deltas) == [("post", "missing_in_aspen")]


def test_aspen_already_holding_the_canvas_value_is_adopted_not_posted() -> None:
    deltas = _decide(
        d=[(GRADED, 8.0), (GRADED, 9.0), (GRADED, 5.0)],
        l=[None, (GRADED, 7.0), (GRADED, 5.0)],
        a=[(GRADED, 8.0), (GRADED, 9.0), (GRADED, 5.0)],
    )
    assert _outcome(deltas) == [("unchanged", "same")] * 3
    assert deltas.adopt.result_id.tolist() == [_rid(1), _rid(2)]  # the third already agrees with the ledger
    assert deltas.adopt.score.tolist() == [8.0, 9.0]


def test_full_resync_posts_every_grade_but_aspen_edits() -> None:
    deltas = _decide(
        d=[(GRADED, 8.0), (GRADED, 9.0), (GRADED, 5.0)],
        l=[(GRADED, 8.0), None, (GRADED, 5.0)],
        a=[(GRADED, 8.0), (GRADED, 9.0), (GRADED, 4.0)],
        full_resync=True,
    )
    assert _outcome(deltas) == [
        ("post", "full_resync"),
        ("post", "full_resync"),
        ("unchanged", "aspen_edited"),
    ]
    assert deltas.adopt.empty


def test_actions_keep_the_rows_index_and_columns() -> None:
    rows = _rows((GRADED, 8.0), (GRADED, 9.0)).set_index(pd.Index([40, 10]))
    deltas = result_actions(rows, _held(None, (GRADED, 9.0)), _held((GRADED, 8.0), (GRADED, 9.0)))
    assert deltas.actions.index.tolist() == [40, 10]
    assert list(deltas.actions.columns) == [*rows.columns, "action", "reason"]
    assert deltas.actions.loc[10, "reason"] == "same"


def test_no_rows_no_actions() -> None:
    deltas = result_actions(_rows(), _held(), _held())
    assert deltas.actions.empty and "action" in deltas.actions.columns
    assert deltas.findings == [] and deltas.adopt.empty


def test_450k_rows_are_decided_in_one_vectorised_pass() -> None:
    """The nightly size; no timing assertion, but this is the path a district takes."""
    n = 450_000
    users = np.arange(1, n + 1)
    rows = pd.DataFrame(
        {
            "result_id": [f"canvas-a{u % 900}-s{u % 97}-u{u}" for u in users],
            "score": (users % 10).astype(float),
            "score_status": GRADED,
            "canvas_status": "graded",
            "student_sis_id": "S",
        }
    )
    ledger = rows[["result_id", "score", "score_status"]].assign(
        score=np.where(users % 100 == 0, -1.0, rows.score)
    )
    aspen = ledger[users % 1000 != 0]
    deltas = result_actions(rows, ledger, aspen)
    counts = deltas.actions.groupby("reason").size().to_dict()
    assert counts == {"missing_in_aspen": 450, "changed_in_canvas": 4050, "same": n - 4500}


def test_R18_aspen_holds_what_was_posted_within_tolerance() -> None:
    rows = _rows((GRADED, 8.0), (GRADED, 9.0), (EXEMPT, NAN), (GRADED, 5.0))
    aspen = _held((GRADED, 8.0000004), (GRADED, 8.0), (EXEMPT, 0.0), None)
    assert aspen_holds(rows, aspen).tolist() == [True, False, True, False]


# --------------------------------------------------------------------------- R9


def test_R9_aspen_edit_is_kept_and_reported() -> None:
    deltas = _decide(
        d=[(GRADED, 8.0), (GRADED, 5.0)], l=[(GRADED, 8.0), (GRADED, 5.0)], a=[(GRADED, 6.5), (GRADED, 5.0)]
    )
    assert _outcome(deltas) == [("unchanged", "aspen_edited"), ("unchanged", "same")]
    [found] = deltas.findings
    assert {k: found[k] for k in ("rule", "kind", "severity", "student_sis_id", "value", "limit")} == {
        "rule": "R9",
        "kind": "aspen_edited",
        "severity": "warning",
        "student_sis_id": "S0001",
        "value": "6.5 (fully graded)",
        "limit": "8 (fully graded)",
    }
    assert (found["canvas_course_id"], found["aspen_class_id"], found["assignment_id"]) == (101, "CLS-3", 7)
    assert (found["assignment_name"], found["group_name"]) == ("Quiz 1", "Quizzes")
    assert type(found["canvas_course_id"]) is int


def test_an_aspen_status_edit_is_kept_too() -> None:
    deltas = _decide(d=[(GRADED, 8.0)], l=[(GRADED, 8.0)], a=[(EXEMPT, NAN)])
    assert _outcome(deltas) == [("unchanged", "aspen_edited")]
    assert deltas.findings[0]["value"] == "exempt"


def test_an_aspen_edit_survives_a_full_resync() -> None:
    deltas = _decide(d=[(GRADED, 8.0)], l=[(GRADED, 8.0)], a=[(GRADED, 6.5)], full_resync=True)
    assert _outcome(deltas) == [("unchanged", "aspen_edited")]
    assert [f["kind"] for f in deltas.findings] == ["aspen_edited"]


# --------------------------------------------------------------------------- R7


def test_R7_cleared_grade_is_reported_not_posted() -> None:
    empty = _rows((None, NAN), (None, NAN)).assign(canvas_status="empty")
    found = cleared_findings(empty, _held((GRADED, 8.5), None))
    assert [(f["rule"], f["kind"], f["severity"], f["student_sis_id"], f["value"]) for f in found] == [
        ("R7", "cleared_in_canvas", "warning", "S0001", "8.5 (fully graded)"),
    ]
    assert found[0]["assignment_name"] == "Quiz 1"


def test_r20_a_grade_we_posted_that_is_now_hidden_stays_in_aspen_with_a_warning() -> None:
    hidden = _rows((GRADED, 9.0), (GRADED, 7.0)).assign(bucket="hidden")
    found = hidden_after_posting_findings(hidden, _held((GRADED, 8.5), None))
    assert [(f["rule"], f["kind"], f["severity"], f["student_sis_id"], f["value"]) for f in found] == [
        ("R20", "hidden_in_canvas", "warning", "S0001", "8.5 (fully graded)"),
    ]
    assert "Aspen keeps the value posted before" in found[0]["message"]


def test_r20_a_hidden_grade_never_posted_is_not_warned_about() -> None:
    assert hidden_after_posting_findings(_rows((GRADED, 9.0)).assign(bucket="hidden"), _held()) == []


def test_an_empty_grade_we_never_posted_is_not_reported() -> None:
    empty = _rows((None, NAN)).assign(canvas_status="empty")
    assert cleared_findings(empty, _held()) == []


# --------------------------------------------------------------------------- line items


def _body(**changes) -> dict:
    body = {
        "sourcedId": ids.line_item_id(7, 3),
        "status": "active",
        "title": "Quiz 1",
        "dueDate": "2026-03-01T04:59:00Z",
        "class": {"sourcedId": "CLS-3", "type": "class"},
        "resultValueMin": 0.0,
        "resultValueMax": 10.0,
    }
    return {**body, **changes}


def _desired(*bodies: dict) -> pd.DataFrame:
    return pd.DataFrame({"line_item_id": [b["sourcedId"] for b in bodies], "body": list(bodies)})


def _ledger_items(*pairs: tuple[str, str], deleted: bool = False) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "line_item_id": [p[0] for p in pairs],
            "payload_hash": [p[1] for p in pairs],
            "deleted_at": pd.Series(
                [pd.Timestamp("2026-03-01", tz="UTC") if deleted else pd.NaT] * len(pairs)
            ),
        }
    )


def _aspen_items(*line_item_ids: str) -> pd.DataFrame:
    return pd.DataFrame({"line_item_id": list(line_item_ids)})


LI = ids.line_item_id(7, 3)


def test_payload_hash_is_stable_and_sensitive() -> None:
    reordered = dict(reversed(list(_body().items())))
    assert payload_hash(reordered) == payload_hash(_body())
    assert payload_hash(_body(resultValueMax=10)) == payload_hash(_body(resultValueMax=np.float64(10.0)))
    assert payload_hash(_body(title="Quiz 1 (retake)")) != payload_hash(_body())
    assert len(payload_hash(_body())) == 64


def test_an_unchanged_line_item_is_not_posted() -> None:
    out = line_item_actions(_desired(_body()), _ledger_items((LI, payload_hash(_body()))), _aspen_items(LI))
    assert out[["action", "reason"]].values.tolist() == [["unchanged", "same"]]
    assert out.payload_hash.tolist() == [payload_hash(_body())]


def test_a_line_item_aspen_lacks_is_posted() -> None:
    out = line_item_actions(_desired(_body()), _ledger_items((LI, payload_hash(_body()))), _aspen_items())
    assert out[["action", "reason"]].values.tolist() == [["post", "missing_in_aspen"]]


def test_a_changed_line_item_is_posted() -> None:
    body = _body(dueDate="2026-03-08T04:59:00Z")
    out = line_item_actions(_desired(body), _ledger_items((LI, payload_hash(_body()))), _aspen_items(LI))
    assert out[["action", "reason"]].values.tolist() == [["post", "changed"]]


def test_a_line_item_the_ledger_does_not_know_is_posted() -> None:
    out = line_item_actions(_desired(_body()), _ledger_items(), _aspen_items(LI))
    assert out[["action", "reason"]].values.tolist() == [["post", "not_in_ledger"]]


def test_a_line_item_deleted_in_the_ledger_counts_as_unknown() -> None:
    ledger = _ledger_items((LI, payload_hash(_body())), deleted=True)
    out = line_item_actions(_desired(_body()), ledger, _aspen_items(LI))
    assert out.reason.tolist() == ["not_in_ledger"]


def test_full_resync_posts_every_line_item() -> None:
    out = line_item_actions(
        _desired(_body()), _ledger_items((LI, payload_hash(_body()))), _aspen_items(LI), full_resync=True
    )
    assert out[["action", "reason"]].values.tolist() == [["post", "full_resync"]]


def test_a_precomputed_payload_hash_is_used_as_given() -> None:
    desired = pd.DataFrame({"line_item_id": [LI], "payload_hash": ["abc"]})
    out = line_item_actions(desired, _ledger_items((LI, "abc")), _aspen_items(LI))
    assert out.reason.tolist() == ["same"]


# --------------------------------------------------------------------------- R10


def _aspen_line_items(*rows: tuple[str, str]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "line_item_id": [r[0] for r in rows],
            "aspen_class_id": [r[1] for r in rows],
            "title": [f"title of {r[0]}" for r in rows],
        }
    )


def test_R10_orphaned_line_item_reported() -> None:
    gone, kept = ids.line_item_id(8, 3), ids.line_item_id(7, 3)
    result = orphans(_aspen_line_items((gone, "CLS-3"), (kept, "CLS-3")), {101: {7}}, {"CLS-3": 101})
    assert result.line_item_ids == [gone]
    [found] = result.findings
    assert {
        k: found[k]
        for k in (
            "rule",
            "kind",
            "severity",
            "canvas_course_id",
            "aspen_class_id",
            "assignment_id",
            "assignment_name",
            "value",
        )
    } == {
        "rule": "R10",
        "kind": "orphaned_line_item",
        "severity": "warning",
        "canvas_course_id": 101,
        "aspen_class_id": "CLS-3",
        "assignment_id": 8,
        "assignment_name": f"title of {gone}",
        "value": gone,
    }


@pytest.mark.parametrize(
    ("line_item", "class_id", "why"),
    [
        ("teacher-made-1", "CLS-3", "not ours"),
        (ids.line_item_id(8, 4), "CLS-4", "class not resolved by this run"),
        (ids.line_item_id(8, 5), "CLS-5", "course not read by this run"),
    ],
)
def test_line_items_that_are_not_judged_are_never_orphans(line_item: str, class_id: str, why: str) -> None:
    result = orphans(_aspen_line_items((line_item, class_id)), {101: {7}}, {"CLS-3": 101, "CLS-5": 202})
    assert result == ([], []), why


def test_a_deleted_aspen_line_item_is_not_an_orphan() -> None:
    items = _aspen_line_items((ids.line_item_id(8, 3), "CLS-3")).assign(status="tobedeleted")
    assert orphans(items, {101: {7}}, {"CLS-3": 101}) == ([], [])
