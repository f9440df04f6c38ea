"""The benchmark's districts: generated once per size (``python -m sandbox generate``) and
cached under ``bench/.cache/`` (git-ignored), as is the state after the set-up run."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

from bench.sizes import Size

REPO = Path(__file__).resolve().parents[1]


def cache_dir() -> Path:
    """``$BENCH_CACHE``, else ``bench/.cache`` (git-ignored)."""
    return Path(os.environ.get("BENCH_CACHE") or REPO / "bench" / ".cache")


def district_file(size: Size, cache: Path | None = None) -> Path:
    """The generated scenario of this size (generated on first use; same bytes every time)."""
    if size.scenario:
        from sandbox import scenario as scenario_mod

        return scenario_mod.resolve(size.scenario)
    cache = cache or cache_dir()
    name = (
        f"district-{size.name}-c{size.courses}-s{size.students_per_section}-a{size.assignments}"
        f"-seed{size.seed}.json"
    )
    path = cache / name
    if not path.exists():
        cache.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        subprocess.run(
            [
                sys.executable,
                "-m",
                "sandbox",
                "generate",
                "--courses",
                str(size.courses),
                "--students-per-section",
                str(size.students_per_section),
                "--assignments",
                str(size.assignments),
                "--seed",
                str(size.seed),
                "-o",
                str(tmp),
            ],
            cwd=REPO,
            check=True,
            stdout=subprocess.DEVNULL,
        )
        tmp.rename(path)
    return path


def aspen_classes(scenario: Path) -> list[str]:
    return sorted(c["sourcedId"] for c in json.loads(scenario.read_text())["aspen"]["classes"])


def setup_dir(size: Size, cache: Path | None = None) -> Path:
    if size.scenario:
        return (cache or cache_dir()) / f"setup-{size.name}"
    return (cache or cache_dir()) / f"setup-{size.name}-seed{size.seed}"


def save_setup(sb, district: Path, ledger_db: Path, target: Path) -> None:
    """The state after the set-up run, to start later benchmarks from: the district with
    Aspen's line items and results as the run left them, and the ledger file."""
    scenario = json.loads(district.read_text())
    line_items, results = [], []
    for cid in aspen_classes(district):
        st = sb.state(class_id=cid)
        line_items += st["lineItems"].values()
        results += st["results"].values()
    # the set-up is "last night": what it wrote is older than the measured run's read-back
    # window (verify reads back what Aspen modified since the run began, less 15 minutes)
    night_before = (datetime.now(timezone.utc) - timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%S.000Z")
    scenario["aspen"]["lineItems"] = [{**li, "dateLastModified": night_before} for li in line_items]
    scenario["aspen"]["results"] = [{**r, "dateLastModified": night_before} for r in results]
    target.mkdir(parents=True, exist_ok=True)
    (target / "scenario.json").write_text(json.dumps(scenario, separators=(",", ":")))
    copy_sqlite(ledger_db, target / "ledger.db")


def copy_sqlite(source: Path, target: Path) -> None:
    """A consistent copy of a SQLite file in WAL mode (the backup API, not a file copy)."""
    target.unlink(missing_ok=True)
    src, dst = sqlite3.connect(source), sqlite3.connect(target)
    try:
        src.backup(dst)
    finally:
        src.close()
        dst.close()
