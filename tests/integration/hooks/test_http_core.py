"""The HTTP machinery both hooks share (``hooks/_http.py``), over real HTTP against a scripted
stub on 127.0.0.1: typed Connection extras, the retry policy (backoff, ``Retry-After``, the
shared throttle), bounded concurrency, secrets kept out of errors and logs, the environment.

Deterministic: each test scripts the exact answers (pages, faults) it needs. Canvas is the
vehicle where one hook is enough; each hook's own behaviour is in ``test_canvas_hook.py``
and ``test_aspen_hook.py``.
"""

from __future__ import annotations

import logging
import threading
import time

import pytest

from canvas_aspen.hooks._http import ApiError, ConnectionConfigError
from canvas_aspen.hooks.aspen import AspenApiError, AspenHook
from canvas_aspen.hooks.canvas import CanvasApiError, CanvasHook

from .hook_stub_server import (
    ASPEN_SECRET,
    CANVAS_TOKEN,
    AspenStub,
    StubServer,
    canvas_pages,
    js,
    scripted,
    text,
)

pytestmark = pytest.mark.timeout(60)


# ==================== connection settings (extras, TLS, the session)


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
    assert adapter._pool_maxsize == 12 and adapter._pool_block  # the pool caps requests in flight
    assert adapter.max_retries.total == 0


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
    aspen_fields = {"token_path", "api_path", "column_code_length", "student_id_field"}
    assert aspen_fields <= set(info["aspen"]["conn-fields"])


def test_providers_manager_reads_the_form_declaratively():
    from airflow.providers_manager import ProvidersManager

    behaviours = ProvidersManager().field_behaviours
    assert behaviours["canvas"]["relabeling"]["password"] == "API Token"
    assert behaviours["aspen"]["relabeling"]["password"] == "Client Secret"


# ==================== retry policy


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
    with StubServer(scripted(text(429, "slow down", {"Retry-After": "1"}), js(200, []))) as srv:
        hook = canvas_hook(srv.url, backoff_max=2)  # the recorder sleeps nothing: the test stays fast
        hook.list_sections(1)
    # the hook asked to sleep exactly what the server said (1 s is under backoff_max 2)
    assert 1.0 in hook._sleep.calls


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


# ==================== bounded concurrency


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


# ==================== secrets and errors


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


def test_error_bodies_are_scrubbed_of_the_token(canvas_hook):
    with StubServer(scripted(text(400, f"bad token {CANVAS_TOKEN}"))) as srv:
        hook = canvas_hook(srv.url)
        with pytest.raises(CanvasApiError) as info:
            hook.list_sections(1)
    assert CANVAS_TOKEN not in str(info.value) and CANVAS_TOKEN not in info.value.body


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


# ==================== environment (proxies, CA bundle)


def _clear_proxy_env(monkeypatch):
    for name in (
        "HTTP_PROXY",
        "HTTPS_PROXY",
        "ALL_PROXY",
        "NO_PROXY",
        "http_proxy",
        "https_proxy",
        "all_proxy",
        "no_proxy",
        "REQUESTS_CA_BUNDLE",
        "CURL_CA_BUNDLE",
    ):
        monkeypatch.delenv(name, raising=False)


def test_a_proxy_from_the_environment_carries_every_request(canvas_hook, monkeypatch):
    # the hook reads the environment once per session: the proxy must still carry each page
    _clear_proxy_env(monkeypatch)
    with StubServer(canvas_pages(25, 10, path="/api/v1/courses/5/sections")) as proxy:
        monkeypatch.setenv("HTTP_PROXY", proxy.url)
        hook = canvas_hook("http://canvas.district.example", page_size=10, allow_insecure_http=True)
        assert [s["id"] for s in hook.list_sections(5)] == list(range(25))
    assert len(proxy.requests) == 3
    assert all(
        r.raw_path.startswith("http://canvas.district.example/api/v1/courses/5/sections")
        for r in proxy.requests
    )


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


# ==================== what the stages use of the hooks


def test_the_hooks_provide_what_the_stages_call():
    """The stages are typed against ``hooks.protocols``; the real hooks must keep every method
    and property named there (a rename in a hook fails here, not in a nightly run)."""
    from canvas_aspen.hooks.protocols import AspenApi, CanvasApi

    for protocol, hook in ((CanvasApi, CanvasHook), (AspenApi, AspenHook)):
        members = {name for name in dir(protocol) if not name.startswith("_") and name not in dir(object)}
        missing = sorted(name for name in members if not hasattr(hook, name))
        assert not missing, f"{hook.__name__} lacks {missing}"
    assert isinstance(CanvasHook(canvas_conn_id="unused"), CanvasApi)


def test_the_stages_and_the_errors_import_no_airflow():
    """Stages and errors stay plain modules: importing them loads no Airflow (they catch
    ApiError by type and name the hooks' Protocols only for the type checker)."""
    import subprocess
    import sys

    code = (
        "import sys; import canvas_aspen.stages, canvas_aspen.errors, canvas_aspen.hooks.protocols; "
        "print(sorted(m for m in sys.modules if m == 'airflow' or m.startswith('airflow.')))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
    )
    assert out.stdout.strip() == "[]"


# ==================== the one paging loop


def test_a_listing_longer_than_max_pages_stops_with_an_error_on_both_hooks(canvas_hook, aspen_hook):
    """A server that never ends a listing (a fresh next link, a full page at every offset) is
    stopped after ``max_pages`` pages by the loop both hooks share, naming the endpoint."""

    def endless_links(req):
        page = int(req.q("page") or 1)
        nxt = f"http://{req.headers['Host']}/api/v1/courses/1/sections?page={page + 1}"
        return js(200, [{"id": page}], {"Link": f'<{nxt}>; rel="next"'})

    with StubServer(endless_links) as srv:
        with pytest.raises(CanvasApiError, match="more than max_pages=3 pages") as info:
            canvas_hook(srv.url, max_pages=3).list_sections(1)
    assert info.value.endpoint == "list_sections" and len(srv.requests) == 3

    stub = AspenStub()

    def endless_offsets(req):
        if req.path.endswith("/auth"):
            return stub(req)
        offset = int(req.q("offset") or 0)
        return js(200, {"gradingPeriods": [{"sourcedId": f"gp{offset + i}"} for i in range(2)]})

    with StubServer(endless_offsets) as srv:
        with pytest.raises(AspenApiError, match="more than max_pages=3 pages") as info:
            aspen_hook(srv.url, max_pages=3, page_size=2).list_grading_periods()
    assert info.value.endpoint == "list_grading_periods"
    assert [r.q("offset") for r in srv.requests if r.method == "GET"] == ["0", "2", "4"]
