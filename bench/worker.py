"""One passback run in this process: the DAG's stage functions, called the way
``dags/canvas_aspen_grade_passback.py`` calls them, shards one after the other.

    python -m bench.worker SPEC.json OUT.json

Each measured run gets a fresh process (so its peak RSS is its own); inside it, every
(stage, shard) gets fresh hooks, as every Airflow task instance does. The spec carries the
Airflow connection URIs (``env``), the ledger URL, the run folder and the params.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from bench.measure import HttpClock, RssSampler, StageTimer, peak_rss_bytes


def _call(fn, *args: Any, **kwargs: Any) -> Any:
    """``fn(*args, **kwargs)`` without the keyword arguments an older ``fn`` does not take
    (``--code`` runs the benchmark against an earlier commit of the stages)."""
    import inspect

    accepted = inspect.signature(fn).parameters
    return fn(*args, **{k: v for k, v in kwargs.items() if k in accepted})


PARAM_DEFAULTS = {"course_ids": [], "dry_run": False, "full_resync": False, "delete_orphans": False,
                  "category_mappings": {}, "mapping_file": ""}


def run(spec: dict[str, Any]) -> dict[str, Any]:
    os.environ.update(spec["env"])
    clock = HttpClock()
    clock.install()
    sampler = RssSampler().start()

    # what an Airflow worker has imported before a task starts
    from airflow.sdk import ObjectStoragePath

    from canvas_aspen import stages
    from canvas_aspen.airflow_glue import mappings as glue_mappings
    from canvas_aspen.hooks.aspen import AspenHook
    from canvas_aspen.hooks.canvas import CanvasHook
    from canvas_aspen.ledger import Ledger

    def hooks():
        return CanvasHook(canvas_conn_id="canvas_default"), AspenHook(aspen_conn_id="aspen_default")

    run_id = spec["run_id"]
    params = {**PARAM_DEFAULTS, **spec.get("params", {})}
    reports_dir = Path(spec["reports_dir"])
    run_dir = ObjectStoragePath(spec["stage_root"]) / stages._safe(run_id)
    timer = StageTimer(clock, sampler)
    lease = timedelta(minutes=240)  # CANVAS_ASPEN_LEASE_MINUTES' default

    t0 = time.perf_counter()
    started = datetime.now(timezone.utc)
    with timer.stage("plan"):
        ledger = Ledger(spec["ledger_url"])
        ledger.migrate()
        canvas, aspen = hooks()
        ledger.start_run(run_id, params=params, dry_run=params["dry_run"], started_at=started)
        shards = stages.plan(canvas, aspen, run_dir, params=params, shard_count=spec["shards"])
    shard_ids = [s["shard"] for s in shards]
    for k in shard_ids:
        with timer.stage("extract"):
            _call(stages.extract, hooks()[0], run_dir, k, ledger=ledger, run_id=run_id, lease=lease)
    for k in shard_ids:
        with timer.stage("validate"):
            stages.validate(run_dir, k, timezone_name=spec.get("timezone", "America/New_York"),
                            docs_dir=stages.data_docs_dir(reports_dir, run_id, k, "validate"))
    for k in shard_ids:
        with timer.stage("match"):
            stages.match_stage(hooks()[1], run_dir, k, mappings=glue_mappings(params),
                               docs_dir=stages.data_docs_dir(reports_dir, run_id, k, "match"))
    for k in shard_ids:
        with timer.stage("deltas"):
            stages.deltas_stage(hooks()[1], ledger, run_dir, k, full_resync=params["full_resync"])
    for k in shard_ids:
        with timer.stage("post"):
            _call(stages.post, hooks()[1], ledger, run_dir, k, run_id=run_id, dry_run=params["dry_run"],
                  delete_orphans=params["delete_orphans"], lease=lease)
    for k in shard_ids:
        with timer.stage("verify"):
            stages.verify(hooks()[1], run_dir, k, dry_run=params["dry_run"])
    with timer.stage("report"):
        out = stages.report_stage(ledger, run_dir, reports_dir, run_id=run_id, started_at=started.isoformat())
    wall = time.perf_counter() - t0
    sampler.stop()
    report = json.loads(Path(out["report"]).read_text())
    return {
        "facts": _facts(run_dir, shard_ids),
        "wall_s": round(wall, 3),
        "http_busy_s": round(clock.busy(), 3),
        "client_requests": clock.requests,
        "stages": timer.summary(),
        "peak_rss_mb": round(peak_rss_bytes() / 2**20, 1),
        "totals": report["totals"],
        "verify": report["verify"],
        "findings": len(report["findings"]),
        "failed_reasons": out["failed_reasons"],
        "report": out["report"],
        "shards": len(shard_ids),
    }


def _facts(run_dir: Any, shard_ids: list[int]) -> dict[str, Any]:
    """What the lower bound needs to know of the run: the Aspen classes it resolved, and the
    graded (non-empty) line items and results a naive client would re-post."""
    import pandas as pd

    from canvas_aspen import storage

    frames = []
    for k in shard_ids:
        sd = run_dir / f"shard-{k:04d}"
        name = next((n for n in ("final.parquet", "rows.parquet") if (sd / n).exists()), None)
        if name:
            frames.append(storage.read_frame(sd / name)[["aspen_class_id", "line_item_id", "bucket"]])
    df = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(
        columns=["aspen_class_id", "line_item_id", "bucket"])
    graded = df[df["bucket"].ne("empty") & df["aspen_class_id"].notna()]
    return {
        "classes": sorted(df["aspen_class_id"].dropna().unique().tolist()),
        "graded_line_items": int(graded["line_item_id"].nunique()),
        "graded_results": len(graded),
    }


def run_naive(spec: dict[str, Any]) -> dict[str, Any]:
    os.environ.update(spec["env"])
    clock = HttpClock()
    clock.install()
    sampler = RssSampler().start()
    from bench import naive

    try:
        return naive.run(spec, clock, sampler)
    finally:
        sampler.stop()


def main(argv: list[str]) -> int:
    spec_path, out_path = argv
    spec = json.loads(Path(spec_path).read_text())
    logging.basicConfig(level=getattr(logging, spec.get("log_level", "WARNING")),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    fn = run_naive if spec.get("mode") == "naive" else run
    if spec.get("profile"):
        from pyinstrument import Profiler

        profiler = Profiler(interval=0.005)
        profiler.start()
        result = fn(spec)
        profiler.stop()
        Path(spec["profile"]).write_text(profiler.output_html())
        profiler.last_session.save(str(Path(spec["profile"]).with_suffix(".pyisession")))
        Path(spec["profile"]).with_suffix(".txt").write_text(profiler.output_text(unicode=True, color=False))
    else:
        result = fn(spec)
    Path(out_path).write_text(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
