"""The DAG itself (``dag.test()``, every task in this process) against the demo district,
with faults on both systems and Aspen rejecting three results (issue 8).

Run 1: Canvas and Aspen answer 5xx, 429 with ``Retry-After`` and dropped connections, Aspen's
tokens expire mid-run, and Aspen refuses three results (422). The run posts everything
else, those three end ``failed`` with Aspen's message, the report is written, and then the
run fails. Everything the run printed or stored is searched: the Canvas token, the Aspen
client secret and every Aspen access token issued appear nowhere (logs, task log files,
reports, Data Docs, XCom, stage files, ledger); no student name appears in logs or reports
(nor anywhere else), no teacher's name or email in logs or XCom; XCom holds counts only; the
report folder and the stage files are readable by their owner only.

Run 2 (healthy servers): exactly the three failed grades are posted, nothing else.
"""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path

import pytest

from .conftest import DAG_ID, DEMO, EXPECTED, assert_buckets_add_up, demo_scenario, ours

pytestmark = [pytest.mark.slow, pytest.mark.airflow_db, pytest.mark.timeout(900)]

FAULTS = {
    "error_rate": 0.05,
    "rate_429": 0.02,
    "retry_after_s": 1,
    "drop_rate": 0.01,
    "fail_next": [503, 429, "drop"],
}


def rejected_ids() -> list[str]:
    """One result of ours in each of three classes (Algebra I, Biology P5, English 10)."""
    keys = sorted(EXPECTED["results"])
    return [next(k for k in keys if f"-s{section}-" in k) for section in (1011, 1022, 1031)]


def _enrolled_as(kind: str) -> set[int]:
    return {
        e["user_id"]
        for c in DEMO["canvas"]["courses"]
        for e in c.get("enrollments") or []
        if e.get("type", "StudentEnrollment") == kind
    }


def names() -> list[str]:
    """Every student's name, as "Given Family" and "Family, Given"."""
    students = _enrolled_as("StudentEnrollment")
    out = []
    for u in DEMO["canvas"]["users"]:
        if u["id"] in students:
            given, _, family = u["name"].partition(" ")
            out += [u["name"], f"{family}, {given}"]
    return out


def teachers() -> list[str]:
    """Every teacher's name and email: not student data (the digest and the report name them),
    but never in logs or XCom."""
    ids = _enrolled_as("TeacherEnrollment")
    return [v for u in DEMO["canvas"]["users"] if u["id"] in ids for v in (u["name"], u.get("email")) if v]


def text_of(path: Path) -> str:
    return path.read_bytes().decode("utf-8", errors="replace")


def xcom_values(run_id: str) -> list:
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        rows = session.execute(
            select(XComModel.task_id, XComModel.value).where(
                XComModel.dag_id == DAG_ID, XComModel.run_id == run_id
            )
        ).all()
    return [(task, value) for task, value in rows]


def test_dag_run_under_faults_leaks_no_secret_nor_name_and_rejected_grades_go_next_run(
    sandbox_factory, dag_run, monkeypatch, caplog, capfd, airflow_home, tmp_path
):
    from canvas_aspen.hooks.aspen import AspenHook

    scenario = demo_scenario()
    canvas_token, aspen_secret = scenario["canvas"]["token"], scenario["aspen"]["client_secret"]
    reject = rejected_ids()
    sb = sandbox_factory(
        scenario=scenario,
        canvas_faults={**FAULTS, "seed": 5},
        aspen_faults={**FAULTS, "seed": 6, "expire_tokens_every": 30, "reject_result_ids": reject},
    )
    issued: list[str] = []
    fetch = AspenHook._fetch_token

    def spy(self):
        token, refresh_at = fetch(self)
        issued.append(token)
        return token, refresh_at

    monkeypatch.setattr(AspenHook, "_fetch_token", spy)
    caplog.set_level(logging.DEBUG)
    logs_before = (
        {p: p.stat().st_mtime for p in (airflow_home / "logs").rglob("*") if p.is_file()}
        if (airflow_home / "logs").exists()
        else {}
    )

    state, report, dr, folder = dag_run(sb)

    # ---- Aspen's rejections: failed with Aspen's message, the rest posted, the run failed after its report
    assert state == "failed"
    assert report["totals"]["failed"] == len(reject)
    assert report["totals"]["posted"] == len(EXPECTED["results"]) - len(reject)
    assert report["verify"]["mismatched"] == 0
    assert_buckets_add_up(report)
    refused = [f for f in report["findings"] if f["kind"] == "aspen_rejected"]
    assert len(refused) == len(reject)
    for f in refused:
        assert "result rejected (sandbox fault)" in f["message"] and f["student_sis_id"], f
    held = sb.state()["results"]
    assert not set(reject) & set(held)
    ti = {t.task_id: t.state for t in dr.get_task_instances()}
    assert ti["report"] == "failed" and all(s == "success" for t, s in ti.items() if t != "report"), ti
    faults = {s: sb.stats(s)["statuses"] for s in ("canvas", "aspen")}
    assert all(any(k.startswith("5") for k in st) and st.get("429") for st in faults.values()), faults
    assert faults["aspen"].get("401") and len(issued) >= 2  # tokens expired mid-run and were renewed

    # ---- everything the run printed or stored
    out = capfd.readouterr()
    logged = "\n".join(
        [caplog.text, out.out, out.err]
        + [
            text_of(p)
            for p in (airflow_home / "logs").rglob("*")
            if p.is_file() and logs_before.get(p) != p.stat().st_mtime
        ]
    )
    assert "retrying" in logged and "not accepted by Aspen" in logged  # the logs were captured
    reports = "\n".join(text_of(p) for p in folder.rglob("*") if p.is_file())
    assert "report.html" in {p.name for p in folder.iterdir()}
    xcom = json.dumps(xcom_values(dr.run_id), default=str)
    assert '"shard"' in xcom
    stored = "\n".join(
        text_of(p) for p in [*(tmp_path / "stage").rglob("*"), *tmp_path.glob("ledger.db*")] if p.is_file()
    )
    for secret in [canvas_token, aspen_secret, *issued]:
        for where, text in (
            ("logs", logged),
            ("reports", reports),
            ("xcom", xcom),
            ("stage files/ledger", stored),
        ):
            assert secret not in text, f"a secret ({secret[:6]}…) in {where}"
    for name in names():
        for where, text in (
            ("logs", logged),
            ("reports", reports),
            ("xcom", xcom),
            ("stage files/ledger", stored),
        ):
            assert name not in text, f"student name {name!r} in {where}"
    assert names() and teachers()
    for who in teachers():
        for where, text in (("logs", logged), ("xcom", xcom)):
            assert who not in text, f"a teacher's name or email ({who!r}) in {where}"
    for where, text in (("logs", logged), ("reports", reports), ("stage files", stored)):
        assert '"familyName"' not in text and '"givenName"' not in text, where  # no Aspen roster record
    # XCom: only counts (no student ids, scores or paths of the data)
    assert not re.search(r"\bS1\d{3}\b", xcom), xcom[:500]

    # ---- report files: owner only
    assert folder.stat().st_mode & 0o777 == 0o700
    for p in folder.rglob("*"):
        assert p.stat().st_mode & 0o077 == 0, (str(p.relative_to(folder)), oct(p.stat().st_mode & 0o777))
    # ---- stage files (a local file:// stage root): owner only too
    stage_root = tmp_path / "stage"
    assert any(p.name == "canvas.json" for p in stage_root.rglob("*"))
    for p in [stage_root, *stage_root.rglob("*")]:
        assert p.stat().st_mode & 0o077 == 0, (str(p.relative_to(tmp_path)), oct(p.stat().st_mode & 0o777))

    # ---- run 2, healthy servers: exactly the failed grades are posted
    sb.set_faults("canvas")
    sb.set_faults("aspen")
    sb.reset_stats()
    state, again, _, _ = dag_run(sb)
    assert state == "success", again["courses"]
    assert again["totals"]["posted"] == len(reject)
    puts = {n: e["count"] for n, e in sb.stats("aspen")["endpoints"].items() if n.startswith("PUT")}
    assert sum(c for n, c in puts.items() if "/results/" in n) == len(reject)
    assert sum(c for n, c in puts.items() if "/lineItems/" in n) == 0
    final = ours(sb.state())
    for rid, want in EXPECTED["results"].items():  # every grade of the demo, the rejected three included
        assert rid in final["results"], rid
        line_item, student, score_status, score, _ = final["results"][rid]
        assert (line_item, student, score_status) == (
            want["lineItem"],
            want["student"],
            want["scoreStatus"],
        ), rid
        if want.get("score") is not None:
            assert score == pytest.approx(float(want["score"])), rid
