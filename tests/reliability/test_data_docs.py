"""The run's one Great Expectations Data Docs site (built by the report from every shard's stored
validation results) when a shard's validate failed, when the run has no shard, and when the
deployment turned Data Docs off. The stage functions in this process against the demo sandbox."""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest

from canvas_aspen import stages

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]


def _pages(folder: Path) -> set[tuple[str, str]]:
    """(suite, run name) of every validation page of the run's site."""
    pages = (folder / "datadocs" / "validations").rglob("*.html")
    return {p.relative_to(folder / "datadocs" / "validations").parts[:2] for p in pages}


def _gates(run_name: str, shard: int, *, validate: bool = True, match: bool = True) -> set[tuple[str, str]]:
    prefix = f"{run_name}-shard{shard}"
    return (
        {("grades", f"{prefix}-validate"), ("assignments", f"{prefix}-validate")} if validate else set()
    ) | ({("match", f"{prefix}-match"), ("advice", f"{prefix}-advice")} if match else set())


def test_a_shard_whose_validate_failed_adds_no_page_and_the_other_shards_are_all_there(
    sb, pipeline, monkeypatch
):
    sb.reset()
    real = stages.validate

    def validate(run_dir, shard, **kwargs):
        if shard == 1:
            raise RuntimeError("validate crashed")
        return real(run_dir, shard, **kwargs)

    monkeypatch.setattr(stages, "validate", validate)
    p = pipeline(sb, data_docs=True)
    state, report = p.run()
    assert state == "failed" and report["failed_courses"]  # shard 1's courses
    folder = Path(p.out["report"]["report"]).parent
    assert _pages(folder) == _gates(p.run_dir.name, 0)
    assert 'href="datadocs/index.html"' in (folder / "report.html").read_text()


def test_a_run_of_no_shard_still_gets_its_report_and_a_site_of_no_results(sb, pipeline, monkeypatch):
    sb.reset()
    plan_module = importlib.import_module("canvas_aspen.stages.plan")  # stages.plan is the function
    monkeypatch.setattr(plan_module, "scope_courses", lambda canvas, **kwargs: [])
    p = pipeline(sb, data_docs=True)
    state, report = p.run()
    assert state == "success" and report["totals"]["considered"] == 0 and p.shards == []
    folder = Path(p.out["report"]["report"]).parent
    assert (folder / "datadocs" / "index.html").is_file() and _pages(folder) == set()


def test_data_docs_off_stores_no_results_and_builds_no_site(sb, pipeline):
    sb.reset()
    p = pipeline(sb)  # CANVAS_ASPEN_DATA_DOCS=off
    state, _ = p.run()
    assert state == "success" and p.shards
    assert not list(p.run_dir.rglob("gx-results-*.json"))
    folder = Path(p.out["report"]["report"]).parent
    assert not (folder / "datadocs").exists()
    assert "datadocs/index.html" not in (folder / "report.html").read_text()
