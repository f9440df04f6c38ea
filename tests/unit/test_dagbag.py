"""The DAG folder imports cleanly, and importing it is cheap and offline."""

import json
import subprocess
import sys

from airflow.dag_processing.dagbag import DagBag

DAG_ID = "canvas_aspen_grade_passback"


def test_dagbag_has_no_import_errors(repo_root):
    bag = DagBag(dag_folder=str(repo_root / "dags"))
    assert bag.import_errors == {}
    assert DAG_ID in bag.dag_ids


PARSE_PROBE = r"""
import json, socket, sys, runpy
def refuse(*a, **k):
    raise AssertionError("network access at DAG parse time")
socket.socket.connect = refuse
socket.create_connection = refuse
before = set(sys.modules)
runpy.run_path(sys.argv[1])
HEAVY = {"pandas", "great_expectations", "pyarrow", "numpy", "sqlalchemy_utils", "requests"}
heavy = sorted(m for m in set(sys.modules) - before if m.split(".")[0] in HEAVY)
print(json.dumps(heavy))
"""


def test_importing_the_dag_file_does_no_network_and_no_heavy_import(repo_root, airflow_home):
    # A fresh interpreter: whatever the test session already imported must not hide a heavy import.
    out = subprocess.run(
        [sys.executable, "-c", PARSE_PROBE, str(repo_root / "dags" / f"{DAG_ID}.py")],
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    assert json.loads(out.stdout.strip().splitlines()[-1]) == []
