"""The Canvas side of a district in memory, indexed by course at load.

Every read the API serves is answered from per-course indexes; whatever a mutation touches
bumps that course's ``version``, which invalidates its cached views. JSON shapes follow the
Canvas REST API (the fields of ``domain.md`` §1 plus harmless real ones).
"""

from __future__ import annotations

import functools
import math
from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sandbox.faults import js
from sandbox.scenario import canvas_time, now_utc, parse_time, plus_days

LETTERS = [
    (94, "A"),
    (90, "A-"),
    (87, "B+"),
    (84, "B"),
    (80, "B-"),
    (77, "C+"),
    (74, "C"),
    (70, "C-"),
    (67, "D+"),
    (64, "D"),
    (61, "D-"),
    (0, "F"),
]
SUBMISSION_FIELDS = {
    "score",
    "grade",
    "excused",
    "late",
    "missing",
    "late_policy_status",
    "workflow_state",
    "graded_at",
    "submitted_at",
    "seconds_late",
    "posted_at",
}
ASSIGNMENT_FIELDS = {
    "name",
    "points_possible",
    "grading_type",
    "published",
    "post_to_sis",
    "due_at",
    "unlock_at",
    "lock_at",
    "only_visible_to_overrides",
    "omit_from_final_grade",
    "overrides",
    "position",
    "post_manually",
}
DEFAULT_TERM = {"id": 1, "name": "Default Term"}  # every Canvas account has one, without dates
COURSE_STATES = {
    "unpublished": {"created", "claimed", "unpublished"}
}  # stored state -> state[] values that list it


class CanvasError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status, self.message = status, message


def _num(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def format_score(value: float) -> str:
    return f"{value:g}" if value == int(value) else f"{round(value, 2):g}"


def derive_grade(score: Any, points: float | None, grading_type: str, excused: bool) -> str | None:
    """The display string Canvas shows next to a score."""
    if excused or score is None or grading_type == "not_graded":
        return None
    value = _num(score)
    if value is None:
        return str(score)  # whatever odd value the scenario holds (R4's text-like grades)
    pct = value / points * 100 if points else None
    if grading_type == "percent" and pct is not None:
        return f"{format_score(round(pct, 2))}%"
    if grading_type in ("letter_grade", "gpa_scale") and pct is not None:
        return next((letter for floor, letter in LETTERS if pct >= floor), "F")
    if grading_type == "pass_fail":
        return "complete" if value > 0 else "incomplete"
    return format_score(value)


_TIMESTAMPS: dict[str, float] = {}


def _timestamp(value: str | None) -> float | None:
    """Epoch seconds of a Canvas time string (memoised: a district shares few distinct times)."""
    if value is None:
        return None
    ts = _TIMESTAMPS.get(value)
    if ts is None:
        ts = _TIMESTAMPS[value] = parse_time(value).timestamp()
    return ts


@dataclass(slots=True)
class Submission:
    score: Any = None
    grade: str | None = None  # the scenario's explicit grade, else derived when rendered
    grade_given: bool = False
    excused: bool = False
    late: bool = False
    missing: bool = False
    late_policy_status: str | None = None
    workflow_state: str = "unsubmitted"
    graded_at: str | None = None
    graded_ts: float | None = None  # graded_at as epoch seconds, for graded_since
    submitted_at: str | None = None
    seconds_late: int = 0
    posted_at: str | None = None  # null while a manual posting policy hides the grade from the student


_UNSUBMITTED = Submission()
_UNSUBMITTED_TAIL = (
    '"score":null,"grade":null,"entered_score":null,"entered_grade":null,"excused":false,"late":false,'
    '"missing":false,"late_policy_status":null,"workflow_state":"unsubmitted","graded_at":null,'
    '"submitted_at":null,"posted_at":null,"seconds_late":0,"points_deducted":null,"attempt":null,'
    '"grade_matches_current_submission":true,"submission_type":null}'
)


@functools.lru_cache(maxsize=4096)
def _plain_tail(graded_at: str | None) -> str:
    ga = js(graded_at)
    return (
        '"excused":false,"late":false,"missing":false,"late_policy_status":null,"workflow_state":"graded",'
        f'"graded_at":{ga},"submitted_at":null,"posted_at":{ga},"seconds_late":0,"points_deducted":null,'
        '"attempt":null,"grade_matches_current_submission":true,"submission_type":null}'
    )


@dataclass(slots=True)
class Assignment:
    id: int
    course_id: int
    group_id: int
    name: str
    position: int
    points_possible: float | None
    grading_type: str
    published: bool
    post_to_sis: bool
    only_visible_to_overrides: bool
    omit_from_final_grade: bool
    due_at: str | None
    unlock_at: str | None
    lock_at: str | None
    created_at: str
    updated_at: str
    deleted: bool
    overrides: list[dict]
    default_graded_at: str | None
    post_manually: bool = False  # a manual posting policy: new grades stay hidden until posted
    submissions: dict[int, Submission] = field(default_factory=dict)


@dataclass
class Course:
    raw: dict
    id: int
    sections: list[dict]
    enrollments: list[dict]
    groups: list[dict]  # {"id", "name", "position", "group_weight", "assignment_ids": [...]}
    assignments: dict[int, Assignment]
    version: int = 0
    _cache: dict = field(default_factory=dict)

    def touch(self) -> None:
        self.version += 1
        self._cache.clear()

    def cached(self, key: Any, build):
        if key not in self._cache:
            self._cache[key] = build()
        return self._cache[key]


class CanvasState:
    def __init__(self, scenario: dict) -> None:
        canvas = scenario["canvas"]
        self.account_id = canvas["account_id"]
        self.token = canvas["token"]
        self.default_graded_at = canvas.get("default_graded_at")
        self.users: dict[int, dict] = {u["id"]: u for u in canvas.get("users", [])}
        self.terms: list[dict] = [self._term_json(t) for t in canvas.get("terms") or [DEFAULT_TERM]]
        self.courses: dict[int, Course] = {}
        self._listing_cache: OrderedDict = OrderedDict()
        self._next_enrollment_id = 1
        for raw in canvas["courses"]:
            course = self._load_course(raw)
            self.courses[course.id] = course
        self.next_assignment_id = 1 + max(
            (a for c in self.courses.values() for a in c.assignments), default=0
        )

    # --- loading ----------------------------------------------------------------------------

    def _load_course(self, raw: dict) -> Course:
        cid = raw["id"]
        sections = [dict(s, course_id=cid) for s in raw.get("sections", [])]
        enrollments = []
        for e in raw.get("enrollments", []):
            enrollments.append(
                {
                    "id": e.get("id", self._next_enrollment_id),
                    "user_id": e["user_id"],
                    "section_id": e["section_id"],
                    "type": e.get("type", "StudentEnrollment"),
                    "state": e.get("state", "active"),
                }
            )
            self._next_enrollment_id += 1
        groups, assignments = [], {}
        for gpos, g in enumerate(raw.get("assignment_groups", []), start=1):
            ids = []
            for apos, a in enumerate(g.get("assignments", []), start=1):
                assignments[a["id"]] = self._load_assignment(cid, g["id"], a, apos)
                ids.append(a["id"])
            groups.append(
                {
                    "id": g["id"],
                    "name": g["name"],
                    "position": g.get("position", gpos),
                    "group_weight": g.get("group_weight", 0),
                    "assignment_ids": ids,
                }
            )
        groups.sort(key=lambda g: g["position"])
        return Course(
            raw=raw,
            id=cid,
            sections=sections,
            enrollments=enrollments,
            groups=groups,
            assignments=assignments,
        )

    def _load_assignment(self, course_id: int, group_id: int, a: dict, position: int) -> Assignment:
        created = (
            canvas_time(a.get("created_at"))
            or plus_days(a.get("due_at"), -14)
            or canvas_time(self.default_graded_at)
            or "2026-08-24T12:00:00Z"
        )
        state = a.get("workflow_state") or ("published" if a.get("published", True) else "unpublished")
        asg = Assignment(
            id=a["id"],
            course_id=course_id,
            group_id=group_id,
            name=a["name"],
            position=a.get("position", position),
            points_possible=a.get("points_possible"),
            grading_type=a.get("grading_type", "points"),
            published=state == "published",
            post_to_sis=a.get("post_to_sis", True),
            only_visible_to_overrides=a.get("only_visible_to_overrides", False),
            omit_from_final_grade=a.get("omit_from_final_grade", False),
            due_at=canvas_time(a.get("due_at")),
            unlock_at=canvas_time(a.get("unlock_at")),
            lock_at=canvas_time(a.get("lock_at")),
            created_at=created,
            updated_at=canvas_time(a.get("updated_at")) or created,
            deleted=state == "deleted",
            overrides=[dict(o) for o in a.get("overrides", [])],
            default_graded_at=canvas_time(a.get("graded_at"))
            or plus_days(a.get("due_at"), 1)
            or canvas_time(self.default_graded_at)
            or created,
            post_manually=a.get("post_manually") is True,
        )
        default, default_ts = asg.default_graded_at, _timestamp(asg.default_graded_at)
        posted = None if asg.post_manually else default
        subs = asg.submissions
        for s in a.get("submissions", ()):
            if len(s) == 2 and s.get("score") is not None:  # {"user_id", "score"}: the common case, kept fast
                subs[s["user_id"]] = Submission(
                    s["score"],
                    None,
                    False,
                    False,
                    False,
                    False,
                    None,
                    "graded",
                    default,
                    default_ts,
                    None,
                    0,
                    posted,
                )
            else:
                subs[s["user_id"]] = self._make_submission(asg, s, default)
        return asg

    def _make_submission(
        self, a: Assignment, s: dict, default_graded_at: str | None, was_posted: bool = False
    ) -> Submission:
        """One submission; ``posted_at`` as Canvas sets it: the grading time under the automatic
        posting policy, null under a manual one until the teacher posts (a submission posted
        before stays posted when it is graded again); given explicitly, as given."""
        excused = bool(s.get("excused", False))
        score = s.get("score")
        graded = excused or score is not None
        state = s.get("workflow_state") or (
            "graded" if graded else ("submitted" if s.get("submitted_at") else "unsubmitted")
        )
        graded_at = (
            canvas_time(s.get("graded_at")) if "graded_at" in s else (default_graded_at if graded else None)
        )
        late = bool(s.get("late", s.get("late_policy_status") == "late"))
        missing = bool(s.get("missing", s.get("late_policy_status") == "missing"))
        if "posted_at" in s:
            posted_at = canvas_time(s["posted_at"])
        elif not graded:
            posted_at = None
        else:
            posted_at = graded_at if (not a.post_manually or was_posted) else None
        return Submission(
            score=score,
            grade=s.get("grade"),
            grade_given="grade" in s,
            excused=excused,
            late=late,
            missing=missing,
            late_policy_status=s.get("late_policy_status"),
            workflow_state=state,
            graded_at=graded_at,
            graded_ts=_timestamp(graded_at),
            submitted_at=canvas_time(s.get("submitted_at")),
            seconds_late=int(s.get("seconds_late", 86400 if late else 0)),
            posted_at=posted_at,
        )

    # --- derived views -----------------------------------------------------------------------

    def course(self, course_id: int) -> Course:
        course = self.courses.get(course_id)
        if course is None or course.raw.get("workflow_state") == "deleted":
            raise CanvasError(404, "The specified resource does not exist.")
        return course

    def active_students(self, course: Course) -> tuple[list[int], dict[int, set[int]]]:
        """(sorted user ids with an active StudentEnrollment, section id -> those user ids); in a
        concluded course the students' enrollments are ``completed``, and they count instead."""

        def build():
            by_section: dict[int, set[int]] = {}
            states = (
                {"active", "completed"} if course.raw.get("workflow_state") == "completed" else {"active"}
            )
            for e in course.enrollments:
                if e["type"] == "StudentEnrollment" and e["state"] in states:
                    by_section.setdefault(e["section_id"], set()).add(e["user_id"])
            everyone = sorted(set().union(*by_section.values())) if by_section else []
            return everyone, by_section

        return course.cached("students", build)

    def assigned_students(self, course: Course, a: Assignment) -> list[int]:
        """R3: everyone, or only the students and sections named by the overrides."""
        everyone, by_section = self.active_students(course)
        if not a.only_visible_to_overrides:
            return everyone
        chosen: set[int] = set()
        for ov in a.overrides:
            chosen.update(ov.get("student_ids", []))
            if "course_section_id" in ov:
                chosen.update(by_section.get(ov["course_section_id"], ()))
        return [u for u in everyone if u in chosen]

    # --- JSON -------------------------------------------------------------------------------

    @staticmethod
    def _term_json(t: dict) -> dict:
        return {
            "id": t["id"],
            "name": t["name"],
            "start_at": canvas_time(t.get("start_at")),
            "end_at": canvas_time(t.get("end_at")),
            "created_at": canvas_time(t.get("created_at")),
            "workflow_state": t.get("workflow_state", "active"),
            "grading_period_group_id": None,
            "sis_term_id": t.get("sis_term_id"),
            "sis_import_id": None,
        }

    def terms_of_account(self, account_id: Any) -> list[dict]:
        """The account's enrollment terms (``GET /accounts/{id}/terms``), deleted ones left out."""
        if str(account_id) not in (str(self.account_id), "self"):
            raise CanvasError(404, "The specified resource does not exist.")
        return [t for t in self.terms if t["workflow_state"] != "deleted"]

    def term_id(self, ref: str) -> int | None:
        """A course list's ``enrollment_term_id``: a term id, or ``sis_term_id:X`` (404 when no
        term has it)."""
        if ref.startswith("sis_term_id:"):
            sis = ref.split(":", 1)[1]
            term = next((t for t in self.terms if t.get("sis_term_id") == sis), None)
            if term is None:
                raise CanvasError(404, "The specified resource does not exist.")
            return int(term["id"])
        return int(ref) if ref.strip().isdigit() else None

    def course_json(self, course: Course) -> dict:
        raw = course.raw
        return {
            "id": course.id,
            "name": raw["name"],
            "course_code": raw.get("course_code", raw["name"]),
            "sis_course_id": raw.get("sis_course_id"),
            "workflow_state": raw.get("workflow_state", "available"),
            "account_id": self.account_id,
            "enrollment_term_id": raw.get("enrollment_term_id", 1),
            "apply_assignment_group_weights": raw.get("apply_assignment_group_weights", False),
            "start_at": canvas_time(raw.get("start_at")),
            "end_at": canvas_time(raw.get("end_at")),
            "time_zone": raw.get("time_zone", "America/New_York"),
            "default_view": "modules",
            "is_public": False,
            "integration_id": None,
            "uuid": f"sandbox-course-{course.id}",
        }

    def courses_of_account(self, account_id: Any, term_id: str | None, states: list[str]) -> list[dict]:
        """``enrollment_term_id`` (an id or ``sis_term_id:X``) and ``state[]`` (``created``/``claimed``
        list unpublished courses; none: every state but deleted) as Canvas filters them."""
        if str(account_id) not in (str(self.account_id), "self"):
            raise CanvasError(404, "The specified resource does not exist.")
        term = None if term_id in (None, "") else self.term_id(term_id)
        out = []
        for course in self.courses.values():
            state = course.raw.get("workflow_state", "available")
            if states and "all" not in states:
                if not COURSE_STATES.get(state, {state}) & set(states):
                    continue
            elif state == "deleted":
                continue
            if term_id not in (None, "") and course.raw.get("enrollment_term_id", 1) != term:
                continue
            out.append(self.course_json(course))
        return out

    def sections_json(self, course: Course) -> list[dict]:
        def build():
            sis_course = course.raw.get("sis_course_id")
            return [
                {
                    "id": s["id"],
                    "name": s["name"],
                    "course_id": course.id,
                    "sis_section_id": s.get("sis_section_id"),
                    "sis_course_id": sis_course,
                    "integration_id": None,
                    "sis_import_id": None,
                    "nonxlist_course_id": s.get("nonxlist_course_id"),
                    "start_at": None,
                    "end_at": None,
                    "restrict_enrollments_to_section_dates": None,
                }
                for s in course.sections
            ]

        return course.cached("sections", build)

    def enrollments_json(self, course: Course, types: list[str], states: list[str]) -> list[dict]:
        types_set = set(types)
        states_set = set(states) if states else {"active", "invited"}
        sections = {s["id"]: s for s in course.sections}
        out = []
        for e in course.enrollments:
            if (types_set and e["type"] not in types_set) or e["state"] not in states_set:
                continue
            user = self.users[e["user_id"]]
            section = sections[e["section_id"]]
            out.append(
                {
                    "id": e["id"],
                    "user_id": e["user_id"],
                    "course_id": course.id,
                    "course_section_id": e["section_id"],
                    "type": e["type"],
                    "role": e["type"],
                    "enrollment_state": e["state"],
                    "root_account_id": 1,
                    "sis_user_id": user.get("sis_user_id"),
                    "sis_section_id": section.get("sis_section_id"),
                    "sis_course_id": course.raw.get("sis_course_id"),
                    "limit_privileges_to_course_section": False,
                    "user": self.user_json(user),
                }
            )
        return out

    # Canvas's enrollment_type[] values of GET /courses/{id}/users, and the enrollment types they mean
    USER_ENROLLMENT_TYPES = {
        "teacher": "TeacherEnrollment",
        "student": "StudentEnrollment",
        "ta": "TaEnrollment",
        "observer": "ObserverEnrollment",
        "designer": "DesignerEnrollment",
    }

    def course_users_json(self, course: Course, enrollment_types: list[str], include: set[str]) -> list[dict]:
        """GET /courses/{id}/users: each user once (a teacher of two sections is one user), with
        an active or invited enrollment of the asked types; ``email`` only with include[]=email."""
        wanted = {self.USER_ENROLLMENT_TYPES.get(t, t) for t in enrollment_types}
        seen: dict[int, dict] = {}
        for e in course.enrollments:
            if (wanted and e["type"] not in wanted) or e["state"] not in ("active", "invited"):
                continue
            if e["user_id"] not in seen:
                user = self.users[e["user_id"]]
                out = self.user_json(user)
                if "email" in include:
                    out["email"] = user.get("email")
                seen[e["user_id"]] = out
        return [seen[u] for u in sorted(seen)]

    @staticmethod
    def user_json(user: dict) -> dict:
        name = user.get("name", f"User {user['id']}")
        first, _, last = name.partition(" ")
        return {
            "id": user["id"],
            "name": name,
            "sortable_name": user.get("sortable_name", f"{last}, {first}" if last else name),
            "short_name": user.get("short_name", name),
            "sis_user_id": user.get("sis_user_id"),
            "login_id": user.get("login_id", f"user{user['id']}"),
            "integration_id": None,
        }

    def assignment_json(self, a: Assignment, with_overrides: bool) -> dict:
        out = {
            "id": a.id,
            "name": a.name,
            "description": "",
            "course_id": a.course_id,
            "assignment_group_id": a.group_id,
            "position": a.position,
            "points_possible": a.points_possible,
            "grading_type": a.grading_type,
            "published": a.published,
            "workflow_state": "published" if a.published else "unpublished",
            "post_to_sis": a.post_to_sis,
            "only_visible_to_overrides": a.only_visible_to_overrides,
            "omit_from_final_grade": a.omit_from_final_grade,
            "due_at": a.due_at,
            "unlock_at": a.unlock_at,
            "lock_at": a.lock_at,
            "created_at": a.created_at,
            "updated_at": a.updated_at,
            "has_overrides": bool(a.overrides),
            "submission_types": ["online_upload"],
            "integration_id": None,
            "sis_assignment_id": None,
            "muted": False,
            "post_manually": a.post_manually,
            "html_url": f"/courses/{a.course_id}/assignments/{a.id}",
        }
        if with_overrides:
            out["overrides"] = [self.override_json(a, ov) for ov in a.overrides]
        return out

    @staticmethod
    def override_json(a: Assignment, ov: dict) -> dict:
        out = {
            "id": ov["id"],
            "assignment_id": a.id,
            "due_at": canvas_time(ov.get("due_at")),
            "unlock_at": canvas_time(ov.get("unlock_at")),
            "lock_at": canvas_time(ov.get("lock_at")),
            "all_day": False,
        }
        if "student_ids" in ov:
            out["student_ids"] = list(ov["student_ids"])
            out["title"] = ov.get("title", f"{len(ov['student_ids'])} students")
        else:
            out["course_section_id"] = ov["course_section_id"]
            out["title"] = ov.get("title", f"Section {ov['course_section_id']}")
        return out

    def groups_json(self, course: Course, with_assignments: bool, with_overrides: bool) -> list[dict]:
        def build():
            out = []
            for g in course.groups:
                item = {
                    "id": g["id"],
                    "name": g["name"],
                    "position": g["position"],
                    "group_weight": g["group_weight"],
                    "sis_source_id": None,
                    "integration_data": {},
                    "rules": {},
                }
                if with_assignments:
                    live = [
                        course.assignments[aid]
                        for aid in g["assignment_ids"]
                        if not course.assignments[aid].deleted
                    ]
                    item["assignments"] = [self.assignment_json(a, with_overrides) for a in live]
                out.append(item)
            return out

        return course.cached(("groups", with_assignments, with_overrides), build)

    def submission_json(self, a: Assignment, user_id: int) -> dict:
        s = a.submissions.get(user_id) or _UNSUBMITTED
        grade = (
            s.grade if s.grade_given else derive_grade(s.score, a.points_possible, a.grading_type, s.excused)
        )
        return {
            "id": a.id * 10_000_000 + user_id % 10_000_000,
            "assignment_id": a.id,
            "user_id": user_id,
            "score": s.score,
            "grade": grade,
            "entered_score": s.score,
            "entered_grade": grade,
            "excused": s.excused,
            "late": s.late,
            "missing": s.missing,
            "late_policy_status": s.late_policy_status,
            "workflow_state": s.workflow_state,
            "graded_at": s.graded_at,
            "submitted_at": s.submitted_at,
            "posted_at": s.posted_at,
            "seconds_late": s.seconds_late,
            "points_deducted": None,
            "attempt": 1 if s.submitted_at else None,
            "grade_matches_current_submission": True,
            "submission_type": "online_upload" if s.submitted_at else None,
        }

    def submission_text(self, a: Assignment, user_id: int) -> str:
        """``submission_json`` rendered straight to JSON text (the endpoint serves ~450k of these a night),
        with fast paths for the two common cases: not graded, and a plain numeric grade."""
        s = a.submissions.get(user_id)
        head = (
            f'{{"id":{a.id * 10_000_000 + user_id % 10_000_000},"assignment_id":{a.id},"user_id":{user_id},'
        )
        if s is None:
            return head + _UNSUBMITTED_TAIL
        if (
            type(s.score) in (int, float)
            and s.workflow_state == "graded"
            and s.posted_at == s.graded_at
            and not (
                s.excused
                or s.late
                or s.missing
                or s.grade_given
                or s.submitted_at
                or s.late_policy_status
                or s.seconds_late
            )
        ):
            score, grade = repr(s.score), js(derive_grade(s.score, a.points_possible, a.grading_type, False))
            return (
                f'{head}"score":{score},"grade":{grade},"entered_score":{score},"entered_grade":{grade},'
                f"{_plain_tail(s.graded_at)}"
            )
        return self._submission_text(a, user_id, s)

    def _submission_text(self, a: Assignment, user_id: int, s: Submission) -> str:
        grade = js(
            s.grade if s.grade_given else derive_grade(s.score, a.points_possible, a.grading_type, s.excused)
        )
        score, graded_at, submitted = js(s.score), js(s.graded_at), s.submitted_at
        kind, attempt = ('"online_upload"', "1") if submitted else ("null", "null")
        return (
            f'{{"id":{a.id * 10_000_000 + user_id % 10_000_000},"assignment_id":{a.id},"user_id":{user_id},'
            f'"score":{score},"grade":{grade},"entered_score":{score},"entered_grade":{grade},'
            f'"excused":{js(s.excused)},"late":{js(s.late)},"missing":{js(s.missing)},'
            f'"late_policy_status":{js(s.late_policy_status)},"workflow_state":{js(s.workflow_state)},'
            f'"graded_at":{graded_at},"submitted_at":{js(submitted)},"posted_at":{js(s.posted_at)},'
            f'"seconds_late":{s.seconds_late},"points_deducted":null,"attempt":{attempt},'
            f'"grade_matches_current_submission":true,"submission_type":{kind}}}'
        )

    def submission_keys(
        self, course: Course, student_ids: list[str], assignment_ids: list[str], graded_since: datetime | None
    ) -> list[tuple[Assignment, int]]:
        """The (assignment, user) pairs the submissions endpoint lists, in a stable order."""
        key = (
            course.id,
            course.version,
            tuple(student_ids),
            tuple(assignment_ids),
            graded_since.timestamp() if graded_since else None,
        )
        hit = self._listing_cache.get(key)
        if hit is not None:
            self._listing_cache.move_to_end(key)
            return hit
        if not student_ids:
            keys: list = []  # Canvas lists the caller's own submissions; an admin has none
        else:
            wanted_users = None if "all" in student_ids else {int(s) for s in student_ids if s.isdigit()}
            wanted_assignments = {int(a) for a in assignment_ids if a.isdigit()} if assignment_ids else None
            since = graded_since.timestamp() if graded_since else None
            keys = []
            for g in course.groups:
                for aid in g["assignment_ids"]:
                    a = course.assignments[aid]
                    if a.deleted or not a.published:
                        continue  # only published assignments have submissions listed
                    if wanted_assignments is not None and aid not in wanted_assignments:
                        continue
                    for uid in self.assigned_students(course, a):
                        if wanted_users is not None and uid not in wanted_users:
                            continue
                        if since is not None:
                            s = a.submissions.get(uid)
                            if s is None or s.graded_ts is None or s.graded_ts <= since:
                                continue
                        keys.append((a, uid))
        self._listing_cache[key] = keys
        if len(self._listing_cache) > 256:
            self._listing_cache.popitem(last=False)
        return keys

    # --- mutations (admin API, day of grading) -----------------------------------------------

    def find_assignment(self, course_id: int, assignment_id: int) -> tuple[Course, Assignment]:
        course = self.courses.get(int(course_id))
        if course is None or int(assignment_id) not in course.assignments:
            raise CanvasError(404, f"no assignment {assignment_id} in course {course_id}")
        return course, course.assignments[int(assignment_id)]

    def set_submission(
        self, course_id: int, assignment_id: int, user_id: int, fields: dict, when: datetime | None = None
    ) -> dict:
        """A teacher grades (or clears) one submission. ``graded_at`` becomes now unless given."""
        unknown = set(fields) - SUBMISSION_FIELDS
        if unknown:
            raise CanvasError(400, f"unknown submission fields {sorted(unknown)}")
        course, a = self.find_assignment(course_id, assignment_id)
        user_id = int(user_id)
        if user_id not in {e["user_id"] for e in course.enrollments}:
            raise CanvasError(404, f"user {user_id} is not enrolled in course {course_id}")
        old = a.submissions.get(user_id)
        merged = {}
        if old is not None:
            merged = {
                "score": old.score,
                "excused": old.excused,
                "late": old.late,
                "missing": old.missing,
                "late_policy_status": old.late_policy_status,
                "submitted_at": old.submitted_at,
            }
        merged.update(fields)
        if "grade" not in fields:
            merged.pop("grade", None)
        if "workflow_state" not in fields:
            merged.pop("workflow_state", None)
        stamp = canvas_time(when or now_utc())
        if "graded_at" not in fields:
            merged["graded_at"] = stamp  # clearing a grade counts as grading it (graded_since sees it)
        was_posted = old is not None and old.posted_at is not None
        a.submissions[user_id] = self._make_submission(a, merged, stamp, was_posted=was_posted)
        course.touch()
        return self.submission_json(a, user_id)

    def post_grades(self, course_id: int, assignment_id: int, when: datetime | None = None) -> dict:
        """The teacher's "Post grades" on an assignment: every graded or excused submission not
        posted yet gets ``posted_at`` = now (its ``graded_at`` stays)."""
        course, a = self.find_assignment(course_id, assignment_id)
        stamp = canvas_time(when or now_utc())
        posted = []
        for uid, s in sorted(a.submissions.items()):
            if s.posted_at is None and (s.excused or s.score is not None):
                s.posted_at = stamp
                posted.append(uid)
        course.touch()
        return {"course_id": course.id, "assignment_id": a.id, "posted": posted}

    def hide_grades(self, course_id: int, assignment_id: int) -> dict:
        """The teacher's "Hide grades": every submission's ``posted_at`` becomes null."""
        course, a = self.find_assignment(course_id, assignment_id)
        hidden = []
        for uid, s in sorted(a.submissions.items()):
            if s.posted_at is not None:
                s.posted_at = None
                hidden.append(uid)
        course.touch()
        return {"course_id": course.id, "assignment_id": a.id, "hidden": hidden}

    def delete_assignment(self, course_id: int, assignment_id: int) -> dict:
        course, a = self.find_assignment(course_id, assignment_id)
        a.deleted = True
        a.updated_at = canvas_time(now_utc())
        course.touch()
        return {"id": a.id, "course_id": course.id, "workflow_state": "deleted"}

    def set_assignment(self, course_id: int, assignment_id: int, fields: dict) -> dict:
        """A teacher edits an assignment; ``assignment_group_id`` moves it to another group."""
        unknown = set(fields) - ASSIGNMENT_FIELDS - {"assignment_group_id"}
        if unknown:
            raise CanvasError(400, f"unknown assignment fields {sorted(unknown)}")
        course, a = self.find_assignment(course_id, assignment_id)
        fields = dict(fields)
        if "assignment_group_id" in fields:
            target = next((g for g in course.groups if g["id"] == fields["assignment_group_id"]), None)
            if target is None:
                raise CanvasError(404, f"no group {fields['assignment_group_id']} in course {course_id}")
            for g in course.groups:
                if a.id in g["assignment_ids"]:
                    g["assignment_ids"].remove(a.id)
            target["assignment_ids"].append(a.id)
            a.group_id = target["id"]
            del fields["assignment_group_id"]
        for key, value in fields.items():
            if key in ("due_at", "unlock_at", "lock_at"):
                value = canvas_time(value)
            setattr(a, key, value)
        a.updated_at = canvas_time(now_utc())
        course.touch()
        return self.assignment_json(a, True)

    def add_assignment(self, course_id: int, group_id: int, fields: dict) -> Assignment:
        course = self.courses.get(int(course_id))
        group = next((g for g in course.groups if g["id"] == group_id), None) if course else None
        if group is None:
            raise CanvasError(404, f"no group {group_id} in course {course_id}")
        now = canvas_time(now_utc())
        raw = {
            "id": self.next_assignment_id,
            "name": fields.get("name", f"Assignment {self.next_assignment_id}"),
            "created_at": now,
            **{k: v for k, v in fields.items() if k in ASSIGNMENT_FIELDS},
        }
        self.next_assignment_id += 1
        a = self._load_assignment(course.id, group_id, raw, len(group["assignment_ids"]) + 1)
        course.assignments[a.id] = a
        group["assignment_ids"].append(a.id)
        course.touch()
        return a

    def course_dump(self, course_id: int) -> dict:
        """Everything about one course, including what the API hides (deleted, unpublished)."""
        course = self.courses.get(course_id)
        if course is None:
            raise CanvasError(404, f"no course {course_id}")
        return {
            "course": self.course_json(course),
            "sections": self.sections_json(course),
            "enrollments": self.enrollments_json(course, [], list({e["state"] for e in course.enrollments})),
            "assignments": [
                dict(
                    self.assignment_json(a, True),
                    deleted=a.deleted,
                    submissions=[self.submission_json(a, uid) for uid in sorted(a.submissions)],
                )
                for a in course.assignments.values()
            ],
        }

    def summary(self) -> dict:
        assignments = [a for c in self.courses.values() for a in c.assignments.values()]
        return {
            "account_id": self.account_id,
            "courses": len(self.courses),
            "sections": sum(len(c.sections) for c in self.courses.values()),
            "users": len(self.users),
            "assignments": sum(1 for a in assignments if not a.deleted),
            "deleted_assignments": sum(1 for a in assignments if a.deleted),
            "graded_submissions": sum(
                1 for a in assignments for s in a.submissions.values() if s.score is not None or s.excused
            ),
            "hidden_submissions": sum(
                1
                for a in assignments
                for s in a.submissions.values()
                if (s.score is not None or s.excused) and s.posted_at is None
            ),
            "terms": len(self.terms),
        }
