"""report: every shard gathered into the run's report (R17), its findings and totals in the
ledger, and whether the run fails; also what a failed plan or a failed stage leaves for it."""

from __future__ import annotations

import json
import logging
from collections import Counter
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

import pandas as pd

from canvas_aspen import storage
from canvas_aspen.buckets import Bucket
from canvas_aspen.stages.extract import course_teachers
from canvas_aspen.stages.failures import error_text, fail_rows
from canvas_aspen.stages.files import read_plan, report_folder, shard_dir
from canvas_aspen.stages.gate import GX_RESULTS
from canvas_aspen.stages.post import REFUSED

if TYPE_CHECKING:
    from canvas_aspen.ledger import Ledger

log = logging.getLogger(__name__)


STAGE_FINDINGS = ("validate", "match", "deltas", "post")


REPORT_COLUMNS = [
    "bucket",
    "canvas_course_id",
    "sis_course_id",
    "aspen_class_id",
    "match_kind",
    "group_id",
    "group_name",
    "group_weight",
    "aspen_categories",
    "category_suggestion",
    "error",
    REFUSED,
]
"""What the report (R17) and the setup sheet read of a shard's rows."""


def record_stage_error(run_dir: Any, shard: int, stage: str, exc: BaseException) -> None:
    """A shard's stage failed: which one and why, for the report's course errors (the
    shard's grades that it had not settled count as failed, described by this)."""
    storage.write_json(
        shard_dir(run_dir, shard) / "stage-error.json", {"stage": stage, "error": error_text(exc)}
    )


def _stage_error_text(sd: Any) -> str | None:
    path = sd / "stage-error.json"
    if not path.exists():
        return None
    doc = storage.read_json(path)
    return f"{doc.get('stage')} did not finish: {doc.get('error')}"


def shard_outcome(run_dir: Any, shard: int, course_ids: list[int]) -> tuple[pd.DataFrame, dict, list, dict]:
    """Final rows, failed courses, findings and verify of one shard, however far it got:
    if a stage crashed, every grade it had not settled counts as failed."""
    sd = shard_dir(run_dir, shard)
    failed = (
        storage.read_json(sd / "failed-courses.json", default={})
        if (sd / "failed-courses.json").exists()
        else None
    )
    if failed is None:
        return (
            pd.DataFrame(columns=["bucket"]),
            {str(c): "extract did not run or crashed" for c in course_ids},
            [],
            {},
        )
    frame = next((sd / n for n in ("final.parquet", "rows.parquet") if (sd / n).exists()), None)
    # a shard whose validate did not finish has no rows: its courses fail (below), it counts no grade
    df = (
        storage.read_frame(frame, REPORT_COLUMNS)
        if frame is not None
        else pd.DataFrame(columns=["bucket", "error"])
    )
    if frame is None or frame.name != "final.parquet":
        why = _stage_error_text(sd)
        fail_rows(
            df,
            df["bucket"].eq(Bucket.ELIGIBLE),
            f"not posted: {why}" if why else "the run stopped before these grades were posted",
        )
        for c in set(course_ids) - {int(b) for b in failed}:
            failed.setdefault(str(c), why or "a stage of this shard did not finish")
    findings = []
    for stage in STAGE_FINDINGS:
        path = sd / f"findings-{stage}.json"
        if path.exists():
            findings += storage.read_json(path)
    verify_out = storage.read_json(sd / "verify.json") if (sd / "verify.json").exists() else {}
    findings += verify_out.get("findings", [])
    return df, failed, findings, verify_out


def _no_rows() -> pd.DataFrame:
    """The rows of a run that read no grade (no shard got as far, or the plan failed)."""
    return pd.DataFrame(columns=["bucket", "canvas_course_id", "sis_course_id", "aspen_class_id"])


def _build(*, run_id: str, params: dict[str, Any], started_at: str, **contents: Any) -> dict[str, Any]:
    """``report.build`` for this run, finished now; a dry run's report says so."""
    from canvas_aspen import report as report_mod

    return report_mod.build(
        run_id=run_id,
        dry_run=bool(params.get("dry_run")),
        params=params,
        started_at=started_at,
        finished_at=datetime.now(timezone.utc).isoformat(),
        **contents,
    )


def _data_docs(run_dir: Any, shards: int, folder: Any) -> None:
    """The run's one Great Expectations Data Docs site, ``datadocs/`` in its report folder, of
    every shard's stored validation results (a shard whose gate did not run adds none; no
    shard: an empty index). CANVAS_ASPEN_DATA_DOCS=off: none. A site GX could not build is
    logged and left out: the report, the ledger and the course leases do not wait on it."""
    from canvas_aspen import validation

    if not validation.data_docs_enabled():
        return
    stored = []
    for shard in range(shards):
        for name in GX_RESULTS.values():
            path = shard_dir(run_dir, shard) / name
            if path.exists():
                stored += storage.read_json(path)
    try:
        validation.build_data_docs(stored, folder / "datadocs")
    except Exception as exc:  # the report must still be written
        log.warning("report: no Data Docs: %s", error_text(exc))


def report(ledger: Ledger, run_dir: Any, reports_dir: Any, *, run_id: str, started_at: str) -> dict[str, Any]:
    """Gather every shard into report.json, store findings and totals in the ledger, and
    say whether the run must fail."""
    from canvas_aspen import digest as digest_mod
    from canvas_aspen import report as report_mod
    from canvas_aspen import report_html, setup_sheet

    if not (run_dir / "plan.json").exists():  # the plan task failed: nothing was read or posted
        return _report_without_plan(ledger, reports_dir, run_id=run_id, started_at=started_at)
    plan_doc = read_plan(run_dir)
    frames, failed, findings = [], {}, []
    verify_total = {"checked": 0, "mismatched": 0}
    for shard, course_ids in enumerate(plan_doc["shards"]):
        df, f, fnd, ver = shard_outcome(run_dir, shard, course_ids)
        frames.append(df)
        failed.update(f)
        findings += fnd
        verify_total["checked"] += ver.get("checked", 0)
        verify_total["mismatched"] += ver.get("mismatched", 0)
    frames = [f for f in frames if len(f)]
    rows_all = pd.concat(frames, ignore_index=True) if frames else _no_rows()
    doc = _build(
        run_id=run_id,
        params=plan_doc["params"],
        started_at=started_at,
        rows=rows_all,
        failed_courses=failed,
        findings=findings,
        verify=verify_total,
    )
    doc["setup_sheet"] = sheet = setup_sheet.setup_sheet(rows_all)
    doc["courses_without_teacher_email"] = digest_mod.courses_without_teacher_email(
        doc, course_teachers(run_dir)
    )
    folder = report_folder(reports_dir, run_id)
    path = report_mod.write_json(folder, doc)
    _data_docs(run_dir, len(plan_doc["shards"]), folder)
    html = report_html.write(folder, doc, sheet)
    report_mod.restrict(folder)  # report files (and the Data Docs GX wrote) owner-only
    reasons = report_mod.run_failed(doc)
    ledger.release_courses(run_id)  # whatever a failed shard still held (course leases)
    ledger.record_findings(run_id, doc["findings"], scope="report")
    ledger.finish_run(
        run_id,
        finished_at=datetime.now(timezone.utc),
        status="failed" if reasons else "success",
        totals=doc["totals"],
    )
    log.info("report: %s (for people: %s)", path, html)
    log.info("report: totals %s", doc["totals"])
    log.info("report: findings by kind %s", dict(Counter(f["kind"] for f in doc["findings"])))
    return {"report": str(path), "html": str(html), "totals": doc["totals"], "failed_reasons": reasons}


PLAN_FAILED = "plan-failed.json"


def write_plan_failure(
    reports_dir: Any,
    run_id: str,
    exc: BaseException,
    *,
    params: dict[str, Any] | None,
    started_at: str | None,
) -> None:
    """The plan task failed: its reason goes into the run's report folder at once, so the
    reports list shows the run and why, and ``report`` writes a report that says so."""
    from canvas_aspen import report as report_mod
    from canvas_aspen.run_params import ParamError

    reason = str(exc) if isinstance(exc, ParamError) else error_text(exc)
    doc = {
        "reason": reason,
        "params": params or {},
        "started_at": started_at,
        "failed_at": datetime.now(timezone.utc).isoformat(),
    }
    report_mod.write_private(report_folder(reports_dir, run_id), PLAN_FAILED, json.dumps(doc, default=str))


def clear_plan_failure(reports_dir: Any, run_id: str) -> None:
    """A retried plan that succeeded: the earlier attempt's reason no longer holds."""
    (report_folder(reports_dir, run_id) / PLAN_FAILED).unlink(missing_ok=True)


def _report_without_plan(ledger: Ledger, reports_dir: Any, *, run_id: str, started_at: str) -> dict[str, Any]:
    """The report of a run whose plan failed: no grade was read or posted; the reason is
    the plan's (or, when it left none, that it did not finish)."""
    from canvas_aspen import report as report_mod
    from canvas_aspen import report_html

    folder = report_folder(reports_dir, run_id)
    left = folder / PLAN_FAILED
    failure = storage.read_json(left) if left.exists() else {}
    reason = failure.get("reason") or "the plan task did not finish (its log names what failed)"
    doc = _build(
        run_id=run_id,
        params=failure.get("params") or {},
        started_at=started_at,
        rows=_no_rows(),
        failed_courses={},
        findings=[],
        verify={"checked": 0, "mismatched": 0},
        error=f"plan failed: {reason}",
    )
    path = report_mod.write_json(folder, doc)
    html = report_html.write(folder, doc, [])
    report_mod.restrict(folder)
    ledger.release_courses(run_id)
    try:
        ledger.finish_run(
            run_id, finished_at=datetime.now(timezone.utc), status="failed", totals=doc["totals"]
        )
    except LookupError:
        pass  # the plan failed before it recorded the run
    log.info("report: %s (for people: %s); the plan failed, nothing was read or posted", path, html)
    return {
        "report": str(path),
        "html": str(html),
        "totals": doc["totals"],
        "failed_reasons": doc["failed_reasons"],
    }
