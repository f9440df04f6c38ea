"""Great Expectations, pandas and the package imported once per LocalExecutor, not once per task.

Airflow 3's LocalExecutor forks its worker processes from the scheduler when it starts
(``LocalExecutor.start``, ``parallelism`` of them at once, after ``gc.freeze()``), and each
worker forks one process per task (``supervise``). A module the scheduler has imported before
that fork is in every task process; one imported inside a task costs that task the import:
~4 s of CPU for Great Expectations in each validate and match task, several at once on a
small machine.

This module is an Airflow listener (registered by :class:`CanvasAspenPreloadPlugin`, an
``airflow.plugins`` entry point, so a deployment needs no setting). Its ``on_starting``
runs in every Airflow job (scheduler, dag-processor, triggerer) before the job starts; all it
does there is wrap ``LocalExecutor.start`` so that :mod:`canvas_aspen.preload` is imported
just before the workers are forked. Only a process that starts a LocalExecutor (the
scheduler) pays the import; the dag-processor, the triggerer, the API server and processes
running other executors never import it. ``CANVAS_ASPEN_PRELOAD=off`` turns it off.

CeleryExecutor workers preload the same module through their Celery settings
(:mod:`canvas_aspen.celery_config`).
"""

from __future__ import annotations

import functools
import importlib
import logging
import sys
import time
from typing import Any

from airflow.listeners import hookimpl
from airflow.plugins_manager import AirflowPlugin

from canvas_aspen.settings import env_flag

PRELOAD_ENV = "CANVAS_ASPEN_PRELOAD"
PRELOAD_MODULE = "canvas_aspen.preload"
_MARK = "_canvas_aspen_preloads"

log = logging.getLogger(__name__)


def enabled() -> bool:
    """``CANVAS_ASPEN_PRELOAD``: on (default) or off (``settings.env_flag``)."""
    return env_flag(PRELOAD_ENV, default=True)


def preload() -> bool:
    """Import what the passback's tasks import; False (and a warning) if that fails: the
    scheduler keeps running, and each task then imports what it needs itself."""
    started = time.monotonic()
    try:
        importlib.import_module(PRELOAD_MODULE)
    except Exception as exc:  # noqa: BLE001  (never take the scheduler down for a speed-up)
        log.warning(
            "canvas_aspen: preloading %s failed (%s: %s); each task imports it itself",
            PRELOAD_MODULE,
            type(exc).__name__,
            exc,
        )
        return False
    log.info(
        "canvas_aspen: imported %s in %.1f s before the LocalExecutor forks its workers",
        PRELOAD_MODULE,
        time.monotonic() - started,
    )
    return True


def install() -> bool:
    """Make ``LocalExecutor.start`` import the preload module first (once; idempotent).
    True when the wrapper is in place."""
    from airflow.executors.local_executor import LocalExecutor

    original = LocalExecutor.start
    if getattr(original, _MARK, False):
        return True

    @functools.wraps(original)
    def start(self, *args: Any, **kwargs: Any):
        if enabled():
            preload()
        return original(self, *args, **kwargs)

    setattr(start, _MARK, True)
    LocalExecutor.start = start
    return True


@hookimpl
def on_starting(component: Any) -> None:
    """An Airflow job is starting (the scheduler builds its executors after this)."""
    job_module = sys.modules.get("airflow.jobs.job")  # never imported by a task process
    if job_module is None or not isinstance(component, job_module.Job) or not enabled():
        return
    install()


class CanvasAspenPreloadPlugin(AirflowPlugin):
    """Registered through the ``airflow.plugins`` entry point in pyproject.toml."""

    name = "canvas_aspen_preload"
    listeners = [sys.modules[__name__]]
