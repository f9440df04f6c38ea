"""match: each Aspen class's categories and roster, Canvas groups matched to categories (R2),
students to the roster (R16, R22), and the match and advice suites."""

from __future__ import annotations

import logging
from collections import Counter
from typing import TYPE_CHECKING, Any

from canvas_aspen import match as match_mod
from canvas_aspen import storage, students
from canvas_aspen.buckets import GRADEABLE, Bucket
from canvas_aspen.errors import ApiError
from canvas_aspen.stages.class_guard import fail_class, fail_missing_class
from canvas_aspen.stages.files import shard_dir
from canvas_aspen.stages.gate import hold, keep_gx_results, run_gate
from canvas_aspen.stages.progress import each

if TYPE_CHECKING:
    from canvas_aspen.hooks.protocols import AspenApi

log = logging.getLogger(__name__)


def match(
    aspen: AspenApi,
    run_dir: Any,
    shard: int,
    *,
    mappings: dict[str, dict[str, str]],
    student_id_field: str | None = None,
) -> dict[str, Any]:
    """R2: categories of every Aspen class of the shard; rosters (R16, R22: keyed by the Aspen
    connection's ``student_id_field`` unless given); the match and advice suites (R2, R13,
    R14, R22)."""
    field = student_id_field or aspen.student_id_field
    sd = shard_dir(run_dir, shard)
    df = storage.read_frame(sd / "rows.parquet")
    classes = sorted(df["aspen_class_id"].dropna().unique().tolist())
    answers = each(
        aspen,
        lambda c: (match_mod.active_categories(aspen.list_categories(c)), aspen.list_students(c)),
        classes,
        f"match shard {shard}: Aspen classes",
    )
    categories, rosters = {}, {}
    for class_id, answer in zip(classes, answers, strict=True):
        if isinstance(answer, ApiError) and answer.status == 404:
            fail_missing_class(df, sd, class_id, answer)
        elif isinstance(answer, BaseException):
            fail_class(df, sd, class_id, (*GRADEABLE, Bucket.FAILED), answer)
        else:
            categories[class_id] = answer[0]
            rosters[class_id] = students.roster(answer[1], field)

    table = match_mod.match_table(df, categories, mappings)
    df = match_mod.apply_matches(df, table, rosters)
    gradeable = df[df["bucket"].isin(GRADEABLE)]
    result = run_gate(gradeable, ["match"], f"{run_dir.name}-shard{shard}-match")
    hold(df, result.held_back)
    advice = run_gate(match_mod.groups_frame(gradeable), ["advice"], f"{run_dir.name}-shard{shard}-advice")

    storage.write_frame(sd / "rows.parquet", df)
    storage.write_json(sd / "findings-match.json", result.findings + advice.findings)
    keep_gx_results(sd, "match", result, advice)
    counts = df["bucket"].value_counts().to_dict()
    log.info(
        "match shard %d: %d classes, kinds %s, students by %s: %d ambiguous, buckets %s",
        shard,
        len(classes),
        dict(Counter(table["match_kind"])),
        field,
        int(df["roster_ambiguous"].sum()),
        counts,
    )
    return {"shard": shard, "classes": len(classes), "buckets": counts}
