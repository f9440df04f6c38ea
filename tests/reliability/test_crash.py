"""A crash: the post task's process SIGKILLed partway through a shard (issue 8).

The run goes through deltas in this process; then ``stages.post`` of one shard runs in a
child process (``post_child.py``, what the post task runs) against a slow Aspen, and is
killed with SIGKILL once Aspen has accepted some of the shard's results and before it has
all of them. Then either the task's Airflow retry runs post again (same run), or the run
ends (its report fails it) and the next run takes over. Either way Aspen ends exactly as
after an undisturbed run, no line item or result exists twice, and the ledger agrees with
Aspen; before recovery the ledger never claims more than Aspen holds.

Why this is safe: a PUT uses a sourcedId derived from Canvas ids, so re-sending it
replaces, never duplicates; the ledger records a chunk only after Aspen accepted it, so a
kill inside a chunk loses ledger records, never grades: the retry re-PUTs that chunk (same
values), and a next run finds Aspen already holding them and adopts them into the ledger.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from datetime import timedelta

import pytest

from canvas_aspen import storage

from .conftest import DEMO, REPO, assert_buckets_add_up, assert_ledger_agrees, conn_env, ours

pytestmark = [pytest.mark.slow, pytest.mark.timeout(420)]

SHARD = 0  # courses 101 and 103 (and 105, which has nothing to post)
PRE_EXISTING = {r["sourcedId"] for r in DEMO["aspen"].get("results", [])}


def new_results(sb) -> set[str]:
    return {k for k in sb.state()["results"] if k.startswith("canvas-") and k not in PRE_EXISTING}


def kill_post_midway(sb, p, *, chunk: int, after: int) -> subprocess.Popen:
    """Run post of SHARD in a child process with a slow Aspen; SIGKILL it once Aspen holds
    ``after`` new results of ours."""
    env = dict(os.environ, **conn_env(sb, aspen={"extra": {"max_concurrency": 2}}))
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    args = {
        "ledger_url": p.ledger.engine.url.render_as_string(hide_password=False),
        "run_dir": str(p.run_dir),
        "shard": SHARD,
        "run_id": p.run_id,
        "chunk": chunk,
        "lease_minutes": 240,
    }
    before = len(new_results(sb))
    sb.set_faults("aspen", latency_ms=250, methods=["PUT"])
    child = subprocess.Popen(
        [sys.executable, "-m", "tests.reliability.post_child", json.dumps(args)],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 120
    try:
        while len(new_results(sb)) < before + after:
            assert child.poll() is None, child.stdout.read().decode()[-3000:]
            assert time.monotonic() < deadline, "post made no progress"
            time.sleep(0.05)
        os.kill(child.pid, signal.SIGKILL)
        child.wait(timeout=60)
        time.sleep(1.0)  # a PUT the server had already received still lands (the client is gone)
    finally:
        if child.poll() is None:
            os.kill(child.pid, signal.SIGKILL)
            child.wait(timeout=60)
        sb.set_faults("aspen")
    out = child.stdout.read().decode()
    assert child.returncode == -signal.SIGKILL and "post finished" not in out, out[-3000:]
    return child


@pytest.mark.parametrize("recovery, chunk", [("airflow_retry", 10), ("next_run", 2000)])
def test_post_killed_midway_recovers_to_the_undisturbed_state(
    recovery, chunk, sb, baseline, pipeline, ledger
):
    want, want_report = baseline
    sb.reset()
    run = pipeline(sb, "scheduled__crashing")
    run.run(upto="deltas")
    shard_results = int(run.out["deltas"][SHARD]["post"])

    kill_post_midway(sb, run, chunk=chunk, after=12)

    landed = new_results(sb)
    assert 12 <= len(landed) < shard_results, (len(landed), shard_results)  # killed partway
    recorded = set(ledger.posted_results(None)["result_id"])
    assert recorded <= landed and landed - recorded  # some accepted results are unknown to the ledger ...
    assert_ledger_agrees(ledger, sb.state(), complete=False)  # ... but it claims nothing Aspen lacks
    assert bool(recorded) == (chunk < len(landed))  # the chunks finished before the kill are in the ledger

    if recovery == "airflow_retry":  # the post task instance runs again, then the rest of the run
        run.stage("post", SHARD)
        for shard in run.shards:
            if shard != SHARD:
                run.stage("post", shard)
        run.run_stage("verify")
        state, report = run.report()
        assert state == "success", report["courses"]
        assert report["totals"] == want_report["totals"]
    else:  # the retries are exhausted: the report fails the run; the next night finishes the work
        for shard in run.shards:
            if shard != SHARD:
                run.stage("post", shard)
        run.run_stage("verify")
        state, report = run.report()
        assert state == "failed"
        assert report["totals"]["failed"] == shard_results  # counted, not lost
        assert_buckets_add_up(report)
        shard_courses = {int(c) for c in storage.read_json(run.run_dir / "plan.json")["shards"][SHARD]}
        undisturbed = {c["canvas_course_id"]: c["error"] for c in want_report["courses"]}
        for c in report["courses"]:  # the shard's courses say why; the others went as undisturbed
            if c["canvas_course_id"] in shard_courses:
                assert c["error"] == "a stage of this shard did not finish", c
            else:
                assert c["error"] == undisturbed[c["canvas_course_id"]], c
        _, refused = ledger.acquire_courses(sorted(undisturbed), "probe", timedelta(minutes=1))
        ledger.release_courses("probe")
        assert not refused  # the crashed run's report gave its leases back
        state, report = pipeline(sb, "scheduled__next").run()
        assert state == "success", report["courses"]
        assert report["totals"]["posted"] == shard_results - len(landed)  # only what Aspen lacked
        assert report["totals"]["unchanged"] == want_report["totals"]["posted"] - report["totals"]["posted"]

    assert_buckets_add_up(report)
    final = sb.state()
    assert ours(final) == want  # same line items and results, same values, nothing twice
    assert_ledger_agrees(ledger, final)
