"""Provider metadata read by Airflow's ProvidersManager (entry point ``apache_airflow_provider``).

Registering the package as a provider is what puts the ``canvas`` and ``aspen`` connection
types, with their relabelled fields, into the Airflow UI's connection form.
"""

from canvas_aspen import __version__


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
            },
            {
                "connection-type": "aspen",
                "hook-class-name": "canvas_aspen.hooks.aspen.AspenHook",
                "hook-name": "Follett Aspen (OneRoster 1.1)",
            },
        ],
    }
