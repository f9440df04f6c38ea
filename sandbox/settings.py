"""Settings of the two stand-in servers: everything that is a knob rather than scenario data.

Where ``domain.md`` marks a fact about the real systems as unverified, the behaviour is a
setting here, so a test can exercise both possibilities.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, ClassVar


@dataclass
class Settings:
    # --- Canvas -------------------------------------------------------------------------------
    canvas_token: str | None = None  # None: the scenario's canvas.token
    canvas_default_per_page: int = 10
    canvas_max_per_page: int = 100
    canvas_omit_last_link: bool = False  # Canvas omits rel="last" when counting is expensive
    canvas_throttle_status: int = (
        429  # 429 (current Canvas) or 403 (older: "403 Forbidden (Rate Limit Exceeded)")
    )
    canvas_max_in_flight: int | None = None  # throttle above this many concurrent requests
    canvas_throttling: bool = True  # the leaky bucket below
    canvas_bucket_hwm: float = 600.0  # quota ("high water mark")
    canvas_bucket_outflow: float = 10.0  # quota units refilled per second
    canvas_up_front_cost: float = 50.0  # pre-flight penalty held while a request is in flight
    canvas_request_base_cost: float = 0.01  # + the request's wall time in seconds
    # --- Aspen --------------------------------------------------------------------------------
    aspen_client_id: str | None = None  # None: the scenario's aspen.client_id
    aspen_client_secret: str | None = None
    aspen_error_style: str = "json"  # "json" (OneRoster imsx_*) or "text" (Aspen plain text)
    aspen_token_path: str = "/oauth/rest/v2.0/auth"
    aspen_api_path: str = "/ims/oneroster/v1p1"
    aspen_token_lifetime_s: float = 3600.0
    aspen_default_limit: int = 100
    aspen_max_limit: int = 100  # a larger `limit` is silently capped (unverified for Aspen)
    aspen_total_count_header: bool = False  # X-Total-Count (unverified for Aspen)
    aspen_require_due_date: bool = True  # a line item without dueDate is a Validation Exception
    aspen_check_due_date_in_period: bool = False  # dueDate must fall in the gradingPeriod (unverified)
    aspen_unique_column_codes: bool = True  # the first characters of a title are the class's GB column code
    aspen_column_code_length: int = 10  # how many (Aspen: 10)

    # Settings that only take effect at start (routes are mounted under them).
    START_ONLY: ClassVar[tuple[str, ...]] = ("aspen_token_path", "aspen_api_path")

    def update(self, values: dict[str, Any], *, running: bool = False) -> None:
        known = {f.name for f in dataclasses.fields(self)}
        for key in values:
            if key not in known:
                raise ValueError(f"unknown setting {key!r}")
            if running and key in self.START_ONLY and values[key] != getattr(self, key):
                raise ValueError(f"setting {key!r} can only be given at start")
        dataclasses.replace(self, **values).validate()  # all or nothing
        for key, value in values.items():
            setattr(self, key, value)

    def validate(self) -> None:
        if self.aspen_error_style not in ("json", "text"):
            raise ValueError("aspen_error_style must be 'json' or 'text'")
        if self.canvas_throttle_status not in (403, 429):
            raise ValueError("canvas_throttle_status must be 403 or 429")
        for key in ("aspen_token_path", "aspen_api_path"):
            value = getattr(self, key)
            if not value.startswith("/") or value.endswith("/"):
                raise ValueError(f"{key} must start with '/' and not end with '/'")
        if self.aspen_max_limit < 1 or self.canvas_max_per_page < 1:
            raise ValueError("page size limits must be >= 1")
        if self.aspen_column_code_length < 1:
            raise ValueError("aspen_column_code_length must be >= 1")

    def as_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}

    @classmethod
    def from_dict(cls, values: dict[str, Any] | None) -> Settings:
        settings = cls()
        settings.update(values or {})
        return settings
