"""R17's buckets have one name each (``canvas_aspen.buckets.Bucket``), and the stage files,
report.json and XCom summaries still hold the plain strings they always held."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq

from canvas_aspen import buckets, report, rows, storage
from canvas_aspen.buckets import Bucket
from canvas_aspen.stages.failures import fail_rows
from canvas_aspen.stages.gate import hold
from sandbox import scenario

from .test_rows_columns import TZ, _bundles


def test_r17_the_report_buckets_are_the_six_final_buckets_as_plain_strings():
    assert report.BUCKETS == ("posted", "unchanged", "empty", "hidden", "held_back", "failed")
    assert all(type(b) is str for b in report.BUCKETS)
    assert buckets.TOTAL_KEYS == ("considered", *report.BUCKETS)
    assert (
        Bucket.ELIGIBLE not in buckets.FINAL
    )  # a row still "eligible" at the end is a bug (report refuses it)


def test_r17_stage_files_and_stage_summaries_hold_plain_bucket_strings(tmp_path: Path):
    bundles, periods = _bundles(scenario.load("demo"))
    df = rows.build_rows(bundles, periods, TZ)
    assert set(df["bucket"]) == {"empty", "hidden", "eligible"}
    df = df.astype({"bucket": object})  # the worst case: a column that keeps whatever is put in it
    df["error"] = None
    eligible = df.index[df["bucket"].eq(Bucket.ELIGIBLE)]
    fail_rows(df, df.index.isin(eligible[:2]), "Aspen said no")
    hold(df, {int(df.loc[eligible[2], "row_id"]): ["over_max"]})
    path = tmp_path / "final.parquet"
    storage.write_frame(path, df)

    column = pq.read_table(path).column("bucket")
    assert str(column.type) in ("string", "large_string")
    assert set(column.to_pylist()) == {"empty", "hidden", "eligible", "failed", "held_back"}
    back = storage.read_frame(path)
    assert all(type(b) is str for b in back["bucket"])
    counts = back["bucket"].value_counts().to_dict()  # what a stage returns to XCom
    assert json.loads(json.dumps(counts)) == counts and all(type(k) is str for k in counts)
    assert counts["failed"] == 2 and counts["held_back"] == 1


def test_r17_report_totals_are_keyed_by_plain_strings():
    df = pd.DataFrame(
        {
            "bucket": [Bucket.POSTED, Bucket.HIDDEN, "failed"],
            "canvas_course_id": [1, 1, 2],
            "sis_course_id": ["C1", "C1", "C2"],
            "aspen_class_id": ["A", "A", "B"],
        }
    )
    totals = report.bucket_counts(df)
    assert json.dumps(totals) == (
        '{"considered": 3, "posted": 1, "unchanged": 0, "empty": 0, "hidden": 1, "held_back": 0, "failed": 1}'
    )
    assert [set(c) >= set(buckets.TOTAL_KEYS) for c in report.course_table(df, {})] == [True, True]


def test_the_ui_plugin_reads_the_bucket_names_without_importing_pandas():
    probe = (
        "import sys, canvas_aspen.ui_plugin\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('pandas', 'numpy', 'pyarrow')))"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "[]"  # the API server's plugin stays light
