"""Alembic environment of the ledger.

``Ledger.migrate()`` hands its own connection in ``config.attributes["connection"]``
(inside a transaction that serialises concurrent migrators). From the command line use
the alembic.ini beside this file: ``alembic -c .../ledger_migrations/alembic.ini -x
url=sqlite:///ledger.db upgrade head`` (or set ``CANVAS_ASPEN_LEDGER_URL``).
"""

from __future__ import annotations

import os
from logging.config import fileConfig

from alembic import context

from canvas_aspen.ledger import VERSION_TABLE, Base, Ledger

config = context.config
if config.config_file_name is not None:  # the CLI; Ledger.migrate() leaves logging alone
    fileConfig(config.config_file_name, disable_existing_loggers=False)
OPTIONS = {"target_metadata": Base.metadata, "version_table": VERSION_TABLE, "render_as_batch": True}


def _url() -> str:
    url = (
        context.get_x_argument(as_dictionary=True).get("url")
        or config.get_main_option("sqlalchemy.url")
        or os.environ.get("CANVAS_ASPEN_LEDGER_URL")
    )
    if not url:
        raise SystemExit("no ledger URL: pass -x url=... or set CANVAS_ASPEN_LEDGER_URL")
    return url


def _run(connection) -> None:
    context.configure(connection=connection, **OPTIONS)
    with context.begin_transaction():
        context.run_migrations()


def run_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    ledger = Ledger(_url())
    try:
        with ledger.engine.connect() as conn:
            _run(conn)
            conn.commit()
    finally:
        ledger.dispose()


def run_offline() -> None:
    context.configure(url=_url(), literal_binds=True, **OPTIONS)
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    run_offline()
else:
    run_online()
