"""verify (R18): read back every Aspen class this shard posted to; any difference between
what was posted and what Aspen holds is a ``verify_mismatch`` (the report fails the run)."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

import pandas as pd

from canvas_aspen import deltas as deltas_mod
from canvas_aspen import oneroster, storage
from canvas_aspen.buckets import Bucket
from canvas_aspen.errors import ApiError
from canvas_aspen.findings import finding
from canvas_aspen.stages.failures import error_text
from canvas_aspen.stages.files import read_plan, shard_dir
from canvas_aspen.stages.progress import each

if TYPE_CHECKING:
    from canvas_aspen.hooks.protocols import AspenApi

log = logging.getLogger(__name__)


READ_BACK_MARGIN = timedelta(minutes=15)  # clock skew between this worker and Aspen


def _read_back_since(run_dir: Any) -> str | None:
    """Results Aspen modified after this instant hold everything this run posted: the plan's
    start, less a margin for clock skew (None for a plan without it)."""
    started = read_plan(run_dir).get("started_at")
    if not started:
        return None
    return (
        (datetime.fromisoformat(started) - READ_BACK_MARGIN)
        .astimezone(timezone.utc)
        .strftime("%Y-%m-%dT%H:%M:%S.000Z")
    )


def _read_back(
    aspen: AspenApi, classes: list[str], posted: pd.DataFrame, since: str | None, shard: int
) -> list:
    """Each class's results as verify needs them: only those modified since the run began
    (one page for a night's changes instead of the whole class), and the whole class where
    that answer lacks any result this run posted (a lost write, clock skew, a filter the
    server rejects): what verify compares is then exactly what a full read gives."""
    what = f"verify shard {shard}: Aspen classes"
    if since is None:
        return each(aspen, aspen.list_results, classes, what)

    def recent(class_id: str):
        try:
            return aspen.list_results(class_id, modified_since=since)
        except ApiError as exc:
            if exc.status in (400, 422):
                return None  # the filter is refused here: read the class in full
            raise

    answers = each(aspen, recent, classes, what)
    wanted = posted.groupby("aspen_class_id")["result_id"].agg(set).to_dict()
    again = [
        k
        for k, (class_id, answer) in enumerate(zip(classes, answers, strict=True))
        if answer is None
        or (
            not isinstance(answer, BaseException)
            and wanted.get(class_id, set()) - {r.get("sourcedId") for r in answer}
        )
    ]
    if again:
        log.info("verify shard %d: %d of %d classes read back in full", shard, len(again), len(classes))
        for k, answer in zip(
            again, each(aspen, aspen.list_results, [classes[k] for k in again], what), strict=True
        ):
            answers[k] = answer
    return answers


def verify(aspen: AspenApi, run_dir: Any, shard: int, *, dry_run: bool) -> dict[str, Any]:
    """R18: read back every class we posted to; any difference is a verify_mismatch."""
    sd = shard_dir(run_dir, shard)
    df = storage.read_frame(sd / "final.parquet")
    posted = df[df["bucket"].eq(Bucket.POSTED)]
    if dry_run or posted.empty:
        storage.write_json(sd / "verify.json", {"checked": 0, "mismatched": 0, "findings": []})
        return {"shard": shard, "checked": 0, "mismatched": 0}
    classes = sorted(posted["aspen_class_id"].unique().tolist())
    answers = _read_back(aspen, classes, posted, _read_back_since(run_dir), shard)
    findings, results = [], []
    for class_id, answer in zip(classes, answers, strict=True):
        if isinstance(answer, BaseException):
            findings.append(
                finding(
                    "verify_mismatch",
                    f"could not read back class {class_id}: {error_text(answer)}",
                    aspen_class_id=class_id,
                )
            )
        else:
            results += answer
    readable = posted[~posted["aspen_class_id"].isin([f["aspen_class_id"] for f in findings])]
    aspen_now = oneroster.results_frame(results)
    differs = readable[~deltas_mod.aspen_holds(readable, aspen_now)]
    now_by_id = aspen_now.drop_duplicates("result_id").set_index("result_id")
    for r in differs.to_dict("records"):
        held = now_by_id.loc[r["result_id"]] if r["result_id"] in now_by_id.index else None
        findings.append(
            finding(
                "verify_mismatch",
                "Aspen does not hold the value that was posted"
                if held is not None
                else "the posted result is missing in Aspen",
                canvas_course_id=int(r["canvas_course_id"]),
                aspen_class_id=r["aspen_class_id"],
                assignment_id=int(r["assignment_id"]),
                assignment_name=r["assignment_name"],
                student_sis_id=r["student_sis_id"],
                value=None if held is None else f"{held['score']} ({held['score_status']})",
                limit=f"{r['score']} ({r['score_status']})",
            )
        )
    out = {"checked": len(posted), "mismatched": len(findings), "findings": findings}
    storage.write_json(sd / "verify.json", out)
    log.info("verify shard %d: %d results read back, %d mismatches", shard, len(posted), len(findings))
    return {"shard": shard, "checked": len(posted), "mismatched": len(findings)}
