"""Fault injection, request statistics and the admin API guard."""

from __future__ import annotations

import asyncio
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from sandbox.control import SandboxError
from sandbox.faults import Faults, FaultState, Stats, StatsMiddleware

from .sandbox_helpers import aspen_client, canvas_client


def statuses(sb, n: int, path: str = "/api/v1/courses/101") -> list:
    out = []
    with canvas_client(sb) as c:
        for _ in range(n):
            try:
                out.append(c.get(path).status_code)
            except httpx.TransportError:
                out.append("drop")
    return out


def test_scripted_faults_in_order_then_normal(demo):
    demo.set_faults("aspen", fail_next=[503, "drop", 429, 500, 502])
    with aspen_client(demo, token="t") as api:  # faults come before auth: the sixth is a plain 401
        got = []
        for _ in range(6):
            try:
                got.append(api.get("/gradingPeriods"))
            except httpx.RemoteProtocolError:
                got.append("drop")
    assert [g if g == "drop" else g.status_code for g in got] == [503, "drop", 429, 500, 502, 401]
    assert got[0].headers["content-type"].startswith("text/html")  # a proxy's page, not the API's JSON
    assert got[2].headers["Retry-After"] == "1"
    assert got[3].json()["imsx_codeMajor"] == "failure"
    stats = demo.stats("aspen")
    assert stats["dropped"] == 1
    assert stats["endpoints"]["GET /ims/oneroster/v1p1/gradingPeriods"]["statuses"] == {
        "401": 1,
        "429": 1,
        "500": 1,
        "502": 1,
        "503": 1,
        "dropped": 1,
    }


def test_canvas_error_bodies(demo):
    demo.set_faults("canvas", fail_next=[500, 403, 429], retry_after_s=3)
    with canvas_client(demo) as c:
        five, old_throttle, four = (c.get("/api/v1/courses/101") for _ in range(3))
    assert five.status_code == 500 and five.json()["errors"][0]["message"]
    assert old_throttle.status_code == 403 and old_throttle.text == "403 Forbidden (Rate Limit Exceeded)"
    assert four.status_code == 429 and four.headers["Retry-After"] == "3"


def test_rates_are_deterministic_for_a_seed(demo):
    demo.set_faults("canvas", error_rate=0.3, rate_429=0.2, seed=11)
    first = statuses(demo, 30)
    demo.set_faults("canvas", error_rate=0.3, rate_429=0.2, seed=11)
    again = statuses(demo, 30)
    demo.set_faults("canvas", error_rate=0.3, rate_429=0.2, seed=12)
    other = statuses(demo, 30)
    assert first == again != other
    assert 200 in first and 429 in first and {500, 502, 503} & set(first)


def test_all_dropped(demo):
    demo.set_faults("canvas", drop_rate=1.0)
    assert statuses(demo, 3) == ["drop"] * 3
    assert demo.stats("canvas")["dropped"] == 3


def test_faults_can_target_methods_and_paths(demo):
    demo.set_faults("aspen", error_rate=1.0, error_statuses=[503], methods=["PUT"], path_contains="/results/")
    with aspen_client(demo) as api:
        assert api.get("/classes/ALG1-P1/results").status_code == 200
        assert api.put("/lineItems/x", json={}).status_code == 400  # not a /results/ path
        assert api.put("/results/x", json={}).status_code == 503


def test_latency_is_added_without_blocking_other_requests(demo):
    demo.set_faults("canvas", latency_ms=300)
    started = time.monotonic()
    with ThreadPoolExecutor(5) as pool:
        codes = list(pool.map(lambda _: statuses(demo, 1)[0], range(5)))
    elapsed = time.monotonic() - started
    assert codes == [200] * 5
    assert 0.3 <= elapsed < 1.2  # five 300 ms requests overlapped, not 1.5 s in a row
    stats = demo.stats("canvas")
    assert stats["max_in_flight"] >= 3
    assert stats["endpoints"]["GET /api/v1/courses/{course_id}"]["latency_s_max"] >= 0.3


def test_concurrency_cap_refuses_with_retry_after(demo):
    demo.set_faults("aspen", latency_ms=300, max_concurrency=2, retry_after_s=2)
    token = None
    with aspen_client(demo) as api:
        token = api.headers["Authorization"]

    def one(_):
        return httpx.get(
            f"{demo.aspen_url}/ims/oneroster/v1p1/gradingPeriods",
            headers={"Authorization": token},
            trust_env=False,
        )

    with ThreadPoolExecutor(6) as pool:
        answers = list(pool.map(one, range(6)))
    refused = [r for r in answers if r.status_code == 429]
    assert refused and all(r.headers["Retry-After"] == "2" for r in refused)
    assert sum(r.status_code == 200 for r in answers) >= 2


def test_rejected_results_and_lost_writes(demo):
    with aspen_client(demo) as api:
        api.put(
            "/lineItems/t-li",
            json={
                "lineItem": {
                    "title": "t",
                    "class": {"sourcedId": "ALG1-P1"},
                    "category": {"sourcedId": "cat-ALG1-P1-HW"},
                    "gradingPeriod": {"sourcedId": "GP-2627-Q2"},
                    "dueDate": "2026-11-20T00:00:00Z",
                    "resultValueMin": 0,
                    "resultValueMax": 10,
                }
            },
        )
        body = {
            "result": {
                "lineItem": {"sourcedId": "t-li"},
                "student": {"sourcedId": "S1001"},
                "scoreStatus": "fully graded",
                "score": 5,
            }
        }
        demo.set_faults("aspen", reject_result_ids=["t-bad"], lost_write_rate=1.0)
        rejected = api.put("/results/t-bad", json=body)
        lost = api.put("/results/t-lost", json=body)
    assert rejected.status_code == 422 and "Validation Exception" in rejected.json()["imsx_description"]
    assert lost.status_code == 201
    results = demo.state()["results"]
    assert "t-bad" not in results and "t-lost" not in results  # answered 201, never stored


@pytest.mark.parametrize(
    "faults",
    [
        {"error_rate": 2},
        {"nonsense": 1},
        {"fail_next": [200]},
        {"error_rate": 0.6, "drop_rate": 0.6},
        {"latency_ms": 120_000},
    ],
)
def test_invalid_faults_are_refused(demo, faults):
    with pytest.raises(SandboxError, match="400"):
        demo.set_faults("canvas", **faults)


def test_invalid_settings_are_refused_atomically(demo):
    with pytest.raises(SandboxError, match="400"):
        demo.set_settings(canvas_max_per_page=50, aspen_error_style="xml")
    assert demo.settings()["canvas_max_per_page"] == 100
    with pytest.raises(SandboxError, match="only be given at start"):
        demo.set_settings(aspen_api_path="/other")


def test_stats_count_per_endpoint_and_reset(demo):
    demo.reset_stats()
    with canvas_client(demo) as c:
        c.get("/api/v1/courses/101")
        c.get("/api/v1/courses/102")
        c.get("/api/v1/courses/101/sections")
        c.get("/api/v1/nothing-here")
    stats = demo.stats("canvas")
    assert stats["requests"] == 4
    assert stats["endpoints"]["GET /api/v1/courses/{course_id}"]["count"] == 2
    assert stats["endpoints"]["GET /api/v1/courses/{course_id}/sections"]["statuses"] == {"200": 1}
    assert stats["endpoints"]["GET unmatched"]["statuses"] == {"404": 1}
    assert stats["latency_s_total"] > 0
    demo.stats("canvas")  # admin calls are not counted
    demo.reset_stats("canvas")
    assert demo.stats("canvas")["requests"] == 0


def test_admin_api_refuses_non_loopback_clients():
    async def app(scope, receive, send):
        raise AssertionError("must not be reached")

    sent = []

    async def send(message):
        sent.append(message)

    middleware = StatsMiddleware(app, Stats(), lambda scope: None)
    scope = {"type": "http", "path": "/_sandbox/reset", "method": "POST", "client": ("10.1.2.3", 5555)}
    asyncio.run(middleware(scope, None, send))
    assert sent[0]["status"] == 403


def test_fault_state_spikes_and_jitter_are_bounded():
    state = FaultState(Faults(latency_ms=10, jitter_ms=5, spike_rate=1.0, spike_ms=100, seed=3))
    delays = [state.delay_s() for _ in range(50)]
    assert all(0.110 <= d <= 0.115 for d in delays)
    assert len(set(delays)) > 1


def test_tokens_expire_every_n_api_requests(demo):
    demo.set_faults("aspen", expire_tokens_every=3)
    codes = []
    with aspen_client(demo) as api:
        for _ in range(3):
            codes.append(api.get("/gradingPeriods").status_code)
    with aspen_client(demo) as api:  # a fresh token works until the next third request
        codes += [api.get("/gradingPeriods").status_code for _ in range(3)]
    assert codes == [200, 200, 401, 200, 200, 401]
