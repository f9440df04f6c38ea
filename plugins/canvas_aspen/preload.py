"""What the passback's tasks import, imported once by an Airflow worker at start-up
(:mod:`canvas_aspen.celery_config`): pandas and pyarrow's parquet engine, the stages, the
hooks, the ledger's SQLAlchemy tables and Alembic (0.2-0.4 s in each task that opens the
ledger otherwise) and Great Expectations. Every task process the worker forks inherits them.
Nothing here connects anywhere: a forked process must not share a connection."""

from __future__ import annotations

import alembic.command  # noqa: F401  (the ledger's migration check in every task that opens it)
import pyarrow.parquet  # noqa: F401  (pandas' parquet engine, otherwise imported by each task)

from canvas_aspen import airflow_glue, ledger, stages, validation  # noqa: F401
from canvas_aspen.hooks import aspen, canvas  # noqa: F401

validation.load_great_expectations()
