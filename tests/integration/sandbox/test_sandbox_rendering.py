"""The hand-rolled JSON of the high-volume endpoints equals the plain dict rendering, case by case."""

from __future__ import annotations

import json

from sandbox import scenario
from sandbox.aspen_state import AspenState
from sandbox.canvas_state import CanvasState
from sandbox.generator import generate


def _all_submissions(state: CanvasState):
    for course in state.courses.values():
        everyone, _ = state.active_students(course)
        for a in course.assignments.values():
            for uid in everyone:
                yield a, uid


def test_submission_text_equals_submission_json():
    state = CanvasState(scenario.load("demo"))
    state.set_submission(101, 3001, 5005, {"score": 6.25})
    state.set_submission(101, 3005, 5001, {"score": None})  # cleared
    state.set_submission(102, 3101, 5101, {"excused": True, "score": None})
    state.set_submission(103, 3202, 5301, {"score": 9, "submitted_at": "2026-11-10T12:00:00Z"})
    generated = CanvasState(generate(6, 10, 8, seed=4))
    checked = 0
    for st in (state, generated):
        for a, uid in _all_submissions(st):
            assert json.loads(st.submission_text(a, uid)) == st.submission_json(a, uid), (a.id, uid)
            checked += 1
    assert checked > 500


def test_result_text_equals_result_json():
    data = scenario.load("demo")
    state = AspenState(data)
    state.put_line_item(
        "t-li",
        {
            "lineItem": {
                "title": "t",
                "class": {"sourcedId": "ALG1-P1"},
                "category": {"sourcedId": "cat-ALG1-P1-HW"},
                "gradingPeriod": {"sourcedId": "GP-2627-Q2"},
                "dueDate": "2026-11-20T00:00:00Z",
                "resultValueMax": 10,
            }
        },
    )
    state.put_result(
        "t-r",
        {
            "result": {
                "lineItem": {"sourcedId": "t-li"},
                "student": {"sourcedId": "S1002"},
                "scoreStatus": "exempt",
                "comment": 'She said "ok" – fine',
            }
        },
    )
    assert len(state.results) == 6
    for r in state.results.values():
        assert json.loads(state.result_text(r)) == state.result_json(r)
