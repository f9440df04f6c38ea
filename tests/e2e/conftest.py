"""End-to-end fixtures: a migrated Airflow metadata DB and the DAG run for real with
``dag.test()`` against the sandbox."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

DAG_ID = "canvas_aspen_grade_passback"


@pytest.fixture(scope="session")
def airflow_db(airflow_home):
    """`airflow db migrate` into the session's isolated Airflow home (SQLite)."""
    airflow = Path(sys.executable).parent / "airflow"
    out = subprocess.run([str(airflow), "db", "migrate"], env=dict(os.environ), capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    return airflow_home


@pytest.fixture(scope="session")
def passback_dag(airflow_db, repo_root):
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(repo_root / "dags"))
    assert bag.import_errors == {}
    return bag.dags[DAG_ID]


class Runner:
    """Runs the DAG with ``dag.test()`` and hands back the run's report."""

    def __init__(self, dag, reports_dir: Path):
        self.dag, self.reports_dir = dag, reports_dir
        # dag.test() resolves params on the shared DAG object: always pass every param, so
        # one test's conf can never leak into the next run
        self.defaults = {"course_ids": [], "dry_run": False, "full_resync": False, "delete_orphans": False,
                         "category_mappings": {}, "mapping_file": ""}

    def __call__(self, **conf) -> tuple[str, dict]:
        before = set(self.reports_dir.glob("*")) if self.reports_dir.exists() else set()
        dr = self.dag.test(run_conf={**self.defaults, **conf})
        new = [p for p in self.reports_dir.glob("*") if p not in before]
        assert len(new) == 1, f"expected one new report folder, got {new} (run state {dr.state})"
        return str(dr.state), json.loads((new[0] / "report.json").read_text())


@pytest.fixture
def run_passback(passback_dag, tmp_path, monkeypatch):
    """``run_passback(sb, **conf)``: the DAG against sandbox ``sb`` with its own stage
    files, reports and ledger (one ledger per test, shared by the test's runs)."""
    reports = tmp_path / "reports"
    monkeypatch.setenv("CANVAS_ASPEN_STAGE_ROOT", f"file://{tmp_path / 'stage'}")
    monkeypatch.setenv("CANVAS_ASPEN_REPORTS_DIR", str(reports))
    monkeypatch.setenv("CANVAS_ASPEN_SHARDS", "2")
    monkeypatch.setenv("AIRFLOW_CONN_CANVAS_ASPEN_LEDGER", json.dumps(
        {"conn_type": "sqlite", "extra": {"sqlalchemy_url": f"sqlite:///{tmp_path / 'ledger.db'}"}}))
    runner = Runner(passback_dag, reports)

    def run(sb, **conf):
        for key, value in sb.airflow_conn_env().items():
            monkeypatch.setenv(key, value)
        return runner(**conf)

    return run
