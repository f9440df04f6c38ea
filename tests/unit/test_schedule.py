"""R11 and R12: when the DAG runs, and what the data team can ask of it."""

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from airflow.dag_processing.dagbag import DagBag
from airflow.timetables.base import DataInterval, TimeRestriction

NY = ZoneInfo("America/New_York")


@pytest.fixture(scope="module")
def dag(repo_root):
    return DagBag(dag_folder=str(repo_root / "dags")).dags["canvas_aspen_grade_passback"]


def _runs(timetable, start_utc: datetime, count: int) -> list[datetime]:
    restriction = TimeRestriction(earliest=start_utc, latest=None, catchup=True)
    last, out = None, []
    for _ in range(count):
        info = timetable.next_dagrun_info(last_automated_data_interval=last, restriction=restriction)
        out.append(info.run_after)
        last = DataInterval(info.run_after, info.run_after)
    return out


@pytest.mark.parametrize("day", ["2026-03-05", "2026-10-29"])
def test_R11_nightly_at_22_new_york_across_daylight_saving_changes(dag, day):
    start = datetime.fromisoformat(day).replace(tzinfo=ZoneInfo("UTC"))
    runs = _runs(dag.timetable, start, 6)  # three nights before the change, three after
    local = [r.astimezone(NY) for r in runs]
    assert [(t.hour, t.minute) for t in local] == [(22, 0)] * 6
    assert len({t.date() for t in local}) == 6  # one run a night, none skipped or doubled
    offsets = {r.astimezone(NY).utcoffset().total_seconds() / 3600 for r in runs}
    assert offsets == {-5.0, -4.0}  # both sides of the clock change were crossed
    utc_hours = {r.astimezone(ZoneInfo("UTC")).hour for r in runs}
    assert utc_hours == {2, 3}


def test_R12_trigger_form_params_for_backfill_dry_run_and_full_resync(dag):
    params = dag.params
    for name in (
        "course_ids",
        "dry_run",
        "full_resync",
        "delete_orphans",
        "category_mappings",
        "mapping_file",
    ):
        p = params.get_param(name)
        assert p.schema.get("title") and p.description, name
    assert params["course_ids"] == [] and params["dry_run"] is False and params["delete_orphans"] is False
    assert params.get_param("course_ids").schema["items"] == {"type": "integer"}
    assert dag.max_active_runs == 1 and dag.catchup is False


def test_one_task_per_stage_each_shard_through_its_own_stages(dag):
    stages = ["plan", "extract", "validate", "match", "deltas", "post", "verify", "report"]
    assert sorted(dag.task_ids) == sorted([*stages, "digest"])  # digest: the report's teardown
    assert dag.get_task("digest").upstream_task_ids == {"report"}
    for t in stages[1:-1]:  # mapped over the plan's shards as one group: stage k+1 of a shard
        group = dag.get_task(t).get_closest_mapped_task_group()  # waits only for stage k of it
        assert group is not None and group.group_id == "shard", t
    for before, after in zip(stages[:-2], stages[1:-1], strict=True):
        assert dag.get_task(after).upstream_task_ids == {before}
    assert dag.get_task("report").upstream_task_ids == {"verify"}
    assert dag.get_task("report").trigger_rule == "all_done"


def test_no_pool_needed_and_one_task_at_a_time_per_system_stage(dag):
    """A plain Airflow has only default_pool: every task runs there, and each task that talks
    to Canvas or Aspen runs one instance at a time (mapped instances and runs counted together)."""
    assert {t.pool for t in dag.tasks} == {"default_pool"}
    for t in ("extract", "match", "deltas", "post", "verify"):
        assert dag.get_task(t).max_active_tis_per_dag == 1, t
    for t in ("plan", "validate", "report"):
        assert dag.get_task(t).max_active_tis_per_dag is None, t


def test_dedicated_pools_replace_the_per_task_bound(repo_root, monkeypatch):
    monkeypatch.setenv("CANVAS_ASPEN_CANVAS_POOL", "canvas_api")
    monkeypatch.setenv("CANVAS_ASPEN_ASPEN_POOL", "aspen_api")
    dag = DagBag(dag_folder=str(repo_root / "dags")).dags["canvas_aspen_grade_passback"]
    assert dag.get_task("extract").pool == "canvas_api"
    assert {dag.get_task(t).pool for t in ("match", "deltas", "post", "verify")} == {"aspen_api"}
    assert {dag.get_task(t).pool for t in ("plan", "validate", "report")} == {"default_pool"}
    assert all(t.max_active_tis_per_dag is None for t in dag.tasks)  # the pools' slots decide


def test_a_task_that_cannot_succeed_is_not_retried_and_retries_wait(dag):
    from datetime import timedelta

    for t in dag.tasks:
        if t.task_id not in ("report", "digest"):  # those two run once by design
            assert t.retries == 2 and timedelta(minutes=1) <= t.retry_delay <= timedelta(minutes=5), t.task_id
