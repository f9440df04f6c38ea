"""plan: which courses this run covers (R19), in how many shards, and Aspen's grading periods."""

from __future__ import annotations

import logging
from datetime import date, datetime, timezone
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from canvas_aspen import storage, terms

if TYPE_CHECKING:
    from canvas_aspen.hooks.protocols import AspenApi, CanvasApi

log = logging.getLogger(__name__)


def shards_for(courses: int, *, max_shards: int, courses_per_shard: int) -> int:
    """How many shards a run of ``courses`` courses gets: one per ``courses_per_shard``
    courses (rounded up), at most ``max_shards``, one at least when there is a course. Each
    shard costs a task instance per stage (scheduling, a process, a Great Expectations gate):
    three courses in eight shards would pay that eight times for a few seconds of work."""
    if courses <= 0:
        return 0
    return max(1, min(max_shards, -(-courses // max(1, courses_per_shard))))


def split_courses(course_ids: list[int], n: int) -> list[list[int]]:
    """``course_ids`` in ``n`` shards, dealt round-robin (equal sizes, within one), except that
    the first shard is about half the others' size when that is two courses or more.

    A shard's stages run one after another, Canvas then Aspen, so Aspen (the slower system
    of a night) waits until the first shard is read, validated and matched: a smaller first
    shard gets Aspen working sooner while the next shards are read. Halving a shard of a
    few courses gains nothing, so small districts keep equal shards."""
    if n <= 1:
        return [list(course_ids)] if course_ids else []
    first = len(course_ids) // (2 * n)
    if first < 2:
        return [course_ids[k::n] for k in range(n)]
    rest = course_ids[first:]
    return [course_ids[:first], *(rest[k :: n - 1] for k in range(n - 1))]


def scope_courses(
    canvas: CanvasApi,
    *,
    course_ids: list[int],
    term_refs: str | list[str] | None,
    today: date,
    timezone_name: str,
) -> list[dict[str, Any]]:
    """R19: the courses this run covers, as the course list (or ``get_course``) gives them.

    ``course_ids`` given: exactly those, whatever their term or state. Otherwise the courses in
    ``available`` state of the current terms (``today`` in the district's calendar), or of the
    terms ``term_refs`` names (``CANVAS_ASPEN_TERMS``): one terms listing, then the course list
    per term filtered by Canvas (``enrollment_term_id``, ``state[]``), so nothing of a course
    out of scope is read, not even its listing page."""
    if course_ids:
        courses = canvas.map_concurrent(canvas.get_course, course_ids, on_error="raise")
        courses = [c for c in courses if c.get("workflow_state") not in ("deleted",)]
        log.info("plan: %d course(s) as asked (course_ids), whatever their term or state", len(courses))
        return courses
    refs = term_refs if isinstance(term_refs, list) else terms.parse_term_refs(term_refs)
    listed = canvas.list_terms()
    chosen = terms.named_terms(listed, refs) if refs else terms.current_terms(listed, today, timezone_name)
    seen: dict[int, dict[str, Any]] = {}
    dropped = 0
    for term in chosen:
        for course in canvas.list_courses(enrollment_term_id=term["id"], state=list(terms.IN_SCOPE_STATES)):
            if not terms.in_scope(course):
                dropped += 1
            else:
                seen.setdefault(int(course["id"]), course)
    how = "named by CANVAS_ASPEN_TERMS" if refs else f"current on {today.isoformat()} ({timezone_name})"
    log.info(
        "plan: %d of %d Canvas terms %s: %s; %d term(s) out of scope (their courses not listed)",
        len(chosen),
        len(listed),
        how,
        ", ".join(terms.describe(t) for t in chosen) or "none",
        len(listed) - len(chosen),
    )
    log.info(
        "plan: %d course(s) in scope (available); %d listed but not available, out of scope",
        len(seen),
        dropped,
    )
    if not chosen:
        log.warning("plan: no Canvas term is in scope: this run covers no course")
    return list(seen.values())


def plan(
    canvas: CanvasApi,
    aspen: AspenApi,
    run_dir: Any,
    *,
    params: dict[str, Any],
    shard_count: int,
    courses_per_shard: int = 1,
    today: date | None = None,
    timezone_name: str = "America/New_York",
    term_refs: str | list[str] | None = None,
) -> list[dict[str, Any]]:
    """Which courses this run covers (R19, :func:`scope_courses`), split into at most
    ``shard_count`` shards of about ``courses_per_shard`` courses or more (:func:`shards_for`);
    Aspen's grading periods once. ``today`` is the run's date in the district's calendar
    (default: now)."""
    today = today or datetime.now(ZoneInfo(timezone_name)).date()
    wanted = [int(c) for c in params.get("course_ids") or []]
    courses = scope_courses(
        canvas, course_ids=wanted, term_refs=term_refs, today=today, timezone_name=timezone_name
    )
    course_ids = sorted({int(c["id"]) for c in courses})
    periods = aspen.list_grading_periods()
    n = shards_for(len(course_ids), max_shards=shard_count, courses_per_shard=courses_per_shard)
    shards = split_courses(course_ids, n)
    storage.private_run_dir(run_dir)  # stage files hold SIS ids and scores: owner-only (local paths)
    storage.write_json(
        run_dir / "plan.json",
        {
            "params": params,
            "course_ids": course_ids,
            "shards": shards,
            "grading_periods": periods,
            "courses": {str(int(c["id"])): c for c in courses},  # extract needs no GET /courses/{id}
            "started_at": datetime.now(timezone.utc).isoformat(),  # verify reads back what changed since
        },
    )
    log.info("plan: %d courses in %d shards, %d Aspen grading periods", len(course_ids), n, len(periods))
    return [{"shard": k, "courses": len(s)} for k, s in enumerate(shards)]
