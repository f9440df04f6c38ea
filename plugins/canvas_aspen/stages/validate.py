"""validate: the rows frame of a shard (one row per student and assignment) and the
Great Expectations gate on the grades that may go."""

from __future__ import annotations

import logging
from collections import Counter
from typing import Any

from canvas_aspen import rows, rules, storage
from canvas_aspen.buckets import Bucket
from canvas_aspen.stages.files import read_plan, shard_dir
from canvas_aspen.stages.gate import hold, keep_gx_results, run_gate

log = logging.getLogger(__name__)


def validate(run_dir: Any, shard: int, *, timezone_name: str) -> dict[str, Any]:
    """Build the rows frame and run the grades and assignments suites (R4, R5, R15, R16) on the
    grades that may go (not the empty ones, R7, nor those hidden from students, R20)."""
    sd = shard_dir(run_dir, shard)
    periods = [rules.GradingPeriod.from_oneroster(p) for p in read_plan(run_dir)["grading_periods"]]
    df = rows.build_rows(storage.read_json(sd / "canvas.json"), periods, timezone_name)
    df["error"] = None
    df["held_kinds"] = None
    graded = df[df["bucket"].eq(Bucket.ELIGIBLE)]
    result = run_gate(graded, ["grades", "assignments"], f"{run_dir.name}-shard{shard}-validate")
    hold(df, result.held_back)
    storage.write_frame(sd / "rows.parquet", df)
    storage.write_json(sd / "findings-validate.json", result.findings + rules.hidden_findings(df))
    keep_gx_results(sd, "validate", result)
    counts = df["bucket"].value_counts().to_dict()
    log.info(
        "validate shard %d: %d grades, buckets %s, findings %s",
        shard,
        len(df),
        counts,
        dict(Counter(f["kind"] for f in result.findings)),
    )
    return {"shard": shard, "rows": len(df), "buckets": counts, "findings": len(result.findings)}
