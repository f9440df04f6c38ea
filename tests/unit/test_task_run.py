"""airflow_glue.TaskRun: what a task of the DAG needs, by name, each part built on first use
and once (an Aspen task never makes a CanvasHook; a task's hook is the same object throughout)."""

from __future__ import annotations

from canvas_aspen import airflow_glue as glue
from canvas_aspen.settings import Settings


def test_a_task_builds_only_what_it_asks_for_and_each_part_once(monkeypatch):
    made: list[str] = []
    monkeypatch.setattr(glue, "canvas_hook", lambda s: made.append("canvas") or object())
    monkeypatch.setattr(glue, "aspen_hook", lambda s: made.append("aspen") or object())
    t = glue.TaskRun({"run_id": "manual__2026-12-01", "params": {"dry_run": True}}, Settings.from_env())

    assert t.aspen is t.aspen
    assert made == ["aspen"]
    assert t.run_id == "manual__2026-12-01"
    assert t.flag("dry_run") is True and t.flag("full_resync") is False and t.flag("delete_orphans") is False


def test_the_stages_are_imported_when_a_task_asks_for_them():
    from canvas_aspen import stages

    t = glue.TaskRun({"run_id": "r", "params": {}}, Settings.from_env())
    assert t.stages is stages and t.stages.post is stages.post
