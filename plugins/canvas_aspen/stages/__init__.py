"""The stages of one passback run, as plain functions over hooks and stage files.

One module per stage, each with its entry point named after it: :func:`plan`,
:func:`extract`, :func:`validate`, :func:`match`, :func:`deltas`, :func:`post`,
:func:`verify`, :func:`report` and :func:`digest` (re-exported here, so
``stages.post(...)``; a module's other names are imported from the module itself, e.g.
``from canvas_aspen.stages.verify import READ_BACK_MARGIN``). What several stages share:
``files`` (the run's folders), ``progress`` (fan-out over a hook with progress lines),
``failures`` (failing rows and courses), ``leases`` (course leases), ``gate`` (the Great
Expectations gate) and ``class_guard`` (the classes a run may write to).

The DAG (``dags/canvas_aspen_grade_passback.py``) wraps each stage in a task; tests and the
benchmark call them the same way. Hooks are passed in, so nothing here imports Airflow.
Each shard keeps its files in its own folder (docs/design.md); a stage reads what the stage
before it wrote and returns only small summaries (they go to XCom).

A failure of one course (or one Aspen class) never stops the others: its rows end in
the ``failed`` bucket with the error, and the report fails the run at the very end.
"""

from canvas_aspen.stages.deltas import deltas
from canvas_aspen.stages.digest import digest
from canvas_aspen.stages.extract import extract
from canvas_aspen.stages.files import report_folder
from canvas_aspen.stages.match import match
from canvas_aspen.stages.plan import plan
from canvas_aspen.stages.post import post
from canvas_aspen.stages.report import clear_plan_failure, record_stage_error, report, write_plan_failure
from canvas_aspen.stages.validate import validate
from canvas_aspen.stages.verify import verify

__all__ = [
    "clear_plan_failure",
    "deltas",
    "digest",
    "extract",
    "match",
    "plan",
    "post",
    "record_stage_error",
    "report",
    "report_folder",
    "validate",
    "verify",
    "write_plan_failure",
]
