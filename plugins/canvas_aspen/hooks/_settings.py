"""Typed settings of the hooks, read from an Airflow Connection: one pydantic model per hook.

:class:`HttpSettings` holds what both hooks understand (the base URL, TLS, timeouts, the
retry and throttle knobs, paging); :class:`CanvasSettings` and :class:`AspenSettings` add
their own extras. Every extra may be given by its plain name or in Airflow's legacy
``extra__<conn_type>__<name>`` form, as JSON or as a string (``"8"``, ``"false"``); a missing
or blank extra takes the default. A bad value raises :class:`ConnectionConfigError` naming
the Connection and the field, never echoing a value. No secret is kept here.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, Self

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, field_validator

from canvas_aspen.errors import ConnectionConfigError
from canvas_aspen.settings import OFF_WORDS, ON_WORDS, parse_flag


def _not_a_flag(value: Any) -> Any:
    """A number may come as JSON or a string, but ``true`` is not 1."""
    if isinstance(value, bool):
        raise ValueError("must be a number, not true/false")
    return value.strip() if isinstance(value, str) else value


def _verify(value: Any) -> bool | str:
    """``verify``: a boolean (or its string form), or the path of a CA bundle."""
    if isinstance(value, str) and value.strip().lower() not in ON_WORDS | OFF_WORDS:
        return value.strip()
    return parse_flag(value)


def _pair(value: Any) -> Any:
    """``timeout``: seconds, or ``[connect, read]``."""
    if isinstance(value, (list, tuple)):
        if len(value) != 2:
            raise ValueError("must be a number or [connect, read]")
        return tuple(value)
    return (value, value)


Flag = Annotated[bool, BeforeValidator(parse_flag)]
Count = Annotated[int, BeforeValidator(_not_a_flag), Field(ge=1)]
Seconds = Annotated[float, BeforeValidator(_not_a_flag), Field(ge=0)]
_TimeoutPart = Annotated[float, BeforeValidator(_not_a_flag), Field(ge=0.001)]
Timeout = Annotated[tuple[_TimeoutPart, _TimeoutPart], BeforeValidator(_pair)]
Verify = Annotated[bool | str, BeforeValidator(_verify)]


ASPEN_TOKEN_PATH = "/oauth/rest/v2.0/auth"
ONEROSTER_API_PATH = "/ims/oneroster/v1p1"
STUDENT_ID_FIELDS = ("sourcedId", "identifier", "username", "email")
"""The roster user fields a Canvas ``sis_user_id`` may be matched to (R22)."""


def _path_on_host(value: Any, default: str) -> str:
    """A path on the Connection's host: ``/`` + the value without slashes around it."""
    text = str(value).strip()
    if "://" in text or "?" in text or "#" in text:
        raise ValueError(f"must be a path such as {default}")
    return "/" + text.strip("/")


_MESSAGES = {
    "int_parsing": "must be an integer",
    "int_from_float": "must be an integer",
    "int_type": "must be an integer",
    "float_parsing": "must be a number",
    "float_type": "must be a number",
    "finite_number": "must be a finite number",
    "string_type": "must be text",
}


def _problem(error: Any) -> str:
    """One line for one pydantic error, without the value that was given."""
    kind, ctx = error["type"], error.get("ctx") or {}
    if kind == "greater_than_equal":
        return f"must be ≥ {ctx['ge']:g}"
    if kind == "value_error" and "error" in ctx:
        return str(ctx["error"])
    return _MESSAGES.get(kind, error["msg"])


class HttpSettings(BaseModel):
    """What both hooks read from their Connection (documented in docs/connections.md)."""

    model_config = ConfigDict(frozen=True, extra="ignore", allow_inf_nan=False)

    base_url: str = ""  # from the Connection's host and port (``validate_base_url``), not an extra
    allow_insecure_http: Flag = False
    timeout: Timeout = (30.0, 30.0)
    verify: Verify = True
    max_concurrency: Count = 8
    page_size: Count = 100
    max_attempts: Count = 6
    backoff_base: Seconds = 0.5
    backoff_max: Seconds = 30.0
    rate_limit_threshold: Seconds = 100.0
    rate_limit_max_sleep: Seconds = 2.0
    max_pages: Count = 10_000

    @classmethod
    def from_extras(cls, extras: Mapping[str, Any], *, conn_type: str, conn_id: str) -> Self:
        """The settings in *extras* (``base_url`` left empty: the hook sets it from the host)."""
        given: dict[str, Any] = {}
        for name in cls.model_fields:
            value = extras.get(name, extras.get(f"extra__{conn_type}__{name}"))
            blank = value is None or (isinstance(value, str) and not value.strip())
            if name != "base_url" and not blank:
                given[name] = value
        try:
            return cls.model_validate(given)
        except ValidationError as exc:
            problems = {}
            for error in exc.errors(include_url=False, include_input=False):
                problems.setdefault(str(error["loc"][0]) if error["loc"] else "?", _problem(error))
            text = "; ".join(f"extra {name!r} {problem}" for name, problem in problems.items())
            raise ConnectionConfigError(f"Connection {conn_id!r}: {text}") from None


class CanvasSettings(HttpSettings):
    """The Canvas Connection: the common settings and the default account."""

    account_id: Annotated[str, BeforeValidator(lambda v: str(v).strip())] = "1"


class AspenSettings(HttpSettings):
    """The Aspen Connection: the common settings, where the token and the API are, when a
    cached token is replaced, and what the district's Aspen is like (R21, R22)."""

    token_path: str = ASPEN_TOKEN_PATH
    api_path: str = ONEROSTER_API_PATH
    token_refresh_margin: Seconds = 60.0
    column_code_length: Annotated[int, BeforeValidator(_not_a_flag), Field(ge=0)] = 10
    student_id_field: str = "sourcedId"

    @field_validator("student_id_field", mode="before")
    @classmethod
    def _student_id_field(cls, value: Any) -> str:
        field = {f.lower(): f for f in STUDENT_ID_FIELDS}.get(str(value).strip().lower())
        if field is None:
            raise ValueError(f"must be one of {', '.join(STUDENT_ID_FIELDS)}")
        return field

    @field_validator("token_path", mode="before")
    @classmethod
    def _token_path(cls, value: Any) -> str:
        return _path_on_host(value, ASPEN_TOKEN_PATH)

    @field_validator("api_path", mode="before")
    @classmethod
    def _api_path(cls, value: Any) -> str:
        path = _path_on_host(value, ONEROSTER_API_PATH)
        return "" if path == "/" else path
