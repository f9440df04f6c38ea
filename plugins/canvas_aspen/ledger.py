"""The ledger: what this project posted to Aspen, when, and in which run.

R8 compares Canvas with the value this project *last posted*, R9 tells an Aspen-side edit
from a Canvas change by the same value, R7 reports a cleared grade that we posted, and
the run report (R17) keeps its findings here. A value is recorded only after Aspen
accepted it, so the ledger never claims more than Aspen holds.

Any SQLAlchemy URL of a supported dialect works: a SQLite file under the Airflow home by
default, PostgreSQL in production. The schema is Alembic's (``ledger_migrations``
inside this package; ``Ledger.migrate()`` runs ``upgrade head``, no alembic.ini needed).

Concurrency: a nightly run and a manual backfill take *course leases*
(``acquire_courses``) before posting, so no two live runs ever post the same course. The
upserts also refuse to let an older post overwrite a newer one (``posted_at`` guard), so
the later value is never lost even if two writers did overlap.

Everything is bulk, one transaction per call: a chunk of rows travels as one JSON
document into one dialect ``INSERT .. SELECT .. ON CONFLICT`` (never a round trip per row),
reads use batched IN-lists, small writes use executemany.
"""

from __future__ import annotations

import math
import os
import sqlite3
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from canvas_aspen.findings import FIELDS

VERSION_TABLE = "canvas_aspen_ledger_version"  # not "alembic_version": the database may be Airflow's
MIGRATIONS_DIR = Path(__file__).with_name("ledger_migrations")
IN_BATCH = 500  # values per IN-list
CHUNK = 5_000  # rows per bulk statement
_MIGRATE_LOCK = 0x43414E56_41535045  # pg_advisory_xact_lock key ("CANVASPE")
_WRITE = "canvas_aspen_write"  # execution option: SQLite takes the write lock at BEGIN

RESULT_STATE_COLUMNS = ("result_id", "score", "score_status", "canvas_status", "posted_at", "run_id")
LINE_ITEM_STATE_COLUMNS = (
    "line_item_id",
    "aspen_class_id",
    "canvas_course_id",
    "assignment_id",
    "payload_hash",
    "posted_at",
    "run_id",
    "deleted_at",
)


# --------------------------------------------------------------------------- types


def _utc(value: datetime) -> datetime:
    """An aware instant in UTC; naive datetimes are refused (their zone is a guess)."""
    if isinstance(value, pd.Timestamp):
        value = value.to_pydatetime()
    if value.tzinfo is None:
        raise ValueError(f"naive datetime {value!r}: pass an aware (UTC) instant")
    return value.astimezone(UTC)


class UtcDateTime(sa.TypeDecorator[datetime]):
    """Aware UTC instants on every backend (SQLite keeps naive UTC text, sortable as text)."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    @property
    def python_type(self) -> type:
        return datetime

    def process_bind_param(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        if value is None:
            return None
        value = _utc(value)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


Json = sa.JSON(none_as_null=True)
Id = sa.String(255)
RunId = sa.String(250)  # Airflow's own run_id limit
Status = sa.String(32)
AutoId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")  # SQLite autoincrements INTEGER only


class Base(DeclarativeBase):
    metadata = sa.MetaData(
        naming_convention={
            "ix": "ix_%(table_name)s_%(column_0_N_name)s",
            "uq": "uq_%(table_name)s_%(column_0_N_name)s",
            "pk": "pk_%(table_name)s",
        }
    )
    type_annotation_map = {
        int: sa.BigInteger(),
        float: sa.Double(),
        str: Id,
        datetime: UtcDateTime(),
        dict[str, Any]: Json,
    }


# --------------------------------------------------------------------------- models


class Run(Base):
    """One DAG run (nightly or manual): its params and, when finished, the R17 totals."""

    __tablename__ = "runs"
    run_id: Mapped[str] = mapped_column(RunId, primary_key=True)
    started_at: Mapped[datetime]
    finished_at: Mapped[datetime | None]
    status: Mapped[str] = mapped_column(Status)
    dry_run: Mapped[bool]
    params: Mapped[dict[str, Any] | None]
    totals: Mapped[dict[str, Any] | None]


class _ResultFields:
    """What one posted result was: where it went and the value Aspen accepted (R6, R8)."""

    line_item_id: Mapped[str]
    aspen_class_id: Mapped[str]
    canvas_course_id: Mapped[int]
    assignment_id: Mapped[int]
    canvas_user_id: Mapped[int]
    student_sis_id: Mapped[str]
    score: Mapped[float | None]
    score_status: Mapped[str] = mapped_column(Status)
    canvas_status: Mapped[str] = mapped_column(Status)
    posted_at: Mapped[datetime]
    run_id: Mapped[str] = mapped_column(RunId)


class PostedResult(_ResultFields, Base):
    """Current state: the last value this project posted, one row per result sourcedId."""

    __tablename__ = "posted_results"
    __table_args__ = (sa.Index(None, "aspen_class_id"),)
    result_id: Mapped[str] = mapped_column(primary_key=True)


class ResultHistory(_ResultFields, Base):
    """Append-only: every accepted post (a retried call with the same posted_at adds nothing)."""

    __tablename__ = "result_history"
    __table_args__ = (sa.UniqueConstraint("result_id", "run_id", "posted_at"),)
    id: Mapped[int] = mapped_column(AutoId, primary_key=True, autoincrement=True)
    result_id: Mapped[str]  # looked up through the unique constraint's index


class _LineItemFields:
    aspen_class_id: Mapped[str]
    canvas_course_id: Mapped[int]
    assignment_id: Mapped[int]
    payload_hash: Mapped[str] = mapped_column(sa.String(64))
    run_id: Mapped[str] = mapped_column(RunId)


class PostedLineItem(_LineItemFields, Base):
    """Current state of each line item we PUT; ``deleted_at`` once removed as an orphan (R10)."""

    __tablename__ = "posted_line_items"
    __table_args__ = (sa.Index(None, "aspen_class_id"),)
    line_item_id: Mapped[str] = mapped_column(primary_key=True)
    posted_at: Mapped[datetime]
    deleted_at: Mapped[datetime | None]


class LineItemHistory(_LineItemFields, Base):
    """Append-only: every accepted PUT (``action`` "posted") and DELETE ("deleted")."""

    __tablename__ = "line_item_history"
    __table_args__ = (sa.UniqueConstraint("line_item_id", "run_id", "at", "action"),)
    id: Mapped[int] = mapped_column(AutoId, primary_key=True, autoincrement=True)
    line_item_id: Mapped[str]  # looked up through the unique constraint's index
    action: Mapped[str] = mapped_column(Status)
    at: Mapped[datetime]


class Finding(Base):
    """A run's findings (the report's fields), replaced per ``scope`` (shard/stage) on retry."""

    __tablename__ = "findings"
    __table_args__ = (sa.Index(None, "run_id", "scope"),)
    id: Mapped[int] = mapped_column(AutoId, primary_key=True, autoincrement=True)
    run_id: Mapped[str] = mapped_column(RunId)
    scope: Mapped[str] = mapped_column(sa.String(100))
    seq: Mapped[int] = mapped_column(sa.Integer())
    rule: Mapped[str] = mapped_column(sa.String(8))
    kind: Mapped[str] = mapped_column(sa.String(40))
    severity: Mapped[str] = mapped_column(sa.String(10))
    canvas_course_id: Mapped[int | None]
    aspen_class_id: Mapped[str | None]
    assignment_id: Mapped[int | None]
    assignment_name: Mapped[str | None] = mapped_column(sa.Text())
    group_name: Mapped[str | None] = mapped_column(sa.Text())
    student_sis_id: Mapped[str | None]
    value: Mapped[Any | None] = mapped_column(Json)
    limit: Mapped[Any | None] = mapped_column(Json)
    message: Mapped[str] = mapped_column(sa.Text())
    suggestion: Mapped[str | None] = mapped_column(sa.Text())


class CourseLease(Base):
    """Mutual exclusion per Canvas course between live runs (nightly vs. backfill)."""

    __tablename__ = "course_leases"
    canvas_course_id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    run_id: Mapped[str] = mapped_column(RunId, index=True)
    acquired_at: Mapped[datetime]
    expires_at: Mapped[datetime]


class TeacherDigest(Base):
    """One teacher's digest of one run: to whom, when, what it said (its fingerprint), and
    whether it was sent, previewed or failed. ``mode`` is ``send`` or ``preview``; ``status``
    is ``sending`` (claimed, the message on its way), ``sent``, ``failed`` or ``previewed``."""

    __tablename__ = "teacher_digests"
    __table_args__ = (
        sa.UniqueConstraint("run_id", "teacher_id", "mode"),
        sa.Index(None, "teacher_id", "mode", "status"),
    )
    id: Mapped[int] = mapped_column(AutoId, primary_key=True, autoincrement=True)
    run_id: Mapped[str] = mapped_column(RunId)
    teacher_id: Mapped[int]
    email: Mapped[str] = mapped_column(sa.String(320))
    mode: Mapped[str] = mapped_column(Status)
    status: Mapped[str] = mapped_column(Status)
    fingerprint: Mapped[str] = mapped_column(sa.String(64))
    findings: Mapped[int] = mapped_column(sa.Integer())
    course_ids: Mapped[Any | None] = mapped_column(Json)
    reason: Mapped[str | None] = mapped_column(Status)
    created_at: Mapped[datetime]
    sent_at: Mapped[datetime | None]
    error: Mapped[str | None] = mapped_column(sa.Text())


_RESULT_FIELDS = (
    "result_id",
    *(c for c in PostedResult.__table__.columns.keys() if c not in {"result_id", "posted_at", "run_id"}),
)
_LINE_ITEM_FIELDS = ("line_item_id", "aspen_class_id", "canvas_course_id", "assignment_id", "payload_hash")


# --------------------------------------------------------------------------- helpers


def default_sqlite_url(airflow_home: Path) -> str:
    """``sqlite:///{airflow_home}/canvas_aspen/ledger.db``, its folder created owner-only
    (``0700``; an existing one open to others is tightened, with a warning): the ledger holds
    student ids and scores, like the reports and stage files beside it."""
    from canvas_aspen.storage import private_dir

    path = Path(airflow_home).resolve() / "canvas_aspen" / "ledger.db"
    private_dir(path.parent)
    return f"sqlite:///{path}"


SQLITE_SIDE_FILES = ("-wal", "-shm", "-journal")


def _private_sqlite_file(url: sa.URL) -> None:
    """A SQLite ledger file readable by its owner only (``0600``), made so before SQLite creates
    it (SQLite gives its ``-wal``/``-shm`` files the database file's mode); files an older
    version left open to others (the database and its side files) are tightened."""
    database = url.database or ""
    if (
        not database
        or database == ":memory:"
        or database.startswith("file:")
        or url.query.get("mode") == "memory"
    ):
        return
    path = Path(database)
    if not path.parent.is_dir():
        return  # SQLite reports the missing folder itself
    os.close(os.open(path, os.O_RDWR | os.O_CREAT, 0o600))
    for p in (path, *(path.with_name(path.name + side) for side in SQLITE_SIDE_FILES)):
        try:
            if p.stat().st_mode & 0o077:
                os.chmod(p, 0o600)
        except FileNotFoundError:
            pass


def _batches(values: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    for start in range(0, len(values), size):
        yield values[start : start + size]


def _jsonable(value: Any) -> Any:
    """JSON-safe copy: numpy scalars unboxed, NaN/NaT/NA -> None, instants as ISO text."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_jsonable(v) for v in value]
    if hasattr(value, "item") and not isinstance(value, str | bytes):  # numpy scalar
        value = value.item()
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, float) and not math.isfinite(value):
        return None if math.isnan(value) else str(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Path):
        return str(value)
    return value


def _typed(series: pd.Series, python_type: type) -> pd.Series:
    """A column coerced to the model's type (nullable ints, float64, strings)."""
    if python_type is int:
        return series.astype("Int64")
    if python_type is float:
        return pd.to_numeric(series).astype("float64")
    if python_type is str:
        return series.astype("string")
    return series


def _typed_frame(frame: pd.DataFrame, table: sa.Table, fields: Sequence[str], key: str) -> pd.DataFrame:
    """The ``fields`` of ``frame`` in the table's types, one row per ``key`` (the last wins)."""
    missing = [f for f in fields if f not in frame.columns]
    if missing:
        raise ValueError(f"frame lacks columns {missing}")
    frame = frame.drop_duplicates(key, keep="last")
    return pd.DataFrame({f: _typed(frame[f], table.c[f].type.python_type) for f in fields})


def _raw(column: sa.Column) -> sa.ColumnElement[Any]:
    """Instants read as the driver gives them (converted column-wise by ``_frame``)."""
    if column.type.python_type is datetime:
        return sa.type_coerce(column, sa.String()).label(column.name)  # String: no result processing
    return column


def _frame(rows: Sequence[sa.Row], table: sa.Table, columns: Sequence[str]) -> pd.DataFrame:
    """Raw query rows -> a typed DataFrame (floats as float64, instants as UTC datetimes)."""
    values = list(zip(*rows, strict=True)) if rows else [()] * len(columns)
    frame = pd.DataFrame({name: list(column) for name, column in zip(columns, values, strict=True)})
    for name in columns:
        python_type = table.c[name].type.python_type
        if python_type is float:
            frame[name] = pd.to_numeric(frame[name]).astype("float64")
        elif python_type is datetime:  # SQLite: naive UTC text; PostgreSQL: aware datetimes
            frame[name] = pd.to_datetime(frame[name], utc=True, format="ISO8601")
        elif python_type is int:
            frame[name] = frame[name].astype("Int64" if table.c[name].nullable else "int64")
    return frame


# --------------------------------------------------------------------------- engine


SQLITE_LOCK_WAIT = 60.0  # seconds a connection waits for another's lock (pysqlite's timeout)


def _wal(cursor: Any) -> None:
    """Switch a database to WAL once; later connections find it so. The switch needs the
    database to itself and SQLite answers "locked" at once, not after its busy timeout, while
    another connection writes (two runs migrating a fresh ledger): wait for it, as for a lock."""
    if str(cursor.execute("PRAGMA journal_mode").fetchone()[0]).lower() == "wal":
        return
    deadline = time.monotonic() + SQLITE_LOCK_WAIT
    while True:
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def _sqlite_connect(dbapi_connection: Any, _record: Any) -> None:
    """Let SQLAlchemy, not pysqlite, issue BEGIN; WAL lets readers run beside a writer; a
    64 MiB page cache keeps bulk upserts of random keys off the disk."""
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    _wal(cursor)
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA cache_size=-65536")
    cursor.close()


def _sqlite_begin(connection: sa.Connection) -> None:
    """Writers BEGIN IMMEDIATE: they queue on the write lock instead of failing to upgrade."""
    immediate = connection.get_execution_options().get(_WRITE)
    connection.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


def _engine(url: str | sa.URL, **engine_kwargs: Any) -> sa.Engine:
    url = sa.make_url(url)
    if url.get_backend_name() == "sqlite":
        _private_sqlite_file(url)
        engine_kwargs.setdefault("connect_args", {}).setdefault("timeout", SQLITE_LOCK_WAIT)
        engine = sa.create_engine(url, **engine_kwargs)
        sa.event.listen(engine, "connect", _sqlite_connect)
        sa.event.listen(engine, "begin", _sqlite_begin)
        return engine
    engine_kwargs.setdefault("pool_pre_ping", True)
    return sa.create_engine(url, **engine_kwargs)


_INSERTS = {"sqlite": sqlite.insert, "postgresql": postgresql.insert}


# --------------------------------------------------------------------------- the ledger


class Ledger:
    """The ledger on one database. Safe to share between threads; one per process is enough."""

    def __init__(self, url: str | sa.URL, **engine_kwargs: Any) -> None:
        self.engine = _engine(url, **engine_kwargs)
        if self.engine.dialect.name not in _INSERTS:
            raise ValueError(f"the ledger supports {sorted(_INSERTS)}, not {self.engine.dialect.name!r}")
        self._writer = self.engine.execution_options(**{_WRITE: True})
        self._insert = _INSERTS[self.engine.dialect.name]

    def dispose(self) -> None:
        self.engine.dispose()

    @contextmanager
    def _write(self) -> Iterator[sa.Connection]:
        """One write transaction (SQLite: holds the database write lock from its start)."""
        with self._writer.begin() as conn:
            yield conn

    # ---- schema

    def migrate(self) -> None:
        """``alembic upgrade head`` on this database; concurrent callers are serialised."""
        from alembic import command  # imported here: only migrating needs Alembic
        from alembic.config import Config

        config = Config()
        config.set_main_option("script_location", str(MIGRATIONS_DIR))
        with self._write() as conn:
            if conn.dialect.name == "postgresql":
                conn.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": _MIGRATE_LOCK})
            config.attributes["connection"] = conn
            command.upgrade(config, "head")

    # ---- runs

    def start_run(self, run_id: str, *, params: dict[str, Any], dry_run: bool, started_at: datetime) -> None:
        """Record a run as running. A retried task calling this again reopens the same row
        (first ``started_at`` kept, ``finished_at``/``totals`` cleared) instead of failing."""
        table = Run.__table__
        stmt = self._insert(table)
        stmt = stmt.on_conflict_do_update(
            index_elements=[table.c.run_id],
            set_={
                "status": stmt.excluded.status,
                "dry_run": stmt.excluded.dry_run,
                "params": stmt.excluded.params,
                "finished_at": sa.null(),
                "totals": sa.null(),
            },
        )
        values = {
            "run_id": run_id,
            "started_at": started_at,
            "status": "running",
            "dry_run": bool(dry_run),
            "params": _jsonable(params),
        }
        with self._write() as conn:
            conn.execute(stmt, values)

    def finish_run(self, run_id: str, *, finished_at: datetime, status: str, totals: dict[str, Any]) -> None:
        """Close a run with its status and R17 totals (idempotent: the last call wins)."""
        table = Run.__table__
        stmt = (
            sa.update(table)
            .where(table.c.run_id == run_id)
            .values(finished_at=finished_at, status=status, totals=_jsonable(totals))
        )
        with self._write() as conn:
            if conn.execute(stmt).rowcount == 0:
                raise LookupError(f"run {run_id!r} was never started in the ledger")

    def run(self, run_id: str) -> dict[str, Any] | None:
        """The run's row as a dict, None if unknown."""
        table = Run.__table__
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(table).where(table.c.run_id == run_id)).mappings().first()
        return dict(row) if row else None

    # ---- results (R8, R9, R7)

    def posted_results(self, class_ids: Iterable[str] | None) -> pd.DataFrame:
        """What we last posted in these Aspen classes (None: every class): columns
        result_id, score, score_status, canvas_status, posted_at, run_id."""
        table = PostedResult.__table__
        return self._state(table, RESULT_STATE_COLUMNS, table.c.aspen_class_id, class_ids)

    def record_posted_results(self, frame: pd.DataFrame, run_id: str, posted_at: datetime) -> int:
        """Results Aspen accepted: upsert the current state and append the history, in one
        transaction. ``frame`` has result_id, line_item_id, aspen_class_id, canvas_course_id,
        assignment_id, canvas_user_id, student_sis_id, score, score_status, canvas_status.
        An older ``posted_at`` never overwrites a newer one. Returns the results recorded."""
        table = PostedResult.__table__
        rows = _typed_frame(frame, table, _RESULT_FIELDS, key="result_id")
        when = {"run_id": sa.literal(run_id, RunId), "posted_at": sa.literal(posted_at, UtcDateTime())}
        return self._record(table, rows, current=when, history=ResultHistory.__table__, logged=when)

    # ---- line items (R10)

    def posted_line_items(self, class_ids: Iterable[str] | None) -> pd.DataFrame:
        """Line items we PUT in these classes (None: every class), deleted ones included
        (``deleted_at`` set): columns of ``LINE_ITEM_STATE_COLUMNS``."""
        table = PostedLineItem.__table__
        return self._state(table, LINE_ITEM_STATE_COLUMNS, table.c.aspen_class_id, class_ids)

    def record_posted_line_items(self, frame: pd.DataFrame, run_id: str, posted_at: datetime) -> int:
        """Line items Aspen accepted: upsert (clearing any ``deleted_at``) and append the
        history, in one transaction. ``frame`` has line_item_id, aspen_class_id,
        canvas_course_id, assignment_id, payload_hash. Returns the line items recorded."""
        table = PostedLineItem.__table__
        rows = _typed_frame(frame, table, _LINE_ITEM_FIELDS, key="line_item_id")
        run, at = sa.literal(run_id, RunId), sa.literal(posted_at, UtcDateTime())
        current = {"run_id": run, "posted_at": at, "deleted_at": sa.cast(sa.null(), UtcDateTime())}
        logged = {"run_id": run, "at": at, "action": sa.literal("posted", Status)}
        return self._record(table, rows, current=current, history=LineItemHistory.__table__, logged=logged)

    def mark_line_items_deleted(self, line_item_ids: Iterable[str], run_id: str, at: datetime) -> int:
        """Orphans Aspen deleted (R10): set ``deleted_at``, log it, and drop their results
        from the current state (Aspen no longer holds them; the history keeps them).
        Items already marked are left alone. Returns how many were marked."""
        items, history, results = PostedLineItem.__table__, LineItemHistory.__table__, PostedResult.__table__
        marked = 0
        with self._write() as conn:
            for batch in _batches(sorted(set(line_item_ids)), IN_BATCH):
                live = items.c.line_item_id.in_(batch) & items.c.deleted_at.is_(None)
                conn.execute(
                    sa.insert(history).from_select(
                        ["line_item_id", *_LINE_ITEM_FIELDS[1:], "run_id", "at", "action"],
                        sa.select(
                            items.c.line_item_id,
                            *(items.c[f] for f in _LINE_ITEM_FIELDS[1:]),
                            sa.literal(run_id, RunId),
                            sa.literal(at, UtcDateTime()),
                            sa.literal("deleted", Status),
                        ).where(live),
                    )
                )
                marked += conn.execute(
                    sa.update(items).where(live).values(deleted_at=at, run_id=run_id)
                ).rowcount
                conn.execute(sa.delete(results).where(results.c.line_item_id.in_(batch)))
        return marked

    # ---- findings (R17 report)

    def record_findings(self, run_id: str, findings: Sequence[dict[str, Any]], *, scope: str) -> None:
        """Replace the run's findings of one ``scope`` (e.g. "shard-0003/validate"):
        delete-then-insert in one transaction, so a retried task never doubles them."""
        table = Finding.__table__
        rows = [_finding_row(f, run_id=run_id, scope=scope, seq=i) for i, f in enumerate(findings)]
        with self._write() as conn:
            conn.execute(sa.delete(table).where(table.c.run_id == run_id, table.c.scope == scope))
            for chunk in _batches(rows, CHUNK):
                conn.execute(sa.insert(table), list(chunk))

    def findings(self, run_id: str, scope: str | None = None) -> list[dict[str, Any]]:
        """The run's findings (report fields only), by scope then in recorded order."""
        table = Finding.__table__
        query = sa.select(*(table.c[f] for f in FIELDS)).where(table.c.run_id == run_id)
        if scope is not None:
            query = query.where(table.c.scope == scope)
        with self.engine.connect() as conn:
            rows = conn.execute(query.order_by(table.c.scope, table.c.seq)).mappings().all()
        return [dict(r) for r in rows]

    # ---- course leases (a nightly run beside a manual backfill)

    def acquire_courses(
        self, course_ids: Iterable[int], run_id: str, ttl: timedelta, *, now: datetime | None = None
    ) -> tuple[list[int], dict[int, str]]:
        """Lease courses for ``run_id`` until ``now + ttl``. Returns (granted, refused:
        course -> the live run holding it). Free and expired leases are taken, our own are
        extended. Atomic on SQLite and PostgreSQL: of two racing runs exactly one wins."""
        now = _utc(now or datetime.now(UTC))
        wanted = sorted({int(c) for c in course_ids})  # one lock order: racing runs never deadlock
        if not wanted:
            return [], {}
        table = CourseLease.__table__
        stmt = self._insert(table)
        mine = table.c.run_id == stmt.excluded.run_id
        stmt = stmt.on_conflict_do_update(
            index_elements=[table.c.canvas_course_id],
            set_={
                "run_id": stmt.excluded.run_id,
                "expires_at": stmt.excluded.expires_at,
                "acquired_at": sa.case((mine, table.c.acquired_at), else_=stmt.excluded.acquired_at),
            },
            where=mine | (table.c.expires_at <= stmt.excluded.acquired_at),
        )
        values = [
            {"canvas_course_id": c, "run_id": run_id, "acquired_at": now, "expires_at": now + ttl}
            for c in wanted
        ]
        holders: dict[int, str] = {}
        with self._write() as conn:
            for chunk in _batches(values, CHUNK):
                conn.execute(stmt, list(chunk))
            for batch in _batches(wanted, IN_BATCH):
                query = sa.select(table.c.canvas_course_id, table.c.run_id).where(
                    table.c.canvas_course_id.in_(batch)
                )
                holders.update(conn.execute(query).tuples().all())
        granted = [c for c in wanted if holders[c] == run_id]
        return granted, {c: holders[c] for c in wanted if holders[c] != run_id}

    def release_courses(self, run_id: str, course_ids: Iterable[int] | None = None) -> int:
        """Give back the run's leases (all, or only ``course_ids``). Returns how many."""
        table = CourseLease.__table__
        stmt = sa.delete(table).where(table.c.run_id == run_id)
        if course_ids is not None:
            stmt = stmt.where(table.c.canvas_course_id.in_(sorted({int(c) for c in course_ids})))
        with self._write() as conn:
            return conn.execute(stmt).rowcount

    # ---- teacher digests

    def last_sent_digests(self, teacher_ids: Iterable[int]) -> dict[int, dict[str, Any]]:
        """Per teacher, the last digest actually sent (any run): its fingerprint, findings
        count, sent_at and run_id. Teachers never sent one are absent."""
        table = TeacherDigest.__table__
        wanted = sorted({int(t) for t in teacher_ids})
        out: dict[int, dict[str, Any]] = {}
        cols = [table.c.teacher_id, table.c.fingerprint, table.c.findings, table.c.sent_at, table.c.run_id]
        with self.engine.connect() as conn:
            for batch in _batches(wanted, IN_BATCH):
                query = (
                    sa.select(*cols)
                    .where(table.c.teacher_id.in_(batch), table.c.mode == "send", table.c.status == "sent")
                    .order_by(table.c.sent_at, table.c.id)
                )
                for row in conn.execute(query).mappings():
                    out[int(row["teacher_id"])] = dict(row)  # ordered: the last one wins
        return out

    def claim_digest(
        self,
        run_id: str,
        teacher_id: int,
        *,
        mode: str,
        email: str,
        fingerprint: str,
        findings: int,
        course_ids: Sequence[int],
        reason: str | None,
        now: datetime,
    ) -> bool:
        """Take this run's digest to this teacher: True when the caller is to send (or write)
        it now; False when this run already sent it, or an earlier attempt may have (status
        ``sending``: at most once, never twice). A digest that failed in an earlier attempt of
        this run is claimed again."""
        table = TeacherDigest.__table__
        key = (table.c.run_id == run_id) & (table.c.teacher_id == int(teacher_id)) & (table.c.mode == mode)
        values = {
            "email": email,
            "fingerprint": fingerprint,
            "findings": int(findings),
            "course_ids": [int(c) for c in course_ids],
            "reason": reason,
            "created_at": _utc(now),
            "status": "sending",
            "sent_at": None,
            "error": None,
        }
        with self._write() as conn:
            status = conn.execute(sa.select(table.c.status).where(key)).scalar()
            if status is None:
                conn.execute(
                    sa.insert(table).values(run_id=run_id, teacher_id=int(teacher_id), mode=mode, **values)
                )
                return True
            if status in ("sent", "sending", "previewed"):
                return False
            conn.execute(sa.update(table).where(key).values(**values))
            return True

    def finish_digest(
        self, run_id: str, teacher_id: int, *, mode: str, status: str, at: datetime, error: str | None = None
    ) -> None:
        """Record how a claimed digest ended: ``sent``, ``previewed`` or ``failed`` (with why)."""
        if status not in ("sent", "previewed", "failed"):
            raise ValueError(f"unknown digest status {status!r}")
        table = TeacherDigest.__table__
        stmt = (
            sa.update(table)
            .where(table.c.run_id == run_id, table.c.teacher_id == int(teacher_id), table.c.mode == mode)
            .values(status=status, sent_at=_utc(at) if status != "failed" else None, error=error)
        )
        with self._write() as conn:
            if conn.execute(stmt).rowcount == 0:
                raise LookupError(f"no digest of run {run_id!r} to teacher {teacher_id} was claimed")

    def digests(self, run_id: str) -> list[dict[str, Any]]:
        """The run's digests, by teacher."""
        table = TeacherDigest.__table__
        query = sa.select(table).where(table.c.run_id == run_id).order_by(table.c.teacher_id, table.c.mode)
        with self.engine.connect() as conn:
            return [dict(r) for r in conn.execute(query).mappings()]

    # ---- shared bulk paths

    def _state(
        self, table: sa.Table, columns: Sequence[str], key: sa.Column, values: Iterable[str] | None
    ) -> pd.DataFrame:
        query = sa.select(*(_raw(table.c[c]) for c in columns))
        rows: list[sa.Row] = []
        with self.engine.connect() as conn:
            if values is None:  # fetchall(): one driver call per statement, not one per row
                rows = conn.execute(query).fetchall()
            else:
                for batch in _batches(sorted(set(values)), IN_BATCH):
                    rows.extend(conn.execute(query.where(key.in_(batch))).fetchall())
        return _frame(rows, table, columns)

    def _record(
        self,
        table: sa.Table,
        rows: pd.DataFrame,
        *,
        current: dict[str, sa.ColumnElement[Any]],
        history: sa.Table,
        logged: dict[str, sa.ColumnElement[Any]],
    ) -> int:
        """Upsert ``rows`` (+ the ``current`` constants) into ``table`` and append them
        (+ ``logged``) to ``history``: two set-based statements per chunk, one transaction.
        A row replaces only a row whose ``posted_at`` is not newer; the history ignores
        exact repeats, so a retried call adds nothing."""
        names = list(rows.columns)
        with self._write() as conn:
            for start in range(0, len(rows), CHUNK):
                source = self._rows_source(table, rows.iloc[start : start + CHUNK])
                conn.execute(self._upsert(table, source, names, current))
                conn.execute(self._append(history, source, names, logged))
        return len(rows)

    def _rows_source(self, table: sa.Table, rows: pd.DataFrame) -> sa.FromClause:
        """Many rows as a derived table bound as one JSON document, not one round trip (nor
        one bound parameter) per row: ``json_to_recordset()`` with the table's column types
        on PostgreSQL, ``json_each()`` on SQLite. The database parses it in C."""
        document = sa.bindparam(None, rows.to_json(orient="records", double_precision=15), type_=sa.Text())
        if self.engine.dialect.name == "postgresql":
            typed = [sa.column(name, table.c[name].type) for name in rows.columns]
            recordset = sa.func.json_to_recordset(sa.cast(document, postgresql.JSON))
            return recordset.table_valued(*typed).render_derived(name="src", with_types=True)
        each = sa.func.json_each(document).table_valued("value")
        fields = [sa.func.json_extract(each.c.value, f"$.{name}").label(name) for name in rows.columns]
        return sa.select(*fields).subquery("src")

    def _upsert(
        self,
        table: sa.Table,
        source: sa.FromClause,
        names: list[str],
        constants: dict[str, sa.ColumnElement[Any]],
    ) -> sa.Insert:
        stmt = self._insert(table).from_select([*names, *constants], _select(source, names, constants))
        key = [c.name for c in table.primary_key]
        return stmt.on_conflict_do_update(
            index_elements=key,
            set_={c: stmt.excluded[c] for c in [*names, *constants] if c not in key},
            where=table.c.posted_at <= stmt.excluded.posted_at,
        )

    def _append(
        self,
        history: sa.Table,
        source: sa.FromClause,
        names: list[str],
        constants: dict[str, sa.ColumnElement[Any]],
    ) -> sa.Insert:
        unique = next(c for c in history.constraints if isinstance(c, sa.UniqueConstraint))
        stmt = self._insert(history).from_select([*names, *constants], _select(source, names, constants))
        return stmt.on_conflict_do_nothing(index_elements=[c.name for c in unique.columns])


def _select(
    source: sa.FromClause, names: list[str], constants: dict[str, sa.ColumnElement[Any]]
) -> sa.Select:
    # the WHERE is required by SQLite: it disambiguates INSERT .. SELECT .. ON CONFLICT
    columns = [source.c[n] for n in names] + [value.label(name) for name, value in constants.items()]
    return sa.select(*columns).where(sa.true())


def _finding_row(finding: dict[str, Any], **extra: Any) -> dict[str, Any]:
    unknown = set(finding) - set(FIELDS)
    if unknown:
        raise ValueError(f"unknown finding fields {sorted(unknown)}")
    row = {f: _jsonable(finding.get(f)) for f in FIELDS}
    for name in ("canvas_course_id", "assignment_id"):
        row[name] = None if row[name] is None else int(row[name])
    for name in ("aspen_class_id", "student_sis_id"):
        row[name] = None if row[name] is None else str(row[name])
    return {**row, **extra}
