"""The teacher digest through the DAG for real (``dag.test()`` against the sandbox demo
district), sent through Airflow's SMTP provider to a local SMTP server (aiosmtpd on 127.0.0.1)."""

from __future__ import annotations

import email
import email.policy
import json
import re
import socket
import stat
from pathlib import Path

import pytest

pytestmark = [pytest.mark.slow, pytest.mark.airflow_db, pytest.mark.timeout(900)]

DEMO = json.loads((Path(__file__).resolve().parents[2] / "sandbox/scenarios/demo.json").read_text())
TEACHER_IDS = {9001, 9002}
STUDENT_NAMES = [u["name"] for u in DEMO["canvas"]["users"] if u["id"] not in TEACHER_IDS]
DANA, MARCUS = "dana.whitfield@district.example.org", "marcus.bell@district.example.org"
COURSES_OF = {DANA: {101, 102}, MARCUS: {103}}


class Inbox:
    """What the SMTP server received; ``refuse`` makes it answer every message with a 451."""

    def __init__(self) -> None:
        self.messages: list[tuple[list[str], email.message.EmailMessage, bytes]] = []
        self.refuse = False

    async def handle_DATA(self, server, session, envelope):  # aiosmtpd's handler hook
        if self.refuse:
            return "451 4.3.0 Mail server temporarily rejected message"
        raw = envelope.original_content or envelope.content
        self.messages.append(
            (list(envelope.rcpt_tos), email.message_from_bytes(raw, policy=email.policy.default), raw)
        )
        return "250 OK"

    def to(self, address: str) -> list[email.message.EmailMessage]:
        return [m for rcpt, m, _ in self.messages if address in rcpt]


@pytest.fixture
def inbox(monkeypatch):
    from aiosmtpd.controller import Controller

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    box = Inbox()
    controller = Controller(box, hostname="127.0.0.1", port=port, ready_timeout=10)
    controller.start()
    monkeypatch.setenv(
        "AIRFLOW_CONN_SMTP_DEFAULT",
        json.dumps(
            {
                "conn_type": "smtp",
                "host": "127.0.0.1",
                "port": port,
                "extra": {
                    "from_email": "grade-passback@district.example.org",
                    "disable_tls": True,
                    "disable_ssl": True,
                    "timeout": 10,
                    "retry_limit": 0,
                },
            }
        ),
    )
    yield box
    controller.stop()


@pytest.fixture
def demo(sandbox_factory):
    return sandbox_factory(scenario="demo")


def _parts(msg: email.message.EmailMessage) -> tuple[str, str]:
    return msg.get_body(("plain",)).get_content(), msg.get_body(("html",)).get_content()


def _teacher_findings(report: dict, course: int) -> set[str]:
    from canvas_aspen import digest

    return {
        f["assignment_name"]
        for f in report["findings"]
        if f["canvas_course_id"] == course
        and f["assignment_name"]
        and digest.audience(f["kind"]) == digest.TEACHER
    }


def _task_states(run_id: str) -> dict[str, str]:
    """The states of the report and digest task instances of a run, from Airflow's metadata DB."""
    from airflow.models.taskinstance import TaskInstance
    from airflow.utils.session import create_session

    with create_session() as session:
        tis = (
            session.query(TaskInstance)
            .filter(
                TaskInstance.dag_id == "canvas_aspen_grade_passback",
                TaskInstance.run_id == run_id,
                TaskInstance.task_id.in_(["report", "digest"]),
            )
            .all()
        )
        return {ti.task_id: str(ti.state.value if hasattr(ti.state, "value") else ti.state) for ti in tis}


def _rerun_digest_task(run_id: str, mode: str = "send") -> dict:
    """The digest task's work once more for the same run (a retried or cleared task)."""
    from datetime import timedelta

    from canvas_aspen import airflow_glue as glue
    from canvas_aspen import stages

    s = glue.settings()
    mailer = glue.DigestMailer(s.smtp_conn_id)
    try:
        return stages.digest(
            glue.ledger(s),
            glue.run_dir(s, run_id),
            s.reports_dir,
            run_id=run_id,
            mode=mode,
            resend_after=timedelta(days=7),
            mailer=mailer,
            canvas_url=glue.canvas_url(s),
        )
    finally:
        mailer.close()


def _english_needs_a_due_date(sb) -> None:
    """Something for English 10's teacher to fix too (the demo's English course has only data-team
    findings): an essay without a due date."""
    sb.canvas_update_assignment(103, 3201, due_at=None)


def test_each_teacher_gets_one_digest_of_their_own_courses_never_twice_and_smtp_failures_fail_only_the_digest(
    demo, run_passback, inbox, monkeypatch
):
    monkeypatch.setenv("CANVAS_ASPEN_TEACHER_DIGEST", "send")
    _english_needs_a_due_date(demo)

    # night 1: the SMTP server refuses every message: the passback's result stands, the digests fail
    inbox.refuse = True
    state, report = run_passback(demo)
    assert state == "success"  # the digest is a teardown of the report: it never decides the run's state
    listing = json.loads((Path(report["_folder"]) / "digests" / "index.json").read_text())
    assert [(e["teacher_id"], e["status"]) for e in listing] == [(9001, "failed"), (9002, "failed")]
    assert all("451" in e["error"] and "@" not in e["error"] for e in listing)
    assert inbox.messages == []
    assert _task_states(report["run_id"]) == {
        "report": "success",
        "digest": "failed",
    }  # visible, on the digest only

    # night 2: SMTP is back; each teacher gets exactly one message, of their own courses only
    inbox.refuse = False
    state, report = run_passback(demo)
    assert state == "success"
    assert sorted(r for rcpt, _, _ in inbox.messages for r in rcpt) == [DANA, MARCUS]
    for address, courses in COURSES_OF.items():
        [msg] = inbox.to(address)
        text, html = _parts(msg)
        assert msg["From"] == "grade-passback@district.example.org" and msg["Subject"].startswith(
            "Grade passback:"
        )
        for course in (101, 102, 103):
            names = _teacher_findings(report, course)
            assert names, course  # something to fix in every course
            for name in names:
                assert (name in text) == (course in courses), (address, course, name)
        for course in courses:
            assert f"{demo.canvas_url}/courses/{course}" in text  # links to the course in Canvas
    dana_text, dana_html = _parts(inbox.to(DANA)[0])
    assert "Categories → Options → Add" in dana_text and "Code QUIZZES" in dana_text  # the setup sheet row
    assert "S1001: 12" in dana_text  # the over-max score, by SIS id

    # the messages hold no student name, no token, no secret
    secrets = [demo.canvas_token, demo.aspen_client_secret, demo.aspen_client_id]
    for _, msg, raw in inbox.messages:
        blob = "\n".join(_parts(msg)) + raw.decode("utf-8", "replace")
        for name in STUDENT_NAMES + secrets:
            assert not re.search(rf"\b{re.escape(name)}\b", blob), name

    # the task again for the same run (a retry, a cleared task): nothing is sent twice
    again = _rerun_digest_task(report["run_id"])
    assert again["teachers"] == 2 and "sent" not in again["counts"] and len(inbox.messages) == 2
    from canvas_aspen import airflow_glue as glue

    ledger = glue.ledger(glue.settings())
    assert [(d["teacher_id"], d["status"]) for d in ledger.digests(report["run_id"])] == [
        (9001, "sent"),
        (9002, "sent"),
    ]

    # night 3: nothing changed in Canvas, nothing new to tell
    state, report = run_passback(demo)
    assert state == "success" and len(inbox.messages) == 2
    assert "findings changed since their last digest" in (Path(report["_folder"]) / "report.html").read_text()


def test_preview_writes_owner_only_files_listed_in_the_report_sends_nothing_and_never_for_a_dry_run(
    sandbox_factory, run_passback, inbox, monkeypatch
):
    monkeypatch.delenv("CANVAS_ASPEN_TEACHER_DIGEST", raising=False)  # preview is the default
    scenario = json.loads(json.dumps(DEMO))
    for u in scenario["canvas"]["users"]:
        if u["id"] == 9002:
            del u["email"]  # English 10's teacher has no email in Canvas
    sb = sandbox_factory(scenario=scenario)
    _english_needs_a_due_date(sb)

    state, report = run_passback(sb, dry_run=True)
    assert state == "success" and report["dry_run"] is True
    assert not (Path(report["_folder"]) / "digests").exists()
    assert (
        "A dry run sends and writes no teacher digest"
        in (Path(report["_folder"]) / "report.html").read_text()
    )

    state, report = run_passback(sb)
    assert state == "success" and inbox.messages == []
    folder = Path(report["_folder"])
    files = sorted(p.name for p in (folder / "digests").iterdir())
    assert files == ["index.json", "teacher-9001.html", "teacher-9001.txt"]
    for p in (folder / "digests").iterdir():
        assert stat.S_IMODE(p.stat().st_mode) == 0o600
    assert stat.S_IMODE((folder / "digests").stat().st_mode) == 0o700
    assert "Dear Dana Whitfield" in (folder / "digests" / "teacher-9001.txt").read_text()
    page = (folder / "report.html").read_text()
    assert 'href="digests/teacher-9001.html"' in page and "nothing was sent" in page
    # the course no digest reaches is on the data team's list, in report.json and report.html
    [lost] = report["courses_without_teacher_email"]
    assert (lost["canvas_course_id"], lost["sis_course_id"], lost["reason"]) == (
        103,
        "ENG10-2627",
        "no teacher of the course has an email address in Canvas",
    )
    from canvas_aspen import digest

    fixes, _ = digest.course_items([f for f in report["findings"] if f["canvas_course_id"] == 103], [])
    assert "no_due_date" in {
        i["kind"] for i in fixes
    }  # the essay without a due date reaches no one but the report
    assert lost["teacher_findings"] == len(fixes)
    assert "no teacher of the course has an email address in Canvas" in page
