"""post: the changed line items, then the changed results, PUT to Aspen; each accepted value
recorded in the ledger as soon as its chunk is done (a crash loses no record of what Aspen took).

:func:`post` reads as its steps: settle what deltas found unchanged; (a dry run stops here);
lease the shard's courses again; the class guard; line items; results, chunk by chunk;
adopt what Aspen already held; delete orphaned line items (only when asked); give the
leases back.
"""

from __future__ import annotations

import json
import logging
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

import pandas as pd

from canvas_aspen import deltas as deltas_mod
from canvas_aspen import ids, oneroster, storage
from canvas_aspen.buckets import Bucket
from canvas_aspen.findings import finding
from canvas_aspen.stages import class_guard
from canvas_aspen.stages.failures import add_course_errors, error_text, fail_rows
from canvas_aspen.stages.files import read_plan, shard_dir
from canvas_aspen.stages.leases import lease_courses
from canvas_aspen.stages.progress import Progress, each

if TYPE_CHECKING:
    from canvas_aspen.hooks.protocols import AspenApi
    from canvas_aspen.ledger import Ledger

log = logging.getLogger(__name__)

REFUSED = "aspen_refused"
"""A rows column: True where Aspen answered the PUT of this grade (or its line item) with a refusal."""


def post(
    aspen: AspenApi,
    ledger: Ledger,
    run_dir: Any,
    shard: int,
    *,
    run_id: str,
    dry_run: bool,
    delete_orphans: bool,
    now: datetime | None = None,
    chunk: int = 2000,
    lease: timedelta | None = None,
) -> dict[str, Any]:
    """PUT the changed line items, then the changed results; record each accepted value in
    the ledger as soon as its chunk is done (a crash loses no record of what Aspen took).

    Before any write: the shard's courses are leased again (``lease``; a course
    another live run took meanwhile is not written and its grades fail), and every write
    must go to a class resolved from a Canvas section in this run, else nothing of the shard
    is written. The leases are given back at the end."""
    now = now or datetime.now(timezone.utc)
    sd = shard_dir(run_dir, shard)
    df = storage.read_frame(sd / "rows.parquet").set_index("row_id", drop=False)
    df[REFUSED] = False  # set for the grades Aspen itself did not accept (the report says so)
    actions = storage.read_frame(sd / "actions.parquet").set_index("row_id")
    line_items = storage.read_frame(sd / "line-items.parquet")
    findings: list[dict[str, Any]] = []
    to_post = _settle_unchanged(df, actions)

    if dry_run:
        df.loc[to_post.index, "bucket"] = Bucket.POSTED
        log.info(
            "post shard %d: dry run, would post %d line items and %d results",
            shard,
            int(line_items["action"].eq("post").sum()),
            len(to_post),
        )
        return _finish(sd, df, findings, shard, dry_run=True)

    shard_courses = [int(c) for c in read_plan(run_dir)["shards"][shard]]
    busy = _lease_again(ledger, sd, df, to_post, run_id=run_id, lease=lease, shard_courses=shard_courses)
    to_post, line_items = _outside(busy, to_post), _outside(busy, line_items)
    li_post = line_items[line_items["action"].eq("post")]
    sections = class_guard.section_classes(storage.read_json(sd / "courses.json"))
    orphan_ids = _orphans_outside(busy, storage.read_json(sd / "orphans.json", default=[]), sections)
    refused = class_guard.unresolved_writes(li_post, to_post, orphan_ids if delete_orphans else [], sections)
    if refused:
        log.error("post shard %d: %s", shard, refused)
        class_guard.refuse_shard(df, sd, to_post.index, shard_courses, refused)
        return _finish(sd, df, findings, shard, dry_run=False)

    # line items first: a result needs its line item
    bad_items = _put_line_items(aspen, ledger, li_post, findings, shard=shard, run_id=run_id, now=now)
    results = _without_line_item(df, to_post, bad_items)
    _put_results(aspen, ledger, df, results, findings, shard=shard, run_id=run_id, now=now, chunk=chunk)
    _adopt(ledger, df, actions, busy, run_id=run_id, now=now)
    if delete_orphans and orphan_ids:
        _delete_orphans(aspen, ledger, orphan_ids, findings, shard=shard, run_id=run_id, now=now)
    if lease is not None and run_id:
        ledger.release_courses(run_id, shard_courses)  # verify only reads; report releases the rest
    return _finish(sd, df, findings, shard, dry_run=False)


def _settle_unchanged(df: pd.DataFrame, actions: pd.DataFrame) -> pd.DataFrame:
    """What deltas found unchanged -> ``unchanged``; the eligible rows to post."""
    act = actions["action"].reindex(df.index)
    df.loc[act.eq(deltas_mod.UNCHANGED), "bucket"] = Bucket.UNCHANGED
    return df[act.eq(deltas_mod.POST) & df["bucket"].eq(Bucket.ELIGIBLE)]


def _lease_again(
    ledger: Ledger,
    sd: Any,
    df: pd.DataFrame,
    to_post: pd.DataFrame,
    *,
    run_id: str,
    lease: timedelta | None,
    shard_courses: list[int],
) -> dict[str, str]:
    """The shard's courses leased again (not those busy at extract already); {course: why} of
    those another live run took meanwhile: their grades to post fail, nothing of them is written."""
    busy_before = storage.read_json(sd / "busy-courses.json", default={})
    busy = lease_courses(ledger, run_id, lease, [c for c in shard_courses if str(c) not in busy_before])
    for course, why in busy.items():
        fail_rows(df, df.index.isin(to_post.index) & df["canvas_course_id"].eq(int(course)), why)
    add_course_errors(sd, busy)
    return busy


def _outside(busy: dict[str, str], frame: pd.DataFrame) -> pd.DataFrame:
    """The rows of ``frame`` (with ``canvas_course_id``) not of a busy course."""
    return frame[~frame["canvas_course_id"].astype(str).isin(list(busy))]


def _orphans_outside(
    busy: dict[str, str], orphan_ids: list[str], sections: dict[int, tuple[str | None, int]]
) -> list[str]:
    """The orphaned line items not of a busy course (a line item's id names its section)."""
    return [
        i
        for i in orphan_ids
        if not ((p := ids.parse_line_item_id(str(i))) and str(sections.get(p[1], (None, 0))[1]) in busy)
    ]


def _put_line_items(
    aspen: AspenApi,
    ledger: Ledger,
    li_post: pd.DataFrame,
    findings: list[dict[str, Any]],
    *,
    shard: int,
    run_id: str,
    now: datetime,
) -> dict[str, str]:
    """PUT each changed line item; those accepted recorded in the ledger; {line item: why} of
    those Aspen refused (an ``aspen_rejected`` finding each)."""
    records = li_post.to_dict("records")
    outcomes = each(
        aspen,
        lambda r: aspen.put_line_item(r["line_item_id"], json.loads(r["body"])),
        records,
        f"post shard {shard}: line items",
    )
    bad_items: dict[str, str] = {}
    good = []
    for r, out in zip(records, outcomes, strict=True):
        if isinstance(out, BaseException):
            bad_items[r["line_item_id"]] = error_text(out)
            findings.append(
                finding(
                    "aspen_rejected",
                    f"Aspen rejected line item {r['line_item_id']}: {error_text(out)}",
                    canvas_course_id=int(r["canvas_course_id"]),
                    aspen_class_id=r["aspen_class_id"],
                    assignment_id=int(r["assignment_id"]),
                )
            )
        else:
            good.append(r)
    if good:
        ledger.record_posted_line_items(
            pd.DataFrame(good).drop(columns=["body", "action"], errors="ignore"), run_id=run_id, posted_at=now
        )
    return bad_items


def _without_line_item(df: pd.DataFrame, to_post: pd.DataFrame, bad_items: dict[str, str]) -> pd.DataFrame:
    """The results whose line item Aspen refused fail (not sent: Aspen would refuse them too);
    the others, to PUT."""
    blocked = to_post["line_item_id"].isin(list(bad_items))
    for rid, li_id in to_post.loc[blocked, "line_item_id"].items():
        df.loc[rid, ["bucket", "error"]] = [Bucket.FAILED, f"line item not accepted: {bad_items[li_id]}"]
    df.loc[to_post.index[blocked.to_numpy()], REFUSED] = True
    return to_post[~blocked]


def _put_results(
    aspen: AspenApi,
    ledger: Ledger,
    df: pd.DataFrame,
    results: pd.DataFrame,
    findings: list[dict[str, Any]],
    *,
    shard: int,
    run_id: str,
    now: datetime,
    chunk: int,
) -> None:
    """PUT the results, ``chunk`` at a time; after each chunk, the accepted ones are recorded in
    the ledger and ``posted``, the refused ones ``failed`` (an ``aspen_rejected`` finding each)."""
    progress = Progress(f"post shard {shard}: results", len(results), aspen)
    for start in range(0, len(results), chunk):
        records = results.iloc[start : start + chunk].to_dict("records")
        outs = aspen.map_concurrent(
            lambda r: aspen.put_result(r["result_id"], oneroster.result_body(r, now)),
            records,
            on_error="collect",
        )
        accepted = []
        for r, out in zip(records, outs, strict=True):
            if isinstance(out, BaseException):
                df.loc[r["row_id"], ["bucket", "error"]] = [Bucket.FAILED, error_text(out)]
                df.loc[r["row_id"], REFUSED] = True
                findings.append(
                    finding(
                        "aspen_rejected",
                        f"Aspen rejected the result: {error_text(out)}",
                        canvas_course_id=int(r["canvas_course_id"]),
                        aspen_class_id=r["aspen_class_id"],
                        assignment_id=int(r["assignment_id"]),
                        assignment_name=r["assignment_name"],
                        group_name=r["group_name"],
                        student_sis_id=r["student_sis_id"],
                        value=r["score_raw"],
                    )
                )
            else:
                accepted.append(r["row_id"])
        if accepted:
            ledger.record_posted_results(df.loc[accepted], run_id=run_id, posted_at=now)
            df.loc[accepted, "bucket"] = Bucket.POSTED
        progress.step(len(records))


def _adopt(
    ledger: Ledger,
    df: pd.DataFrame,
    actions: pd.DataFrame,
    busy: dict[str, str],
    *,
    run_id: str,
    now: datetime,
) -> None:
    """Adoption: the unchanged grades Aspen already holds although the ledger does not say so
    (an earlier run's PUT that Aspen took before that run crashed, unrecorded) are recorded in
    the ledger now, as posted. Without it the ledger would never learn them, and a teacher's
    later edit in Aspen would not be told from a Canvas change (R9): it would be overwritten."""
    adopted = _outside(busy, df.loc[actions.index[actions["adopt"]]])
    if len(adopted):
        ledger.record_posted_results(adopted, run_id=run_id, posted_at=now)


def _delete_orphans(
    aspen: AspenApi,
    ledger: Ledger,
    orphan_ids: list[str],
    findings: list[dict[str, Any]],
    *,
    shard: int,
    run_id: str,
    now: datetime,
) -> None:
    """R10 with ``delete_orphans``: DELETE the orphaned line items; the ledger marks those gone."""
    outs = each(aspen, aspen.delete_line_item, orphan_ids, f"post shard {shard}: orphan deletions")
    deleted = [i for i, o in zip(orphan_ids, outs, strict=True) if not isinstance(o, BaseException)]
    findings += [
        finding("aspen_rejected", f"could not delete orphaned line item {i}: {error_text(o)}", value=i)
        for i, o in zip(orphan_ids, outs, strict=True)
        if isinstance(o, BaseException)
    ]
    ledger.mark_line_items_deleted(deleted, run_id=run_id, at=now)
    log.info("post shard %d: deleted %d of %d orphaned line items", shard, len(deleted), len(orphan_ids))


def _finish(sd: Any, df: pd.DataFrame, findings: list, shard: int, *, dry_run: bool) -> dict[str, Any]:
    storage.write_frame(sd / "final.parquet", df.reset_index(drop=True))
    storage.write_json(sd / "findings-post.json", findings)
    counts = df["bucket"].value_counts().to_dict()
    log.info("post shard %d: buckets %s%s", shard, counts, " (dry run)" if dry_run else "")
    return {"shard": shard, "buckets": counts}
