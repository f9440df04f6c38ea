"""AspenHook: Follett Aspen's OneRoster 1.1 gradebook API, for the endpoints of domain.md §2.

Connection (type ``aspen``, default id ``aspen_default``):

* ``host`` – base URL with scheme, e.g. ``https://district.myfollett.com``
* ``login`` / ``password`` – OAuth2 client-credentials client id / client secret
* extras – ``token_path`` (default ``/oauth/rest/v2.0/auth``), ``api_path`` (default
  ``/ims/oneroster/v1p1``), ``max_concurrency`` (8), ``page_size`` (100), ``timeout`` (30),
  ``verify`` (true), ``allow_insecure_http`` (false), ``max_attempts`` (6),
  ``token_refresh_margin`` (60 s) and the tuning knobs of docs/connections.md; what the
  district's Aspen is like: ``column_code_length`` (10; R21) and ``student_id_field``
  (``sourcedId``; R22).

The access token is cached until shortly before ``expires_in``; one thread refreshes it
while the others wait. A 401 gets one fresh token and one more try. Lists page with
``limit``/``offset`` until a short or empty page. PUT and DELETE use sourcedIds chosen by
the caller, so they are idempotent and retried like reads.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from datetime import datetime, timezone
from typing import Any

import requests
from airflow.sdk import Connection

from canvas_aspen.errors import ApiError, AspenApiError, ConnectionConfigError, parse_imsx_status
from canvas_aspen.hooks._http import (
    BearerAuth,
    PageRequest,
    RestApiHook,
    quote_id,
    register_secret,
    url_path,
)
from canvas_aspen.hooks._settings import (
    ASPEN_TOKEN_PATH,
    ONEROSTER_API_PATH,
    STUDENT_ID_FIELDS,
    AspenSettings,
)
from canvas_aspen.hooks._ui import ASPEN_UI_FIELD_BEHAVIOUR

__all__ = [
    "STUDENT_ID_FIELDS",
    "ApiError",
    "AspenApiError",
    "AspenHook",
    "ConnectionConfigError",
    "parse_imsx_status",
]


class AspenHook(RestApiHook):
    """Read classes' categories, line items, results and rosters, and PUT/DELETE gradebook items.

    :param aspen_conn_id: the Airflow Connection id (type ``aspen``).
    """

    conn_name_attr = "aspen_conn_id"
    default_conn_name = "aspen_default"
    conn_type = "aspen"
    hook_name = "Aspen"

    error_class = AspenApiError
    system = "Aspen"
    settings_class = AspenSettings
    settings: AspenSettings

    DEFAULT_TOKEN_PATH = ASPEN_TOKEN_PATH
    DEFAULT_API_PATH = ONEROSTER_API_PATH
    DEFAULT_EXPIRES_IN = 3600.0

    def __init__(self, aspen_conn_id: str = default_conn_name, **kwargs: Any) -> None:
        super().__init__(conn_id=aspen_conn_id, **kwargs)
        self.aspen_conn_id = aspen_conn_id
        self._token_lock = threading.Lock()
        self._token: str | None = None
        self._token_refresh_at = 0.0
        self._issued_tokens: deque[str] = deque(maxlen=8)  # for scrubbing error bodies

    #: the Connection form: "Client ID" / "Client Secret", placeholders, unused fields hidden
    ui_field_behaviour = ASPEN_UI_FIELD_BEHAVIOUR

    # ---- connection ---------------------------------------------------------------------

    def _check_connection(self, conn: Connection) -> None:
        missing = [
            name
            for name, value in (
                ("login (client id)", conn.login),
                ("password (client secret)", conn.password),
            )
            if not value
        ]
        if missing:
            raise ConnectionConfigError(
                f"Connection {self.aspen_conn_id!r} has no {' and no '.join(missing)}: "
                "Aspen needs the OneRoster client credentials"
            )

    def _secret_values(self) -> list[str]:
        return [*super()._secret_values(), *list(self._issued_tokens)]

    @property
    def token_path(self) -> str:
        """Where the client credentials get a token (extra ``token_path``)."""
        return self.settings.token_path

    @property
    def api_path(self) -> str:
        """The root of the OneRoster API on the host (extra ``api_path``; ``""`` for ``/``)."""
        return self.settings.api_path

    @property
    def token_refresh_margin(self) -> float:
        """Seconds before ``expires_in`` at which a cached token is replaced (default 60)."""
        return self.settings.token_refresh_margin

    @property
    def column_code_length(self) -> int:
        """R21: how many leading characters of a line item's title Aspen makes its gradebook
        column code (unique per class); 0 turns the check off (extra ``column_code_length``, 10)."""
        return self.settings.column_code_length

    @property
    def student_id_field(self) -> str:
        """R22: the roster user field that holds what Canvas carries as ``sis_user_id``:
        ``sourcedId`` (default), ``identifier``, ``username`` or ``email`` (extra ``student_id_field``)."""
        return self.settings.student_id_field

    # ---- token --------------------------------------------------------------------------

    def _fetch_token(self) -> tuple[str, float]:
        conn = self.connection
        resp = self.request(
            "POST",
            self.token_path,
            data={
                "grant_type": "client_credentials",
                "client_id": conn.login,
                "client_secret": conn.password,
            },
            endpoint="token",
            authenticated=False,
        )
        body = self._decode_json(resp, "POST", "token")
        token = body.get("access_token") if isinstance(body, dict) else None
        if not isinstance(token, str) or not token:
            raise self._shape_error(
                "no access_token in the token answer", "POST", resp.url, "token", resp.status_code
            )
        register_secret(token)
        self._issued_tokens.append(token)
        self._count("token_fetches")
        try:
            expires_in = float(body.get("expires_in", self.DEFAULT_EXPIRES_IN))
        except (TypeError, ValueError):
            expires_in = self.DEFAULT_EXPIRES_IN
        expires_in = max(expires_in, 0.0)
        margin = min(self.token_refresh_margin, expires_in * 0.2)
        self.log.info("Aspen: access token obtained (expires in %.0fs)", expires_in)
        return token, time.monotonic() + expires_in - margin

    def access_token(self, *, stale: str | None = None) -> str:
        """A valid access token: the cached one, or a fresh one (one fetch, other threads wait).

        :param stale: a token the server refused; a new one is fetched unless another thread
            already replaced it.
        """
        with self._token_lock:
            current = self._token
            if current is not None and current != stale and time.monotonic() < self._token_refresh_at:
                return current
            self._token, self._token_refresh_at = self._fetch_token()
            return self._token

    def _auth(self) -> BearerAuth:
        return BearerAuth(self.access_token())

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
        if not authenticated:
            return super()._exchange(
                method, url, params=params, json_body=json_body, data=data, authenticated=False
            )
        token = self.access_token()
        resp = self._send(method, url, auth=BearerAuth(token), params=params, json_body=json_body, data=data)
        if resp.status_code == 401:
            self.log.info("Aspen %s %s: 401, fetching a fresh token and retrying once", method, url_path(url))
            resp.close()
            token = self.access_token(stale=token)
            resp = self._send(
                method, url, auth=BearerAuth(token), params=params, json_body=json_body, data=data
            )
        return resp

    # ---- paging -------------------------------------------------------------------------

    def paginate(
        self,
        path: str,
        key: str,
        params: list[tuple[str, Any]] | None = None,
        *,
        endpoint: str | None = None,
    ) -> list[dict]:
        """GET ``{api_path}{path}`` page by page (``limit``/``offset``) until a short or empty page.

        :param key: the collection key of the answer (``"lineItems"``, ``"users"``, …).
        """
        endpoint = endpoint or path
        limit = self.settings.page_size
        offset = 0
        previous_ids: list[Any] | None = None

        def next_page(resp: requests.Response, page: list[dict]) -> PageRequest | None:
            nonlocal offset, previous_ids
            if not page or (len(page) < limit and not self._more_than(resp, offset + len(page))):
                return None
            ids = [x.get("sourcedId") for x in page]
            if ids == previous_ids:
                raise self._make_error(
                    "paging loop: the server returned the same page for a new offset",
                    method="GET",
                    path=url_path(resp.url),
                    endpoint=endpoint,
                )
            previous_ids = ids
            offset += len(page)
            return self.api_path + path, [*(params or []), ("limit", limit), ("offset", offset)]

        return self.paginate_pages(
            endpoint,
            (self.api_path + path, [*(params or []), ("limit", limit), ("offset", 0)]),
            items_of=lambda body: body.get(key) if isinstance(body, dict) else None,
            shape=f"expected {{{key!r}: [objects]}}",
            next_page=next_page,
        )

    @staticmethod
    def _more_than(resp: requests.Response, seen: int) -> bool:
        """``X-Total-Count`` says there is more than *seen* (only a cross-check, never required).

        A short page normally ends the listing; but a server that silently caps ``limit``
        below ``page_size`` answers short pages too, and when it says how many there are,
        the listing goes on instead of losing the rest.
        """
        raw = resp.headers.get("X-Total-Count")
        try:
            return raw is not None and int(raw) > seen
        except ValueError:
            return False

    # ---- the endpoints of domain.md §2 ------------------------------------------------

    def list_categories(self, class_id: str) -> list[dict]:
        """Categories of one class (``filter=metadata.classId='…'``)."""
        class_id = str(class_id)
        if not class_id or "'" in class_id:
            raise ValueError("a class sourcedId used in a filter must be non-empty and free of quotes")
        return self.paginate(
            "/categories",
            "categories",
            [("filter", f"metadata.classId='{class_id}'")],
            endpoint="list_categories",
        )

    def list_grading_periods(self) -> list[dict]:
        """All grading periods."""
        return self.paginate("/gradingPeriods", "gradingPeriods", endpoint="list_grading_periods")

    def list_line_items(self, class_id: str) -> list[dict]:
        """Line items of one class."""
        return self.paginate(
            f"/classes/{quote_id(class_id)}/lineItems", "lineItems", endpoint="list_line_items"
        )

    def list_results(self, class_id: str, modified_since: datetime | str | None = None) -> list[dict]:
        """Results of one class; with ``modified_since``, only those Aspen last modified after
        that instant (OneRoster's ``filter=dateLastModified>'…'``; a server that ignores the
        filter answers every result, which callers must accept)."""
        params = None
        if modified_since is not None:
            if isinstance(modified_since, datetime):
                if modified_since.tzinfo is None:
                    raise ValueError("modified_since must be timezone-aware (or an ISO-8601 string)")
                modified_since = modified_since.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.000Z")
            if "'" in modified_since:
                raise ValueError("modified_since must not contain quotes")
            params = [("filter", f"dateLastModified>'{modified_since}'")]
        path = f"/classes/{quote_id(class_id)}/results"
        return self.paginate(path, "results", params, endpoint="list_results")

    def list_students(self, class_id: str) -> list[dict]:
        """The class roster (OneRoster users)."""
        return self.paginate(f"/classes/{quote_id(class_id)}/students", "users", endpoint="list_students")

    def _put(self, collection: str, wrapper: str, sourced_id: str, obj: dict, endpoint: str) -> dict | None:
        if not isinstance(obj, dict):
            raise TypeError(f"{wrapper} must be a dict")
        inner = obj[wrapper] if set(obj) == {wrapper} and isinstance(obj[wrapper], dict) else obj
        inner = dict(inner)
        given = inner.setdefault("sourcedId", str(sourced_id))
        if str(given) != str(sourced_id):
            raise ValueError(
                f"{wrapper}.sourcedId {given!r} differs from the sourced_id argument {sourced_id!r}"
            )
        path = f"{self.api_path}/{collection}/{quote_id(sourced_id)}"
        resp = self.request("PUT", path, json_body={wrapper: inner}, endpoint=endpoint)
        if not resp.content or not resp.content.strip():
            return None
        try:
            body = resp.json()
        except ValueError:
            return None  # any 2xx is success (OneRoster); a non-JSON acknowledgement is fine
        return body if isinstance(body, dict) else None

    def put_line_item(self, sourced_id: str, line_item: dict) -> dict | None:
        """Create or replace a line item (``PUT /lineItems/{sourcedId}``).

        *line_item* is the inner object (``title``, ``class``, ``category``, …); it is sent as
        ``{"lineItem": {...}}`` with ``sourcedId`` filled in. Returns Aspen's JSON answer, if any.
        """
        return self._put("lineItems", "lineItem", sourced_id, line_item, "put_line_item")

    def put_result(self, sourced_id: str, result: dict) -> dict | None:
        """Create or replace a result (``PUT /results/{sourcedId}``), sent as ``{"result": {...}}``."""
        return self._put("results", "result", sourced_id, result, "put_result")

    def delete_line_item(self, sourced_id: str) -> bool:
        """Delete a line item; ``True`` if deleted, ``False`` if it was already gone (404)."""
        path = f"{self.api_path}/lineItems/{quote_id(sourced_id)}"
        resp = self.request("DELETE", path, endpoint="delete_line_item", ok_statuses=(404,))
        return resp.status_code != 404

    # ---- UI Test button -----------------------------------------------------------------

    def test_connection(self) -> tuple[bool, str]:
        """Obtain a token and read one grading period."""

        def probe() -> str:
            self.access_token()
            self.get_json(
                self.api_path + "/gradingPeriods",
                params=[("limit", 1)],
                endpoint="test_connection",
                valid=lambda b: isinstance(b, dict) and isinstance(b.get("gradingPeriods"), list),
                shape="expected {'gradingPeriods': [...]}",
            )
            return "Connected to Aspen: token obtained and grading periods readable"

        return self._test(probe)
