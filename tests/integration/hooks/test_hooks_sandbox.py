"""CanvasHook and AspenHook against the sandbox stand-ins (real HTTP on 127.0.0.1).

One sandbox for the module, started on a small scenario of our own (enough rows to page
through with a small page size); every test starts from ``sb.reset()``, changes faults or
settings through the admin API, and reads the server's own stats for what it sent.
Connections come from ``AIRFLOW_CONN_CANVAS_DEFAULT`` / ``AIRFLOW_CONN_ASPEN_DEFAULT``, as
``sb.airflow_conn_env()`` gives them, plus test knobs in the extras.
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any

import pytest

from canvas_aspen.hooks.aspen import AspenApiError, AspenHook
from canvas_aspen.hooks.canvas import CanvasApiError, CanvasHook

pytestmark = pytest.mark.timeout(180)

N_COURSES, N_STUDENTS, N_ASSIGNMENTS, N_LINE_ITEMS = 25, 45, 12, 23
CANVAS_TOKEN = "sandbox-hook-canvas-token-51c0"
ASPEN_ID, ASPEN_SECRET = "sandbox-hook-client", "sandbox-hook-secret-9e27"
COURSE, SECTION, CLASS = 100, 10000, "SEC-0"
N_TEACHERS = 13  # more than a page (page_size 10)

# fast, bounded retries; small pages so that a few dozen rows span many pages
KNOBS = {
    "page_size": 10,
    "max_attempts": 8,
    "backoff_base": 0.02,
    "backoff_max": 2.0,
    "timeout": 10,
    "rate_limit_max_sleep": 0.2,
}


def hook_scenario() -> dict[str, Any]:
    users = [{"id": 1000 + i, "name": f"Student {i}", "sis_user_id": f"S{i:04d}"} for i in range(N_STUDENTS)]
    teachers = [
        {"id": 900 + i, "name": f"Teacher {i}", "sis_user_id": f"T{i}", "email": f"t{i}@school.example.org"}
        for i in range(N_TEACHERS)
    ]
    courses = []
    for c in range(N_COURSES):
        course: dict[str, Any] = {
            "id": COURSE + c,
            "name": f"Course {c}",
            "sis_course_id": f"C{c}",
            "sections": [{"id": SECTION + c, "name": f"Section {c}", "sis_section_id": f"SEC-{c}"}],
        }
        if c == 0:
            course["enrollments"] = [{"user_id": u["id"], "section_id": SECTION} for u in users] + [
                {"user_id": t["id"], "section_id": SECTION, "type": "TeacherEnrollment"} for t in teachers
            ]
            course["assignment_groups"] = [
                {
                    "id": 500,
                    "name": "Homework",
                    "group_weight": 100,
                    "assignments": [
                        {
                            "id": 9000 + a,
                            "name": f"HW {a}",
                            "points_possible": 10,
                            "post_to_sis": True,
                            "due_at": "2025-10-01T12:00:00Z",
                            "submissions": [
                                {"user_id": u["id"], "score": (a + i) % 11} for i, u in enumerate(users)
                            ],
                        }
                        for a in range(N_ASSIGNMENTS)
                    ],
                }
            ]
        courses.append(course)
    line_items = [
        {
            "sourcedId": f"pre-{i:02d}",
            "title": f"Pre {i}",
            "status": "active",
            "class": {"sourcedId": CLASS},
            "category": {"sourcedId": "CAT-HW"},
            "gradingPeriod": {"sourcedId": "GP1"},
            "dueDate": "2025-10-01T12:00:00.000Z",
            "resultValueMin": 0,
            "resultValueMax": 10,
        }
        for i in range(N_LINE_ITEMS)
    ]
    return {
        "format": "canvas-aspen-sandbox/1",
        "name": "hook tests",
        "canvas": {"account_id": 1, "token": CANVAS_TOKEN, "users": users + teachers, "courses": courses},
        "aspen": {
            "client_id": ASPEN_ID,
            "client_secret": ASPEN_SECRET,
            "grading_periods": [
                {"sourcedId": "GP1", "title": "Year", "startDate": "2025-08-01", "endDate": "2026-06-30"}
            ],
            "classes": [
                {
                    "sourcedId": CLASS,
                    "title": "Course 0",
                    "roster": [u["sis_user_id"] for u in users],
                    "categories": [{"sourcedId": "CAT-HW", "title": "Homework", "code": "HW"}],
                }
            ],
            "lineItems": line_items,
        },
    }


@pytest.fixture(scope="module")
def sb():
    control = pytest.importorskip("sandbox.control", reason="the sandbox (issue 3) is not there")
    with control.Sandbox.start(scenario=hook_scenario(), startup_timeout=120) as sandbox:
        yield sandbox


@pytest.fixture(autouse=True)
def fresh(sb):
    sb.reset()
    yield
    sb.reset()


@pytest.fixture
def hooks(sb, monkeypatch):
    """``hooks(**extra)`` → (CanvasHook(), AspenHook()) on the default connection ids."""

    def _make(**extra: Any) -> tuple[CanvasHook, AspenHook]:
        for name, value in sb.airflow_conn_env().items():
            conn = json.loads(value)
            conn["extra"] = {**conn.get("extra", {}), **KNOBS, **extra}
            monkeypatch.setenv(name, json.dumps(conn))
        return CanvasHook(), AspenHook()

    return _make


def count(stats: dict, prefix: str) -> int:
    return sum(ep["count"] for name, ep in stats["endpoints"].items() if name.startswith(prefix))


def statuses(stats: dict) -> dict[str, int]:
    return stats["statuses"]


# ====================================================================== connections


def test_connections_from_env_and_test_connection(hooks, sb):
    canvas, aspen = hooks()
    assert canvas.connection.host == sb.canvas_url
    assert canvas.account_id == str(sb.canvas_account_id)
    assert canvas.test_connection()[0] is True
    ok, msg = aspen.test_connection()
    assert ok, msg


def test_test_connection_fails_cleanly_on_wrong_secret(hooks, sb, monkeypatch):
    hooks()
    conn = json.loads(sb.airflow_conn_env()["AIRFLOW_CONN_ASPEN_DEFAULT"])
    conn["password"] = "definitely-wrong-secret"
    monkeypatch.setenv("AIRFLOW_CONN_ASPEN_DEFAULT", json.dumps(conn))
    ok, msg = AspenHook().test_connection()
    assert not ok and "401" in msg and "definitely-wrong-secret" not in msg


# ====================================================================== paging


def test_canvas_paging_across_many_pages(hooks, sb):
    canvas, _ = hooks()
    sb.set_settings(canvas_omit_last_link=True)  # Canvas may leave out rel="last"
    courses = canvas.list_courses()
    enrollments = canvas.list_student_enrollments(COURSE)
    submissions = canvas.list_submissions(COURSE)
    groups = canvas.list_assignment_groups(COURSE)
    sections = canvas.list_sections(COURSE)
    assert sorted(c["id"] for c in courses) == list(range(COURSE, COURSE + N_COURSES))
    assert len({e["user_id"] for e in enrollments}) == N_STUDENTS
    assert len(submissions) == N_STUDENTS * N_ASSIGNMENTS
    assert len({(s["assignment_id"], s["user_id"]) for s in submissions}) == len(submissions)
    assert [len(g["assignments"]) for g in groups] == [N_ASSIGNMENTS]
    assert "overrides" in groups[0]["assignments"][0]
    assert sections[0]["sis_section_id"] == "SEC-0"
    assert canvas.get_course(COURSE)["sis_course_id"] == "C0"
    stats = sb.stats("canvas")
    assert count(stats, "GET /api/v1/accounts/") == 3  # 25 courses, 10 a page
    assert count(stats, "GET /api/v1/courses/{course_id}/students/submissions") == 54
    assert statuses(stats) == {"200": stats["requests"]}


def test_canvas_submission_filters(hooks):
    canvas, _ = hooks()
    subs = canvas.list_submissions(COURSE, assignment_ids=[9000, 9001])
    assert {s["assignment_id"] for s in subs} == {9000, 9001}
    assert len(subs) == 2 * N_STUDENTS
    assert canvas.list_submissions(COURSE, graded_since="2100-01-01T00:00:00Z") == []


def test_canvas_teachers_of_a_course_across_pages_with_only_id_name_email(hooks, sb):
    canvas, _ = hooks()
    teachers = canvas.list_teachers(COURSE)
    assert teachers == [
        {"id": 900 + i, "name": f"Teacher {i}", "email": f"t{i}@school.example.org"}
        for i in range(N_TEACHERS)
    ]  # no students, no sis ids or login ids
    assert count(sb.stats("canvas"), "GET /api/v1/courses/{course_id}/users") == 2  # 13 teachers, pages of 10
    assert canvas.list_teachers(COURSE + 1) == []


def test_aspen_paging_until_a_short_page(hooks, sb):
    _, aspen = hooks(page_size=5)
    line_items = aspen.list_line_items(CLASS)
    students = aspen.list_students(CLASS)
    assert sorted(li["sourcedId"] for li in line_items) == [f"pre-{i:02d}" for i in range(N_LINE_ITEMS)]
    assert len(students) == N_STUDENTS
    assert [c["sourcedId"] for c in aspen.list_categories(CLASS)] == ["CAT-HW"]
    assert [g["sourcedId"] for g in aspen.list_grading_periods()] == ["GP1"]
    stats = sb.stats("aspen")
    assert count(stats, "GET /ims/oneroster/v1p1/classes/{class_id}/lineItems") == 5  # 5+5+5+5+3
    assert count(stats, "GET /ims/oneroster/v1p1/classes/{class_id}/students") == 10  # 9 full + 1 empty


def test_aspen_server_capping_limit_loses_nothing_when_it_says_the_total(hooks, sb):
    _, aspen = hooks(page_size=10)
    sb.set_settings(aspen_max_limit=4, aspen_total_count_header=True)
    assert len(aspen.list_line_items(CLASS)) == N_LINE_ITEMS


# ====================================================================== faults


def test_canvas_each_retryable_fault_recovers(hooks, sb):
    canvas, _ = hooks()
    sb.set_faults("canvas", fail_next=[500, 502, 503, 429, "drop"], retry_after_s=0)
    assert len(canvas.list_sections(COURSE)) == 1
    stats = sb.stats("canvas")
    assert {k: v for k, v in statuses(stats).items() if k != "200"} == {
        "500": 1,
        "502": 1,
        "503": 1,
        "429": 1,
        "dropped": 1,
    }
    assert canvas.stats["retries"] == 5


def test_aspen_each_retryable_fault_recovers_on_put(hooks, sb):
    _, aspen = hooks()
    sb.set_faults("aspen", fail_next=[500, 502, 503, 429, "drop"], methods=["PUT"], retry_after_s=0)
    body = {
        "lineItem": {"sourcedId": "pre-00"},
        "student": {"sourcedId": "S0001"},
        "scoreStatus": "fully graded",
        "score": 7.0,
        "scoreDate": "2025-10-02T00:00:00.000Z",
        "status": "active",
    }
    aspen.put_result("r-hook-1", body)
    assert sb.state()["results"]["r-hook-1"]["score"] == 7.0
    stats = sb.stats("aspen")
    assert count(stats, "PUT ") == 6
    assert aspen.stats["retries"] == 5


def test_canvas_403_rate_limit_exceeded_is_retried(hooks, sb):
    canvas, _ = hooks(max_concurrency=6, max_attempts=10)
    sb.set_settings(canvas_throttle_status=403, canvas_max_in_flight=1)
    sb.set_faults("canvas", latency_ms=20)
    results = canvas.map_concurrent(canvas.get_course, range(COURSE, COURSE + 12))
    assert [c["id"] for c in results] == list(range(COURSE, COURSE + 12))
    stats = sb.stats("canvas")
    assert statuses(stats).get("403", 0) > 0  # the server did throttle, and the hook rode it out
    assert canvas.stats["retries"] >= statuses(stats)["403"]


def test_random_faults_on_both_servers_under_concurrency(hooks, sb):
    canvas, aspen = hooks(max_attempts=10)
    noisy = {"error_rate": 0.15, "rate_429": 0.1, "drop_rate": 0.05, "retry_after_s": 0, "seed": 7}
    sb.set_faults("canvas", **noisy)
    sb.set_faults("aspen", **noisy)
    courses = canvas.map_concurrent(canvas.list_sections, range(COURSE, COURSE + N_COURSES))
    assert [s[0]["id"] for s in courses] == list(range(SECTION, SECTION + N_COURSES))
    lists = aspen.map_concurrent(lambda _: aspen.list_line_items(CLASS), range(8))
    assert all(len(x) == N_LINE_ITEMS for x in lists)
    faults = sum(v for k, v in statuses(sb.stats("canvas")).items() if k != "200")
    assert faults > 0 and canvas.stats["retries"] == faults


def test_retry_after_is_honoured(hooks, sb):
    canvas, _ = hooks()
    sb.set_faults("canvas", fail_next=[429], retry_after_s=1)
    started = time.monotonic()
    canvas.list_sections(COURSE)
    assert time.monotonic() - started >= 1.0
    assert canvas.stats["retries"] == 1


def test_attempts_are_bounded_against_a_dead_server(hooks, sb):
    canvas, _ = hooks(max_attempts=3)
    sb.set_faults("canvas", error_rate=1.0, error_statuses=[503])
    with pytest.raises(CanvasApiError) as info:
        canvas.list_sections(COURSE)
    assert (info.value.status, info.value.attempts) == (503, 3)
    assert sb.stats("canvas")["requests"] == 3


# ====================================================================== tokens


def test_token_expired_mid_run_is_replaced(hooks, sb):
    _, aspen = hooks()
    aspen.list_line_items(CLASS)
    assert sb.aspen_expire_tokens() >= 1  # the server forgets every token
    assert len(aspen.list_line_items(CLASS)) == N_LINE_ITEMS
    stats = sb.stats("aspen")
    assert count(stats, "POST /oauth") == 2
    assert statuses(stats).get("401") == 1
    assert aspen.stats["token_fetches"] == 2


def test_short_lived_tokens_are_refreshed_before_expiry(hooks, sb):
    # a margin of half the lifetime: a request stalled up to 3 s on a loaded machine (CI once saw
    # a 401 with a 1 s margin) still reaches Aspen before the token it carries expires
    _, aspen = hooks(token_refresh_margin=3)
    sb.set_settings(aspen_token_lifetime_s=6)
    deadline = time.monotonic() + 7.5
    calls = 0
    while time.monotonic() < deadline:
        aspen.list_grading_periods()
        calls += 1
        time.sleep(0.1)
    stats = sb.stats("aspen")
    assert count(stats, "POST /oauth") >= 2
    assert statuses(stats).get("401", 0) == 0  # refreshed ahead of time, never refused
    assert calls > 10


# ====================================================================== non-retryable errors


@pytest.mark.parametrize("style", ["json", "text"])
def test_grading_category_not_found_surfaces_its_body(hooks, sb, style):
    _, aspen = hooks()
    sb.set_settings(aspen_error_style=style)
    line_item = {
        "title": "Quiz 1",
        "status": "active",
        "class": {"sourcedId": CLASS},
        "category": {"sourcedId": "CAT-NOPE"},
        "gradingPeriod": {"sourcedId": "GP1"},
        "dueDate": "2025-10-01T12:00:00.000Z",
        "resultValueMin": 0,
        "resultValueMax": 10,
    }
    with pytest.raises(AspenApiError) as info:
        aspen.put_line_item("canvas-a1-s1", line_item)
    err = info.value
    assert err.message == "Grading Category Not Found"
    assert "Grading Category Not Found" in str(err)
    assert err.method == "PUT" and err.path.endswith("/lineItems/canvas-a1-s1") and 400 <= err.status < 500
    assert (err.imsx_code_major == "failure") is (style == "json")
    assert count(sb.stats("aspen"), "PUT ") == 1  # not retried


def test_score_above_maximum_is_a_validation_error(hooks, sb):
    _, aspen = hooks()
    body = {
        "lineItem": {"sourcedId": "pre-00"},
        "student": {"sourcedId": "S0001"},
        "scoreStatus": "fully graded",
        "score": 11.0,
        "status": "active",
    }
    with pytest.raises(AspenApiError) as info:
        aspen.put_result("r-hook-2", body)
    assert "maximum" in info.value.message
    assert count(sb.stats("aspen"), "PUT ") == 1


def test_canvas_404_surfaces_its_body(hooks, sb):
    canvas, _ = hooks()
    with pytest.raises(CanvasApiError) as info:
        canvas.get_course(999999)
    assert info.value.status == 404
    assert "does not exist" in str(info.value)
    assert sb.stats("canvas")["requests"] == 1


def test_put_then_delete_line_item(hooks, sb):
    _, aspen = hooks()
    li = {
        "title": "Quiz 2",
        "status": "active",
        "class": {"sourcedId": CLASS},
        "category": {"sourcedId": "CAT-HW"},
        "gradingPeriod": {"sourcedId": "GP1"},
        "dueDate": "2025-10-01T12:00:00.000Z",
        "resultValueMin": 0,
        "resultValueMax": 10,
    }
    aspen.put_line_item("canvas-a2-s1", li)
    aspen.put_line_item("canvas-a2-s1", {**li, "title": "Quiz 2 (renamed)"})  # idempotent replace
    assert sb.state()["lineItems"]["canvas-a2-s1"]["title"] == "Quiz 2 (renamed)"
    assert aspen.delete_line_item("canvas-a2-s1") is True
    assert aspen.delete_line_item("canvas-a2-s1") is False
    assert "canvas-a2-s1" not in sb.state()["lineItems"]


# ====================================================================== concurrency


def test_concurrency_cap_never_exceeded(hooks, sb):
    canvas, aspen = hooks(max_concurrency=4)
    sb.set_faults("aspen", latency_ms=30, max_concurrency=4)
    sb.set_faults("canvas", latency_ms=30, max_concurrency=4)
    bodies = [
        {
            "lineItem": {"sourcedId": f"pre-{i % N_LINE_ITEMS:02d}"},
            "student": {"sourcedId": f"S{i % N_STUDENTS:04d}"},
            "scoreStatus": "fully graded",
            "score": float(i % 10),
            "status": "active",
        }
        for i in range(40)
    ]
    out = aspen.map_concurrent(
        lambda i: aspen.put_result(f"r-cap-{i}", bodies[i]), range(40), on_error="collect"
    )
    assert not [x for x in out if isinstance(x, BaseException)]
    canvas.map_concurrent(canvas.get_course, list(range(COURSE, COURSE + N_COURSES)) * 2)
    for system in ("aspen", "canvas"):
        stats = sb.stats(system)
        assert 1 < stats["max_in_flight"] <= 4, system
        assert "429" not in statuses(stats), system  # the server never had to refuse one
    assert len([k for k in sb.state()["results"] if k.startswith("r-cap-")]) == 40


def test_collect_keeps_going_past_failures(hooks):
    canvas, _ = hooks()
    ids = [COURSE, 999998, COURSE + 1, 999999, COURSE + 2]
    out = canvas.map_concurrent(canvas.get_course, ids, on_error="collect")
    assert [x["id"] if isinstance(x, dict) else x.status for x in out] == [
        COURSE,
        404,
        COURSE + 1,
        404,
        COURSE + 2,
    ]


# ====================================================================== secrets


def test_no_secret_in_captured_logs(hooks, sb, caplog, capsys):
    caplog.set_level(logging.DEBUG)
    canvas, aspen = hooks()
    sb.set_faults("canvas", fail_next=[503, 429], retry_after_s=0)
    sb.set_faults("aspen", fail_next=[502], retry_after_s=0)
    canvas.list_submissions(COURSE)
    canvas.test_connection()
    aspen.list_line_items(CLASS)
    sb.aspen_expire_tokens()
    aspen.list_students(CLASS)
    with pytest.raises(CanvasApiError) as c_err:
        canvas.get_course(999999)
    with pytest.raises(AspenApiError) as a_err:
        aspen.put_line_item(
            "x", {"title": "x", "class": {"sourcedId": CLASS}, "category": {"sourcedId": "nope"}}
        )
    out = capsys.readouterr()
    captured = "\n".join(
        [caplog.text, out.out, out.err, str(c_err.value), str(a_err.value), repr(a_err.value)]
    )
    assert "retrying" in captured and "page(s)" in captured  # the logs were captured
    issued = list(aspen._issued_tokens)
    assert len(issued) == 2
    for secret in [CANVAS_TOKEN, ASPEN_SECRET, *issued]:
        assert secret not in captured
