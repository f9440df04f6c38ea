r"""Generate a district scenario of any size with realistic proportions of the demo's messiness.

    python -m sandbox generate --courses 300 --students-per-section 28 --assignments 40 \
        --seed 1 -o district.json

Deterministic for a seed (same arguments, same bytes). ``--assignments`` is the number of
*sendable* assignments per course (published, Sync to SIS on, graded); each course also gets
a few that are not (unpublished, Sync to SIS off, not graded), as real courses do. The rates
of every messy case are in ``RATES`` and scale with ``messiness`` (0 gives a clean district).
"""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sandbox.scenario import FORMAT

SUBJECTS = [
    ("ALG1", "Algebra I"),
    ("GEOM", "Geometry"),
    ("ALG2", "Algebra II"),
    ("PREC", "Pre-Calculus"),
    ("STAT", "Statistics"),
    ("BIO", "Biology"),
    ("CHEM", "Chemistry"),
    ("PHYS", "Physics"),
    ("ENVS", "Environmental Science"),
    ("ENG9", "English 9"),
    ("ENG10", "English 10"),
    ("ENG11", "English 11"),
    ("USHIST", "US History"),
    ("WHIST", "World History"),
    ("CIV", "Civics"),
    ("ECON", "Economics"),
    ("PSYCH", "Psychology"),
    ("SPAN1", "Spanish I"),
    ("SPAN2", "Spanish II"),
    ("FREN1", "French I"),
    ("ART", "Studio Art"),
    ("MUS", "Music Theory"),
    ("HLTH", "Health"),
    ("CS", "Computer Science"),
]
FIRST = [
    "Ava",
    "Liam",
    "Sofia",
    "Ethan",
    "Chloe",
    "Noah",
    "Mia",
    "Olivia",
    "Lucas",
    "Amelia",
    "Mateo",
    "Henry",
    "Harper",
    "Elijah",
    "Isabella",
    "James",
    "Zoë",
    "Benjamin",
    "Grace",
    "Daniel",
    "Lily",
    "Samuel",
    "Aria",
    "Jack",
    "Nora",
    "Leo",
    "Emma",
    "Owen",
    "Layla",
    "Caleb",
    "Hannah",
    "Isaac",
    "Maya",
    "Wyatt",
    "Ella",
    "Julian",
    "Aaliyah",
    "Gabriel",
    "Priya",
    "Diego",
    "Fatima",
    "Kai",
    "Naomi",
    "Omar",
    "Rosa",
    "Tariq",
    "Yuki",
    "Zara",
    "Mohammed",
    "Siobhán",
    "Chidi",
    "Anjali",
    "Mei",
    "Björn",
    "Lucía",
    "Amara",
    "Dmitri",
]
LAST = [
    "Thompson",
    "Nguyen",
    "Martinez",
    "Brooks",
    "Kim",
    "Patel",
    "Rodriguez",
    "Chen",
    "Okafor",
    "Walsh",
    "Haddad",
    "Clarke",
    "Johansson",
    "Friedman",
    "Rossi",
    "O'Connor",
    "Lindqvist",
    "Adeyemi",
    "Sullivan",
    "Mensah",
    "Novak",
    "Ortiz",
    "Desai",
    "Whitaker",
    "Castillo",
    "Garcia",
    "Smith",
    "Johnson",
    "Williams",
    "Brown",
    "Jones",
    "Miller",
    "Davis",
    "Wilson",
    "Anderson",
    "Taylor",
    "Moore",
    "Jackson",
    "White",
    "Harris",
    "Lewis",
    "Robinson",
    "Walker",
    "Young",
    "Allen",
    "King",
    "Wright",
    "Scott",
    "Green",
    "Baker",
    "Adams",
    "Nelson",
    "Hill",
    "Ramirez",
    "Campbell",
    "Mitchell",
    "Roberts",
    "Carter",
    "Phillips",
    "Evans",
]
# Canvas group -> what some teachers typed as the Aspen category instead (R2 mismatches).
GROUPS = [
    ("Homework", "HW"),
    ("Quizzes", "Quiz"),
    ("Tests", "Test"),
    ("Labs", "Lab"),
    ("Projects", "Project"),
    ("Classwork", "Class Work"),
    ("Essays", "Essay"),
    ("Participation", "Particip."),
]
GRADING_PERIODS = [
    {
        "sourcedId": "GP-2627-Q1",
        "title": "Q1",
        "startDate": "2026-08-31",
        "endDate": "2026-11-06",
        "schoolYear": "2027",
    },
    {
        "sourcedId": "GP-2627-Q2",
        "title": "Q2",
        "startDate": "2026-11-09",
        "endDate": "2027-01-29",
        "schoolYear": "2027",
    },
    {
        "sourcedId": "GP-2627-Q3",
        "title": "Q3",
        "startDate": "2027-02-01",
        "endDate": "2027-04-09",
        "schoolYear": "2027",
    },
    {
        "sourcedId": "GP-2627-Q4",
        "title": "Q4",
        "startDate": "2027-04-19",
        "endDate": "2027-06-18",
        "schoolYear": "2027",
    },
]
TERM_START = datetime(2026, 9, 1, tzinfo=UTC)
AS_OF = datetime(2026, 11, 25, tzinfo=UTC)  # grades exist for work due before this day
POINTS = [10, 10, 10, 20, 20, 25, 50, 100]

# Probabilities of each messy case at messiness 1.0 (per the unit named on the right).
RATES = {
    "weighted_course": 0.85,  # course: apply_assignment_group_weights (not scaled)
    "section_without_sis": 0.01,  # section
    "student_without_sis": 0.01,  # student
    "not_on_aspen_roster": 0.005,  # enrollment
    "inactive_enrollment": 0.01,  # section: one dropped student
    "unweighted_group": 0.05,  # weighted course: a weight-0 group
    "weight_mismatch": 0.05,  # class: one Aspen weight differs
    "category_case": 0.04,  # class: one category title differs only in case
    "category_mismatch": 0.03,  # class: one category title differs
    "imported_group": 0.03,  # course: an "Imported Assignments" group with sendable work
    "extra_unpublished": 0.05,  # per sendable assignment: an unpublished one besides
    "extra_not_synced": 0.05,  # ... one with Sync to SIS off
    "extra_not_graded": 0.02,  # ... one not graded
    "no_due_date": 0.02,  # assignment
    "due_outside_periods": 0.01,  # assignment
    "overrides_named": 0.02,  # assignment: only for a few named students
    "overrides_section": 0.01,  # assignment (multi-section courses): only for one section
    "empty": 0.08,  # submission (not scaled: teachers are behind)
    "missing": 0.03,  # submission
    "late": 0.04,  # submission
    "excused": 0.01,  # submission
    "over_max": 0.002,  # submission
    "negative": 0.0005,  # submission
    "text_score": 0.0005,  # submission
}
UNSCALED = {"weighted_course", "empty"}


def parse_distribution(text: str) -> list[tuple[int, float]]:
    """``"2"`` or ``"1:0.7,2:0.27,3:0.03"`` -> [(count, weight), ...]."""
    if ":" not in text:
        return [(int(text), 1.0)]
    pairs = [item.split(":") for item in text.split(",") if item.strip()]
    return [(int(n), float(w)) for n, w in pairs]


def _iso(dt: datetime) -> str:
    return dt.strftime("%Y-%m-%dT%H:%M:%SZ")


def _score(rng: random.Random, points: float) -> float | int:
    value = max(0.0, min(1.0, rng.gauss(0.82, 0.12))) * points
    value = round(value * 2) / 2
    return int(value) if value == int(value) else value


class _Gen:
    def __init__(self, seed: int, messiness: float) -> None:
        self.rng = random.Random(seed)
        self.rates = {k: (v if k in UNSCALED else min(1.0, v * messiness)) for k, v in RATES.items()}
        self.ids = {
            "user": 100_000,
            "course": 1_000,
            "section": 10_000,
            "group": 20_000,
            "assignment": 500_000,
            "override": 1,
        }
        self.counts: dict[str, int] = {}
        self.cum_weights: list[float] | None = None
        self.tables: dict[float, list] = {}

    def next(self, kind: str) -> int:
        self.ids[kind] += 1
        return self.ids[kind]

    def chance(self, key: str) -> bool:
        hit = self.rng.random() < self.rates[key]
        if hit:
            self.counts[key] = self.counts.get(key, 0) + 1
        return hit


def generate(
    courses: int,
    students_per_section: int,
    assignments: int,
    seed: int = 0,
    sections_per_course: str = "1:0.7,2:0.27,3:0.03",
    messiness: float = 1.0,
    lock_periods: list[str] | None = None,
    aspen_student_ids: bool = False,
    past_courses: int = 0,
    hidden_assignments: float = 0.0,
) -> dict[str, Any]:
    """A generated district. ``aspen_student_ids``: Aspen's users get Aspen-style sourcedIds
    (``std_000123``) and carry the Canvas ``sis_user_id`` as their ``identifier``
    (``sandbox.student_ids``). ``past_courses``: that many of last year's concluded courses
    (a past term; SIS ids whose Aspen classes do not exist), the live ones then in a dated
    current term (R19). ``hidden_assignments``: that fraction of the sendable assignments has
    a manual posting policy with its grades not posted yet (R20). Both draw from their own
    random streams: the rest of the district is the same as without them."""
    if past_courses < 0 or not 0.0 <= hidden_assignments <= 1.0:
        raise ValueError("past_courses >= 0, hidden_assignments in [0, 1]")
    if courses < 1 or students_per_section < 1 or assignments < 0:
        raise ValueError("courses and students per section must be >= 1, assignments >= 0")
    g = _Gen(seed, messiness)
    rng = g.rng
    dist = parse_distribution(sections_per_course)
    n_sections = [rng.choices([n for n, _ in dist], [w for _, w in dist])[0] for _ in range(courses)]
    seats = sum(n_sections) * students_per_section
    pool_size = max(students_per_section * max(n_sections), seats // 6)
    users: list[dict] = []
    for i in range(pool_size):
        uid = g.next("user")
        sis = None if g.chance("student_without_sis") else f"S{uid}"
        users.append(
            {
                "id": uid,
                "name": f"{FIRST[(i * 7 + seed) % len(FIRST)]} {rng.choice(LAST)}",
                "sis_user_id": sis,
            }
        )
    teachers = []
    for i in range(max(1, courses // 5)):
        uid = g.next("user")
        teachers.append(
            {
                "id": uid,
                "name": f"{rng.choice(FIRST)} {LAST[i % len(LAST)]}",
                "sis_user_id": f"T{uid}",
                "email": f"teacher{uid}@district.example.org",
            }
        )
    pool = [u["id"] for u in users]
    sis_of = {u["id"]: u["sis_user_id"] for u in users}
    locked = set(lock_periods or [])
    periods = [dict(gp, locked=gp["title"] in locked or gp["sourcedId"] in locked) for gp in GRADING_PERIODS]

    canvas_courses, aspen_classes = [], []
    submissions_total = 0
    for ci in range(courses):
        code, subject = SUBJECTS[ci % len(SUBJECTS)]
        teacher = teachers[ci % len(teachers)]
        cid = g.next("course")
        weighted = rng.random() < g.rates["weighted_course"]
        course: dict[str, Any] = {
            "id": cid,
            "name": f"{subject} ({teacher['name'].split()[-1]})",
            "course_code": code,
            "sis_course_id": f"{code}-{cid}",
            "workflow_state": "available",
            "enrollment_term_id": 1,
            "apply_assignment_group_weights": weighted,
            "sections": [],
            "enrollments": [],
            "assignment_groups": [],
        }
        # sections, students (a student is in one section of a course), Aspen classes
        chosen = rng.sample(pool, min(len(pool), students_per_section * n_sections[ci]))
        chosen_set = set(chosen)
        section_students: dict[int, list[int]] = {}
        for si in range(n_sections[ci]):
            sid = g.next("section")
            sis = None if g.chance("section_without_sis") else f"{code}-{cid}-P{si + 1}"
            section = {"id": sid, "name": f"{subject} - Period {si + 1}", "sis_section_id": sis}
            if si > 0:
                section["nonxlist_course_id"] = 90_000 + sid  # cross-listed in from its own course
            course["sections"].append(section)
            members = chosen[si * students_per_section : (si + 1) * students_per_section]
            section_students[sid] = members
            course["enrollments"] += [{"user_id": u, "section_id": sid} for u in members]
            course["enrollments"].append(
                {"user_id": teacher["id"], "section_id": sid, "type": "TeacherEnrollment"}
            )
            if g.chance("inactive_enrollment"):
                dropped = rng.choice(pool)
                if dropped not in chosen_set:
                    course["enrollments"].append({"user_id": dropped, "section_id": sid, "state": "inactive"})
        # groups and weights
        k = rng.randint(3, 5)
        group_defs = rng.sample(GROUPS, k)
        weights = _weights(rng, k) if weighted else [0] * k
        if weighted and g.chance("unweighted_group"):
            weights[-1] = 0
        groups = [
            {"id": g.next("group"), "name": name, "group_weight": w, "position": i + 1, "assignments": []}
            for i, ((name, _alt), w) in enumerate(zip(group_defs, weights, strict=True))
        ]
        if g.chance("imported_group"):
            groups.append(
                {
                    "id": g.next("group"),
                    "name": "Imported Assignments",
                    "group_weight": 0,
                    "position": len(groups) + 1,
                    "assignments": [],
                }
            )
        course["assignment_groups"] = groups
        # assignments
        sids = list(section_students)
        everyone = [u for members in section_students.values() for u in members]
        plan = [("sendable", None)] * assignments
        plan += [("unpublished", None)] * sum(g.chance("extra_unpublished") for _ in range(assignments))
        plan += [("not_synced", None)] * sum(g.chance("extra_not_synced") for _ in range(assignments))
        plan += [("not_graded", None)] * sum(g.chance("extra_not_graded") for _ in range(assignments))
        imported = groups[-1]["name"] == "Imported Assignments"
        for ai, (kind, _) in enumerate(plan):
            group = groups[-1] if imported and ai < 2 else groups[ai % (len(groups) - imported)]
            label = f"{group['name'].removesuffix('s')} {len(group['assignments']) + 1}"
            a, assigned = _assignment(g, kind, ai, len(plan), label, sids, section_students, everyone)
            group["assignments"].append(a)
            if kind in ("sendable", "not_synced"):
                a["submissions"] = _submissions(g, a, assigned)
                submissions_total += len(a["submissions"])
        canvas_courses.append(course)
        # Aspen: one class per section with a SIS id, categories from the groups (with mismatches)
        for section in course["sections"]:
            if not section["sis_section_id"]:
                continue
            roster = [
                sis_of[u]
                for u in section_students[section["id"]]
                if sis_of[u] and not g.chance("not_on_aspen_roster")
            ]
            aspen_classes.append(
                {
                    "sourcedId": section["sis_section_id"],
                    "title": section["name"],
                    "roster": roster,
                    "categories": _categories(g, section["sis_section_id"], group_defs, weights, weighted),
                }
            )

    extra_rng = random.Random(f"real-district-{seed}")  # past courses and hidden grades: their own stream
    if hidden_assignments:
        _hide_grades(extra_rng, g, canvas_courses, hidden_assignments)
    if past_courses:
        canvas_courses += _past_courses(extra_rng, g, past_courses, pool, teachers, students_per_section)

    scenario = {
        "format": FORMAT,
        "name": f"generated-{courses}x{students_per_section}x{assignments}-seed{seed}",
        "description": "Generated by `python -m sandbox generate`: a district with realistic messiness.",
        "canvas": {
            "account_id": 1,
            "token": "sandbox-canvas-token",
            "users": users + teachers,
            "courses": canvas_courses,
        },
        "aspen": {
            "client_id": "sandbox-aspen-client",
            "client_secret": "sandbox-aspen-secret",
            "grading_periods": periods,
            "classes": aspen_classes,
            "lineItems": [],
            "results": [],
        },
    }
    if past_courses:
        scenario["canvas"]["terms"] = TERMS
    scenario["generated"] = {
        "params": {
            "courses": courses,
            "students_per_section": students_per_section,
            "assignments": assignments,
            "seed": seed,
            "sections_per_course": sections_per_course,
            "messiness": messiness,
            "lock_periods": sorted(locked),
            **({"past_courses": past_courses} if past_courses else {}),
            **({"hidden_assignments": hidden_assignments} if hidden_assignments else {}),
        },
        "counts": dict(sorted(g.counts.items())),
    }
    scenario["stats"] = {
        "courses": courses,
        "sections": sum(n_sections),
        "aspen_classes": len(aspen_classes),
        "students": len(users),
        "submissions": submissions_total,
    }
    if aspen_student_ids:
        from sandbox.student_ids import aspen_style_student_ids

        scenario = aspen_style_student_ids(scenario)
        scenario["generated"]["params"]["aspen_student_ids"] = True
    return scenario


# with past courses: this school year (no end date: current whenever the scenario runs) and last year's
TERMS = [
    {"id": 1, "name": "2026-2027", "sis_term_id": "2627", "start_at": "2026-08-01T04:00:00Z", "end_at": None},
    {
        "id": 2,
        "name": "2025-2026",
        "sis_term_id": "2526",
        "start_at": "2025-08-01T04:00:00Z",
        "end_at": "2026-07-01T04:00:00Z",
    },
]


def _hide_grades(rng: random.Random, g: _Gen, courses: list[dict], fraction: float) -> None:
    """R20: ``fraction`` of the sendable assignments get a manual posting policy; their grades
    are then hidden from the students (``posted_at`` null) until posted."""
    for course in courses:
        for group in course["assignment_groups"]:
            for a in group["assignments"]:
                if (
                    a.get("published", True)
                    and a.get("post_to_sis", True)
                    and a.get("grading_type") != "not_graded"
                    and rng.random() < fraction
                ):
                    a["post_manually"] = True
                    g.counts["hidden_assignments"] = g.counts.get("hidden_assignments", 0) + 1
                    g.counts["hidden_grades"] = g.counts.get("hidden_grades", 0) + sum(
                        1 for s in a.get("submissions", []) if s.get("score") is not None or s.get("excused")
                    )


def _past_courses(
    rng: random.Random, g: _Gen, n: int, pool: list[int], teachers: list[dict], students_per_section: int
) -> list[dict]:
    """R19: last year's concluded courses (term 2, ``completed``, the students' enrollments
    ``completed``), graded, with section SIS ids whose Aspen classes no longer exist."""
    out = []
    for i in range(n):
        code, subject = SUBJECTS[i % len(SUBJECTS)]
        cid, sid = g.next("course"), g.next("section")
        teacher = teachers[i % len(teachers)]
        sis = f"{code}-2526-{cid}"
        members = rng.sample(pool, min(len(pool), students_per_section))
        enrollments = [{"user_id": u, "section_id": sid, "state": "completed"} for u in members]
        enrollments.append(
            {"user_id": teacher["id"], "section_id": sid, "type": "TeacherEnrollment", "state": "completed"}
        )
        assignments = []
        for k in range(3):
            aid = g.next("assignment")
            due = datetime(2026, 2, 2, 4, 59, tzinfo=UTC) + timedelta(days=30 * k + rng.randint(0, 20))
            assignments.append(
                {
                    "id": aid,
                    "name": f"Unit {k + 1} test",
                    "points_possible": 100,
                    "due_at": _iso(due),
                    "created_at": _iso(due - timedelta(days=10)),
                    "submissions": [{"user_id": u, "score": _score(rng, 100)} for u in members],
                }
            )
        out.append(
            {
                "id": cid,
                "name": f"{subject} (2025-2026)",
                "course_code": code,
                "sis_course_id": sis,
                "workflow_state": "completed",
                "enrollment_term_id": 2,
                "apply_assignment_group_weights": False,
                "sections": [
                    {"id": sid, "name": f"{subject} - Period 1 (2025-2026)", "sis_section_id": f"{sis}-P1"}
                ],
                "enrollments": enrollments,
                "assignment_groups": [
                    {
                        "id": g.next("group"),
                        "name": "Tests",
                        "group_weight": 0,
                        "position": 1,
                        "assignments": assignments,
                    }
                ],
            }
        )
    g.counts["past_courses"] = n
    return out


def _weights(rng: random.Random, k: int) -> list[int]:
    """k weights, multiples of 5, summing to 100."""
    cuts = sorted(rng.sample(range(1, 20), k - 1))
    parts = [b - a for a, b in zip([0, *cuts], [*cuts, 20], strict=True)]
    return [p * 5 for p in parts]


def _assignment(
    g: _Gen,
    kind: str,
    index: int,
    total: int,
    label: str,
    sids: list[int],
    section_students: dict[int, list[int]],
    everyone: list[int],
) -> tuple[dict, list[int]]:
    rng = g.rng
    aid = g.next("assignment")
    # due dates spread over the term up to AS_OF, 23:59 Eastern (04:59Z next day)
    span = (AS_OF - TERM_START).days - 1
    day = TERM_START + timedelta(days=int(span * (index + rng.random()) / max(total, 1)))
    due = day.replace(hour=4, minute=59) + timedelta(days=1)
    points = rng.choice(POINTS)
    r = rng.random()
    grading_type = (
        "percent" if r < 0.05 else "letter_grade" if r < 0.10 else "pass_fail" if r < 0.14 else "points"
    )
    if grading_type == "pass_fail":
        points = 1
    a: dict[str, Any] = {
        "id": aid,
        "name": label,
        "points_possible": points,
        "grading_type": grading_type,
        "due_at": _iso(due),
        "created_at": _iso(due - timedelta(days=10)),
    }
    assigned = everyone
    if kind == "unpublished":
        a.update(name=f"{label} (draft)", published=False)
    elif kind == "not_synced":
        a.update(name=f"{label} (practice)", post_to_sis=False)
    elif kind == "not_graded":
        a.update(name=f"{label} (ungraded)", grading_type="not_graded", points_possible=None)
    else:
        if g.chance("no_due_date"):
            a["due_at"] = None
        elif g.chance("due_outside_periods"):
            a["due_at"] = "2026-08-28T03:59:00Z"  # the week before Q1
        if g.chance("overrides_named"):
            assigned = sorted(rng.sample(everyone, min(3, len(everyone))))
            a.update(
                only_visible_to_overrides=True,
                overrides=[
                    {"id": g.next("override"), "student_ids": assigned, "due_at": a["due_at"] or _iso(due)}
                ],
            )
        elif len(sids) > 1 and g.chance("overrides_section"):
            sid = rng.choice(sids)
            assigned = section_students[sid]
            a.update(
                only_visible_to_overrides=True,
                overrides=[
                    {"id": g.next("override"), "course_section_id": sid, "due_at": a["due_at"] or _iso(due)}
                ],
            )
    return a, assigned


OUTCOMES = ["empty", "missing", "excused", "over_max", "negative", "text_score", "late", "graded"]


def _score_tables(rng: random.Random) -> dict[float, list]:
    """Per points value, 512 draws of a realistic score distribution (sampled with one call per
    assignment)."""
    tables: dict[float, list] = {p: [_score(rng, p) for _ in range(512)] for p in set(POINTS)}
    tables[1] = [1] * 85 + [0] * 15  # pass/fail
    return tables


def _submissions(g: _Gen, a: dict, assigned: list[int]) -> list[dict]:
    rng, rates = g.rng, g.rates
    points = a["points_possible"]
    if g.cum_weights is None:
        weights = [rates[k] for k in OUTCOMES[:-1]]
        g.cum_weights = [sum(weights[: i + 1]) for i in range(len(weights))] + [1.0]
        g.tables = _score_tables(rng)
    n = len(assigned)
    outcomes = rng.choices(OUTCOMES, cum_weights=g.cum_weights, k=n)
    scores = rng.choices(g.tables[points], k=n)
    out = []
    for uid, outcome, score in zip(assigned, outcomes, scores, strict=True):
        if outcome == "graded":
            out.append({"user_id": uid, "score": score})
        elif outcome == "empty":
            continue
        elif outcome == "late":
            out.append({"user_id": uid, "score": score, "late": True, "late_policy_status": "late"})
        elif outcome == "missing":
            out.append({"user_id": uid, "score": 0, "missing": True, "late_policy_status": "missing"})
        elif outcome == "excused":
            out.append({"user_id": uid, "excused": True})
        elif outcome == "over_max":
            out.append({"user_id": uid, "score": points + rng.choice([0.5, 1, 2, 5])})
        elif outcome == "negative":
            out.append({"user_id": uid, "score": -rng.choice([1, 2, 5])})
        else:
            out.append({"user_id": uid, "score": rng.choice(["A-", "B+", "incomplete", "10/10"])})
        if outcome != "graded":
            g.counts[outcome] = g.counts.get(outcome, 0) + 1
    return out


def _categories(g: _Gen, class_id: str, group_defs: list, weights: list[int], weighted: bool) -> list[dict]:
    cats = []
    odd_case = g.chance("category_case")
    odd_name = g.chance("category_mismatch")
    odd_weight = weighted and g.chance("weight_mismatch")
    for i, ((name, alternative), weight) in enumerate(zip(group_defs, weights, strict=True)):
        title = name
        if i == 0 and odd_case:
            title = name.lower()
        if i == 1 and odd_name:
            title = alternative
        w = weight + (5 if i == 2 and odd_weight else 0)
        code = "".join(ch for ch in name.upper() if ch.isalnum())[:20]
        cats.append({"code": code, "title": title, **({"weight": w} if weighted else {})})
    return cats


def write(data: dict, path: str | Path) -> None:
    text = json.dumps(data, separators=(",", ":"), ensure_ascii=False)  # one C-encoded string: fast
    with open(path, "w", encoding="utf-8") as fh:
        fh.write(text)
