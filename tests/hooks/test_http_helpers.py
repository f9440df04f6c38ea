"""Pure helpers of the hooks: Retry-After, Link, URL safety, typed extras, errors. No server."""

from __future__ import annotations

import pickle
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime

import pytest

from canvas_aspen.hooks._http import (
    ApiError,
    ConnectionConfigError,
    backoff_delay,
    canonical_url,
    is_loopback_host,
    is_retryable_status,
    parse_bool,
    parse_link_header,
    parse_number,
    parse_retry_after,
    parse_timeout,
    parse_verify,
    quote_id,
    scrub,
    url_path,
    validate_base_url,
)
from canvas_aspen.hooks.aspen import AspenApiError, parse_imsx_status
from canvas_aspen.hooks.canvas import CanvasApiError

# ---------------------------------------------------------------- Retry-After


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("5", 5.0),
        (" 2.5 ", 2.5),
        ("0", 0.0),
        ("-3", 0.0),
        ("", None),
        (None, None),
        ("soon", None),
        ("nan", None),
        ("inf", None),
    ],
)
def test_retry_after_seconds(value, expected):
    assert parse_retry_after(value) == expected


def test_retry_after_http_date():
    now = datetime(2026, 3, 8, 12, 0, 0, tzinfo=timezone.utc)
    later = format_datetime(now + timedelta(seconds=42), usegmt=True)
    assert parse_retry_after(later, now=now) == pytest.approx(42.0)
    earlier = format_datetime(now - timedelta(seconds=42), usegmt=True)
    assert parse_retry_after(earlier, now=now) == 0.0
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now=now) == 0.0


# ---------------------------------------------------------------- Link


def test_link_header_canvas_style():
    value = (
        '<https://c.example/api/v1/courses?page=2&per_page=100>; rel="next",'
        '<https://c.example/api/v1/courses?page=1&per_page=100>; rel="current",'
        '<https://c.example/api/v1/courses?page=1&per_page=100>; rel="first",'
        '<https://c.example/api/v1/courses?page=9&per_page=100>; rel="last"'
    )
    links = parse_link_header(value)
    assert links["next"] == "https://c.example/api/v1/courses?page=2&per_page=100"
    assert links["last"].endswith("page=9&per_page=100")
    assert set(links) == {"next", "current", "first", "last"}


def test_link_header_odd_but_valid_forms():
    # unquoted rel, several rels, other params, commas and semicolons inside the URL, no last
    value = '<https://x/a?ids=1,2;3>; title="t, u"; rel=next,  <https://x/b>; rel="first prev"'
    links = parse_link_header(value)
    assert links["next"] == "https://x/a?ids=1,2;3"
    assert links["first"] == links["prev"] == "https://x/b"
    assert parse_link_header(None) == {} == parse_link_header("")
    assert "next" not in parse_link_header('<https://x/c>; rel="current"')


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


# ---------------------------------------------------------------- typed extras


def test_typed_extras():
    assert parse_bool(None, default=True, name="x") is True
    assert parse_bool("false", default=True, name="x") is False
    assert parse_bool("Yes", default=False, name="x") is True
    assert parse_bool(0, default=True, name="x") is False
    with pytest.raises(ConnectionConfigError):
        parse_bool("maybe", default=True, name="x")
    assert parse_verify(None) is True
    assert parse_verify(False) is False
    assert parse_verify("false") is False
    assert parse_verify("/etc/ssl/district-ca.pem") == "/etc/ssl/district-ca.pem"
    assert parse_number("8", default=1, name="n", integer=True, minimum=1) == 8
    assert parse_number(None, default=100, name="n", integer=True) == 100
    with pytest.raises(ConnectionConfigError, match="integer"):
        parse_number("2.5", default=1, name="n", integer=True)
    with pytest.raises(ConnectionConfigError, match="≥ 1"):
        parse_number(0, default=1, name="n", integer=True, minimum=1)
    with pytest.raises(ConnectionConfigError):
        parse_number(True, default=1, name="n")
    assert parse_timeout(None, default=30) == (30, 30)
    assert parse_timeout(12.5, default=30) == (12.5, 12.5)
    assert parse_timeout([3, 60], default=30) == (3, 60)
    with pytest.raises(ConnectionConfigError):
        parse_timeout([1, 2, 3], default=30)


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


def test_backoff_is_full_jitter_and_capped():
    top = lambda lo, hi: hi  # noqa: E731 - the largest value the jitter may pick
    assert backoff_delay(1, base=0.5, cap=30, rng=top) == 0.5
    assert backoff_delay(3, base=0.5, cap=30, rng=top) == 2.0
    assert backoff_delay(20, base=0.5, cap=30, rng=top) == 30
    assert backoff_delay(3, base=0.5, cap=30, rng=lambda lo, hi: lo) == 0.0
    for attempt in range(1, 10):
        assert 0.0 <= backoff_delay(attempt, base=0.5, cap=4) <= 4


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
        '{"imsx_codeMajor":"failure","imsx_severity":"error","imsx_description":"Grading Category Not Found"}',
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
