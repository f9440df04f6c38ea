"""CanvasHook: the Canvas LMS REST API (read only), for the endpoints of domain.md §1.

Connection (type ``canvas``, default id ``canvas_default``):

* ``host`` – base URL with scheme, e.g. ``https://district.instructure.com``
* ``password`` – an admin-scoped API token (sent as ``Authorization: Bearer``)
* extras – ``account_id`` (default ``"1"``), ``max_concurrency`` (8), ``page_size`` (100),
  ``timeout`` (30), ``verify`` (true), ``allow_insecure_http`` (false), ``max_attempts`` (6),
  and the tuning knobs of docs/connections.md.

Every list method follows ``Link: rel="next"`` (an opaque URL, same host only) until it is
absent and returns a plain ``list`` of ``dict``; a link that repeats raises
:class:`CanvasApiError` naming the endpoint.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timezone
from functools import cached_property
from typing import Any

import requests
from airflow.sdk import Connection

from canvas_aspen.errors import ApiError, CanvasApiError, ConnectionConfigError
from canvas_aspen.hooks._http import BearerAuth, PageRequest, RestApiHook, canonical_url, quote_id, url_path
from canvas_aspen.hooks._settings import CanvasSettings
from canvas_aspen.hooks._ui import CANVAS_UI_FIELD_BEHAVIOUR

__all__ = ["ApiError", "CanvasApiError", "CanvasHook", "ConnectionConfigError"]

Params = list[tuple[str, Any]]


def _iso(value: datetime | str) -> str:
    """ISO-8601 for ``graded_since``: aware datetimes in UTC with ``Z``; strings as given."""
    if isinstance(value, str):
        return value
    if value.tzinfo is None:
        raise ValueError("graded_since must be timezone-aware (or an ISO-8601 string)")
    return value.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


class CanvasHook(RestApiHook):
    """Read courses, sections, enrollments, teachers, assignment groups and submissions from Canvas.

    :param canvas_conn_id: the Airflow Connection id (type ``canvas``).
    """

    conn_name_attr = "canvas_conn_id"
    default_conn_name = "canvas_default"
    conn_type = "canvas"
    hook_name = "Canvas"

    error_class = CanvasApiError
    system = "Canvas"
    settings_class = CanvasSettings
    settings: CanvasSettings

    def __init__(self, canvas_conn_id: str = default_conn_name, **kwargs: Any) -> None:
        super().__init__(conn_id=canvas_conn_id, **kwargs)
        self.canvas_conn_id = canvas_conn_id

    #: the Connection form: "API Token", the base URL placeholder, unused fields hidden
    ui_field_behaviour = CANVAS_UI_FIELD_BEHAVIOUR

    # ---- connection ---------------------------------------------------------------------

    def _check_connection(self, conn: Connection) -> None:
        if not conn.password:
            raise ConnectionConfigError(
                f"Connection {self.canvas_conn_id!r} has no API token: "
                "put the Canvas token in the password field"
            )

    @property
    def account_id(self) -> str:
        """The default account (extra ``account_id``, default ``"1"``)."""
        return self.settings.account_id

    @cached_property
    def _bearer(self) -> BearerAuth:
        return BearerAuth(self.connection.password or "")

    def _auth(self) -> BearerAuth:
        return self._bearer

    # ---- paging -------------------------------------------------------------------------

    def paginate(
        self,
        path: str,
        params: Params | None = None,
        *,
        endpoint: str | None = None,
        items_key: str | None = None,
    ) -> list[dict]:
        """GET *path* and every ``rel="next"`` page after it; the items of all pages, in order.
        With ``items_key`` each page is an object holding its items under that key (the terms
        listing answers ``{"enrollment_terms": [...]}``).

        The next link is opaque (it carries its own query), must stay on the Connection's host,
        and must not lead back to a page already read (a loop raises, naming the endpoint).
        """
        endpoint = endpoint or path
        seen: set[str] = set()

        def next_page(resp: requests.Response, _items: list[dict]) -> PageRequest | None:
            fetched = canonical_url(resp.url)
            if fetched in seen:
                raise self._loop_error(endpoint, resp.url)
            seen.add(fetched)
            next_link = resp.links.get("next", {}).get("url")
            if next_link is None:
                return None
            next_url = self._url(next_link, endpoint=endpoint)
            if canonical_url(next_url) in seen:
                raise self._loop_error(endpoint, next_url)
            return next_url, None

        def items_of(body: Any) -> Any:
            if items_key is None:
                return body
            return body.get(items_key) if isinstance(body, dict) else None

        def shape(body: Any) -> str:
            if items_key is None:
                return "expected a JSON list of objects"
            if not isinstance(body, dict):
                return f"expected a JSON object with {items_key!r}"
            return f"expected a JSON list of objects under {items_key!r}"

        return self.paginate_pages(
            endpoint,
            (path, [*(params or []), ("per_page", self.settings.page_size)]),
            items_of=items_of,
            shape=shape,
            next_page=next_page,
        )

    def _loop_error(self, endpoint: str, url: str) -> CanvasApiError:
        err = self._make_error(
            'pagination loop: the Link rel="next" points to a page already read',
            method="GET",
            path=url_path(url),
            endpoint=endpoint,
        )
        assert isinstance(err, CanvasApiError)
        return err

    # ---- the endpoints of domain.md §1 ------------------------------------------------

    def list_terms(self, account_id: str | int | None = None) -> list[dict]:
        """The account's enrollment terms (``id``, ``name``, ``sis_term_id``, ``start_at``, ``end_at``,
        ``workflow_state``); Canvas pages them like any list, inside ``{"enrollment_terms": [...]}``."""
        account = self.account_id if account_id is None else account_id
        return self.paginate(
            f"/api/v1/accounts/{quote_id(account)}/terms", endpoint="list_terms", items_key="enrollment_terms"
        )

    def list_courses(
        self,
        account_id: str | int | None = None,
        enrollment_term_id: str | int | None = None,
        state: Iterable[str] | None = None,
    ) -> list[dict]:
        """Courses of the account (default: the Connection's ``account_id``), optionally of one
        term (a term id or ``sis_term_id:X``) and in some states (``state[]``, e.g. ``["available"]``)."""
        account = self.account_id if account_id is None else account_id
        params: Params = []
        if enrollment_term_id is not None:
            params.append(("enrollment_term_id", enrollment_term_id))
        for value in state or ():
            params.append(("state[]", value))
        return self.paginate(f"/api/v1/accounts/{quote_id(account)}/courses", params, endpoint="list_courses")

    def get_course(self, course_id: str | int) -> dict:
        """One course."""
        path = f"/api/v1/courses/{quote_id(course_id)}"
        return self.get_json(
            path, endpoint="get_course", valid=lambda b: isinstance(b, dict), shape="expected a JSON object"
        )

    def list_sections(self, course_id: str | int) -> list[dict]:
        """Sections of a course (each one Aspen class via its ``sis_section_id``)."""
        return self.paginate(f"/api/v1/courses/{quote_id(course_id)}/sections", endpoint="list_sections")

    def list_student_enrollments(
        self, course_id: str | int, states: Iterable[str] = ("active",)
    ) -> list[dict]:
        """Student enrollments of a course in these states (default: active; a concluded
        course's students are ``completed``)."""
        return self.paginate(
            f"/api/v1/courses/{quote_id(course_id)}/enrollments",
            [("type[]", "StudentEnrollment"), *(("state[]", s) for s in states)],
            endpoint="list_student_enrollments",
        )

    TEACHER_FIELDS = ("id", "name", "email")

    def list_teachers(self, course_id: str | int) -> list[dict]:
        """The course's teachers (active or invited), each as ``id``, ``name`` and ``email`` only
        (``email`` is None when Canvas has none, or the token may not read it). Not student data,
        but kept out of logs all the same."""
        users = self.paginate(
            f"/api/v1/courses/{quote_id(course_id)}/users",
            [("enrollment_type[]", "teacher"), ("include[]", "email")],
            endpoint="list_teachers",
        )
        return [{k: u.get(k) for k in self.TEACHER_FIELDS} for u in users]

    def list_assignment_groups(self, course_id: str | int) -> list[dict]:
        """Assignment groups with their assignments and the assignments' overrides."""
        return self.paginate(
            f"/api/v1/courses/{quote_id(course_id)}/assignment_groups",
            [("include[]", "assignments"), ("include[]", "overrides")],
            endpoint="list_assignment_groups",
        )

    def list_submissions(
        self,
        course_id: str | int,
        assignment_ids: Iterable[str | int] | None = None,
        graded_since: datetime | str | None = None,
    ) -> list[dict]:
        """Submissions of all students (optionally only some assignments / graded since a time)."""
        params: Params = [("student_ids[]", "all")]
        for assignment_id in assignment_ids or ():
            params.append(("assignment_ids[]", assignment_id))
        if graded_since is not None:
            params.append(("graded_since", _iso(graded_since)))
        return self.paginate(
            f"/api/v1/courses/{quote_id(course_id)}/students/submissions", params, endpoint="list_submissions"
        )

    # ---- UI Test button -----------------------------------------------------------------

    def test_connection(self) -> tuple[bool, str]:
        """Read page 1 of the account's courses (one request, ``per_page=1``)."""

        def probe() -> str:
            path = f"/api/v1/accounts/{quote_id(self.account_id)}/courses"
            self.get_json(
                path,
                params=[("per_page", 1)],
                endpoint="test_connection",
                valid=lambda b: isinstance(b, list),
                shape="expected a JSON list",
            )
            return f"Connected to Canvas: account {self.account_id} is readable"

        return self._test(probe)
