"""docker-compose.yaml, Dockerfile and .env.example, checked without a Docker engine.

The compose file is parsed (PyYAML, with its ``<<`` merge keys) and checked for: the services
of Airflow's official CeleryExecutor layout plus ours; the image tag and the Dockerfile's FROM
matching the lock's apache-airflow version (and the package's Python); the executor, broker,
result backend and metadata DB; the shared stage and report volumes; and that every secret
(passwords, Fernet key, JWT secret, API secret key, connection URIs) comes from the environment
through ``${VAR}`` interpolation, never as a literal and never with a literal default.
"""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
COMPOSE = REPO / "docker-compose.yaml"
DOCKERFILE = REPO / "Dockerfile"
ENV_EXAMPLE = REPO / ".env.example"

AIRFLOW_SERVICES = {
    "airflow-apiserver": "api-server",
    "airflow-scheduler": "scheduler",
    "airflow-dag-processor": "dag-processor",
    "airflow-triggerer": "triggerer",
    "airflow-worker": "celery worker",
}
CORE_SERVICES = {"postgres", "redis", "airflow-init", *AIRFLOW_SERVICES}
STAGE_MOUNT = "/opt/airflow/canvas_aspen/stage"
REPORTS_MOUNT = "/opt/airflow/canvas_aspen/reports"

# ${NAME}, ${NAME:?msg}, ${NAME?msg}, ${NAME:-default}, ${NAME-default}, ${NAME:+x}, ${NAME+x}
INTERPOLATION = re.compile(r"\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?+])(?P<arg>[^}]*))?\}")
SECRET_KEY = re.compile(r"PASSWORD|SECRET|FERNET|TOKEN|JWT|CONN|BROKER_URL|RESULT_BACKEND|(^|_)KEY$", re.I)
# Settings that are not secret although their names look like one.
NOT_SECRET = {
    "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE",
    "AIRFLOW__CORE__AUTH_MANAGER",
    "CONNECTION_CHECK_MAX_COUNT",
}
# Variables that may have a default in the compose file: names, sizes, never a credential.
NON_SECRET_VARS = {
    "AIRFLOW_UID",
    "CANVAS_ASPEN_IMAGE",
    "AIRFLOW_API_PORT",
    "AIRFLOW_WORKER_CONCURRENCY",
    "AIRFLOW_DB",
    "CANVAS_ASPEN_LEDGER_DB",
    "AIRFLOW_ADMIN_USER",
    "AIRFLOW_AUTH_MANAGER",
    "_AIRFLOW_WWW_USER_CREATE",
    "CANVAS_ASPEN_STAGE_ROOT",
    "CANVAS_ASPEN_SHARDS",
    "CANVAS_ASPEN_COURSES_PER_SHARD",
    "CANVAS_ASPEN_TIMEZONE",
    "CANVAS_ASPEN_LEASE_MINUTES",
}


# --------------------------------------------------------------------------- helpers


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE.read_text())


@pytest.fixture(scope="module")
def services(compose) -> dict[str, dict]:
    return compose["services"]


def _lock_version(package: str) -> str:
    for line in (REPO / "requirements.txt").read_text().splitlines():
        if line.lower().startswith(f"{package}=="):
            return line.split("==", 1)[1].strip()
    raise AssertionError(f"{package} is not pinned in requirements.txt")


def _python_minor() -> str:
    """The one Python minor version pyproject.toml admits (>=3.11,<3.12 -> 3.11)."""
    spec = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["requires-python"]
    low = re.search(r">=\s*(\d+)\.(\d+)", spec)
    high = re.search(r"<\s*(\d+)\.(\d+)", spec)
    assert low and high, spec
    assert (int(high[1]), int(high[2])) == (int(low[1]), int(low[2]) + 1), (
        f"expected one minor version: {spec}"
    )
    return f"{low[1]}.{low[2]}"


def _env(service: dict) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):  # KEY=VALUE list form
        env = dict(item.split("=", 1) if "=" in item else (item, None) for item in env)
    return {str(k): ("" if v is None else str(v)) for k, v in env.items()}


def _all_environments(services: dict) -> list[tuple[str, str, str]]:
    return [(name, key, value) for name, svc in services.items() for key, value in _env(svc).items()]


def _dotenv(path: Path) -> tuple[dict[str, str], set[str]]:
    """(values of the active lines, names of the commented-out KEY=... lines) of a .env file."""
    values: dict[str, str] = {}
    commented: set[str] = set()
    for raw in path.read_text().splitlines():
        line = raw.strip()
        m = re.match(r"^(#\s*)?([A-Za-z_][A-Za-z0-9_]*)=(.*)$", line)
        if not m:
            continue
        name, value = m[2], m[3]
        if m[1]:
            commented.add(name)
            continue
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        values[name] = value
    return values, commented


def _interpolate(text: str, env: dict[str, str]) -> str:
    """Compose's interpolation, enough for this file."""

    def sub(m: re.Match) -> str:
        name, op, arg = m["name"], m["op"], m["arg"]
        value = env.get(name)
        if op in (":-", "-"):
            return value if value not in (None, "") or (op == "-" and value is not None) else arg
        if op in (":?", "?"):
            if value in (None, "") if op == ":?" else value is None:
                raise AssertionError(f"${{{name}}} is required: {arg}")
            return value
        return value or ""

    return INTERPOLATION.sub(sub, text.replace("$$", "\0")).replace("\0", "$")


def _mask(value: str) -> str:
    """Each ${...} replaced by a token (``__VAR0__``, ...), so that URLs parse."""
    counter = iter(range(10_000))
    return INTERPOLATION.sub(lambda m: f"__VAR{next(counter)}__", value)


def _uncommented(text: str) -> str:
    return "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("#"))


def _is_secret(key: str) -> bool:
    return key not in NOT_SECRET and bool(SECRET_KEY.search(key))


def _assert_no_literal(where: str, value: str) -> None:
    """``value`` is all interpolation where it carries a secret: either one ${VAR} as a whole,
    or a URL whose password is one ${VAR}, or JSON whose secret fields are ${VAR}s; and no
    interpolation of a secret has a literal default."""
    assert "${" in value, f"{where}: a secret as a literal value ({value[:12]}…)"
    for m in INTERPOLATION.finditer(value):
        if m["op"] in (":-", "-") and m["name"] not in NON_SECRET_VARS:
            raise AssertionError(f"{where}: ${{{m['name']}}} has a literal default")
    if INTERPOLATION.fullmatch(value):
        return
    if "://" in value:
        parts = urlsplit(_mask(value))
        assert parts.password is not None, (
            f"{where}: a connection URL without credentials from the environment"
        )
        assert re.fullmatch(r"__VAR\d+__", parts.password), (
            f"{where}: the URL's password is not one ${{VAR}}: {value}"
        )
        return
    masked = INTERPOLATION.sub("X", value)
    doc = json.loads(masked)  # anything else must be JSON whose secret fields are interpolated
    for key, field in doc.items():
        if _is_secret(key) or key in ("password", "login", "client_secret"):
            assert field == "X", f"{where}: JSON field {key!r} is a literal"


# --------------------------------------------------------------------------- services


def test_services_follow_the_official_celery_layout(services):
    assert CORE_SERVICES <= set(services), f"missing: {sorted(CORE_SERVICES - set(services))}"
    for name in CORE_SERVICES:
        assert not services[name].get("profiles"), f"{name} must start by default"
    for name, command in AIRFLOW_SERVICES.items():
        assert services[name]["command"] == command, name
    assert services["airflow-init"]["environment"]["_AIRFLOW_DB_MIGRATE"] == "true"
    for name in AIRFLOW_SERVICES:
        deps = services[name]["depends_on"]
        assert deps["airflow-init"]["condition"] == "service_completed_successfully", name
        assert deps["postgres"]["condition"] == deps["redis"]["condition"] == "service_healthy", name
        assert services[name].get("healthcheck"), f"{name} has no healthcheck"


def test_sandbox_is_an_optional_profile(services):
    sandbox = services["sandbox"]
    assert sandbox["profiles"] == ["sandbox"]
    assert any(str(v).endswith(":/opt/canvas-aspen/sandbox:ro") for v in sandbox["volumes"])
    assert "sandbox" not in _env(services["airflow-worker"]).get("AIRFLOW_CONN_CANVAS_DEFAULT", "")


def test_workers_scale(services):
    worker = services["airflow-worker"]
    assert "container_name" not in worker and "ports" not in worker and "hostname" not in worker, (
        "a fixed name, host port or hostname prevents `--scale airflow-worker=N`"
    )
    assert _env(worker)["DUMB_INIT_SETSID"] == "0"  # warm shutdown of Celery
    assert "${AIRFLOW_WORKER_CONCURRENCY" in _env(worker)["AIRFLOW__CELERY__WORKER_CONCURRENCY"]


def test_executor_broker_backend_and_metadata(services):
    for name in [*AIRFLOW_SERVICES, "airflow-init"]:
        env = _env(services[name])
        assert env["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor", name
        assert urlsplit(_mask(env["AIRFLOW__CELERY__BROKER_URL"])).hostname == "redis", name
        assert env["AIRFLOW__CELERY__BROKER_URL"].startswith("redis://"), name
        assert env["AIRFLOW__CELERY__RESULT_BACKEND"].startswith("db+postgresql://"), name
        assert env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"].startswith("postgresql+psycopg2://"), name
        assert urlsplit(_mask(env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"])).hostname == "postgres", name
        assert env["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"] == "http://airflow-apiserver:8080/execution/", (
            name
        )
        assert env["AIRFLOW__CORE__LOAD_EXAMPLES"].lower() == "false", name
        # The ledger: a postgres connection to its own database on the same server.
        ledger = env["AIRFLOW_CONN_CANVAS_ASPEN_LEDGER"]
        assert ledger.startswith("postgresql://") and urlsplit(_mask(ledger)).hostname == "postgres", name
        assert "CANVAS_ASPEN_LEDGER_DB" in ledger.rpartition("/")[2], name


def test_components_share_one_jwt_secret_and_api_key(services):
    for key in ("AIRFLOW__API_AUTH__JWT_SECRET", "AIRFLOW__API__SECRET_KEY", "AIRFLOW__CORE__FERNET_KEY"):
        values = {_env(services[name])[key] for name in [*AIRFLOW_SERVICES, "airflow-init"]}
        assert len(values) == 1, f"{key} differs between components: {values}"


def test_stage_and_reports_on_shared_volumes(compose, services):
    volumes = compose["volumes"]
    for name in [*AIRFLOW_SERVICES, "airflow-init"]:
        mounts = {
            str(v).split(":", 1)[1].split(":")[0]: str(v).split(":", 1)[0] for v in services[name]["volumes"]
        }
        assert mounts.get(STAGE_MOUNT) in volumes, f"{name}: the stage volume is not mounted at {STAGE_MOUNT}"
        assert mounts.get(REPORTS_MOUNT) in volumes, (
            f"{name}: the reports volume is not mounted at {REPORTS_MOUNT}"
        )
        env = _env(services[name])
        assert env["CANVAS_ASPEN_STAGE_ROOT"] == f"${{CANVAS_ASPEN_STAGE_ROOT:-file://{STAGE_MOUNT}}}", name
        assert env["CANVAS_ASPEN_REPORTS_DIR"] == REPORTS_MOUNT, name


# --------------------------------------------------------------------------- versions


def test_image_matches_the_lock():
    airflow = _lock_version("apache-airflow")
    python = _python_minor()
    froms = [
        line.split()[1] for line in DOCKERFILE.read_text().splitlines() if line.upper().startswith("FROM ")
    ]
    assert froms == [f"apache/airflow:{airflow}-python{python}"], froms
    assert f'"apache-airflow=={airflow}"' in DOCKERFILE.read_text(), (
        "the Dockerfile must pin Airflow to the lock"
    )
    assert "--constraint requirements.txt" in DOCKERFILE.read_text(), "the lock must constrain the install"


def test_compose_image_tag_matches_the_lock(services):
    airflow = _lock_version("apache-airflow")
    for name in [*AIRFLOW_SERVICES, "airflow-init", "sandbox"]:
        image = _interpolate(services[name]["image"], {})
        assert image == f"canvas-aspen-airflow:{airflow}", (name, image)
    for name in AIRFLOW_SERVICES:
        assert services[name]["build"]["dockerfile"] == "Dockerfile", name


def test_the_package_installs_into_the_image():
    text = DOCKERFILE.read_text()
    for needed in (
        "COPY --chown=airflow:0 plugins/",
        "COPY --chown=airflow:0 expectations/",
        "COPY --chown=airflow:0 dags/ /opt/airflow/dags/",
        "CANVAS_ASPEN_EXPECTATIONS_DIR=",
    ):
        assert needed in text, needed
    ignored = (REPO / ".dockerignore").read_text().split()
    assert ".env" in ignored and ".venv" in ignored


# --------------------------------------------------------------------------- secrets


def test_every_secret_comes_from_the_environment(services):
    checked = 0
    for name, key, value in _all_environments(services):
        if _is_secret(key) or value.lstrip().startswith("{"):  # JSON values: their secret fields
            _assert_no_literal(f"{name}.{key}", value)
            checked += 1
    assert checked >= 40, checked  # the check saw the secrets at all


def test_no_literal_credentials_anywhere_in_the_file():
    text = _mask(_uncommented(COMPOSE.read_text()))
    for m in re.finditer(r"[a-z+]+://[^/@\s\"']*@", text):
        password = urlsplit(m[0] + "host").password
        assert not password or re.fullmatch(r"__VAR\d+__", password), f"literal credential in {m[0]}"
    text = _uncommented(COMPOSE.read_text())
    for m in re.finditer(r"(?m)^\s*([A-Z0-9_]*(?:PASSWORD|SECRET|TOKEN|FERNET)[A-Z0-9_]*):\s+(\S.*)$", text):
        if m[1] not in NOT_SECRET:
            assert "${" in m[2] or m[2].startswith("#"), f"literal secret: {m[0].strip()}"


def test_env_example_documents_every_variable_and_holds_no_secret():
    values, commented = _dotenv(ENV_EXAMPLE)
    used = {m["name"] for m in INTERPOLATION.finditer(_uncommented(COMPOSE.read_text()).replace("$$", ""))}
    undocumented = used - set(values) - commented
    assert not undocumented, (
        f"variables used by docker-compose.yaml but not in .env.example: {sorted(undocumented)}"
    )
    for name, value in values.items():
        if _is_secret(name) and name not in ("SANDBOX_ASPEN_CLIENT_ID",):
            if name.startswith("AIRFLOW_CONN_"):
                doc = json.loads(value)
                assert all(str(doc.get(k, "<")).startswith("<") for k in ("password",)), name
            else:
                assert value.startswith("<") and value.endswith(">"), f".env.example holds a value for {name}"


def test_dotenv_is_never_committed():
    assert ".env" in (REPO / ".gitignore").read_text().split()


def test_compose_renders_with_the_example_env(services):
    """Interpolated with .env.example, the URLs and the JSON values are well formed."""
    import sqlalchemy as sa

    values, _ = _dotenv(ENV_EXAMPLE)
    values = {
        k: (
            v.replace("<", "x").replace(">", "x").replace(" ", "") if not k.startswith("AIRFLOW_CONN_") else v
        )
        for k, v in values.items()
    }
    env = {k: _interpolate(v, values) for k, v in _env(services["airflow-worker"]).items()}
    for key in ("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", "AIRFLOW_CONN_CANVAS_ASPEN_LEDGER"):
        url = sa.make_url(env[key])
        assert url.host == "postgres" and url.password, key
    assert sa.make_url(env["AIRFLOW__CELERY__RESULT_BACKEND"].removeprefix("db+")).database == "airflow"
    for key in ("AIRFLOW_CONN_CANVAS_DEFAULT", "AIRFLOW_CONN_ASPEN_DEFAULT"):
        assert json.loads(env[key])["conn_type"] in ("canvas", "aspen"), key
    sandbox = {k: _interpolate(v, values) for k, v in _env(services["sandbox"]).items()}
    assert set(json.loads(sandbox["SANDBOX_SETTINGS"])) == {
        "canvas_token",
        "aspen_client_id",
        "aspen_client_secret",
    }


def test_a_missing_secret_stops_compose(services):
    """`${VAR:?…}`: without the .env, compose refuses to start rather than run with blanks."""
    values, _ = _dotenv(ENV_EXAMPLE)
    values.pop("AIRFLOW_JWT_SECRET")
    with pytest.raises(AssertionError, match="AIRFLOW_JWT_SECRET"):
        _interpolate(_env(services["airflow-scheduler"])["AIRFLOW__API_AUTH__JWT_SECRET"], values)


def test_no_pool_is_needed_and_init_creates_the_dedicated_ones_named(services):
    """Without pool settings the DAG runs in default_pool (nothing to create); a pool named in
    .env is passed to every Airflow container and created by airflow-init if missing."""
    for name in ("airflow-scheduler", "airflow-worker", "airflow-dag-processor", "airflow-init"):
        env = _env(services[name])
        assert env["CANVAS_ASPEN_CANVAS_POOL"] == "${CANVAS_ASPEN_CANVAS_POOL:-}", name
        assert env["CANVAS_ASPEN_ASPEN_POOL"] == "${CANVAS_ASPEN_ASPEN_POOL:-}", name
    script = services["airflow-init"]["command"][-1]
    loop = re.search(r"for pool in ([^;]+); do\n(.*?)\n\s*done", script, re.S)
    assert loop, script
    assert loop.group(1).split() == ["$${CANVAS_ASPEN_CANVAS_POOL:-}", "$${CANVAS_ASPEN_ASPEN_POOL:-}"]
    assert 'airflow pools set "$$pool" "$${CANVAS_ASPEN_POOL_SLOTS:-1}"' in loop.group(2), script
    assert "canvas_api" not in script and "aspen_api" not in script


def test_workers_preload_what_the_tasks_import(services):
    for name in ("airflow-worker", "airflow-scheduler"):
        assert (
            _env(services[name])["AIRFLOW__CELERY__CELERY_CONFIG_OPTIONS"]
            == "canvas_aspen.celery_config.CELERY_CONFIG"
        )


def test_the_scheduler_sleeps_less_than_airflows_default_and_the_harness_as_compose(services, tmp_path):
    """A shard's tasks run one after the other and each waits for the scheduler loop that sees the
    one before it done; an idle loop sleeps ``scheduler_idle_sleep_time`` (Airflow's default 1 s).
    Compose shortens it (not to 0: a busy loop), and the real-Airflow harness the tests and the
    benchmark run on uses the same value, so the benchmark measures what is shipped."""
    import sqlalchemy as sa

    from sandbox.airflow_stack import _base_env

    key = "AIRFLOW__SCHEDULER__SCHEDULER_IDLE_SLEEP_TIME"
    shipped = _env(services["airflow-scheduler"])[key]
    assert 0 < float(shipped) < 1.0
    harness = _base_env(
        tmp_path,
        metadata_url=sa.make_url("postgresql://airflow@127.0.0.1:5432/airflow"),
        ledger_url=None,
        broker_url=None,
        api_port=8080,
        password_file=tmp_path / "passwords.json",
        executor="LocalExecutor",
        parallelism=4,
        shards=1,
        dags_folder=tmp_path,
    )
    assert harness[key] == shipped
