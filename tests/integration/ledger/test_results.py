"""Posted results: current state upserted, every accepted post appended to the history."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

import canvas_aspen.ledger as ledger_module
from canvas_aspen.ledger import RESULT_STATE_COLUMNS, Ledger, ResultHistory

from .conftest import T0

Frame = Callable[..., pd.DataFrame]


def _history(ledger: Ledger) -> pd.DataFrame:
    table = ResultHistory.__table__
    with ledger.engine.connect() as conn:
        rows = conn.execute(
            sa.select(table.c.result_id, table.c.score, table.c.run_id).order_by(table.c.id)
        ).all()
    return pd.DataFrame([tuple(r) for r in rows], columns=["result_id", "score", "run_id"])


def test_recorded_results_read_back_per_class(ledger: Ledger, results_frame: Frame) -> None:
    frame = results_frame(6, classes=3)
    assert ledger.record_posted_results(frame, "r1", T0) == 6

    got = ledger.posted_results(["CLS-1", "CLS-2"])
    assert list(got.columns) == list(RESULT_STATE_COLUMNS)
    assert sorted(got.result_id) == sorted(frame.result_id[frame.aspen_class_id != "CLS-0"])
    row = got.set_index("result_id").loc["canvas-a7-s1-u4"]
    assert (row.score, row.score_status, row.canvas_status, row.run_id) == (
        4.0,
        "fully graded",
        "graded",
        "r1",
    )
    assert row.posted_at == pd.Timestamp(T0)
    assert str(got.posted_at.dtype).endswith("UTC]")
    assert got.score.dtype == "float64"
    assert len(ledger.posted_results(None)) == 6
    assert ledger.posted_results(["nowhere"]).empty


def test_empty_answer_has_the_columns(ledger: Ledger) -> None:
    got = ledger.posted_results(["CLS-0"])
    assert got.empty and list(got.columns) == list(RESULT_STATE_COLUMNS)


def test_upsert_replaces_the_value_and_history_keeps_both(ledger: Ledger, results_frame: Frame) -> None:
    ledger.record_posted_results(results_frame(2), "r1", T0)
    ledger.record_posted_results(
        results_frame(1, score=9.5, canvas_status="late"), "r2", T0 + timedelta(days=1)
    )

    got = ledger.posted_results(["CLS-0"]).set_index("result_id")
    assert got.loc["canvas-a7-s0-u1", ["score", "canvas_status", "run_id"]].tolist() == [9.5, "late", "r2"]
    assert got.loc["canvas-a7-s0-u2", ["score", "run_id"]].tolist() == [2.0, "r1"]
    assert _history(ledger).values.tolist() == [
        ["canvas-a7-s0-u1", 1.0, "r1"],
        ["canvas-a7-s0-u2", 2.0, "r1"],
        ["canvas-a7-s0-u1", 9.5, "r2"],
    ]


def test_exempt_without_score_is_stored_as_null(ledger: Ledger, results_frame: Frame) -> None:
    ledger.record_posted_results(
        results_frame(1, score=np.nan, score_status="exempt", canvas_status="excused"), "r1", T0
    )
    got = ledger.posted_results(["CLS-0"]).iloc[0]
    assert np.isnan(got.score) and got.score_status == "exempt" and got.canvas_status == "excused"


def test_an_older_post_never_overwrites_a_newer_one(ledger: Ledger, results_frame: Frame) -> None:
    """Issue 8: the later value is never lost, whatever order two writers commit in."""
    ledger.record_posted_results(results_frame(1, score=8.0), "backfill", T0 + timedelta(minutes=10))
    ledger.record_posted_results(results_frame(1, score=5.0), "nightly", T0)
    got = ledger.posted_results(["CLS-0"]).iloc[0]
    assert (got.score, got.run_id) == (8.0, "backfill")
    assert sorted(_history(ledger).run_id) == ["backfill", "nightly"]  # both were accepted by Aspen


def test_a_retried_call_changes_nothing(ledger: Ledger, results_frame: Frame) -> None:
    frame = results_frame(3)
    ledger.record_posted_results(frame, "r1", T0)
    ledger.record_posted_results(frame, "r1", T0)
    assert len(ledger.posted_results(["CLS-0"])) == 3
    assert len(_history(ledger)) == 3


def test_a_repeated_result_in_one_frame_keeps_the_last(ledger: Ledger, results_frame: Frame) -> None:
    frame = results_frame(2)
    frame = pd.concat([frame, frame.iloc[[0]].assign(score=6.5)], ignore_index=True)
    assert ledger.record_posted_results(frame, "r1", T0) == 2
    assert ledger.posted_results(["CLS-0"]).set_index("result_id").loc["canvas-a7-s0-u1", "score"] == 6.5


def test_one_transaction_per_call(
    ledger: Ledger, results_frame: Frame, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A bad row in a later chunk rolls back the chunks already written."""
    monkeypatch.setattr(ledger_module, "CHUNK", 2)
    frame = results_frame(5)
    frame.loc[4, "student_sis_id"] = None  # NOT NULL
    with pytest.raises(sa.exc.IntegrityError):
        ledger.record_posted_results(frame, "r1", T0)
    assert ledger.posted_results(None).empty
    assert _history(ledger).empty


def test_missing_columns_are_named(ledger: Ledger, results_frame: Frame) -> None:
    with pytest.raises(ValueError, match="canvas_status"):
        ledger.record_posted_results(results_frame(1).drop(columns="canvas_status"), "r1", T0)


def test_an_empty_frame_records_nothing(ledger: Ledger, results_frame: Frame) -> None:
    assert ledger.record_posted_results(results_frame(0), "r1", T0) == 0
    assert ledger.posted_results(None).empty


def test_many_classes_are_read_in_batches(ledger: Ledger, results_frame: Frame) -> None:
    classes = ledger_module.IN_BATCH * 2 + 7
    ledger.record_posted_results(results_frame(classes, classes=classes), "r1", T0)
    got = ledger.posted_results([f"CLS-{i}" for i in range(classes)])
    assert len(got) == classes and got.result_id.is_unique


@pytest.mark.slow
def test_bulk_upsert_of_100k_results(ledger: Ledger, results_frame: Frame) -> None:
    """The real size path: 100k results recorded, then all changed and recorded again."""
    n = 100_000
    frame = results_frame(n, classes=400)
    assert ledger.record_posted_results(frame, "r1", T0) == n
    changed = frame.assign(score=frame.score + 0.5)
    assert ledger.record_posted_results(changed, "r2", T0 + timedelta(days=1)) == n

    got = ledger.posted_results([f"CLS-{i}" for i in range(400)]).set_index("result_id").loc[frame.result_id]
    assert np.allclose(got.score.to_numpy(), changed.score.to_numpy())
    assert set(got.run_id) == {"r2"}
    with ledger.engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(ResultHistory.__table__)).scalar() == 2 * n
