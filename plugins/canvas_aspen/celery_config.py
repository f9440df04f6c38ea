"""Celery settings of the grade passback's Airflow workers: Airflow's own, plus
:mod:`canvas_aspen.preload` imported once when a worker starts.

Set ``AIRFLOW__CELERY__CELERY_CONFIG_OPTIONS=canvas_aspen.celery_config.CELERY_CONFIG``
(docker compose does). A Celery worker forks its pool processes and each of those forks one
process per task, so every task process has what the worker imported: Great Expectations is
then imported once per worker instead of once in each validate and match task (~4 s of CPU
each, 16 tasks a night), as Airflow itself preloads its operators. Only the worker imports
``preload``; the scheduler reads this dict and imports nothing heavy.
"""

from __future__ import annotations

from airflow.providers.celery.executors.default_celery import DEFAULT_CELERY_CONFIG

PRELOAD = "canvas_aspen.preload"

CELERY_CONFIG = {**DEFAULT_CELERY_CONFIG, "imports": [*DEFAULT_CELERY_CONFIG.get("imports", ()), PRELOAD]}
