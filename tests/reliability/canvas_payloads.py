"""Hypothesis strategies: one Canvas course as extract stores it (``canvas.json``), with
messy values everywhere, and for every (assignment, student, section) what it must become.

The label is decided while drawing, from the domain rules (domain.md §3), not from the
pipeline's code: ``absent`` (R1/R3: not a grade the run considers), ``empty`` (R7), ``good``
(must reach Aspen) or ``bad`` (must be held back with a finding). Ids stay well formed
here (a malformed id is a malformed answer: ``test_malformed.py``); every other field may be
null, missing, of the wrong type, non-finite, huge, Unicode, HTML or over long.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from hypothesis import strategies as st

MISSING = object()  # the key is left out
COURSE_ID = 7
SECTIONS = {11: "CLS-A", 12: "CLS-B"}
CATEGORIES = ("Homework", "Tests")
PERIODS = [
    {
        "sourcedId": "GP-Q1",
        "title": "Q1",
        "startDate": "2026-08-31",
        "endDate": "2026-11-06",
        "metadata": {"locked": True},
    },
    {
        "sourcedId": "GP-Q2",
        "title": "Q2",
        "startDate": "2026-11-09",
        "endDate": "2027-01-29",
        "metadata": {"locked": False},
    },
]
TZ = "America/New_York"

GOOD_DUE = ["2026-11-20T04:59:00Z", "2026-12-01T12:00:00+00:00", "2026-12-10", "2027-01-15T23:00:00-05:00"]
BAD_DUE = [
    None,
    MISSING,
    "",
    "garbage",
    "2026-08-28T12:00:00Z",
    "2026-10-01T12:00:00Z",
    12345,
    "2026-13-45T00:00:00Z",
    [],
    {"at": "2026-12-01"},
]
GOOD_POINTS = [10, 20.5, 100, 1_000_000]
BAD_POINTS = [0, -5, None, MISSING, math.nan, math.inf, -math.inf, "10", True, [], 10**400]
BAD_SCORES = [
    math.nan,
    math.inf,
    -math.inf,
    -1,
    -0.001,
    1e308,
    10**400,
    "8",
    "B+",
    "",
    True,
    False,
    [],
    {"v": 1},
]
TEXT = st.one_of(
    st.text(max_size=20),
    st.sampled_from(
        [
            "📚🎉 Homework",
            "<b>Homework</b>",
            "<script>alert(1)</script>",
            "Ünïcödé ✓",
            "Ho mework",
            "Quizzes",
            "H" * 60,
            "Homework " + "x" * 50,
            "  ",
            "\u3000",
            "Homework\u200b",
        ]
    ),
    st.none(),
    st.just(MISSING),
    st.integers(),
    st.floats(allow_nan=True),
)
GOOD_GROUP_NAMES = ["Homework", "Tests", "  Homework  ", "homework", "TESTS", "Tests\n", "HOMEWORK \t"]


def norm(text: Any) -> str:
    """R2: names that differ only in case and white space are the same name."""
    return " ".join(str(text).split()).casefold()


def put(obj: dict, key: str, value: Any) -> dict:
    if value is not MISSING:
        obj[key] = value
    return obj


def number(value: Any) -> float | None:
    """A JSON number Aspen could take, else None."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    try:
        value = float(value)
    except OverflowError:
        return None
    return value if math.isfinite(value) else None


@dataclass
class Course:
    bundle: dict
    labels: dict[tuple[int, int, int], str] = field(
        default_factory=dict
    )  # (assignment, user, section) -> label
    roster: set[str] = field(default_factory=set)


@st.composite
def courses(draw) -> Course:
    section_sis = {}
    sections = []
    for sid, good in SECTIONS.items():
        ok = draw(st.booleans()) or draw(st.booleans())
        value = (
            draw(st.sampled_from([good, f"  {good} "]))
            if ok
            else draw(st.sampled_from([None, MISSING, "", "   ", "NOPE", 7]))
        )
        section_sis[sid] = ok
        section = put(
            {"id": sid, "course_id": COURSE_ID}, "name", draw(TEXT) if draw(st.booleans()) else f"S {sid}"
        )
        sections.append(put(section, "sis_section_id", value))

    users = list(range(101, 101 + draw(st.integers(1, 4))))
    roster = {f"S{u}" for u in users}
    enrollments, seat, sis_ok = [], {}, {}
    for u in users:
        sid = draw(st.sampled_from(list(SECTIONS)))
        seat[u] = sid
        kind = draw(st.sampled_from(["good", "good", "under_user", "padded", "bad"]))
        e = {"user_id": u, "course_section_id": sid, "type": "StudentEnrollment"}
        if kind == "good":
            e["sis_user_id"] = f"S{u}"
        elif kind == "under_user":
            e["user"] = {"id": u, "sis_user_id": f"S{u}"}
        elif kind == "padded":
            e["sis_user_id"] = f" S{u} "
        else:
            put(e, "sis_user_id", draw(st.sampled_from([None, MISSING, "", "S999"])))
        sis_ok[u] = kind != "bad"
        enrollments.append(e)

    groups, assignments, submissions = [], {}, []
    labels: dict[tuple[int, int, int], str] = {}
    next_assignment = iter(range(301, 400))
    for gid in range(201, 201 + draw(st.integers(1, 3))):
        good_name = draw(st.booleans())
        name = draw(st.sampled_from(GOOD_GROUP_NAMES)) if good_name else draw(TEXT)
        name_ok = norm("" if name is None or name is MISSING else name) in {norm(c) for c in CATEGORIES}
        group = put({"id": gid, "position": gid - 200, "assignments": []}, "name", name)
        put(
            group,
            "group_weight",
            draw(st.sampled_from([30, 0, None, MISSING, -5, math.nan, math.inf, "30", 1e308, True])),
        )
        for _ in range(draw(st.integers(0, 3))):
            aid = next(next_assignment)
            published = draw(st.sampled_from([True, True, True, False, None, MISSING, "true", 1]))
            to_sis = draw(st.sampled_from([True, True, True, False, None, MISSING, "false", 1]))
            gtype = draw(
                st.sampled_from(
                    [
                        "points",
                        "percent",
                        "letter_grade",
                        "pass_fail",
                        "gpa_scale",
                        "not_graded",
                        "foo",
                        None,
                        MISSING,
                    ]
                )
            )
            points_ok = draw(st.booleans()) or draw(st.booleans())
            points = draw(st.sampled_from(GOOD_POINTS if points_ok else BAD_POINTS))
            due_ok = draw(st.booleans()) or draw(st.booleans())
            due = draw(st.sampled_from(GOOD_DUE if due_ok else BAD_DUE))
            a = {"id": aid, "assignment_group_id": gid}
            for key, value in (
                ("name", draw(TEXT)),
                ("published", published),
                ("post_to_sis", to_sis),
                ("grading_type", gtype),
                ("points_possible", points),
                ("due_at", due),
                ("unlock_at", draw(st.sampled_from([None, MISSING, "garbage", "2026-11-01T00:00:00Z"]))),
                ("created_at", draw(st.sampled_from([None, MISSING, 5, "2026-10-01T00:00:00Z"]))),
            ):
                put(a, key, value)
            visible_to = None
            if draw(st.integers(0, 4)) == 0:  # R3: only for named students or sections
                a["only_visible_to_overrides"] = True
                overrides = []
                for oid in range(draw(st.integers(0, 2))):
                    o = {"id": aid * 10 + oid, "due_at": None}
                    if draw(st.booleans()):
                        put(
                            o,
                            "student_ids",
                            draw(
                                st.one_of(
                                    st.lists(st.sampled_from(users), max_size=3), st.none(), st.just(MISSING)
                                )
                            ),
                        )
                    else:
                        put(o, "course_section_id", draw(st.sampled_from([11, 12, "11", None])))
                    overrides.append(o)
                a["overrides"] = overrides
                visible_to = overrides
            else:
                put(a, "only_visible_to_overrides", draw(st.sampled_from([False, None, MISSING])))
                put(a, "overrides", draw(st.sampled_from([[], None, MISSING])))
            group["assignments"].append(a)
            sendable = published is True and to_sis is True and gtype != "not_graded"
            assignments[aid] = (a, sendable, points_ok, due_ok, name_ok)

            for u in users:
                if not draw(st.booleans()) and draw(st.booleans()):
                    continue  # Canvas lists no submission for this student
                sub, value_label = draw(submission(aid, u, points if points_ok else None))
                submissions.append(sub)
                s = seat[u]
                assigned = visible_to is None or any(
                    o.get("course_section_id") == s or u in (o.get("student_ids") or []) for o in visible_to
                )
                if not (sendable and assigned):
                    labels[(aid, u, s)] = "absent"
                elif value_label == "empty":
                    labels[(aid, u, s)] = "empty"
                else:
                    good = (
                        value_label == "good"
                        and points_ok
                        and due_ok
                        and name_ok
                        and section_sis[s]
                        and sis_ok[u]
                    )
                    labels[(aid, u, s)] = "good" if good else "bad"
        groups.append(group)

    if draw(st.booleans()):  # a submission of a student who is not enrolled, of an unknown assignment
        submissions.append({"assignment_id": 399, "user_id": 101, "score": 5})
        submissions.append({"assignment_id": 301, "user_id": 999, "score": 5})
    course = put(
        put({"id": COURSE_ID}, "name", draw(TEXT)),
        "sis_course_id",
        draw(st.sampled_from(["C7", None, MISSING, 7])),
    )
    put(course, "apply_assignment_group_weights", draw(st.sampled_from([True, False, None, MISSING, "yes"])))
    put(course, "workflow_state", draw(st.sampled_from(["available", "zzz", None, MISSING])))
    bundle = {
        "course": course,
        "sections": sections,
        "enrollments": enrollments,
        "assignment_groups": groups,
        "submissions": submissions,
    }
    return Course(bundle, labels, roster)


@st.composite
def submission(draw, aid: int, uid: int, points: float | None) -> tuple[dict, str]:
    """One submission and whether its value is good, bad or empty (R4, R5, R6, R7)."""
    if points is not None and draw(st.booleans()):
        score = points * draw(st.sampled_from([0, 0.25, 0.5, 1]))
    else:
        score = draw(
            st.one_of(
                st.sampled_from(BAD_SCORES),
                st.none(),
                st.floats(min_value=0, max_value=2_000_000, allow_nan=False),
            )
        )
        if points is not None and draw(st.booleans()):
            score = points + 1  # over the maximum
    grade = draw(st.sampled_from([None, "", "  ", "A-", "8", 8, "complete", "<b>x</b>", MISSING]))
    excused = draw(st.sampled_from([None, False, False, MISSING, True, "true"]))
    missing = draw(st.sampled_from([None, False, False, MISSING, True]))
    lps = draw(st.sampled_from([None, MISSING, "late", "missing", "extended", "none", "weird", 5]))
    sub = {"assignment_id": aid, "user_id": uid}
    for key, value in (
        ("score", score),
        ("grade", grade),
        ("excused", excused),
        ("missing", missing),
        ("late", draw(st.sampled_from([None, True, False, "yes", MISSING]))),
        ("late_policy_status", lps),
        ("workflow_state", draw(st.sampled_from(["graded", "submitted", "zzz", None, MISSING]))),
        ("graded_at", draw(st.sampled_from(["2026-11-21T15:00:00Z", None, "garbage", 5, MISSING]))),
    ):
        put(sub, key, value)

    raw_score = sub.get("score")
    raw_grade = sub.get("grade")

    def fits(value: Any) -> bool:
        v = number(value)
        return v is not None and v >= 0 and (points is None or v <= points)

    if sub.get("excused") is True:
        label = "good"  # exempt: no score needed (R6)
    elif sub.get("missing") is True or sub.get("late_policy_status") == "missing":
        label = "good" if fits(0 if raw_score is None else raw_score) else "bad"  # R6: not submitted
    elif raw_score is None and (raw_grade is None or str(raw_grade).strip() == ""):
        label = "empty"  # R7
    else:
        label = "good" if raw_score is not None and fits(raw_score) else "bad"  # R4, R5
    return sub, label
