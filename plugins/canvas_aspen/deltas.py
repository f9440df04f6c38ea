"""What this run must PUT: pure, vectorised decisions over DataFrames.

Three values meet for every grade: D, what Canvas has now (desired); L, what this project
last posted (the ledger); A, what Aspen holds now. Values compare as (scoreStatus, score)
with a float tolerance; the score is ignored when the status is ``exempt``.

- R8: a grade is posted only when D differs from L, or Aspen lacks it.
- R9: an Aspen-side edit to a value Canvas did not change (D == L != A) is kept and
  reported, never overwritten, not even by a full resync.
- R7: a grade cleared in Canvas is never posted; when we had posted it, it is reported.
- R20: a grade hidden from the student is never posted; when we had posted it, it is reported.
- R10: our line items whose Canvas assignment is gone are reported as orphans.

Findings name students by SIS id only; nothing here logs.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping
from typing import Any, NamedTuple

import numpy as np
import pandas as pd

from canvas_aspen import ids
from canvas_aspen.findings import finding
from canvas_aspen.oneroster import without_tombstones
from canvas_aspen.rules import EXEMPT

TOLERANCE = 1e-6
POST, UNCHANGED = "post", "unchanged"

ACTIONS = [POST, UNCHANGED]
# reason -> action, in priority order: the first condition that holds decides a row; the
# last reason is the default
RESULT_REASONS = {
    "missing_in_aspen": POST,
    "aspen_edited": UNCHANGED,
    "full_resync": POST,
    "same": UNCHANGED,
    "new": POST,
    "changed_in_canvas": POST,
}
LINE_ITEM_REASONS = {
    "missing_in_aspen": POST,
    "not_in_ledger": POST,
    "changed": POST,
    "full_resync": POST,
    "same": UNCHANGED,
}
REPORT_COLUMNS = (
    "canvas_course_id",
    "aspen_class_id",
    "assignment_id",
    "assignment_name",
    "group_name",
    "student_sis_id",
)


class ResultDeltas(NamedTuple):
    """``actions``: the rows with ``action`` and ``reason``; ``findings``: R9 findings;
    ``adopt``: unchanged rows where Aspen already holds the Canvas value although the
    ledger does not say so (record them in the ledger as in agreement)."""

    actions: pd.DataFrame
    findings: list[dict[str, Any]]
    adopt: pd.DataFrame


class Orphans(NamedTuple):
    """R10: one finding per orphaned line item, and their ids (deleted only on request)."""

    findings: list[dict[str, Any]]
    line_item_ids: list[str]


# --------------------------------------------------------------------------- values


class _Values(NamedTuple):
    """(scoreStatus, score) columns aligned to some rows; ``present`` False where absent."""

    present: np.ndarray
    status: np.ndarray
    score: np.ndarray


def _status(series: pd.Series) -> np.ndarray:
    """Statuses compared case- and space-insensitively; missing -> ""."""
    return series.astype("string").str.strip().str.lower().fillna("").to_numpy(dtype=object)


def _score(series: pd.Series) -> np.ndarray:
    return pd.to_numeric(series, errors="coerce").to_numpy(dtype="float64", na_value=np.nan)


def _own(rows: pd.DataFrame) -> _Values:
    return _Values(np.ones(len(rows), dtype=bool), _status(rows["score_status"]), _score(rows["score"]))


def _positions(keys: pd.Series, *columns: pd.Series) -> list[np.ndarray]:
    """For each of ``columns``, the position holding each key (-1 where absent; the last
    duplicate wins), from one factorisation of all ids together. Integer lookups instead
    of ``isin``/``merge`` on strings: Arrow strings there cost seconds at 450k rows."""
    codes, uniques = pd.factorize(pd.concat([keys, *columns], ignore_index=True))
    key_codes, start, out = codes[: len(keys)], len(keys), []
    for column in columns:
        column_codes = codes[start : start + len(column)]
        where = np.full(len(uniques) + 1, -1)  # slot -1 (a missing key) stays -1
        where[column_codes[column_codes >= 0]] = np.flatnonzero(column_codes >= 0)
        out.append(where[key_codes])
        start += len(column)
    return out


def _lookup(keys: pd.Series, *tables: pd.DataFrame) -> list[_Values]:
    """The (status, score) each of ``tables`` holds for each of ``keys``, by result_id."""
    tables = tuple(without_tombstones(t) for t in tables)
    return [
        _Values(
            pos >= 0,  # -1 picks the appended "absent" sentinel:
            np.append(_status(table["score_status"]), "")[pos],
            np.append(_score(table["score"]), np.nan)[pos],
        )
        for table, pos in zip(tables, _positions(keys, *(t["result_id"] for t in tables)), strict=True)
    ]


def _same(a: _Values, b: _Values) -> np.ndarray:
    """Equal as (status, score): scores within TOLERANCE (or both absent), except that an
    exempt status ignores the score. Rows where either side is absent are never equal."""
    both_missing = np.isnan(a.score) & np.isnan(b.score)
    with np.errstate(invalid="ignore"):
        close = np.abs(a.score - b.score) <= TOLERANCE
    equal = (a.status == b.status) & ((a.status == EXEMPT) | close | both_missing)
    return equal & a.present & b.present


def _display(status: str, score: float) -> str:
    """A value as a report shows it: "exempt", "8.5 (fully graded)", "not submitted"."""
    if status == EXEMPT or math.isnan(score):
        return status or "(empty)"
    return f"{score:g} ({status})"


def _decided(frame: pd.DataFrame, conditions: list[np.ndarray], reasons: dict[str, str]) -> pd.DataFrame:
    """``frame`` with ``reason`` = the first of ``reasons`` whose condition holds (else the
    last one) and its ``action``; both categorical over their fixed vocabularies (free to
    build at 450k rows, where string columns cost half a second)."""
    names = list(reasons)
    codes = np.select(conditions, np.arange(len(conditions)), default=len(names) - 1)
    action_codes = np.array([ACTIONS.index(reasons[name]) for name in names])
    return frame.assign(
        action=pd.Categorical.from_codes(action_codes[codes], categories=ACTIONS),
        reason=pd.Categorical.from_codes(codes, categories=names),
    )


def _report_fields(rows: pd.DataFrame) -> list[dict[str, Any]]:
    """The finding fields each row carries (plain Python values, missing -> None)."""
    columns = [c for c in REPORT_COLUMNS if c in rows.columns]
    frame = rows[columns].astype(object)
    return frame.where(frame.notna(), None).to_dict("records")


# --------------------------------------------------------------------------- results


def result_actions(
    rows: pd.DataFrame, ledger: pd.DataFrame, aspen: pd.DataFrame, *, full_resync: bool = False
) -> ResultDeltas:
    """R8 + R9: decide ``post`` or ``unchanged`` for each eligible row.

    ``rows``: eligible rows of the rows frame (result_id, score, score_status,
    canvas_status and the report columns); ``ledger``: ``Ledger.posted_results`` of their
    classes; ``aspen``: what Aspen holds now (result_id, score, score_status[, status]).
    Returns the rows (same index) with ``action`` and ``reason`` added, the
    ``aspen_edited`` findings, and the rows to ``adopt`` into the ledger."""
    keys = rows["result_id"]
    desired, (posted, held) = _own(rows), _lookup(keys, ledger, aspen)
    canvas_unchanged = _same(desired, posted)
    edited = held.present & canvas_unchanged & ~_same(held, posted)
    aspen_agrees = _same(held, desired)
    conditions = [
        ~held.present,
        edited,
        np.full(len(rows), full_resync),
        canvas_unchanged | aspen_agrees,
        ~posted.present,
    ]
    actions = _decided(rows, conditions, RESULT_REASONS)
    adopt = actions[(actions["reason"] == "same").to_numpy() & ~canvas_unchanged]
    findings = _edited_findings(actions[edited], held.status[edited], held.score[edited])
    return ResultDeltas(actions, findings, adopt)


def _edited_findings(
    rows: pd.DataFrame, aspen_status: np.ndarray, aspen_score: np.ndarray
) -> list[dict[str, Any]]:
    """R9: one warning per kept Aspen edit: value = Aspen's, limit = ours (= Canvas's)."""
    ours = _own(rows)
    return [
        finding(
            "aspen_edited",
            "Aspen holds a value edited in Aspen; Canvas did not change, so Aspen's value is kept",
            value=_display(theirs_status, theirs_score),
            limit=_display(our_status, our_score),
            suggestion="If the Aspen value is right, enter it in Canvas too; if Canvas is right, "
            "change the grade in Canvas (a changed grade is sent) or fix it in Aspen by hand",
            **fields,
        )
        for fields, theirs_status, theirs_score, our_status, our_score in zip(
            _report_fields(rows), aspen_status, aspen_score, ours.status, ours.score, strict=True
        )
    ]


def cleared_findings(empty_rows: pd.DataFrame, ledger: pd.DataFrame) -> list[dict[str, Any]]:
    """R7: rows now empty in Canvas that the ledger says we posted. An empty is never
    posted, so Aspen keeps the old value: one ``cleared_in_canvas`` warning each."""
    [posted] = _lookup(empty_rows["result_id"], ledger)
    hit = empty_rows[posted.present]
    return [
        finding(
            "cleared_in_canvas",
            "The grade was cleared in Canvas; an empty grade is never sent, so Aspen keeps the value posted "
            "before",
            value=_display(status, score),
            suggestion="Enter the grade again in Canvas, or clear it in Aspen by hand",
            **fields,
        )
        for fields, status, score in zip(
            _report_fields(hit), posted.status[posted.present], posted.score[posted.present], strict=True
        )
    ]


def hidden_after_posting_findings(hidden_rows: pd.DataFrame, ledger: pd.DataFrame) -> list[dict[str, Any]]:
    """R20: rows now hidden from the student (manual posting policy) that the ledger says we
    posted before. A hidden grade is never sent, so Aspen keeps the value posted before: one
    ``hidden_in_canvas`` warning each (the Aspen value stays, as for R7's cleared grades)."""
    [posted] = _lookup(hidden_rows["result_id"], ledger)
    hit = hidden_rows[posted.present]
    return [
        finding(
            "hidden_in_canvas",
            "The teacher hid this grade from the student in Canvas after it was posted; a hidden grade is "
            "never sent, so Aspen keeps the value posted before (parents may still see it there)",
            value=_display(status, score),
            suggestion="Post the grade again in Canvas when it is final, or remove it in Aspen by hand",
            **fields,
        )
        for fields, status, score in zip(
            _report_fields(hit), posted.status[posted.present], posted.score[posted.present], strict=True
        )
    ]


# --------------------------------------------------------------------------- line items


def _canonical(value: Any) -> Any:
    """A JSON-stable form: sorted by json.dumps; numpy unboxed; 10.0 and 10 alike."""
    if isinstance(value, Mapping):
        return {str(k): _canonical(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_canonical(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def payload_hash(body: dict[str, Any]) -> str:
    """A stable SHA-256 of a lineItem body: key order and int/float spelling do not matter."""
    text = json.dumps(
        _canonical(body), sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str
    )
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def line_item_actions(
    desired: pd.DataFrame, ledger_items: pd.DataFrame, aspen_items: pd.DataFrame, *, full_resync: bool = False
) -> pd.DataFrame:
    """R8 for line items: ``post`` when Aspen lacks it, when its payload hash differs from
    the one the ledger recorded (or the ledger has none), or on a full resync.

    ``desired``: one row per line item with ``line_item_id`` and ``payload_hash`` (or a
    ``body`` dict column it is computed from); ``ledger_items``: ``Ledger.posted_line_items``
    (deleted ones count as absent); ``aspen_items``: Aspen's line items (``line_item_id``
    [, ``status``]). Returns ``desired`` with ``payload_hash``, ``action`` and ``reason``."""
    out = desired.copy()
    if "payload_hash" not in out.columns:
        out["payload_hash"] = out["body"].map(payload_hash)
    live = ledger_items
    if "deleted_at" in live.columns:
        live = live[live["deleted_at"].isna()]
    recorded = out["line_item_id"].map(
        live.drop_duplicates("line_item_id", keep="last").set_index("line_item_id")["payload_hash"]
    )
    conditions = [
        _positions(out["line_item_id"], without_tombstones(aspen_items)["line_item_id"])[0] < 0,
        recorded.isna().to_numpy(),
        (recorded != out["payload_hash"]).to_numpy(),
        np.full(len(out), full_resync),
    ]
    return _decided(out, conditions, LINE_ITEM_REASONS)


def orphans(
    aspen_items: pd.DataFrame,
    canvas_assignment_ids_by_course: Mapping[int, set[int]],
    class_to_course: Mapping[str, int],
) -> Orphans:
    """R10: our line items (``ids.parse_line_item_id``) in this run's classes whose Canvas
    assignment no longer exists in its course.

    ``aspen_items``: line_item_id, aspen_class_id[, title, status];
    ``canvas_assignment_ids_by_course``: every assignment id that exists in each course
    this run read (a course missing here, e.g. one that failed to extract, is not judged);
    ``class_to_course``: Aspen class -> Canvas course, for the classes this run resolved."""
    items = without_tombstones(aspen_items)
    parsed = items["line_item_id"].map(ids.parse_line_item_id)
    course = items["aspen_class_id"].map(class_to_course)
    judged = parsed.notna() & course.isin(list(canvas_assignment_ids_by_course))
    items, parsed, course = items[judged], parsed[judged], course[judged].astype("int64")
    assignment = parsed.map(lambda pair: pair[0])
    known = {(c, a) for c, assignments in canvas_assignment_ids_by_course.items() for a in assignments}
    gone = np.array([pair not in known for pair in zip(course, assignment, strict=True)], dtype=bool)
    items, course, assignment = items[gone], course[gone], assignment[gone]
    titles = items["title"] if "title" in items.columns else pd.Series(None, index=items.index, dtype=object)
    found = [
        finding(
            "orphaned_line_item",
            f"Line item {line_item} mirrors Canvas assignment {a}, which no longer exists in course {c}",
            canvas_course_id=int(c),
            aspen_class_id=str(class_id),
            assignment_id=int(a),
            assignment_name=None if pd.isna(title) else str(title),
            value=str(line_item),
            suggestion="Delete it in Aspen, or rerun with delete_orphans to have it removed",
        )
        for line_item, class_id, c, a, title in zip(
            items["line_item_id"], items["aspen_class_id"], course, assignment, titles, strict=True
        )
    ]
    return Orphans(found, items["line_item_id"].astype(str).tolist())


def aspen_holds(rows: pd.DataFrame, aspen: pd.DataFrame) -> np.ndarray:
    """R18: for each row (result_id, score_status, score), does Aspen hold that value now?"""
    (held,) = _lookup(rows["result_id"], aspen)
    return _same(held, _own(rows))
