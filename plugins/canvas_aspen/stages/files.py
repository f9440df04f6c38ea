"""Where a run's files are: its shard folders (stage files) and its report folder."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from canvas_aspen import ids, storage


def shard_dir(run_dir: Any, shard: int) -> Any:
    """One shard's folder of stage files, in the run folder (a local path or an ObjectStoragePath)."""
    return run_dir / f"shard-{shard:04d}"


def read_plan(run_dir: Any) -> dict[str, Any]:
    """The run's ``plan.json`` (written by the plan stage)."""
    return storage.read_json(run_dir / "plan.json")


def report_folder(reports_dir: Path, run_id: str) -> Path:
    return Path(reports_dir) / ids.run_folder_name(run_id)
