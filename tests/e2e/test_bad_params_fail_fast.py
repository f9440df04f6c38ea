"""Params that cannot work fail the run in its plan, at once and without retries, and the
run still gets a report that says why (the DAG for real with ``dag.test()``)."""

from __future__ import annotations

import time

import pytest

pytestmark = [pytest.mark.slow, pytest.mark.airflow_db]


def _task_states(dr) -> dict[str, tuple[str, int]]:
    return {t.task_id: (str(t.state), t.try_number) for t in dr.get_task_instances()}


def _assert_failed_in_plan_once(state, report, dr, folder, reason: str, started: float) -> None:
    assert state == "failed"
    tis = _task_states(dr)
    assert tis["plan"] == ("failed", 1), tis  # one try: no retry two minutes later
    assert tis["report"][0] == "failed", tis  # report ran, wrote the report, failed the run
    assert tis.get("digest", ("success", 1))[0] == "success", tis  # no digest, and no crash for want of one
    assert not [t for t, (s, _) in tis.items() if s == "success" and t != "digest"], tis
    assert time.monotonic() - started < 120  # the failure was certain in seconds, and took seconds
    assert report["failed_reasons"][0].startswith("plan failed: ") and reason in report["failed_reasons"][0]
    assert report["totals"]["considered"] == 0 and report["totals"]["posted"] == 0
    html = (folder / "report.html").read_text()
    assert reason in html and "failed" in html


def test_a_course_that_does_not_exist_fails_the_plan_at_once_with_a_report(
    sandbox_factory, passback_dag, tmp_path, monkeypatch
):
    from tests.e2e.conftest import _runner

    run = _runner(passback_dag, tmp_path, monkeypatch, whole=True)
    sb = sandbox_factory(scenario="demo")
    before = sb.state()
    started = time.monotonic()
    state, report, dr, folder = run(sb, course_ids=[101, 999999])
    _assert_failed_in_plan_once(state, report, dr, folder, "Canvas has no course with id 999999", started)
    assert "101" not in report["failed_reasons"][0].split("id ", 1)[1]  # only the missing id is named
    assert sb.state()["results"] == before["results"]  # nothing was posted


def test_a_mapping_file_that_does_not_exist_fails_the_plan_naming_the_path(
    sandbox_factory, passback_dag, tmp_path, monkeypatch
):
    from tests.e2e.conftest import _runner

    run = _runner(passback_dag, tmp_path, monkeypatch, whole=True)
    sb = sandbox_factory(scenario="demo")
    missing = tmp_path / "no-such-mappings.csv"
    started = time.monotonic()
    state, report, dr, folder = run(sb, course_ids=[101], dry_run=True, mapping_file=str(missing))
    _assert_failed_in_plan_once(state, report, dr, folder, f"mapping_file {missing}: no such file", started)
    assert report["dry_run"] is True
    assert not any("Aspen" in r for r in report["failed_reasons"]), report["failed_reasons"]
