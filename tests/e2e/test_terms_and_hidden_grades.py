"""R19 (which courses a night covers) and R20 (grades hidden by the posting policy), through
the DAG for real (``dag.test()``) against the sandbox."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from sandbox import scenario as scenario_mod
from sandbox.generator import generate

from .test_dag_end_to_end import assert_buckets_add_up, assert_line_items, assert_results

pytestmark = [pytest.mark.slow, pytest.mark.airflow_db]

EXPECTED = json.loads(
    (Path(__file__).resolve().parents[2] / "sandbox/scenarios/demo.expected.json").read_text()
)
TERMS = "GET /api/v1/accounts/{account_id}/terms"
COURSES = "GET /api/v1/accounts/{account_id}/courses"


def _count(stats: dict, endpoint: str) -> int:
    return (stats["endpoints"].get(endpoint) or {}).get("count", 0)


def _ours(state: dict) -> tuple[dict, dict]:
    return (
        {k: v for k, v in state["lineItems"].items() if k.startswith("canvas-")},
        {k: v for k, v in state["results"].items() if k.startswith("canvas-")},
    )


def test_r19_r20_demo_night_scope_hidden_grades_then_posted_then_hidden_again(sandbox_factory, run_passback):
    demo = sandbox_factory(scenario="demo")
    hidden = EXPECTED["hidden"]
    after_posting = hidden["after_posting"]

    # night 1: the current terms' available courses only; the hidden grades are not sent
    state_, report = run_passback(demo)
    assert state_ == "success", report["findings"][:3]
    assert sorted(c["canvas_course_id"] for c in report["courses"]) == [101, 102, 103]
    canvas = demo.stats("canvas")
    assert _count(canvas, TERMS) == 1
    assert _count(canvas, COURSES) == 2  # the current terms: 2026-2027 and the Default Term
    assert _count(canvas, "GET /api/v1/courses/{course_id}/sections") == 3  # nothing of 104, 105, 106 read
    assert report["totals"]["hidden"] == len(hidden["submissions"]) == 4
    assert {c["canvas_course_id"]: c["hidden"] for c in report["courses"]} == {101: 0, 102: 0, 103: 4}
    notes = [f for f in report["findings"] if f["kind"] == "hidden_grades"]
    assert [(f["assignment_id"], f["value"], f["severity"], f["rule"]) for f in notes] == [
        (3204, 4, "info", "R20")
    ]
    assert report["totals"]["posted"] == len(EXPECTED["results"])
    assert_buckets_add_up(report)
    items, results = _ours(demo.state())
    assert not any(k.startswith("canvas-a3204-") for k in [*items, *results])

    # a concluded course named in course_ids: taken as asked, fails naming its Aspen class, writes nothing
    before = demo.state()
    state_, old = run_passback(demo, course_ids=[105])
    assert state_ == "failed"
    [course] = old["courses"]
    assert course["canvas_course_id"] == 105 and "GEOM-2526-P4" in course["error"]
    assert course["considered"] == course["failed"] == 3  # last year's three grades, none written
    assert_buckets_add_up(old)
    assert _ours(demo.state()) == _ours(before)

    # the teacher posts the grades: the next run sends them (and only them)
    demo.canvas_post_grades(103, 3204)
    state_, posted = run_passback(demo)
    assert state_ == "success", posted["findings"][:3]
    assert posted["totals"]["hidden"] == 0 and posted["totals"]["posted"] == len(after_posting["results"])
    assert not [f for f in posted["findings"] if f["kind"] == "hidden_grades"]
    assert_line_items(demo.state(), after_posting["lineItems"])
    assert_results(demo.state(), after_posting["results"])
    assert_buckets_add_up(posted)

    # the teacher hides them again: Aspen keeps what it has, with a warning per grade
    demo.canvas_hide_grades(103, 3204)
    state_, again = run_passback(demo)
    assert state_ == "success"
    assert again["totals"]["hidden"] == 4 and again["totals"]["posted"] == 0
    warned = [f for f in again["findings"] if f["kind"] == "hidden_in_canvas"]
    assert sorted(f["student_sis_id"] for f in warned) == ["S1301", "S1302", "S1303", "S1305"]
    assert all(f["severity"] == "warning" and f["assignment_id"] == 3204 for f in warned)
    assert_results(demo.state(), after_posting["results"])
    assert_buckets_add_up(again)


def test_r19_named_terms_setting_and_the_default_term(sandbox_factory, run_passback, monkeypatch):
    data = copy.deepcopy(scenario_mod.load("demo"))
    courses = {c["id"]: c for c in data["canvas"]["courses"]}
    courses[101]["enrollment_term_id"] = 3  # the Default Term: no dates, current
    courses[103]["enrollment_term_id"] = 2  # last year's term (ended): available, but not current
    sb = sandbox_factory(scenario=data)

    state_, nightly = run_passback(sb, dry_run=True)
    assert state_ == "success"
    assert sorted(c["canvas_course_id"] for c in nightly["courses"]) == [101, 102]

    monkeypatch.setenv("CANVAS_ASPEN_TERMS", "sis_term_id:2526")  # last year's, named: its available course
    sb.reset_stats()
    state_, named = run_passback(sb, dry_run=True)
    assert state_ == "success"
    assert [c["canvas_course_id"] for c in named["courses"]] == [103]
    assert _count(sb.stats("canvas"), COURSES) == 1


def test_r19_many_concluded_courses_cost_a_no_change_night_no_canvas_requests(sandbox_factory, run_passback):
    """A no-change night over an account with 120 of last year's concluded courses makes exactly
    the Canvas requests it makes over the same account without them (the terms listing included:
    one request); its course list stays one page, where an unfiltered one would take two."""
    shape = {"courses": 4, "students_per_section": 5, "assignments": 3, "seed": 11, "messiness": 0.0}
    counts = {}
    for past in (0, 120):
        sb = sandbox_factory(scenario=generate(**shape, past_courses=past))
        state_, first = run_passback(sb)
        assert state_ == "success", first["findings"][:3]
        assert len(first["courses"]) == 4
        sb.reset_stats()
        state_, night = run_passback(sb)
        assert state_ == "success" and night["totals"]["posted"] == 0 and night["totals"]["unchanged"] > 0
        stats = sb.stats("canvas")
        counts[past] = {ep: v["count"] for ep, v in stats["endpoints"].items()}
        assert sum(counts[past].values()) == stats["requests"]
    assert counts[120] == counts[0]
    assert counts[120][TERMS] == 1 and counts[120][COURSES] == 1
