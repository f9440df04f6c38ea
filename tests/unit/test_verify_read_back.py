"""R18's read-back asks Aspen only for the results modified since the run began, and reads a
class in full wherever that answer lacks a result the run posted: verify then compares
exactly what a full read gives (same checks, same findings)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pandas as pd
import pytest

from canvas_aspen import stages, storage
from canvas_aspen.errors import AspenApiError
from canvas_aspen.stages.verify import READ_BACK_MARGIN

STARTED = datetime(2026, 11, 27, 3, 0, tzinfo=timezone.utc)


class Refused(AspenApiError):
    """What the hook raises when Aspen answers the filtered listing with an error status."""

    def __init__(self, status: int):
        super().__init__(
            "rejected", method="GET", path="/ims/oneroster/v1p1/classes/x/results", status=status
        )


class NotAnApiError(Exception):
    """A failure that is not Aspen's answer (a bug), even if it carries a ``status``."""

    def __init__(self, status: int):
        super().__init__(f"status {status}")
        self.status = status


class FakeAspen:
    """Results per class; a filtered listing answers those modified after ``since``."""

    def __init__(
        self,
        results: dict[str, list[dict]],
        refuse_filter: int | None = None,
        error: type[Exception] = Refused,
    ):
        self.results, self.refuse_filter, self.calls, self.error = results, refuse_filter, [], error
        self.stats = {"requests": 0}

    def list_results(self, class_id, modified_since=None):
        self.calls.append((class_id, modified_since))
        if modified_since is not None and self.refuse_filter:
            raise self.error(self.refuse_filter)
        rows = self.results.get(class_id, [])
        if modified_since is None:
            return list(rows)
        return [r for r in rows if r["dateLastModified"] > modified_since]

    def map_concurrent(self, fn, items, on_error="collect"):
        out = []
        for item in items:
            try:
                out.append(fn(item))
            except Exception as exc:  # noqa: BLE001 - collected, like the hook
                out.append(exc)
        return out


def _result(rid, score, modified, status="fully graded"):
    return {
        "sourcedId": rid,
        "score": score,
        "scoreStatus": status,
        "status": "active",
        "dateLastModified": modified,
    }


RECENT, OLD = "2026-11-27T03:10:00.000Z", "2026-11-20T12:00:00.000Z"


def _run(tmp_path, posted: list[tuple[str, str, float]], started=STARTED):
    run_dir = tmp_path / "run"
    storage.write_json(
        run_dir / "plan.json",
        {"params": {}, "shards": [[1]], "started_at": started.isoformat()}
        if started
        else {"params": {}, "shards": [[1]]},
    )
    df = pd.DataFrame(
        [
            {
                "row_id": i,
                "bucket": "posted",
                "aspen_class_id": cls,
                "result_id": rid,
                "score": score,
                "score_status": "fully graded",
                "canvas_course_id": 1,
                "assignment_id": 7,
                "assignment_name": "HW",
                "student_sis_id": f"S{i}",
            }
            for i, (cls, rid, score) in enumerate(posted)
        ]
    )
    storage.write_frame(run_dir / "shard-0000" / "final.parquet", df)
    return run_dir


POSTED = [("A", "a1", 8.0), ("A", "a2", 9.0), ("B", "b1", 7.0)]
ASPEN = {
    "A": [_result("a1", 8.0, RECENT), _result("a2", 9.0, RECENT), _result("a3", 5.0, OLD)],
    "B": [_result("b1", 7.0, RECENT), _result("b2", 6.0, OLD)],
}
SINCE = "2026-11-27T02:45:00.000Z"  # the plan's start less the margin


def test_read_back_asks_only_for_results_modified_since_the_run_began(tmp_path):
    aspen = FakeAspen(ASPEN)
    out = stages.verify(aspen, _run(tmp_path, POSTED), 0, dry_run=False)
    assert out == {"shard": 0, "checked": 3, "mismatched": 0}
    assert sorted(aspen.calls) == [("A", SINCE), ("B", SINCE)]
    assert READ_BACK_MARGIN == timedelta(minutes=15)


def test_a_posted_result_missing_from_the_recent_ones_reads_its_class_in_full(tmp_path):
    # a2's write was lost: Aspen still holds last week's 4.0 (an old dateLastModified)
    aspen = FakeAspen({**ASPEN, "A": [_result("a1", 8.0, RECENT), _result("a2", 4.0, OLD)]})
    out = stages.verify(aspen, _run(tmp_path, POSTED), 0, dry_run=False)
    assert out["mismatched"] == 1
    assert set(aspen.calls) == {("A", None), ("A", SINCE), ("B", SINCE)} and len(aspen.calls) == 3
    (found,) = storage.read_json(tmp_path / "run" / "shard-0000" / "verify.json")["findings"]
    assert found["message"] == "Aspen does not hold the value that was posted"  # as a full read says
    assert found["value"] == "4.0 (fully graded)" and found["student_sis_id"] == "S1"


def test_a_result_missing_in_aspen_is_reported_as_missing(tmp_path):
    aspen = FakeAspen({**ASPEN, "B": []})
    stages.verify(aspen, _run(tmp_path, POSTED), 0, dry_run=False)
    (found,) = storage.read_json(tmp_path / "run" / "shard-0000" / "verify.json")["findings"]
    assert found["message"] == "the posted result is missing in Aspen" and found["aspen_class_id"] == "B"


@pytest.mark.parametrize("status", [400, 422])
def test_a_server_that_refuses_the_filter_is_read_in_full(tmp_path, status):
    aspen = FakeAspen(ASPEN, refuse_filter=status)
    out = stages.verify(aspen, _run(tmp_path, POSTED), 0, dry_run=False)
    assert out["mismatched"] == 0
    assert sorted(c for c in aspen.calls if c[1] is None) == [("A", None), ("B", None)]


def test_other_errors_are_not_retried_in_full_but_reported(tmp_path):
    aspen = FakeAspen(ASPEN, refuse_filter=503)
    out = stages.verify(aspen, _run(tmp_path, POSTED), 0, dry_run=False)
    assert out["mismatched"] == 2  # one "could not read back class" per class
    assert all(since == SINCE for _, since in aspen.calls)


def test_only_aspens_own_refusal_reads_a_class_in_full(tmp_path):
    """A 400 is known only from Aspen's answer (an ApiError): any other exception is a
    failure to read the class, reported as such, never taken for a refused filter."""
    aspen = FakeAspen(ASPEN, refuse_filter=400, error=NotAnApiError)
    out = stages.verify(aspen, _run(tmp_path, POSTED), 0, dry_run=False)
    assert out["mismatched"] == 2
    assert all(since == SINCE for _, since in aspen.calls)


def test_a_plan_without_a_start_reads_every_class_in_full(tmp_path):
    aspen = FakeAspen(ASPEN)
    stages.verify(aspen, _run(tmp_path, POSTED, started=None), 0, dry_run=False)
    assert sorted(aspen.calls) == [("A", None), ("B", None)]
