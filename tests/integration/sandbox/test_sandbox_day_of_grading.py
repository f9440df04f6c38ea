"""A day of grading: scripted events, random changes (deterministic per seed), and the edit helpers."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from sandbox.control import SandboxError

from .sandbox_helpers import aspen_client, canvas_client, follow


def graded(sb, course_id: int, **params) -> dict[tuple[int, int], dict]:
    with canvas_client(sb) as c:
        items, _ = follow(
            c,
            f"/api/v1/courses/{course_id}/students/submissions",
            params={"student_ids[]": "all", "per_page": 100, **params},
        )
    return {(s["assignment_id"], s["user_id"]): s for s in items}


def assignment_ids(sb, course_id: int) -> set[int]:
    with canvas_client(sb) as c:
        groups = c.get(
            f"/api/v1/courses/{course_id}/assignment_groups",
            params={"include[]": "assignments", "per_page": 100},
        ).json()
    return {a["id"] for g in groups for a in g["assignments"]}


def put_line_item(api, sid: str, class_id: str, category: str, max_score: float = 20) -> None:
    r = api.put(
        f"/lineItems/{sid}",
        json={
            "lineItem": {
                "title": sid,
                "class": {"sourcedId": class_id},
                "category": {"sourcedId": category},
                "gradingPeriod": {"sourcedId": "GP-2627-Q2"},
                "dueDate": "2026-11-20T00:00:00Z",
                "resultValueMin": 0,
                "resultValueMax": max_score,
            }
        },
    )
    assert r.status_code in (200, 201), r.text


def put_result(api, sid: str, line_item: str, student: str, score: float) -> None:
    r = api.put(
        f"/results/{sid}",
        json={
            "result": {
                "lineItem": {"sourcedId": line_item},
                "student": {"sourcedId": student},
                "scoreStatus": "fully graded",
                "score": score,
            }
        },
    )
    assert r.status_code in (200, 201), r.text


def test_scripted_events_apply_once(demo):
    first = demo.day_of_grading(fraction=0)
    assert [e["action"] for e in first["canvas"]["scripted"]] == ["set_submission"] * 4 + [
        "delete_assignment"
    ]
    assert first["canvas"]["changed"] == [] and first["canvas"]["slots"] > 100
    assert 3013 not in assignment_ids(demo, 101)
    alg = graded(demo, 101)
    assert alg[(3001, 5001)]["score"] == 9.5 and alg[(3001, 5005)]["score"] == 6
    assert alg[(3006, 5002)]["score"] is None  # cleared
    assert graded(demo, 102)[(3101, 5101)]["excused"] is True
    # the Aspen edits wait for results that the first run would have posted
    assert sorted(first["aspen"]["skipped"]) == ["canvas-a3001-s1011-u5001", "canvas-a3101-s1021-u5102"]
    second = demo.day_of_grading(fraction=0)
    assert second["canvas"]["scripted"] == [] and second["aspen"]["scripted"] == []


def test_scripted_aspen_edits_after_a_first_run(demo):
    with aspen_client(demo) as api:
        put_line_item(api, "canvas-a3001-s1011", "ALG1-P1", "cat-ALG1-P1-HW", 10)
        put_result(api, "canvas-a3001-s1011-u5001", "canvas-a3001-s1011", "S1001", 8)
        put_line_item(api, "canvas-a3101-s1021", "BIO-P2", "cat-BIO-P2-LABS", 20)
        put_result(api, "canvas-a3101-s1021-u5102", "canvas-a3101-s1021", "S1102", 16)
    before = demo.state()["results"]["canvas-a3101-s1021-u5102"]["dateLastModified"]
    summary = demo.day_of_grading(fraction=0)
    assert sorted(summary["aspen"]["scripted"]) == ["canvas-a3001-s1011-u5001", "canvas-a3101-s1021-u5102"]
    results = demo.state()["results"]
    assert results["canvas-a3101-s1021-u5102"]["score"] == 19
    assert results["canvas-a3001-s1011-u5001"]["score"] == 7
    assert results["canvas-a3101-s1021-u5102"]["dateLastModified"] >= before


def _fingerprint(summary: dict) -> tuple:
    c = summary["canvas"]
    return (
        [(x["course_id"], x["assignment_id"], x["user_id"], x["score"], x["excused"]) for x in c["changed"]],
        [(x["course_id"], x["assignment_id"], x["name"], x["graded"]) for x in c["added_assignments"]],
        [(x["course_id"], x["assignment_id"]) for x in c["deleted_assignments"]],
    )


def test_random_day_is_deterministic_per_seed(demo):
    first = demo.day_of_grading(fraction=0.1, add_assignments=2, delete_assignments=1, seed=5, scripted=False)
    demo.reset()
    again = demo.day_of_grading(fraction=0.1, add_assignments=2, delete_assignments=1, seed=5, scripted=False)
    demo.reset()
    other = demo.day_of_grading(fraction=0.1, add_assignments=2, delete_assignments=1, seed=6, scripted=False)
    assert _fingerprint(first) == _fingerprint(again) != _fingerprint(other)
    assert len(first["canvas"]["changed"]) == round(0.1 * first["canvas"]["slots"])


def test_random_changes_are_real_changes_and_graded_since_sees_exactly_them(demo):
    before = {cid: graded(demo, cid) for cid in (101, 102, 103)}
    since = (datetime.now(UTC) - timedelta(seconds=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    summary = demo.day_of_grading(fraction=0.15, seed=9, scripted=False)
    changed = {(x["course_id"], x["assignment_id"], x["user_id"]) for x in summary["canvas"]["changed"]}
    seen = set()
    for cid in (101, 102, 103):
        after = graded(demo, cid, graded_since=since)
        seen |= {(cid, a, u) for a, u in after}
        for (a, u), sub in after.items():
            old = before[cid][(a, u)]
            assert (sub["score"], sub["excused"]) != (old["score"], old["excused"]) or sub[
                "late_policy_status"
            ] != old["late_policy_status"]
    assert seen == changed and len(changed) > 10


def test_added_and_deleted_assignments(demo):
    summary = demo.day_of_grading(fraction=0, add_assignments=3, delete_assignments=2, seed=2, scripted=False)
    added, deleted = summary["canvas"]["added_assignments"], summary["canvas"]["deleted_assignments"]
    assert len(added) == 3 and len(deleted) == 2
    for item in deleted:
        assert item["assignment_id"] not in assignment_ids(demo, item["course_id"])
    with canvas_client(demo) as c:
        for item in added:
            groups = c.get(
                f"/api/v1/courses/{item['course_id']}/assignment_groups",
                params={"include[]": "assignments", "per_page": 100},
            ).json()
            a = next(x for g in groups for x in g["assignments"] if x["id"] == item["assignment_id"])
            assert a["published"] and a["post_to_sis"] and a["assignment_group_id"] == item["group_id"]
            due = a["due_at"][:10]
            assert "2026-11-09" <= due <= "2027-06-18"  # in an unlocked grading period
            subs = graded(demo, item["course_id"], **{"assignment_ids[]": item["assignment_id"]})
            assert sum(s["score"] is not None for s in subs.values()) == item["graded"] > 0


def test_aspen_hand_edits_by_fraction(demo):
    with aspen_client(demo) as api:
        put_line_item(api, "canvas-a3101-s1021", "BIO-P2", "cat-BIO-P2-LABS")
        for i, student in enumerate(["S1001", "S1002", "S1101", "S1102"]):
            put_result(api, f"canvas-a3101-s1021-u{i}", "canvas-a3101-s1021", student, 10 + i)
    ours = [sid for sid in demo.state()["results"] if sid.startswith("canvas-")]
    assert len(ours) == 6  # the four above and the two of the R10 orphan
    summary = demo.day_of_grading(fraction=0, aspen_edit_fraction=0.5, seed=1, scripted=False)
    edited = summary["aspen"]["edited"]
    assert len(edited) == 3
    results = demo.state()["results"]
    for e in edited:
        assert results[e["sourcedId"]]["score"] == e["score"]
    assert "ASPEN-ALG1-NB1-S1001" not in {e["sourcedId"] for e in edited}  # only our results


def test_edit_helpers(demo):
    sub = demo.canvas_set_submission(101, 3001, 5005, score=7, late=True, late_policy_status="late")
    assert (sub["score"], sub["late"], sub["workflow_state"]) == (7, True, "graded")
    assert sub["graded_at"] >= datetime.now(UTC).strftime("%Y-%m-%dT%H:%M")[:13]
    updated = demo.canvas_update_assignment(101, 3002, post_to_sis=True, points_possible=20)
    assert updated["post_to_sis"] is True and updated["points_possible"] == 20
    demo.canvas_delete_assignment(101, 3001)
    assert 3001 not in assignment_ids(demo, 101)
    assert demo.canvas_state(course_id=101)["assignments"][0]["deleted"] is True
    edited = demo.aspen_edit_result("canvas-a3099-s1011-u5001", 3, comment="hand edit")
    assert (edited["score"], edited["comment"]) == (3, "hand edit")
    demo.reset()
    assert 3001 in assignment_ids(demo, 101)
    assert demo.state()["results"]["canvas-a3099-s1011-u5001"]["score"] == 7


@pytest.mark.parametrize(
    "call",
    [
        lambda sb: sb.canvas_set_submission(101, 3001, 9999, score=1),  # not enrolled
        lambda sb: sb.canvas_set_submission(101, 1, 5001, score=1),  # no such assignment
        lambda sb: sb.canvas_set_submission(101, 3001, 5001, points=1),  # not a submission field
        lambda sb: sb.aspen_edit_result("NOPE", 1),
        lambda sb: sb.day_of_grading(fraction=2),
    ],
)
def test_edit_helpers_refuse_nonsense(demo, call):
    with pytest.raises(SandboxError):
        call(demo)
