"""The naive baseline: what clicking "Post Grades" in every course does.

One request at a time (the connections' ``max_concurrency`` is 1), course after course:
read the course from Canvas, read the categories of its Aspen classes (to name each line
item's category), then PUT every line item and every graded result, whatever Aspen already
holds. Nothing is compared, nothing is held back (Aspen's rejections are counted), nothing
is read back. It reuses the pipeline's pure modules (rows, match, oneroster) for the bodies,
so the bytes sent are the pipeline's.
"""

from __future__ import annotations

import time
from datetime import datetime, timezone
from typing import Any

from bench.measure import HttpClock, RssSampler, StageTimer, peak_rss_bytes


def run(
    spec: dict[str, Any],
    clock: HttpClock,
    sampler: RssSampler,
    *,
    canvas_conn_id: str = "canvas_default",
    aspen_conn_id: str = "aspen_default",
) -> dict[str, Any]:
    """The naive client over the connections named (each with ``max_concurrency`` 1)."""
    from canvas_aspen import match, oneroster, rows, rules
    from canvas_aspen.hooks.aspen import AspenHook
    from canvas_aspen.hooks.canvas import CanvasHook
    from canvas_aspen.stages.extract import course_bundle

    canvas, aspen = CanvasHook(canvas_conn_id=canvas_conn_id), AspenHook(aspen_conn_id=aspen_conn_id)
    assert canvas.settings.max_concurrency == 1 and aspen.settings.max_concurrency == 1
    timer = StageTimer(clock, sampler)
    now = datetime.now(timezone.utc)
    counts = {"line_items": 0, "results": 0, "rejected": 0}
    t0 = time.perf_counter()
    with timer.stage("plan"):
        courses = [c for c in canvas.list_courses() if c.get("workflow_state") != "deleted"]
        periods = [rules.GradingPeriod.from_oneroster(p) for p in aspen.list_grading_periods()]
    for course in courses:
        with timer.stage("extract"):
            bundle = course_bundle(canvas, int(course["id"]))
            df = rows.build_rows([bundle], periods, spec.get("timezone", "America/New_York"))
            df = df[df["bucket"].ne("empty") & df["aspen_class_id"].notna()]
        if df.empty:
            continue
        with timer.stage("match"):
            classes = sorted(df["aspen_class_id"].unique().tolist())
            categories = {}
            for class_id in classes:
                try:
                    categories[class_id] = match.active_categories(aspen.list_categories(class_id))
                except Exception:  # noqa: BLE001 - the naive client just moves on
                    categories[class_id] = []
            df = match.apply_matches(df, match.match_table(df, categories, {}), {})
            df["aspen_student_id"] = df["student_sis_id"]  # the naive client: Canvas's SIS id is Aspen's id
        with timer.stage("post"):
            for r in df.drop_duplicates("line_item_id").to_dict("records"):
                counts["line_items"] += 1
                try:
                    aspen.put_line_item(r["line_item_id"], oneroster.line_item_body(r))
                except Exception:  # noqa: BLE001
                    counts["rejected"] += 1
            for r in df.to_dict("records"):
                counts["results"] += 1
                try:
                    aspen.put_result(r["result_id"], oneroster.result_body(r, now))
                except Exception:  # noqa: BLE001
                    counts["rejected"] += 1
    wall = time.perf_counter() - t0
    return {
        "wall_s": round(wall, 3),
        "http_busy_s": round(clock.busy(), 3),
        "client_requests": clock.requests,
        "stages": timer.summary(),
        "peak_rss_mb": round(peak_rss_bytes() / 2**20, 1),
        "naive": counts,
        "shards": 1,
    }
