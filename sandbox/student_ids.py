"""A district whose Aspen does not use the student number as its users' sourcedId.

Many districts roster Canvas with the student number (Canvas ``sis_user_id``), which Aspen
exposes as a roster user's ``identifier``, while Aspen's own ``sourcedId`` is an Aspen id
(``std_000123``). :func:`aspen_style_student_ids` turns any scenario into such a district:
the Canvas side stays as it is; on the Aspen side every student gets an Aspen-style
sourcedId, ``identifier`` = the student number, a ``username`` and an ``email``; class
rosters and the results Aspen already holds name the new sourcedIds. A client that posts
the student number as the result's student is then refused (the student is not on the
class roster), as a real Aspen refuses it.
"""

from __future__ import annotations

import copy
from typing import Any

PREFIX = "std_"


def aspen_student_id(n: int) -> str:
    return f"{PREFIX}{n:06d}"


def aspen_style_student_ids(scenario: dict[str, Any], *, start: int = 100) -> dict[str, Any]:
    """A copy of ``scenario`` whose Aspen students have Aspen-style sourcedIds.

    Deterministic: the student numbers (every one on an Aspen roster, in any Canvas user's
    ``sis_user_id``, or in ``aspen.students``) are numbered in sorted order from ``start``.
    The copy's ``aspen.student_ids`` maps each student number to its Aspen sourcedId (for
    tests and the expected state)."""
    out = copy.deepcopy(scenario)
    aspen, canvas = out["aspen"], out["canvas"]
    names = {
        str(u["sis_user_id"]): u.get("name", "") for u in canvas.get("users", []) if u.get("sis_user_id")
    }
    known = {str(u["sourcedId"]): u for u in aspen.get("students", [])}
    numbers = sorted({*names, *known, *(sid for c in aspen["classes"] for sid in c.get("roster", []))})
    mapping = {number: aspen_student_id(start + k) for k, number in enumerate(numbers)}
    students = []
    for number in numbers:
        first, _, last = names.get(number, "").partition(" ")
        user = {"givenName": first or "Student", "familyName": last or number}
        user.update({k: v for k, v in known.get(number, {}).items() if k != "sourcedId"})
        user.update(
            sourcedId=mapping[number],
            identifier=number,
            username=f"{number.lower()}.student",
            email=f"{number.lower()}@students.example.org",
        )
        students.append(user)
    aspen["students"] = students
    for c in aspen["classes"]:
        c["roster"] = [mapping[sid] for sid in c.get("roster", [])]
    for r in aspen.get("results", []):
        student = r.get("student")
        if isinstance(student, dict) and student.get("sourcedId") in mapping:
            student["sourcedId"] = mapping[student["sourcedId"]]
        elif isinstance(student, str) and student in mapping:
            r["student"] = mapping[student]
    aspen["student_ids"] = mapping
    out["name"] = f"{scenario.get('name', 'scenario')}-aspen-ids"
    return out
