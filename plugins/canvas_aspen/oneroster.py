"""OneRoster 1.1 bodies for the Aspen PUTs, built from rows of the rows frame.

A line item mirrors one Canvas assignment in one Aspen class (domain.md §2): title = the
assignment's name, dueDate = its (section) due date, assignDate = unlock_at else
created_at, resultValueMin 0, resultValueMax = points possible, the matched category
and the R15 grading period.
"""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any

import pandas as pd

COMMENT_LIMIT = 100
TOMBSTONE = "tobedeleted"
"""The OneRoster ``status`` of a deleted record (any case): as good as absent, everywhere an
Aspen answer is read (categories, rosters, line items, results)."""


def is_tombstone(status: Any) -> bool:
    """A record's ``status`` says it was deleted."""
    return isinstance(status, str) and status.lower() == TOMBSTONE


def without_tombstones(frame: pd.DataFrame) -> pd.DataFrame:
    """The rows of an Aspen answer's frame that are not tombstones (all of them when the frame
    has no ``status`` column)."""
    if "status" not in frame.columns:
        return frame
    return frame[frame["status"].astype("string").str.lower().fillna("") != TOMBSTONE]


def iso(ts: Any) -> str | None:
    """UTC ISO-8601 with a Z, the form OneRoster dateTime fields take."""
    if ts is None or (isinstance(ts, float) and math.isnan(ts)) or ts is pd.NaT:
        return None
    if isinstance(ts, str):
        return ts
    ts = pd.Timestamp(ts)
    if pd.isna(ts):
        return None
    return (
        ts.tz_convert("UTC").strftime("%Y-%m-%dT%H:%M:%SZ")
        if ts.tzinfo
        else ts.strftime("%Y-%m-%dT%H:%M:%SZ")
    )


def _ref(sourced_id: str, kind: str) -> dict[str, str]:
    return {"sourcedId": str(sourced_id), "type": kind}


# the row fields a line item body reads
LINE_ITEM_FIELDS = (
    "line_item_id",
    "assignment_id",
    "assignment_name",
    "group_name",
    "assign_date",
    "due_at",
    "aspen_class_id",
    "category_sourced_id",
    "grading_period_id",
    "points_possible",
)


def line_item_title(row: dict[str, Any]) -> str:
    """The title from the Canvas name (Aspen requires one; at most 255 characters)."""
    title = str(row["assignment_name"] or "")[:255]
    if not title.strip():  # Canvas sent none
        title = f"Canvas assignment {row['assignment_id']}"
    return title


def line_item_body(row: dict[str, Any], title: str | None = None) -> dict[str, Any]:
    """``title``: the title to send when it is not the Canvas name's (R21, ``column_codes``)."""
    title = title if title is not None else line_item_title(row)
    return {
        "sourcedId": row["line_item_id"],
        "status": "active",
        "title": title,
        "description": f"{row['group_name']} (Canvas assignment {row['assignment_id']})",
        "assignDate": iso(row["assign_date"]) or iso(row["due_at"]),
        "dueDate": iso(row["due_at"]),
        "class": _ref(row["aspen_class_id"], "class"),
        "category": _ref(row["category_sourced_id"], "category"),
        "gradingPeriod": _ref(row["grading_period_id"], "academicSession"),
        "resultValueMin": 0.0,
        "resultValueMax": float(row["points_possible"]),
    }


def result_body(row: dict[str, Any], score_date: datetime) -> dict[str, Any]:
    """An exempt result carries no score; every other result carries the numeric score."""
    score = row["score"]
    body = {
        "sourcedId": row["result_id"],
        "status": "active",
        "lineItem": _ref(row["line_item_id"], "lineItem"),
        "student": _ref(row["aspen_student_id"], "user"),  # the roster user's sourcedId (R22)
        "scoreStatus": row["score_status"],
        "scoreDate": iso(row.get("graded_at")) or iso(score_date),
    }
    if score is not None and not (isinstance(score, float) and math.isnan(score)):
        body["score"] = float(score)
    return body


def result_value(result: dict[str, Any]) -> tuple[str | None, float | None]:
    """(scoreStatus, score) of a result as Aspen returns it, for comparisons."""
    score = result.get("score")
    try:
        score = None if score in (None, "") else float(score)
    except (TypeError, ValueError):
        score = None
    return result.get("scoreStatus"), score


def results_frame(results: list[dict[str, Any]]) -> pd.DataFrame:
    """Aspen's results (a class's listing) as a frame: ``result_id``, the value
    (:func:`result_value`) and the OneRoster ``status``."""
    return pd.DataFrame(
        [(r.get("sourcedId"), *result_value(r), r.get("status")) for r in results],
        columns=["result_id", "score_status", "score", "status"],
    )
