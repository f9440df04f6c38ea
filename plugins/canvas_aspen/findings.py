"""The fixed vocabulary of finding kinds, and the one way to make a finding.

Every finding names its rule (R1-R22 of domain.md) and a severity: ``error`` means the
grade was held back or failed; ``warning`` means it is reported and the grade still goes;
``info`` means it is reported and nothing is wrong (R20's hidden grades: they go once posted).
Findings never carry a student's name: students appear by SIS id only.
"""

from __future__ import annotations

from typing import Any

# kind -> (rule, severity, urgency rank: lower is more urgent in reports)
KINDS: dict[str, tuple[str, str, int]] = {
    "verify_mismatch": ("R18", "error", 0),
    "aspen_rejected": ("R17", "error", 1),
    "over_max": ("R5", "error", 2),
    "category_mismatch": ("R2", "error", 3),
    "non_numeric_score": ("R4", "error", 4),
    "negative_score": ("R4", "error", 5),
    "no_points_possible": ("R5", "error", 6),
    "no_due_date": ("R15", "error", 7),
    "no_grading_period": ("R15", "error", 8),
    "locked_grading_period": ("R15", "error", 9),
    "student_without_sis_id": ("R16", "error", 10),
    "section_without_sis_id": ("R16", "error", 11),
    "student_not_in_aspen_class": ("R16", "error", 12),
    "ambiguous_student": ("R22", "error", 12),
    "aspen_edited": ("R9", "warning", 13),
    "cleared_in_canvas": ("R7", "warning", 14),
    "orphaned_line_item": ("R10", "warning", 15),
    "category_case_mismatch": ("R2", "warning", 16),
    "weight_mismatch": ("R13", "warning", 17),
    "unweighted_group": ("R13", "warning", 18),
    "imported_assignments_group": ("R14", "warning", 19),
    "column_code_collision": ("R21", "warning", 20),
    "hidden_in_canvas": ("R20", "warning", 21),
    "hidden_grades": ("R20", "info", 22),
}

FIELDS = (
    "rule",
    "kind",
    "severity",
    "canvas_course_id",
    "aspen_class_id",
    "assignment_id",
    "assignment_name",
    "group_name",
    "student_sis_id",
    "value",
    "limit",
    "message",
    "suggestion",
)


def finding(kind: str, message: str, **fields: Any) -> dict[str, Any]:
    """A finding dict with every report field present (absent ones are None)."""
    if kind not in KINDS:
        raise ValueError(f"unknown finding kind {kind!r}")
    unknown = set(fields) - set(FIELDS)
    if unknown:
        raise ValueError(f"unknown finding fields {sorted(unknown)}")
    rule, severity, _ = KINDS[kind]
    out = dict.fromkeys(FIELDS)
    out.update(fields, rule=rule, kind=kind, severity=severity, message=message)
    return out


def urgency(kind: str) -> int:
    return KINDS[kind][2]
