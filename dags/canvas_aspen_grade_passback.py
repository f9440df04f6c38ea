"""Canvas -> Aspen grade passback: thin TaskFlow glue over ``canvas_aspen.stages``.

Nothing heavy is imported at parse time: pandas, Great Expectations and the hooks are
imported inside the tasks.
"""

from __future__ import annotations

import functools
import os
from datetime import timedelta

from airflow.sdk import Param, TriggerRule, dag, get_current_context, task, task_group
from airflow.timetables.trigger import CronTriggerTimetable

DOC = """
### Canvas -> Aspen grade passback

Every night at **22:00 America/New_York** (R11) this posts the Canvas grades that changed
to Aspen through OneRoster 1.1, for the available courses with SIS sections of the current
Canvas terms (R19; `CANVAS_ASPEN_TERMS` names terms instead). Grades hidden from students by a
manual posting policy are not sent (R20: the `hidden` bucket).
Stages: plan -> extract -> validate (Great Expectations gate) -> match (groups <->
categories) -> deltas -> post -> verify (read back) -> report. Each shard of courses goes
through its stages on its own (a mapped task group): shard 2 is validated while shard 3 is
read from Canvas, and a shard that fails never holds the others back. No pool is needed:
at most one `extract` (Canvas) and one task of each Aspen stage run at a time, each with
the connection's `max_concurrency` requests in flight (dedicated pools: see the README).

**Manual runs (R12):** the **Trigger** button (top right of this DAG's page) opens the
trigger dialog; keep **Single Run** selected and fill **Run Parameters**: `course_ids` for a
backfill of a few courses (a JSON list; `[]`: every course), switch on **Dry run** to see what would
happen, **Full resync** to post every eligible grade again; every field may stay empty. The dialog's
other choice, **Backfill** (a date range), is Airflow's own: it re-runs the nightly schedule
for past dates, which is *not* a backfill of courses (every such run covers every course).
Each run writes a report: the run's **Grade passback report** tab, or Browse -> Grade
passback reports.
"""


# How many tasks talk to each system at once. Without a pool (the default) the tasks run in
# Airflow's default_pool and at most one task instance of each of these tasks runs at a time
# (max_active_tis_per_dag counts every mapped instance of a task across all of the DAG's
# runs), so a plain Airflow needs no set-up. CANVAS_ASPEN_CANVAS_POOL / _ASPEN_POOL name
# dedicated pools instead (made with `airflow pools set`): then the pools' slots decide.
CANVAS_POOL = os.environ.get("CANVAS_ASPEN_CANVAS_POOL", "").strip() or None
ASPEN_POOL = os.environ.get("CANVAS_ASPEN_ASPEN_POOL", "").strip() or None


def _talks_to(pool: str | None) -> dict:
    """The task arguments that bound a system's load: its pool, else one instance at a time."""
    return {"pool": pool} if pool else {"max_active_tis_per_dag": 1}


def _not_retried_when_certain(fn):
    """A failure a retry cannot mend (a bad param, a Connection that lacks something, a 4xx
    that is not a throttle) fails the task at once; a shard's stage also leaves which stage
    failed and why for the report."""

    @functools.wraps(fn)
    def run(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except Exception as exc:
            from canvas_aspen import airflow_glue as glue

            shard = kwargs.get("shard", args[0] if args else None)
            if isinstance(shard, dict) and "shard" in shard:
                ctx = get_current_context()
                glue.record_stage_error(glue.settings(), ctx["run_id"], shard["shard"], fn.__name__, exc)
            fail = glue.fail_without_retry(exc)
            if fail is not None:
                raise fail from exc
            raise

    return run


def _run():
    """What this task needs, by name (``airflow_glue.TaskRun``: imported here, not at parse time)."""
    from canvas_aspen.airflow_glue import TaskRun

    return TaskRun.current()


@dag(
    dag_id="canvas_aspen_grade_passback",
    schedule=CronTriggerTimetable("0 22 * * *", timezone="America/New_York"),
    catchup=False,
    max_active_runs=1,
    doc_md=DOC,
    tags=["grades", "canvas", "aspen", "oneroster"],
    # transient trouble (the hooks already retried each request with backoff) gets two more
    # tries a few minutes apart; what cannot succeed is not retried (_not_retried_when_certain)
    default_args={"retries": 2, "retry_delay": timedelta(minutes=2)},
    # Airflow's Trigger form requires every param whose schema type lacks "null": a type list
    # with "null" lets a field stay empty (the form sends null, which means the default)
    params={
        "course_ids": Param(
            [],
            type=["null", "array"],
            items={"type": "integer"},
            title="Canvas course ids",
            description="Backfill only these courses, e.g. [101, 102], whatever their term or "
            "state. Empty: the available courses of the current Canvas terms.",
        ),
        "dry_run": Param(
            False,
            type="boolean",
            title="Dry run",
            description="Compute and report everything; post nothing to Aspen.",
        ),
        "full_resync": Param(
            False,
            type="boolean",
            title="Full resync",
            description="Post every eligible grade again, whatever the ledger says "
            "(Aspen-side edits are still kept and reported).",
        ),
        "delete_orphans": Param(
            False,
            type="boolean",
            title="Delete orphaned line items",
            description="Remove Aspen line items whose Canvas assignment was deleted (R10).",
        ),
        "category_mappings": Param(
            {},
            type=["null", "object"],
            title="Category mapping overrides",
            description='Optional. {"<Aspen class id>": {"<Canvas group name or id>": '
            '"<Aspen category sourcedId>"}}',
        ),
        "mapping_file": Param(
            None,
            type=["null", "string"],
            title="Mapping file",
            description="Optional. Path (on the Airflow workers) to a JSON or CSV file of "
            "mapping overrides (columns aspen_class_id,canvas_group,"
            "category_sourced_id).",
        ),
    },
)
def canvas_aspen_grade_passback():
    @task
    @_not_retried_when_certain
    def plan() -> list[dict]:
        return _run().run_plan()

    @task(**_talks_to(CANVAS_POOL))
    @_not_retried_when_certain
    def extract(shard: dict) -> dict:
        t = _run()
        return t.stages.extract(
            t.canvas, t.run_dir, shard["shard"], ledger=t.ledger, run_id=t.run_id, lease=t.lease
        )

    @task
    @_not_retried_when_certain
    def validate(shard: dict) -> dict:
        t = _run()
        return t.stages.validate(t.run_dir, shard["shard"], timezone_name=t.settings.timezone)

    @task(**_talks_to(ASPEN_POOL))
    @_not_retried_when_certain
    def match(shard: dict) -> dict:
        t = _run()
        return t.stages.match(t.aspen, t.run_dir, shard["shard"], mappings=t.mappings)

    @task(**_talks_to(ASPEN_POOL))
    @_not_retried_when_certain
    def deltas(shard: dict) -> dict:
        t = _run()
        return t.stages.deltas(
            t.aspen, t.ledger, t.run_dir, shard["shard"], full_resync=t.flag("full_resync")
        )

    @task(**_talks_to(ASPEN_POOL))
    @_not_retried_when_certain
    def post(shard: dict) -> dict:
        t = _run()
        return t.stages.post(
            t.aspen,
            t.ledger,
            t.run_dir,
            shard["shard"],
            run_id=t.run_id,
            dry_run=t.flag("dry_run"),
            delete_orphans=t.flag("delete_orphans"),
            lease=t.lease,
        )

    @task(**_talks_to(ASPEN_POOL))
    @_not_retried_when_certain
    def verify(shard: dict) -> dict:
        t = _run()
        return t.stages.verify(t.aspen, t.run_dir, shard["shard"], dry_run=t.flag("dry_run"))

    @task(trigger_rule=TriggerRule.ALL_DONE, retries=0)
    def report() -> dict:
        return _run().run_report()

    @task(retries=0)
    def digest() -> dict:
        """The teacher digests (CANVAS_ASPEN_TEACHER_DIGEST): a teardown of the report, so it runs
        whenever the report ran, and the run's state stays the passback's own: a failed digest
        shows on this task only."""
        return _run().run_digest()

    @task_group(group_id="shard", prefix_group_id=False)
    def one_shard(shard: dict):
        """One shard's stages; validate[k] waits for extract[k] only (not for every shard)."""
        return verify(post(deltas(match(validate(extract(shard))))))

    reported = report()
    one_shard.expand(shard=plan()) >> reported >> digest().as_teardown()


canvas_aspen_grade_passback()
