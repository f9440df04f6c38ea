"""Through the DAG (``dag.test()``) against the sandbox: Aspen's gradebook column codes (R21),
students matched through the roster (R22), and Canvas changes that must reach Aspen in place."""

from __future__ import annotations

import json
from datetime import datetime

import pytest

from sandbox import scenario as scenario_mod
from sandbox.student_ids import aspen_style_student_ids

pytestmark = [pytest.mark.slow, pytest.mark.airflow_db]

EXPECTED = json.loads(
    (
        __import__("pathlib").Path(__file__).resolve().parents[2] / "sandbox/scenarios/demo.expected.json"
    ).read_text()
)
LINE_ITEM_PUT = "PUT /ims/oneroster/v1p1/lineItems/{sourced_id}"


class WithAspenExtras:
    """A sandbox whose Aspen connection carries more extras (what the runner reads of it)."""

    def __init__(self, sb, **extras):
        self.sb, self.extras = sb, extras

    def airflow_conn_env(self) -> dict[str, str]:
        env = self.sb.airflow_conn_env()
        aspen = json.loads(env["AIRFLOW_CONN_ASPEN_DEFAULT"])
        aspen["extra"].update(self.extras)
        return dict(env, AIRFLOW_CONN_ASPEN_DEFAULT=json.dumps(aspen))


def _instant(text):
    return None if text is None else datetime.fromisoformat(str(text).replace("Z", "+00:00"))


def _ref(value):
    return value.get("sourcedId") if isinstance(value, dict) else value


def _kinds(report, kind):
    return [f for f in report["findings"] if f["kind"] == kind]


def _line_item_puts(sb) -> int:
    return sb.stats("aspen")["endpoints"].get(LINE_ITEM_PUT, {}).get("count", 0)


def test_r21_colliding_titles_go_unique_stay_stable_and_send_nothing_when_unchanged(
    sandbox_factory, run_passback
):
    sb = sandbox_factory(scenario="demo")  # the sandbox Aspen refuses duplicate column codes (its default)
    sb.canvas_update_assignment(103, 3206, post_to_sis=False)  # night 1: only the Test is sendable

    state_, report = run_passback(sb)
    assert state_ == "success", report["findings"][:3]
    items = sb.state(class_id="ENG10-P3")["lineItems"]
    assert items["canvas-a3207-s1031"]["title"] == "Chapter 1 Test"
    assert "canvas-a3206-s1031" not in items
    assert _kinds(report, "column_code_collision") == []
    test_modified = items["canvas-a3207-s1031"]["dateLastModified"]

    # night 2: the older Quiz becomes sendable; the posted Test keeps its title, the Quiz gives way
    sb.canvas_update_assignment(103, 3206, post_to_sis=True)
    sb.reset_stats()
    state_, report = run_passback(sb)
    assert state_ == "success", report["findings"][:3]
    items = sb.state(class_id="ENG10-P3")["lineItems"]
    assert items["canvas-a3207-s1031"]["title"] == "Chapter 1 Test"
    assert items["canvas-a3207-s1031"]["dateLastModified"] == test_modified  # not sent again
    assert items["canvas-a3206-s1031"]["title"] == "#2 Chapter 1 Quiz"
    assert _line_item_puts(sb) == 1
    (warning,) = _kinds(report, "column_code_collision")
    assert (warning["rule"], warning["severity"], warning["assignment_id"], warning["value"]) == (
        "R21",
        "warning",
        3206,
        "#2 Chapter 1 Quiz",
    )
    assert warning["aspen_class_id"] == "ENG10-P3" and "Chapter 1 Test" in warning["message"]
    results = sb.state(class_id="ENG10-P3")["results"]
    assert results["canvas-a3206-s1031-u5301"]["score"] == 9

    # night 3, nothing changed: no line item is sent, the titles stay
    sb.reset_stats()
    state_, report = run_passback(sb)
    assert state_ == "success"
    assert _line_item_puts(sb) == 0
    assert report["totals"]["posted"] == 0
    assert sb.state(class_id="ENG10-P3")["lineItems"]["canvas-a3206-s1031"]["title"] == "#2 Chapter 1 Quiz"


def test_r21_column_code_length_zero_sends_canvas_names_as_they_are(sandbox_factory, run_passback):
    # an Aspen that does not enforce codes, and a connection that says so
    sb = sandbox_factory(scenario="demo", aspen_unique_column_codes=False)
    state_, report = run_passback(WithAspenExtras(sb, column_code_length=0))
    assert state_ == "success", report["findings"][:3]
    items = sb.state(class_id="ENG10-P3")["lineItems"]
    assert (items["canvas-a3206-s1031"]["title"], items["canvas-a3207-s1031"]["title"]) == (
        "Chapter 1 Quiz",
        "Chapter 1 Test",
    )
    assert _kinds(report, "column_code_collision") == []


def _district_with_aspen_ids() -> dict:
    """The demo district whose Aspen uses Aspen ids; one more roster user of ENG10-P3 carries
    Sofia's student number (S1003) as well: her English grades are ambiguous."""
    district = aspen_style_student_ids(scenario_mod.load("demo"))
    district["aspen"]["students"].append(
        {
            "sourcedId": "std_900001",
            "identifier": "S1003",
            "givenName": "Other",
            "familyName": "Student",
            "username": "other",
            "email": None,
        }
    )
    eng = next(c for c in district["aspen"]["classes"] if c["sourcedId"] == "ENG10-P3")
    eng["roster"].append("std_900001")
    return district


def test_r22_student_numbers_matched_by_identifier_results_name_aspen_ids(sandbox_factory, run_passback):
    district = _district_with_aspen_ids()
    ids = district["aspen"]["student_ids"]
    sb = sandbox_factory(scenario=district)

    # the default student_id_field (sourcedId) finds nobody: every grade is held back, nothing posted
    state_, report = run_passback(sb)
    assert report["totals"]["posted"] == 0
    assert not [
        k
        for k in sb.state()["results"]
        if k.startswith("canvas-") and k not in EXPECTED["untouched"]["results"]
    ]
    assert _kinds(report, "student_not_in_aspen_class")

    state_, report = run_passback(WithAspenExtras(sb, student_id_field="identifier"))
    assert state_ == "success", report["findings"][:3]
    results = sb.state()["results"]
    sofia_in_english = {
        k
        for k, v in EXPECTED["results"].items()
        if v["student"] == "S1003" and v["lineItem"].endswith("-s1031")
    }
    for sid, want in EXPECTED["results"].items():
        if sid in sofia_in_english:
            assert sid not in results, sid
            continue
        assert sid in results, sid
        assert _ref(results[sid]["student"]) == ids[want["student"]], sid  # the Aspen id, never the number
        assert results[sid]["scoreStatus"] == want["scoreStatus"]
    ambiguous = _kinds(report, "ambiguous_student")
    assert ambiguous and {(f["aspen_class_id"], f["student_sis_id"]) for f in ambiguous} == {
        ("ENG10-P3", "S1003")
    }
    assert all(f["rule"] == "R22" and f["severity"] == "error" for f in ambiguous)
    assert ids["S1003"] in ambiguous[0]["value"] and "std_900001" in ambiguous[0]["value"]
    # only the demo's own R16 case (Mia, S1007, not on the roster) is not found
    assert {f["student_sis_id"] for f in _kinds(report, "student_not_in_aspen_class")} == {"S1007"}
    # her Algebra grades go under her one Aspen id
    assert _ref(results["canvas-a3001-s1011-u5003"]["student"]) == ids["S1003"]
    assert report["totals"]["considered"] == sum(
        report["totals"][b] for b in report["totals"] if b != "considered"
    )


def test_changed_assignments_update_in_place_overrides_date_their_class_and_dropped_students_are_ignored(
    sandbox_factory, run_passback
):
    demo = scenario_mod.load("demo")
    biology = next(c for c in demo["canvas"]["courses"] if c["id"] == 102)
    lab1 = next(a for g in biology["assignment_groups"] for a in g["assignments"] if a["id"] == 3101)
    lab1["submissions"].append({"user_id": 5105, "score": 12})  # Henry dropped Biology (inactive enrollment)
    sb = sandbox_factory(scenario=demo)

    state_, report = run_passback(sb)
    assert state_ == "success", report["findings"][:3]
    after = sb.state()
    # letter-grade, pass/fail and percent assignments post their numeric score
    for sid in ("canvas-a3201-s1031-u5301", "canvas-a3107-s1021-u5001", "canvas-a3106-s1021-u5001"):
        assert after["results"][sid]["score"] == pytest.approx(EXPECTED["results"][sid]["score"]), sid
    # a section override dates that class's line item: P5's Lab 2 falls in locked Q1 (held back) ...
    assert "canvas-a3102-s1022" not in after["lineItems"]
    assert not [k for k in after["results"] if "-u5105" in k]  # the dropped student: not considered
    considered = report["totals"]["considered"]

    # the teacher renames, re-scales, re-groups and re-dates Lab 1, and moves P5's Lab 2 into Q2
    sb.canvas_update_assignment(
        102,
        3101,
        name="Lab 1 Microscopes and slides",
        points_possible=25,
        assignment_group_id=214,
        due_at="2027-02-10T16:00:00Z",
    )
    sb.canvas_update_assignment(
        102, 3102, overrides=[{"id": 71, "course_section_id": 1022, "due_at": "2026-11-19T16:00:00Z"}]
    )
    state_, report = run_passback(sb)
    assert state_ == "success", report["findings"][:3]
    after = sb.state()
    for section, klass in (("s1021", "BIO-P2"), ("s1022", "BIO-P5")):
        li = after["lineItems"][f"canvas-a3101-{section}"]  # the same sourcedId: updated in place
        assert li["title"] == "Lab 1 Microscopes and slides"
        assert li["resultValueMax"] == 25
        assert _ref(li["category"]) == f"cat-{klass}-TESTS"
        assert _instant(li["dueDate"]) == _instant("2027-02-10T16:00:00Z")
        assert _ref(li["gradingPeriod"]) == "GP-2627-Q3"
    assert sorted(k for k in after["lineItems"] if k.startswith("canvas-a3101-")) == [
        "canvas-a3101-s1021",
        "canvas-a3101-s1022",
    ]
    p5 = after["lineItems"]["canvas-a3102-s1022"]  # the override's date and its grading period
    assert (
        _instant(p5["dueDate"]) == _instant("2026-11-19T16:00:00Z")
        and _ref(p5["gradingPeriod"]) == "GP-2627-Q2"
    )
    p2 = after["lineItems"]["canvas-a3102-s1021"]  # the other class keeps the assignment's own date
    assert _instant(p2["dueDate"]) == _instant("2026-11-18T16:00:00Z")
    assert after["results"]["canvas-a3102-s1022-u5201"]["lineItem"]["sourcedId"] == "canvas-a3102-s1022"
    assert not [k for k in after["results"] if "-u5105" in k]
    assert report["totals"]["considered"] == considered
