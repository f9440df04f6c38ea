"""The Great Expectations gate of validate and match, and what it holds back."""

from __future__ import annotations

from typing import Any

import pandas as pd

from canvas_aspen import storage
from canvas_aspen.buckets import Bucket

GX_RESULTS = {"validate": "gx-results-validate.json", "match": "gx-results-match.json"}
"""Each gated stage's GX validation results in the shard's folder, for the run's Data Docs."""


def run_gate(frame: pd.DataFrame, suites: list[str], run_name: str):
    """``validation.run_gate`` over ``frame``, its GX results kept for the run's Data Docs."""
    from canvas_aspen import validation  # GX is heavy: imported only where it runs

    return validation.run_gate(frame, suites, run_name=run_name, data_docs=True)


def keep_gx_results(sd: Any, stage: str, *gates) -> None:
    """The gates' GX validation results beside the shard's stage files, for the run's Data Docs
    (the report task builds them); nothing when CANVAS_ASPEN_DATA_DOCS is off."""
    if all(g.stored is not None for g in gates):
        storage.write_json(sd / GX_RESULTS[stage], [entry for g in gates for entry in g.stored])


def hold(df: pd.DataFrame, held: dict[int, list[str]]) -> None:
    """Rows the gate flagged -> held_back (empty and failed rows keep their bucket)."""
    mask = df["row_id"].isin(list(held)) & df["bucket"].eq(Bucket.ELIGIBLE)
    df.loc[mask, "bucket"] = Bucket.HELD_BACK
    df.loc[df["row_id"].isin(list(held)), "held_kinds"] = df["row_id"].map(
        lambda r: ",".join(sorted(held.get(r, [])))
    )
