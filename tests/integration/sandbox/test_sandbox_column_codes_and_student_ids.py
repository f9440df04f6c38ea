"""The sandbox Aspen's gradebook column codes (R21) and Aspen-style student ids (R22)."""

from __future__ import annotations

import pytest

from sandbox import scenario as scenario_mod
from sandbox.aspen_state import AspenError, AspenState
from sandbox.generator import generate
from sandbox.student_ids import aspen_style_student_ids

from .sandbox_helpers import aspen_client


def line_item(title: str, class_id: str = "ALG1-P1", **changes) -> dict:
    body = {
        "title": title,
        "assignDate": "2026-11-10T12:00:00.000Z",
        "dueDate": "2026-11-20T04:59:00.000Z",
        "class": {"sourcedId": class_id},
        "category": {"sourcedId": f"cat-{class_id}-HW"},
        "gradingPeriod": {"sourcedId": "GP-2627-Q2"},
        "resultValueMin": 0,
        "resultValueMax": 10,
    }
    body.update(changes)
    return {"lineItem": body}


@pytest.fixture
def aspen() -> AspenState:
    return AspenState(scenario_mod.load("demo"))


def test_r21_sandbox_refuses_a_second_line_item_with_the_same_column_code(aspen):
    aspen.put_line_item("li-quiz", line_item("Chapter 1 Quiz"))
    with pytest.raises(AspenError) as exc:
        aspen.put_line_item("li-test", line_item("  chapter 1 Test"))  # trimmed, any case: the same code
    assert exc.value.status == 422
    assert exc.value.message == 'GB column name "chapter 1" already exists'
    assert "li-test" not in aspen.line_items


def test_r21_sandbox_column_codes_are_per_class_and_a_replace_keeps_its_own(aspen):
    aspen.put_line_item("li-quiz", line_item("Chapter 1 Quiz"))
    aspen.put_line_item("li-quiz", line_item("Chapter 1 Quiz, revised"))  # its own code: fine
    aspen.put_line_item(
        "li-other", line_item("Chapter 1 Quiz", class_id="BIO-P2", category={"sourcedId": "cat-BIO-P2-HW"})
    )
    aspen.put_line_item("li-test", line_item("Chapter 2 Test"))  # differs within the first 10
    assert aspen.line_items["li-quiz"].title == "Chapter 1 Quiz, revised"


def test_r21_sandbox_column_codes_count_line_items_that_are_not_ours(aspen):
    # the demo's teacher-made "Notebook check (entered in Aspen)" in ALG1-P1
    with pytest.raises(AspenError, match="GB column name"):
        aspen.put_line_item("canvas-a1-s1011", line_item("NOTEBOOK CHECK week 3"))


def test_r21_sandbox_column_code_length_and_off(aspen):
    aspen.put_line_item("li-a", line_item("Unit 1 A"))
    aspen.put_line_item("li-b", line_item("Unit 1 B"), column_code_length=None)  # the rule off
    with pytest.raises(AspenError):
        aspen.put_line_item("li-c", line_item("Unit 9"), column_code_length=4)  # "unit" = "unit"


@pytest.mark.parametrize("style", ["json", "text"])
def test_r21_sandbox_column_code_refusal_in_both_error_styles(sandbox_factory, style):
    sb = sandbox_factory(scenario="demo", aspen_error_style=style)
    with aspen_client(sb) as api:
        assert api.put("/lineItems/t-quiz", json=line_item("Chapter 1 Quiz")).status_code == 201
        r = api.put("/lineItems/t-test", json=line_item("Chapter 1 Test"))
        assert r.status_code == 422
        text = r.json()["imsx_description"] if style == "json" else r.text
        assert text == 'GB column name "Chapter 1" already exists'
        assert api.put("/lineItems/t-quiz", json=line_item("Chapter 1 Quiz (edited)")).status_code == 200
        sb.set_settings(aspen_unique_column_codes=False)
        assert api.put("/lineItems/t-test", json=line_item("Chapter 1 Test")).status_code == 201


def test_r22_sandbox_roster_users_carry_identifier_username_email(sandbox_factory):
    district = aspen_style_student_ids(scenario_mod.load("demo"))
    sb = sandbox_factory(scenario=district)
    ava = district["aspen"]["student_ids"]["S1001"]
    assert ava.startswith("std_") and ava != "S1001"
    with aspen_client(sb) as api:
        users = api.get("/classes/ALG1-P1/students").json()["users"]
        by_id = {u["sourcedId"]: u for u in users}
        assert by_id[ava]["identifier"] == "S1001"
        assert (
            by_id[ava]["username"] == "s1001.student" and by_id[ava]["email"] == "s1001@students.example.org"
        )
        assert all(u["sourcedId"].startswith("std_") for u in users)
        api.put("/lineItems/t-li", json=line_item("Sandbox item"))
        result = {"lineItem": {"sourcedId": "t-li"}, "scoreStatus": "fully graded", "score": 8}
        # the student number is not the Aspen user: refused, as the real Aspen does
        r = api.put("/results/t-r1", json={"result": dict(result, student={"sourcedId": "S1001"})})
        assert r.status_code == 404 and "Student Not Found In Class" in r.json()["imsx_description"]
        r = api.put("/results/t-r1", json={"result": dict(result, student={"sourcedId": ava})})
        assert r.status_code == 201


def test_r22_aspen_style_ids_rewrite_rosters_and_held_results_deterministically():
    demo = scenario_mod.load("demo")
    one, two = aspen_style_student_ids(demo), aspen_style_student_ids(demo)
    assert one == two
    mapping = one["aspen"]["student_ids"]
    for before, after in zip(demo["aspen"]["classes"], one["aspen"]["classes"], strict=True):
        assert after["roster"] == [mapping[s] for s in before["roster"]]
    held = {r["sourcedId"]: r["student"]["sourcedId"] for r in one["aspen"]["results"]}
    assert all(s.startswith("std_") for s in held.values())
    assert demo["aspen"]["classes"][0]["roster"][0] == "S1001"  # the input is left alone
    scenario_mod.check(one)  # a valid scenario


def test_r22_generator_option_aspen_student_ids():
    plain = generate(courses=3, students_per_section=5, assignments=2, seed=3)
    district = generate(courses=3, students_per_section=5, assignments=2, seed=3, aspen_student_ids=True)
    assert district["canvas"] == plain["canvas"]
    rostered = {s for c in district["aspen"]["classes"] for s in c["roster"]}
    assert rostered and all(s.startswith("std_") for s in rostered)
    identifiers = {u["sourcedId"]: u["identifier"] for u in district["aspen"]["students"]}
    sis = {u["sis_user_id"] for u in district["canvas"]["users"]}
    assert {identifiers[s] for s in rostered} <= sis
    AspenState(district)  # loads


def test_r22_serve_cli_with_aspen_student_ids(tmp_path, repo_root):
    import signal
    import subprocess
    import sys
    import time

    from sandbox.control import Sandbox

    urls = tmp_path / "urls.json"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "sandbox",
            "serve",
            "--scenario",
            "demo",
            "--aspen-student-ids",
            "--urls-file",
            str(urls),
        ],
        cwd=repo_root,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 120
        while not urls.exists():
            assert proc.poll() is None, proc.stdout.read()
            assert time.monotonic() < deadline
            time.sleep(0.05)
        sb = Sandbox.attach(urls)
        roster = sb.state(class_id="ALG1-P1")["classes"]["ALG1-P1"]["roster"]
        assert roster and all(s.startswith("std_") for s in roster)
        sb.stop()  # not ours: leaves the server running
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=30)
    assert proc.returncode == 0
