"""The class guard: what keeps a run writing only into the Aspen classes it resolved from
Canvas, and what fails a whole class or course when Aspen's answers for a class are unusable.

Aspen does not scope a client to classes: a section's SIS id names its class, and nothing
else may (:func:`unresolved_writes`, checked by post before any write). A class whose answers
could not be read fails its grades (:func:`fail_class`); a class Aspen does not have fails
its whole course (:func:`fail_missing_class`, match): nothing of that course is written.
"""

from __future__ import annotations

import json
import logging
from typing import Any

import pandas as pd

from canvas_aspen import ids, rows, storage
from canvas_aspen.buckets import GRADEABLE, Bucket
from canvas_aspen.stages.failures import add_course_errors, error_text, fail_rows

log = logging.getLogger(__name__)


def fail_class(
    df: pd.DataFrame, sd: Any, class_id: str, buckets: tuple[Bucket, ...], error: BaseException
) -> None:
    """An Aspen class whose answers could not be used: its grades fail, and its courses carry
    the error (naming the endpoint) into the report, so the run fails loudly."""
    message = f"Aspen class {class_id}: {error_text(error)}"
    in_class = df["aspen_class_id"].eq(class_id)
    fail_rows(df, in_class & df["bucket"].isin(buckets), message)
    log.warning("%s", message)
    add_course_errors(sd, {str(c): message for c in df.loc[in_class, "canvas_course_id"].unique()})


def fail_missing_class(df: pd.DataFrame, sd: Any, class_id: str, error: BaseException) -> None:
    """An Aspen class that does not exist (Aspen answered 404): the section's SIS id names no
    class, as with a concluded course named in ``course_ids`` (R19) whose class is gone. Its
    whole course fails, naming the class, and nothing of that course is written."""
    courses = sorted(int(c) for c in df.loc[df["aspen_class_id"].eq(class_id), "canvas_course_id"].unique())
    message = (
        f"Aspen has no class {class_id} (the SIS id of a section of this course): nothing of this course "
        f"was written. A concluded course's Aspen class is usually gone; fix the section's SIS id or leave "
        f"the course out. ({error_text(error)})"
    )
    fail_rows(df, df["canvas_course_id"].isin(courses) & df["bucket"].isin(GRADEABLE), message)
    log.warning(
        "Aspen class %s does not exist: course(s) %s fail, nothing of them is written", class_id, courses
    )
    add_course_errors(sd, {str(c): message for c in courses})
    missing = storage.read_json(sd / "missing-classes.json", default=[])
    storage.write_json(sd / "missing-classes.json", sorted({*missing, class_id}))


def section_classes(bundles: list[dict[str, Any]]) -> dict[int, tuple[str | None, int]]:
    """Canvas section -> (its SIS id = its Aspen class, its Canvas course), as extract read
    them from Canvas in this run: the only classes this run may write to."""
    return {
        int(s["id"]): (rows.sis_id(s.get("sis_section_id")), int(b["course"]["id"]))
        for b in bundles
        for s in b.get("sections") or []
    }


def unresolved_writes(
    li_post: pd.DataFrame,
    to_post: pd.DataFrame,
    orphan_ids: list[str],
    sections: dict[int, tuple[str | None, int]],
) -> str | None:
    """The class guard: why some write would touch an Aspen class this run did not resolve from a
    Canvas section's SIS id (None when every write is fine). A line item's id names its Canvas
    section; that section's SIS id must be the class its body, its row and its results name.
    Aspen does not scope a client to classes: this is what keeps a tampered or buggy stage
    file from writing into any other class of the district."""

    def target(li_id: Any) -> str | None:
        parsed = ids.parse_line_item_id(str(li_id))
        return sections.get(parsed[1], (None, 0))[0] if parsed else None

    where = {
        li_id: target(li_id) for li_id in {*li_post["line_item_id"], *to_post["line_item_id"], *orphan_ids}
    }
    body_class = li_post["body"].map(
        lambda b: str(((json.loads(b) or {}).get("class") or {}).get("sourcedId"))
    )
    bad = [
        f"line item {i} -> class {c!r}"
        for i, c, b in zip(li_post["line_item_id"], li_post["aspen_class_id"], body_class, strict=True)
        if where[i] is None or where[i] != c or b != c
    ]
    bad += [
        f"result {r} -> class {c!r}"
        for r, i, c in zip(
            to_post["result_id"], to_post["line_item_id"], to_post["aspen_class_id"], strict=True
        )
        if where[i] is None or where[i] != c or not str(r).startswith(f"{i}-u")
    ]
    bad += [f"orphan deletion {i}" for i in orphan_ids if where[i] is None]
    if not bad:
        return None
    return (
        f"refused to post this shard: {len(bad)} write(s) name an Aspen class this run did not resolve "
        f"from a Canvas section's SIS id (stage files altered?), e.g. {'; '.join(bad[:3])}"
    )


def refuse_shard(df: pd.DataFrame, sd: Any, to_post: pd.Index, shard_courses: list[int], why: str) -> None:
    """The guard refused the shard (:func:`unresolved_writes`): nothing of it is written; its
    grades to post fail with ``why``, and every course of the shard carries it into the report."""
    fail_rows(df, df.index.isin(to_post), why)
    add_course_errors(sd, {str(c): why for c in shard_courses})
