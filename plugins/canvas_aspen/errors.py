"""The errors of the two hooks, in a module without Airflow (stages and tests catch them by type).

* :class:`ConnectionConfigError` – an Airflow Connection misses something or holds a bad value.
* :class:`ApiError` – a failed call (HTTP status, transport, unexpected answer); subclassed per
  system as :class:`CanvasApiError` and :class:`AspenApiError` (which also parses OneRoster's
  ``imsx_*`` status fields, :func:`parse_imsx_status`).

No error carries a secret: the method, the URL *path* (never the query string, never a
header), the status and the (truncated, scrubbed by the hook) response body.
"""

from __future__ import annotations

import json
from typing import Any

__all__ = [
    "BODY_LIMIT",
    "ApiError",
    "AspenApiError",
    "CanvasApiError",
    "ConnectionConfigError",
    "parse_imsx_status",
]

BODY_LIMIT = 2000
"""Characters of a response body kept on an :class:`ApiError`."""

_MESSAGE_BODY_LIMIT = 300
"""Characters of the body shown in ``str(error)``."""


class ConnectionConfigError(ValueError):
    """The Airflow Connection is missing something or holds an invalid value."""


class ApiError(Exception):
    """A failed call to one of the two systems.

    :ivar system: ``"Canvas"`` or ``"Aspen"``.
    :ivar method: HTTP method of the failed request.
    :ivar path: URL path of the failed request (no scheme/host, no query string).
    :ivar endpoint: a short name of the operation (e.g. ``"list_sections"``).
    :ivar status: HTTP status, or ``None`` when no answer came (connection error, timeout).
    :ivar body: the response body text, truncated to :data:`BODY_LIMIT` characters.
    :ivar detail: one line saying what went wrong.
    :ivar retryable: whether retrying could help (used by the retry policy).
    :ivar retry_after: seconds the server asked us to wait, if it said.
    :ivar attempts: how many attempts were made before this error was raised.
    """

    system = "API"

    def __init__(
        self,
        detail: str,
        *,
        method: str | None = None,
        path: str | None = None,
        endpoint: str | None = None,
        status: int | None = None,
        body: str | None = None,
        retryable: bool = False,
        retry_after: float | None = None,
    ) -> None:
        self.detail = detail
        self.method = method
        self.path = path
        self.endpoint = endpoint
        self.status = status
        self.body = (body or "")[:BODY_LIMIT]
        self.retryable = retryable
        self.retry_after = retry_after
        self.attempts = 1
        super().__init__(detail)

    @property
    def message(self) -> str:
        """The most useful short text: the server's own message when there is one."""
        return self.server_message() or self.detail

    def server_message(self) -> str:
        """What the server said (the body text, shortened); empty when it said nothing."""
        text = self.body.strip()
        if len(text) > _MESSAGE_BODY_LIMIT:
            return text[:_MESSAGE_BODY_LIMIT] + "…"
        return text

    def __str__(self) -> str:
        where = " ".join(p for p in (self.method, self.path) if p) or "(no request)"
        head = f"{self.system} {where}"
        if self.endpoint and self.endpoint != self.path:
            head += f" [{self.endpoint}]"
        status = f"HTTP {self.status}" if self.status is not None else "no HTTP answer"
        parts = [self.detail]
        said = self.server_message()
        if said:
            parts.append(f"server said: {said}")
        if self.attempts > 1:
            parts.append(f"after {self.attempts} attempts")
        return f"{head}: {status} - " + "; ".join(parts)

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(status={self.status!r}, method={self.method!r}, "
            f"path={self.path!r}, detail={self.detail!r})"
        )

    def __reduce__(self):  # picklable across processes / XCom-free error reporting
        state = dict(self.__dict__)
        return (_rebuild_error, (type(self), state))


def _rebuild_error(cls: type[ApiError], state: dict[str, Any]) -> ApiError:
    err = cls.__new__(cls)
    Exception.__init__(err, state.get("detail", ""))
    err.__dict__.update(state)
    return err


class CanvasApiError(ApiError):
    """Any failure of a Canvas call (HTTP status, transport, or an unexpected answer)."""

    system = "Canvas"


_IMSX_KEYS = ("imsx_codemajor", "imsx_severity", "imsx_description")


def _find_imsx(node: Any, depth: int = 0) -> dict[str, Any] | None:
    """The first object holding ``imsx_*`` status fields, searched a few levels deep."""
    if depth > 4:
        return None
    if isinstance(node, dict):
        lowered = {str(k).lower(): v for k, v in node.items()}
        if any(k in lowered for k in _IMSX_KEYS):
            return lowered
        for value in node.values():
            found = _find_imsx(value, depth + 1)
            if found is not None:
                return found
    elif isinstance(node, list):
        for value in node[:10]:
            found = _find_imsx(value, depth + 1)
            if found is not None:
                return found
    return None


def _code_minor(value: Any) -> str | None:
    """``imsx_CodeMinor`` is a string or ``{imsx_codeMinorField: [{…FieldValue}]}``."""
    if value is None:
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, dict):
        fields = {str(k).lower(): v for k, v in value.items()}.get("imsx_codeminorfield")
        if isinstance(fields, dict):
            fields = [fields]
        if isinstance(fields, list):
            values = [
                str(v)
                for f in fields
                if isinstance(f, dict)
                for k, v in f.items()
                if str(k).lower() == "imsx_codeminorfieldvalue"
            ]
            return ", ".join(values) or None
    return None


def parse_imsx_status(body: str | None) -> dict[str, str | None] | None:
    """OneRoster status fields of an error body, or ``None`` when it is not such JSON.

    Returns ``{"code_major", "severity", "description", "code_minor"}``.
    """
    if not body or not body.strip():
        return None
    try:
        data = json.loads(body)
    except ValueError:
        return None
    found = _find_imsx(data)
    if found is None:
        return None

    def text(key: str) -> str | None:
        value = found.get(key)
        return None if value is None else str(value)

    return {
        "code_major": text("imsx_codemajor"),
        "severity": text("imsx_severity"),
        "description": text("imsx_description"),
        "code_minor": _code_minor(found.get("imsx_codeminor")),
    }


class AspenApiError(ApiError):
    """Any failure of an Aspen call.

    Besides the fields of :class:`ApiError`, carries the parsed
    OneRoster status (``imsx_code_major``, ``imsx_severity``, ``imsx_description``,
    ``imsx_code_minor``) when the body is such JSON; otherwise :attr:`message` is Aspen's
    plain text (e.g. ``"Grading Category Not Found"``).
    """

    system = "Aspen"

    def __init__(self, detail: str, **kwargs: Any) -> None:
        super().__init__(detail, **kwargs)
        parsed = parse_imsx_status(self.body) or {}
        self.imsx_code_major: str | None = parsed.get("code_major")
        self.imsx_severity: str | None = parsed.get("severity")
        self.imsx_description: str | None = parsed.get("description")
        self.imsx_code_minor: str | None = parsed.get("code_minor")

    def server_message(self) -> str:
        if self.imsx_description or self.imsx_code_major:
            head = "/".join(x for x in (self.imsx_code_major, self.imsx_severity) if x)
            text = self.imsx_description or ""
            if self.imsx_code_minor:
                text = f"{text} ({self.imsx_code_minor})" if text else self.imsx_code_minor
            return f"{head}: {text}" if head and text else (head or text)
        return super().server_message()

    @property
    def message(self) -> str:
        """Aspen's own words: ``imsx_description``, else the plain-text body, else the detail."""
        if self.imsx_description:
            return self.imsx_description
        return super().server_message() or self.detail
