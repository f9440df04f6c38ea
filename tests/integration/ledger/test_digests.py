"""Teacher digests in the ledger (migration 0002), on SQLite and PostgreSQL: what was sent to
whom and when, so that a rerun or a retried task never sends a digest twice."""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.config import Config

from canvas_aspen.ledger import MIGRATIONS_DIR, Ledger

from .conftest import T0

CLAIM = {
    "mode": "send",
    "email": "dana@district.test",
    "fingerprint": "f" * 64,
    "findings": 3,
    "course_ids": [101, 102],
    "reason": "first",
}


def test_a_digest_claimed_and_sent_is_not_claimed_again_in_the_same_run(ledger: Ledger) -> None:
    assert ledger.claim_digest("run-1", 9001, now=T0, **CLAIM) is True
    ledger.finish_digest("run-1", 9001, mode="send", status="sent", at=T0)
    assert ledger.claim_digest("run-1", 9001, now=T0 + timedelta(minutes=5), **CLAIM) is False
    [row] = ledger.digests("run-1")
    assert (row["teacher_id"], row["email"], row["status"], row["sent_at"], row["course_ids"]) == (
        9001,
        "dana@district.test",
        "sent",
        T0,
        [101, 102],
    )


def test_a_claim_left_sending_by_a_crashed_attempt_is_never_sent_twice(ledger: Ledger) -> None:
    assert ledger.claim_digest("run-1", 9001, now=T0, **CLAIM) is True  # the worker dies here
    assert ledger.claim_digest("run-1", 9001, now=T0 + timedelta(minutes=5), **CLAIM) is False
    assert ledger.last_sent_digests([9001]) == {}  # not known to be sent: the next run may send


def test_a_failed_send_is_claimed_again_and_not_counted_as_sent(ledger: Ledger) -> None:
    assert ledger.claim_digest("run-1", 9001, now=T0, **CLAIM) is True
    ledger.finish_digest("run-1", 9001, mode="send", status="failed", at=T0, error="SMTP 451")
    assert ledger.last_sent_digests([9001]) == {}
    assert ledger.digests("run-1")[0]["error"] == "SMTP 451"
    assert ledger.claim_digest("run-1", 9001, now=T0 + timedelta(minutes=1), **CLAIM) is True
    ledger.finish_digest("run-1", 9001, mode="send", status="sent", at=T0 + timedelta(minutes=1))
    assert ledger.digests("run-1")[0]["error"] is None


def test_last_sent_digest_is_the_latest_sent_of_any_run_and_previews_do_not_count(ledger: Ledger) -> None:
    for n, (run, fp) in enumerate([("run-1", "a" * 64), ("run-2", "b" * 64)]):
        ledger.claim_digest(run, 9001, now=T0 + timedelta(days=n), **{**CLAIM, "fingerprint": fp})
        ledger.finish_digest(run, 9001, mode="send", status="sent", at=T0 + timedelta(days=n))
    ledger.claim_digest(
        "run-3", 9001, now=T0 + timedelta(days=2), **{**CLAIM, "mode": "preview", "fingerprint": "c" * 64}
    )
    ledger.finish_digest("run-3", 9001, mode="preview", status="previewed", at=T0 + timedelta(days=2))
    last = ledger.last_sent_digests([9001, 9002])
    assert set(last) == {9001}
    assert (last[9001]["fingerprint"], last[9001]["sent_at"], last[9001]["run_id"]) == (
        "b" * 64,
        T0 + timedelta(days=1),
        "run-2",
    )


def test_finishing_an_unclaimed_digest_is_an_error(ledger: Ledger) -> None:
    with pytest.raises(LookupError):
        ledger.finish_digest("run-1", 9001, mode="send", status="sent", at=T0)
    ledger.claim_digest("run-1", 9001, now=T0, **CLAIM)
    with pytest.raises(ValueError):
        ledger.finish_digest("run-1", 9001, mode="send", status="delivered", at=T0)


def test_a_ledger_at_the_first_schema_upgrades_keeping_its_data(ledger_url: str) -> None:
    """A deployment with last night's ledger (revision 0001) gets the digests table on the next
    run's migrate(); what it holds stays."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    ledger = Ledger(ledger_url)
    try:
        with ledger._write() as conn:
            config.attributes["connection"] = conn
            command.upgrade(config, "0001")
        ledger.start_run("run-0", params={}, dry_run=False, started_at=T0)
        assert "teacher_digests" not in sa.inspect(ledger.engine).get_table_names()
        ledger.migrate()
        assert "teacher_digests" in sa.inspect(ledger.engine).get_table_names()
        assert ledger.run("run-0")["started_at"] == T0
        assert ledger.claim_digest("run-0", 9001, now=T0, **CLAIM) is True
    finally:
        ledger.dispose()
