"""Canvas -> Aspen grade passback: thin TaskFlow glue over ``canvas_aspen.stages``.

Nothing heavy is imported at parse time: pandas, Great Expectations and the hooks are
imported inside the tasks.
"""

from __future__ import annotations

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
read from Canvas, and a shard that fails never holds the others back. The Airflow pools
`canvas_api` and `aspen_api` (one slot each) keep one task at a time talking to each system,
so the district's load on Canvas and Aspen stays at the connections' `max_concurrency`.

**Manual runs (R12):** *Trigger DAG w/ config* and fill `course_ids` for a backfill of a
few courses; tick `dry_run` to see what would happen, `full_resync` to post every eligible
grade again. Each run writes `report.json` (path in the `report` task's log).
"""


# One task at a time per system (each with the connection's max_concurrency requests in
# flight): Airflow pools, created by `airflow pools set` (docker compose's airflow-init does;
# `airflow dags test`, as the demo runs it, needs none). Set a variable to "default_pool" to
# let shards talk to a system in parallel.
CANVAS_POOL = os.environ.get("CANVAS_ASPEN_CANVAS_POOL", "canvas_api")
ASPEN_POOL = os.environ.get("CANVAS_ASPEN_ASPEN_POOL", "aspen_api")


def _stage():
    """Settings, hooks, ledger and the run folder for one task (imported lazily)."""
    from canvas_aspen import airflow_glue as glue

    ctx = get_current_context()
    s = glue.settings()
    return ctx, s, glue


@dag(
    dag_id="canvas_aspen_grade_passback",
    schedule=CronTriggerTimetable("0 22 * * *", timezone="America/New_York"),
    catchup=False,
    max_active_runs=1,
    doc_md=DOC,
    tags=["grades", "canvas", "aspen", "oneroster"],
    default_args={"retries": 2},
    params={
        "course_ids": Param([], type="array", items={"type": "integer"}, title="Canvas course ids",
                            description="Backfill only these courses, whatever their term or state. "
                                        "Empty: the available courses of the current Canvas terms."),
        "dry_run": Param(False, type="boolean", title="Dry run",
                         description="Compute and report everything; post nothing to Aspen."),
        "full_resync": Param(False, type="boolean", title="Full resync",
                             description="Post every eligible grade again, whatever the ledger says "
                                         "(Aspen-side edits are still kept and reported)."),
        "delete_orphans": Param(False, type="boolean", title="Delete orphaned line items",
                                description="Remove Aspen line items whose Canvas assignment was deleted (R10)."),
        "category_mappings": Param({}, type="object", title="Category mapping overrides",
                                   description='{"<Aspen class id>": {"<Canvas group name or id>": '
                                               '"<Aspen category sourcedId>"}}'),
        "mapping_file": Param("", type="string", title="Mapping file",
                              description="Path to a JSON or CSV file of mapping overrides "
                                          "(columns aspen_class_id,canvas_group,category_sourced_id)."),
    },
)
def canvas_aspen_grade_passback():
    @task
    def plan() -> list[dict]:
        ctx, s, glue = _stage()
        from canvas_aspen import stages

        canvas, aspen = glue.hooks(s)
        params = glue.params_for_report(ctx["params"])
        glue.ledger(s).start_run(ctx["run_id"], params=params, dry_run=params["dry_run"],
                                 started_at=ctx["dag_run"].start_date)
        return stages.plan(canvas, aspen, glue.run_dir(s, ctx["run_id"]), params=params,
                           shard_count=s.shard_count, courses_per_shard=s.courses_per_shard,
                           today=glue.run_date(ctx, s), term_refs=s.terms, timezone_name=s.timezone)

    @task(pool=CANVAS_POOL)
    def extract(shard: dict) -> dict:
        ctx, s, glue = _stage()
        from canvas_aspen import stages

        return stages.extract(glue.hooks(s)[0], glue.run_dir(s, ctx["run_id"]), shard["shard"],
                              ledger=glue.ledger(s), run_id=ctx["run_id"], lease=glue.lease(s))

    @task
    def validate(shard: dict) -> dict:
        ctx, s, glue = _stage()
        from canvas_aspen import stages

        return stages.validate(glue.run_dir(s, ctx["run_id"]), shard["shard"], timezone_name=s.timezone,
                               docs_dir=stages.data_docs_dir(s.reports_dir, ctx["run_id"], shard["shard"], "validate"))

    @task(pool=ASPEN_POOL)
    def match(shard: dict) -> dict:
        ctx, s, glue = _stage()
        from canvas_aspen import stages

        return stages.match_stage(glue.hooks(s)[1], glue.run_dir(s, ctx["run_id"]), shard["shard"],
                                  mappings=glue.mappings(ctx["params"]),
                                  docs_dir=stages.data_docs_dir(s.reports_dir, ctx["run_id"], shard["shard"], "match"))

    @task(pool=ASPEN_POOL)
    def deltas(shard: dict) -> dict:
        ctx, s, glue = _stage()
        from canvas_aspen import stages

        return stages.deltas_stage(glue.hooks(s)[1], glue.ledger(s), glue.run_dir(s, ctx["run_id"]),
                                   shard["shard"], full_resync=ctx["params"]["full_resync"])

    @task(pool=ASPEN_POOL)
    def post(shard: dict) -> dict:
        ctx, s, glue = _stage()
        from canvas_aspen import stages

        return stages.post(glue.hooks(s)[1], glue.ledger(s), glue.run_dir(s, ctx["run_id"]), shard["shard"],
                           run_id=ctx["run_id"], dry_run=ctx["params"]["dry_run"],
                           delete_orphans=ctx["params"]["delete_orphans"], lease=glue.lease(s))

    @task(pool=ASPEN_POOL)
    def verify(shard: dict) -> dict:
        ctx, s, glue = _stage()
        from canvas_aspen import stages

        return stages.verify(glue.hooks(s)[1], glue.run_dir(s, ctx["run_id"]), shard["shard"],
                             dry_run=ctx["params"]["dry_run"])

    @task(trigger_rule=TriggerRule.ALL_DONE, retries=0)
    def report() -> dict:
        ctx, s, glue = _stage()
        from airflow.sdk.exceptions import AirflowFailException

        from canvas_aspen import stages

        out = stages.report_stage(glue.ledger(s), glue.run_dir(s, ctx["run_id"]), s.reports_dir,
                                  run_id=ctx["run_id"], started_at=str(ctx["dag_run"].start_date))
        if out["failed_reasons"]:
            raise AirflowFailException("; ".join(out["failed_reasons"]) + f" (report: {out['report']})")
        return out

    @task(retries=0)
    def digest() -> dict:
        """The teacher digests (CANVAS_ASPEN_TEACHER_DIGEST): a teardown of the report, so it runs
        whenever the report ran, and the run's state stays the passback's own: a failed digest
        shows on this task only."""
        ctx, s, glue = _stage()
        from airflow.sdk.exceptions import AirflowFailException

        from canvas_aspen import stages

        mode, days = s.digest_settings()
        mailer = glue.DigestMailer(s.smtp_conn_id) if mode == "send" else None
        try:
            out = stages.digest_stage(glue.ledger(s), glue.run_dir(s, ctx["run_id"]), s.reports_dir,
                                      run_id=ctx["run_id"], mode=mode, resend_after=timedelta(days=days),
                                      mailer=mailer, canvas_url=glue.canvas_url(s) if mode != "off" else None)
        finally:
            if mailer is not None:
                mailer.close()
        if out["counts"].get("failed"):
            raise AirflowFailException(f"{out['counts']['failed']} of {out['teachers']} teacher digest(s) not sent "
                                       "(recorded; retried next run); the passback itself is not affected")
        return out

    @task_group(group_id="shard", prefix_group_id=False)
    def one_shard(shard: dict):
        """One shard's stages; validate[k] waits for extract[k] only (not for every shard)."""
        return verify(post(deltas(match(validate(extract(shard))))))

    reported = report()
    one_shard.expand(shard=plan()) >> reported >> digest().as_teardown()


canvas_aspen_grade_passback()
