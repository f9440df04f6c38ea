"""``rows.build_rows`` (column by column, for speed) builds exactly the frame that the plain
one-dict-per-grade statement ``build_rows_reference`` (``tests/unit/rows_reference.py``, the test
oracle) builds: on the demo district, on a generated messy district, and on randomly damaged
Canvas answers."""

from __future__ import annotations

import copy
import random

import pandas as pd
import pytest

from canvas_aspen import rows, rules
from sandbox import generator, scenario
from sandbox.canvas_state import CanvasState

from .rows_reference import build_rows_reference

TZ = "America/New_York"


def _bundles(scen: dict) -> tuple[list[dict], list[rules.GradingPeriod]]:
    """Every course of a scenario as the extract stage stores it: the Canvas API's answers."""
    state = CanvasState(scen)
    out = []
    for course_id in sorted(state.courses):
        c = state.course(course_id)
        keys = state.submission_keys(c, ["all"], [], None)
        out.append(
            {
                "course": state.course_json(c),
                "sections": state.sections_json(c),
                "enrollments": state.enrollments_json(c, ["StudentEnrollment"], ["active"]),
                "assignment_groups": state.groups_json(c, True, True),
                "submissions": [state.submission_json(a, uid) for a, uid in keys],
            }
        )
    periods = [rules.GradingPeriod.from_oneroster(p) for p in scen["aspen"]["grading_periods"]]
    return out, periods


def _same(bundles: list[dict], periods: list[rules.GradingPeriod]) -> pd.DataFrame:
    fast = rows.build_rows(bundles, periods, TZ)
    pd.testing.assert_frame_equal(fast, build_rows_reference(bundles, periods, TZ), check_exact=True)
    return fast


def test_demo_district_rows_are_the_reference_rows():
    bundles, periods = _bundles(scenario.load("demo"))
    assert len(_same(bundles, periods)) > 100


def test_generated_messy_district_rows_are_the_reference_rows():
    scen = generator.generate(courses=12, students_per_section=9, assignments=8, seed=3, messiness=4.0)
    bundles, periods = _bundles(scen)
    assert len(_same(bundles, periods)) > 1000


def test_no_course_and_no_grades_give_the_reference_empty_frame():
    _, periods = _bundles(scenario.load("demo"))
    _same([], periods)
    bundles, _ = _bundles(scenario.load("demo"))
    _same([{**b, "submissions": []} for b in bundles], periods)


ODD_VALUES = [
    None,
    0,
    1,
    1.0,
    True,
    False,
    -2,
    7.5,
    1e400,
    10**400,
    "B+",
    "",
    " ",
    "8",
    [],
    {},
    "2026-11-20",
    "2026-11-20T12:00:00Z",
    "not a date",
    float("nan"),
]


@pytest.mark.parametrize("seed", range(12))
def test_randomly_damaged_answers_give_the_reference_rows_or_the_same_error(seed):
    rng = random.Random(seed)
    bundles, periods = _bundles(scenario.load("demo"))
    bundles = copy.deepcopy(bundles)
    for b in bundles:
        for sub in rng.sample(b["submissions"], min(25, len(b["submissions"]))):
            sub[
                rng.choice(
                    ["score", "grade", "excused", "missing", "late", "late_policy_status", "graded_at"]
                )
            ] = rng.choice(ODD_VALUES)
        for g in b["assignment_groups"]:
            if rng.random() < 0.3:
                g["group_weight"] = rng.choice(ODD_VALUES)
            for a in g.get("assignments") or []:
                if rng.random() < 0.2:
                    a[rng.choice(["points_possible", "due_at", "unlock_at", "created_at", "name"])] = (
                        rng.choice(ODD_VALUES)
                    )
        if b["enrollments"] and rng.random() < 0.5:
            b["enrollments"].append(dict(rng.choice(b["enrollments"])))  # a duplicate seat
    try:
        expected = build_rows_reference(bundles, periods, TZ)
    except Exception as exc:  # noqa: BLE001 - the fast path must fail the same way
        with pytest.raises(type(exc)):
            rows.build_rows(bundles, periods, TZ)
        return
    pd.testing.assert_frame_equal(rows.build_rows(bundles, periods, TZ), expected, check_exact=True)
