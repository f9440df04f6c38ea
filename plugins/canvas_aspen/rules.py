"""Per-item passback rules of domain.md §3 that decide what a Canvas grade *is*.

Which grades are sent (R1, R3, R4's `not_graded`), what an empty grade is (R7), how
Late/Missing/Excused map to OneRoster (R6), which date and grading period a line item
gets (R15). The gate that *holds back* a grade (R4, R5, R15, R16, R2) is the Great
Expectations suites in ``expectations/``; category matching (R2, R13, R14) is
``canvas_aspen.match``; deltas (R7 cleared, R8, R9, R10) are ``canvas_aspen.deltas``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from canvas_aspen.buckets import Bucket
from canvas_aspen.findings import finding

EXEMPT = "exempt"
FULLY_GRADED = "fully graded"
NOT_SUBMITTED = "not submitted"
SCORE_STATUSES = (EXEMPT, FULLY_GRADED, NOT_SUBMITTED, "partially graded", "submitted")


# --- R1 (and R4's not_graded): which assignments are sent at all --------------------


def is_sendable(assignment: dict[str, Any]) -> bool:
    """R1: published with "Sync to SIS" on. R4: `not_graded` assignments are never sent.
    Only a JSON ``true`` turns a flag on: a malformed ``"false"`` never sends a grade."""
    return (
        assignment.get("published") is True
        and assignment.get("post_to_sis") is True
        and assignment.get("grading_type") != "not_graded"
    )


# --- R3: assignments for named students or sections ---------------------------------


def section_due_at(assignment: dict[str, Any], section_id: int, section_user_ids: set[int]) -> str | None:
    """The due date of the line item of ``assignment`` in one section (= one Aspen class).

    A section override's date wins; otherwise the assignment's own date; for an assignment
    visible only to named students, the latest date among the overrides of the students
    who sit in this section.
    """
    overrides = assignment.get("overrides") or []
    for o in overrides:
        if o.get("course_section_id") == section_id and o.get("due_at"):
            return o["due_at"]
    if assignment.get("due_at"):
        return assignment["due_at"]
    student_dates = [
        o["due_at"]
        for o in overrides
        if o.get("due_at") and section_user_ids.intersection(o.get("student_ids") or [])
    ]
    return max(student_dates, key=parse_instant) if student_dates else None


def is_assigned(assignment: dict[str, Any], section_id: int, user_id: int) -> bool:
    """R3: an assignment visible only to overrides counts only for the students and
    sections its overrides name; any other assignment counts for everybody."""
    if not assignment.get("only_visible_to_overrides"):
        return True
    for o in assignment.get("overrides") or []:
        if o.get("course_section_id") == section_id or user_id in (o.get("student_ids") or []):
            return True
    return False


# --- R4 / R6 / R7: what a submission says ---------------------------------------------


@dataclass(frozen=True)
class Grade:
    canvas_status: str  # graded | late | missing | excused | empty
    score_status: str | None  # OneRoster scoreStatus, None when empty
    score: float | None  # NaN when Canvas holds something that is not a number
    score_raw: str | None  # what Canvas held, as text (for the report)


def _as_number(value: Any) -> float:
    """A JSON number as float (NaN/inf kept); anything else (text, bool) is NaN."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return math.nan
    try:
        return float(value)
    except OverflowError:  # an integer beyond any float: an infinity, held back like one
        return math.inf if value > 0 else -math.inf


def _raw(value: Any) -> str | None:
    return None if value is None else str(value)[:64]


def grade_of(sub: dict[str, Any]) -> Grade:
    """R6 and R7: Canvas's Late / Missing / Excused and empty grades, as OneRoster sees them.

    * excused -> ``exempt`` with no score;
    * missing -> ``not submitted`` with Canvas's score, 0 if it has none;
    * late or plain graded -> ``fully graded`` with the score;
    * no score, no grade text, not excused, not missing -> empty (never posted, R7);
    * a grade with text but no number -> NaN score: the gate holds it back (R4).
    """
    score, grade = sub.get("score"), sub.get("grade")
    lps = sub.get("late_policy_status")
    if sub.get("excused") is True:
        return Grade("excused", EXEMPT, None, _raw(grade))
    if sub.get("missing") is True or lps == "missing":
        value = 0.0 if score is None else _as_number(score)
        return Grade("missing", NOT_SUBMITTED, value, _raw(score if score is not None else grade))
    if score is None and (grade is None or str(grade).strip() == ""):
        return Grade("empty", None, None, None)
    status = "late" if (sub.get("late") is True or lps == "late") else "graded"
    value = _as_number(score) if score is not None else math.nan
    return Grade(status, FULLY_GRADED, value, _raw(score if score is not None else grade))


# --- R20: grades hidden by the posting policy ------------------------------------------


def is_hidden(sub: dict[str, Any]) -> bool:
    """R20: Canvas hides this grade from the student: under a manual posting policy a graded
    or excused submission has ``posted_at`` null until the teacher posts it. Only an explicit
    null hides (a Canvas answer without the field is taken as posted); a submission with
    nothing graded is not hidden, it is empty or missing as before."""
    if "posted_at" not in sub or sub.get("posted_at") is not None:
        return False
    grade = sub.get("grade")
    return (
        sub.get("excused") is True
        or sub.get("score") is not None
        or (grade is not None and str(grade).strip() != "")
    )


def initial_bucket(grade: Grade, sub: dict[str, Any]) -> Bucket:
    """Where a row starts (R17): ``empty`` (R7), ``hidden`` (R20: never sent, not gated), or
    ``eligible`` (the gate and the deltas decide the rest)."""
    if grade.canvas_status == "empty":
        return Bucket.EMPTY
    return Bucket.HIDDEN if is_hidden(sub) else Bucket.ELIGIBLE


def hidden_findings(df: Any) -> list[dict[str, Any]]:
    """R20: one ``hidden_grades`` finding per assignment of a course (not one per grade) whose
    rows are ``hidden``, with how many grades (``value``) and in which Aspen classes."""
    hidden = df[df["bucket"].eq(Bucket.HIDDEN)]
    out = []
    for (course_id, assignment_id), rows_ in hidden.groupby(["canvas_course_id", "assignment_id"], sort=True):
        first = rows_.iloc[0]
        classes = sorted(rows_["aspen_class_id"].dropna().unique().tolist())
        n = len(rows_)
        out.append(
            finding(
                "hidden_grades",
                f"{n} grade(s) hidden from students by the assignment's manual posting policy: not sent to "
                "Aspen (parents would see them before the student); they go with the first run after the "
                "teacher posts them",
                canvas_course_id=int(course_id),
                assignment_id=int(assignment_id),
                assignment_name=first["assignment_name"],
                group_name=first["group_name"],
                aspen_class_id=", ".join(classes) or None,
                value=n,
                suggestion="Post the grades in Canvas (Gradebook: the assignment's menu, Post grades) "
                "once they are final",
            )
        )
    return out


# --- R15: due date -> Aspen grading period ----------------------------------------------


def parse_instant(value: str | None) -> datetime | None:
    """Canvas ISO-8601 timestamps ("2026-09-10T03:59:59Z") as aware datetimes."""
    if not value:
        return None
    try:
        dt = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None
    return dt if dt.tzinfo else dt.replace(tzinfo=ZoneInfo("UTC"))


@dataclass(frozen=True)
class GradingPeriod:
    sourced_id: str
    title: str
    start: date
    end: date
    locked: bool

    @classmethod
    def from_oneroster(cls, gp: dict[str, Any]) -> GradingPeriod:
        meta = gp.get("metadata") or {}
        locked = meta.get("locked", False)
        return cls(
            sourced_id=gp["sourcedId"],
            title=gp.get("title") or gp["sourcedId"],
            start=date.fromisoformat(str(gp["startDate"])[:10]),
            end=date.fromisoformat(str(gp["endDate"])[:10]),
            locked=locked is True or str(locked).lower() == "true",
        )


def grading_period_for(due_at: str | None, periods: list[GradingPeriod], tz: str) -> GradingPeriod | None:
    """R15: the Aspen grading period whose dates contain the due date, read as the
    district's local calendar date (a 23:59 Eastern due date is 03:59 UTC the next day)."""
    instant = parse_instant(due_at)
    if instant is None:
        return None
    local = instant.astimezone(ZoneInfo(tz)).date()
    for p in periods:
        if p.start <= local <= p.end and (p.sourced_id or "").strip():
            return p
    return None
