"""The teacher digest: each teacher learns what to fix in their own courses.

Input: a run's report (``report.json``: its findings, course table and category setup sheet)
and each course's teachers as extract read them from Canvas (id, name, email). Output: one
digest per teacher covering all their courses, with each finding a teacher can act on in
plain words and how to fix it, and the courses no teacher can be told about (for the data
team's list in the report).

Every finding kind has an audience (:data:`AUDIENCE`): ``teacher`` (the teacher can fix it
in Canvas or Aspen), ``info`` (the teacher should know, nothing is wrong: hidden grades) or
``data_team`` (only the data team can fix it; it stays in the report). A kind without an
audience goes to the data team, and ``tests/unit/test_digest.py`` fails until it is given one.

Per-grade findings are counted per assignment; over-max, negative and text scores also list
the SIS ids of the teacher's own students (never a name). The fingerprint of a digest covers
what the teacher can act on (not the wording, not the information): a digest goes out only
when it changed since the last one sent, or that one is older than the resend interval.

Pure: no Airflow, no I/O besides the Jinja templates of the package.
"""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

from canvas_aspen.findings import KINDS

TEACHER, INFO, DATA_TEAM = "teacher", "info", "data_team"

AUDIENCE: dict[str, str] = {
    # the teacher fixes these in Canvas (or creates the category in Aspen)
    "category_mismatch": TEACHER,
    "category_case_mismatch": TEACHER,
    "over_max": TEACHER,
    "negative_score": TEACHER,
    "non_numeric_score": TEACHER,
    "no_points_possible": TEACHER,
    "no_due_date": TEACHER,
    "no_grading_period": TEACHER,
    "locked_grading_period": TEACHER,
    "unweighted_group": TEACHER,
    "weight_mismatch": TEACHER,
    "imported_assignments_group": TEACHER,
    "aspen_edited": TEACHER,
    "cleared_in_canvas": TEACHER,
    "hidden_in_canvas": TEACHER,
    "column_code_collision": TEACHER,
    # the teacher should know; nothing to fix
    "hidden_grades": INFO,
    # only the data team can fix these: they stay in the report
    "student_without_sis_id": DATA_TEAM,
    "section_without_sis_id": DATA_TEAM,
    "student_not_in_aspen_class": DATA_TEAM,
    "ambiguous_student": DATA_TEAM,
    "aspen_rejected": DATA_TEAM,
    "verify_mismatch": DATA_TEAM,
    "orphaned_line_item": DATA_TEAM,
}

PER_GRADE = {
    "over_max",
    "negative_score",
    "non_numeric_score",
    "aspen_edited",
    "cleared_in_canvas",
    "hidden_in_canvas",
}
"""Kinds with one finding per grade: counted per assignment."""
WITH_STUDENTS = {"over_max", "negative_score", "non_numeric_score"}
"""Per-grade kinds whose students the teacher needs to find the grade: SIS ids (never names)."""
PER_GROUP = {
    "category_mismatch",
    "category_case_mismatch",
    "unweighted_group",
    "weight_mismatch",
    "imported_assignments_group",
}
"""Kinds about a Canvas assignment group; the others are about an assignment."""


def audience(kind: str) -> str:
    """Who can act on a finding of this kind; an unclassified kind stays with the data team."""
    return AUDIENCE.get(kind, DATA_TEAM)


def unclassified_kinds() -> set[str]:
    return set(KINDS) - set(AUDIENCE)


# ---------------------------------------------------------------------------- plain words


def _q(text: Any) -> str:
    return f"“{text}”"


def _num(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _classes(item: dict[str, Any]) -> str:
    classes = item["aspen_class_ids"]
    if not classes:
        return ""
    return (" (Aspen class " if len(classes) == 1 else " (Aspen classes ") + ", ".join(classes) + ")"


def _plural(n: int, one: str, many: str | None = None) -> str:
    return f"{n} {one if n == 1 else (many or one + 's')}"


def _words(item: dict[str, Any]) -> tuple[str, str]:
    """(what is wrong, how to fix it) in plain words for one item."""
    k, a, g, n = item["kind"], _q(item["assignment_name"]), _q(item["group_name"]), item["count"]
    if k == "category_mismatch":
        fix = (
            "In Aspen, for each class below: open the class → Categories → Options → Add; Code as shown "
            "(letters, digits and dashes, at most 20 characters); Description exactly the Canvas group name "
            f"{g}; the weight as shown. The grades of this group go the night after."
        )
        if item["suggestion"]:
            fix += (
                f" If the existing category {_q(item['suggestion'])} is meant for this group, rename its "
                f"Description to {g} instead (or rename the Canvas group to match it)."
            )
        return (
            f"The Canvas assignment group {g} has no Aspen category{_classes(item)}: "
            "its grades are held back.",
            fix,
        )
    if k == "category_case_mismatch":
        return (
            f"The Canvas group {g} matches its Aspen category{_classes(item)} only up to capital letters or "
            "spaces. Its grades still go.",
            "Make the two names read exactly the same (the Canvas group name, or the category's Description "
            "in Aspen).",
        )
    if k == "over_max":
        return (
            f"{_plural(n, 'score')} on {a} above the maximum of {_num(item['limit'])} points: held back "
            "(Aspen refuses them).",
            "Correct the score in the Canvas gradebook, or raise the assignment's points possible if extra "
            "credit is meant. The grade goes the night after.",
        )
    if k == "negative_score":
        return (
            f"{_plural(n, 'negative score')} on {a}: held back.",
            "Correct the score in the Canvas gradebook (0 or more).",
        )
    if k == "non_numeric_score":
        return (
            f"{_plural(n, 'grade')} on {a} that {'is' if n == 1 else 'are'} not a number: held back "
            "(Aspen takes numbers only).",
            "Enter a number of points as the score in the Canvas gradebook.",
        )
    if k == "no_points_possible":
        return (
            f"{a} has no points possible{_classes(item)}: its grades are held back.",
            "Edit the assignment in Canvas and set Points above 0.",
        )
    if k == "no_due_date":
        return (
            f"{a} has no due date{_classes(item)}: its grades are held back (Aspen files a grade in the "
            "grading period of its due date).",
            "Edit the assignment in Canvas and give it a due date (for every section it is assigned to).",
        )
    if k == "no_grading_period":
        return (
            f"The due date of {a} ({item['when'] or item['value']}) is in no Aspen grading period"
            f"{_classes(item)}: its grades are held back.",
            "Check the due date in Canvas (a wrong year or month?) and correct it.",
        )
    if k == "locked_grading_period":
        return (
            f"{a} is due in grading period {item['value']}, which is closed in Aspen{_classes(item)}: its "
            "grades are held back.",
            "If the due date is wrong, correct it in Canvas. If the grades belong in that closed period, ask "
            "your school's Aspen administrator to reopen it.",
        )
    if k == "unweighted_group":
        return (
            f"The Canvas group {g} has no weight, but the course weights its assignment groups. Its grades "
            "still go.",
            "In Canvas → Assignments, give the group its weight (⋮ → Edit → weight), as the Aspen category "
            "has it.",
        )
    if k == "weight_mismatch":
        return (
            f"The Canvas group {g} weighs {_num(item['value'])}% but its Aspen category{_classes(item)} "
            f"weighs {_num(item['limit'])}%. Its grades still go.",
            "Make the two weights the same (in Canvas, or in the Aspen category).",
        )
    if k == "imported_assignments_group":
        return (
            f"The group {g} (Canvas's group for imported assignments) holds assignments that go to Aspen.",
            "Move each of them into the assignment group it belongs to (in Canvas, drag it on the "
            "Assignments page).",
        )
    if k == "aspen_edited":
        return (
            f"{_plural(n, 'grade')} on {a} {'was' if n == 1 else 'were'} changed by hand in Aspen and now "
            "differ from Canvas. Aspen keeps the hand-entered value.",
            "If the Aspen value is right, enter it in Canvas too; a later change in Canvas replaces it.",
        )
    if k == "cleared_in_canvas":
        return (
            f"{_plural(n, 'grade')} on {a} {'was' if n == 1 else 'were'} cleared in Canvas after being sent; "
            "Aspen still shows the earlier value.",
            "If the grade should not count, remove it in Aspen's gradebook by hand; otherwise enter it in "
            "Canvas again.",
        )
    if k == "hidden_in_canvas":
        return (
            f"{_plural(n, 'grade')} on {a} {'was' if n == 1 else 'were'} hidden from students in Canvas "
            "after being sent; Aspen still shows the earlier value (parents may see it there).",
            "Post the grades again in Canvas when they are final (they go the night after), or remove them "
            "in Aspen's gradebook by hand.",
        )
    if k == "column_code_collision":
        return (
            f"{a} starts with the same 10 characters as another assignment, so it was sent to Aspen as "
            f"{_q(item['value'])}{_classes(item)} (Aspen names its gradebook columns by the first 10). Its "
            "grades still go.",
            "Optional: rename one of the two in Canvas so that their first 10 characters differ.",
        )
    if k == "hidden_grades":
        return (
            f"{_plural(n, 'grade')} on {a} {'is' if n == 1 else 'are'} hidden from students in Canvas "
            "(manual posting policy) and not sent to Aspen yet.",
            "Nothing to fix: they go to Aspen the night after you post them in Canvas.",
        )
    message = item["message"] or k.replace("_", " ")
    return message, item["suggestion"] or ""


# ---------------------------------------------------------------------------- items


def _count(f: dict[str, Any]) -> int:
    """Grades a finding stands for: 1, or the count an aggregated (per-assignment) finding carries."""
    value = f.get("value")
    if f["kind"] not in PER_GRADE and isinstance(value, int) and not isinstance(value, bool):
        return value
    return 1


def local_time(value: Any, timezone_name: str | None) -> str:
    """An instant as a teacher reads it, in the district's time zone ("Aug 27, 2026, 11:59 PM");
    anything that is not an ISO instant as it came."""
    try:
        when = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return str(value)
    if timezone_name and when.tzinfo is not None:
        from zoneinfo import ZoneInfo

        when = when.astimezone(ZoneInfo(timezone_name))
    return f"{when:%b} {when.day}, {when.year}, {when:%I:%M %p}".replace(", 0", ", ")


def course_items(
    findings: list[dict[str, Any]],
    sheet: list[dict[str, Any]],
    canvas_url: str | None = None,
    timezone_name: str | None = None,
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(the items a teacher can act on, the information items) of one course's findings,
    one item per kind and assignment (or group), most urgent first."""
    setup = {(s["aspen_class_id"], c["description"]): c for s in sheet for c in s["categories"]}
    groups: dict[tuple, list[dict[str, Any]]] = defaultdict(list)
    for f in findings:
        who = audience(f["kind"])
        if who == DATA_TEAM:
            continue
        subject = (
            ("group", f.get("group_name"))
            if f["kind"] in PER_GROUP
            else ("assignment", f.get("assignment_id"))
        )
        groups[(who, f["kind"], *subject)].append(f)
    actionable, info = [], []
    for (who, kind, what, _), fs in groups.items():
        first = fs[0]
        classes = sorted({str(f["aspen_class_id"]) for f in fs if f.get("aspen_class_id")})
        item: dict[str, Any] = {
            "kind": kind,
            "assignment_id": first.get("assignment_id") if what == "assignment" else None,
            "assignment_name": first.get("assignment_name"),
            "group_name": first.get("group_name"),
            "aspen_class_ids": classes,
            "count": sum(_count(f) for f in fs),
            "students": sorted(
                {
                    (str(f["student_sis_id"]), _num(f.get("value")))
                    for f in fs
                    if kind in WITH_STUDENTS and f.get("student_sis_id")
                }
            ),
            "value": first.get("value"),
            "limit": first.get("limit"),
            "suggestion": first.get("suggestion"),
            "message": first.get("message"),
            "setup": [],
            "link": None,
        }
        if kind == "category_mismatch":
            for c in classes:
                row = setup.get((c, str(first.get("group_name") or "").strip()))
                if row:
                    item["setup"].append({"aspen_class_id": c, **row})
        if canvas_url and first.get("canvas_course_id") is not None:
            base = f"{canvas_url.rstrip('/')}/courses/{int(first['canvas_course_id'])}"
            item["link"] = (
                f"{base}/assignments/{int(item['assignment_id'])}"
                if item["assignment_id"]
                else f"{base}/assignments"
            )
        item["when"] = local_time(item["value"], timezone_name) if kind == "no_grading_period" else None
        item["problem"], item["fix"] = _words(item)
        (actionable if who == TEACHER else info).append(item)
    order = {k: n for n, k in enumerate(KINDS)}
    key = lambda i: (order.get(i["kind"], len(order)), str(i["assignment_name"] or i["group_name"]))  # noqa: E731
    return sorted(actionable, key=key), sorted(info, key=key)


def _essence(item: dict[str, Any], course_id: int) -> list[Any]:
    """What an item says, without its wording: what the fingerprint covers."""
    return [
        course_id,
        item["kind"],
        item["assignment_id"],
        item["group_name"],
        item["aspen_class_ids"],
        item["count"],
        [list(s) for s in item["students"]],
        item["value"],
        item["limit"],
    ]


def fingerprint(courses: list[dict[str, Any]]) -> str:
    essence = sorted(
        json.dumps(_essence(i, c["canvas_course_id"]), default=str, sort_keys=True)
        for c in courses
        for i in c["fixes"]
    )
    return hashlib.sha256("\n".join(essence).encode()).hexdigest()


# ---------------------------------------------------------------------------- digests


@dataclass
class Digest:
    """One teacher's digest: their courses, each with what to fix and what to know."""

    teacher_id: int
    name: str | None
    email: str
    courses: list[dict[str, Any]]
    fingerprint: str
    actionable: int
    info: int
    run_id: str
    dry_run: bool = False
    reason: str | None = None  # why it goes now: first, changed, reminder, all_clear
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def course_ids(self) -> list[int]:
        return [c["canvas_course_id"] for c in self.courses]

    @property
    def subject(self) -> str:
        if not self.actionable:
            return "Grade passback: nothing left to fix in your Canvas courses"
        n = len([c for c in self.courses if c["fixes"]])
        return (
            f"Grade passback: {_plural(self.actionable, 'thing')} to fix in "
            f"{'your Canvas course' if n == 1 else f'{n} of your Canvas courses'}"
        )


def _by_course(findings: list[dict[str, Any]]) -> dict[int, list[dict[str, Any]]]:
    out: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for f in findings:
        if f.get("canvas_course_id") is not None:
            out[int(f["canvas_course_id"])].append(f)
    return out


def _course_entry(
    course_id: int,
    report_course: dict[str, Any] | None,
    info: dict[str, Any],
    items: list,
    notes: list,
    canvas_url: str | None,
) -> dict[str, Any]:
    return {
        "canvas_course_id": course_id,
        "name": info.get("name") or f"Canvas course {course_id}",
        "sis_course_id": (report_course or {}).get("sis_course_id") or info.get("sis_course_id"),
        "aspen_class_ids": (report_course or {}).get("aspen_class_ids") or [],
        "url": f"{canvas_url.rstrip('/')}/courses/{course_id}" if canvas_url else None,
        "fixes": items,
        "notes": notes,
    }


def build_digests(
    report: dict[str, Any],
    teachers: dict[int, list[dict[str, Any]] | None],
    *,
    course_info: dict[int, dict[str, Any]] | None = None,
    canvas_url: str | None = None,
    timezone_name: str | None = None,
) -> list[Digest]:
    """One digest per teacher with an email, over every course of theirs this run read
    (``teachers``: Canvas course id -> its teachers, None when Canvas would not list them)."""
    course_info = course_info or {}
    findings = _by_course(report.get("findings") or [])
    sheet = report.get("setup_sheet") or []
    table = {int(c["canvas_course_id"]): c for c in report.get("courses") or []}
    per_teacher: dict[int, dict[str, Any]] = {}
    for course_id in sorted(teachers):
        items, notes = course_items(findings.get(course_id, []), sheet, canvas_url, timezone_name)
        entry = _course_entry(
            course_id, table.get(course_id), course_info.get(course_id, {}), items, notes, canvas_url
        )
        for t in teachers[course_id] or []:
            email = (t.get("email") or "").strip()
            if not email or t.get("id") is None:
                continue
            me = per_teacher.setdefault(int(t["id"]), {"name": t.get("name"), "email": email, "courses": []})
            me["courses"].append(entry)
    out = []
    for teacher_id, me in sorted(per_teacher.items()):
        courses = sorted(me["courses"], key=lambda c: (c["name"], c["canvas_course_id"]))
        out.append(
            Digest(
                teacher_id=teacher_id,
                name=me["name"],
                email=me["email"],
                courses=courses,
                fingerprint=fingerprint(courses),
                actionable=sum(len(c["fixes"]) for c in courses),
                info=sum(len(c["notes"]) for c in courses),
                run_id=str(report.get("run_id")),
                dry_run=bool(report.get("dry_run")),
            )
        )
    return out


def courses_without_teacher_email(
    report: dict[str, Any], teachers: dict[int, list[dict[str, Any]] | None]
) -> list[dict[str, Any]]:
    """The data team's list: courses of this run that no teacher digest reaches, with why and
    how many things to fix they hold (those stay in the report only)."""
    findings = _by_course(report.get("findings") or [])
    table = {int(c["canvas_course_id"]): c for c in report.get("courses") or []}
    out = []
    for course_id in sorted(teachers):
        listed = teachers[course_id]
        if listed is None:
            why = "Canvas did not list the course's teachers"
        elif not listed:
            why = "no teacher enrolled in Canvas"
        elif not any((t.get("email") or "").strip() for t in listed):
            why = "no teacher of the course has an email address in Canvas"
        else:
            continue
        items, _ = course_items(findings.get(course_id, []), [])
        out.append(
            {
                "canvas_course_id": course_id,
                "sis_course_id": table.get(course_id, {}).get("sis_course_id"),
                "reason": why,
                "teacher_findings": len(items),
            }
        )
    return out


def due(d: Digest, last: dict[str, Any] | None, *, now: datetime, resend_after: timedelta) -> str | None:
    """Why this digest goes out now, or None. ``last``: the last digest sent to the teacher
    (its ``fingerprint``, ``findings`` count and ``sent_at``), None if never.

    * first: nothing was ever sent and there is something to fix;
    * changed: what there is to fix differs from what the last digest said;
    * all_clear: everything the last digest listed is fixed (said once);
    * reminder: the same things to fix, and the last digest is older than ``resend_after``.
    """
    if last is None:
        return "first" if d.actionable else None
    if last["fingerprint"] != d.fingerprint:
        return "changed" if d.actionable else "all_clear"
    if d.actionable and now - last["sent_at"] >= resend_after:
        return "reminder"
    return None


# ---------------------------------------------------------------------------- rendering

_env = Environment(
    loader=PackageLoader("canvas_aspen", "templates"),
    undefined=StrictUndefined,
    autoescape=select_autoescape(enabled_extensions=("html.j2",), default=False),
    trim_blocks=True,
    lstrip_blocks=True,
    keep_trailing_newline=True,
)

REASONS = {
    "first": "This is your first digest: the passback found the things below.",
    "changed": "What there is to fix has changed since your last digest.",
    "all_clear": "Everything your last digest listed is fixed. Thank you!",
    "reminder": "A reminder: these are still waiting since your last digest.",
    None: "",
}


def render(d: Digest) -> tuple[str, str]:
    """(plain text, HTML) of one digest."""
    ctx = {"d": d, "reason": REASONS.get(d.reason, "")}
    return _env.get_template("digest.txt.j2").render(ctx), _env.get_template("digest.html.j2").render(ctx)
