"""A LocalExecutor's workers have Great Expectations, pandas and the package imported once,
before they are forked from the scheduler, so no validate or match task imports them again;
other Airflow jobs (dag-processor, triggerer) never import them."""

import json
import os
import subprocess
import sys

# A fresh interpreter, as `airflow scheduler` starts: the plugin is found through its entry
# point by Airflow's own listener manager; an Airflow job starts (on_starting), then the
# scheduler starts its LocalExecutor, which forks the worker processes.
PROBE = r"""
import json, sys
from airflow.jobs.job import Job
from airflow.listeners.listener import get_listener_manager

get_listener_manager().hook.on_starting(component=Job())
after_job_start = "great_expectations" in sys.modules

from airflow.executors.local_executor import LocalExecutor
executor = LocalExecutor(parallelism=1)
executor.start()
try:
    (pid,) = executor.workers
    with open(f"/proc/{pid}/maps") as maps:
        mapped = maps.read()
    worker = {"pandas": "/pandas/_libs/" in mapped, "pyarrow": "/pyarrow/" in mapped}
finally:
    executor.end()
print(json.dumps({"after_job_start": after_job_start,
                  "after_executor_start": "great_expectations" in sys.modules,
                  "stages": "canvas_aspen.stages" in sys.modules,
                  "ledger": "canvas_aspen.ledger" in sys.modules and "alembic.command" in sys.modules,
                  "worker": worker}))
"""


def _probe(airflow_home, **env) -> dict:
    out = subprocess.run(
        [sys.executable, "-c", PROBE],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "AIRFLOW_HOME": str(airflow_home), **env},
    )
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_local_executor_workers_are_forked_with_great_expectations_and_pandas_imported(airflow_home):
    seen = _probe(airflow_home)
    assert seen["after_job_start"] is False  # a job that starts no LocalExecutor imports nothing heavy
    assert seen["after_executor_start"] is True and seen["stages"] is True
    assert seen["ledger"] is True  # the ledger's tables and Alembic: not built again in each task
    assert seen["worker"] == {"pandas": True, "pyarrow": True}  # the forked worker has them mapped


def test_preload_can_be_turned_off(airflow_home):
    seen = _probe(airflow_home, CANVAS_ASPEN_PRELOAD="off")
    assert seen["after_executor_start"] is False
    assert seen["worker"] == {"pandas": False, "pyarrow": False}
