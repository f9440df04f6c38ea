"""CanvasHook over real HTTP against a scripted stub on 127.0.0.1: the Connection, Link
paging (host and loop checks), the endpoints' parameters, the UI's Test button.

The HTTP machinery both hooks share is tested in ``test_http_core.py``; the same behaviours
against the sandbox stand-ins are in ``test_hooks_sandbox.py``.
"""

from __future__ import annotations

import json

import pytest

from canvas_aspen.hooks._http import ConnectionConfigError
from canvas_aspen.hooks.aspen import AspenHook
from canvas_aspen.hooks.canvas import CanvasApiError, CanvasHook

from .hook_stub_server import CANVAS_TOKEN, Req, StubServer, canvas_pages, js, scripted, text

pytestmark = pytest.mark.timeout(60)


# ==================== connection


def test_no_io_in_init_and_lazy_connection():
    hook = CanvasHook(canvas_conn_id="does_not_exist_anywhere")  # must not look anything up
    assert hook.canvas_conn_id == "does_not_exist_anywhere"
    with pytest.raises(Exception, match="does_not_exist_anywhere"):
        _ = hook.connection
    assert AspenHook().aspen_conn_id == "aspen_default"
    assert CanvasHook().canvas_conn_id == "canvas_default"


def test_missing_token_fails_fast(set_conn):
    set_conn("canvas_test", "canvas", "https://d.instructure.com")
    with pytest.raises(ConnectionConfigError, match="no API token"):
        CanvasHook(canvas_conn_id="canvas_test").list_courses()


def test_missing_host_fails_fast(set_conn):
    set_conn("canvas_test", "canvas", "", password=CANVAS_TOKEN)
    with pytest.raises(ConnectionConfigError, match="no host"):
        _ = CanvasHook(canvas_conn_id="canvas_test").settings


# ==================== paging and endpoints


def test_canvas_follows_next_links_across_many_pages(canvas_hook):
    with StubServer(canvas_pages(95, 10, path="/api/v1/courses/5/sections")) as srv:
        hook = canvas_hook(srv.url, page_size=10)
        sections = hook.list_sections(5)
    assert [s["id"] for s in sections] == list(range(95))
    assert len(srv.requests) == 10
    first = srv.requests[0]
    assert first.path == "/api/v1/courses/5/sections" and first.q("per_page") == "10"
    assert hook.stats["pages"] == 10


def test_r19_canvas_list_terms_pages_the_enrollment_terms_object(canvas_hook):
    path = "/api/v1/accounts/1/terms"
    inner = canvas_pages(25, 10, path=path)

    def handler(req: Req):
        status, headers, body = inner(req)
        return status, headers, json.dumps({"enrollment_terms": json.loads(body)}).encode()

    with StubServer(handler) as srv:
        hook = canvas_hook(srv.url, page_size=10)
        listed = hook.list_terms()
    assert [t["id"] for t in listed] == list(range(25))
    assert len(srv.requests) == 3 and srv.requests[0].path == path


def test_r19_canvas_list_terms_refuses_an_answer_without_the_terms(canvas_hook):
    with StubServer(scripted(js(200, [{"id": 1}]), js(200, {"enrollment_terms": "x"}))) as srv:
        hook = canvas_hook(srv.url)
        with pytest.raises(CanvasApiError, match="expected a JSON object with 'enrollment_terms'"):
            hook.list_terms()
        with pytest.raises(CanvasApiError, match="under 'enrollment_terms'"):
            hook.list_terms()


def test_r19_canvas_course_list_by_term_and_state(canvas_hook):
    with StubServer(scripted(js(200, []))) as srv:
        canvas_hook(srv.url).list_courses(enrollment_term_id="sis_term_id:2627", state=["available"])
    assert sorted(srv.requests[0].query) == sorted(
        [("enrollment_term_id", "sis_term_id:2627"), ("state[]", "available"), ("per_page", "100")]
    )


def test_canvas_query_parameters(canvas_hook):
    with StubServer(scripted(js(200, []))) as srv:
        hook = canvas_hook(srv.url)
        hook.list_student_enrollments(3)
        hook.list_assignment_groups(3)
        hook.list_submissions(3, assignment_ids=[11, 12], graded_since="2026-01-05T00:00:00Z")
        hook.list_courses(enrollment_term_id=4)
        hook.list_courses(account_id="sub 1")
    q = [sorted(r.query) for r in srv.requests]
    assert q[0] == sorted([("type[]", "StudentEnrollment"), ("state[]", "active"), ("per_page", "100")])
    assert q[1] == sorted([("include[]", "assignments"), ("include[]", "overrides"), ("per_page", "100")])
    assert q[2] == sorted(
        [
            ("student_ids[]", "all"),
            ("assignment_ids[]", "11"),
            ("assignment_ids[]", "12"),
            ("graded_since", "2026-01-05T00:00:00Z"),
            ("per_page", "100"),
        ]
    )
    assert srv.requests[2].path == "/api/v1/courses/3/students/submissions"
    assert srv.requests[3].path == "/api/v1/accounts/1/courses" and ("enrollment_term_id", "4") in q[3]
    assert srv.requests[4].raw_path.startswith("/api/v1/accounts/sub%201/courses")


def test_canvas_get_course_and_shape_errors(canvas_hook):
    with StubServer(
        scripted(js(200, {"id": 5, "name": "Algebra"}), js(200, {"id": 5}), text(200, "<html>hi</html>"))
    ) as srv:
        hook = canvas_hook(srv.url)
        assert hook.get_course(5)["name"] == "Algebra"
        with pytest.raises(CanvasApiError, match="list_sections.*expected a JSON list"):
            hook.list_sections(5)  # an object where a list belongs
        with pytest.raises(CanvasApiError, match="not JSON") as info:
            hook.list_sections(5)
    assert info.value.endpoint == "list_sections" and info.value.status == 200


def test_canvas_link_loop_is_an_error(canvas_hook):
    def handler(req: Req):
        base = f"http://{req.headers['Host']}/api/v1/courses/1/sections"
        nxt = f"{base}?page=2&per_page=100" if req.q("page") in (None, "1") else f"{base}?page=1&per_page=100"
        if req.q("page") == "2":
            nxt = f"{base}?page=2&per_page=100"  # page 2 points at itself
        return js(200, [{"id": 1}], {"Link": f'<{nxt}>; rel="next"'})

    with StubServer(handler) as srv:
        hook = canvas_hook(srv.url)
        with pytest.raises(CanvasApiError, match="pagination loop") as info:
            hook.list_sections(1)
    assert info.value.endpoint == "list_sections"
    assert len(srv.requests) == 2


def test_canvas_refuses_next_link_to_another_host(canvas_hook):
    answer = js(200, [{"id": 1}], {"Link": '<https://evil.example/api/v1/courses?page=2>; rel="next"'})
    with StubServer(scripted(answer)) as srv:
        hook = canvas_hook(srv.url)
        with pytest.raises(CanvasApiError, match="another host"):
            hook.list_courses()
    assert len(srv.requests) == 1


# ==================== test_connection


def test_canvas_test_connection(canvas_hook):
    with StubServer(scripted(js(200, [{"id": 1}]))) as srv:
        ok, msg = canvas_hook(srv.url).test_connection()
    assert ok and "account 1" in msg
    assert srv.requests[0].q("per_page") == "1"
    with StubServer(scripted(text(401, "Invalid access token."))) as srv:
        ok, msg = canvas_hook(srv.url).test_connection()
    assert not ok and "401" in msg and CANVAS_TOKEN not in msg


def test_test_connection_reports_config_errors(set_conn):
    set_conn("canvas_test", "canvas", "http://remote.example", password=CANVAS_TOKEN)
    ok, msg = CanvasHook(canvas_conn_id="canvas_test").test_connection()
    assert not ok and "allow_insecure_http" in msg
