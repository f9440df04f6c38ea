"""report.html as the data team reads it: one timestamp format, the setup sheet and the
finding giving one answer, and the findings count following the filter (in Chromium)."""

from __future__ import annotations

import shutil

import pandas as pd
import pytest

from canvas_aspen import report, report_html, setup_sheet
from canvas_aspen.findings import finding


def _doc(**kw):
    rows = pd.DataFrame(
        {
            "bucket": ["held_back", "posted"],
            "canvas_course_id": [101, 101],
            "sis_course_id": "C",
            "aspen_class_id": "ALG1-P1",
        }
    )
    findings = [
        finding(
            "category_mismatch",
            "Canvas group 'Quizzes' matches no Aspen category",
            canvas_course_id=101,
            aspen_class_id="ALG1-P1",
            group_name="Quizzes",
            suggestion="Quiz",
        ),
        finding(
            "over_max",
            "above the maximum",
            canvas_course_id=101,
            aspen_class_id="ALG1-P1",
            assignment_id=7,
            assignment_name="HW 4",
            student_sis_id="S1",
            value=12,
            limit=10,
        ),
        finding(
            "over_max",
            "above the maximum",
            canvas_course_id=102,
            aspen_class_id="GEO-P2",
            assignment_id=8,
            assignment_name="HW 5",
            student_sis_id="S2",
            value=11,
            limit=10,
        ),
    ]
    args = dict(
        run_id="manual__1",
        dry_run=False,
        params={},
        started_at="2026-03-02 22:00:01.123456+00:00",
        finished_at="2026-03-02T22:07:09.5+00:00",
        rows=rows,
        failed_courses={},
        findings=findings,
        verify={"checked": 1, "mismatched": 0},
    )
    return report.build(**{**args, **kw})


def _sheet_rows(suggestion):
    return pd.DataFrame(
        {
            "aspen_class_id": ["ALG1-P1"],
            "group_id": [5],
            "group_name": ["Quizzes"],
            "group_weight": [20.0],
            "match_kind": ["none"],
            "canvas_course_id": [101],
            "aspen_categories": ["Homework; Quiz"],
            "category_suggestion": [suggestion],
        }
    )


def test_report_header_shows_both_instants_in_one_format():
    page = report_html.render(_doc(), [], None)
    meta = page.split('<div class="meta">', 1)[1].split("</div>", 1)[0]
    assert "2026-03-02 22:00:01 UTC → 2026-03-02 22:07:09 UTC" in meta
    assert "T22:" not in meta and ".123456" not in meta
    assert report_html.when("2026-03-02T17:00:00-05:00") == "2026-03-02 22:00:00 UTC"


def test_R2_setup_sheet_says_use_the_existing_category_the_finding_suggests():
    sheet = setup_sheet.setup_sheet(_sheet_rows("Quiz"))
    assert sheet[0]["categories"][0]["use_existing"] == "Quiz"
    page = report_html.render(_doc(), sheet, None)
    setup = page.split("<h2>Category setup sheet</h2>", 1)[1]
    assert (
        "Use the existing category “Quiz”" in setup and "rename the Canvas group “Quizzes” to “Quiz”" in setup
    )
    assert "QUIZZES" not in setup  # not "create QUIZZES" beside a finding that says "use Quiz"
    mismatch = page.split('id="kind-category_mismatch"', 1)[1].split("</section>", 1)[0]
    assert "<b>Quiz</b>" in mismatch  # the finding: the same answer


def test_R2_setup_sheet_says_create_when_no_category_is_close():
    for none in (None, float("nan")):
        sheet = setup_sheet.setup_sheet(_sheet_rows(none))
        assert sheet[0]["categories"][0]["use_existing"] is None
        setup = report_html.render(_doc(), sheet, None).split("<h2>Category setup sheet</h2>", 1)[1]
        assert "<code>QUIZZES</code>" in setup and "Use the existing" not in setup


def _chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if not found:
        pytest.skip("chromium is not installed: run `make browser` (Debian's chromium)")
    return found


def test_findings_count_follows_the_filter_in_a_browser(tmp_path):
    from playwright.sync_api import sync_playwright

    page_file = tmp_path / "report.html"
    page_file.write_text(report_html.render(_doc(), [], None))
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=_chromium(), args=["--no-sandbox", "--disable-gpu"])
        try:
            page = browser.new_page()
            page.goto(page_file.as_uri())
            count = page.locator("#findings-count")
            assert count.inner_text() == "3"
            page.fill("#filter", "GEO-P2")
            page.dispatch_event("#filter", "input")
            assert count.inner_text() == "1 of 3"
            page.fill("#filter", "")
            page.dispatch_event("#filter", "input")
            page.select_option("#kind", "over_max")
            assert count.inner_text() == "2 of 3"
        finally:
            browser.close()
