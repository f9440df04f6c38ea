"""A real Airflow on this machine, beside a sandbox district: for end-to-end tests and the benchmark.

Not a stand-in: ``airflow db migrate`` into a fresh PostgreSQL database, then ``airflow api-server``,
``airflow scheduler``, ``airflow dag-processor`` (and for the CeleryExecutor, N ``airflow celery
worker``s on Redis) as separate processes, each in its own process group, all bound to 127.0.0.1 on
free ports, sharing one temporary ``AIRFLOW_HOME``, one JWT secret, one API secret key and one
Fernet key. The repository's ``dags/`` folder, the sandbox's connections (``sb.airflow_conn_env()``)
and the package's stage/report/ledger settings, all under that home. SimpleAuthManager with one
admin user (``stack.username``/``stack.password``). **No pool is created** unless asked for.
What docker-compose.yaml sets to change how tasks run is set here too (the scheduler's idle sleep,
the Celery workers' preload). Everything else is Airflow's own default (a task's retry delay,
for one, is Airflow's 300 s), so what a test sees is what the shipped installation does.

    from sandbox.airflow_stack import AirflowStack, StackUnavailable
    from sandbox.control import Sandbox

    with Sandbox.start(scenario="demo") as sb, AirflowStack.start(sandbox=sb) as stack:
        stack.unpause()
        run_id = stack.trigger({"course_ids": [101]})
        assert stack.wait(run_id, timeout=600) == "success"
        stack.task_instances(run_id)   # REST API v2 dicts: task_id, map_index, state, pool,
                                       # queued_when, start_date, end_date, hostname, try_number
        stack.report(run_id)           # the run's report.json (dict)

``AirflowStack.start(...)`` options: ``executor`` ("LocalExecutor" or "CeleryExecutor"),
``celery_workers`` (names ``w1``…; task instance hostnames ``<hostname_prefix>-w1``…),
``worker_concurrency``, ``parallelism`` (LocalExecutor processes), ``shards``
(``CANVAS_ASPEN_SHARDS``), ``ledger`` ("postgres": a fresh database of its own, connection
``canvas_aspen_ledger``; "default": the package's own default, a SQLite file under the home),
``pools`` ({name: slots}, made with ``airflow pools set``; none by default), ``dags_folder`` (default: the
repository's ``dags/``; the DAG ``canvas_aspen_grade_passback`` must be in it), ``env`` (extra variables
for every process, applied last), ``keep`` (keep the home; also ``CANVAS_ASPEN_E2E_KEEP=1``).
``stack.components`` are the processes (``name``, ``popen``, ``log``), e.g. to measure their memory.

PostgreSQL (``CANVAS_ASPEN_TEST_PG_URL``, default ``postgresql://postgres@127.0.0.1:5432/test``,
trust auth) or, for Celery, Redis (``CANVAS_ASPEN_TEST_REDIS_URL``, default
``redis://127.0.0.1:6379``) not reachable: ``StackUnavailable`` (tests skip or fail on it).
Anything else going wrong: ``StackError`` whose message ends with the tail of each component's log.
Every wait is bounded; ``stop()`` (also on leaving the ``with``) kills every process tree, drops the
databases, flushes the Redis database and removes the home.
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
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

DAG_ID = "canvas_aspen_grade_passback"
REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
DEFAULT_PG_URL = "postgresql://postgres@127.0.0.1:5432/test"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379"
FINISHED = frozenset({"success", "failed"})
MIGRATE_TIMEOUT = 400.0
STARTUP_TIMEOUT = 300.0  # every process up, the workers answering, the DAG parsed
STOP_TIMEOUT = 30.0  # SIGTERM to SIGKILL
REQUEST_TIMEOUT = 30.0
CLAIM_KEY = "canvas_aspen_stack_claim"

HOSTNAME_MODULE = '''"""Written by sandbox/airflow_stack.py: each Celery worker's task instance hostname."""
import os


def hostname() -> str:
    return os.environ["CANVAS_ASPEN_STACK_HOSTNAME"]
'''


class StackError(RuntimeError):
    """The stack did not start, a component died, or a run did not finish in time."""


class StackUnavailable(StackError):
    """A service the stack needs (PostgreSQL, Redis) is not reachable: nothing was started."""


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text.splitlines()[0] if text else ''}"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _child_setup() -> None:  # pragma: no cover - runs in the child
    """Own process group (stopped as a whole); on Linux, die with the process that started it."""
    os.setsid()
    with contextlib.suppress(OSError, AttributeError):
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


@dataclass
class Component:
    """One Airflow process (api-server, scheduler, …) and its log file."""

    name: str
    popen: subprocess.Popen
    log: Path

    def tail(self, lines: int = 40) -> str:
        try:
            text = self.log.read_text(errors="replace").splitlines()
        except FileNotFoundError:
            return ""
        return "\n".join(text[-lines:])


# --------------------------------------------------------------------------- services


def _postgres_databases(stack: contextlib.ExitStack, *prefixes: str) -> list[Any]:
    """Fresh uniquely named databases, dropped (WITH FORCE) when ``stack`` closes; their URLs."""
    import sqlalchemy as sa
    from sqlalchemy.pool import NullPool

    admin_url = sa.make_url(os.environ.get("CANVAS_ASPEN_TEST_PG_URL", DEFAULT_PG_URL))
    admin = sa.create_engine(
        admin_url, isolation_level="AUTOCOMMIT", poolclass=NullPool, connect_args={"connect_timeout": 3}
    )
    try:
        with admin.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
    except Exception as exc:
        admin.dispose()
        raise StackUnavailable(
            f"PostgreSQL not reachable at {admin_url.render_as_string()}: {_first_line(exc)}"
        ) from None
    suffix = uuid.uuid4().hex[:10]
    created: list[str] = []

    def drop() -> None:
        with admin.connect() as conn:
            for name in created:
                conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()

    stack.callback(drop)
    with admin.connect() as conn:
        for prefix in prefixes:
            name = f"{prefix}_{suffix}"
            conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
            created.append(name)
    return [admin_url.set(database=name) for name in created]


def _redis_database(stack: contextlib.ExitStack) -> str:
    """An empty Redis database number of our own (SETNX claim), flushed when ``stack`` closes."""
    import redis

    redis_url = os.environ.get("CANVAS_ASPEN_TEST_REDIS_URL", DEFAULT_REDIS_URL)
    probe = None
    try:
        probe = redis.Redis.from_url(redis_url, socket_timeout=3, socket_connect_timeout=3)
        probe.ping()
        count = int(probe.config_get("databases").get("databases", 16))
    except Exception as exc:
        raise StackUnavailable(f"Redis not reachable at {redis_url}: {_first_line(exc)}") from None
    finally:
        if probe is not None:
            with contextlib.suppress(Exception):
                probe.close()
    token = uuid.uuid4().hex
    for number in range(count - 1, 0, -1):  # from the top: db 0 is everybody's default
        client = redis.Redis.from_url(redis_url, db=number, socket_timeout=5)
        if client.dbsize() == 0 and client.set(CLAIM_KEY, token, nx=True):

            def release(client=client) -> None:
                if client.get(CLAIM_KEY) == token.encode():
                    client.flushdb()
                client.close()

            stack.callback(release)
            return f"{redis_url.rstrip('/')}/{number}"
        client.close()
    raise StackUnavailable(f"Redis at {redis_url}: no empty database number to use as the broker")


# --------------------------------------------------------------------------- the stack


class AirflowStack:
    """A running Airflow. Make one with ``AirflowStack.start(...)`` (a context manager)."""

    def __init__(
        self,
        home: Path,
        env: dict[str, str],
        api_port: int,
        password: str,
        *,
        executor: str,
        broker_url: str | None,
        workers: tuple[str, ...],
        hostname_prefix: str,
    ) -> None:
        self.home = home
        self.env = env
        self.api_url = f"http://127.0.0.1:{api_port}"
        self.api_port = api_port
        self.username = "admin"
        self.password = password
        self.executor = executor
        self.broker_url = broker_url
        self.workers = workers
        self.worker_hostnames = {f"{hostname_prefix}-{name}" for name in workers}
        self.dag_id = DAG_ID
        self.sandbox: Any = None  # what start() was given, for the caller's convenience
        self.components: list[Component] = []
        self._token: str | None = None
        self._exit = contextlib.ExitStack()
        self._stopped = False

    # --- paths -------------------------------------------------------------------------------

    @property
    def logs_dir(self) -> Path:
        """Airflow's logs: one ``<component>.log`` per process, task logs under ``dag_id=…/``."""
        return self.home / "logs"

    @property
    def reports_dir(self) -> Path:
        return Path(self.env["CANVAS_ASPEN_REPORTS_DIR"])

    @property
    def stage_root(self) -> str:
        return self.env["CANVAS_ASPEN_STAGE_ROOT"]

    # --- life cycle --------------------------------------------------------------------------

    @classmethod
    def start(
        cls,
        sandbox: Any = None,
        *,
        conn_env: dict[str, str] | None = None,
        executor: str = "LocalExecutor",
        celery_workers: int = 2,
        worker_concurrency: int = 1,
        parallelism: int = 4,
        shards: int = 2,
        ledger: str = "postgres",
        pools: dict[str, int] | None = None,
        env: dict[str, str] | None = None,
        hostname_prefix: str = "canvas-aspen-stack",
        dags_folder: str | Path | None = None,
        keep: bool | None = None,
        startup_timeout: float = STARTUP_TIMEOUT,
    ) -> AirflowStack:
        """Start everything and wait until the API answers, the scheduler and dag-processor are
        healthy, every Celery worker answers a ping and the DAG is parsed without import errors.

        ``sandbox``: anything with ``airflow_conn_env()`` (a ``sandbox.control.Sandbox``), or pass the
        ``AIRFLOW_CONN_*`` variables as ``conn_env``."""
        if executor not in ("LocalExecutor", "CeleryExecutor"):
            raise ValueError(f"executor must be LocalExecutor or CeleryExecutor, not {executor!r}")
        if ledger not in ("postgres", "default"):
            raise ValueError(f"ledger must be 'postgres' or 'default', not {ledger!r}")
        connections = dict(conn_env or {})
        if sandbox is not None:
            connections.update(sandbox.airflow_conn_env())
        keep = os.environ.get("CANVAS_ASPEN_E2E_KEEP") == "1" if keep is None else keep

        exit_stack = contextlib.ExitStack()
        try:
            databases = _postgres_databases(
                exit_stack, "airflow_stack", *(["ledger_stack"] if ledger == "postgres" else [])
            )
            broker_url = _redis_database(exit_stack) if executor == "CeleryExecutor" else None
            # Not under pytest's basetemp: another pytest session may prune that while we run.
            home = Path(tempfile.mkdtemp(prefix="canvas-aspen-airflow-stack-"))
            home.chmod(0o700)
            if keep:
                print(f"airflow stack home (kept): {home}", file=sys.stderr)
            else:
                exit_stack.callback(shutil.rmtree, home, ignore_errors=True)
            password = secrets.token_urlsafe(16)
            password_file = home / "simple_auth_manager_passwords.json"
            password_file.write_text(json.dumps({"admin": password}))
            password_file.chmod(0o600)
            if executor == "CeleryExecutor":
                (home / "canvas_aspen_stack_hostname.py").write_text(HOSTNAME_MODULE)
            api_port = free_port()
            base = _base_env(
                home,
                metadata_url=databases[0],
                ledger_url=databases[1] if ledger == "postgres" else None,
                broker_url=broker_url,
                api_port=api_port,
                password_file=password_file,
                executor=executor,
                parallelism=parallelism,
                shards=shards,
                dags_folder=Path(dags_folder) if dags_folder else REPO / "dags",
            )
            base.update(connections)
            base.update(env or {})
            workers = (
                tuple(f"w{i + 1}" for i in range(celery_workers)) if executor == "CeleryExecutor" else ()
            )
            st = cls(
                home,
                base,
                api_port,
                password,
                executor=executor,
                broker_url=broker_url,
                workers=workers,
                hostname_prefix=hostname_prefix,
            )
            st.sandbox = sandbox
            st._exit = exit_stack
            exit_stack.callback(st._kill_all)
            st._boot(pools or {}, worker_concurrency, hostname_prefix, startup_timeout)
            return st
        except BaseException:
            exit_stack.close()
            raise

    def _boot(
        self, pools: dict[str, int], worker_concurrency: int, hostname_prefix: str, timeout: float
    ) -> None:
        self._cli("db", "migrate", timeout=MIGRATE_TIMEOUT)
        for pool, slots in pools.items():
            self._cli("pools", "set", pool, str(slots), "grade passback", timeout=120)
        self.spawn(
            "api-server", "api-server", "--host", "127.0.0.1", "--port", str(self.api_port), "--workers", "1"
        )
        self.spawn("scheduler", "scheduler", "--skip-serve-logs")  # task logs are read from the shared home
        self.spawn("dag-processor", "dag-processor")
        for name in self.workers:
            self.spawn(
                f"worker-{name}",
                "celery",
                "worker",
                "--celery-hostname",
                f"{name}@{hostname_prefix}",
                "--concurrency",
                str(worker_concurrency),
                "--skip-serve-logs",
                "--without-gossip",
                "--without-mingle",
                extra_env={
                    "AIRFLOW__CORE__HOSTNAME_CALLABLE": "canvas_aspen_stack_hostname.hostname",
                    "CANVAS_ASPEN_STACK_HOSTNAME": f"{hostname_prefix}-{name}",
                },
            )

        self.poll("the API server", lambda: self.request("GET", "/api/v2/monitor/health"), timeout)
        self.poll(
            "the scheduler and the dag-processor to report healthy",
            lambda: all(
                (self.request("GET", "/api/v2/monitor/health").get(part) or {}).get("status") == "healthy"
                for part in ("metadatabase", "scheduler", "dag_processor")
            ),
            timeout,
        )
        if self.workers:
            nodes = {f"{name}@{hostname_prefix}" for name in self.workers}
            self.poll("every Celery worker to answer a ping", lambda: nodes <= self.celery_nodes(), timeout)

        def parsed() -> bool:
            errors = self.request("GET", "/api/v2/importErrors")["import_errors"]
            if errors:
                raise StackError(f"DAG import errors: {json.dumps(errors)[:3000]}")
            return self.request("GET", f"/api/v2/dags/{DAG_ID}", expect=(200, 404)).get("dag_id") == DAG_ID

        self.poll(f"the dag-processor to parse {DAG_ID}", parsed, timeout, fatal=(StackError,))

    def stop(self) -> None:
        """Kill every component's process tree, drop the databases, remove the home (idempotent)."""
        if self._stopped:
            return
        self._stopped = True
        self._exit.close()

    def __enter__(self) -> AirflowStack:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- processes ---------------------------------------------------------------------------

    def _cli(self, *args: str, timeout: float) -> str:
        try:
            out = subprocess.run(
                [str(BIN / "airflow"), *args],
                env=self.env,
                cwd=self.home,
                capture_output=True,
                text=True,
                timeout=timeout,
                stdin=subprocess.DEVNULL,
            )
        except subprocess.TimeoutExpired as exc:
            raise StackError(f"airflow {' '.join(args)} did not finish in {timeout:.0f}s") from exc
        if out.returncode != 0:
            raise StackError(
                f"airflow {' '.join(args)} exited with {out.returncode}:\n"
                f"{out.stdout[-3000:]}{out.stderr[-3000:]}"
            )
        return out.stdout

    def spawn(self, name: str, *args: str, extra_env: dict[str, str] | None = None) -> Component:
        """Start ``airflow <args>`` as component ``name`` (log ``logs/<name>.log``), in its own group."""
        log = self.logs_dir / f"{name}.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        with log.open("ab") as out:
            popen = subprocess.Popen(
                [str(BIN / "airflow"), *args],
                env={**self.env, **(extra_env or {})},
                cwd=self.home,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                preexec_fn=_child_setup,
            )
        component = Component(name, popen, log)
        self.components.append(component)
        return component

    def check_alive(self) -> None:
        for c in self.components:
            if c.popen.poll() is not None:
                raise StackError(f"{c.name} exited with {c.popen.returncode}\n{self.diagnostics()}")

    def _kill_all(self) -> None:
        """SIGTERM to every process group and every descendant; SIGKILL what is left after a while."""
        import psutil

        victims: list[psutil.Process] = []
        for c in self.components:
            with contextlib.suppress(psutil.Error):
                parent = psutil.Process(c.popen.pid)
                victims += [parent, *parent.children(recursive=True)]
        for c in self.components:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(c.popen.pid, signal.SIGTERM)
        for victim in victims:
            with contextlib.suppress(psutil.Error):
                victim.terminate()
        _, alive = psutil.wait_procs(victims, timeout=STOP_TIMEOUT)
        for c in self.components:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(c.popen.pid, signal.SIGKILL)
        for victim in alive:
            with contextlib.suppress(psutil.Error):
                victim.kill()
        psutil.wait_procs(alive, timeout=10)
        for c in self.components:
            with contextlib.suppress(subprocess.TimeoutExpired):
                c.popen.wait(timeout=10)

    def diagnostics(self, lines: int = 25) -> str:
        """The tail of each component's log."""
        return "\n".join(
            f"--- {c.name} (exit {c.popen.poll()}) {c.log}\n{c.tail(lines)}" for c in self.components
        )

    def poll(
        self, what: str, probe: Callable[[], Any], timeout: float, fatal: tuple[type[BaseException], ...] = ()
    ) -> Any:
        """Call ``probe()`` until it returns something truthy (at most ``timeout`` s); exceptions
        count as "not yet" except ``fatal`` ones. Fails with every component's log tail."""
        deadline = time.monotonic() + timeout
        last: Any = None
        while True:
            self.check_alive()
            try:
                result = probe()
            except fatal:
                raise
            except Exception as exc:  # not up yet
                last = exc
            else:
                if result:
                    return result
                last = result
            if time.monotonic() > deadline:
                raise StackError(
                    f"timed out after {timeout:.0f}s waiting for {what} (last: {last!r})\n"
                    f"{self.diagnostics()}"
                )
            time.sleep(1)

    def celery_nodes(self) -> set[str]:
        """The Celery nodes answering a ping on the broker."""
        from celery import Celery

        app = Celery("canvas_aspen_stack_probe", broker=self.broker_url)
        try:
            replies = app.control.ping(timeout=2.0) or []
        finally:
            app.close()
        return {name for reply in replies for name in reply}

    # --- REST API v2 -------------------------------------------------------------------------

    def token(self) -> str:
        """A JWT for the REST API (SimpleAuthManager's ``POST /auth/token``), fetched once."""
        if self._token is None:
            body = self.request(
                "POST",
                "/auth/token",
                expect=(200, 201),
                auth=False,
                json={"username": self.username, "password": self.password},
            )
            self._token = body["access_token"]
        return self._token

    def request(
        self,
        method: str,
        path: str,
        *,
        expect: tuple[int, ...] = (200,),
        auth: bool = True,
        _again: bool = True,
        **kwargs: Any,
    ) -> Any:
        """``method path`` on the API server; the JSON answer, or ``StackError`` if the status is not
        in ``expect``."""
        import requests

        headers = {"Authorization": f"Bearer {self.token()}"} if auth and path.startswith("/api/") else {}
        with requests.Session() as session:
            session.trust_env = False  # loopback: never through a proxy
            response = session.request(
                method, f"{self.api_url}{path}", headers=headers, timeout=REQUEST_TIMEOUT, **kwargs
            )
        if response.status_code == 401 and auth and _again and path.startswith("/api/"):  # expired: once more
            self._token = None
            return self.request(method, path, expect=expect, auth=auth, _again=False, **kwargs)
        if response.status_code not in expect:
            raise StackError(f"{method} {path}: {response.status_code} {response.text[:2000]}")
        return response.json() if response.content else None

    def dag(self) -> dict:
        return self.request("GET", f"/api/v2/dags/{DAG_ID}")

    def unpause(self) -> None:
        self.request("PATCH", f"/api/v2/dags/{DAG_ID}", json={"is_paused": False})

    def trigger(self, conf: dict | None = None, run_id: str | None = None) -> str:
        """A manual run (no conf: what the schedule does); its run id."""
        run_id = run_id or f"stack__{time.strftime('%Y%m%dT%H%M%S')}_{uuid.uuid4().hex[:6]}"
        body: dict[str, Any] = {"dag_run_id": run_id, "logical_date": None}
        if conf is not None:
            body["conf"] = conf
        return self.request("POST", f"/api/v2/dags/{DAG_ID}/dagRuns", json=body)["dag_run_id"]

    def run(self, run_id: str) -> dict:
        return self.request("GET", f"/api/v2/dags/{DAG_ID}/dagRuns/{run_id}")

    def runs(self) -> list[dict]:
        return self.request("GET", f"/api/v2/dags/{DAG_ID}/dagRuns", params={"limit": 100})["dag_runs"]

    def wait(self, run_id: str, timeout: float = 900.0) -> str:
        """Wait until the run is finished; its state ("success"/"failed"). Not finished in ``timeout``
        seconds, or a component died: ``StackError`` with the task instances and the logs' tails."""
        deadline = time.monotonic() + timeout
        while True:
            state = self.run(run_id)["state"]
            if state in FINISHED:
                return state
            self.check_alive()
            if time.monotonic() > deadline:
                raise StackError(
                    f"run {run_id} still {state} after {timeout:.0f}s\n"
                    f"{self.task_summary(run_id)}\n{self.diagnostics()}"
                )
            time.sleep(1)

    def task_instances(self, run_id: str) -> list[dict]:
        """The run's task instances as the REST API gives them (``task_id``, ``map_index``, ``state``,
        ``pool``, ``queued_when``, ``start_date``, ``end_date``, ``hostname``, ``try_number`` …)."""
        body = self.request(
            "GET", f"/api/v2/dags/{DAG_ID}/dagRuns/{run_id}/taskInstances", params={"limit": 1000}
        )
        return body["task_instances"]

    def task_summary(self, run_id: str) -> str:
        """One line per task instance; the log tail of each that did not succeed."""
        lines = []
        for ti in sorted(self.task_instances(run_id), key=lambda t: (t["task_id"], t["map_index"])):
            lines.append(
                f"  {ti['task_id']}[{ti['map_index']}] {ti['state']} on {ti['hostname']} "
                f"pool {ti.get('pool')} try {ti['try_number']}"
            )
            if ti["state"] not in ("success", None, "skipped"):
                lines.append(self.task_log_tail(run_id, ti))
        return "\n".join(lines)

    def task_log_tail(self, run_id: str, ti: dict, lines: int = 30) -> str:
        pattern = f"dag_id={DAG_ID}/run_id={run_id}/task_id={ti['task_id']}/"
        logs = sorted(self.logs_dir.glob(pattern + "**/*.log"), key=lambda p: p.stat().st_mtime)
        if not logs:
            return "    (no task log)"
        text = logs[-1].read_text(errors="replace").splitlines()[-lines:]
        return "\n".join("    " + line[:400] for line in text)

    def report(self, run_id: str) -> dict:
        """The run's ``report.json``."""
        for path in self.reports_dir.glob("*/report.json"):
            doc = json.loads(path.read_text())
            if doc.get("run_id") == run_id:
                return doc
        raise StackError(f"no report.json for {run_id} under {self.reports_dir}")


def _base_env(
    home: Path,
    *,
    metadata_url: Any,
    ledger_url: Any,
    broker_url: str | None,
    api_port: int,
    password_file: Path,
    executor: str,
    parallelism: int,
    shards: int,
    dags_folder: Path,
) -> dict[str, str]:
    """One configuration for every process; nothing from the caller's Airflow settings leaks in."""
    from cryptography.fernet import Fernet

    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("AIRFLOW__", "AIRFLOW_CONN_", "AIRFLOW_VAR_", "AIRFLOW_CONFIG", "CANVAS_ASPEN_"))
    }
    metadata = metadata_url.set(drivername="postgresql+psycopg2").render_as_string(hide_password=False)
    env.update(
        {
            "AIRFLOW_HOME": str(home),
            "PYTHONPATH": os.pathsep.join(filter(None, [str(home), str(REPO), os.environ.get("PYTHONPATH")])),
            "AIRFLOW__CORE__EXECUTOR": executor,
            "AIRFLOW__CORE__PARALLELISM": str(parallelism),
            "AIRFLOW__CORE__DAGS_FOLDER": str(dags_folder),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__UNIT_TEST_MODE": "False",
            "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "True",
            "AIRFLOW__CORE__FERNET_KEY": Fernet.generate_key().decode(),
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{api_port}/execution/",
            "AIRFLOW__CORE__AUTH_MANAGER": (
                "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager"
            ),
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": "admin:admin",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(password_file),
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": metadata,
            "AIRFLOW__API__HOST": "127.0.0.1",
            "AIRFLOW__API__PORT": str(api_port),
            "AIRFLOW__API__BASE_URL": f"http://127.0.0.1:{api_port}",
            "AIRFLOW__API__WORKERS": "1",
            "AIRFLOW__API__SECRET_KEY": secrets.token_hex(32),
            "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_hex(32),
            "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
            "AIRFLOW__SCHEDULER__ENABLE_HEALTH_CHECK": "False",
            # as docker compose: the scheduler's hop between two chained tasks is this sleep
            "AIRFLOW__SCHEDULER__SCHEDULER_IDLE_SLEEP_TIME": "0.25",
            "AIRFLOW__LOGGING__LOGGING_LEVEL": "INFO",
            "CANVAS_ASPEN_SHARDS": str(shards),
            "CANVAS_ASPEN_STAGE_ROOT": f"file://{home / 'canvas_aspen' / 'stage'}",
            "CANVAS_ASPEN_REPORTS_DIR": str(home / "canvas_aspen" / "reports"),
            "GX_ANALYTICS_ENABLED": "False",
            "NO_PROXY": "127.0.0.1,localhost",
            "no_proxy": "127.0.0.1,localhost",
        }
    )
    if executor == "CeleryExecutor":
        backend = metadata_url.set(drivername="postgresql").render_as_string(hide_password=False)
        env.update(
            {
                "AIRFLOW__CELERY__BROKER_URL": broker_url or "",
                "AIRFLOW__CELERY__RESULT_BACKEND": f"db+{backend}",
                # as docker compose
                "AIRFLOW__CELERY__CELERY_CONFIG_OPTIONS": "canvas_aspen.celery_config.CELERY_CONFIG",
                "AIRFLOW__CELERY__WORKER_PREFETCH_MULTIPLIER": "1",
                "AIRFLOW__CELERY__TASK_ACKS_LATE": "True",
            }
        )
    if ledger_url is not None:
        ledger_conn = {
            "conn_type": "postgres",
            "host": ledger_url.host or "127.0.0.1",
            "port": ledger_url.port or 5432,
            "login": ledger_url.username or "postgres",
            "schema": ledger_url.database,
        }
        if ledger_url.password:
            ledger_conn["password"] = ledger_url.password
        env["AIRFLOW_CONN_CANVAS_ASPEN_LEDGER"] = json.dumps(ledger_conn)
    return env
