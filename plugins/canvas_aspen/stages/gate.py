"""The Great Expectations gate of validate and match, and what it holds back."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from canvas_aspen.buckets import Bucket


def run_gate(frame: pd.DataFrame, suites: list[str], run_name: str, docs_dir: Any | None):
    """``validation.run_gate`` over ``frame``; with ``docs_dir`` its Data Docs go there, in the
    run's report folder, owner-only (the docs show grades)."""
    from canvas_aspen import report as report_mod
    from canvas_aspen import validation  # GX is heavy: imported only where it runs

    if docs_dir is None:
        return validation.run_gate(frame, suites, run_name=run_name, data_docs_dir=docs_dir)
    report_mod.private_dir(Path(docs_dir).parent.parent)  # the run's report folder: owner only first
    try:
        return validation.run_gate(frame, suites, run_name=run_name, data_docs_dir=docs_dir)
    finally:
        report_mod.restrict(Path(docs_dir))


def hold(df: pd.DataFrame, held: dict[int, list[str]]) -> None:
    """Rows the gate flagged -> held_back (empty and failed rows keep their bucket)."""
    mask = df["row_id"].isin(list(held)) & df["bucket"].eq(Bucket.ELIGIBLE)
    df.loc[mask, "bucket"] = Bucket.HELD_BACK
    df.loc[df["row_id"].isin(list(held)), "held_kinds"] = df["row_id"].map(
        lambda r: ",".join(sorted(held.get(r, [])))
    )
