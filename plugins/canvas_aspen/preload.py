"""What the passback's tasks import, imported once by an Airflow worker at start-up
(:mod:`canvas_aspen.celery_config`): pandas and pyarrow's parquet engine, the stages, the
hooks and Great Expectations. Every task process the worker forks inherits them."""

from __future__ import annotations

import pyarrow.parquet  # noqa: F401  (pandas' parquet engine, otherwise imported by each task)

from canvas_aspen import stages, validation  # noqa: F401
from canvas_aspen.hooks import aspen, canvas  # noqa: F401

validation.load_great_expectations()
