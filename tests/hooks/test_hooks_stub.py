"""CanvasHook and AspenHook over real HTTP against a scripted stub on 127.0.0.1.

Deterministic: each test scripts the exact answers (pages, faults, 401s) it needs. The
same behaviours against the sandbox stand-ins are in ``test_hooks_sandbox.py``.
"""

from __future__ import annotations

import logging
import threading
import time
from urllib.parse import parse_qsl

import pytest
from hook_stub_server import ASPEN_CLIENT_ID, ASPEN_SECRET, CANVAS_TOKEN, Req, StubServer, js, text

from canvas_aspen.hooks._http import ApiError, ConnectionConfigError
from canvas_aspen.hooks.aspen import AspenApiError, AspenHook
from canvas_aspen.hooks.canvas import CanvasApiError, CanvasHook

pytestmark = pytest.mark.timeout(60)


def scripted(*answers):
    """A handler answering the given answers in order, then repeating the last one."""
    queue = list(answers)
    lock = threading.Lock()

    def handler(req: Req):
        with lock:
            return queue.pop(0) if len(queue) > 1 else queue[0]

    return handler


# ====================================================================== connection


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


@pytest.mark.parametrize(
    ("login", "password", "missing"), [(None, ASPEN_SECRET, "client id"), ("id", None, "secret")]
)
def test_missing_aspen_credentials_fail_fast(set_conn, login, password, missing):
    set_conn("aspen_test", "aspen", "https://d.example", login=login, password=password)
    with pytest.raises(ConnectionConfigError, match=missing):
        AspenHook(aspen_conn_id="aspen_test").list_grading_periods()


def test_typed_extra_defaults(set_conn):
    set_conn("canvas_test", "canvas", "https://d.instructure.com/", password=CANVAS_TOKEN)
    hook = CanvasHook(canvas_conn_id="canvas_test")
    s = hook.settings
    assert (s.base_url, s.max_concurrency, s.page_size, s.timeout, s.verify, s.max_attempts) == (
        "https://d.instructure.com",
        8,
        100,
        (30.0, 30.0),
        True,
        6,
    )
    assert hook.account_id == "1"
    set_conn("aspen_test", "aspen", "https://a.example", login="id", password=ASPEN_SECRET)
    aspen = AspenHook(aspen_conn_id="aspen_test")
    assert (aspen.token_path, aspen.api_path) == ("/oauth/rest/v2.0/auth", "/ims/oneroster/v1p1")
    assert (aspen.settings.max_concurrency, aspen.settings.page_size) == (8, 100)


def test_extras_given_as_strings_and_legacy_prefix(set_conn):
    set_conn(
        "canvas_test",
        "canvas",
        "https://d.instructure.com",
        password=CANVAS_TOKEN,
        account_id=7,
        max_concurrency="3",
        extra__canvas__page_size="50",
        timeout=[2, 9],
    )
    hook = CanvasHook(canvas_conn_id="canvas_test")
    assert hook.account_id == "7"
    assert (hook.settings.max_concurrency, hook.settings.page_size, hook.settings.timeout) == (3, 50, (2, 9))


def test_bad_extra_names_the_field(set_conn):
    set_conn(
        "canvas_test", "canvas", "https://d.instructure.com", password=CANVAS_TOKEN, max_concurrency="lots"
    )
    with pytest.raises(ConnectionConfigError, match="max_concurrency"):
        _ = CanvasHook(canvas_conn_id="canvas_test").settings


def test_plain_http_to_remote_host_refused(set_conn):
    set_conn("canvas_test", "canvas", "http://district.instructure.com", password=CANVAS_TOKEN)
    with pytest.raises(ConnectionConfigError, match="allow_insecure_http"):
        CanvasHook(canvas_conn_id="canvas_test").list_courses()
    set_conn(
        "canvas_test",
        "canvas",
        "http://district.instructure.com",
        password=CANVAS_TOKEN,
        allow_insecure_http=True,
    )
    assert CanvasHook(canvas_conn_id="canvas_test").settings.base_url == "http://district.instructure.com"


def test_verify_false_warns(set_conn, capsys, caplog):
    set_conn("canvas_test", "canvas", "https://d.instructure.com", password=CANVAS_TOKEN, verify=False)
    with caplog.at_level(logging.WARNING):
        assert CanvasHook(canvas_conn_id="canvas_test").settings.verify is False
    out = capsys.readouterr()
    assert "verification is OFF" in caplog.text + out.out + out.err


def test_session_pool_fits_concurrency(set_conn):
    set_conn("canvas_test", "canvas", "https://d.instructure.com", password=CANVAS_TOKEN, max_concurrency=12)
    session = CanvasHook(canvas_conn_id="canvas_test").get_conn()
    adapter = session.get_adapter("https://d.instructure.com/api")
    assert adapter._pool_maxsize >= 12
    assert adapter.max_retries.total == 0


def test_repr_and_auth_never_show_secrets(canvas_hook, aspen_hook):
    hook = canvas_hook("http://127.0.0.1:9")
    assert CANVAS_TOKEN not in repr(hook) and CANVAS_TOKEN not in repr(hook._auth())
    assert CANVAS_TOKEN not in repr(hook.settings)
    aspen = aspen_hook("http://127.0.0.1:9")
    assert ASPEN_SECRET not in repr(aspen) and ASPEN_SECRET not in repr(aspen.settings)


def test_secrets_registered_with_masker(canvas_hook):
    from airflow.sdk.log import redact

    hook = canvas_hook("http://127.0.0.1:9")
    _ = hook.connection
    assert CANVAS_TOKEN not in str(redact(f"Authorization: Bearer {CANVAS_TOKEN}"))


def test_ui_field_behaviour_and_provider_info_agree():
    from canvas_aspen.provider_info import get_provider_info

    canvas = CanvasHook.get_ui_field_behaviour()
    aspen = AspenHook.get_ui_field_behaviour()
    assert canvas["relabeling"]["password"] == "API Token"
    assert aspen["relabeling"]["login"] == "Client ID"
    assert aspen["relabeling"]["password"] == "Client Secret"
    for behaviour in (canvas, aspen):
        assert {"schema", "port"} <= set(behaviour["hidden_fields"])
    assert canvas["placeholders"]["host"] == "https://district.instructure.com"
    info = {c["connection-type"]: c for c in get_provider_info()["connection-types"]}
    for conn_type, behaviour in (("canvas", canvas), ("aspen", aspen)):
        declared = info[conn_type]["ui-field-behaviour"]
        assert declared["relabeling"] == behaviour["relabeling"]
        assert declared["hidden-fields"] == behaviour["hidden_fields"]
        assert declared["placeholders"] == behaviour["placeholders"]
    assert "account_id" in info["canvas"]["conn-fields"]
    assert {"token_path", "api_path"} <= set(info["aspen"]["conn-fields"])


def test_providers_manager_reads_the_form_declaratively():
    from airflow.providers_manager import ProvidersManager

    behaviours = ProvidersManager().field_behaviours
    assert behaviours["canvas"]["relabeling"]["password"] == "API Token"
    assert behaviours["aspen"]["relabeling"]["password"] == "Client Secret"


# ====================================================================== Canvas paging


def canvas_pages(total: int, per_page: int, *, path: str):
    def handler(req: Req):
        assert req.headers.get("Authorization") == f"Bearer {CANVAS_TOKEN}"
        page = int(req.q("page") or 1)
        size = int(req.q("per_page") or per_page)
        items = [{"id": i} for i in range((page - 1) * size, min(total, page * size))]
        last = max(1, -(-total // size))
        base = f"http://{req.headers['Host']}{path}"
        links = [
            f'<{base}?page={page}&per_page={size}>; rel="current"',
            f'<{base}?page=1&per_page={size}>; rel="first"',
        ]
        if page < last:
            links.insert(0, f'<{base}?page={page + 1}&per_page={size}>; rel="next"')
        return js(200, items, {"Link": ", ".join(links), "X-Rate-Limit-Remaining": "700.0"})

    return handler


def test_canvas_follows_next_links_across_many_pages(canvas_hook):
    with StubServer(canvas_pages(95, 10, path="/api/v1/courses/5/sections")) as srv:
        hook = canvas_hook(srv.url, page_size=10)
        sections = hook.list_sections(5)
    assert [s["id"] for s in sections] == list(range(95))
    assert len(srv.requests) == 10
    first = srv.requests[0]
    assert first.path == "/api/v1/courses/5/sections" and first.q("per_page") == "10"
    assert hook.stats["pages"] == 10


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


# ====================================================================== retry policy


@pytest.mark.parametrize(
    "fault",
    [
        text(500, "boom"),
        text(502, "bad gateway"),
        text(503, "unavailable"),
        text(429, "slow down"),
        text(403, "403 Forbidden (Rate Limit Exceeded)"),
        "drop",
    ],
)
def test_retryable_faults_recover(canvas_hook, fault):
    with StubServer(scripted(fault, fault, js(200, [{"id": 1}]))) as srv:
        hook = canvas_hook(srv.url)
        assert hook.list_sections(1) == [{"id": 1}]
    assert len(srv.requests) == 3
    assert hook.stats["retries"] == 2
    assert len(hook._sleep.calls) == 2 and all(0 <= s <= 0.05 for s in hook._sleep.calls)


def test_timeout_is_retried(canvas_hook):
    with StubServer(scripted(("sleep", 1.0, js(200, [{"id": 0}])), js(200, [{"id": 1}]))) as srv:
        hook = canvas_hook(srv.url, timeout=0.3)
        assert hook.list_sections(1) == [{"id": 1}]
    assert hook.stats["retries"] == 1


def test_retry_after_is_honoured(canvas_hook):
    with StubServer(scripted(text(429, "slow down", {"Retry-After": "0.04"}), js(200, []))) as srv:
        hook = canvas_hook(srv.url)
        hook.list_sections(1)
    # the hook asked to sleep exactly what the server said (0.04 s is under backoff_max 0.05)
    assert 0.04 in hook._sleep.calls


def test_retry_after_holds_back_every_thread_of_the_hook(canvas_hook):
    """A 429's ``Retry-After`` pauses the whole hook: a request another thread sends next
    waits out what is left of it too, not only the retry of the request that got the 429."""
    with StubServer(scripted(text(429, "slow down", {"Retry-After": "30"}), js(200, []))) as srv:
        hook = canvas_hook(srv.url, backoff_max=60)  # the recorder sleeps nothing: the pause stays ahead
        hook.list_sections(1)
        waits = hook.stats["throttle_waits"]
        other = threading.Thread(target=hook.list_sections, args=(2,))
        other.start()
        other.join(timeout=10)
    assert not other.is_alive()
    assert hook.stats["throttle_waits"] == waits + 1
    assert 25 < hook._sleep.calls[-1] <= 30  # the other thread waited for the rest of the 30 s


def test_retry_after_http_date_and_cap(canvas_hook):
    from email.utils import formatdate

    answer = text(503, "maintenance", {"Retry-After": formatdate(time.time() + 3600, usegmt=True)})
    with StubServer(scripted(answer, js(200, []))) as srv:
        hook = canvas_hook(srv.url)
        hook.list_sections(1)
    assert hook._sleep.calls == [0.05]  # an hour, capped at backoff_max


def test_attempts_are_bounded(canvas_hook):
    with StubServer(scripted(text(503, "still down"))) as srv:
        hook = canvas_hook(srv.url, max_attempts=3)
        with pytest.raises(CanvasApiError) as info:
            hook.list_sections(1)
    assert len(srv.requests) == 3
    err = info.value
    assert (err.status, err.attempts, err.retryable, err.body) == (503, 3, True, "still down")
    assert "after 3 attempts" in str(err)


@pytest.mark.parametrize(
    ("status", "body"),
    [
        (400, "bad param"),
        (401, "Invalid access token."),
        (403, "user not authorized"),
        (404, "not found"),
        (422, "nope"),
    ],
)
def test_other_4xx_raise_at_once_with_body(canvas_hook, status, body):
    with StubServer(scripted(text(status, body))) as srv:
        hook = canvas_hook(srv.url)
        with pytest.raises(CanvasApiError) as info:
            hook.list_sections(1)
    assert len(srv.requests) == 1
    assert (info.value.status, info.value.body, info.value.method) == (status, body, "GET")
    assert info.value.path == "/api/v1/courses/1/sections"
    assert body in str(info.value)


def test_low_rate_limit_remaining_slows_down(canvas_hook):
    low = js(200, [{"id": 1}], {"X-Rate-Limit-Remaining": "10"})
    with StubServer(scripted(low)) as srv:
        hook = canvas_hook(srv.url, rate_limit_threshold=100, rate_limit_max_sleep=0.5)
        hook.list_sections(1)
        hook.list_sections(2)
    assert hook.stats["throttle_waits"] == 1
    assert 0.3 < hook._sleep.calls[0] <= 0.45  # 0.5 * (1 - 10/100), minus the time between calls


def test_error_bodies_are_scrubbed_of_the_token(canvas_hook):
    with StubServer(scripted(text(400, f"bad token {CANVAS_TOKEN}"))) as srv:
        hook = canvas_hook(srv.url)
        with pytest.raises(CanvasApiError) as info:
            hook.list_sections(1)
    assert CANVAS_TOKEN not in str(info.value) and CANVAS_TOKEN not in info.value.body


# ====================================================================== bounded concurrency


def test_map_concurrent_keeps_order_and_bounds_threads(canvas_hook):
    hook = canvas_hook("http://127.0.0.1:9", max_concurrency=3)
    lock, live, peak = threading.Lock(), [0], [0]

    def work(i: int) -> int:
        with lock:
            live[0] += 1
            peak[0] = max(peak[0], live[0])
        time.sleep(0.01 * (i % 4))
        with lock:
            live[0] -= 1
        return i * i

    assert hook.map_concurrent(work, range(20)) == [i * i for i in range(20)]
    assert 1 < peak[0] <= 3
    assert hook.map_concurrent(work, []) == []


def test_map_concurrent_collect_keeps_every_result(canvas_hook):
    hook = canvas_hook("http://127.0.0.1:9")

    def work(i: int) -> int:
        if i % 3 == 0:
            raise ValueError(f"bad {i}")
        return i

    out = hook.map_concurrent(work, range(7), on_error="collect")
    assert [type(x).__name__ if isinstance(x, Exception) else x for x in out] == [
        "ValueError",
        1,
        2,
        "ValueError",
        4,
        5,
        "ValueError",
    ]
    assert str(out[3]) == "bad 3"


def test_map_concurrent_raise_stops_early(canvas_hook):
    hook = canvas_hook("http://127.0.0.1:9", max_concurrency=2)
    started = []

    def work(i: int) -> int:
        started.append(i)
        if i == 1:
            raise KeyError("first failure")
        time.sleep(0.02)
        return i

    with pytest.raises(KeyError, match="first failure"):
        hook.map_concurrent(work, range(50))
    assert len(started) < 50  # the rest were cancelled
    with pytest.raises(ValueError):
        hook.map_concurrent(work, [1], on_error="ignore")  # type: ignore[arg-type]


def test_requests_in_flight_capped_even_when_nested(canvas_hook):
    with StubServer(scripted(("sleep", 0.05, js(200, [])))) as srv:
        hook = canvas_hook(srv.url, max_concurrency=3)
        # nested fan-out: 4 x 4 calls, still never more than 3 requests at the server at once
        hook.map_concurrent(
            lambda c: hook.map_concurrent(lambda s: hook.list_sections(s), range(4)), range(4)
        )
    assert len(srv.requests) == 16
    assert srv.max_in_flight <= 3


# ====================================================================== Aspen


class AspenStub:
    """Token endpoint + OneRoster collections with limit/offset, tokens that expire on demand."""

    def __init__(self, *, expires_in: int = 3600, items: int = 0, error_style: str = "json"):
        self.expires_in = expires_in
        self.items = [{"sourcedId": f"li-{i}", "title": f"t{i}"} for i in range(items)]
        self.valid: set[str] = set()
        self.issued = 0
        self.error_style = error_style
        self.put_bodies: list[tuple[str, dict]] = []
        self.lock = threading.Lock()

    def revoke_all(self) -> None:
        with self.lock:
            self.valid.clear()

    def __call__(self, req: Req):
        if req.path == "/oauth/rest/v2.0/auth":
            form = dict(parse_qsl(req.body.decode()))
            if form != {
                "grant_type": "client_credentials",
                "client_id": ASPEN_CLIENT_ID,
                "client_secret": ASPEN_SECRET,
            }:
                return js(401, {"error": "invalid_client"})
            with self.lock:
                self.issued += 1
                token = f"access-token-{self.issued:04d}-zz"
                self.valid.add(token)
            return js(200, {"access_token": token, "token_type": "Bearer", "expires_in": self.expires_in})
        token = (req.headers.get("Authorization") or "").removeprefix("Bearer ")
        if token not in self.valid:
            return text(401, "Unauthorized")
        api = "/ims/oneroster/v1p1"
        path = req.path.removeprefix(api)
        limit, offset = int(req.q("limit") or 100), int(req.q("offset") or 0)
        if req.method == "GET" and path == "/classes/c%201/lineItems":
            return js(200, {"lineItems": self.items[offset : offset + limit]})
        if req.method == "GET" and path == "/gradingPeriods":
            return js(200, {"gradingPeriods": [{"sourcedId": "gp1"}][offset : offset + limit]})
        if req.method == "GET" and path == "/categories":
            return js(200, {"categories": [{"sourcedId": "cat1", "filter": req.q("filter")}]})
        if req.method == "PUT" and path.startswith("/lineItems/"):
            body = req.json()
            if body["lineItem"].get("category", {}).get("sourcedId") == "missing":
                if self.error_style == "json":
                    return js(
                        400,
                        {
                            "imsx_codeMajor": "failure",
                            "imsx_severity": "error",
                            "imsx_description": "Grading Category Not Found",
                        },
                    )
                return text(400, "Grading Category Not Found")
            self.put_bodies.append((path, body))
            return js(201, body)
        if req.method == "PUT" and path.startswith("/results/"):
            self.put_bodies.append((path, req.json()))
            return 204, {}, b""
        if req.method == "DELETE" and path.startswith("/lineItems/"):
            return (204, {}, b"") if path.endswith("/li-1") else text(404, "Not Found")
        return text(404, f"no route {req.method} {path}")


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


# ====================================================================== test_connection


def test_test_connection_both(canvas_hook, aspen_hook):
    with StubServer(scripted(js(200, [{"id": 1}]))) as srv:
        ok, msg = canvas_hook(srv.url).test_connection()
    assert ok and "account 1" in msg
    assert srv.requests[0].q("per_page") == "1"
    with StubServer(scripted(text(401, "Invalid access token."))) as srv:
        ok, msg = canvas_hook(srv.url).test_connection()
    assert not ok and "401" in msg and CANVAS_TOKEN not in msg
    with StubServer(AspenStub()) as srv:
        ok, msg = aspen_hook(srv.url).test_connection()
    assert ok, msg
    assert srv.requests[-1].q("limit") == "1"
    with StubServer(AspenStub()) as srv:
        ok, msg = aspen_hook(srv.url, secret="not-the-secret-99").test_connection()
    assert not ok and "401" in msg and "not-the-secret-99" not in msg


def test_test_connection_reports_config_errors(set_conn):
    set_conn("canvas_test", "canvas", "http://remote.example", password=CANVAS_TOKEN)
    ok, msg = CanvasHook(canvas_conn_id="canvas_test").test_connection()
    assert not ok and "allow_insecure_http" in msg


# ====================================================================== secrets in logs


def test_no_secret_in_logs(canvas_hook, aspen_hook, caplog, capsys):
    caplog.set_level(logging.DEBUG)
    stub = AspenStub(items=7)
    with (
        StubServer(canvas_pages(30, 10, path="/api/v1/courses/1/sections")) as csrv,
        StubServer(stub) as asrv,
    ):
        canvas = canvas_hook(csrv.url, page_size=10, record_sleep=False)
        canvas.list_sections(1)
        canvas.test_connection()
        aspen = aspen_hook(asrv.url, page_size=3, record_sleep=False)
        aspen.list_line_items("c 1")
        stub.revoke_all()
        aspen.list_line_items("c 1")
        with pytest.raises(AspenApiError):
            aspen.put_line_item("x", {"category": {"sourcedId": "missing"}})
    out = capsys.readouterr()
    everything = caplog.text + out.out + out.err
    assert "page(s)" in everything  # the logs were captured at all
    tokens = [f"access-token-{i:04d}-zz" for i in range(1, stub.issued + 1)]
    for secret in [CANVAS_TOKEN, ASPEN_SECRET, *tokens]:
        assert secret not in everything


def test_api_error_is_the_common_base():
    assert issubclass(CanvasApiError, ApiError) and issubclass(AspenApiError, ApiError)
    assert not issubclass(CanvasApiError, AspenApiError)


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


def test_access_tokens_are_masked(aspen_hook):
    from airflow.sdk.log import redact

    stub = AspenStub()
    with StubServer(stub) as srv:
        hook = aspen_hook(srv.url)
        token = hook.access_token()
    assert token == "access-token-0001-zz"
    assert token not in str(redact(f"Authorization: Bearer {token}"))
    assert ASPEN_SECRET not in str(redact(f"client_secret={ASPEN_SECRET}"))


def test_transport_error_text_is_short_and_has_no_query(canvas_hook):
    import socket

    with socket.socket() as s:  # a port with nobody listening
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    hook = canvas_hook(f"http://127.0.0.1:{port}", max_attempts=2)
    with pytest.raises(CanvasApiError) as info:
        hook.list_submissions(1, graded_since="2026-01-01T00:00:00Z")
    text = str(info.value)
    assert info.value.status is None and info.value.retryable and info.value.attempts == 2
    assert "Connection refused" in text or "refused" in text.lower()
    assert "graded_since" not in text and "?" not in text and "object at 0x" not in text


# ====================================================================== environment (proxies, CA bundle)


def _clear_proxy_env(monkeypatch):
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY", "http_proxy", "https_proxy", "all_proxy",
                 "no_proxy", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):
        monkeypatch.delenv(name, raising=False)


def test_a_proxy_from_the_environment_carries_every_request(canvas_hook, monkeypatch):
    # the hook reads the environment once per session: the proxy must still carry each page
    _clear_proxy_env(monkeypatch)
    with StubServer(canvas_pages(25, 10, path="/api/v1/courses/5/sections")) as proxy:
        monkeypatch.setenv("HTTP_PROXY", proxy.url)
        hook = canvas_hook("http://canvas.district.example", page_size=10, allow_insecure_http=True)
        assert [s["id"] for s in hook.list_sections(5)] == list(range(25))
    assert len(proxy.requests) == 3
    assert all(r.raw_path.startswith("http://canvas.district.example/api/v1/courses/5/sections")
               for r in proxy.requests)


def test_no_proxy_from_the_environment_is_respected(canvas_hook, monkeypatch):
    _clear_proxy_env(monkeypatch)
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")  # nothing listens there
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    with StubServer(scripted(js(200, [{"id": 1}]))) as srv:
        assert canvas_hook(srv.url).list_sections(5) == [{"id": 1}]
    assert srv.requests[0].raw_path.startswith("/api/v1/courses/5/sections")


def test_a_ca_bundle_from_the_environment_applies_unless_verification_is_off(set_conn, monkeypatch, tmp_path):
    _clear_proxy_env(monkeypatch)
    bundle = tmp_path / "district-ca.pem"
    bundle.write_text("")
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(bundle))
    set_conn("canvas_test", "canvas", "https://d.instructure.com", password=CANVAS_TOKEN)
    assert CanvasHook(canvas_conn_id="canvas_test").get_conn().verify == str(bundle)
    set_conn("canvas_test", "canvas", "https://d.instructure.com", password=CANVAS_TOKEN, verify=False)
    assert CanvasHook(canvas_conn_id="canvas_test").get_conn().verify is False
