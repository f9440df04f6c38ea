"""How a stage fails grades and courses without stopping the others: the rows end in the
``failed`` bucket with the error, and the course with why in ``failed-courses.json`` (the
report shows them and fails the run)."""

from __future__ import annotations

from typing import Any

import pandas as pd

from canvas_aspen import storage
from canvas_aspen.buckets import Bucket


def error_text(exc: BaseException) -> str:
    """An error as the stage files and the report say it (type and message, 500 characters at most)."""
    return f"{type(exc).__name__}: {exc}"[:500]


def fail_rows(df: pd.DataFrame, mask: pd.Series, message: str) -> None:
    """The rows of ``mask`` -> ``failed``, with ``message`` as their error."""
    df.loc[mask, "bucket"] = Bucket.FAILED
    df.loc[mask, "error"] = message


def add_course_errors(sd: Any, errors: dict[str, str]) -> None:
    """Courses that failed after extract, with why: the report shows them (and fails the run)."""
    if errors:
        merged = storage.read_json(sd / "failed-courses.json", default={})
        for course, why in errors.items():
            merged[course] = (
                why if not merged.get(course) or why in merged[course] else f"{merged[course]}; {why}"
            )
        storage.write_json(sd / "failed-courses.json", merged)
