"""A smoke run of the benchmark (``make bench``) on a tiny district: the JSON line it prints
has its fields, the buckets add up, and the request counts are those of a run that posted
nothing. The benchmark itself is not a test (docs/benchmarks.md)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

pytestmark = pytest.mark.slow

STAGES = {"plan", "extract", "validate", "match", "deltas", "post", "verify", "report"}


@pytest.mark.parametrize("slots, shards", [(1, 1), (4, 2)], ids=["stage-after-stage", "pipelined"])
def test_bench_no_change_run_on_a_tiny_district(tmp_path, repo_root, slots, shards):
    env = dict(os.environ, PYTHONPATH=str(repo_root))
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench",
            "--size",
            "XS",
            "--runs",
            "no-change",
            "--shards",
            str(shards),
            "--courses-per-shard",
            "1",
            "--slots",
            str(slots),
            "--no-data-docs",
            "--no-record",
            "--cache",
            str(tmp_path / "cache"),
            "--workdir",
            str(tmp_path),
        ],
        cwd=repo_root,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    lines = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    assert [r["run"] for r in lines] == ["no-change"]
    rec = lines[0]

    assert (
        rec["size"] == "XS"
        and rec["shards"] == shards
        and rec["slots"] == slots
        and rec["data_docs"] is False
    )
    assert set(rec["stages"]) == STAGES
    assert rec["wall_s"] > 0 and 0 <= rec["outside_http_share"] <= 1
    stage_sum = sum(s["wall_s"] for s in rec["stages"].values())
    if slots == 1:  # one stage at a time: the stages are the run
        assert abs(stage_sum - rec["wall_s"]) < 0.05 * rec["wall_s"] + 0.5
    else:  # the tasks of every stage ran, each in its own process, and the HTTP time is their union
        assert all(s["wall_s"] > 0 for s in rec["stages"].values())
        https = [s["http_s"] for s in rec["stages"].values()]  # one instance of a task at a time
        assert max(https) - 0.05 <= rec["http_busy_s"] <= sum(https) + 0.05
    assert rec["http_busy_s"] <= rec["wall_s"]
    assert rec["peak_rss_mb"] > 50

    totals = rec["totals"]
    assert totals["considered"] > 0
    assert totals["considered"] == sum(
        totals[b] for b in ("posted", "unchanged", "empty", "hidden", "held_back", "failed")
    )
    assert totals["posted"] == 0 and totals["failed"] == 0 and totals["unchanged"] > 0

    sent, need = rec["requests"], rec["min_requests"]
    assert not any(k.startswith(("put_", "delete_")) for k in sent["aspen"])  # a no-change run posts nothing
    assert not any(k.startswith(("put_", "delete_")) for k in need["aspen"])
    assert sent["canvas"]["list_submissions"] >= need["canvas"]["list_submissions"] > 0
    assert sent["aspen"]["list_results"] == need["aspen"]["list_results"] == rec["district"]["classes"]
    assert rec["http_errors"] == {"canvas": {}, "aspen": {}}
    assert rec["requests_over_min"] >= 1.0
    assert rec["bound_s"]["total"] == pytest.approx(
        need_total(need["canvas"]) * 0.025 / 8 + need_total(need["aspen"]) * 0.040 / 8, abs=0.002
    )
    assert rec["wall_over_bound"] > 1


def need_total(d: dict) -> int:
    return sum(d.values())
