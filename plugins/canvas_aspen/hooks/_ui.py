"""Connection-form metadata for the two connection types, in one place.

Plain data and no imports, so ``provider_info`` can read it without importing the hooks
(Airflow 3.3 reads ``ui-field-behaviour`` / ``conn-fields`` from provider info and no longer
calls the hooks' ``get_ui_field_behaviour()`` when they are present), and the hooks return
the same dicts from ``get_ui_field_behaviour()`` for older callers.
"""

from __future__ import annotations

from typing import Any

from canvas_aspen.hooks._settings import STUDENT_ID_FIELDS

_COMMON_EXTRA_FIELDS: dict[str, dict[str, Any]] = {
    "max_concurrency": {
        "label": "Max concurrent requests",
        "description": "Upper bound on requests in flight at once from one hook (default 8).",
        "schema": {"type": ["integer", "null"], "minimum": 1, "maximum": 64},
    },
    "page_size": {
        "label": "Page size",
        "description": "Items requested per page (default 100).",
        "schema": {"type": ["integer", "null"], "minimum": 1, "maximum": 1000},
    },
    "timeout": {
        "label": "Timeout (seconds)",
        "description": "Connect and read timeout of one request (default 30).",
        "schema": {"type": ["number", "null"], "minimum": 0},
    },
    "verify": {
        "label": "Verify TLS certificates",
        "description": "Default true. Turning it off is logged as a warning on every run.",
        "schema": {"type": ["boolean", "null"]},
    },
    "max_attempts": {
        "label": "Max attempts per request",
        "description": "Attempts for a retryable failure (connection error, timeout, 5xx, 429); default 6.",
        "schema": {"type": ["integer", "null"], "minimum": 1, "maximum": 20},
    },
    "allow_insecure_http": {
        "label": "Allow plain http:// to a non-loopback host",
        "description": "Off by default: the token would travel in clear text.",
        "schema": {"type": ["boolean", "null"]},
    },
}

CANVAS_UI_FIELD_BEHAVIOUR: dict[str, Any] = {
    "hidden_fields": ["schema", "port", "login"],
    "relabeling": {"host": "Canvas base URL", "password": "API Token"},
    "placeholders": {
        "host": "https://district.instructure.com",
        "password": "Canvas admin-scoped API token",
        "extra": '{"account_id": "1", "max_concurrency": 8, "page_size": 100, "timeout": 30, "verify": true}',
    },
}

CANVAS_EXTRA_FIELDS: dict[str, dict[str, Any]] = {
    "account_id": {
        "label": "Account ID",
        "description": "Canvas account whose courses are read (default 1, the root account).",
        "schema": {"type": ["string", "null"]},
    },
    **_COMMON_EXTRA_FIELDS,
}

ASPEN_UI_FIELD_BEHAVIOUR: dict[str, Any] = {
    "hidden_fields": ["schema", "port"],
    "relabeling": {"host": "Aspen base URL", "login": "Client ID", "password": "Client Secret"},
    "placeholders": {
        "host": "https://district.myfollett.com",
        "login": "OneRoster client id",
        "password": "OneRoster client secret",
        "extra": '{"token_path": "/oauth/rest/v2.0/auth", "api_path": "/ims/oneroster/v1p1", '
        '"column_code_length": 10, "student_id_field": "sourcedId", '
        '"max_concurrency": 8, "page_size": 100, "timeout": 30, "verify": true}',
    },
}

ASPEN_EXTRA_FIELDS: dict[str, dict[str, Any]] = {
    "token_path": {
        "label": "Token path",
        "description": "Client-credentials token endpoint (default /oauth/rest/v2.0/auth).",
        "schema": {"type": ["string", "null"]},
    },
    "api_path": {
        "label": "OneRoster API path",
        "description": "Root of the OneRoster 1.1 API (default /ims/oneroster/v1p1).",
        "schema": {"type": ["string", "null"]},
    },
    "column_code_length": {
        "label": "Gradebook column code length",
        "description": "Aspen makes the first N characters of a line item's title its gradebook column code, "
        "unique per class; colliding titles are made unique before posting (default 10; 0 = off).",
        "schema": {"type": ["integer", "null"], "minimum": 0, "maximum": 255},
    },
    "student_id_field": {
        "label": "Student id field",
        "description": "Which Aspen roster field equals the Canvas sis_user_id: sourcedId (default), "
        "identifier (the student number), username or email. Results always name the roster user's "
        "sourcedId.",
        "schema": {
            "type": ["string", "null"],
            "enum": [*STUDENT_ID_FIELDS, None],
        },
    },
    **_COMMON_EXTRA_FIELDS,
}


def provider_connection_type(
    behaviour: dict[str, Any], extra_fields: dict[str, dict[str, Any]]
) -> dict[str, Any]:
    """The ``ui-field-behaviour`` / ``conn-fields`` keys of one provider-info connection type."""
    return {
        "ui-field-behaviour": {
            "hidden-fields": list(behaviour["hidden_fields"]),
            "relabeling": dict(behaviour["relabeling"]),
            "placeholders": dict(behaviour["placeholders"]),
        },
        "conn-fields": {name: dict(spec) for name, spec in extra_fields.items()},
    }
