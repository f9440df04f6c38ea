"""Posted line items: upserted with their payload hash, marked deleted as orphans (R10)."""

from __future__ import annotations

from datetime import timedelta

import pandas as pd
import sqlalchemy as sa

from canvas_aspen.ledger import LINE_ITEM_STATE_COLUMNS, Ledger, LineItemHistory

from .conftest import T0


def _items(*ids: str, payload_hash: str = "h1") -> pd.DataFrame:
    return pd.DataFrame(
        {
            "line_item_id": list(ids),
            "aspen_class_id": [f"CLS-{i.rsplit('-s', 1)[1]}" for i in ids],
            "canvas_course_id": 101,
            "assignment_id": [int(i.split("-a")[1].split("-")[0]) for i in ids],
            "payload_hash": payload_hash,
        }
    )


def _history(ledger: Ledger) -> list[tuple[str, str, str]]:
    table = LineItemHistory.__table__
    query = sa.select(table.c.line_item_id, table.c.action, table.c.run_id).order_by(table.c.id)
    with ledger.engine.connect() as conn:
        return [tuple(r) for r in conn.execute(query)]


def test_line_items_are_upserted_with_their_hash(ledger: Ledger) -> None:
    assert (
        ledger.record_posted_line_items(_items("canvas-a7-s1", "canvas-a8-s1", "canvas-a7-s2"), "r1", T0) == 3
    )
    ledger.record_posted_line_items(_items("canvas-a7-s1", payload_hash="h2"), "r2", T0 + timedelta(days=1))

    got = ledger.posted_line_items(["CLS-1"]).set_index("line_item_id")
    assert list(got.reset_index().columns) == list(LINE_ITEM_STATE_COLUMNS)
    assert sorted(got.index) == ["canvas-a7-s1", "canvas-a8-s1"]
    assert got.loc["canvas-a7-s1", ["payload_hash", "run_id"]].tolist() == ["h2", "r2"]
    assert got.loc["canvas-a8-s1", ["payload_hash", "assignment_id"]].tolist() == ["h1", 8]
    assert got.deleted_at.isna().all()
    assert [a for _, a, _ in _history(ledger)] == ["posted"] * 4


def test_deleting_an_orphan_marks_it_and_drops_its_results(ledger: Ledger, results_frame) -> None:
    ledger.record_posted_line_items(_items("canvas-a7-s0", "canvas-a8-s0"), "r1", T0)
    ledger.record_posted_results(results_frame(2, assignment_id=7), "r1", T0)
    ledger.record_posted_results(results_frame(1, assignment_id=8), "r1", T0)

    at = T0 + timedelta(days=2)
    assert ledger.mark_line_items_deleted(["canvas-a7-s0", "not-in-ledger"], "r3", at) == 1

    got = ledger.posted_line_items(["CLS-0"]).set_index("line_item_id")
    assert got.loc["canvas-a7-s0", "deleted_at"] == pd.Timestamp(at)
    assert got.loc["canvas-a7-s0", "run_id"] == "r3"
    assert pd.isna(got.loc["canvas-a8-s0", "deleted_at"])
    assert ledger.posted_results(["CLS-0"]).result_id.tolist() == ["canvas-a8-s0-u1"]
    assert _history(ledger)[-1] == ("canvas-a7-s0", "deleted", "r3")


def test_deleting_again_is_a_no_op(ledger: Ledger) -> None:
    ledger.record_posted_line_items(_items("canvas-a7-s0"), "r1", T0)
    ledger.mark_line_items_deleted(["canvas-a7-s0"], "r2", T0 + timedelta(days=1))
    assert ledger.mark_line_items_deleted(["canvas-a7-s0"], "r2", T0 + timedelta(days=1)) == 0
    assert [a for _, a, _ in _history(ledger)] == ["posted", "deleted"]


def test_posting_a_deleted_line_item_again_revives_it(ledger: Ledger) -> None:
    ledger.record_posted_line_items(_items("canvas-a7-s0"), "r1", T0)
    ledger.mark_line_items_deleted(["canvas-a7-s0"], "r2", T0 + timedelta(days=1))
    ledger.record_posted_line_items(_items("canvas-a7-s0"), "r3", T0 + timedelta(days=2))
    assert ledger.posted_line_items(["CLS-0"]).deleted_at.isna().all()
