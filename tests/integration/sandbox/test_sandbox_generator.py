"""The district generator: deterministic, the requested shape, realistic messiness, fast, servable."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import pytest

from sandbox import scenario as scenario_mod
from sandbox.generator import generate

from .sandbox_helpers import canvas_client, follow


def sendable(a: dict) -> bool:
    return a.get("published", True) and a.get("post_to_sis", True) and a.get("grading_type") != "not_graded"


def test_same_seed_same_district_other_seed_other_district():
    one = json.dumps(generate(12, 10, 6, seed=3))
    assert one == json.dumps(generate(12, 10, 6, seed=3))
    assert one != json.dumps(generate(12, 10, 6, seed=4))


def test_the_requested_shape():
    data = generate(20, 15, 8, seed=1, sections_per_course="2")
    scenario_mod.check(data)
    courses = data["canvas"]["courses"]
    users = {u["id"]: u for u in data["canvas"]["users"]}
    assert len(courses) == 20
    for course in courses:
        assert len(course["sections"]) == 2
        students = [
            e
            for e in course["enrollments"]
            if e.get("type", "StudentEnrollment") == "StudentEnrollment"
            and e.get("state", "active") == "active"
        ]
        assert len(students) == 30 and len({e["user_id"] for e in students}) == 30
        assignments = [a for g in course["assignment_groups"] for a in g["assignments"]]
        assert sum(sendable(a) for a in assignments) == 8
        teachers = {e["user_id"] for e in course["enrollments"] if e.get("type") == "TeacherEnrollment"}
        assert len(teachers) == 1 and all(
            users[t]["email"].endswith("@district.example.org") for t in teachers
        )
    classes = {c["sourcedId"] for c in data["aspen"]["classes"]}
    sis_sections = {s["sis_section_id"] for c in courses for s in c["sections"] if s["sis_section_id"]}
    assert classes == sis_sections


def test_messiness_in_realistic_proportions():
    data = generate(150, 25, 20, seed=7)
    counts = data["generated"]["counts"]
    submissions = data["stats"]["submissions"]
    for kind in (
        "category_mismatch",
        "category_case",
        "weight_mismatch",
        "imported_group",
        "no_due_date",
        "student_without_sis",
        "not_on_aspen_roster",
        "overrides_named",
        "over_max",
        "excused",
        "missing",
        "late",
    ):
        assert counts.get(kind, 0) > 0, kind
    assert 0.02 < counts["missing"] / submissions < 0.05
    assert counts["over_max"] / submissions < 0.01
    weighted = sum(c["apply_assignment_group_weights"] for c in data["canvas"]["courses"])
    assert 0.7 < weighted / 150 < 0.95


def test_messiness_zero_is_a_clean_district():
    data = generate(30, 10, 5, seed=2, messiness=0)
    assert data["generated"]["counts"] == {}
    for cls in data["aspen"]["classes"]:
        assert cls["roster"] and all(s.startswith("S") for s in cls["roster"])
    for course in data["canvas"]["courses"]:
        titles = {
            c["title"]
            for cls in data["aspen"]["classes"]
            for c in cls["categories"]
            if cls["sourcedId"].startswith(course["sis_course_id"])
        }
        assert {g["name"] for g in course["assignment_groups"]} <= titles


def test_locked_periods():
    data = generate(2, 5, 2, seed=1, lock_periods=["Q1"])
    assert [gp["locked"] for gp in data["aspen"]["grading_periods"]] == [True, False, False, False]


def test_a_tenth_of_the_benchmark_district_generates_in_seconds():
    started = time.process_time()
    data = generate(30, 28, 40, seed=1)
    assert time.process_time() - started < 5
    assert data["stats"]["submissions"] > 35_000


@pytest.mark.slow
def test_the_benchmark_district_generates_in_seconds(tmp_path):
    started = time.monotonic()
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "sandbox",
            "generate",
            "--courses",
            "300",
            "--students-per-section",
            "28",
            "--assignments",
            "40",
            "--seed",
            "1",
            "-o",
            str(tmp_path / "m.json"),
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    stats = json.loads(out.stdout)
    assert stats["aspen_classes"] > 350 and stats["submissions"] > 400_000
    assert time.monotonic() - started < 60


def test_cli_writes_a_loadable_scenario(tmp_path, repo_root):
    path = tmp_path / "district.json"
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "sandbox",
            "generate",
            "--courses",
            "5",
            "--students-per-section",
            "8",
            "--assignments",
            "4",
            "--seed",
            "9",
            "-o",
            str(path),
        ],
        cwd=repo_root,
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    assert json.loads(out.stdout)["courses"] == 5
    scenario_mod.load(path)


def test_a_generated_district_is_served_in_full(sandbox_factory, tmp_path):
    data = generate(8, 12, 6, seed=5)
    path = tmp_path / "district.json"
    path.write_text(json.dumps(data))
    sb = sandbox_factory(str(path))
    expected = 0
    for course in data["canvas"]["courses"]:
        for g in course["assignment_groups"]:
            for a in g["assignments"]:
                if a.get("published", True):
                    expected += sum(
                        1 for s in a.get("submissions", []) if s.get("score") is not None or s.get("excused")
                    )
    listed = 0
    with canvas_client(sb) as c:
        courses, _ = follow(c, "/api/v1/accounts/1/courses", params={"per_page": 3})
        assert len(courses) == 8
        for course in courses:
            subs, pages = follow(
                c,
                f"/api/v1/courses/{course['id']}/students/submissions",
                params={"student_ids[]": "all", "per_page": 50},
            )
            listed += sum(1 for s in subs if s["score"] is not None or s["excused"])
    assert listed == expected


def test_r19_r20_a_real_districts_past_courses_and_hidden_grades_leave_the_rest_as_it_was():
    plain = generate(courses=6, students_per_section=5, assignments=4, seed=3)
    real = generate(
        courses=6, students_per_section=5, assignments=4, seed=3, past_courses=25, hidden_assignments=0.25
    )
    scenario_mod.check(real)
    assert real == generate(
        courses=6, students_per_section=5, assignments=4, seed=3, past_courses=25, hidden_assignments=0.25
    )  # deterministic
    courses = {c["id"]: c for c in real["canvas"]["courses"]}
    past = [c for c in courses.values() if c["workflow_state"] == "completed"]
    assert len(past) == 25 and {c["enrollment_term_id"] for c in past} == {2}
    terms = {t["id"]: t for t in real["canvas"]["terms"]}
    assert terms[2]["end_at"] < "2026-08" < terms[1]["start_at"] and terms[1]["end_at"] is None
    aspen_classes = {cls["sourcedId"] for cls in real["aspen"]["classes"]}
    for c in past:  # graded, with SIS ids whose Aspen classes are gone, students' enrollments completed
        assert all(s["sis_section_id"] and s["sis_section_id"] not in aspen_classes for s in c["sections"])
        assert {e["state"] for e in c["enrollments"]} == {"completed"}
        assert sum(len(a["submissions"]) for g in c["assignment_groups"] for a in g["assignments"]) > 0
    manual = [
        a
        for c in courses.values()
        for g in c["assignment_groups"]
        for a in g["assignments"]
        if a.get("post_manually")
    ]
    assert manual and real["generated"]["counts"]["hidden_assignments"] == len(manual)
    # the live district is the same as without the options (up to the posting policy), Aspen too
    live = {c["id"]: c for c in plain["canvas"]["courses"]}
    for cid, course in live.items():
        other = json.loads(json.dumps(courses[cid]))
        for g in other["assignment_groups"]:
            for a in g["assignments"]:
                a.pop("post_manually", None)
        assert other == course
    assert real["aspen"] == plain["aspen"] and "terms" not in plain["canvas"]
