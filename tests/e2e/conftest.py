"""End-to-end fixtures: a migrated Airflow metadata DB and the DAG run for real with
``dag.test()`` against the sandbox."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

DAG_ID = "canvas_aspen_grade_passback"


@pytest.fixture(scope="session")
def airflow_db(airflow_home):
    """`airflow db migrate` into the session's isolated Airflow home (SQLite)."""
    airflow = Path(sys.executable).parent / "airflow"
    out = subprocess.run(
        [str(airflow), "db", "migrate"], env=dict(os.environ), capture_output=True, text=True, timeout=300
    )
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
        self.defaults = {
            "course_ids": [],
            "dry_run": False,
            "full_resync": False,
            "delete_orphans": False,
            "category_mappings": {},
            "mapping_file": "",
        }

    def run(self, **conf) -> tuple[Any, Path, dict]:
        """The DAG run, its new report folder and its report."""
        before = set(self.reports_dir.glob("*")) if self.reports_dir.exists() else set()
        dr = self.dag.test(run_conf={**self.defaults, **conf})
        new = [p for p in self.reports_dir.glob("*") if p not in before]
        assert len(new) == 1, f"expected one new report folder, got {new} (run state {dr.state})"
        return dr, new[0], json.loads((new[0] / "report.json").read_text())

    def __call__(self, **conf) -> tuple[str, dict]:
        dr, folder, report = self.run(**conf)
        report["_folder"] = str(folder)
        return str(dr.state), report


def _runner(dag, base: Path, mp: pytest.MonkeyPatch, *, whole: bool = False):
    """``run(sb, **conf)``: the DAG against sandbox ``sb`` with its own stage files,
    reports and ledger under ``base`` (one ledger shared by the runs of this runner), giving
    (state, report), or with ``whole`` (state, report, the DAG run, the report folder)."""
    reports = base / "reports"
    mp.setenv("CANVAS_ASPEN_STAGE_ROOT", f"file://{base / 'stage'}")
    mp.setenv("CANVAS_ASPEN_REPORTS_DIR", str(reports))
    mp.setenv("CANVAS_ASPEN_SHARDS", "2")
    mp.setenv("CANVAS_ASPEN_COURSES_PER_SHARD", "1")  # two shards of the demo's three courses
    mp.setenv(
        "AIRFLOW_CONN_CANVAS_ASPEN_LEDGER",
        json.dumps({"conn_type": "sqlite", "extra": {"sqlalchemy_url": f"sqlite:///{base / 'ledger.db'}"}}),
    )
    runner = Runner(dag, reports)

    def run(sb, **conf):
        for key, value in sb.airflow_conn_env().items():
            mp.setenv(key, value)
        if not whole:
            return runner(**conf)
        dr, folder, report = runner.run(**conf)
        return str(dr.state), report, dr, folder

    return run


@pytest.fixture
def run_passback(passback_dag, tmp_path, monkeypatch):
    return _runner(passback_dag, tmp_path, monkeypatch)


@pytest.fixture(scope="module")
def run_passback_module(passback_dag, tmp_path_factory):
    with pytest.MonkeyPatch.context() as mp:
        yield _runner(passback_dag, tmp_path_factory.mktemp("passback"), mp)


@pytest.fixture(scope="module")
def sandbox_factory_module():
    """Like ``sandbox_factory``, for a module's worth of tests."""
    from sandbox.control import Sandbox

    started = []

    def start(*args, **kwargs):
        started.append(Sandbox.start(*args, **kwargs))
        return started[-1]

    yield start
    for sb in started:
        sb.stop()
