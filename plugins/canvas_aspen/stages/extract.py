"""extract: the Canvas answers of a shard's courses, into the shard's stage files.

The courses are leased first (not in a dry run). Only what the passback needs is kept: an
enrollment's ids, a submission's grade fields (FERPA: no names, no student work).
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from canvas_aspen import rows, rules, storage
from canvas_aspen.errors import ApiError
from canvas_aspen.stages.failures import error_text
from canvas_aspen.stages.files import read_plan, shard_dir
from canvas_aspen.stages.leases import lease_courses
from canvas_aspen.stages.progress import each

if TYPE_CHECKING:
    from canvas_aspen.hooks.protocols import CanvasApi
    from canvas_aspen.ledger import Ledger

log = logging.getLogger(__name__)


def _enrollment_ids(e: dict[str, Any]) -> dict[str, Any]:
    """Only the ids of an enrollment: Canvas also sends the student's name, which must not
    land in stage files (FERPA: keep no more student data than the passback needs)."""
    return {
        "user_id": e.get("user_id"),
        "course_section_id": e.get("course_section_id"),
        "sis_user_id": rows.student_sis_id(e),
    }


SUBMISSION_FIELDS = (
    "assignment_id",
    "user_id",
    "score",
    "grade",
    "excused",
    "missing",
    "late",
    "late_policy_status",
    "graded_at",
    "posted_at",
)
"""What the rows (R4, R6, R7, R20) read of a submission. Canvas sends some twenty fields more, among
them the student's own work (``body``, ``url``, ``attachments``); stage files keep none of it,
and half the size of ``canvas.json`` goes with them."""


def submission_fields(sub: Any) -> Any:
    """A submission with only :data:`SUBMISSION_FIELDS` (a field Canvas left out stays out);
    anything but an object is kept as it came, for ``rows.check_bundle`` to name."""
    return {k: sub[k] for k in SUBMISSION_FIELDS if k in sub} if isinstance(sub, dict) else sub


MAX_ASSIGNMENT_FILTER = 200  # more sendable assignments than this: list every submission (URL length)


def _sendable_ids(groups: Any) -> list[int] | None:
    """The ids of the sendable assignments (R1) to filter the submissions listing by; None
    (no filter) when the answer is not plain enough to be sure of them, or they are too many."""
    try:
        ids_ = sorted({a["id"] for g in groups for a in g.get("assignments") or [] if rules.is_sendable(a)})
    except (AttributeError, KeyError, TypeError):
        return None
    if len(ids_) > MAX_ASSIGNMENT_FILTER or not all(type(i) is int for i in ids_):
        return None
    return ids_


def _no_sis_section(sections: Any) -> bool:
    try:
        return not any(rows.sis_id(s.get("sis_section_id")) for s in sections)
    except (AttributeError, TypeError):
        return False  # read the rest; extract decides on the whole answer


def _teachers(canvas: CanvasApi, course_id: int) -> list[dict[str, Any]] | None:
    """The course's teachers (id, name, email) for the teacher digest, or None when Canvas would
    not list them: the passback of the course goes on, and the report lists the course for the
    data team (no teacher can be told). Names and emails never go to the log."""
    try:
        return [
            {"id": t.get("id"), "name": t.get("name"), "email": t.get("email")}
            for t in canvas.list_teachers(course_id)
        ]
    except ApiError as exc:  # the grades do not depend on it
        log.warning(
            "extract: course %s: teachers not readable (%s); no teacher digest for it",
            course_id,
            error_text(exc),
        )
        return None


def _student_enrollments(canvas: CanvasApi, course_id: int, course: Any) -> list[dict[str, Any]]:
    """The students whose grades count: active enrollments; in a concluded course (named in
    ``course_ids``, R19) every student's enrollment is ``completed``, and those count."""
    concluded = isinstance(course, dict) and course.get("workflow_state") == "completed"
    if concluded:
        return canvas.list_student_enrollments(course_id, states=("active", "completed"))
    return canvas.list_student_enrollments(course_id)


def course_bundle(canvas: CanvasApi, course_id: int, course: dict[str, Any] | None = None) -> dict[str, Any]:
    """The Canvas answers of one course, in as few requests as they allow: the course comes
    from the plan (the course list has the same fields), a course without any SIS section
    needs nothing more, and only the submissions of sendable assignments (R1) are listed
    (the others are never sent; R10's deletions come from the assignment groups)."""
    sections = canvas.list_sections(course_id)
    bundle = {
        "course": course if course is not None else canvas.get_course(course_id),
        "sections": sections,
        "enrollments": [],
        "assignment_groups": [],
        "submissions": [],
    }
    if _no_sis_section(sections):
        return bundle  # extract skips it
    bundle["teachers"] = _teachers(canvas, course_id)
    bundle["enrollments"] = [
        _enrollment_ids(e) for e in _student_enrollments(canvas, course_id, bundle["course"])
    ]
    bundle["assignment_groups"] = groups = canvas.list_assignment_groups(course_id)
    sendable = _sendable_ids(groups)
    if sendable != []:
        bundle["submissions"] = [
            submission_fields(s) for s in canvas.list_submissions(course_id, assignment_ids=sendable)
        ]
    return bundle


def write_canvas_answers(sd: Any, bundles: list[dict[str, Any]]) -> None:
    """extract's output: ``canvas.json`` (every answer) for validate, ``courses.json``, each
    course without its enrollments, submissions and teachers, which is all deltas (R10) and post
    (the class guard) read (parsing a shard's whole canvas.json cost each of them seconds), and
    ``teachers.json`` (course -> its teachers) for the report and the teacher digest."""
    storage.write_json(sd / "canvas.json", bundles)
    storage.write_json(
        sd / "courses.json",
        [
            {k: v for k, v in b.items() if k not in ("enrollments", "submissions", "teachers")}
            for b in bundles
        ],
    )
    storage.write_json(
        sd / "teachers.json",
        {str(b["course"]["id"]): b.get("teachers") for b in bundles if isinstance(b.get("course"), dict)},
    )


def _checked(answer: Any) -> Any:
    """A course's Canvas answers, or the error that makes them unusable (malformed ids)."""
    if isinstance(answer, BaseException):
        return answer
    try:
        rows.check_bundle(answer)
    except ValueError as exc:
        return exc
    return answer


def extract(
    canvas: CanvasApi,
    run_dir: Any,
    shard: int,
    *,
    ledger: Ledger | None = None,
    run_id: str | None = None,
    lease: timedelta | None = None,
) -> dict[str, Any]:
    """Canvas groups, assignments, overrides, enrollments and grades of the shard's courses.
    With ``ledger``/``run_id``/``lease`` (not in a dry run) the courses are leased first: a
    course another run holds is read all the same (its grades are counted) but fails."""
    plan_doc = read_plan(run_dir)
    course_ids = plan_doc["shards"][shard]
    busy = {} if plan_doc["params"].get("dry_run") else lease_courses(ledger, run_id, lease, course_ids)
    known = plan_doc.get("courses") or {}
    answers = each(
        canvas,
        lambda c: course_bundle(canvas, c, known.get(str(c))),
        course_ids,
        f"extract shard {shard}: courses",
    )
    answers = [_checked(a) for a in answers]  # a malformed answer fails its course here, not the shard later
    bundles, failures = [], {}
    for course_id, answer in zip(course_ids, answers, strict=True):
        if isinstance(answer, BaseException):
            failures[str(course_id)] = error_text(answer)
            log.warning("extract: course %s failed: %s", course_id, failures[str(course_id)])
        elif not any(rows.sis_id(s.get("sis_section_id")) for s in answer["sections"]):
            log.info("extract: course %s has no SIS section; skipped", course_id)
        else:
            bundles.append(answer)
    bundled = {str(b["course"]["id"]) for b in bundles}
    busy = {c: why for c, why in busy.items() if c in bundled}
    failures.update(busy)
    sd = shard_dir(run_dir, shard)
    storage.write_json(sd / "busy-courses.json", busy)
    write_canvas_answers(sd, bundles)
    storage.write_json(sd / "failed-courses.json", failures)
    subs = sum(len(b["submissions"]) for b in bundles)
    log.info(
        "extract shard %d: %d courses, %d submissions, %d courses failed",
        shard,
        len(bundles),
        subs,
        len(failures),
    )
    return {"shard": shard, "courses": len(bundles), "submissions": subs, "failed_courses": len(failures)}


def course_teachers(run_dir: Any) -> dict[int, list[dict[str, Any]] | None]:
    """Each course extract read (with an SIS section), and its teachers as Canvas listed them
    (None: Canvas would not list them). A shard whose extract did not finish has none."""
    out: dict[int, list[dict[str, Any]] | None] = {}
    for shard in range(len(read_plan(run_dir)["shards"])):
        path = shard_dir(run_dir, shard) / "teachers.json"
        if path.exists():
            out.update({int(course): teachers for course, teachers in storage.read_json(path).items()})
    return out
