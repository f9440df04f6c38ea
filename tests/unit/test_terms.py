"""R19: which courses a night covers (canvas_aspen.terms and stages.plan.scope_courses/plan)."""

from __future__ import annotations

import logging
from datetime import date

import pytest

from canvas_aspen import stages, storage, terms

TZ = "America/New_York"
THIS_YEAR = {
    "id": 7,
    "name": "2026-2027",
    "sis_term_id": "2627",
    "start_at": "2026-08-01T04:00:00Z",
    "end_at": "2027-07-01T03:59:59Z",
    "workflow_state": "active",
}
LAST_YEAR = {
    "id": 6,
    "name": "2025-2026",
    "sis_term_id": "2526",
    "start_at": "2025-08-01T04:00:00Z",
    "end_at": "2026-07-01T03:59:59Z",
    "workflow_state": "active",
}
DEFAULT = {
    "id": 1,
    "name": "Default Term",
    "sis_term_id": None,
    "start_at": None,
    "end_at": None,
    "workflow_state": "active",
}
SUMMER = {
    "id": 8,
    "name": "Summer 2027",
    "sis_term_id": "SU27",
    "start_at": "2027-06-21T04:00:00Z",
    "end_at": None,
    "workflow_state": "active",
}


# --- pure rules ---------------------------------------------------------------------------------


def test_r19_a_term_is_current_when_today_lies_within_its_dates():
    today = date(2026, 12, 1)
    assert terms.is_current(THIS_YEAR, today, TZ)
    assert not terms.is_current(LAST_YEAR, today, TZ)
    assert not terms.is_current(SUMMER, today, TZ)
    assert terms.is_current(SUMMER, date(2027, 9, 1), TZ)  # no end: open on that side


def test_r19_the_default_term_without_dates_is_current():
    assert terms.is_current(DEFAULT, date(2026, 12, 1), TZ)
    assert terms.is_current(DEFAULT, date(2031, 1, 1), TZ)


def test_r19_today_is_the_districts_calendar_date_not_utc():
    # ends 2026-07-01 03:59:59Z = June 30, 23:59:59 in New York: July 1 is no longer in the term
    assert terms.is_current(LAST_YEAR, date(2026, 6, 30), TZ)
    assert not terms.is_current(LAST_YEAR, date(2026, 7, 1), TZ)
    # in UTC the term's end would be on July 1
    assert terms.is_current(LAST_YEAR, date(2026, 7, 1), "UTC")


def test_r19_a_deleted_term_is_never_current():
    assert not terms.is_current({**DEFAULT, "workflow_state": "deleted"}, date(2026, 12, 1), TZ)


def test_r19_current_terms_picks_only_those():
    listed = [LAST_YEAR, THIS_YEAR, DEFAULT, SUMMER]
    assert [t["id"] for t in terms.current_terms(listed, date(2026, 12, 1), TZ)] == [7, 1]


def test_r19_named_terms_setting_parses_ids_and_sis_ids():
    assert terms.parse_term_refs("") == []
    assert terms.parse_term_refs(None) == []
    assert terms.parse_term_refs(" 7, sis_term_id:2526 ,7,") == ["7", "sis_term_id:2526"]
    with pytest.raises(ValueError, match="'fall'"):
        terms.parse_term_refs("7, fall")
    with pytest.raises(ValueError, match="names no SIS term id"):
        terms.parse_term_refs("sis_term_id:")


def test_r19_named_terms_resolve_and_an_unknown_name_fails_clearly():
    listed = [LAST_YEAR, THIS_YEAR, DEFAULT]
    assert [t["id"] for t in terms.named_terms(listed, ["sis_term_id:2526", "7"])] == [6, 7]
    with pytest.raises(ValueError, match=r"sis_term_id:2425, 99.*2627"):
        terms.named_terms(listed, ["sis_term_id:2425", "99", "7"])


# --- plan against a recording Canvas ----------------------------------------------------------


class _Canvas:
    """The account: three terms and their courses; records every call plan makes."""

    def __init__(self, honour_state: bool = True):
        self.calls: list[tuple] = []
        self.honour_state = honour_state
        self.courses = {
            7: [{"id": 101, "workflow_state": "available"}, {"id": 104, "workflow_state": "unpublished"}],
            6: [{"id": 105, "workflow_state": "completed"}, {"id": 106, "workflow_state": "completed"}],
            1: [{"id": 150, "workflow_state": "available"}],
        }

    def list_terms(self):
        self.calls.append(("list_terms",))
        return [LAST_YEAR, THIS_YEAR, DEFAULT]

    def list_courses(self, enrollment_term_id=None, state=None):
        self.calls.append(("list_courses", enrollment_term_id, tuple(state or ())))
        out = self.courses[int(enrollment_term_id)]
        return [c for c in out if c["workflow_state"] in state] if (state and self.honour_state) else out

    def get_course(self, cid):
        self.calls.append(("get_course", cid))
        return next(c for cs in self.courses.values() for c in cs if c["id"] == cid)

    def map_concurrent(self, fn, items, **_):
        return [fn(i) for i in items]

    def list_grading_periods(self):
        return []


def _plan(tmp_path, canvas, **kw):
    params = {"course_ids": kw.pop("course_ids", []), "dry_run": False}
    stages.plan(
        canvas,
        canvas,
        tmp_path / "run",
        params=params,
        shard_count=2,
        timezone_name=TZ,
        today=kw.pop("today", date(2026, 12, 1)),
        **kw,
    )
    return storage.read_json(tmp_path / "run" / "plan.json")["course_ids"]


def test_r19_plan_covers_the_available_courses_of_the_current_terms_only(tmp_path, caplog):
    canvas = _Canvas()
    with caplog.at_level(logging.INFO, logger="canvas_aspen.stages"):
        assert _plan(tmp_path, canvas) == [101, 150]
    # one terms listing, then the course list of each current term filtered by Canvas: last year's
    # term is not even listed, and nothing of any course is read
    assert canvas.calls == [
        ("list_terms",),
        ("list_courses", 7, ("available",)),
        ("list_courses", 1, ("available",)),
    ]
    assert "2 of 3 Canvas terms current on 2026-12-01" in caplog.text
    assert "1 term(s) out of scope" in caplog.text and "2 course(s) in scope" in caplog.text


def test_r19_plan_drops_courses_that_are_not_available_when_canvas_ignores_state(tmp_path, caplog):
    with caplog.at_level(logging.INFO, logger="canvas_aspen.stages"):
        assert _plan(tmp_path, _Canvas(honour_state=False)) == [101, 150]
    assert "1 listed but not available, out of scope" in caplog.text


def test_r19_plan_with_named_terms_covers_those_terms(tmp_path):
    canvas = _Canvas()
    canvas.courses[6].append({"id": 107, "workflow_state": "available"})
    assert _plan(tmp_path, canvas, term_refs="sis_term_id:2526") == [107]
    assert canvas.calls == [("list_terms",), ("list_courses", 6, ("available",))]


def test_r19_plan_with_an_unknown_named_term_fails_naming_it(tmp_path):
    with pytest.raises(ValueError, match="sis_term_id:1999"):
        _plan(tmp_path, _Canvas(), term_refs="7, sis_term_id:1999")


def test_r19_course_ids_are_taken_as_asked_whatever_their_term_or_state(tmp_path):
    canvas = _Canvas()
    assert _plan(tmp_path, canvas, course_ids=[105, 101]) == [101, 105]
    assert [c[0] for c in canvas.calls] == ["get_course", "get_course"]  # no term scoping at all


def test_r19_default_today_is_the_districts_date(tmp_path):
    canvas = _Canvas()
    stages.plan(canvas, canvas, tmp_path / "run", params={"course_ids": []}, shard_count=1)
    assert ("list_terms",) in canvas.calls


def test_r19_the_runs_today_is_when_it_was_due_in_the_districts_calendar():
    from datetime import datetime, timezone
    from types import SimpleNamespace

    from canvas_aspen import airflow_glue
    from canvas_aspen.settings import Settings

    s = Settings.from_env()
    nightly = SimpleNamespace(
        run_after=datetime(2026, 7, 1, 2, 0, tzinfo=timezone.utc)
    )  # 22:00 New York, June 30
    assert airflow_glue.run_date({"dag_run": nightly}, s) == date(2026, 6, 30)
    assert airflow_glue.run_date(
        {"dag_run": None, "logical_date": datetime(2026, 12, 1, 12, tzinfo=timezone.utc)}, s
    ) == date(2026, 12, 1)
