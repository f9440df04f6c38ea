"""The shipped demo scenario: every rule occurs, and demo.expected.json agrees with what the two
stand-ins serve and accept (so the pipeline's end-to-end test can trust it)."""

from __future__ import annotations

import json
import re

import pytest

from sandbox import scenario as scenario_mod

from .sandbox_helpers import aspen_client, canvas_client, follow

SCENARIOS = scenario_mod.SCENARIO_DIR


@pytest.fixture(scope="module")
def demo_data() -> dict:
    return scenario_mod.load("demo")


@pytest.fixture(scope="module")
def expected() -> dict:
    return json.loads((SCENARIOS / "demo.expected.json").read_text())


def _notes(value) -> str:
    if isinstance(value, dict):
        return " ".join(
            _notes(v) for k, v in value.items() if k in ("note", "name") or isinstance(v, dict | list)
        )
    if isinstance(value, list):
        return " ".join(_notes(v) for v in value)
    return str(value)


def test_every_data_rule_occurs_in_the_demo(demo_data):
    text = _notes(demo_data)
    mentioned = {int(n) for n in re.findall(r"\bR(\d{1,2})\b", text)}
    # R11/R12 are the schedule and the trigger form, R17/R18 hold for every grade: not data
    assert set(range(1, 21)) - {11, 12, 17, 18} <= mentioned


def test_the_demo_is_small_and_readable(demo_data):
    courses = [
        c for c in demo_data["canvas"]["courses"] if c["sections"] and c["workflow_state"] == "available"
    ]
    assert 3 <= len(courses) <= 4
    assert any(len(c["sections"]) == 2 for c in courses)  # a cross-listed course
    for course in courses:
        for section in course["sections"]:
            students = [
                e
                for e in course["enrollments"]
                if e["section_id"] == section["id"]
                and e.get("type", "StudentEnrollment") == "StudentEnrollment"
            ]
            assert 2 <= len(students) <= 8


def test_canvas_serves_exactly_the_graded_work_the_expectations_account_for(demo_sandbox, expected):
    """Every graded submission the API lists for an assignment that R1 lets through is either
    expected in Aspen, expected to be held back, or hidden from students (R20: posted_at null);
    nothing else, nothing missing."""
    accounted = {
        (int(rid.split("-a")[1].split("-")[0]), int(rid.rsplit("-u", 1)[1])) for rid in expected["results"]
    }
    accounted |= {(h["assignment_id"], h["user_id"]) for h in expected["held_back"]}
    hidden = {(h["assignment_id"], h["user_id"]) for h in expected["hidden"]["submissions"]}
    assert not hidden & accounted
    listed, unposted = set(), set()
    with canvas_client(demo_sandbox) as c:
        for cid in (101, 102, 103):
            groups = c.get(
                f"/api/v1/courses/{cid}/assignment_groups", params={"include[]": "assignments"}
            ).json()
            eligible = {
                a["id"]
                for g in groups
                for a in g["assignments"]
                if a["published"] and a["post_to_sis"] and a["grading_type"] != "not_graded"
            }
            subs, _ = follow(
                c,
                f"/api/v1/courses/{cid}/students/submissions",
                params={"student_ids[]": "all", "per_page": 100},
            )
            graded = [
                s for s in subs if s["assignment_id"] in eligible and (s["score"] is not None or s["excused"])
            ]
            listed |= {(s["assignment_id"], s["user_id"]) for s in graded}
            unposted |= {(s["assignment_id"], s["user_id"]) for s in graded if s["posted_at"] is None}
    assert listed == accounted | hidden
    assert unposted == hidden


def test_r19_last_years_concluded_courses_have_no_aspen_class(demo_sandbox, demo_data):
    """A night never reads them; named in course_ids they must fail: their classes are gone."""
    concluded = [c for c in demo_data["canvas"]["courses"] if c.get("workflow_state") == "completed"]
    assert {c["enrollment_term_id"] for c in concluded} == {2} and len(concluded) == 2
    aspen_classes = {cls["sourcedId"] for cls in demo_data["aspen"]["classes"]}
    assert all(
        s["sis_section_id"] and s["sis_section_id"] not in aspen_classes
        for c in concluded
        for s in c["sections"]
    )
    with aspen_client(demo_sandbox) as api:
        assert api.get("/classes/GEOM-2526-P4/students").status_code == 404


def test_r20_aspen_accepts_the_hidden_grades_once_posted(demo, expected):
    after = expected["hidden"]["after_posting"]
    assert {(int(r.split("-a")[1].split("-")[0]), int(r.rsplit("-u", 1)[1])) for r in after["results"]} == {
        (h["assignment_id"], h["user_id"]) for h in expected["hidden"]["submissions"]
    }
    with aspen_client(demo) as api:
        for sid, li in after["lineItems"].items():
            assert api.put(f"/lineItems/{sid}", json=_line_item_body(li, li["title"])).status_code == 201, sid
        for sid, r in after["results"].items():
            assert api.put(f"/results/{sid}", json=_result_body(r)).status_code == 201, sid


def _line_item_body(li: dict, title: str) -> dict:
    return {
        "lineItem": {
            "title": title,
            "assignDate": li["assignDate"],
            "dueDate": li["dueDate"],
            "class": {"sourcedId": li["class"]},
            "category": {"sourcedId": li["category"]},
            "gradingPeriod": {"sourcedId": li["gradingPeriod"]},
            "resultValueMin": li["resultValueMin"],
            "resultValueMax": li["resultValueMax"],
        }
    }


def _result_body(r: dict) -> dict:
    body = {
        "lineItem": {"sourcedId": r["lineItem"]},
        "student": {"sourcedId": r["student"]},
        "scoreStatus": r["scoreStatus"],
        "score": r["score"],
        "scoreDate": "2026-11-27",
    }
    return {"result": body}


def test_aspen_accepts_the_expected_state_and_it_reads_back(demo, expected):
    with aspen_client(demo) as api:
        for sid, li in expected["lineItems"].items():
            assert api.put(f"/lineItems/{sid}", json=_line_item_body(li, li["title"])).status_code == 201, sid
        for sid, r in expected["results"].items():
            response = api.put(f"/results/{sid}", json=_result_body(r))
            assert response.status_code == 201, (sid, response.text)
    state = demo.state()
    for sid, li in expected["lineItems"].items():
        got = state["lineItems"][sid]
        assert (
            got["class"]["sourcedId"],
            got["category"]["sourcedId"],
            got["gradingPeriod"]["sourcedId"],
            got["resultValueMax"],
        ) == (li["class"], li["category"], li["gradingPeriod"], li["resultValueMax"])
    for sid, r in expected["results"].items():
        got = state["results"][sid]
        assert (got["scoreStatus"], got["score"], got["student"]["sourcedId"]) == (
            r["scoreStatus"],
            r["score"],
            r["student"],
        )
    untouched = expected["untouched"]
    assert set(untouched["lineItems"]) <= set(state["lineItems"])
    assert set(untouched["results"]) <= set(state["results"])
    assert not any(sid.startswith("canvas-") for sid in demo.state(class_id="CHEM-P4")["lineItems"])


def test_aspen_rejects_what_the_expectations_hold_back(demo, expected, demo_data):
    """Where Aspen itself enforces the rule, posting a held-back grade anyway is refused."""
    scores = {
        (a["id"], s["user_id"]): s.get("score")
        for c in demo_data["canvas"]["courses"]
        for g in c["assignment_groups"]
        for a in g["assignments"]
        for s in a.get("submissions", [])
    }
    sis = {u["id"]: u["sis_user_id"] for u in demo_data["canvas"]["users"]}
    checked = 0
    with aspen_client(demo) as api:
        for sid, li in expected["lineItems"].items():
            api.put(f"/lineItems/{sid}", json=_line_item_body(li, li["title"]))
        for held in expected["held_back"]:
            kinds = set(held["kinds"])
            li_id = f"canvas-a{held['assignment_id']}-s{held['section_id']}"
            if li_id not in expected["lineItems"] or not kinds & {
                "over_max",
                "negative_score",
                "non_numeric_score",
                "student_not_in_aspen_class",
            }:
                continue
            body = {
                "result": {
                    "lineItem": {"sourcedId": li_id},
                    "student": {"sourcedId": sis[held["user_id"]]},
                    "scoreStatus": "fully graded",
                    "score": scores[(held["assignment_id"], held["user_id"])],
                }
            }
            r = api.put(f"/results/{li_id}-u{held['user_id']}", json=body)
            assert 400 <= r.status_code < 500, (held, r.text)
            checked += 1
        # a line item in the locked Q1 and one in a category Aspen does not have
        locked = _line_item_body(expected["lineItems"]["canvas-a3102-s1021"], "Lab 2")
        locked["lineItem"].update(
            {
                "class": {"sourcedId": "BIO-P5"},
                "category": {"sourcedId": "cat-BIO-P5-LABS"},
                "gradingPeriod": {"sourcedId": "GP-2627-Q1"},
            }
        )
        assert api.put("/lineItems/canvas-a3102-s1022", json=locked).status_code == 422
        quiz = _line_item_body(expected["lineItems"]["canvas-a3005-s1011"], "Quiz 1")
        quiz["lineItem"]["category"] = {"sourcedId": "Quizzes"}
        assert api.put("/lineItems/canvas-a3004-s1011", json=quiz).status_code == 404
    assert checked >= 4  # over max, negative, non-numeric, not on the roster
