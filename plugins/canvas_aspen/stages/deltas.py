"""deltas: what Aspen holds now and what this package posted before, against what Canvas
says (R7-R10, R21); only the difference goes to post (``actions.parquet``, ``line-items.parquet``,
``orphans.json``)."""

from __future__ import annotations

import json
import logging
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

import pandas as pd

from canvas_aspen import column_codes, oneroster, storage
from canvas_aspen import deltas as deltas_mod
from canvas_aspen.buckets import GRADEABLE, Bucket
from canvas_aspen.stages.class_guard import fail_class
from canvas_aspen.stages.failures import fail_rows
from canvas_aspen.stages.files import shard_dir
from canvas_aspen.stages.progress import each

if TYPE_CHECKING:
    from canvas_aspen.hooks.protocols import AspenApi
    from canvas_aspen.ledger import Ledger

log = logging.getLogger(__name__)


def _line_items_desired(eligible: pd.DataFrame, titles: dict[str, str] | None = None) -> pd.DataFrame:
    """One line item body per line item of the eligible rows; ``titles`` (R21) where given."""
    firsts = eligible.drop_duplicates("line_item_id")
    titles = titles or {}
    bodies = [
        oneroster.line_item_body(r, titles.get(r["line_item_id"]))
        for r in firsts[list(oneroster.LINE_ITEM_FIELDS)].to_dict("records")
    ]
    return pd.DataFrame(
        {
            "line_item_id": firsts["line_item_id"].to_numpy(),
            "aspen_class_id": firsts["aspen_class_id"].to_numpy(),
            "canvas_course_id": firsts["canvas_course_id"].to_numpy(),
            "assignment_id": firsts["assignment_id"].to_numpy(),
            "body": bodies,
            "payload_hash": [deltas_mod.payload_hash(b) for b in bodies],
        }
    )


def deltas(
    aspen: AspenApi,
    ledger: Ledger,
    run_dir: Any,
    shard: int,
    *,
    full_resync: bool,
    column_code_length: int | None = None,
) -> dict[str, Any]:
    """R8, R9, R7 (cleared), R10: what Aspen holds now and what we posted before, against
    what Canvas says; only the difference is posted. R21: line item titles unique in each
    class's gradebook column codes (the Aspen connection's ``column_code_length`` unless given)."""
    length = aspen.column_code_length if column_code_length is None else column_code_length
    sd = shard_dir(run_dir, shard)
    df = storage.read_frame(sd / "rows.parquet")
    bundles = _fail_busy_courses(df, sd, storage.read_json(sd / "courses.json"))
    classes = sorted(df["aspen_class_id"].dropna().unique().tolist())
    posted, items_now, aspen_now = _read_classes(aspen, ledger, df, sd, classes, shard=shard)
    eligible = df[df["bucket"].eq(Bucket.ELIGIBLE)]

    decided = deltas_mod.result_actions(eligible, posted, aspen_now, full_resync=full_resync)
    actions = decided.actions[["row_id", "result_id", "action", "reason"]].assign(
        adopt=decided.actions.index.isin(decided.adopt.index)
    )
    findings = decided.findings + deltas_mod.cleared_findings(df[df["bucket"].eq(Bucket.EMPTY)], posted)
    findings += deltas_mod.hidden_after_posting_findings(df[df["bucket"].eq(Bucket.HIDDEN)], posted)
    desired, collisions = _titled_line_items(df, eligible, items_now, length)
    findings += collisions
    li_actions = deltas_mod.line_item_actions(
        desired, ledger.posted_line_items(classes), items_now, full_resync=full_resync
    )
    orphaned = _orphans(df, bundles, items_now)
    findings += orphaned.findings
    orphan_ids = orphaned.line_item_ids

    storage.write_frame(sd / "rows.parquet", df)
    storage.write_frame(sd / "actions.parquet", actions)
    li_actions = li_actions.assign(body=li_actions["body"].map(json.dumps))
    storage.write_frame(sd / "line-items.parquet", li_actions)
    storage.write_json(sd / "orphans.json", orphan_ids)
    storage.write_json(sd / "findings-deltas.json", findings)
    todo = Counter(actions["action"]) if len(actions) else Counter()
    log.info(
        "deltas shard %d: results %s, line items to post %d, orphans %d",
        shard,
        dict(todo),
        int((li_actions["action"] == "post").sum()),
        len(orphan_ids),
    )
    return {
        "shard": shard,
        "post": todo.get("post", 0),
        "unchanged": todo.get("unchanged", 0),
        "orphans": len(orphan_ids),
    }


def _fail_busy_courses(df: pd.DataFrame, sd: Any, bundles: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The courses another live run leased at extract: their eligible grades fail (nothing of
    them goes); the other courses' answers (R10 is not judged in a busy one)."""
    busy = storage.read_json(sd / "busy-courses.json", default={})
    for course, why in busy.items():
        fail_rows(df, df["canvas_course_id"].eq(int(course)) & df["bucket"].eq(Bucket.ELIGIBLE), why)
    return [b for b in bundles if str(b["course"]["id"]) not in busy]


def _read_classes(
    aspen: AspenApi, ledger: Ledger, df: pd.DataFrame, sd: Any, classes: list[str], *, shard: int
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """(what the ledger says was posted, Aspen's line items, Aspen's results) of the shard's
    classes. Aspen is read for the classes with a grade not failed (not for one Aspen does
    not have: match found it missing), the ledger meanwhile; a class Aspen would not answer
    for fails its grades."""
    missing = set(storage.read_json(sd / "missing-classes.json", default=[]))
    live = sorted(set(df.loc[df["bucket"].ne(Bucket.FAILED), "aspen_class_id"].dropna()) - missing)
    with ThreadPoolExecutor(max_workers=1) as reader:  # the ledger is read while Aspen answers
        posted_later = reader.submit(ledger.posted_results, classes)
        answers = each(
            aspen,
            lambda c: (aspen.list_line_items(c), aspen.list_results(c)),
            live,
            f"deltas shard {shard}: Aspen classes",
        )
        posted = posted_later.result()
    aspen_items, aspen_results = [], []
    for class_id, answer in zip(live, answers, strict=True):
        if isinstance(answer, BaseException):
            fail_class(df, sd, class_id, GRADEABLE, answer)
            continue
        aspen_items += [{**li, "_class": class_id} for li in answer[0]]
        aspen_results += answer[1]
    items_now = pd.DataFrame(
        {
            "line_item_id": [li.get("sourcedId") for li in aspen_items],
            "aspen_class_id": [li["_class"] for li in aspen_items],
            "title": [li.get("title") for li in aspen_items],
            "status": [li.get("status") for li in aspen_items],
        }
    )
    return posted, items_now, oneroster.results_frame(aspen_results)


def _titled_line_items(
    df: pd.DataFrame, eligible: pd.DataFrame, items_now: pd.DataFrame, length: int
) -> tuple[pd.DataFrame, list[dict[str, Any]]]:
    """R21: the line items of the eligible grades, titled unique in each class's column codes
    (``length`` characters), and the findings of the titles that had to change."""
    taking_part = column_codes.participants(df[df["bucket"].ne(Bucket.FAILED)], oneroster.line_item_title)
    titles = column_codes.unique_titles(taking_part, items_now, length)
    desired = _line_items_desired(eligible, titles.titles)
    sent = (
        taking_part[taking_part["line_item_id"].isin(desired["line_item_id"])]
        .merge(desired[["line_item_id", "canvas_course_id"]], on="line_item_id")
        .merge(eligible.drop_duplicates("line_item_id")[["line_item_id", "group_name"]], on="line_item_id")
    )
    return desired, column_codes.collision_findings(sent, titles, length)


def _orphans(df: pd.DataFrame, bundles: list[dict[str, Any]], items_now: pd.DataFrame) -> deltas_mod.Orphans:
    """R10: our line items in Aspen whose Canvas assignment is gone from its course."""
    assignment_ids = {
        int(b["course"]["id"]): {
            int(a["id"]) for g in b["assignment_groups"] for a in g.get("assignments") or []
        }
        for b in bundles
    }
    class_to_course = (
        df.dropna(subset=["aspen_class_id"])
        .drop_duplicates("aspen_class_id")
        .set_index("aspen_class_id")["canvas_course_id"]
        .to_dict()
    )
    return deltas_mod.orphans(items_now, assignment_ids, class_to_course)
