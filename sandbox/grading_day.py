"""A day of grading: what teachers do between two nightly runs.

On Canvas: change a fraction of the grades (new scores, some late/missing/excused, a few
cleared), add and delete a few assignments. On Aspen: teachers' hand edits of results.
Both are deterministic for a seed (only the timestamps are the real now). A scenario may
also script exact events under ``day_of_grading``; they are applied by the first call after
start or reset, so the demo's story is the same every time.
"""

from __future__ import annotations

import random
from datetime import timedelta
from typing import Any

from sandbox.canvas_state import Assignment, CanvasState
from sandbox.scenario import canvas_time, now_utc, parse_time

EVENT_KEYS = {
    "action",
    "course_id",
    "assignment_id",
    "user_id",
    "group_id",
    "note",
    "submissions",
    "sourcedId",
}


def sendable(a: Assignment) -> bool:
    return a.published and not a.deleted and a.post_to_sis and a.grading_type != "not_graded"


def random_grade(a: Assignment, rng: random.Random, old: Any) -> dict:
    """New values for one submission, never equal to the old ones."""
    points = a.points_possible or 10.0
    r = rng.random()
    if r < 0.03:
        fields = {"score": None, "excused": True}
    elif r < 0.07:
        fields = {
            "score": 0.0,
            "missing": True,
            "late": False,
            "late_policy_status": "missing",
            "excused": False,
        }
    elif r < 0.13:
        fields = {
            "score": round(points * (0.5 + 0.4 * rng.random()) * 2) / 2,
            "late": True,
            "missing": False,
            "late_policy_status": "late",
            "excused": False,
        }
    elif r < 0.15:
        fields = {"score": None, "excused": False}  # a teacher clears a grade
    elif a.grading_type == "pass_fail":
        fields = {"score": points if rng.random() < 0.85 else 0.0, "excused": False}
    else:
        fields = {
            "score": round(points * (0.55 + 0.45 * rng.random()) * 2) / 2,
            "excused": False,
            "late": False,
            "missing": False,
            "late_policy_status": None,
        }
    if old is not None and old.score == fields.get("score") and old.excused == fields.get("excused", False):
        fields["score"] = points - 0.5 if old.score != points - 0.5 else points - 1.0
        fields["excused"] = False
    return fields


def _fields(event: dict) -> dict:
    return {k: v for k, v in event.items() if k not in EVENT_KEYS}


def apply_canvas_event(state: CanvasState, event: dict) -> dict:
    action = event.get("action")
    if action == "set_submission":
        state.set_submission(event["course_id"], event["assignment_id"], event["user_id"], _fields(event))
    elif action == "delete_assignment":
        state.delete_assignment(event["course_id"], event["assignment_id"])
    elif action == "post_grades":
        state.post_grades(event["course_id"], event["assignment_id"])
    elif action == "hide_grades":
        state.hide_grades(event["course_id"], event["assignment_id"])
    elif action == "update_assignment":
        state.set_assignment(event["course_id"], event["assignment_id"], _fields(event))
    elif action == "add_assignment":
        a = state.add_assignment(event["course_id"], event["group_id"], _fields(event))
        for sub in event.get("submissions", []):
            state.set_submission(
                event["course_id"], a.id, sub["user_id"], {k: v for k, v in sub.items() if k != "user_id"}
            )
        return {"action": action, "course_id": event["course_id"], "assignment_id": a.id}
    else:
        raise ValueError(f"unknown canvas event action {action!r}")
    return {k: event[k] for k in ("action", "course_id", "assignment_id", "user_id") if k in event}


def due_date_for_new_work(scenario: dict) -> str | None:
    """A due date in an unlocked grading period: yesterday if that is in one, else mid-period."""
    now = now_utc()
    periods = sorted(
        (gp for gp in scenario["aspen"]["grading_periods"] if not gp.get("locked")),
        key=lambda gp: gp["startDate"],
    )
    if not periods:
        return None
    yesterday = now - timedelta(hours=12)
    for gp in periods:
        if gp["startDate"][:10] <= yesterday.date().isoformat() <= gp["endDate"][:10]:
            return canvas_time(yesterday)
    gp = periods[-1]
    start, end = parse_time(gp["startDate"]), parse_time(gp["endDate"])
    return canvas_time((start + (end - start) / 2).replace(hour=16, minute=0, second=0))


def canvas_day_of_grading(
    ctx,
    fraction: float = 0.02,
    add_assignments: int = 0,
    delete_assignments: int = 0,
    seed: int = 0,
    scripted: bool = True,
    **_ignored,
) -> dict:
    if not 0.0 <= fraction <= 1.0 or add_assignments < 0 or delete_assignments < 0:
        raise ValueError("fraction in [0, 1], counts >= 0")
    state: CanvasState = ctx.state
    rng = random.Random(seed)
    summary: dict[str, Any] = {
        "scripted": [],
        "changed": [],
        "added_assignments": [],
        "deleted_assignments": [],
    }
    if scripted and not ctx.scripted_applied:
        for event in ctx.scenario.get("day_of_grading", {}).get("canvas", []):
            summary["scripted"].append(apply_canvas_event(state, event))
        ctx.scripted_applied = True

    # teachers grade in their live courses: last year's concluded ones (and unpublished ones) stay as they are
    courses = [
        state.courses[cid]
        for cid in sorted(state.courses)
        if state.courses[cid].raw.get("workflow_state", "available") == "available"
    ]
    slots = [
        (c, a, uid)
        for c in courses
        for g in c.groups
        for a in (c.assignments[i] for i in g["assignment_ids"])
        if sendable(a)
        for uid in state.assigned_students(c, a)
    ]
    summary["slots"] = len(slots)
    for c, a, uid in (slots[i] for i in sorted(rng.sample(range(len(slots)), round(fraction * len(slots))))):
        fields = random_grade(a, rng, a.submissions.get(uid))
        after = state.set_submission(c.id, a.id, uid, fields)
        summary["changed"].append(
            {
                "course_id": c.id,
                "assignment_id": a.id,
                "user_id": uid,
                "score": after["score"],
                "excused": after["excused"],
            }
        )

    live = [(c, a) for c in courses for a in c.assignments.values() if sendable(a)]
    for c, a in sorted(
        rng.sample(live, min(delete_assignments, len(live))), key=lambda ca: (ca[0].id, ca[1].id)
    ):
        state.delete_assignment(c.id, a.id)
        summary["deleted_assignments"].append({"course_id": c.id, "assignment_id": a.id, "name": a.name})

    due = due_date_for_new_work(ctx.scenario)
    with_groups = [c for c in courses if any(g["assignment_ids"] for g in c.groups)]
    for _ in range(add_assignments if with_groups else 0):
        c = rng.choice(with_groups)
        group = rng.choice([g for g in c.groups if g["assignment_ids"]])
        points = rng.choice([10, 20, 25, 50, 100])
        a = state.add_assignment(
            c.id,
            group["id"],
            {
                "name": f"New work {state.next_assignment_id}",
                "points_possible": points,
                "due_at": due,
                "post_to_sis": True,
            },
        )
        graded = 0
        for uid in state.assigned_students(c, a):
            if rng.random() < 0.8:
                state.set_submission(
                    c.id, a.id, uid, {"score": round(points * (0.55 + 0.45 * rng.random()) * 2) / 2}
                )
                graded += 1
        summary["added_assignments"].append(
            {
                "course_id": c.id,
                "assignment_id": a.id,
                "group_id": group["id"],
                "name": a.name,
                "graded": graded,
            }
        )
    return summary


def aspen_day_of_grading(
    ctx, seed: int = 0, scripted: bool = True, aspen_edit_fraction: float = 0.0, **_ignored
) -> dict:
    """Teachers' hand edits in Aspen's gradebook (R9): scripted ones, plus a random fraction."""
    state = ctx.state
    summary: dict[str, Any] = {"scripted": [], "skipped": [], "edited": []}
    if scripted and not ctx.scripted_applied:
        for event in ctx.scenario.get("day_of_grading", {}).get("aspen", []):
            if event.get("action") != "edit_result":
                raise ValueError(f"unknown aspen event action {event.get('action')!r}")
            if event["sourcedId"] not in state.results:
                summary["skipped"].append(event["sourcedId"])  # not posted yet: nothing to edit
                continue
            state.edit_result(event["sourcedId"], _fields(event))
            summary["scripted"].append(event["sourcedId"])
        ctx.scripted_applied = True
    if aspen_edit_fraction:
        rng = random.Random(seed + 1)
        ours = sorted(
            sid for sid, r in state.results.items() if sid.startswith("canvas-") and r.score is not None
        )
        for sid in sorted(rng.sample(ours, round(aspen_edit_fraction * len(ours)))):
            r = state.results[sid]
            li = state.line_items.get(r.line_item_id)
            top = li.resultValueMax if li and li.resultValueMax is not None else r.score + 1
            new = r.score - 1 if r.score >= 1 else min(top, r.score + 0.5)
            state.edit_result(sid, {"score": new})
            summary["edited"].append({"sourcedId": sid, "score": new})
    return summary
