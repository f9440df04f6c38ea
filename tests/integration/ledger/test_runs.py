"""Runs: started, finished, and retried without failing."""

from __future__ import annotations

from datetime import datetime, timedelta

import numpy as np
import pytest

from canvas_aspen.ledger import Ledger

from .conftest import T0


def test_start_and_finish_a_run(ledger: Ledger) -> None:
    ledger.start_run(
        "nightly-1", params={"course_ids": [1, 2], "dry_run": False}, dry_run=False, started_at=T0
    )
    assert ledger.run("nightly-1") | {} == {
        "run_id": "nightly-1",
        "started_at": T0,
        "finished_at": None,
        "status": "running",
        "dry_run": False,
        "params": {"course_ids": [1, 2], "dry_run": False},
        "totals": None,
    }
    totals = {"considered": 10, "posted": 4, "unchanged": 3, "empty": 1, "held_back": 1, "failed": 1}
    ledger.finish_run("nightly-1", finished_at=T0 + timedelta(minutes=5), status="failed", totals=totals)
    run = ledger.run("nightly-1")
    assert run["status"] == "failed"
    assert run["finished_at"] == T0 + timedelta(minutes=5)
    assert run["totals"] == totals


def test_retried_start_run_does_not_fail_and_keeps_the_first_start(ledger: Ledger) -> None:
    ledger.start_run("r", params={"a": 1}, dry_run=True, started_at=T0)
    ledger.finish_run("r", finished_at=T0 + timedelta(minutes=1), status="success", totals={"posted": 1})
    ledger.start_run("r", params={"a": 1}, dry_run=True, started_at=T0 + timedelta(minutes=2))
    run = ledger.run("r")
    assert run["started_at"] == T0
    assert (run["status"], run["finished_at"], run["totals"], run["dry_run"]) == ("running", None, None, True)


def test_finish_run_twice_keeps_the_last_call(ledger: Ledger) -> None:
    ledger.start_run("r", params={}, dry_run=False, started_at=T0)
    ledger.finish_run("r", finished_at=T0, status="failed", totals={"failed": 1})
    ledger.finish_run("r", finished_at=T0 + timedelta(hours=1), status="success", totals={"failed": 0})
    assert ledger.run("r")["totals"] == {"failed": 0}
    assert ledger.run("r")["status"] == "success"


def test_finish_of_an_unknown_run_is_an_error(ledger: Ledger) -> None:
    with pytest.raises(LookupError, match="never started"):
        ledger.finish_run("nope", finished_at=T0, status="success", totals={})
    assert ledger.run("nope") is None


def test_params_are_stored_as_plain_json(ledger: Ledger) -> None:
    params = {"course_ids": [np.int64(5)], "ratio": np.float64(0.5), "missing": float("nan"), "when": T0}
    ledger.start_run("r", params=params, dry_run=False, started_at=T0)
    assert ledger.run("r")["params"] == {
        "course_ids": [5],
        "ratio": 0.5,
        "missing": None,
        "when": T0.isoformat(),
    }


def test_naive_instants_are_refused(ledger: Ledger) -> None:
    with pytest.raises(Exception, match="naive datetime"):
        ledger.start_run("r", params={}, dry_run=False, started_at=datetime(2026, 3, 1, 3, 0))
    assert ledger.run("r") is None
