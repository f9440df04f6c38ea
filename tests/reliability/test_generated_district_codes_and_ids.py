"""A generated district as real districts are: many assignments per group ("Homework 1" …
"Homework 12": the same Aspen column code from "Homework 10" on) and Aspen-style student ids
(Canvas carries the student numbers). The stages, in this process, against the sandbox, which
refuses duplicate column codes and results for ids that are not on the roster (R21, R22)."""

from __future__ import annotations

from collections import defaultdict

import pytest

from canvas_aspen.column_codes import column_code
from sandbox.generator import generate

from .conftest import conn_env

pytestmark = pytest.mark.slow
LINE_ITEM_PUT = "PUT /ims/oneroster/v1p1/lineItems/{sourced_id}"


def _codes_unique(state: dict) -> None:
    seen: dict[tuple[str, str], str] = {}
    for sid, li in state["lineItems"].items():
        if li.get("status") == "tobedeleted":
            continue
        key = (li["class"]["sourcedId"], column_code(li["title"]))
        assert key not in seen, (sid, seen.get(key), li["title"])
        seen[key] = sid


def _titles(state: dict) -> dict[str, str]:
    return {k: v["title"] for k, v in state["lineItems"].items() if k.startswith("canvas-")}


def test_r21_r22_generated_district_with_aspen_ids_and_many_assignments(sandbox_factory, pipeline):
    district = generate(
        courses=1, students_per_section=4, assignments=40, seed=5, messiness=0.0, aspen_student_ids=True
    )
    sb = sandbox_factory(scenario=district)
    env = conn_env(sb, aspen={"extra": {"student_id_field": "identifier"}})

    state, report = pipeline(sb, env=env).run()
    assert state == "success", [f for f in report["findings"] if f["severity"] == "error"][:3]
    assert not [
        f
        for f in report["findings"]
        if f["kind"] in ("aspen_rejected", "student_not_in_aspen_class", "ambiguous_student")
    ]
    assert report["totals"]["posted"] > 0 and report["totals"]["failed"] == 0
    collisions = [f for f in report["findings"] if f["kind"] == "column_code_collision"]
    assert collisions and all(f["value"].startswith("#") for f in collisions)
    after = sb.state()
    _codes_unique(after)
    students = {r["student"]["sourcedId"] for k, r in after["results"].items() if k.startswith("canvas-")}
    assert students and all(s.startswith("std_") for s in students)
    titles = _titles(after)

    # the next night, nothing changed: nothing is sent, no title moves
    sb.reset_stats()
    state, report = pipeline(sb, env=env).run()
    assert state == "success" and report["totals"]["posted"] == 0
    assert sb.stats("aspen")["endpoints"].get(LINE_ITEM_PUT, {}).get("count", 0) == 0
    assert _titles(sb.state()) == titles

    # a day of grading adds three assignments to the course ("New work 500…": they collide among themselves)
    sb.day_of_grading(fraction=0.05, add_assignments=3, delete_assignments=0, seed=2)
    state, report = pipeline(sb, env=env).run()
    assert state == "success", [f for f in report["findings"] if f["severity"] == "error"][:3]
    after = sb.state()
    _codes_unique(after)
    now = _titles(after)
    assert {k: now[k] for k in titles} == titles  # what was posted keeps its title
    by_class = defaultdict(list)
    for k in set(now) - set(titles):
        by_class[after["lineItems"][k]["class"]["sourcedId"]].append(now[k])
    assert by_class and any(len(v) > 1 and any(t.startswith("#") for t in v) for v in by_class.values())
