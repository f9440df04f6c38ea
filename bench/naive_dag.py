"""The naive baseline as an Airflow DAG: one task that does what clicking "Post Grades" in
every course does (:mod:`bench.naive`), for ``python -m bench --airflow``, which copies this
file into the DAG folder of the Airflow it starts, beside the passback's DAG, so both run
under the same scheduler one after the other. Not deployed (it is not in ``dags/``).

``conf``: ``out``, the file the task writes its counts and stage timings to. The connections
``canvas_naive`` and ``aspen_naive`` are the sandbox's with ``max_concurrency`` 1.
"""

from __future__ import annotations

from airflow.sdk import dag, get_current_context, task

NAIVE_DAG_ID = "canvas_aspen_naive_passback"


@dag(
    dag_id=NAIVE_DAG_ID,
    schedule=None,
    catchup=False,
    max_active_runs=1,
    tags=["benchmark"],
    default_args={"retries": 0},
)
def canvas_aspen_naive_passback():
    @task
    def naive_passback() -> dict:
        import json
        from pathlib import Path

        from bench import naive
        from bench.measure import HttpClock, RssSampler

        out = Path(get_current_context()["dag_run"].conf["out"])
        clock = HttpClock()
        clock.install()
        sampler = RssSampler().start()
        try:
            result = naive.run({}, clock, sampler, canvas_conn_id="canvas_naive", aspen_conn_id="aspen_naive")
        finally:
            sampler.stop()
        out.write_text(json.dumps(result))
        return result["naive"]

    naive_passback()


canvas_aspen_naive_passback()
