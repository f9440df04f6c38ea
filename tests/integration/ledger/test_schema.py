"""The ledger schema comes from Alembic, from an empty database, on SQLite and PostgreSQL."""

from __future__ import annotations

import argparse
import threading
from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext

from canvas_aspen.ledger import MIGRATIONS_DIR, VERSION_TABLE, Base, Ledger, default_sqlite_url

HEAD = "0002"
TABLES = {
    "runs",
    "posted_results",
    "result_history",
    "posted_line_items",
    "line_item_history",
    "findings",
    "course_leases",
    "teacher_digests",
}


def _tables(ledger: Ledger) -> set[str]:
    return set(sa.inspect(ledger.engine).get_table_names())


def _version(ledger: Ledger) -> str | None:
    with ledger.engine.connect() as conn:
        return MigrationContext.configure(conn, opts={"version_table": VERSION_TABLE}).get_current_revision()


def test_migrate_from_empty_creates_every_table_at_head(ledger_url: str) -> None:
    ledger = Ledger(ledger_url)
    try:
        assert _tables(ledger) == set()
        ledger.migrate()
        assert _tables(ledger) == TABLES | {VERSION_TABLE}
        assert _version(ledger) == HEAD
    finally:
        ledger.dispose()


def test_migrate_twice_is_a_no_op(ledger: Ledger) -> None:
    ledger.migrate()
    assert _version(ledger) == HEAD
    assert _tables(ledger) == TABLES | {VERSION_TABLE}


def test_version_table_does_not_clash_with_airflows(ledger: Ledger) -> None:
    """Airflow's own metadata uses ``alembic_version``; the ledger may share its database."""
    assert "alembic_version" not in _tables(ledger)


def test_models_match_the_migrations(ledger: Ledger) -> None:
    with ledger.engine.connect() as conn:
        context = MigrationContext.configure(
            conn, opts={"version_table": VERSION_TABLE, "compare_type": True}
        )
        assert compare_metadata(context, Base.metadata) == []


def test_concurrent_migrations_from_empty_both_succeed(ledger_url: str) -> None:
    """A nightly run and a backfill starting together on a fresh database."""
    ledgers = [Ledger(ledger_url), Ledger(ledger_url)]
    barrier = threading.Barrier(2)
    errors: list[BaseException] = []

    def migrate(ledger: Ledger) -> None:
        barrier.wait()
        try:
            ledger.migrate()
        except BaseException as exc:  # collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=migrate, args=(lg,)) for lg in ledgers]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    try:
        assert errors == []
        assert _version(ledgers[0]) == HEAD
    finally:
        for lg in ledgers:
            lg.dispose()


def test_shipped_alembic_ini_upgrades_from_the_command_line(ledger_url: str) -> None:
    config = Config(str(MIGRATIONS_DIR / "alembic.ini"), cmd_opts=argparse.Namespace(x=[f"url={ledger_url}"]))
    command.upgrade(config, "head")
    ledger = Ledger(ledger_url)
    try:
        assert _version(ledger) == HEAD
        assert TABLES <= _tables(ledger)
    finally:
        ledger.dispose()


def test_default_sqlite_url_is_under_the_airflow_home(tmp_path: Path) -> None:
    home = tmp_path / "airflow-home"
    url = default_sqlite_url(home)
    assert url == f"sqlite:///{home.resolve() / 'canvas_aspen' / 'ledger.db'}"
    assert (home / "canvas_aspen").is_dir()
    ledger = Ledger(url)
    try:
        ledger.migrate()
        assert (home / "canvas_aspen" / "ledger.db").is_file()
    finally:
        ledger.dispose()


def test_a_ledger_opened_while_another_writes_a_fresh_sqlite_file_waits_for_it(tmp_path: Path) -> None:
    """Switching a fresh file to WAL needs it to itself, and SQLite refuses at once (no busy
    wait) while another connection writes: the ledger waits, as for any lock, instead of failing."""
    import sqlite3
    import time

    path = tmp_path / "ledger.db"
    writer = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    writer.execute("BEGIN IMMEDIATE")  # another run, mid-way through its first write
    writer.execute("CREATE TABLE other (x)")
    releaser = threading.Timer(0.5, lambda: writer.execute("COMMIT"))
    releaser.start()
    ledger = Ledger(f"sqlite:///{path}")
    try:
        t0 = time.monotonic()
        ledger.migrate()
        assert time.monotonic() - t0 >= 0.4  # it did wait for the writer
        assert _version(ledger) == HEAD
        with ledger.engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
    finally:
        releaser.join()
        writer.close()
        ledger.dispose()
