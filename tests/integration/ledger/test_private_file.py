"""The SQLite ledger holds student SIS ids and scores: owner-only, like the reports."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pandas as pd
import pytest

from canvas_aspen.ledger import Ledger, default_sqlite_url


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def umask_022():
    old = os.umask(0o022)
    yield
    os.umask(old)


def _use(ledger: Ledger) -> None:
    """Enough to make SQLite write its WAL and shared-memory files."""
    ledger.migrate()
    ledger.start_run("r1", params={"course_ids": []}, dry_run=False, started_at=pd.Timestamp.now(tz="UTC"))


def test_default_ledger_file_its_wal_and_folder_are_owner_only(tmp_path, umask_022):
    home = tmp_path / "airflow"
    url = default_sqlite_url(home)
    ledger = Ledger(url)
    try:
        _use(ledger)
        db = home / "canvas_aspen" / "ledger.db"
        assert _mode(db.parent) == 0o700
        assert _mode(db) == 0o600
        side = [db.with_name(db.name + s) for s in ("-wal", "-shm")]
        assert all(p.exists() for p in side), list(db.parent.iterdir())  # WAL mode, in use
        assert [_mode(p) for p in side] == [0o600, 0o600]
    finally:
        ledger.dispose()


def test_a_ledger_left_world_readable_is_tightened(tmp_path, umask_022):
    home = tmp_path / "airflow"
    folder = home / "canvas_aspen"
    folder.mkdir(parents=True, mode=0o755)
    os.chmod(folder, 0o755)
    db = folder / "ledger.db"
    first = Ledger(f"sqlite:///{db}")
    _use(first)
    first.dispose()
    for p in folder.iterdir():
        os.chmod(p, 0o644)  # as an older version left them
    ledger = Ledger(default_sqlite_url(home))
    try:
        _use(ledger)
        assert _mode(folder) == 0o700
        assert {p.name: _mode(p) for p in folder.iterdir()} == dict.fromkeys(
            [p.name for p in folder.iterdir()], 0o600
        )
    finally:
        ledger.dispose()
