"""The digest stage over a run's files and a real ledger (SQLite), with a stand-in mailer:
logs carry counts only, a refused recipient's error keeps no address, a rerun sends nothing."""

from __future__ import annotations

import json
import logging
import smtplib
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from canvas_aspen import stages, storage
from canvas_aspen.findings import finding
from canvas_aspen.ledger import Ledger
from canvas_aspen.stages.extract import write_canvas_answers

RUN = "scheduled__2026-12-01T03:00:00+00:00"
NOW = datetime(2026, 12, 1, 4, 0, tzinfo=UTC)
DANA = {"id": 9001, "name": "Dana Whitfield", "email": "dana@district.test"}
MARCUS = {"id": 9002, "name": "Marcus Bell", "email": "marcus@district.test"}


class Mailer:
    def __init__(self, refuse: set[str] = frozenset()) -> None:
        self.sent: list[tuple[str, str]] = []
        self.refuse = refuse

    def send(self, to: str, subject: str, text: str, html: str) -> None:
        if to in self.refuse:
            raise smtplib.SMTPRecipientsRefused({to: (550, f"5.1.1 <{to}>: mailbox unavailable".encode())})
        self.sent.append((to, subject))


@pytest.fixture
def run(tmp_path: Path):
    run_dir, reports = tmp_path / "stage" / "run", tmp_path / "reports"
    storage.write_json(
        run_dir / "plan.json",
        {
            "params": {},
            "shards": [[101], [103]],
            "courses": {"101": {"id": 101, "name": "Algebra I"}, "103": {"id": 103, "name": "English 10"}},
        },
    )
    write_canvas_answers(run_dir / "shard-0000", [{"course": {"id": 101}, "teachers": [DANA]}])
    write_canvas_answers(run_dir / "shard-0001", [{"course": {"id": 103}, "teachers": [MARCUS]}])
    report = {
        "run_id": RUN,
        "dry_run": False,
        "params": {},
        "started_at": "",
        "finished_at": "",
        "totals": {
            "considered": 0,
            "posted": 0,
            "unchanged": 0,
            "empty": 0,
            "hidden": 0,
            "held_back": 0,
            "failed": 0,
        },
        "courses": [],
        "verify": {"checked": 0, "mismatched": 0},
        "failed_courses": 0,
        "setup_sheet": [],
        "findings": [
            finding(
                "no_due_date",
                "x",
                canvas_course_id=c,
                aspen_class_id="K",
                assignment_id=c,
                assignment_name=f"Essay {c}",
            )
            for c in (101, 103)
        ],
    }
    folder = stages.report_folder(reports, RUN)
    folder.mkdir(parents=True, mode=0o700)
    (folder / "report.json").write_text(json.dumps(report))
    ledger = Ledger(f"sqlite:///{tmp_path / 'ledger.db'}")
    ledger.migrate()
    yield ledger, run_dir, reports, folder
    ledger.dispose()


def _stage(run, mailer, mode="send"):
    ledger, run_dir, reports, _ = run
    return stages.digest(
        ledger,
        run_dir,
        reports,
        run_id=RUN,
        mode=mode,
        resend_after=timedelta(days=7),
        mailer=mailer,
        now=NOW,
    )


def test_logs_say_counts_only_and_a_refused_address_stays_out_of_the_error(run, caplog):
    mailer = Mailer(refuse={"marcus@district.test"})
    with caplog.at_level(logging.DEBUG, logger="canvas_aspen"):
        out = _stage(run, mailer)
    assert out["counts"] == {"sent": 1, "failed": 1} and [to for to, _ in mailer.sent] == [
        "dana@district.test"
    ]
    for secret in ("Dana", "Whitfield", "Marcus", "Bell", "@district.test"):
        assert secret not in caplog.text
    listing = json.loads((run[3] / "digests" / "index.json").read_text())
    failed = next(e for e in listing if e["status"] == "failed")
    assert "550" in failed["error"] and "marcus@" not in failed["error"] and "<address>" in failed["error"]
    assert "Teacher digests" in (run[3] / "report.html").read_text()


def test_a_rerun_sends_nothing_twice_and_retries_only_the_failed_digest(run):
    _stage(run, Mailer(refuse={"marcus@district.test"}))
    again = Mailer()
    out = _stage(run, again)
    assert [to for to, _ in again.sent] == ["marcus@district.test"]  # Dana's went already
    assert out["counts"] == {"unchanged": 1, "sent": 1}
    third = Mailer()
    assert _stage(run, third)["counts"] == {"unchanged": 2} and third.sent == []


def test_off_does_nothing_and_a_dry_run_writes_nothing(run):
    assert _stage(run, Mailer(), mode="off") == {"mode": "off", "counts": {}}
    doc = json.loads((run[3] / "report.json").read_text())
    (run[3] / "report.json").write_text(json.dumps({**doc, "dry_run": True}))
    mailer = Mailer()
    assert _stage(run, mailer)["skipped"] == "dry run" and mailer.sent == []
    assert not (run[3] / "digests").exists()


def test_an_unreachable_smtp_server_fails_each_digest_clearly_through_the_provider(run, monkeypatch):
    """The real mailer (Airflow's SmtpHook) against a port where nothing listens: every digest
    fails with the reason, nothing is recorded as sent, the next run tries again."""
    import socket

    from canvas_aspen.airflow_glue import DigestMailer

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again: nothing listens there
    monkeypatch.setenv(
        "AIRFLOW_CONN_SMTP_DEFAULT",
        json.dumps(
            {
                "conn_type": "smtp",
                "host": "127.0.0.1",
                "port": port,
                "extra": {
                    "from_email": "passback@district.test",
                    "disable_tls": True,
                    "disable_ssl": True,
                    "timeout": 5,
                },
            }
        ),
    )
    mailer = DigestMailer("smtp_default")
    try:
        out = _stage(run, mailer)
    finally:
        mailer.close()
    assert out["counts"] == {"failed": 2}
    listing = json.loads((run[3] / "digests" / "index.json").read_text())
    assert all("Connection refused" in e["error"] or "ConnectionRefused" in e["error"] for e in listing)
    assert run[0].last_sent_digests([9001, 9002]) == {}
