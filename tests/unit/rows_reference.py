"""The test oracle of ``canvas_aspen.rows.build_rows``: the rows frame stated plainly, one
dict per grade (``tests/unit/test_rows_columns.py`` compares the two).

Production builds the frame column by column (``rows.build_rows``, for speed); this is the
plain statement of what it must compute. It shares with production only the parsing of a
course's answers (``rows._course_parts``) and the value helpers, not the per-grade rules'
order or the line-item caching.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from canvas_aspen import ids, rules
from canvas_aspen.rows import COLUMNS, _course_parts, _number, sis_id


def course_rows(bundle: dict[str, Any], periods: list[rules.GradingPeriod], tz: str) -> list[dict[str, Any]]:
    """The rows of one course. ``bundle`` holds the raw Canvas answers: ``course``,
    ``sections``, ``enrollments``, ``assignment_groups`` (with assignments and
    overrides) and ``submissions``."""
    course, course_id, weighted, sections, seats, users_by_section, assignments = _course_parts(bundle)

    line_item_facts: dict[tuple[int, int], tuple] = {}

    def facts(a: dict, section_id: int) -> tuple:
        key = (int(a["id"]), section_id)
        if key not in line_item_facts:
            due = rules.section_due_at(a, section_id, users_by_section[section_id])
            period = rules.grading_period_for(due, periods, tz)
            line_item_facts[key] = (
                rules.parse_instant(due),
                rules.parse_instant(a.get("unlock_at")) or rules.parse_instant(a.get("created_at")),
                period.sourced_id if period else None,
                period.locked if period else None,
            )
        return line_item_facts[key]

    out: list[dict[str, Any]] = []
    for sub in bundle.get("submissions") or []:
        found = assignments.get(int(sub.get("assignment_id") or 0))
        if found is None:
            continue
        a, g = found
        uid = int(sub["user_id"])
        grade = rules.grade_of(sub)
        for section_id, sis_user in seats.get(uid, []):
            if not rules.is_assigned(a, section_id, uid):
                continue
            due, assign_date, period_id, locked = facts(a, section_id)
            out.append(
                {
                    "canvas_course_id": course_id,
                    "sis_course_id": sis_id(course.get("sis_course_id")),
                    "canvas_section_id": section_id,
                    "aspen_class_id": sis_id((sections.get(section_id) or {}).get("sis_section_id")),
                    "canvas_user_id": uid,
                    "student_sis_id": sis_user,
                    "assignment_id": int(a["id"]),
                    "assignment_name": str(a.get("name") or ""),
                    "group_id": int(g["id"]),
                    "group_name": str(g.get("name") or ""),
                    "group_weight": _number(g.get("group_weight")),
                    "course_weighted": weighted,
                    "points_possible": _number(a.get("points_possible")),
                    "grading_type": a.get("grading_type"),
                    "due_at": due,
                    "assign_date": assign_date,
                    "grading_period_id": period_id,
                    "grading_period_locked": locked,
                    "score_raw": grade.score_raw,
                    "score": grade.score,
                    "score_status": grade.score_status,
                    "canvas_status": grade.canvas_status,
                    "graded_at": rules.parse_instant(sub.get("graded_at")),
                    "line_item_id": ids.line_item_id(a["id"], section_id),
                    "result_id": ids.result_id(a["id"], section_id, uid),
                    "bucket": rules.initial_bucket(grade, sub),
                }
            )
    return out


def build_rows_reference(
    bundles: list[dict[str, Any]], periods: list[rules.GradingPeriod], tz: str
) -> pd.DataFrame:
    """``rows.build_rows`` from ``course_rows``, one dict per row."""
    records = [r for b in bundles for r in course_rows(b, periods, tz)]
    df = pd.DataFrame.from_records(records, columns=COLUMNS[1:])
    df.insert(0, "row_id", range(len(df)))
    for col in ("due_at", "assign_date", "graded_at"):
        df[col] = pd.to_datetime(df[col], utc=True)
    for col in ("score", "points_possible", "group_weight"):
        df[col] = df[col].astype("float64")
    return df
