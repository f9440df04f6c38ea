"""The DAG for real (``dag.test()``) against the sandbox demo district.

The expected Aspen state is written down independently of the pipeline in
``sandbox/scenarios/demo.expected.json`` (see sandbox/README.md for how each rule occurs).
"""

from __future__ import annotations

import json
import re
from datetime import datetime
from pathlib import Path
from urllib.parse import unquote

import pytest

pytestmark = [pytest.mark.slow, pytest.mark.airflow_db]

EXPECTED = json.loads(
    (
        __import__("pathlib").Path(__file__).resolve().parents[2] / "sandbox/scenarios/demo.expected.json"
    ).read_text()
)
REF_FIELDS = {"class": "class", "category": "category", "gradingPeriod": "gradingPeriod"}


def _ref(value):
    return value.get("sourcedId") if isinstance(value, dict) else value


def _instant(text):
    return None if text is None else datetime.fromisoformat(str(text).replace("Z", "+00:00"))


def _ours(state: dict, kind: str) -> dict:
    return {
        k: v for k, v in state[kind].items() if k.startswith("canvas-") and v.get("status") != "tobedeleted"
    }


def assert_line_items(state: dict, expected: dict) -> None:
    for sid, want in expected.items():
        got = state["lineItems"].get(sid)
        assert got is not None, f"line item {sid} missing in Aspen"
        for field, value in want.items():
            if field in REF_FIELDS:
                assert _ref(got.get(field)) == value, (sid, field)
            elif field in ("dueDate", "assignDate"):
                assert _instant(got.get(field)) == _instant(value), (sid, field)
            else:
                assert got.get(field) == value, (sid, field, got.get(field))


def assert_results(state: dict, expected: dict) -> None:
    for sid, want in expected.items():
        got = state["results"].get(sid)
        assert got is not None, f"result {sid} missing in Aspen"
        for field, value in want.items():
            if field == "note":
                continue
            have = _ref(got.get(field)) if field in ("lineItem", "student") else got.get(field)
            if field == "score" and value is not None and have is not None:
                assert float(have) == pytest.approx(float(value)), (sid, field)
            else:
                assert have == value, (sid, field, have)


BUCKETS = ("posted", "unchanged", "empty", "hidden", "held_back", "failed")  # R17's six (hidden: R20)


def assert_buckets_add_up(report: dict) -> None:
    t = report["totals"]
    assert t["considered"] == sum(t[b] for b in BUCKETS)
    for c in report["courses"]:
        assert c["considered"] == sum(c[b] for b in BUCKETS)


@pytest.fixture
def demo(sandbox_factory):
    return sandbox_factory(scenario="demo")


def test_R17_R18_demo_district_first_run_second_run_and_a_day_of_grading(demo, run_passback):
    before = demo.state()
    untouched = {k: before["results"][k] for k in EXPECTED["untouched"]["results"]}

    state_, report = run_passback(demo)
    assert state_ == "success", report["findings"][:3]
    after = demo.state()
    # cell by cell: every line item and result the first run must create ...
    assert_line_items(after, EXPECTED["lineItems"])
    assert_results(after, EXPECTED["results"])
    # ... and nothing else of ours (untouched ones keep their values; nothing held back got through)
    assert set(_ours(after, "lineItems")) == set(EXPECTED["lineItems"]) | {
        k for k in EXPECTED["untouched"]["lineItems"] if k.startswith("canvas-")
    }
    assert set(_ours(after, "results")) == set(EXPECTED["results"]) | {
        k for k in EXPECTED["untouched"]["results"] if k.startswith("canvas-")
    }
    assert {k: after["results"][k] for k in untouched} == untouched
    held = {f"canvas-a{h['assignment_id']}-s{h['section_id']}-u{h['user_id']}" for h in EXPECTED["held_back"]}
    assert not held & set(after["results"])
    assert report["totals"]["posted"] == len(EXPECTED["results"])
    assert report["totals"]["held_back"] == len(EXPECTED["held_back"])
    assert report["totals"]["failed"] == 0 and report["verify"]["mismatched"] == 0
    assert report["verify"]["checked"] == len(EXPECTED["results"])
    assert_buckets_add_up(report)
    kinds = {f["kind"] for f in report["findings"]}
    for h in EXPECTED["held_back"]:
        assert set(h["kinds"]) & kinds, h
    assert {
        "orphaned_line_item",
        "category_case_mismatch",
        "weight_mismatch",
        "unweighted_group",
        "imported_assignments_group",
    } <= kinds

    # R8: the second night finds nothing to post and creates no duplicate
    state_, again = run_passback(demo)
    assert state_ == "success"
    assert again["totals"]["posted"] == 0
    assert again["totals"]["unchanged"] == report["totals"]["posted"]
    assert demo.state()["lineItems"].keys() == after["lineItems"].keys()
    assert demo.state()["results"].keys() == after["results"].keys()

    # a day of grading: only the changes go; the Aspen hand edit Canvas did not change is kept (R9)
    demo.day_of_grading(fraction=0, scripted=True)
    state_, day = run_passback(demo)
    assert state_ == "success"
    changed = EXPECTED["after_scripted_day_of_grading"]
    final = demo.state()
    assert_results(final, changed["results"])
    assert day["totals"]["posted"] == sum(
        1 for r in changed["results"].values() if "R9" not in r.get("note", "")
    )
    kinds = {f["kind"]: f for f in day["findings"]}
    assert kinds["aspen_edited"]["value"] and "cleared_in_canvas" in kinds
    orphans = {f["value"] for f in day["findings"] if f["kind"] == "orphaned_line_item"}
    assert orphans == set(changed["orphaned_line_items"])
    assert set(changed["orphaned_line_items"]) <= set(final["lineItems"])  # reported, not deleted
    assert_buckets_add_up(day)


def test_R10_delete_orphans_removes_only_orphaned_line_items(demo, run_passback):
    state_, report = run_passback(demo, delete_orphans=True)
    assert state_ == "success"
    after = demo.state()
    assert "canvas-a3099-s1011" not in _ours(after, "lineItems")
    assert "ASPEN-ALG1-NB1" in after["lineItems"]  # a teacher's own column is never ours
    assert set(EXPECTED["lineItems"]) <= set(after["lineItems"])


def test_R12_backfill_touches_only_the_chosen_courses_classes(demo, run_passback):
    state_, report = run_passback(demo, course_ids=[103])
    assert state_ == "success"
    assert [c["canvas_course_id"] for c in report["courses"]] == [103]
    after = demo.state()
    ours = _ours(after, "lineItems")
    assert ours and all(
        _ref(li["class"]) == "ENG10-P3" for k, li in ours.items() if k != "canvas-a3099-s1011"
    )
    assert set(k for k in ours if k.endswith("-s1031")) == {
        k for k in EXPECTED["lineItems"] if k.endswith("-s1031")
    }


def test_R12_dry_run_posts_nothing_and_reports_what_would_go(demo, run_passback):
    before = demo.state()
    state_, report = run_passback(demo, dry_run=True)
    assert state_ == "success"
    assert report["dry_run"] is True
    assert report["totals"]["posted"] == len(EXPECTED["results"])  # would be posted
    assert demo.state() == before


def test_one_data_docs_site_per_run_lists_every_shards_gates_and_a_dry_run_gets_it(
    demo, run_passback, tmp_path
):
    """The validate and match tasks only validate and keep GX's results beside their stage files;
    the report task builds the run's one Data Docs site, whose GX index links a page per shard and
    gate, each rendering that gate's results."""
    state_, report = run_passback(demo, dry_run=True)
    assert state_ == "success" and report["dry_run"] is True
    docs = Path(report["_folder"]) / "datadocs"
    assert not list(docs.glob("shard-*")), "a site per shard and stage"
    stage_root = tmp_path / "stage"
    (run_dir,) = stage_root.iterdir()
    shards = sorted(p.name for p in run_dir.glob("shard-*"))
    assert shards == ["shard-0000", "shard-0001"]
    for shard in shards:
        assert {p.name for p in (run_dir / shard).glob("gx-results-*.json")} == {
            "gx-results-validate.json",
            "gx-results-match.json",
        }

    pages = sorted(p.relative_to(docs).as_posix() for p in (docs / "validations").rglob("*.html"))
    expected = {
        (suite, f"{run_dir.name}-shard{k}-{gate}")
        for k in (0, 1)
        for suite, gate in [
            ("grades", "validate"),
            ("assignments", "validate"),
            ("match", "match"),
            ("advice", "advice"),
        ]
    }
    assert {tuple(page.split("/")[1:3]) for page in pages} == expected and len(pages) == len(expected)
    index = (docs / "index.html").read_text()
    # GX's index table (bootstrap-table, rendered in the browser) makes each row a link to its page
    links = {unquote(path) for path in re.findall(r"'_table_row_link_path': '(validations/[^']+)'", index)}
    assert links == set(pages), "GX's index links every shard's validate and match results"
    page = next(p for p in pages if p.startswith(f"validations/grades/{run_dir.name}-shard1-validate/"))
    text = (docs / page).read_text()
    assert "Evaluated Expectations" in text and f"{run_dir.name}-shard1-validate" in text
    assert "R5: the score is at most the points possible" in text
    assert all(p.stat().st_mode & 0o077 == 0 for p in docs.rglob("*")), "Data Docs show grades: owner-only"
    assert "datadocs/index.html" in (Path(report["_folder"]) / "report.html").read_text()


def test_R12_full_resync_posts_every_eligible_grade_again(demo, run_passback):
    assert run_passback(demo)[0] == "success"
    state_, again = run_passback(demo, full_resync=True)
    assert state_ == "success"
    assert again["totals"]["posted"] == len(EXPECTED["results"]) and again["totals"]["unchanged"] == 0
    assert set(_ours(demo.state(), "results")) >= set(EXPECTED["results"])  # replaced in place, no duplicates


def test_R18_a_write_aspen_lost_fails_the_run_loudly_after_the_report(sandbox_factory, run_passback):
    sb = sandbox_factory(scenario="demo", aspen_faults={"lost_write_rate": 0.2, "seed": 3})
    state_, report = run_passback(sb)
    assert state_ == "failed"
    assert report["verify"]["mismatched"] > 0
    lost = [f for f in report["findings"] if f["kind"] == "verify_mismatch"]
    assert len(lost) == report["verify"]["mismatched"] and all(f["student_sis_id"] for f in lost)
    assert_buckets_add_up(report)
