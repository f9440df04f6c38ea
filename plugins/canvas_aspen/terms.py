"""R19: which courses a night covers.

A night covers the courses of the **current Canvas terms** that are ``available``: a term is
current when today, in the district's time zone, lies within its ``start_at``..``end_at`` (a
missing date leaves that side open, so Canvas's Default Term, which has none, is always
current). A deployment may name its terms instead (``CANVAS_ASPEN_TERMS``: Canvas term ids or
``sis_term_id:`` ids). Courses named in a run's ``course_ids`` are taken as asked, whatever
their term or state; that is decided in ``stages.plan.scope_courses``, which calls these functions.

Pure functions over the terms listing (``GET /api/v1/accounts/{id}/terms``); no I/O.
"""

from __future__ import annotations

from datetime import date
from typing import Any
from zoneinfo import ZoneInfo

from canvas_aspen.rules import parse_instant

SIS_PREFIX = "sis_term_id:"
IN_SCOPE_STATES = ("available",)  # the course list's state[]: published, not concluded, not deleted


def parse_term_refs(text: str | None) -> list[str]:
    """``CANVAS_ASPEN_TERMS`` as a list: ``"12, sis_term_id:2627"`` -> ``["12", "sis_term_id:2627"]``
    (duplicates dropped, order kept); empty -> ``[]`` (the current terms). Anything that is
    neither a term id nor ``sis_term_id:X`` is a ``ValueError`` that names it."""
    refs: list[str] = []
    for part in (text or "").split(","):
        ref = part.strip()
        if not ref:
            continue
        if ref.startswith(SIS_PREFIX):
            if not ref[len(SIS_PREFIX) :].strip():
                raise ValueError(f"CANVAS_ASPEN_TERMS: {ref!r} names no SIS term id")
            ref = SIS_PREFIX + ref[len(SIS_PREFIX) :].strip()
        elif not ref.isdigit():
            raise ValueError(f"CANVAS_ASPEN_TERMS: {ref!r} is neither a Canvas term id nor sis_term_id:<id>")
        if ref not in refs:
            refs.append(ref)
    return refs


def _local_date(value: Any, tz: str) -> date | None:
    instant = parse_instant(value) if value else None
    return instant.astimezone(ZoneInfo(tz)).date() if instant else None


def is_current(term: dict[str, Any], today: date, tz: str) -> bool:
    """R19: today (the district's calendar date) within the term's dates, both ends included;
    a term without a start or an end is open on that side (the Default Term has neither). A
    deleted term is never current."""
    if term.get("workflow_state") == "deleted":
        return False
    start, end = _local_date(term.get("start_at"), tz), _local_date(term.get("end_at"), tz)
    return (start is None or start <= today) and (end is None or today <= end)


def current_terms(terms: list[dict[str, Any]], today: date, tz: str) -> list[dict[str, Any]]:
    """The terms a night covers when the deployment names none."""
    return [t for t in terms if is_current(t, today, tz)]


def named_terms(terms: list[dict[str, Any]], refs: list[str]) -> list[dict[str, Any]]:
    """The terms ``CANVAS_ASPEN_TERMS`` names, in its order; a name Canvas does not know is a
    ``ValueError`` listing every such name (a typo must not quietly cover nothing)."""
    by_id = {str(t.get("id")): t for t in terms}
    by_sis = {str(t["sis_term_id"]): t for t in terms if t.get("sis_term_id") not in (None, "")}
    chosen, unknown = [], []
    for ref in refs:
        term = by_sis.get(ref[len(SIS_PREFIX) :]) if ref.startswith(SIS_PREFIX) else by_id.get(ref)
        if term is None:
            unknown.append(ref)
        elif term not in chosen:
            chosen.append(term)
    if unknown:
        known = ", ".join(
            f"{t.get('id')} ({t.get('sis_term_id') or 'no SIS id'}: {t.get('name')})" for t in terms
        )
        raise ValueError(
            f"CANVAS_ASPEN_TERMS names term(s) Canvas does not have: {', '.join(unknown)}; "
            f"the account's terms are {known or 'none'}"
        )
    return chosen


def in_scope(course: dict[str, Any]) -> bool:
    """A listed course the night covers: ``available`` (a Canvas that ignores ``state[]`` may
    list concluded or unpublished ones; they are dropped here)."""
    return course.get("workflow_state") in IN_SCOPE_STATES


def describe(term: dict[str, Any]) -> str:
    """A term for logs: its id and name (no student data in terms)."""
    return f"{term.get('id')} {term.get('name')!r}"
