"""The grade passback on a real Airflow cluster: CeleryExecutor, PostgreSQL, Redis, separate processes.

What runs (all on 127.0.0.1, all started and stopped by this module):

* PostgreSQL: a fresh database ``airflow_e2e_<random>`` for Airflow's metadata *and* the Celery
  result backend, and ``ledger_e2e_<random>`` for the ledger (connection ``canvas_aspen_ledger``,
  type ``postgres``); both dropped at the end.
* Redis: the Celery broker, in a database number of its own (claimed with ``SETNX``, flushed at
  the end).
* ``airflow api-server`` (a free port), ``airflow scheduler``, ``airflow dag-processor`` and two
  ``airflow celery worker`` processes (Celery nodes ``w1@…``/``w2@…``, task instance hostnames
  ``canvas-aspen-e2e-w1``/``-w2``), each in its own process group, sharing one temporary
  ``AIRFLOW_HOME``, one JWT secret, one API secret key and one Fernet key. Each worker has one
  slot (concurrency 1, prefetch 1, late acks), so whenever two shards are queued at once they
  run on different workers.
* The sandbox Canvas and Aspen (``sandbox.control``, scenario ``demo``).

The test logs in through the API server (SimpleAuthManager, ``POST /auth/token``), unpauses the
DAG and triggers it through the REST API v2: first with ``{"course_ids": [101]}``, then without
conf. Each run must succeed and its report add up; the district run's mapped task instances must
have run on both workers; the ledger on PostgreSQL must carry run 1 into run 2 (course 101
unchanged); and the Aspen sandbox must end exactly in ``sandbox/scenarios/demo.expected.json``'s
state (after run 1: only course 101's part of it).

PostgreSQL/Redis unreachable: skipped with the reason, unless ``CI_REQUIRE_SERVICES=1``.
Locations: ``CANVAS_ASPEN_TEST_PG_URL`` (default ``postgresql://postgres@127.0.0.1:5432/test``)
and ``CANVAS_ASPEN_TEST_REDIS_URL`` (default ``redis://127.0.0.1:6379``). Failures quote the
tails of the processes' and tasks' logs; ``CANVAS_ASPEN_E2E_KEEP=1`` keeps the whole temporary
Airflow home (logs, stage files, reports) for a look afterwards. About 6-10 minutes on 2 cores.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

pytestmark = [pytest.mark.slow, pytest.mark.postgres, pytest.mark.timeout(2400)]

DAG_ID = "canvas_aspen_grade_passback"
REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
PG_URL = os.environ.get("CANVAS_ASPEN_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("CANVAS_ASPEN_TEST_REDIS_URL", "redis://127.0.0.1:6379")
EXPECTED = json.loads((REPO / "sandbox" / "scenarios" / "demo.expected.json").read_text())
WORKERS = ("w1", "w2")
SHARDS = 2
STAGES = ("extract", "validate", "match", "deltas", "post", "verify")  # the mapped tasks
STARTUP_TIMEOUT = 300.0  # every process up, both workers answering, the DAG parsed
RUN_TIMEOUT = 900.0  # one DAG run, queued to finished (GX and cold imports are slow on 2 cores)
STOP_TIMEOUT = 30.0  # per process group, SIGTERM to SIGKILL
CLAIM_KEY = "canvas_aspen_e2e_claim"
FINISHED = {"success", "failed"}


# --------------------------------------------------------------------------- services


def _unavailable(reason: str) -> None:
    if os.environ.get("CI_REQUIRE_SERVICES") == "1":
        pytest.fail(f"{reason} (CI_REQUIRE_SERVICES=1: PostgreSQL and Redis are required)")
    pytest.skip(reason)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text.splitlines()[0] if text else ''}"


@contextlib.contextmanager
def _postgres_databases(*prefixes: str) -> Iterator[list[Any]]:
    """Fresh uniquely named databases, dropped (WITH FORCE) afterwards; yields their URLs."""
    import sqlalchemy as sa
    from sqlalchemy.pool import NullPool

    admin_url = sa.make_url(PG_URL)
    admin = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT", poolclass=NullPool,
                             connect_args={"connect_timeout": 3})
    try:
        with admin.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
    except Exception as exc:  # no server to run the cluster on
        admin.dispose()
        _unavailable(f"PostgreSQL not reachable at {admin_url.render_as_string()}: {_first_line(exc)}")
    suffix = uuid.uuid4().hex[:10]
    names = [f"{prefix}_{suffix}" for prefix in prefixes]
    created: list[str] = []
    try:
        with admin.connect() as conn:
            for name in names:
                conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
                created.append(name)
        yield [admin_url.set(database=name) for name in names]
    finally:
        with admin.connect() as conn:
            for name in created:
                conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


@contextlib.contextmanager
def _redis_database() -> Iterator[str]:
    """An empty Redis database number of our own (SETNX claim); flushed afterwards."""
    import redis

    try:
        probe = redis.Redis.from_url(REDIS_URL, socket_timeout=3, socket_connect_timeout=3)
        probe.ping()
        count = int(probe.config_get("databases").get("databases", 16))
    except Exception as exc:  # no broker to run the cluster on
        _unavailable(f"Redis not reachable at {REDIS_URL}: {_first_line(exc)}")
    finally:
        with contextlib.suppress(Exception):
            probe.close()
    token = uuid.uuid4().hex
    for number in range(count - 1, 0, -1):  # from the top: db 0 is everybody's default
        client = redis.Redis.from_url(REDIS_URL, db=number, socket_timeout=5)
        if client.dbsize() == 0 and client.set(CLAIM_KEY, token, nx=True):
            try:
                yield f"{REDIS_URL.rstrip('/')}/{number}"
            finally:
                if client.get(CLAIM_KEY) == token.encode():
                    client.flushdb()
                client.close()
            return
        client.close()
    _unavailable(f"Redis at {REDIS_URL}: no empty database number to use as the test's broker")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# --------------------------------------------------------------------------- processes


def _child_setup() -> None:  # pragma: no cover - runs in the child
    """Own process group (stopped as a whole); on Linux, die with the test process."""
    os.setsid()
    with contextlib.suppress(OSError, AttributeError):
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


@dataclass
class Proc:
    name: str
    popen: subprocess.Popen
    log: Path

    def tail(self, lines: int = 40) -> str:
        try:
            text = self.log.read_text(errors="replace").splitlines()
        except FileNotFoundError:
            return ""
        return "\n".join(text[-lines:])


@dataclass
class Cluster:
    home: Path
    env: dict[str, str]
    api_url: str
    reports_dir: Path
    sandbox: Any
    password: str
    broker_url: str
    procs: list[Proc] = field(default_factory=list)
    token: str | None = None

    # --- processes -------------------------------------------------------------------------

    def spawn(self, name: str, *args: str, extra_env: dict[str, str] | None = None) -> Proc:
        log = self.home / "logs" / f"{name}.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        with log.open("ab") as out:
            popen = subprocess.Popen([str(BIN / "airflow"), *args], env={**self.env, **(extra_env or {})},
                                     cwd=self.home, stdout=out, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, preexec_fn=_child_setup)
        proc = Proc(name, popen, log)
        self.procs.append(proc)
        return proc

    def check_alive(self) -> None:
        for proc in self.procs:
            if proc.popen.poll() is not None:
                raise AssertionError(f"{proc.name} exited with {proc.popen.returncode}:\n{proc.tail()}")

    def stop(self) -> None:
        """SIGTERM to every process group and every descendant; SIGKILL what is left after a while."""
        import psutil

        victims: list[psutil.Process] = []
        for proc in self.procs:
            with contextlib.suppress(psutil.Error):
                parent = psutil.Process(proc.popen.pid)
                victims += [parent, *parent.children(recursive=True)]
        for proc in self.procs:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.popen.pid, signal.SIGTERM)
        for victim in victims:
            with contextlib.suppress(psutil.Error):
                victim.terminate()
        _, alive = psutil.wait_procs(victims, timeout=STOP_TIMEOUT)
        for proc in self.procs:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.popen.pid, signal.SIGKILL)
        for victim in alive:
            with contextlib.suppress(psutil.Error):
                victim.kill()
        psutil.wait_procs(alive, timeout=10)
        for proc in self.procs:
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.popen.wait(timeout=10)

    def diagnostics(self) -> str:
        parts = [f"--- {p.name} (exit {p.popen.poll()}) {p.log}\n{p.tail(25)}" for p in self.procs]
        return "\n".join(parts)

    # --- REST API ----------------------------------------------------------------------------

    def request(self, method: str, path: str, *, expect: tuple[int, ...] = (200,), **kwargs: Any) -> Any:
        import requests

        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        with requests.Session() as session:
            session.trust_env = False  # loopback: never through a proxy
            response = session.request(method, f"{self.api_url}{path}", headers=headers, timeout=30, **kwargs)
        if response.status_code not in expect:
            raise AssertionError(f"{method} {path}: {response.status_code} {response.text[:2000]}")
        return response.json() if response.content else None

    def login(self) -> None:
        """SimpleAuthManager's ``POST /auth/token``: a JWT for the REST API."""
        self.token = None
        body = self.request("POST", "/auth/token", expect=(200, 201),
                            json={"username": "admin", "password": self.password})
        self.token = body["access_token"]

    def trigger(self, run_id: str, conf: dict | None) -> None:
        body: dict[str, Any] = {"dag_run_id": run_id, "logical_date": None}
        if conf is not None:
            body["conf"] = conf
        self.request("POST", f"/api/v2/dags/{DAG_ID}/dagRuns", json=body)

    def wait_for_run(self, run_id: str, timeout: float = RUN_TIMEOUT) -> dict:
        deadline = time.monotonic() + timeout
        while True:
            run = self.request("GET", f"/api/v2/dags/{DAG_ID}/dagRuns/{run_id}")
            if run["state"] in FINISHED:
                return run
            self.check_alive()
            if time.monotonic() > deadline:
                raise AssertionError(f"run {run_id} still {run['state']} after {timeout:.0f}s\n"
                                     f"{self.task_summary(run_id)}\n{self.diagnostics()}")
            time.sleep(2)

    def task_instances(self, run_id: str) -> list[dict]:
        body = self.request("GET", f"/api/v2/dags/{DAG_ID}/dagRuns/{run_id}/taskInstances",
                            params={"limit": 1000})
        return body["task_instances"]

    def task_summary(self, run_id: str) -> str:
        lines = []
        for ti in sorted(self.task_instances(run_id), key=lambda t: (t["task_id"], t["map_index"])):
            lines.append(f"  {ti['task_id']}[{ti['map_index']}] {ti['state']} on {ti['hostname']} "
                         f"try {ti['try_number']}")
            if ti["state"] not in ("success", None, "skipped"):
                lines.append(self.task_log_tail(run_id, ti))
        return "\n".join(lines)

    def task_log_tail(self, run_id: str, ti: dict, lines: int = 30) -> str:
        pattern = f"dag_id={DAG_ID}/run_id={run_id}/task_id={ti['task_id']}/"
        logs = sorted((self.home / "logs").glob(pattern + "**/*.log"), key=lambda p: p.stat().st_mtime)
        if not logs:
            return "    (no task log)"
        text = logs[-1].read_text(errors="replace").splitlines()[-lines:]
        return "\n".join("    " + line[:400] for line in text)

    def report(self, run_id: str) -> dict:
        for path in self.reports_dir.glob("*/report.json"):
            doc = json.loads(path.read_text())
            if doc.get("run_id") == run_id:
                return doc
        raise AssertionError(f"no report.json for {run_id} under {self.reports_dir}")


def _wait(what: str, cluster: Cluster, probe, timeout: float) -> Any:
    """Call ``probe()`` until it returns something truthy; fail with the processes' logs."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        cluster.check_alive()
        try:
            result = probe()
        except Exception as exc:  # not up yet
            last = exc
        else:
            if result:
                return result
            last = result
        time.sleep(1)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what} (last: {last!r})\n"
                         f"{cluster.diagnostics()}")


def _celery_nodes(broker_url: str) -> set[str]:
    """The Celery nodes answering a ping on the broker."""
    from celery import Celery

    app = Celery("canvas_aspen_e2e_probe", broker=broker_url)
    try:
        replies = app.control.ping(timeout=2.0) or []
    finally:
        app.close()
    return {name for reply in replies for name in reply}


HOSTNAME_MODULE = '''"""Written by tests/e2e/test_celery_cluster.py: each worker's task instance hostname."""
import os


def hostname() -> str:
    return os.environ["CANVAS_ASPEN_E2E_HOSTNAME"]
'''


def _base_env(home: Path, *, metadata_url, ledger_url, broker_url: str, api_port: int, password_file: Path,
              sandbox_env: dict[str, str]) -> dict[str, str]:
    """One configuration for every process; nothing from the developer's or the test session's
    Airflow settings leaks in."""
    from cryptography.fernet import Fernet

    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("AIRFLOW__", "AIRFLOW_CONN_", "AIRFLOW_VAR_", "AIRFLOW_CONFIG", "CANVAS_ASPEN_"))}
    metadata = metadata_url.set(drivername="postgresql+psycopg2").render_as_string(hide_password=False)
    backend = metadata_url.set(drivername="postgresql").render_as_string(hide_password=False)
    ledger_conn = {"conn_type": "postgres", "host": ledger_url.host or "127.0.0.1", "port": ledger_url.port or 5432,
                   "login": ledger_url.username or "postgres", "schema": ledger_url.database}
    if ledger_url.password:
        ledger_conn["password"] = ledger_url.password
    env.update({
        "AIRFLOW_HOME": str(home),
        "PYTHONPATH": os.pathsep.join(filter(None, [str(home), str(REPO), os.environ.get("PYTHONPATH")])),
        "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
        "AIRFLOW__CORE__DAGS_FOLDER": str(REPO / "dags"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__UNIT_TEST_MODE": "False",
        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "True",
        "AIRFLOW__CORE__FERNET_KEY": Fernet.generate_key().decode(),
        "AIRFLOW__CORE__DEFAULT_TASK_RETRY_DELAY": "5",
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{api_port}/execution/",
        "AIRFLOW__CORE__AUTH_MANAGER":
            "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": "admin:admin",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(password_file),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": metadata,
        "AIRFLOW__CELERY__BROKER_URL": broker_url,
        "AIRFLOW__CELERY__CELERY_CONFIG_OPTIONS": "canvas_aspen.celery_config.CELERY_CONFIG",  # as docker compose
        "AIRFLOW__CELERY__WORKER_PREFETCH_MULTIPLIER": "1",
        "AIRFLOW__CELERY__TASK_ACKS_LATE": "True",
        "AIRFLOW__CELERY__RESULT_BACKEND": f"db+{backend}",
        "AIRFLOW__API__HOST": "127.0.0.1",
        "AIRFLOW__API__PORT": str(api_port),
        "AIRFLOW__API__BASE_URL": f"http://127.0.0.1:{api_port}",
        "AIRFLOW__API__WORKERS": "1",
        "AIRFLOW__API__SECRET_KEY": secrets.token_hex(32),
        "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_hex(32),
        "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
        "AIRFLOW__SCHEDULER__ENABLE_HEALTH_CHECK": "False",
        "AIRFLOW__LOGGING__LOGGING_LEVEL": "INFO",
        "AIRFLOW_CONN_CANVAS_ASPEN_LEDGER": json.dumps(ledger_conn),
        "CANVAS_ASPEN_SHARDS": str(SHARDS),
        "CANVAS_ASPEN_STAGE_ROOT": f"file://{home / 'stage'}",
        "CANVAS_ASPEN_REPORTS_DIR": str(home / "reports"),
        "GX_ANALYTICS_ENABLED": "False",
        "NO_PROXY": "127.0.0.1,localhost",
        "no_proxy": "127.0.0.1,localhost",
    })
    env.update(sandbox_env)
    return env


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    from sandbox.control import Sandbox

    with contextlib.ExitStack() as stack:
        metadata_url, ledger_url = stack.enter_context(_postgres_databases("airflow_e2e", "ledger_e2e"))
        broker_url = stack.enter_context(_redis_database())

        # Not under pytest's basetemp: another pytest session may prune that while we run.
        home = Path(tempfile.mkdtemp(prefix="canvas-aspen-cluster-"))
        if os.environ.get("CANVAS_ASPEN_E2E_KEEP") == "1":
            print(f"\ncluster home (kept): {home}")
        else:
            stack.callback(shutil.rmtree, home, ignore_errors=True)
        (home / "canvas_aspen_e2e_hostname.py").write_text(HOSTNAME_MODULE)
        password = secrets.token_urlsafe(16)
        password_file = home / "passwords.json"
        password_file.write_text(json.dumps({"admin": password}))
        password_file.chmod(0o600)

        sb = Sandbox.start(scenario="demo")
        stack.callback(sb.stop)

        api_port = _free_port()
        env = _base_env(home, metadata_url=metadata_url, ledger_url=ledger_url, broker_url=broker_url,
                        api_port=api_port, password_file=password_file, sandbox_env=sb.airflow_conn_env())
        c = Cluster(home=home, env=env, api_url=f"http://127.0.0.1:{api_port}", reports_dir=home / "reports",
                    sandbox=sb, password=password, broker_url=broker_url)
        stack.callback(c.stop)

        migrate = subprocess.run([str(BIN / "airflow"), "db", "migrate"], env=env, cwd=home,
                                 capture_output=True, text=True, timeout=400)
        assert migrate.returncode == 0, migrate.stdout[-3000:] + migrate.stderr[-3000:]
        for pool in ("canvas_api", "aspen_api"):  # as docker compose's airflow-init creates them
            made = subprocess.run([str(BIN / "airflow"), "pools", "set", pool, "1", "grade passback"], env=env,
                                  cwd=home, capture_output=True, text=True, timeout=120)
            assert made.returncode == 0, made.stdout[-2000:] + made.stderr[-2000:]

        c.spawn("api-server", "api-server", "--host", "127.0.0.1", "--port", str(api_port), "--workers", "1")
        c.spawn("scheduler", "scheduler")
        c.spawn("dag-processor", "dag-processor")
        for name in WORKERS:
            c.spawn(f"worker-{name}", "celery", "worker", "--celery-hostname", f"{name}@canvas-aspen-e2e",
                    "--concurrency", "1", "--skip-serve-logs", "--without-gossip", "--without-mingle",
                    extra_env={"AIRFLOW__CORE__HOSTNAME_CALLABLE": "canvas_aspen_e2e_hostname.hostname",
                               "CANVAS_ASPEN_E2E_HOSTNAME": f"canvas-aspen-e2e-{name}"})

        _wait("the API server", c, lambda: c.request("GET", "/api/v2/monitor/health"), STARTUP_TIMEOUT)
        c.login()
        _wait("the scheduler and the dag-processor to report healthy", c, lambda: all(
            (c.request("GET", "/api/v2/monitor/health").get(part) or {}).get("status") == "healthy"
            for part in ("metadatabase", "scheduler", "dag_processor")), STARTUP_TIMEOUT)
        nodes = {f"{name}@canvas-aspen-e2e" for name in WORKERS}
        _wait("both Celery workers to answer a ping", c, lambda: nodes <= _celery_nodes(broker_url), STARTUP_TIMEOUT)

        def parsed() -> bool:
            errors = c.request("GET", "/api/v2/importErrors")["import_errors"]
            if errors:
                raise AssertionError(f"DAG import errors: {json.dumps(errors)[:3000]}")
            return c.request("GET", f"/api/v2/dags/{DAG_ID}", expect=(200, 404)).get("dag_id") == DAG_ID

        _wait(f"the dag-processor to parse {DAG_ID}", c, parsed, STARTUP_TIMEOUT)
        yield c


# --------------------------------------------------------------------------- expectations


def _instant(value: str | None) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value.replace("Z", "+00:00"))


def _line_item_view(item: dict) -> dict:
    """The fields demo.expected.json states, read from a OneRoster line item as Aspen holds it."""

    def ref(value: Any) -> Any:
        return value.get("sourcedId") if isinstance(value, dict) else value

    return {
        "title": item.get("title"),
        "class": ref(item.get("class")),
        "category": ref(item.get("category")),
        "gradingPeriod": ref(item.get("gradingPeriod")),
        "dueDate": _instant(item.get("dueDate")),
        "assignDate": _instant(item.get("assignDate")),
        "resultValueMin": None if item.get("resultValueMin") is None else float(item["resultValueMin"]),
        "resultValueMax": None if item.get("resultValueMax") is None else float(item["resultValueMax"]),
    }


def _result_view(result: dict) -> dict:
    def ref(value: Any) -> Any:
        return value.get("sourcedId") if isinstance(value, dict) else value

    score = result.get("score")
    return {"lineItem": ref(result.get("lineItem")), "student": ref(result.get("student")),
            "scoreStatus": result.get("scoreStatus"), "score": None if score is None else float(score)}


def _ours(state: dict, kind: str) -> dict:
    return {k: v for k, v in state[kind].items() if k.startswith("canvas-")}


def _assert_aspen_state(state: dict, *, classes: set[str] | None) -> None:
    """Aspen holds exactly the expected line items and results of ``classes`` (None: all), the
    'untouched' records are still there, and nothing else of ours."""
    untouched_items = set(EXPECTED["untouched"]["lineItems"])
    untouched_results = set(EXPECTED["untouched"]["results"])
    want_items = {k: _line_item_view(v) for k, v in EXPECTED["lineItems"].items()
                  if classes is None or v["class"] in classes}
    want_results = {k: _result_view(v) for k, v in EXPECTED["results"].items()
                    if v["lineItem"] in want_items}

    missing = untouched_items - set(state["lineItems"]) | (untouched_results - set(state["results"]))
    assert not missing, f"records that must stay in Aspen are gone: {sorted(missing)}"

    have_items = {k: _line_item_view(v) for k, v in _ours(state, "lineItems").items() if k not in untouched_items}
    have_results = {k: _result_view(v) for k, v in _ours(state, "results").items() if k not in untouched_results}
    assert set(have_items) == set(want_items), (
        f"line items: missing {sorted(set(want_items) - set(have_items))}, "
        f"unexpected {sorted(set(have_items) - set(want_items))}")
    wrong = {k: (have_items[k], want_items[k]) for k in want_items if have_items[k] != want_items[k]}
    assert not wrong, f"line items differ (have, want): {wrong}"
    assert set(have_results) == set(want_results), (
        f"results: missing {sorted(set(want_results) - set(have_results))}, "
        f"unexpected {sorted(set(have_results) - set(want_results))}")
    wrong = {k: (have_results[k], want_results[k]) for k in want_results if have_results[k] != want_results[k]}
    assert not wrong, f"results differ (have, want): {wrong}"


def _assert_report_adds_up(report: dict) -> None:
    totals = report["totals"]
    buckets = ("posted", "unchanged", "empty", "held_back", "failed")
    assert totals["considered"] == sum(totals[b] for b in buckets), totals
    for bucket in ("considered", *buckets):
        assert totals[bucket] == sum(course[bucket] for course in report["courses"]), (bucket, report["courses"])
    assert totals["failed"] == 0, totals
    assert report["verify"]["mismatched"] == 0, report["verify"]


def _mapped(cluster: Cluster, run_id: str) -> list[dict]:
    """The run's mapped task instances, after checking every task instance succeeded and every
    stage ran over the same shards."""
    tis = cluster.task_instances(run_id)
    not_done = [(t["task_id"], t["map_index"], t["state"]) for t in tis if t["state"] != "success"]
    assert tis and not not_done, f"task instances not successful: {not_done or 'none at all'}"
    mapped = [t for t in tis if t["map_index"] >= 0]
    shards = {stage: sorted(t["map_index"] for t in mapped if t["task_id"] == stage) for stage in STAGES}
    assert len({tuple(v) for v in shards.values()}) == 1 and shards["extract"], f"shards per stage: {shards}"
    return mapped


def _hosts(tis: list[dict]) -> set[str]:
    return {t["hostname"] for t in tis}


# --------------------------------------------------------------------------- the test


def test_passback_on_a_celery_cluster(cluster: Cluster) -> None:
    c = cluster
    workers = {f"canvas-aspen-e2e-{name}" for name in WORKERS}
    dag = c.request("PATCH", f"/api/v2/dags/{DAG_ID}", json={"is_paused": False})
    assert dag["is_paused"] is False
    suffix = uuid.uuid4().hex[:8]

    # 1. A backfill of one course from the REST API (the trigger form's course_ids): one shard.
    first = f"e2e_course_101_{suffix}"
    c.trigger(first, {"course_ids": [101]})
    run = c.wait_for_run(first)
    assert run["state"] == "success", f"{first}: {run['state']}\n{c.task_summary(first)}"
    assert run["conf"] == {"course_ids": [101]}
    mapped_first = _mapped(c, first)
    assert _hosts(mapped_first) <= workers, _hosts(mapped_first)
    report = c.report(first)
    _assert_report_adds_up(report)
    assert [course["canvas_course_id"] for course in report["courses"]] == [101]
    _assert_aspen_state(c.sandbox.state(), classes={"ALG1-P1"})
    posted_first = report["totals"]["posted"]
    assert posted_first == sum(1 for r in EXPECTED["results"].values() if r["lineItem"].endswith("-s1011"))

    # 2. The whole district, no conf at all (what the nightly schedule does): SHARDS shards,
    #    queued together, so they run on both workers.
    second = f"e2e_district_{suffix}"
    c.trigger(second, None)
    run = c.wait_for_run(second)
    assert run["state"] == "success", f"{second}: {run['state']}\n{c.task_summary(second)}"
    mapped_second = _mapped(c, second)
    assert len(mapped_second) == len(STAGES) * SHARDS, len(mapped_second)
    assert _hosts(mapped_second) == workers, (
        f"the district run's shards ran on {_hosts(mapped_second)}, expected both workers {workers}\n"
        f"{c.task_summary(second)}")
    report = c.report(second)
    _assert_report_adds_up(report)
    assert {course["canvas_course_id"] for course in report["courses"]} >= {101, 102, 103}
    _assert_aspen_state(c.sandbox.state(), classes=None)
    # The ledger (on PostgreSQL) carried run 1 into run 2: course 101 unchanged, the rest posted once.
    assert report["totals"]["posted"] == len(EXPECTED["results"]) - posted_first, report["totals"]
    assert report["totals"]["unchanged"] == posted_first, report["totals"]
    assert report["totals"]["held_back"] == len(EXPECTED["held_back"]), report["totals"]
