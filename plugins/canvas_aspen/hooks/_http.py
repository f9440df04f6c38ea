"""Shared HTTP machinery of the Canvas and Aspen hooks, written once.

The generic parts are the libraries': the retry loop and full-jitter backoff are tenacity's,
``Retry-After`` is read by urllib3, ``Link`` headers by requests (``Response.links``), and
requests in flight are bounded by the connection pool (``pool_block``). What is ours:

* :func:`validate_base_url`, :func:`canonical_url`, :func:`scrub`, … – small pure helpers;
* :class:`wait_retry_after_or_jitter` – the server's ``Retry-After``, else full jitter;
* :class:`RestApiHook` – the base hook: the Connection read lazily, typed settings
  (:mod:`canvas_aspen.hooks._settings`), one pooled :class:`requests.Session`, the retry
  policy (bounded attempts and sleep), the shared slow-down on ``X-Rate-Limit-Remaining`` and
  after a throttle's ``Retry-After``, one paging loop (:meth:`RestApiHook.paginate_pages`)
  and :meth:`RestApiHook.map_concurrent`.

Errors are :class:`~canvas_aspen.errors.ApiError` (no Airflow in that module; re-exported
here). Nothing here logs or raises a secret: errors carry the method, the URL *path* (never
the query string, never a header), the status and the (truncated, scrubbed) response body.
"""

from __future__ import annotations

import ipaddress
import re
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from functools import cached_property
from http.cookiejar import DefaultCookiePolicy
from typing import Any, ClassVar, Literal, TypeVar
from urllib.parse import quote, unquote, unquote_plus, urlsplit, urlunsplit

import requests
import tenacity
from airflow.sdk import BaseHook, Connection
from requests.adapters import HTTPAdapter
from requests.auth import AuthBase
from urllib3.exceptions import InvalidHeader
from urllib3.util import Retry

from canvas_aspen.errors import ApiError, ConnectionConfigError
from canvas_aspen.hooks._settings import HttpSettings

__all__ = ["ApiError", "ConnectionConfigError", "HttpSettings", "RestApiHook"]

T = TypeVar("T")
R = TypeVar("R")
Params = Sequence[tuple[str, Any]]
PageRequest = tuple[str, Params | None]
"""What the paging loop GETs next: a path or URL on the hook's host and its query (or None)."""

_RETRY_AFTER = Retry(total=0)  # only its Retry-After parser is used; retries are tenacity's

# --------------------------------------------------------------------------------------
# Pure helpers
# --------------------------------------------------------------------------------------


def retry_after_seconds(value: str | None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or an HTTP date, read by
    urllib3); ``None`` for a missing or invalid value, never a negative number."""
    if value is None or not value.strip():
        return None
    try:
        return float(_RETRY_AFTER.parse_retry_after(value))
    except InvalidHeader:
        return None


def is_loopback_host(hostname: str | None) -> bool:
    """True for ``localhost``, 127.0.0.0/8 and ::1."""
    if not hostname:
        return False
    name = hostname.strip("[]").rstrip(".").lower()
    if name == "localhost" or name.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def validate_base_url(
    host: str | None,
    *,
    port: int | None = None,
    allow_insecure_http: bool = False,
    conn_id: str = "?",
) -> str:
    """Normalise and check a Connection's host into a base URL (no trailing slash).

    * no scheme → ``https://``;
    * only ``http``/``https``; no user info, query or fragment in the URL;
    * ``http://`` only to a loopback host, unless ``allow_insecure_http``.
    """
    if not host or not host.strip():
        raise ConnectionConfigError(f"Connection {conn_id!r} has no host (the base URL, e.g. https://…)")
    raw = host.strip()
    if "://" not in raw:
        raw = "https://" + raw
    parts = urlsplit(raw)
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        raise ConnectionConfigError(f"Connection {conn_id!r}: host must be an http(s) URL, got {scheme}://")
    if parts.username or parts.password:
        raise ConnectionConfigError(
            f"Connection {conn_id!r}: put credentials in the login/password fields, not in the host URL"
        )
    if parts.query or parts.fragment:
        raise ConnectionConfigError(f"Connection {conn_id!r}: host URL must not have a query or fragment")
    if not parts.hostname:
        raise ConnectionConfigError(f"Connection {conn_id!r}: host URL has no host name")
    try:
        url_port = parts.port
    except ValueError as exc:
        raise ConnectionConfigError(f"Connection {conn_id!r}: invalid port in host URL") from exc
    netloc = parts.netloc
    if port and url_port is None:
        netloc = f"{netloc}:{int(port)}"
    if scheme == "http" and not is_loopback_host(parts.hostname) and not allow_insecure_http:
        raise ConnectionConfigError(
            f"Connection {conn_id!r}: refusing plain http:// to non-loopback host {parts.hostname!r} "
            "(the credentials would travel in clear text); use https:// or set extra "
            '"allow_insecure_http": true'
        )
    return urlunsplit((scheme, netloc, parts.path.rstrip("/"), "", ""))


def quote_id(value: Any) -> str:
    """A path segment from an id: everything but unreserved characters percent-encoded."""
    text = str(value)
    if not text:
        raise ValueError("an id used in a URL path must not be empty")
    return quote(text, safe="")


def url_path(url: str) -> str:
    """The path of a URL, for logs and errors (never the query string)."""
    return urlsplit(url).path or "/"


def canonical_url(url: str) -> str:
    """A URL in one spelling (decoded path and query), to detect Link loops. The query is
    decoded as one string, not parsed and re-encoded: a Canvas next link carries every
    parameter of the listing (40 ``assignment_ids[]``), and re-encoding it twice a page was a
    third of the client's time per page. Two spellings of one page compare equal; pages of
    one listing differ in their page parameter."""
    parts = urlsplit(url)
    return urlunsplit(
        (parts.scheme.lower(), parts.netloc.lower(), unquote(parts.path), unquote_plus(parts.query), "")
    )


def scrub(text: str, secrets: Iterable[str | None]) -> str:
    """Replace every secret (≥ 4 characters) in *text* with ``***``."""
    for secret in secrets:
        if secret and len(secret) >= 4 and secret in text:
            text = text.replace(secret, "***")
    return text


def is_rate_limited_403(status: int, body: str) -> bool:
    return status == 403 and "rate limit exceeded" in body.lower()


def is_retryable_status(status: int, body: str = "") -> bool:
    """5xx, 429 and Canvas's older throttle answer (403 "Rate Limit Exceeded")."""
    return status >= 500 or status == 429 or is_rate_limited_403(status, body)


class wait_retry_after_or_jitter(tenacity.wait.wait_base):  # noqa: N801 - tenacity's naming
    """Tenacity's wait: the ``Retry-After`` of the error when the server said one (capped at
    *cap*), else exponential backoff with full jitter (``tenacity.wait_full_jitter``)."""

    def __init__(self, *, base: float, cap: float) -> None:
        self.cap = cap
        self.jitter = tenacity.wait_full_jitter(multiplier=base, max=cap)

    def __call__(self, retry_state: tenacity.RetryCallState) -> float:
        exc = retry_state.outcome.exception() if retry_state.outcome else None
        if isinstance(exc, ApiError) and exc.retry_after is not None:
            return min(exc.retry_after, self.cap)
        return self.jitter(retry_state)


def _objects(value: Any) -> bool:
    """A JSON list of objects (a page of any listing)."""
    return isinstance(value, list) and all(isinstance(x, dict) for x in value)


class BearerAuth(AuthBase):
    """``Authorization: Bearer …`` from a callable; the token never shows in a repr."""

    def __init__(self, token: str) -> None:
        self._token = token

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        request.headers["Authorization"] = f"Bearer {self._token}"
        return request

    def __repr__(self) -> str:
        return "BearerAuth(***)"


_OBJECT_REPR = re.compile(r"<[^>]*>:\s*")
_QUERY = re.compile(r"\?[^\s)'\"]*")


def _transport_reason(exc: BaseException) -> str:
    """A short, safe reason for a transport error: the innermost cause, no object reprs, no query."""
    inner: BaseException = exc
    for _ in range(6):
        nxt = getattr(inner, "reason", None)
        if not isinstance(nxt, BaseException) and inner.args and isinstance(inner.args[0], BaseException):
            nxt = inner.args[0]
        if not isinstance(nxt, BaseException):
            break
        inner = nxt
    text = _QUERY.sub("", _OBJECT_REPR.sub("", str(inner))).strip()
    name = type(exc).__name__
    return f"{name}: {text[:160]}" if text else name


def register_secret(secret: str | None) -> None:
    """Register a secret with Airflow's secrets masker (task process and supervisor)."""
    if not secret:
        return
    from airflow.sdk.log import mask_secret

    mask_secret(secret)


# --------------------------------------------------------------------------------------
# The base hook
# --------------------------------------------------------------------------------------


class RestApiHook(BaseHook):
    """Base of :class:`~canvas_aspen.hooks.canvas.CanvasHook` and
    :class:`~canvas_aspen.hooks.aspen.AspenHook`.

    Subclasses set ``error_class``, ``system``, ``settings_class`` (the extras they read),
    implement :meth:`_check_connection` (fail fast on missing credentials) and :meth:`_auth`
    (the auth of one request).
    """

    error_class: type[ApiError] = ApiError
    system: str = "API"
    #: the typed extras of this hook's Connection (documented in docs/connections.md)
    settings_class: ClassVar[type[HttpSettings]] = HttpSettings
    #: the Connection form of this hook's type (hooks/_ui.py)
    ui_field_behaviour: ClassVar[dict[str, Any]] = {}

    def __init__(self, conn_id: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._conn_id = conn_id
        self._state_lock = threading.Lock()
        self._not_before = 0.0  # monotonic time before which no request is sent (throttle)
        self._counters: dict[str, int] = {
            "requests": 0,
            "retries": 0,
            "pages": 0,
            "throttle_waits": 0,
            "token_fetches": 0,
        }
        self._sleep: Callable[[float], None] = time.sleep

    def __repr__(self) -> str:
        return f"{type(self).__name__}(conn_id={self._conn_id!r})"

    @classmethod
    def get_ui_field_behaviour(cls) -> dict[str, Any]:
        """The Connection form (Airflow's hook convention): a copy of ``ui_field_behaviour``."""
        return {k: (list(v) if isinstance(v, list) else dict(v)) for k, v in cls.ui_field_behaviour.items()}

    # ---- connection and settings (lazy) -----------------------------------------------

    @cached_property
    def connection(self) -> Connection:
        """The Airflow Connection, read on first use; fails fast on missing host/credentials."""
        conn = self.get_connection(self._conn_id)
        for secret in self._secrets_of(conn):
            register_secret(secret)
        if not conn.host:
            raise ConnectionConfigError(
                f"Connection {self._conn_id!r} has no host: set it to the {self.system} base URL, "
                "e.g. https://district.example.com"
            )
        self._check_connection(conn)
        return conn

    def _secrets_of(self, conn: Connection) -> list[str]:
        return [conn.password] if conn.password else []

    def _check_connection(self, conn: Connection) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    @cached_property
    def settings(self) -> HttpSettings:
        """The typed extras (a ``settings_class``) and the base URL; a bad value raises
        :class:`ConnectionConfigError` naming the field."""
        conn, cid = self.connection, self._conn_id
        extras = conn.extra_dejson  # parsed once here (Airflow re-parses and re-masks on each access)
        parsed = self.settings_class.from_extras(
            extras if isinstance(extras, dict) else {}, conn_type=self.conn_type, conn_id=cid
        )
        base_url = validate_base_url(
            conn.host, port=conn.port, allow_insecure_http=parsed.allow_insecure_http, conn_id=cid
        )
        if parsed.verify is False:
            self.log.warning(
                "TLS certificate verification is OFF for connection %s (extra verify=false)", cid
            )
        if parsed.allow_insecure_http and base_url.startswith("http://"):
            self.log.warning("Connection %s uses plain http:// (extra allow_insecure_http=true)", cid)
        return parsed.model_copy(update={"base_url": base_url})

    @cached_property
    def session(self) -> requests.Session:
        """One pooled session, safe to share between the threads of :meth:`map_concurrent`;
        at most ``max_concurrency`` requests of this hook are in flight at once."""
        from canvas_aspen import __version__

        s = self.settings
        session = requests.Session()
        # Retries are ours (tenacity); the adapter must not retry on its own. Its pool holds
        # max_concurrency connections and a request waits for a free one (pool_block): that
        # caps requests in flight from this hook, whatever threads call it (a connection goes
        # back to the pool once its answer is read; requests reads every answer in full).
        adapter = HTTPAdapter(
            pool_connections=4, pool_maxsize=s.max_concurrency, pool_block=True, max_retries=0
        )
        session.mount("https://", adapter)
        session.mount("http://", adapter)
        session.verify = s.verify
        # requests reads the environment (proxy variables, REQUESTS_CA_BUNDLE/CURL_CA_BUNDLE)
        # again on every request, a sixth of the client's time per Canvas page; a hook talks to
        # one host, so it is read once here, with the same outcome, and the session stops asking.
        env = session.merge_environment_settings(s.base_url, {}, None, s.verify, None)
        session.proxies.update(env["proxies"])
        session.verify = env["verify"]
        session.trust_env = False
        # Token auth only: no cookies kept between requests (stateless, and no shared jar).
        session.cookies.set_policy(DefaultCookiePolicy(allowed_domains=[]))
        session.headers.update(
            {"Accept": "application/json", "User-Agent": f"canvas-aspen-passback/{__version__}"}
        )
        return session

    def get_conn(self) -> requests.Session:
        """The configured :class:`requests.Session` (Airflow hook convention)."""
        return self.session

    @property
    def stats(self) -> dict[str, int]:
        """Counters of this hook: requests, retries, pages, throttle_waits, token_fetches."""
        with self._state_lock:
            return dict(self._counters)

    def _count(self, name: str, n: int = 1) -> None:
        with self._state_lock:
            self._counters[name] = self._counters.get(name, 0) + n

    def close(self) -> None:
        """Close pooled connections (the hook stays usable; a new session is made on demand)."""
        session = self.__dict__.pop("session", None)
        if session is not None:
            session.close()

    # ---- the request path ---------------------------------------------------------------

    def _auth(self) -> AuthBase | None:  # pragma: no cover - abstract
        raise NotImplementedError

    def _secret_values(self) -> list[str]:
        """Every secret that must never appear in an error or a log line."""
        conn = self.__dict__.get("connection")
        return self._secrets_of(conn) if conn is not None else []

    def _url(self, url_or_path: str, *, endpoint: str = "") -> str:
        """An absolute URL on this hook's host.

        A path is joined to the base URL. An absolute URL (a ``Link`` from the server) must
        name the same host (and port): the token is never sent anywhere else, and the
        scheme and port of the Connection are kept (no downgrade to http).
        """
        base = self.settings.base_url
        if "://" not in url_or_path:
            if not url_or_path.startswith("/"):
                url_or_path = "/" + url_or_path
            return base + url_or_path
        b, u = urlsplit(base), urlsplit(url_or_path)
        default_port = {"http": 80, "https": 443}
        base_port = b.port or default_port.get(b.scheme)
        if (u.hostname or "").lower() != (b.hostname or "").lower() or (
            u.port is not None and u.port != base_port
        ):
            raise self.error_class(
                f"server sent a link to another host ({u.hostname!r}); refusing to follow it",
                method="GET",
                path=url_path(url_or_path),
                endpoint=endpoint or None,
            )
        return urlunsplit((b.scheme, b.netloc, u.path, u.query, ""))

    def request(
        self,
        method: str,
        url_or_path: str,
        *,
        params: Mapping[str, Any] | Sequence[tuple[str, Any]] | None = None,
        json_body: Any = None,
        data: Mapping[str, Any] | None = None,
        endpoint: str | None = None,
        authenticated: bool = True,
        ok_statuses: Iterable[int] = (),
        max_attempts: int | None = None,
    ) -> requests.Response:
        """One call with the retry policy; returns a 2xx response or raises ``error_class``.

        Retried: connection errors, timeouts, 5xx, 429 and 403 "Rate Limit Exceeded", with
        exponential backoff and full jitter, honouring ``Retry-After`` (capped at
        ``backoff_max``), at most ``max_attempts`` attempts. Anything else raises at once.
        Statuses in *ok_statuses* are returned instead of raised. *max_attempts* overrides
        the Connection's for this call (``test_connection`` keeps the UI's Test button quick).
        """
        s = self.settings
        url = self._url(url_or_path, endpoint=endpoint or "")
        endpoint = endpoint or url_path(url)
        method = method.upper()
        ok = frozenset(ok_statuses)
        attempts = 0

        def attempt() -> requests.Response:
            nonlocal attempts
            attempts += 1
            resp = self._exchange(
                method, url, params=params, json_body=json_body, data=data, authenticated=authenticated
            )
            if resp.status_code < 400 or resp.status_code in ok:
                return resp
            raise self._error_from_response(resp, method, url, endpoint)

        retrying = tenacity.Retrying(
            retry=tenacity.retry_if_exception(lambda e: isinstance(e, ApiError) and e.retryable),
            stop=tenacity.stop_after_attempt(max_attempts or s.max_attempts),
            wait=wait_retry_after_or_jitter(base=s.backoff_base, cap=s.backoff_max),
            before_sleep=self._before_retry_sleep,
            sleep=lambda seconds: self._sleep(seconds),
            reraise=True,
        )
        try:
            return retrying(attempt)
        except ApiError as err:
            err.attempts = attempts
            if err.endpoint is None:
                err.endpoint = endpoint
            raise

    def _before_retry_sleep(self, retry_state: tenacity.RetryCallState) -> None:
        self._count("retries")
        exc = retry_state.outcome.exception() if retry_state.outcome else None
        sleep = retry_state.next_action.sleep if retry_state.next_action else 0.0
        if isinstance(exc, ApiError):
            self.log.warning(
                "%s %s %s: %s (attempt %d/%d); retrying in %.2fs",
                self.system,
                exc.method,
                exc.path,
                f"HTTP {exc.status}" if exc.status is not None else exc.detail,
                retry_state.attempt_number,
                self.settings.max_attempts,
                sleep,
            )

    def _exchange(
        self,
        method: str,
        url: str,
        *,
        params: Any,
        json_body: Any,
        data: Any,
        authenticated: bool,
    ) -> requests.Response:
        """One attempt: auth, send. Subclasses may wrap it (Aspen: one token refresh on 401)."""
        auth = self._auth() if authenticated else None
        return self._send(method, url, auth=auth, params=params, json_body=json_body, data=data)

    def _send(
        self,
        method: str,
        url: str,
        *,
        auth: AuthBase | None,
        params: Any = None,
        json_body: Any = None,
        data: Any = None,
    ) -> requests.Response:
        """Send one request (it waits for a free pooled connection); a transport error becomes
        ``error_class``."""
        s = self.settings
        self._wait_for_throttle()
        path = url_path(url)
        self._count("requests")
        try:
            resp = self.session.request(
                method,
                url,
                params=params,
                json=json_body,
                data=data,
                auth=auth,
                timeout=s.timeout,
                verify=self.session.verify,
            )
        except requests.exceptions.SSLError as exc:
            raise self.error_class(
                f"TLS error ({type(exc).__name__}); check the certificate or the 'verify' extra",
                method=method,
                path=path,
            ) from exc
        except requests.exceptions.Timeout as exc:
            raise self.error_class(
                f"timed out ({_transport_reason(exc)})", method=method, path=path, retryable=True
            ) from exc
        except (requests.exceptions.ConnectionError, requests.exceptions.ChunkedEncodingError) as exc:
            raise self.error_class(
                f"connection failed ({_transport_reason(exc)})", method=method, path=path, retryable=True
            ) from exc
        except requests.exceptions.RequestException as exc:
            raise self.error_class(
                f"request failed ({type(exc).__name__})", method=method, path=path
            ) from exc
        self._observe_rate_limit(resp)
        return resp

    # ---- throttling ---------------------------------------------------------------------

    def _delay_all(self, seconds: float) -> None:
        """No request from this hook is sent for the next *seconds* (shared by all threads)."""
        if seconds <= 0:
            return
        with self._state_lock:
            self._not_before = max(self._not_before, time.monotonic() + seconds)

    def _wait_for_throttle(self) -> None:
        with self._state_lock:
            delay = self._not_before - time.monotonic()
        if delay > 0:
            self._count("throttle_waits")
            self._sleep(delay)

    def _observe_rate_limit(self, resp: requests.Response) -> None:
        """Slow down before the server throttles: ``X-Rate-Limit-Remaining`` below the threshold."""
        s = self.settings
        raw = resp.headers.get("X-Rate-Limit-Remaining")
        if raw is None or s.rate_limit_threshold <= 0:
            return
        try:
            remaining = float(raw)
        except ValueError:
            return
        if remaining < s.rate_limit_threshold:
            fraction = 1.0 - max(remaining, 0.0) / s.rate_limit_threshold
            delay = s.rate_limit_max_sleep * fraction
            self.log.debug(
                "%s rate limit low (%.1f remaining < %.1f); pausing %.2fs",
                self.system,
                remaining,
                s.rate_limit_threshold,
                delay,
            )
            self._delay_all(delay)

    # ---- errors and answers -------------------------------------------------------------

    def _make_error(self, detail: str, **kwargs: Any) -> ApiError:
        """Build ``error_class``; Aspen overrides it to parse OneRoster ``imsx_*`` fields."""
        return self.error_class(detail, **kwargs)

    def _error_from_response(self, resp: requests.Response, method: str, url: str, endpoint: str) -> ApiError:
        status = resp.status_code
        body = scrub(resp.text or "", self._secret_values())
        retryable = is_retryable_status(status, body)
        retry_after = retry_after_seconds(resp.headers.get("Retry-After")) if retryable else None
        if retry_after is not None and (status == 429 or is_rate_limited_403(status, body)):
            self._delay_all(min(retry_after, self.settings.backoff_max))
        if status == 429 or is_rate_limited_403(status, body):
            detail = "rate limited"
        elif status >= 500:
            detail = "server error"
        elif status == 401:
            detail = "unauthorized (check the credentials of the Connection)"
        elif status == 403:
            detail = "forbidden"
        elif status == 404:
            detail = "not found"
        else:
            detail = f"rejected ({resp.reason or 'client error'})"
        return self._make_error(
            detail,
            method=method,
            path=url_path(url),
            endpoint=endpoint,
            status=status,
            body=body,
            retryable=retryable,
            retry_after=retry_after,
        )

    def _decode_json(self, resp: requests.Response, method: str, endpoint: str) -> Any:
        """The JSON of a response, or ``error_class`` naming the endpoint."""
        try:
            return resp.json()
        except ValueError:
            ctype = resp.headers.get("Content-Type", "?")
            raise self._make_error(
                f"answer is not JSON (Content-Type {ctype})",
                method=method,
                path=url_path(resp.request.url if resp.request is not None else resp.url),
                endpoint=endpoint,
                status=resp.status_code,
                body=scrub(resp.text or "", self._secret_values()),
            ) from None

    def _shape_error(self, what: str, method: str, url: str, endpoint: str, status: int | None) -> ApiError:
        return self._make_error(
            f"unexpected answer: {what}", method=method, path=url_path(url), endpoint=endpoint, status=status
        )

    def get_json(
        self,
        path: str,
        *,
        params: Mapping[str, Any] | Sequence[tuple[str, Any]] | None = None,
        endpoint: str | None = None,
        valid: Callable[[Any], bool] | None = None,
        shape: str | Callable[[Any], str] = "",
    ) -> Any:
        """GET with retries and decode the JSON answer; an answer *valid* refuses raises an
        error saying *shape* (or ``shape(body)``)."""
        endpoint = endpoint or url_path(path)
        return self._get_json(path, params=params, endpoint=endpoint, valid=valid, shape=shape)[1]

    def _get_json(
        self,
        path: str,
        *,
        params: Any,
        endpoint: str,
        valid: Callable[[Any], bool] | None,
        shape: str | Callable[[Any], str],
    ) -> tuple[requests.Response, Any]:
        resp = self.request("GET", path, params=params, endpoint=endpoint)
        body = self._decode_json(resp, "GET", endpoint)
        if valid is not None and not valid(body):
            what = shape(body) if callable(shape) else shape
            raise self._shape_error(what, "GET", resp.url, endpoint, resp.status_code)
        return resp, body

    # ---- paging -------------------------------------------------------------------------

    def paginate_pages(
        self,
        endpoint: str,
        first: PageRequest,
        *,
        items_of: Callable[[Any], Any],
        shape: str | Callable[[Any], str],
        next_page: Callable[[requests.Response, list[dict]], PageRequest | None],
    ) -> list[dict]:
        """The one paging loop of both hooks: GET *first*, then whatever ``next_page`` says,
        until it says ``None``; the items of all pages, in order.

        ``items_of(body)`` picks a page's items from its JSON (must be a list of objects, else
        an error saying *shape*, or ``shape(body)``); ``next_page(response, items)`` is the
        system's own rule (a Canvas ``Link``, a OneRoster offset) and raises on a loop. More
        than ``max_pages`` pages is an error, never an endless listing.
        """
        items: list[dict] = []
        pages = 0
        request: PageRequest | None = first
        while request is not None:
            url, params = request
            resp, body = self._get_json(
                url, params=params, endpoint=endpoint, valid=lambda b: _objects(items_of(b)), shape=shape
            )
            self._count("pages")
            pages += 1
            page = items_of(body)
            items.extend(page)
            request = next_page(resp, page)
            if request is not None and pages >= self.settings.max_pages:
                raise self._make_error(
                    f"more than max_pages={self.settings.max_pages} pages; stopping",
                    method="GET",
                    path=url_path(request[0]),
                    endpoint=endpoint,
                )
        self.log.info("%s %s: %d item(s) in %d page(s)", self.system, endpoint, len(items), pages)
        return items

    # ---- bounded concurrency ------------------------------------------------------------

    def map_concurrent(
        self,
        fn: Callable[[T], R],
        items: Iterable[T],
        *,
        on_error: Literal["raise", "collect"] = "raise",
        max_workers: int | None = None,
    ) -> list[R | BaseException]:
        """Run ``fn(item)`` for every item on at most ``max_concurrency`` threads.

        Results come back in input order. With ``on_error="raise"`` the first failure in input
        order is raised once the running calls finish, and calls not yet started are
        cancelled. With ``on_error="collect"`` every call runs and a failed call's exception
        stands in its result's place, so one failure never loses the others. Requests in
        flight stay capped by the hook's connection pool whatever *fn* does.
        """
        if on_error not in ("raise", "collect"):
            raise ValueError("on_error must be 'raise' or 'collect'")
        work = list(items)
        if not work:
            return []
        limit = self.settings.max_concurrency
        workers = max(1, min(limit, max_workers or limit, len(work)))
        _ = self.session  # built here, not in racing worker threads

        def collected(item: T) -> R | BaseException:
            try:
                return fn(item)
            except Exception as exc:  # collected, by contract
                return exc

        call = fn if on_error == "raise" else collected
        prefix = f"{self.system.lower()}-hook"
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix=prefix) as pool:
            # Executor.map yields in input order and, when a call raised, cancels the rest
            results: list[R | BaseException] = list(pool.map(call, work))
        failures = sum(isinstance(r, Exception) for r in results) if on_error == "collect" else 0
        if failures:
            self.log.warning("%s: %d of %d concurrent calls failed", self.system, failures, len(work))
        return results

    # ---- test_connection helper ---------------------------------------------------------

    def _test(self, probe: Callable[[], str]) -> tuple[bool, str]:
        """Run *probe* with at most 2 attempts and 2 s backoff (the UI's Test button waits)."""
        try:
            full = self.settings
            self.__dict__["settings"] = full.model_copy(
                update={"max_attempts": min(full.max_attempts, 2), "backoff_max": min(full.backoff_max, 2.0)}
            )
            try:
                return True, probe()
            finally:
                self.__dict__["settings"] = full
        except Exception as exc:  # the UI shows the message; never a secret
            return False, scrub(str(exc), self._secret_values())
