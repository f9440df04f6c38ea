"""The fault matrix: the demo district passed back end to end (every stage, every shard,
as the DAG calls them) while the sandbox injects seeded faults on Canvas, on Aspen, and on
both: 5% 5xx, 2% 429 with ``Retry-After``, 1% dropped connections, latency spikes longer
than the read timeout, and (Aspen) every issued token expiring mid-run.

Every run must complete (state success), leave Aspen exactly as the fault-free run left
it, keep the R17 buckets adding up, and leave a ledger that agrees with Aspen. Small
pages (10) make the listings page many times, so faults land mid-listing too; the first
requests of each faulted system are scripted (503, 429, drop) so each kind of fault is
certain to occur whatever the seed draws, and the server's own stats prove it did.
"""

from __future__ import annotations

import pytest

from .conftest import Pipeline, assert_buckets_add_up, assert_ledger_agrees, conn_env, fault_free, ours

pytestmark = [pytest.mark.slow, pytest.mark.timeout(420)]

SPIKE_MS = 2500
READ_TIMEOUT = 2.0
# the per-request rates of issue 8, plus scripted first faults so each kind surely happens
FAULTS = {
    "error_rate": 0.05,
    "rate_429": 0.02,
    "retry_after_s": 1,
    "drop_rate": 0.01,
    "spike_rate": 0.03,
    "spike_ms": SPIKE_MS,
    "fail_next": [503, 429, "drop"],
}
ASPEN_ONLY = {"expire_tokens_every": 40}
# what a district would set: small pages (more requests, faults mid-listing) and a read
# timeout the spikes exceed (a timed-out PUT may still land in Aspen: the retry re-PUTs it)
EXTRAS = {"page_size": 10, "timeout": [5, READ_TIMEOUT]}


@pytest.fixture(scope="module")
def baseline(sb, tmp_path_factory):
    """Aspen after a fault-free run (and its report), with the same connection extras."""
    return fault_free(sb, tmp_path_factory.mktemp("baseline"), env=conn_env(sb, extra=EXTRAS))


@pytest.mark.parametrize("target", ["canvas", "aspen", "both"])
def test_fault_matrix_run_completes_with_the_fault_free_final_state(target, sb, baseline, ledger, tmp_path):
    want_state, want_report = baseline
    sb.reset()
    systems = ["canvas", "aspen"] if target == "both" else [target]
    for i, system in enumerate(systems):
        sb.set_faults(system, **FAULTS, **(ASPEN_ONLY if system == "aspen" else {}), seed=11 + i)

    state, report = Pipeline(sb, ledger, tmp_path, f"faults-{target}", env=conn_env(sb, extra=EXTRAS)).run()

    stats = {system: sb.stats(system) for system in systems}
    sb.set_faults("canvas")
    sb.set_faults("aspen")
    print(
        f"FAULTS {target}:",
        {
            system: {
                "requests": s["requests"],
                "dropped": s["dropped"],
                "statuses": {k: v for k, v in s["statuses"].items() if k not in ("200", "201")},
            }
            for system, s in stats.items()
        },
    )
    for system, s in stats.items():  # every kind of fault really happened
        statuses = s["statuses"]
        assert any(int(k) >= 500 for k in statuses if k.isdigit()), (system, statuses)
        assert statuses.get("429"), (system, statuses)
        assert s["dropped"] >= 1, (system, s)
        assert max(e["latency_s_max"] for e in s["endpoints"].values()) >= SPIKE_MS / 1000, system
        if system == "aspen":
            assert statuses.get("401"), statuses  # tokens expired mid-run and were renewed
    assert state == "success", (report["totals"], report["findings"][:3])
    assert report["totals"] == want_report["totals"]
    assert report["verify"] == want_report["verify"]
    assert_buckets_add_up(report)
    final = sb.state()
    assert ours(final) == want_state  # same line items and results, same values, nothing extra
    assert_ledger_agrees(ledger, final)


def test_a_canvas_401_fails_only_its_course_clearly_and_the_next_run_posts_it(sb, baseline, pipeline):
    """Canvas tokens do not expire mid-run (a developer token lives until revoked), so a 401
    is not retried: the course whose request got it fails with the reason, the others go, the
    run fails after its report, and the next run posts what was left."""
    want, _ = baseline
    sb.reset()
    sb.set_faults("canvas", fail_next=[401], path_contains="/courses/101/")
    state, report = pipeline(sb, "scheduled__revoked", env=conn_env(sb, extra=EXTRAS)).run()
    sb.set_faults("canvas")
    assert state == "failed"
    assert_buckets_add_up(report)
    for c in report["courses"]:
        if c["canvas_course_id"] == 101:
            assert "HTTP 401" in c["error"] and "unauthorized" in c["error"] and c["posted"] == 0, c
        else:
            assert c["error"] is None, c
    state, report = pipeline(sb, "scheduled__after", env=conn_env(sb, extra=EXTRAS)).run()
    assert state == "success"
    assert ours(sb.state()) == want


def test_r19_an_aspen_class_that_does_not_exist_fails_its_whole_course_naming_it(sb, baseline, pipeline):
    """Aspen answers 404 for a class (as for a concluded course's class that is gone): the
    course fails as a whole, its error names the class, nothing of it is written (not even its
    other class, BIO-P2), the other courses go, and the next run posts what was left."""
    want, _ = baseline
    sb.reset()
    sb.set_faults("aspen", fail_next=[404], path_contains="/classes/BIO-P5/")
    state, report = pipeline(sb, "scheduled__class_gone", env=conn_env(sb, extra=EXTRAS)).run()
    sb.set_faults("aspen")
    assert state == "failed"
    assert_buckets_add_up(report)
    for c in report["courses"]:
        if c["canvas_course_id"] == 102:
            assert (
                "Aspen has no class BIO-P5" in c["error"]
                and "nothing of this course was written" in c["error"]
            )
            assert c["posted"] == 0 and c["failed"] > 0, c
        else:
            assert c["error"] is None and c["posted"] > 0, c
    written = ours(sb.state())
    assert not [
        k for kind in ("lineItems", "results") for k in written[kind] if "-s1021" in k or "-s1022" in k
    ]  # nothing of course 102's two sections
    assert [k for k in written["lineItems"] if k.endswith("-s1011")]  # the other courses went
    state, report = pipeline(sb, "scheduled__class_back", env=conn_env(sb, extra=EXTRAS)).run()
    assert state == "success"
    assert ours(sb.state()) == want
