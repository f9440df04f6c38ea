# The Airflow image of the grade passback, used by every Airflow service in docker-compose.yaml.
#
# Airflow's official image at the version of the lock (requirements.txt: apache-airflow==3.3.2)
# and the Python the package supports (pyproject.toml: requires-python >=3.11,<3.12), plus this
# package. tests/unit/test_compose.py checks that this FROM line and the lock agree.
#
#   docker compose build          (or: docker build -t canvas-aspen-airflow:3.3.2 .)
FROM apache/airflow:3.3.2-python3.11

USER root
RUN mkdir -p /opt/canvas-aspen && chown airflow:0 /opt/canvas-aspen
USER airflow
WORKDIR /opt/canvas-aspen

# Only what the package needs at run time: no tests, no sandbox (the compose profile
# `sandbox` mounts ./sandbox into its own container), no dev tools.
COPY --chown=airflow:0 requirements.txt pyproject.toml ./
COPY --chown=airflow:0 plugins/ ./plugins/

# requirements.txt is the lock. It is used as *constraints*: every version pip picks comes from
# it, while only the package and the few runtime extras below are installed (pytest, ruff, uv
# of the lock stay out). Naming apache-airflow==3.3.2 keeps pip from ever moving Airflow itself.
RUN pip install --no-cache-dir --constraint requirements.txt \
        "apache-airflow==3.3.2" \
        apache-airflow-providers-celery \
        apache-airflow-providers-postgres \
        psycopg2-binary \
        redis \
        . \
    && rm -rf build plugins/*.egg-info

# The Great Expectations suites (read at run time) and the DAG. The DAG is baked into the image
# so that every worker, on every machine, runs the same code as the package beside it.
COPY --chown=airflow:0 expectations/ ./expectations/
COPY --chown=airflow:0 dags/ /opt/airflow/dags/

ENV CANVAS_ASPEN_EXPECTATIONS_DIR=/opt/canvas-aspen/expectations \
    GX_ANALYTICS_ENABLED=False

WORKDIR /opt/airflow
