"""Provider metadata read by Airflow's ProvidersManager (entry point ``apache_airflow_provider``).

Registering the package as a provider is what puts the ``canvas`` and ``aspen`` connection
types, with their relabelled fields, into the Airflow UI's connection form. Airflow 3.3 reads
the form declaratively from ``ui-field-behaviour`` / ``conn-fields`` here (without importing
the hooks); the same metadata lives in ``canvas_aspen.hooks._ui``, which the hooks' own
``get_ui_field_behaviour()`` return as well.
"""

from canvas_aspen import __version__
from canvas_aspen.hooks._ui import (
    ASPEN_EXTRA_FIELDS,
    ASPEN_UI_FIELD_BEHAVIOUR,
    CANVAS_EXTRA_FIELDS,
    CANVAS_UI_FIELD_BEHAVIOUR,
    provider_connection_type,
)


def get_provider_info() -> dict:
    return {
        "package-name": "canvas-aspen-passback",
        "name": "Canvas to Aspen grade passback",
        "description": "Hooks for Canvas LMS (REST) and Follett Aspen (OneRoster 1.1), "
        "and the nightly grade passback DAG.",
        "versions": [__version__],
        "connection-types": [
            {
                "connection-type": "canvas",
                "hook-class-name": "canvas_aspen.hooks.canvas.CanvasHook",
                "hook-name": "Canvas LMS",
                **provider_connection_type(CANVAS_UI_FIELD_BEHAVIOUR, CANVAS_EXTRA_FIELDS),
            },
            {
                "connection-type": "aspen",
                "hook-class-name": "canvas_aspen.hooks.aspen.AspenHook",
                "hook-name": "Follett Aspen (OneRoster 1.1)",
                **provider_connection_type(ASPEN_UI_FIELD_BEHAVIOUR, ASPEN_EXTRA_FIELDS),
            },
        ],
    }
