"""The pipeline never writes to an Aspen class it did not resolve from a Canvas section's
SIS id in this run (issue 8; the Aspen API does not scope a client to classes).

The stage files between deltas and post are tampered with, as a buggy stage or someone with
write access to the stage volume could: a line item or a result pointed at ``CHEM-P4`` (a
real Aspen class no Canvas section maps to), a result pointed at a teacher's own column, an
orphan deletion of that column. The post stage refuses the whole shard: nothing of it is
written, its grades fail with the reason, its courses carry it into the report, and the run
fails; the other shard posts as usual.
"""

from __future__ import annotations

import json

import pytest

from canvas_aspen import storage

from .conftest import assert_buckets_add_up, assert_ledger_agrees, course, fault_free, ours

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

SHARD = 0  # courses 101 (ALG1-P1) and 103 (ENG10-P3)
FOREIGN = "CHEM-P4"
TEACHERS_COLUMN = "ASPEN-ALG1-NB1"


@pytest.fixture(scope="module")
def baseline(sb, tmp_path_factory):
    """Aspen after an untampered run (what the next clean run must leave)."""
    return fault_free(sb, tmp_path_factory.mktemp("baseline"), delete_orphans=True)


def _line_item_to_foreign_class(sd):
    li = storage.read_frame(sd / "line-items.parquet")
    k = li.index[li["action"].eq("post")][0]
    body = json.loads(li.at[k, "body"])
    body["class"]["sourcedId"] = FOREIGN
    li.at[k, "body"], li.at[k, "aspen_class_id"] = json.dumps(body), FOREIGN
    storage.write_frame(sd / "line-items.parquet", li)


def _line_item_body_only(sd):
    li = storage.read_frame(sd / "line-items.parquet")
    k = li.index[li["action"].eq("post")][0]
    body = json.loads(li.at[k, "body"])
    body["class"]["sourcedId"] = FOREIGN  # the row still says ALG1-P1: the body is what Aspen reads
    li.at[k, "body"] = json.dumps(body)
    storage.write_frame(sd / "line-items.parquet", li)


def _result_to_foreign_class(sd):
    df = storage.read_frame(sd / "rows.parquet")
    k = df.index[df["bucket"].eq("eligible")][0]
    df.at[k, "aspen_class_id"] = FOREIGN
    storage.write_frame(sd / "rows.parquet", df)


def _result_to_teachers_column(sd):
    df = storage.read_frame(sd / "rows.parquet")
    k = df.index[df["bucket"].eq("eligible") & df["aspen_class_id"].eq("ALG1-P1")][0]
    df.at[k, "line_item_id"] = TEACHERS_COLUMN  # a class this run did resolve, but not our line item
    df.at[k, "result_id"] = f"{TEACHERS_COLUMN}-u{df.at[k, 'canvas_user_id']}"
    storage.write_frame(sd / "rows.parquet", df)


def _delete_teachers_column(sd):
    orphans = storage.read_json(sd / "orphans.json", default=[])
    storage.write_json(sd / "orphans.json", [*orphans, TEACHERS_COLUMN])


TAMPERS = {
    "line item to a foreign class": _line_item_to_foreign_class,
    "line item body to a foreign class": _line_item_body_only,
    "result to a foreign class": _result_to_foreign_class,
    "result to a teacher's own column": _result_to_teachers_column,
    "orphan deletion of a teacher's own column": _delete_teachers_column,
}


@pytest.mark.parametrize("tamper", list(TAMPERS))
def test_post_refuses_a_shard_whose_writes_name_a_class_not_resolved_in_this_run(
    tamper, sb, baseline, pipeline, ledger
):
    sb.reset()
    before = sb.state()
    run = pipeline(sb, "scheduled__tampered", delete_orphans=True)
    run.run(upto="deltas")
    TAMPERS[tamper](run.run_dir / f"shard-{SHARD:04d}")
    sb.reset_stats("aspen")
    run.run_stage("post")
    run.run_stage("verify")
    state, report = run.report()

    after = sb.state()
    puts = {
        name: e["count"] for name, e in sb.stats("aspen")["endpoints"].items() if not name.startswith("GET")
    }
    assert state == "failed"
    assert_buckets_add_up(report)
    for course_id in (101, 103):  # the tampered shard: nothing written, the reason in the report
        c = course(report, course_id)
        assert c["posted"] == 0 and "refused to post this shard" in c["error"], c
    assert {
        k: v
        for k, v in after["lineItems"].items()
        if v["class"]["sourcedId"] in ("ALG1-P1", "ENG10-P3", FOREIGN)
    } == {
        k: v
        for k, v in before["lineItems"].items()
        if v["class"]["sourcedId"] in ("ALG1-P1", "ENG10-P3", FOREIGN)
    }
    assert after["lineItems"][TEACHERS_COLUMN] == before["lineItems"][TEACHERS_COLUMN]
    assert all(after["results"][k] == v for k, v in before["results"].items())  # no result Aspen held changed
    biology = {k for k, v in ours(after)["lineItems"].items() if v[1] in ("BIO-P2", "BIO-P5")}
    assert biology and course(report, 102)["error"] is None
    assert sum(puts.values()) > 0  # the other shard did post

    # the next, untampered run posts what was refused: nothing lost
    state, report = pipeline(sb, "scheduled__next", delete_orphans=True).run()
    assert state == "success", report["courses"]
    assert_buckets_add_up(report)
    final = sb.state()
    assert ours(final) == baseline[0]
    assert_ledger_agrees(ledger, final)


def test_guard_lets_an_untampered_run_through(sb, pipeline):
    sb.reset()
    state, report = pipeline(sb, "scheduled__clean", delete_orphans=True).run()
    assert state == "success"
    assert "canvas-a3099-s1011" not in {
        k for k, v in sb.state()["lineItems"].items() if v.get("status") != "tobedeleted"
    }
    assert all(c["error"] is None for c in report["courses"])
