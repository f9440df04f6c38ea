"""Pure helpers of the hooks: Retry-After, Link, URL safety, typed extras, errors. No server."""

from __future__ import annotations

import pickle
import time
from email.utils import formatdate

import pytest
import requests
import tenacity

from canvas_aspen.errors import (
    ApiError,
    AspenApiError,
    CanvasApiError,
    ConnectionConfigError,
    parse_imsx_status,
)
from canvas_aspen.hooks._http import (
    canonical_url,
    is_loopback_host,
    is_retryable_status,
    quote_id,
    retry_after_seconds,
    scrub,
    url_path,
    validate_base_url,
    wait_retry_after_or_jitter,
)
from canvas_aspen.hooks._settings import AspenSettings, CanvasSettings, HttpSettings

# ---------------------------------------------------------------- Retry-After (read by urllib3)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("5", 5.0),
        (" 7 ", 7.0),
        ("0", 0.0),
        ("", None),
        (None, None),
        ("soon", None),
        ("nan", None),
        ("inf", None),
        ("2.5", None),  # RFC 9110 delay-seconds are whole: the jittered backoff applies instead
        ("-3", None),
    ],
)
def test_retry_after_seconds(value, expected):
    assert retry_after_seconds(value) == expected


def test_retry_after_http_date():
    assert retry_after_seconds(formatdate(time.time() + 42, usegmt=True)) == pytest.approx(42.0, abs=2)
    assert retry_after_seconds(formatdate(time.time() - 42, usegmt=True)) == 0.0
    assert retry_after_seconds("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0


# ---------------------------------------------------------------- Link (read by requests)


def _links(value: str | None) -> dict[str, str]:
    resp = requests.Response()
    if value is not None:
        resp.headers["Link"] = value
    return {rel: link["url"] for rel, link in resp.links.items()}


def test_link_header_canvas_style():
    """What Canvas sends, as ``Response.links`` (which CanvasHook follows) reads it."""
    value = (
        '<https://c.example/api/v1/courses?page=2&per_page=100>; rel="next",'
        '<https://c.example/api/v1/courses?page=1&per_page=100>; rel="current",'
        '<https://c.example/api/v1/courses?page=1&per_page=100>; rel="first",'
        '<https://c.example/api/v1/courses?page=9&per_page=100>; rel="last"'
    )
    links = _links(value)
    assert links["next"] == "https://c.example/api/v1/courses?page=2&per_page=100"
    assert links["last"].endswith("page=9&per_page=100")
    assert set(links) == {"next", "current", "first", "last"}
    assert _links('<https://x/a?ids=1,2>; title="t, u"; rel=next') == {"next": "https://x/a?ids=1,2"}
    assert _links(None) == {} == _links("")
    assert "next" not in _links('<https://x/c>; rel="current"')


def test_canonical_url_treats_encoded_brackets_alike():
    a = "http://h:1/api/v1/courses/1/enrollments?type%5B%5D=StudentEnrollment&page=2"
    b = "http://h:1/api/v1/courses/1/enrollments?type[]=StudentEnrollment&page=2"
    assert canonical_url(a) == canonical_url(b)
    assert canonical_url(a) != canonical_url(a.replace("page=2", "page=3"))


# ---------------------------------------------------------------- URL safety


@pytest.mark.parametrize("host", ["127.0.0.1", "127.8.9.10", "localhost", "::1", "[::1]", "app.localhost"])
def test_loopback_hosts(host):
    assert is_loopback_host(host)


@pytest.mark.parametrize("host", ["10.0.0.1", "example.com", "128.0.0.1", "", None, "localhost.example.com"])
def test_not_loopback_hosts(host):
    assert not is_loopback_host(host)


def test_base_url_normalised():
    assert validate_base_url("https://d.instructure.com/") == "https://d.instructure.com"
    assert validate_base_url("d.instructure.com") == "https://d.instructure.com"
    assert validate_base_url("https://d.example/aspen/", port=8443) == "https://d.example:8443/aspen"
    assert validate_base_url("https://d.example:9443", port=1) == "https://d.example:9443"
    assert validate_base_url("http://127.0.0.1:8080") == "http://127.0.0.1:8080"
    assert validate_base_url("http://[::1]:8080") == "http://[::1]:8080"
    assert validate_base_url("http://localhost:1/x") == "http://localhost:1/x"


def test_plain_http_refused_unless_loopback_or_allowed():
    with pytest.raises(ConnectionConfigError, match="refusing plain http"):
        validate_base_url("http://district.instructure.com", conn_id="canvas_default")
    assert (
        validate_base_url("http://district.instructure.com", allow_insecure_http=True)
        == "http://district.instructure.com"
    )


@pytest.mark.parametrize(
    ("host", "match"),
    [
        ("", "no host"),
        (None, "no host"),
        ("ftp://x.example", "http\\(s\\) URL"),
        ("https://user:pw@x.example", "credentials"),
        ("https://x.example/?token=abc", "query"),
        ("https://x.example:99999", "port"),
    ],
)
def test_bad_base_urls(host, match):
    with pytest.raises(ConnectionConfigError, match=match):
        validate_base_url(host)


def test_bad_base_url_message_never_echoes_credentials():
    with pytest.raises(ConnectionConfigError) as info:
        validate_base_url("https://user:hunter2secret@x.example")
    assert "hunter2secret" not in str(info.value)


# ---------------------------------------------------------------- typed extras (pydantic models)


def _settings(model=HttpSettings, **extras):
    return model.from_extras(extras, conn_type="canvas", conn_id="canvas_test")


def test_typed_extras():
    assert _settings().allow_insecure_http is False
    assert _settings(allow_insecure_http="Yes").allow_insecure_http is True
    assert _settings(allow_insecure_http=1).allow_insecure_http is True
    with pytest.raises(ConnectionConfigError, match="'allow_insecure_http' must be true or false"):
        _settings(allow_insecure_http="maybe")
    assert _settings().verify is True
    assert _settings(verify=False).verify is False
    assert _settings(verify="false").verify is False
    assert _settings(verify="/etc/ssl/district-ca.pem").verify == "/etc/ssl/district-ca.pem"
    assert _settings(max_concurrency="8").max_concurrency == 8
    assert _settings(page_size=None).page_size == 100
    assert _settings(page_size=" ").page_size == 100
    with pytest.raises(ConnectionConfigError, match="'max_concurrency' must be an integer"):
        _settings(max_concurrency="2.5")
    with pytest.raises(ConnectionConfigError, match="'max_concurrency' must be ≥ 1"):
        _settings(max_concurrency=0)
    with pytest.raises(ConnectionConfigError, match="'backoff_base'"):
        _settings(backoff_base=True)
    with pytest.raises(ConnectionConfigError, match="'backoff_max' must be a finite number"):
        _settings(backoff_max="nan")
    assert _settings().timeout == (30, 30)
    assert _settings(timeout=12.5).timeout == (12.5, 12.5)
    assert _settings(timeout=[3, 60]).timeout == (3, 60)
    with pytest.raises(ConnectionConfigError, match="'timeout' must be a number or \\[connect, read\\]"):
        _settings(timeout=[1, 2, 3])


def test_every_bad_extra_is_named_and_no_value_is_echoed():
    with pytest.raises(ConnectionConfigError) as info:
        _settings(page_size="hunter2-secretish", max_pages=-1, verify=[1])
    text = str(info.value)
    assert text.startswith("Connection 'canvas_test': extra ")
    assert "'page_size' must be an integer" in text
    assert "'max_pages' must be ≥ 1" in text and "'verify'" in text
    assert "hunter2" not in text


def test_each_hook_reads_its_own_extras():
    assert _settings(CanvasSettings, account_id=7).account_id == "7"
    assert _settings(CanvasSettings, account_id=" ").account_id == "1"
    extras = {"token_path": "token/", "api_path": "/"}
    aspen = AspenSettings.from_extras(extras, conn_type="aspen", conn_id="a")
    assert (aspen.token_path, aspen.api_path, aspen.token_refresh_margin) == ("/token", "", 60.0)
    legacy = AspenSettings.from_extras({"extra__aspen__api_path": "/or"}, conn_type="aspen", conn_id="a")
    assert legacy.api_path == "/or"
    with pytest.raises(ConnectionConfigError, match="'token_path' must be a path such as /oauth/rest/v2.0/"):
        AspenSettings.from_extras({"token_path": "https://x/token"}, conn_type="aspen", conn_id="a")


# ---------------------------------------------------------------- retry policy pieces


@pytest.mark.parametrize(
    ("status", "body", "retryable"),
    [
        (500, "", True),
        (502, "", True),
        (503, "", True),
        (429, "", True),
        (403, "403 Forbidden (Rate Limit Exceeded)", True),
        (403, "user not authorized", False),
        (400, "", False),
        (401, "", False),
        (404, "", False),
        (422, "Validation Exception", False),
    ],
)
def test_retryable_statuses(status, body, retryable):
    assert is_retryable_status(status, body) is retryable


def _after(attempt: int, error: BaseException) -> tenacity.RetryCallState:
    state = tenacity.RetryCallState(retry_object=tenacity.Retrying(), fn=None, args=(), kwargs={})
    state.attempt_number = attempt
    state.set_exception((type(error), error, None))
    return state


def test_backoff_is_full_jitter_and_capped(monkeypatch):
    wait = wait_retry_after_or_jitter(base=0.5, cap=30)
    failed = CanvasApiError("server error", status=503, retryable=True)
    monkeypatch.setattr("random.uniform", lambda lo, hi: hi)  # the largest value the jitter may pick
    assert wait(_after(1, failed)) == 0.5
    assert wait(_after(3, failed)) == 2.0
    assert wait(_after(20, failed)) == 30
    monkeypatch.setattr("random.uniform", lambda lo, hi: lo)
    assert wait(_after(3, failed)) == 0.0
    monkeypatch.undo()
    for attempt in range(1, 10):
        assert 0.0 <= wait_retry_after_or_jitter(base=0.5, cap=4)(_after(attempt, failed)) <= 4


def test_retry_after_wins_over_the_backoff_and_is_capped():
    wait = wait_retry_after_or_jitter(base=0.5, cap=30)
    assert wait(_after(1, CanvasApiError("rate limited", status=429, retry_after=7.0))) == 7.0
    assert wait(_after(1, CanvasApiError("rate limited", status=429, retry_after=3600.0))) == 30


# ---------------------------------------------------------------- ids, paths, scrubbing


def test_quote_id_and_url_path():
    assert quote_id("canvas-a1-s2") == "canvas-a1-s2"
    assert quote_id("a/b c?d#e'") == "a%2Fb%20c%3Fd%23e%27"
    assert quote_id(42) == "42"
    with pytest.raises(ValueError):
        quote_id("")
    assert url_path("https://h/api/v1/x?access_token=SECRET") == "/api/v1/x"


def test_scrub():
    assert scrub("token abcd1234 here abcd1234", ["abcd1234", None, ""]) == "token *** here ***"
    assert scrub("short ab", ["ab"]) == "short ab"  # too short to be a secret worth masking


# ---------------------------------------------------------------- errors


def test_error_text_names_request_never_query():
    err = CanvasApiError(
        "not found",
        method="GET",
        path=url_path("https://h/api/v1/courses/9?access_token=SECRET"),
        endpoint="get_course",
        status=404,
        body='{"errors":[{"message":"The specified resource does not exist."}]}',
    )
    text = str(err)
    assert "SECRET" not in text and "access_token" not in text
    assert "Canvas GET /api/v1/courses/9 [get_course]: HTTP 404" in text
    assert "The specified resource does not exist." in text
    assert isinstance(err, ApiError)
    assert "SECRET" not in repr(err)


def test_error_body_is_truncated():
    err = CanvasApiError("server error", status=500, body="x" * 10_000)
    assert len(err.body) == 2000
    assert len(str(err)) < 600


def test_errors_pickle_round_trip():
    err = AspenApiError(
        "rejected",
        method="PUT",
        path="/ims/oneroster/v1p1/results/r1",
        status=422,
        body="Validation Exception",
    )
    err.attempts = 3
    back = pickle.loads(pickle.dumps(err))
    assert type(back) is AspenApiError
    assert (back.status, back.message, back.attempts) == (422, "Validation Exception", 3)


def test_aspen_error_plain_text():
    err = AspenApiError(
        "rejected", method="PUT", path="/x/lineItems/l1", status=400, body="Grading Category Not Found"
    )
    assert err.message == "Grading Category Not Found"
    assert err.imsx_code_major is None
    assert "Grading Category Not Found" in str(err)


@pytest.mark.parametrize(
    "body",
    [
        '{"imsx_codeMajor":"failure","imsx_severity":"error",'
        '"imsx_description":"Grading Category Not Found"}',
        '{"imsx_statusInfo":{"imsx_codeMajor":"failure","imsx_severity":"error",'
        '"imsx_description":"Grading Category Not Found","imsx_CodeMinor":{"imsx_codeMinorField":'
        '[{"imsx_codeMinorFieldName":"TargetEndSystem","imsx_codeMinorFieldValue":"invalid_data"}]}}}',
        '{"statusInfoSet":[{"imsx_codeMajor":"failure","imsx_severity":"error",'
        '"imsx_description":"Grading Category Not Found"}]}',
    ],
)
def test_aspen_error_imsx_json(body):
    err = AspenApiError("rejected", method="PUT", path="/x/lineItems/l1", status=400, body=body)
    assert err.imsx_code_major == "failure"
    assert err.imsx_severity == "error"
    assert err.imsx_description == "Grading Category Not Found"
    assert err.message == "Grading Category Not Found"
    assert "failure/error: Grading Category Not Found" in str(err)


def test_imsx_parse_is_defensive():
    assert parse_imsx_status("not json") is None
    assert parse_imsx_status("[1, 2]") is None
    assert parse_imsx_status('{"error": "x"}') is None
    assert parse_imsx_status("") is None
    parsed = parse_imsx_status('{"imsx_codeMajor":"failure","imsx_CodeMinor":"unknownobject"}')
    assert parsed == {
        "code_major": "failure",
        "severity": None,
        "description": None,
        "code_minor": "unknownobject",
    }
