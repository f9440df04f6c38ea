"""AspenHook over real HTTP against a scripted stub on 127.0.0.1: client credentials and the
access token (cached, refreshed by one thread, one retry on 401), OneRoster offset paging,
PUT/DELETE and ``imsx_*`` errors, the UI's Test button.

The HTTP machinery both hooks share is tested in ``test_http_core.py``.
"""

from __future__ import annotations

import time

import pytest

from canvas_aspen.hooks._http import ConnectionConfigError
from canvas_aspen.hooks.aspen import AspenApiError, AspenHook

from .hook_stub_server import ASPEN_SECRET, AspenStub, Req, StubServer, js, text

pytestmark = pytest.mark.timeout(60)


# ==================== connection and token


@pytest.mark.parametrize(
    ("login", "password", "missing"), [(None, ASPEN_SECRET, "client id"), ("id", None, "secret")]
)
def test_missing_aspen_credentials_fail_fast(set_conn, login, password, missing):
    set_conn("aspen_test", "aspen", "https://d.example", login=login, password=password)
    with pytest.raises(ConnectionConfigError, match=missing):
        AspenHook(aspen_conn_id="aspen_test").list_grading_periods()


def test_aspen_token_expiry_refreshes(aspen_hook):
    stub = AspenStub(expires_in=1)
    with StubServer(stub) as srv:
        hook = aspen_hook(srv.url, token_refresh_margin=0.5)
        hook.list_grading_periods()
        hook.list_grading_periods()
        assert stub.issued == 1
        time.sleep(0.9)  # past expires_in - min(margin, 20%) = 0.8 s
        hook.list_grading_periods()
    assert stub.issued == 2


def test_aspen_401_gets_one_fresh_token_and_one_retry(aspen_hook):
    stub = AspenStub()
    with StubServer(stub) as srv:
        hook = aspen_hook(srv.url)
        hook.list_grading_periods()
        stub.revoke_all()  # the server forgets the token (expired early, restarted …)
        assert hook.list_grading_periods() == [{"sourcedId": "gp1"}]
    assert stub.issued == 2
    assert [r.path.rsplit("/", 1)[-1] for r in srv.requests] == [
        "auth",
        "gradingPeriods",
        "gradingPeriods",
        "auth",
        "gradingPeriods",
    ]


def test_aspen_401_twice_raises(aspen_hook):
    stub = AspenStub()

    def handler(req: Req):
        return stub(req) if req.path.endswith("/auth") else text(401, "Unauthorized")

    with StubServer(handler) as srv:
        hook = aspen_hook(srv.url)
        with pytest.raises(AspenApiError) as info:
            hook.list_grading_periods()
    assert info.value.status == 401
    assert len(srv.requests) == 4  # token, GET, token, GET - then give up


def test_aspen_token_concurrent_refresh_is_single(aspen_hook):
    stub = AspenStub()
    with StubServer(stub) as srv:
        hook = aspen_hook(srv.url, max_concurrency=8)
        hook.map_concurrent(lambda _: hook.list_grading_periods(), range(24))
        assert stub.issued == 1
        stub.revoke_all()
        hook.map_concurrent(lambda _: hook.list_grading_periods(), range(24))
    assert stub.issued == 2  # eight threads hit 401 at once; exactly one new token


def test_aspen_bad_credentials(aspen_hook):
    with StubServer(AspenStub()) as srv:
        hook = aspen_hook(srv.url, secret="wrong-secret-123456")
        with pytest.raises(AspenApiError) as info:
            hook.list_grading_periods()
    assert info.value.status == 401 and info.value.endpoint == "token"
    assert "wrong-secret-123456" not in str(info.value)


def test_access_tokens_are_masked(aspen_hook):
    from airflow.sdk.log import redact

    stub = AspenStub()
    with StubServer(stub) as srv:
        hook = aspen_hook(srv.url)
        token = hook.access_token()
    assert token == "access-token-0001-zz"
    assert token not in str(redact(f"Authorization: Bearer {token}"))
    assert ASPEN_SECRET not in str(redact(f"client_secret={ASPEN_SECRET}"))


# ==================== paging


def test_aspen_token_cached_and_offset_paging(aspen_hook):
    stub = AspenStub(items=23)
    with StubServer(stub) as srv:
        hook = aspen_hook(srv.url, page_size=5)
        items = hook.list_line_items("c 1")
        again = hook.list_line_items("c 1")
    assert (
        [x["sourcedId"] for x in items] == [f"li-{i}" for i in range(23)] == [x["sourcedId"] for x in again]
    )
    assert stub.issued == 1  # one token for all 10 pages
    gets = [r for r in srv.requests if r.method == "GET"]
    assert [(r.q("limit"), r.q("offset")) for r in gets[:5]] == [("5", str(o)) for o in (0, 5, 10, 15, 20)]
    assert gets[0].raw_path.startswith("/ims/oneroster/v1p1/classes/c%201/lineItems")
    token_req = srv.requests[0]
    assert token_req.headers["Content-Type"] == "application/x-www-form-urlencoded"


def test_aspen_exact_multiple_of_page_size_ends_on_empty_page(aspen_hook):
    stub = AspenStub(items=10)
    with StubServer(stub) as srv:
        items = aspen_hook(srv.url, page_size=5).list_line_items("c 1")
    assert len(items) == 10
    assert [r.q("offset") for r in srv.requests if r.method == "GET"] == ["0", "5", "10"]


def test_aspen_short_page_with_larger_total_keeps_paging(aspen_hook):
    """A server that silently caps ``limit`` (4 < page_size 10) but says X-Total-Count loses nothing."""
    stub = AspenStub(items=11)

    def handler(req: Req):
        if req.path.endswith("/auth"):
            return stub(req)
        offset = int(req.q("offset") or 0)
        page = stub.items[offset : offset + 4]
        return js(200, {"lineItems": page}, {"X-Total-Count": str(len(stub.items))})

    with StubServer(handler) as srv:
        items = aspen_hook(srv.url, page_size=10).list_line_items("c 1")
    assert [x["sourcedId"] for x in items] == [f"li-{i}" for i in range(11)]
    assert [r.q("offset") for r in srv.requests if r.method == "GET"] == ["0", "4", "8"]


def test_aspen_offset_ignored_is_a_loop_error(aspen_hook):
    stub = AspenStub()

    def handler(req: Req):
        if req.path.endswith("/auth"):
            return stub(req)
        return js(200, {"results": [{"sourcedId": f"r{i}"} for i in range(3)]})

    with StubServer(handler) as srv:
        hook = aspen_hook(srv.url, page_size=3)
        with pytest.raises(AspenApiError, match="paging loop") as info:
            hook.list_results("c1")
    assert info.value.endpoint == "list_results"


# ==================== writes and errors


@pytest.mark.parametrize("style", ["json", "text"])
def test_aspen_grading_category_not_found_surfaces(aspen_hook, style):
    stub = AspenStub(error_style=style)
    with StubServer(stub) as srv:
        hook = aspen_hook(srv.url)
        with pytest.raises(AspenApiError) as info:
            hook.put_line_item("canvas-a1-s2", {"title": "Quiz", "category": {"sourcedId": "missing"}})
    err = info.value
    assert err.status == 400 and err.method == "PUT"
    assert err.path == "/ims/oneroster/v1p1/lineItems/canvas-a1-s2"
    assert err.message == "Grading Category Not Found"
    assert "Grading Category Not Found" in str(err)
    assert (err.imsx_code_major == "failure") is (style == "json")
    assert len([r for r in srv.requests if r.method == "PUT"]) == 1  # not retried


def test_aspen_put_and_delete(aspen_hook):
    stub = AspenStub()
    with StubServer(stub) as srv:
        hook = aspen_hook(srv.url)
        answer = hook.put_line_item("canvas-a1/s2", {"title": "Quiz", "class": {"sourcedId": "c1"}})
        assert answer == {
            "lineItem": {"title": "Quiz", "class": {"sourcedId": "c1"}, "sourcedId": "canvas-a1/s2"}
        }
        assert hook.put_result("r1", {"result": {"score": 9.5, "scoreStatus": "fully graded"}}) is None
        assert hook.delete_line_item("li-1") is True
        assert hook.delete_line_item("li-2") is False
        with pytest.raises(ValueError, match="differs"):
            hook.put_result("r1", {"sourcedId": "r2"})
    put_paths = [r.raw_path for r in srv.requests if r.method == "PUT"]
    assert put_paths == ["/ims/oneroster/v1p1/lineItems/canvas-a1%2Fs2", "/ims/oneroster/v1p1/results/r1"]
    assert stub.put_bodies[1][1] == {
        "result": {"score": 9.5, "scoreStatus": "fully graded", "sourcedId": "r1"}
    }


def test_aspen_put_retried_after_5xx_and_drop(aspen_hook):
    stub = AspenStub()
    faults = iter(["drop", text(502, "bad gateway")])

    def handler(req: Req):
        if req.method == "PUT":
            fault = next(faults, None)
            if fault is not None:
                return fault
        return stub(req)

    with StubServer(handler) as srv:
        hook = aspen_hook(srv.url)
        hook.put_result("r1", {"score": 1.0})
    assert len([r for r in srv.requests if r.method == "PUT"]) == 3
    assert hook.stats["retries"] == 2


def test_aspen_categories_filter_and_quotes(aspen_hook):
    with StubServer(AspenStub()) as srv:
        hook = aspen_hook(srv.url)
        cats = hook.list_categories("SEC-1")
        with pytest.raises(ValueError):
            hook.list_categories("x' or '1'='1")
    assert cats[0]["filter"] == "metadata.classId='SEC-1'"


def test_aspen_custom_paths(aspen_hook):
    def handler(req: Req):
        if req.path == "/district/token":
            return js(200, {"access_token": "tok-abcdef-1", "expires_in": 60})
        assert req.path == "/district/or/gradingPeriods"
        return js(200, {"gradingPeriods": []})

    with StubServer(handler) as srv:
        hook = aspen_hook(srv.url + "/district", token_path="token/", api_path="/or")
        assert hook.list_grading_periods() == []


# ==================== test_connection


def test_aspen_test_connection(aspen_hook):
    with StubServer(AspenStub()) as srv:
        ok, msg = aspen_hook(srv.url).test_connection()
    assert ok, msg
    assert srv.requests[-1].q("limit") == "1"
    with StubServer(AspenStub()) as srv:
        ok, msg = aspen_hook(srv.url, secret="not-the-secret-99").test_connection()
    assert not ok and "401" in msg and "not-the-secret-99" not in msg


def test_r21_r22_aspen_extras_column_code_length_and_student_id_field(set_conn):
    set_conn("aspen_test", "aspen", "https://a.example", login="id", password=ASPEN_SECRET)
    aspen = AspenHook(aspen_conn_id="aspen_test")
    assert (aspen.column_code_length, aspen.student_id_field) == (10, "sourcedId")
    set_conn(
        "aspen_test",
        "aspen",
        "https://a.example",
        login="id",
        password=ASPEN_SECRET,
        column_code_length="0",
        student_id_field="identifier",
    )
    aspen = AspenHook(aspen_conn_id="aspen_test")
    assert (aspen.column_code_length, aspen.student_id_field) == (0, "identifier")
    for field in ("username", "email", "sourcedId"):
        set_conn(
            "aspen_test",
            "aspen",
            "https://a.example",
            login="id",
            password=ASPEN_SECRET,
            student_id_field=field,
        )
        assert AspenHook(aspen_conn_id="aspen_test").student_id_field == field


@pytest.mark.parametrize(
    ("extra", "value", "says"),
    [
        (
            "student_id_field",
            "student_number",
            "student_id_field' must be one of sourcedId, identifier, username, email",
        ),
        ("column_code_length", -1, "column_code_length"),
        ("column_code_length", "ten", "column_code_length"),
    ],
)
def test_r21_r22_a_bad_aspen_extra_is_a_clear_connection_error(set_conn, extra, value, says):
    set_conn("aspen_test", "aspen", "https://a.example", login="id", password=ASPEN_SECRET, **{extra: value})
    with pytest.raises(ConnectionConfigError, match=says):
        getattr(AspenHook(aspen_conn_id="aspen_test"), extra)
