"""R22: which Aspen roster user a Canvas student is.

Canvas carries one SIS id per student (``sis_user_id``); which field of Aspen's roster user
holds the same value depends on how the district rosters Canvas: Aspen's own ``sourcedId``
(the default), the student number (``identifier``), the ``username`` or the ``email``
(the Aspen connection's extra ``student_id_field``). A Canvas student is the roster user of
the class whose field equals the SIS id (trimmed; ``username`` and ``email`` without regard
to case, as both systems treat them); a result always names that user's ``sourcedId``.

- no roster user has it: the student is not in the class (R16's ``student_not_in_aspen_class``);
- two or more have it: nobody can tell which one is meant, so the grade is held back
  (``ambiguous_student``) rather than posted to the wrong student.

The roster answers are Aspen's ``GET /classes/{id}/students``; nothing here logs, and only
ids are kept (never a name).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, NamedTuple

import pandas as pd

from canvas_aspen.oneroster import is_tombstone

DEFAULT_FIELD = "sourcedId"
CASELESS_FIELDS = frozenset({"username", "email"})


def key_of(value: Any, field: str) -> str | None:
    """The comparable form of a roster value or a Canvas SIS id (None when empty)."""
    if value is None:
        return None
    text = str(value).strip()
    if not text:
        return None
    return text.casefold() if field in CASELESS_FIELDS else text


class Roster(NamedTuple):
    """One class's roster keyed by the district's student id field: key -> the sourcedIds
    of every roster user holding it (more than one: ambiguous)."""

    field: str
    by_key: dict[str, tuple[str, ...]]


def roster(users: Iterable[Mapping[str, Any]], field: str = DEFAULT_FIELD) -> Roster:
    """Index a class's roster users by ``field``; users without a sourcedId or without that
    field cannot be posted to and are left out (tombstoned users too)."""
    by_key: dict[str, list[str]] = {}
    for user in users:
        if not isinstance(user, Mapping) or is_tombstone(user.get("status")):
            continue
        sourced_id = key_of(user.get("sourcedId"), DEFAULT_FIELD)
        key = key_of(user.get(field), field)
        if sourced_id is None or key is None:
            continue
        ids = by_key.setdefault(key, [])
        if sourced_id not in ids:
            ids.append(sourced_id)
    return Roster(field, {k: tuple(v) for k, v in by_key.items()})


class StudentMatch(NamedTuple):
    """Per row: ``aspen_student_id`` (the roster user's sourcedId when exactly one matches),
    ``in_roster`` (at least one roster user matches; False too when the class's roster is
    not known), ``roster_ambiguous`` (two or more match) and ``roster_candidates`` (their
    sourcedIds, for the finding)."""

    aspen_student_id: list[str | None]
    in_roster: list[bool]
    roster_ambiguous: list[bool]
    roster_candidates: list[str | None]


def match_students(
    class_ids: Iterable[Any], sis_ids: Iterable[Any], rosters: Mapping[str, Roster]
) -> StudentMatch:
    """R22 for each (Aspen class, Canvas SIS id) pair. A row without a class or SIS id (R16
    holds it elsewhere), or whose class's roster could not be read, is not in the roster."""
    out = StudentMatch([], [], [], [])
    for class_id, sis in zip(class_ids, sis_ids, strict=True):
        found: tuple[str, ...] = ()
        known = isinstance(class_id, str) and class_id in rosters
        if known:
            r = rosters[class_id]
            key = key_of(sis, r.field) if isinstance(sis, str) else None
            found = r.by_key.get(key, ()) if key is not None else ()
        out.aspen_student_id.append(found[0] if len(found) == 1 else None)
        out.in_roster.append(bool(found))
        out.roster_ambiguous.append(len(found) > 1)
        out.roster_candidates.append(", ".join(found) if len(found) > 1 else None)
    return out


def apply(rows: pd.DataFrame, rosters: Mapping[str, Roster]) -> pd.DataFrame:
    """``rows`` with the columns of :class:`StudentMatch` (replacing earlier ones)."""
    m = match_students(rows["aspen_class_id"], rows["student_sis_id"], rosters)
    return rows.assign(
        aspen_student_id=pd.Series(m.aspen_student_id, index=rows.index, dtype=object),
        in_roster=pd.Series(m.in_roster, index=rows.index, dtype=object),
        roster_ambiguous=pd.Series(m.roster_ambiguous, index=rows.index, dtype=bool),
        roster_candidates=pd.Series(m.roster_candidates, index=rows.index, dtype=object),
    )
