"""R17: every considered grade ends in exactly one bucket, and the buckets add up."""

import os
import stat
import subprocess
import sys

import pandas as pd
import pytest

from canvas_aspen import report
from canvas_aspen.findings import finding


def _rows(buckets, course=1):
    return pd.DataFrame(
        {"bucket": buckets, "canvas_course_id": course, "sis_course_id": "C", "aspen_class_id": "A"}
    )


def test_R17_buckets_add_up_per_course_and_in_total():
    rows = pd.concat(
        [_rows(["posted", "unchanged", "empty", "held_back"], 1), _rows(["failed", "posted"], 2)]
    )
    rows["aspen_refused"] = rows["bucket"].eq("failed")  # Aspen answered that PUT with a refusal
    doc = report.build(
        run_id="r",
        dry_run=False,
        params={},
        started_at="s",
        finished_at="f",
        rows=rows,
        failed_courses={"3": "boom"},
        findings=[],
        verify={"checked": 2, "mismatched": 0},
    )
    assert doc["totals"] == {
        "considered": 6,
        "posted": 2,
        "unchanged": 1,
        "empty": 1,
        "hidden": 0,
        "held_back": 1,
        "failed": 1,
    }
    by_course = {c["canvas_course_id"]: c for c in doc["courses"]}
    for c in by_course.values():
        assert c["considered"] == sum(c[b] for b in report.BUCKETS)
    assert by_course[3]["error"] == "boom" and by_course[3]["considered"] == 0
    assert report.run_failed(doc) == ["1 course(s) failed", "1 grade(s) not accepted by Aspen"]


def test_r20_hidden_is_the_sixth_bucket_and_the_six_add_up():
    assert report.BUCKETS == ("posted", "unchanged", "empty", "hidden", "held_back", "failed")
    rows = pd.concat([_rows(["posted", "hidden", "hidden", "empty"], 1), _rows(["hidden", "held_back"], 2)])
    doc = report.build(
        run_id="r",
        dry_run=False,
        params={},
        started_at="s",
        finished_at="f",
        rows=rows,
        failed_courses={},
        findings=[],
        verify={"checked": 1, "mismatched": 0},
    )
    assert doc["totals"]["hidden"] == 3
    assert doc["totals"]["considered"] == sum(doc["totals"][b] for b in report.BUCKETS) == 6
    assert {c["canvas_course_id"]: c["hidden"] for c in doc["courses"]} == {1: 2, 2: 1}
    assert report.run_failed(doc) == []  # hidden grades are no failure


def _failed_rows(refused: list[bool], errors: list[str]):
    rows = _rows(["failed"] * len(refused))
    return rows.assign(aspen_refused=refused, error=errors)


def test_R17_only_grades_aspen_refused_are_called_not_accepted_by_aspen():
    rows = _failed_rows(
        [True, False, False],
        [
            "AspenApiError: PUT /results/x: 422",
            "not posted: match did not finish: ParamError: mapping_file /x.json: no such file",
        ]
        * 1
        + ["course busy: run r2 holds it; retried next run"],
    )
    doc = report.build(
        run_id="r",
        dry_run=False,
        params={},
        started_at="s",
        finished_at="f",
        rows=rows,
        failed_courses={},
        findings=[],
        verify={"checked": 0, "mismatched": 0},
    )
    reasons = report.run_failed(doc)
    assert reasons[0] == "1 grade(s) not accepted by Aspen"
    assert reasons[1].startswith("2 grade(s) not posted (")
    assert "match did not finish: ParamError: mapping_file /x.json: no such file" in reasons[1]
    assert "course busy" in reasons[1]
    assert doc["failed_grades"] == {"aspen_refused": 1, "not_posted": 2}
    assert doc["failed_reasons"] == reasons  # stored: the UI shows the report's own words


def test_R17_a_dry_run_never_claims_aspen_refused_anything():
    rows = _failed_rows(
        [False] * 36, ["not posted: match did not finish: ParamError: mapping_file /m.csv: no such file"] * 36
    )
    doc = report.build(
        run_id="r",
        dry_run=True,
        params={"dry_run": True},
        started_at="s",
        finished_at="f",
        rows=rows,
        failed_courses={"7": "match did not finish: ParamError: mapping_file /m.csv: no such file"},
        findings=[],
        verify={"checked": 0, "mismatched": 0},
    )
    reasons = report.run_failed(doc)
    assert not any("Aspen" in r for r in reasons), reasons
    assert reasons == [
        "1 course(s) failed",
        "36 grade(s) not posted (not posted: match did not finish: "
        "ParamError: mapping_file /m.csv: no such file)",
    ]


def test_a_run_whose_plan_failed_says_so_first():
    doc = report.build(
        run_id="r",
        dry_run=False,
        params={},
        started_at="s",
        finished_at="f",
        rows=_rows([]),
        failed_courses={},
        findings=[],
        verify={"checked": 0, "mismatched": 0},
        error="plan failed: course_ids: Canvas has no course with id 999999",
    )
    assert report.run_failed(doc) == ["plan failed: course_ids: Canvas has no course with id 999999"]
    assert doc["totals"]["considered"] == 0


def test_R17_a_row_outside_the_buckets_is_an_error_not_a_silent_loss():
    with pytest.raises(ValueError, match="eligible"):
        report.bucket_counts(_rows(["posted", "eligible"]))


R17_NOWHERE = """
import pandas as pd
from canvas_aspen import report
rows = pd.DataFrame(
    {"bucket": ["posted", None], "canvas_course_id": 1, "sis_course_id": "C", "aspen_class_id": "A"}
)
try:
    report.build(run_id="r", dry_run=False, params={}, started_at="s", finished_at="f", rows=rows,
                 failed_courses={}, findings=[], verify={"checked": 0, "mismatched": 0})
except ValueError as exc:
    print("refused:", exc)
else:
    print("built")
"""


def test_R17_a_row_in_no_bucket_fails_the_report_even_under_python_O():
    out = subprocess.run(
        [sys.executable, "-O", "-c", R17_NOWHERE], capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == (
        "refused: 1 row(s) ended in no R17 bucket (bucket empty): the buckets must add "
        "up to the 2 grades considered"
    )


def test_R18_verify_difference_fails_the_run():
    doc = report.build(
        run_id="r",
        dry_run=False,
        params={},
        started_at="s",
        finished_at="f",
        rows=_rows(["posted"]),
        failed_courses={},
        findings=[],
        verify={"checked": 1, "mismatched": 1},
    )
    assert report.run_failed(doc) == ["verify found 1 difference(s) in Aspen"]


def test_findings_are_sorted_most_urgent_first():
    fs = [finding("unweighted_group", "w"), finding("over_max", "o"), finding("verify_mismatch", "v")]
    assert [f["kind"] for f in report.sort_findings(fs)] == [
        "verify_mismatch",
        "over_max",
        "unweighted_group",
    ]


def test_report_files_are_readable_by_the_owner_only(tmp_path):
    path = report.write_json(tmp_path / "run1", {"x": 1})
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(path.parent).st_mode) == 0o700


def test_r20_report_html_and_findings_csv_show_the_hidden_bucket_and_its_note():
    from canvas_aspen import report_html, rules

    frame = pd.DataFrame(
        {
            "bucket": ["posted", "hidden", "hidden"],
            "canvas_course_id": 103,
            "sis_course_id": "E",
            "aspen_class_id": "ENG10-P3",
            "assignment_id": [1, 2, 2],
            "assignment_name": ["Essay 1", "Essay 3", "Essay 3"],
            "group_name": "Essays",
        }
    )
    note = rules.hidden_findings(frame)
    doc = report.build(
        run_id="r",
        dry_run=False,
        params={},
        started_at="s",
        finished_at="f",
        rows=frame,
        failed_courses={},
        findings=note,
        verify={"checked": 1, "mismatched": 0},
    )
    html = report_html.render(doc, [], None)
    assert '<span class="muted">hidden</span><b>2</b>' in html  # the totals card
    assert (
        "<th>hidden</th>" in html and '<td class="num">2</td><td class="num">0</td>' in html
    )  # courses table
    assert "<option>info</option>" in html and 'class="info">hidden_grades' in html
    csv_rows = report_html.findings_csv(doc["findings"]).splitlines()
    assert len(csv_rows) == 2 and csv_rows[1].startswith(
        "R20,hidden_grades,info,103,ENG10-P3,2,Essay 3,Essays,,2,"
    )
