"""Benchmark only: a pyinstrument profile of every task process of a real Airflow run.

``python -m bench --airflow … --profile DIR`` copies this file into the plugins folder of the
Airflow it starts and sets ``CANVAS_ASPEN_BENCH_PROFILE_DIR``. In each task process the
listener starts a profiler when the task runner starts (``on_starting``: after the fork from
the executor's worker, before the DAG file is parsed) and writes it when the task ends:
``DIR/<task_id>-<map_index>-<run_id>.txt`` (and ``.html``). Not deployed (not in ``plugins/``).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from airflow.listeners import hookimpl
from airflow.plugins_manager import AirflowPlugin

PROFILE_ENV = "CANVAS_ASPEN_BENCH_PROFILE_DIR"
_state: dict = {}


@hookimpl
def on_starting(component) -> None:
    if type(component).__name__ != "TaskRunnerMarker" or not os.environ.get(PROFILE_ENV):
        return
    from pyinstrument import Profiler

    _state["profiler"] = Profiler(interval=0.002)
    _state["profiler"].start()


def _write(task_instance) -> None:
    profiler = _state.pop("profiler", None)
    if profiler is None:
        return
    profiler.stop()
    folder = Path(os.environ[PROFILE_ENV])
    folder.mkdir(parents=True, exist_ok=True)
    name = f"{task_instance.task_id}-{getattr(task_instance, 'map_index', -1)}-{task_instance.run_id}"
    (folder / f"{name}.txt").write_text(profiler.output_text(unicode=True, color=False, show_all=False))
    (folder / f"{name}.html").write_text(profiler.output_html())


@hookimpl
def on_task_instance_success(previous_state, task_instance) -> None:
    _write(task_instance)


@hookimpl
def on_task_instance_failed(previous_state, task_instance, error) -> None:
    _write(task_instance)


class BenchTaskProfilePlugin(AirflowPlugin):
    name = "canvas_aspen_bench_task_profile"
    listeners = [sys.modules[__name__]]
