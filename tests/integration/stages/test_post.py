"""post's adoption, fast: the stages in this process against the demo sandbox.

Adoption: a grade that Aspen already holds with the Canvas value although the ledger has no
record of posting it (an earlier run's PUT that Aspen took before that run was killed, so
its ledger write never happened) is not posted again, and post records it in the ledger
then. The ledger must learn it: R9 keeps a teacher's later hand edit in Aspen only for a
grade the ledger knows was posted; for any other grade the edit looks like a grade never
sent, and it would be overwritten.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from unittest import mock

import pytest

from canvas_aspen import stages, storage
from canvas_aspen.ledger import Ledger

COURSE = 101  # Algebra I (ALG1-P1 and another section): a few dozen grades
TZ = "America/New_York"
PARAMS = {
    "course_ids": [COURSE],
    "dry_run": False,
    "full_resync": False,
    "delete_orphans": False,
    "category_mappings": {},
    "mapping_file": "",
}


@pytest.fixture
def demo(demo_sandbox):
    demo_sandbox.reset()
    yield demo_sandbox
    demo_sandbox.reset()


def _ledger(path: Path) -> Ledger:
    ledger = Ledger(f"sqlite:///{path}")
    ledger.migrate()
    return ledger


def _run(sb, ledger: Ledger, root: Path, run_id: str) -> dict:
    """One run of the course up to post, as the DAG's tasks call the stages (one shard)."""
    from canvas_aspen.hooks.aspen import AspenHook
    from canvas_aspen.hooks.canvas import CanvasHook

    run_dir = root / run_id
    with mock.patch.dict(os.environ, sb.airflow_conn_env()):
        canvas, aspen = CanvasHook(canvas_conn_id="canvas_default"), AspenHook(aspen_conn_id="aspen_default")
        stages.plan(canvas, aspen, run_dir, params=PARAMS, shard_count=1)
        stages.extract(canvas, run_dir, 0)
        stages.validate(run_dir, 0, timezone_name=TZ)
        stages.match(aspen, run_dir, 0, mappings={})
        stages.deltas(aspen, ledger, run_dir, 0, full_resync=False)
        out = stages.post(aspen, ledger, run_dir, 0, run_id=run_id, dry_run=False, delete_orphans=False)
    out["findings"] = storage.read_json(run_dir / "shard-0000" / "findings-deltas.json")
    return out


def _result_puts(sb) -> int:
    """How many results were PUT to Aspen since its stats were reset."""
    endpoints = sb.stats("aspen")["endpoints"]
    return sum(e["count"] for name, e in endpoints.items() if name.startswith("PUT ") and "/results/" in name)


def test_grades_aspen_already_holds_are_adopted_into_the_ledger_and_a_later_aspen_edit_is_kept(
    demo, tmp_path
):
    killed = _ledger(tmp_path / "killed-run.db")  # the ledger writes of this run never happened
    first = _run(demo, killed, tmp_path, "killed")
    killed.dispose()
    posted = first["buckets"]["posted"]
    assert posted > 10

    ledger = _ledger(tmp_path / "ledger.db")
    demo.reset_stats()
    second = _run(demo, ledger, tmp_path, "next")
    assert second["buckets"].get("posted", 0) == 0 and second["buckets"]["unchanged"] == posted
    assert _result_puts(demo) == 0  # nothing posted twice
    held = demo.state()["results"]
    recorded = ledger.posted_results(None)
    assert len(recorded) == posted  # adopted: the ledger now knows every grade Aspen holds
    for r in recorded.to_dict("records"):
        assert held[r["result_id"]]["scoreStatus"] == r["score_status"]

    # a teacher's hand edit in Aspen of an adopted grade, Canvas unchanged: kept and reported (R9)
    edited = next(r for r in recorded.to_dict("records") if r["score_status"] == "fully graded")
    demo.aspen_edit_result(edited["result_id"], score=float(edited["score"]) + 1)
    demo.reset_stats()
    third = _run(demo, ledger, tmp_path, "after-edit")
    assert third["buckets"].get("posted", 0) == 0
    assert _result_puts(demo) == 0
    assert float(demo.state()["results"][edited["result_id"]]["score"]) == float(edited["score"]) + 1
    assert [f["kind"] for f in third["findings"] if f["kind"] == "aspen_edited"] == ["aspen_edited"], (
        json.dumps(third["findings"])[:2000]
    )
    ledger.dispose()
