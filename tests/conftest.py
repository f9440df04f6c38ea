"""Test-wide setup: an isolated Airflow home for the whole session.

Set before anything imports Airflow, so no test ever touches a developer's own
``~/airflow`` or the demo's ``.airflow/``.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
_HOME = Path(tempfile.mkdtemp(prefix="canvas-aspen-airflow-"))
os.environ["AIRFLOW_HOME"] = str(_HOME)
os.environ["AIRFLOW__CORE__DAGS_FOLDER"] = str(REPO / "dags")
os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
os.environ.setdefault("AIRFLOW__CORE__UNIT_TEST_MODE", "False")
os.environ["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] = f"sqlite:///{_HOME / 'airflow.db'}"
os.environ.setdefault("GX_ANALYTICS_ENABLED", "False")

import pytest  # noqa: E402


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO


@pytest.fixture(scope="session")
def airflow_home() -> Path:
    return _HOME


# --- the sandbox district (sandbox/; issue 3) -------------------------------------------------


@pytest.fixture
def sandbox_factory():
    """``sandbox_factory(scenario="demo", aspen_error_style="json", canvas_faults=None,
    aspen_faults=None, **settings)`` starts a sandbox (same arguments as ``Sandbox.start``);
    every sandbox it started is stopped at teardown, whatever the test's outcome."""
    from sandbox.control import Sandbox

    started = []

    def start(*args, **kwargs):
        sb = Sandbox.start(*args, **kwargs)
        started.append(sb)
        return sb

    yield start
    for sb in started:
        sb.stop()


@pytest.fixture(scope="session")
def demo_sandbox():
    """One ``demo`` sandbox for the session. Tests that change it call ``sb.reset()``."""
    from sandbox.control import Sandbox

    with Sandbox.start(scenario="demo") as sb:
        yield sb
