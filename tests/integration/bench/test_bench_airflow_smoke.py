"""A smoke run of the real-scheduler benchmark (``python -m bench --airflow local``) on a tiny
district: a real Airflow (LocalExecutor on PostgreSQL) runs the passback's DAG for a first full
run and the naive DAG right after, both triggered through the REST API; the records carry
each task's stage and times, the sandbox's request counts and the ratio to the naive DAG.
Skipped (failed under ``CI_REQUIRE_SERVICES=1``) without PostgreSQL."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

pytestmark = pytest.mark.slow

STAGES = {"plan", "extract", "validate", "match", "deltas", "post", "verify", "report"}


def _postgres_or_skip() -> None:
    import sqlalchemy as sa
    from sqlalchemy.pool import NullPool

    from sandbox.airflow_stack import DEFAULT_PG_URL

    url = os.environ.get("CANVAS_ASPEN_TEST_PG_URL", DEFAULT_PG_URL)
    engine = sa.create_engine(url, poolclass=NullPool, connect_args={"connect_timeout": 3})
    try:
        with engine.connect():
            pass
    except Exception as exc:  # noqa: BLE001
        if os.environ.get("CI_REQUIRE_SERVICES") == "1":
            pytest.fail(f"PostgreSQL not reachable at {url}: {exc}")
        pytest.skip(f"PostgreSQL not reachable at {url}")
    finally:
        engine.dispose()


def test_bench_under_a_real_local_executor_on_a_tiny_district(tmp_path, repo_root):
    _postgres_or_skip()
    env = dict(os.environ, PYTHONPATH=str(repo_root))
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench",
            "--size",
            "XS",
            "--airflow",
            "local",
            "--runs",
            "first,naive",
            "--no-data-docs",
            "--no-record",
            "--cache",
            str(tmp_path / "cache"),
            "--workdir",
            str(tmp_path),
        ],
        cwd=repo_root,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    recs = {
        r["run"]: r for r in (json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{"))
    }
    assert set(recs) == {"first", "naive"}
    ours, naive = recs["first"], recs["naive"]
    assert ours["airflow"] == naive["airflow"] == "LocalExecutor"

    # every task of the DAG ran under the scheduler, with its stage, queue and run times
    assert STAGES <= {t["stage"] for t in ours["tasks"]} and all(
        t["state"] == "success" for t in ours["tasks"]
    )
    assert all(t["queued_s"] is not None and t["running_s"] > 0 for t in ours["tasks"])
    assert ours["shards"] == 1  # three courses: one shard
    assert set(ours["stages"]) == {t["stage"] for t in ours["tasks"]}
    assert 0 < ours["dag_run_s"] <= ours["wall_s"]
    timeline = ours["timeline"]
    assert abs(timeline["tasks_running_s"] + timeline["no_task_running_s"] - ours["wall_s"]) < 0.01
    assert ours["peak_rss_mb"] > 200  # the whole Airflow tree, not one process
    assert len(ours["load_avg_before"]) == 3

    # a first run: every eligible grade posted once and read back, at about the minimum requests
    assert ours["totals"]["posted"] > 0 and ours["totals"]["failed"] == 0
    assert ours["requests"]["aspen"]["put_result"] == ours["totals"]["posted"]
    assert ours["verify"]["mismatched"] == 0
    assert ours["requests_total"]["canvas"] >= ours["min_requests_total"]["canvas"] > 0

    # the naive DAG: one task, every graded result PUT again, one request at a time
    assert [t["stage"] for t in naive["tasks"]] == ["naive"]
    assert naive["requests"]["aspen"].get("put_result", 0) == naive["naive"]["results"] > 0
    assert naive["max_in_flight"] == {"canvas": 1, "aspen": 1}
    assert naive["naive_over_runs"] == {"first": round(naive["wall_s"] / ours["wall_s"], 2)}
