"""Canvas answers of one course -> the rows frame of docs/design.md (one row per grade).

Applies R1 and R3 (which submissions count at all), R6/R7 (what each grade is), R20 (a grade
hidden from the student is ``hidden``) and R15 (the grading period of each line item) through
``canvas_aspen.rules``. Nothing is held
back here: holding back is the Great Expectations gate's job.
"""

from __future__ import annotations

import math
from collections import defaultdict
from typing import Any

import pandas as pd

from canvas_aspen import ids, rules
from canvas_aspen.buckets import Bucket

COLUMNS = [
    "row_id",
    "canvas_course_id",
    "sis_course_id",
    "canvas_section_id",
    "aspen_class_id",
    "canvas_user_id",
    "student_sis_id",
    "assignment_id",
    "assignment_name",
    "group_id",
    "group_name",
    "group_weight",
    "course_weighted",
    "points_possible",
    "grading_type",
    "due_at",
    "assign_date",
    "grading_period_id",
    "grading_period_locked",
    "score_raw",
    "score",
    "score_status",
    "canvas_status",
    "graded_at",
    "line_item_id",
    "result_id",
    "bucket",
]


def sis_id(value: Any) -> str | None:
    """An SIS id as text (trimmed); None when it is missing or blank."""
    text = None if value is None else str(value).strip()
    return text or None


def student_sis_id(enrollment: dict[str, Any]) -> str | None:
    """Canvas gives the SIS id on the enrollment, and also under ``user``."""
    return sis_id(enrollment.get("sis_user_id")) or sis_id((enrollment.get("user") or {}).get("sis_user_id"))


def _number(value: Any) -> float | None:
    """A finite JSON number as float; anything else (text, bool, NaN, infinities, an integer
    too large for a float) is None: the gate holds such an assignment back (R5)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    try:
        number = float(value)
    except OverflowError:
        return None
    return number if math.isfinite(number) else None


def _course_parts(bundle: dict[str, Any]) -> tuple:
    """What the rows of a course are made from: the course, its id, whether it is weighted,
    its sections by id, each user's seats, the users of each section, and its sendable
    assignments (R1) with their groups."""
    course = bundle["course"]
    course_id = int(course["id"])
    weighted = bool(course.get("apply_assignment_group_weights"))
    sections = {int(s["id"]): s for s in bundle.get("sections") or []}

    # user -> [(section_id, sis id)]: a student can sit in more than one section
    seats: dict[int, list[tuple[int, str | None]]] = defaultdict(list)
    users_by_section: dict[int, set[int]] = defaultdict(set)
    for e in bundle.get("enrollments") or []:
        uid, sid = int(e["user_id"]), e.get("course_section_id")
        if sid is None or int(sid) in users_by_section and uid in users_by_section[int(sid)]:
            continue
        seats[uid].append((int(sid), student_sis_id(e)))
        users_by_section[int(sid)].add(uid)

    assignments: dict[int, tuple[dict, dict]] = {}
    for g in bundle.get("assignment_groups") or []:
        for a in g.get("assignments") or []:
            if rules.is_sendable(a):
                assignments[int(a["id"])] = (a, g)
    return course, course_id, weighted, sections, seats, users_by_section, assignments


# Columns that depend only on the line item (assignment × section), and those of each grade.
_LINE_ITEM_COLUMNS = (
    "canvas_course_id",
    "sis_course_id",
    "canvas_section_id",
    "aspen_class_id",
    "assignment_id",
    "assignment_name",
    "group_id",
    "group_name",
    "group_weight",
    "course_weighted",
    "points_possible",
    "grading_type",
    "due_at",
    "assign_date",
    "grading_period_id",
    "grading_period_locked",
    "line_item_id",
)


class _Columns:
    """The rows of a shard as columns: one entry per line item in ``items``, and per row the
    index of its line item plus the grade's own values."""

    def __init__(self) -> None:
        self.items: dict[str, list[Any]] = {c: [] for c in _LINE_ITEM_COLUMNS}
        self.item: list[int] = []
        self.user: list[int] = []
        self.sis: list[str | None] = []
        self.grade: list[rules.Grade] = []
        self.graded_at: list[Any] = []
        self.bucket: list[Bucket] = []


def _course_columns(
    bundle: dict[str, Any], periods: list[rules.GradingPeriod], tz: str, out: _Columns
) -> None:
    """The rows of one course (``bundle``: the raw Canvas answers ``course``, ``sections``,
    ``enrollments``, ``assignment_groups`` with assignments and overrides, ``submissions``) as
    columns: what depends only on the line item is worked out once per line item, not once
    per grade (``tests/unit/rows_reference.py`` states the same rows one dict per grade)."""
    course, course_id, weighted, sections, seats, users_by_section, assignments = _course_parts(bundle)
    items: dict[tuple[int, int], int] = {}
    table = out.items

    def item(a: dict, g: dict, section_id: int) -> int:
        key = (int(a["id"]), section_id)
        k = items.get(key)
        if k is None:
            due = rules.section_due_at(a, section_id, users_by_section[section_id])
            period = rules.grading_period_for(due, periods, tz)
            k = items[key] = len(table["line_item_id"])
            for column, value in (
                ("canvas_course_id", course_id),
                ("sis_course_id", sis_id(course.get("sis_course_id"))),
                ("canvas_section_id", section_id),
                ("aspen_class_id", sis_id((sections.get(section_id) or {}).get("sis_section_id"))),
                ("assignment_id", int(a["id"])),
                ("assignment_name", str(a.get("name") or "")),
                ("group_id", int(g["id"])),
                ("group_name", str(g.get("name") or "")),
                ("group_weight", _number(g.get("group_weight"))),
                ("course_weighted", weighted),
                ("points_possible", _number(a.get("points_possible"))),
                ("grading_type", a.get("grading_type")),
                ("due_at", rules.parse_instant(due)),
                (
                    "assign_date",
                    rules.parse_instant(a.get("unlock_at")) or rules.parse_instant(a.get("created_at")),
                ),
                ("grading_period_id", period.sourced_id if period else None),
                ("grading_period_locked", period.locked if period else None),
                ("line_item_id", ids.line_item_id(a["id"], section_id)),
            ):
                table[column].append(value)
        return k

    for sub in bundle.get("submissions") or []:
        found = assignments.get(int(sub.get("assignment_id") or 0))
        if found is None:
            continue
        a, g = found
        uid = int(sub["user_id"])
        grade = rules.grade_of(sub)
        bucket = rules.initial_bucket(grade, sub)
        for section_id, sis_user in seats.get(uid, []):
            if not rules.is_assigned(a, section_id, uid):
                continue
            out.item.append(item(a, g, section_id))
            out.user.append(uid)
            out.sis.append(sis_user)
            out.grade.append(grade)
            out.graded_at.append(sub.get("graded_at"))
            out.bucket.append(bucket)


def _instants(values: list[Any]) -> list[Any]:
    """``rules.parse_instant`` of each value, each distinct text parsed once."""
    parsed: dict[Any, Any] = {}
    out = []
    for value in values:
        try:
            hit = parsed.get(value, parsed)
        except TypeError:  # not hashable: parse it as it is
            out.append(rules.parse_instant(value))
            continue
        if hit is parsed:
            hit = parsed[value] = rules.parse_instant(value)
        out.append(hit)
    return out


def build_rows(bundles: list[dict[str, Any]], periods: list[rules.GradingPeriod], tz: str) -> pd.DataFrame:
    """The rows frame of a shard, with stable ``row_id``s and typed columns, built column by
    column (a district shard has ~60k rows; one dict per row cost ~25 s per district night).
    ``tests/unit/test_rows_columns.py`` checks it against the one-dict-per-grade statement in
    ``tests/unit/rows_reference.py``."""
    cols = _Columns()
    for b in bundles:
        _course_columns(b, periods, tz, cols)
    data: dict[str, list[Any]] = {}
    for column, values in cols.items.items():
        data[column] = [values[k] for k in cols.item]
    line_items = data["line_item_id"]
    data.update(
        {
            "canvas_user_id": cols.user,
            "student_sis_id": cols.sis,
            "score_raw": [g.score_raw for g in cols.grade],
            "score": [g.score for g in cols.grade],
            "score_status": [g.score_status for g in cols.grade],
            "canvas_status": [g.canvas_status for g in cols.grade],
            "graded_at": _instants(cols.graded_at),
            "result_id": [
                f"{li}-u{uid}" for li, uid in zip(line_items, cols.user, strict=True)
            ],  # ids.result_id
            "bucket": cols.bucket,
        }
    )
    if cols.item:
        df = pd.DataFrame({c: data[c] for c in COLUMNS[1:]}, columns=COLUMNS[1:])
    else:  # the dtypes of an empty frame (as ``pd.DataFrame.from_records`` gives them)
        df = pd.DataFrame.from_records([], columns=COLUMNS[1:])
    df.insert(0, "row_id", range(len(df)))
    for col in ("due_at", "assign_date", "graded_at"):
        df[col] = pd.to_datetime(df[col], utc=True)
    for col in ("score", "points_possible", "group_weight"):
        df[col] = df[col].astype("float64")
    return df


# --- malformed answers (a bad value fails its own course, never the run silently) ------

_ENDPOINT = {
    "course": "get_course",
    "sections": "list_sections",
    "enrollments": "list_student_enrollments",
    "assignment_groups": "list_assignment_groups",
    "submissions": "list_submissions",
}


def _id_ok(value: Any) -> bool:
    """A Canvas id: an integer (not a bool), or the digits of one."""
    if isinstance(value, bool):
        return False
    return isinstance(value, int) or (isinstance(value, str) and value.strip().isdigit())


def check_bundle(bundle: dict[str, Any]) -> None:
    """The ids ``build_rows`` needs, present and well formed in one course's Canvas answers;
    else a ``ValueError`` naming the endpoint and the field. Every other field may be as messy
    as it likes (the gate holds such grades back), but a grade without a usable id cannot even
    be counted: its whole course fails, loudly, instead of crashing the shard."""

    def bad(part: str, what: str, value: Any) -> None:
        raise ValueError(f"Canvas {_ENDPOINT[part]}: {what} ({str(value)[:60]!r})")

    course = bundle.get("course")
    if not isinstance(course, dict) or not _id_ok(course.get("id")):
        bad("course", "no usable course id", course if not isinstance(course, dict) else course.get("id"))
    for s in bundle.get("sections") or []:
        if not isinstance(s, dict) or not _id_ok(s.get("id")):
            bad("sections", "a section without a usable id", s)
    for e in bundle.get("enrollments") or []:
        if not isinstance(e, dict) or not _id_ok(e.get("user_id")):
            bad("enrollments", "an enrollment without a usable user_id", e)
        if e.get("course_section_id") is not None and not _id_ok(e["course_section_id"]):
            bad("enrollments", "an enrollment with a malformed course_section_id", e["course_section_id"])
    for g in bundle.get("assignment_groups") or []:
        if not isinstance(g, dict) or not _id_ok(g.get("id")):
            bad("assignment_groups", "an assignment group without a usable id", g)
        if not isinstance(g.get("assignments") or [], list):
            bad("assignment_groups", "assignments is not a list", g.get("assignments"))
        for a in g.get("assignments") or []:
            if not isinstance(a, dict) or not _id_ok(a.get("id")):
                bad("assignment_groups", "an assignment without a usable id", a)
            overrides = a.get("overrides") or []
            if not isinstance(overrides, list) or not all(
                isinstance(o, dict) and isinstance(o.get("student_ids") or [], list) for o in overrides
            ):
                bad("assignment_groups", f"assignment {a['id']}: malformed overrides", overrides)
    for sub in bundle.get("submissions") or []:
        if (
            not isinstance(sub, dict)
            or not _id_ok(sub.get("user_id"))
            or not _id_ok(sub.get("assignment_id"))
        ):
            bad("submissions", "a submission without a usable user_id and assignment_id", sub)
