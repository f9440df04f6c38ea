"""The validation gate: the rows GX flags are exactly the rows held back, with the right kinds."""

from __future__ import annotations

import json
import logging
import re
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from canvas_aspen.findings import FIELDS, KINDS
from canvas_aspen.validation import (
    DATA_DOCS_ENV,
    EXPECTATIONS_DIR_ENV,
    REPO_EXPECTATIONS_DIR,
    GateError,
    build_data_docs,
    expectations_dir,
    load_suite,
    run_gate,
    with_samples,
)

ROWS_SUITES = ["grades", "assignments", "match"]
ALL_SUITES = [*ROWS_SUITES, "advice"]


def rows_frame(n: int = 6) -> pd.DataFrame:
    """A rows frame in which every grade is sendable: 2 classes, 3 assignments, 1 group."""
    i = np.arange(n)
    return pd.DataFrame(
        {
            "row_id": i + 100,
            "canvas_course_id": 11,
            "sis_course_id": "C-11",
            "canvas_section_id": 20 + i % 2,
            "aspen_class_id": np.where(i % 2 == 0, "CLS-A", "CLS-B").astype(object),
            "canvas_user_id": 500 + i,
            "student_sis_id": pd.Series([f"S{k}" for k in i], dtype=object),
            "assignment_id": 300 + i % 3,
            "assignment_name": pd.Series([f"Quiz {k % 3}" for k in i], dtype=object),
            "group_id": 7,
            "group_name": "Tests",
            "points_possible": 10.0,
            "due_at": pd.Timestamp("2026-01-15T12:00:00Z"),
            "grading_period_id": pd.Series(["GP-1"] * n, dtype=object),
            "grading_period_locked": pd.Series([False] * n, dtype=object),
            "score_raw": "8",
            "score": 8.0,
            "score_status": pd.Series(["fully graded"] * n, dtype=object),
            "canvas_status": "graded",
            "category_sourced_id": pd.Series(["cat-tests"] * n, dtype=object),
            "category_suggestion": pd.Series([None] * n, dtype=object),
            "aspen_categories": "Tests, Homework",
            "in_roster": pd.Series([True] * n, dtype=object),
            "roster_ambiguous": pd.Series([False] * n, dtype=bool),
            "roster_candidates": pd.Series([None] * n, dtype=object),
        }
    )


def groups_frame() -> pd.DataFrame:
    """Four groups in two classes; every advice expectation passes."""
    return pd.DataFrame(
        {
            "canvas_course_id": [11, 11, 12, 12],
            "group_id": [7, 7, 8, 9],
            "aspen_class_id": ["CLS-A", "CLS-B", "CLS-C", "CLS-C"],
            "group_name": ["Tests", "Tests", "Homework", "Labs"],
            "group_weight": [40.0, 40.0, None, 25.0],
            "course_weighted": [True, True, False, False],
            "aspen_category_weight": [40.0, 40.004, 30.0, None],
            "match_kind": ["exact", "exact", "mapped", "exact"],
            "is_imported_group": [False, False, False, False],
        }
    )


def with_values(frame: pd.DataFrame, column: str, row_ids, value) -> pd.DataFrame:
    frame = frame.copy()
    frame.loc[frame["row_id"].isin(row_ids), column] = value
    return frame


def findings_of(gate, kind):
    return [f for f in gate.findings if f["kind"] == kind]


# ------------------------------------------------------------------ the suites themselves


def test_every_shipped_suite_maps_each_expectation_to_a_known_kind():
    for name in ALL_SUITES:
        suite = load_suite(name)
        for expectation in suite["expectations"]:
            meta = expectation["meta"]
            assert KINDS[meta["kind"]][:2] == (meta["rule"], meta["severity"])
    advice = load_suite("advice")
    assert {e["meta"]["severity"] for e in advice["expectations"]} == {"warning"}
    for name in ROWS_SUITES:
        assert {e["meta"]["severity"] for e in load_suite(name)["expectations"]} == {"error"}


def test_a_clean_frame_holds_nothing_back():
    gate = run_gate(rows_frame(), ROWS_SUITES, run_name="clean")
    assert gate.held_back == {}
    assert gate.findings == []
    for name in ROWS_SUITES:
        stats = gate.statistics[name]
        assert stats["evaluated"] == stats["successful"] == len(load_suite(name)["expectations"])
        assert stats["unsuccessful"] == stats["flagged_rows"] == 0


# ------------------------------------------------------------------ each blocking expectation

BLOCKING_CASES = {
    # id: (suite, column, value, kind)
    "R16-student-sis-id": ("grades", "student_sis_id", None, "student_without_sis_id"),
    "R16-section-sis-id": ("grades", "aspen_class_id", None, "section_without_sis_id"),
    "R4-nan": ("grades", "score", np.nan, "non_numeric_score"),
    "R4-none": ("grades", "score", None, "non_numeric_score"),
    "R4-inf": ("grades", "score", np.inf, "non_numeric_score"),
    "R4-minus-inf": ("grades", "score", -np.inf, "non_numeric_score"),
    "R4-negative": ("grades", "score", -0.5, "negative_score"),
    "R5-over-max": ("grades", "score", 10.5, "over_max"),
    "R4-unknown-status": ("grades", "score_status", "partially graded", "non_numeric_score"),
    "R4-no-status": ("grades", "score_status", None, "non_numeric_score"),
    "R15-no-due-date": ("assignments", "due_at", pd.NaT, "no_due_date"),
    "R15-no-grading-period": ("assignments", "grading_period_id", None, "no_grading_period"),
    "R15-locked-grading-period": ("assignments", "grading_period_locked", True, "locked_grading_period"),
    "R5-no-points-possible": ("assignments", "points_possible", np.nan, "no_points_possible"),
    "R5-zero-points-possible": ("assignments", "points_possible", 0.0, "no_points_possible"),
    "R2-category-mismatch": ("match", "category_sourced_id", None, "category_mismatch"),
    "R16-not-in-roster": ("match", "in_roster", False, "student_not_in_aspen_class"),
    "R16-roster-unknown": ("match", "in_roster", None, "student_not_in_aspen_class"),
    "R22-ambiguous-student": ("match", "roster_ambiguous", True, "ambiguous_student"),
}


@pytest.mark.parametrize("case", list(BLOCKING_CASES))
def test_rules_each_blocking_expectation_holds_back_exactly_the_failing_rows(case):
    suite, column, value, kind = BLOCKING_CASES[case]
    failing = {101, 104}
    gate = run_gate(with_values(rows_frame(), column, failing, value), ROWS_SUITES, run_name=case)
    assert gate.held_back == {row_id: [kind] for row_id in failing}
    assert {f["kind"] for f in gate.findings} == {kind}
    assert gate.statistics[suite]["flagged_rows"] == len(failing)
    assert all(gate.statistics[s]["flagged_rows"] == 0 for s in ROWS_SUITES if s != suite)


def test_r22_ambiguous_student_finding_names_the_class_student_and_candidates():
    frame = with_values(rows_frame(), "roster_ambiguous", {102}, True)
    frame = with_values(frame, "roster_candidates", {102}, "std_000101, std_000102")
    gate = run_gate(frame, ["match"], run_name="ambiguous")
    assert gate.held_back == {102: ["ambiguous_student"]}
    (found,) = gate.findings
    assert (found["kind"], found["rule"], found["severity"]) == ("ambiguous_student", "R22", "error")
    assert (found["aspen_class_id"], found["student_sis_id"]) == ("CLS-A", "S2")
    assert found["value"] == "std_000101, std_000102"


def test_R4_exempt_rows_with_null_score_pass():
    frame = with_values(rows_frame(), "score_status", {101, 102}, "exempt")
    frame = with_values(frame, "score", {101, 102}, np.nan)
    frame = with_values(frame, "score", {103}, np.nan)  # not exempt: held back
    gate = run_gate(frame, ["grades"], run_name="exempt")
    assert gate.held_back == {103: ["non_numeric_score"]}


def test_R4_non_numeric_score_reports_the_text_canvas_sent():
    frame = with_values(rows_frame(), "score", {102}, np.nan)
    frame = with_values(frame, "score_raw", {102}, "A-")
    (found,) = run_gate(frame, ["grades"], run_name="text").findings
    assert found["kind"] == "non_numeric_score" and found["rule"] == "R4"
    assert found["value"] == "A-"
    assert found["student_sis_id"] == "S2" and found["assignment_id"] == 302
    assert "'A-'" in found["message"]


def test_R4_an_infinite_score_is_non_numeric_and_neither_negative_nor_over_max():
    frame = with_values(rows_frame(), "score", {100}, np.inf)
    frame = with_values(frame, "score", {101}, -np.inf)
    frame = with_values(frame, "score_raw", {100}, "Infinity")
    gate = run_gate(frame, ["grades"], run_name="inf")
    assert gate.held_back == {100: ["non_numeric_score"], 101: ["non_numeric_score"]}
    json.dumps(gate.findings, allow_nan=False)
    json.dumps(gate.results, allow_nan=False)


def test_R5_over_max_finding_names_student_assignment_score_and_maximum():
    frame = with_values(rows_frame(), "score", {103}, 12.5)
    frame = with_values(frame, "score", {102}, 10.0)  # exactly the maximum: fine
    gate = run_gate(frame, ["grades"], run_name="over")
    assert gate.held_back == {103: ["over_max"]}
    (found,) = gate.findings
    assert (found["value"], found["limit"]) == (12.5, 10.0)
    assert (found["student_sis_id"], found["assignment_id"], found["aspen_class_id"]) == ("S3", 300, "CLS-B")
    assert found["severity"] == "error" and found["rule"] == "R5"


def test_R5_one_over_max_finding_per_row():
    gate = run_gate(with_values(rows_frame(), "score", {100, 101, 102}, 11.0), ["grades"], run_name="r")
    assert len(findings_of(gate, "over_max")) == 3


def test_R15_no_due_date_is_not_also_reported_as_no_grading_period():
    frame = with_values(rows_frame(), "due_at", {100}, pd.NaT)
    frame = with_values(frame, "grading_period_id", {100}, None)
    gate = run_gate(frame, ["assignments"], run_name="due")
    assert gate.held_back == {100: ["no_due_date"]}


def test_R15_no_due_date_finding_per_assignment_per_class():
    # rows 100..111: class A has even rows, assignment = row % 3 -> 300, 302 for class A ... etc.
    frame = with_values(rows_frame(12), "due_at", set(range(100, 112)), pd.NaT)
    gate = run_gate(frame, ["assignments"], run_name="due")
    assert len(gate.held_back) == 12
    keys = {(f["aspen_class_id"], f["assignment_id"]) for f in gate.findings}
    assert keys == {(c, a) for c in ("CLS-A", "CLS-B") for a in (300, 301, 302)}
    assert len(gate.findings) == 6
    one = gate.findings[0]
    assert one["assignment_name"].startswith("Quiz") and one["student_sis_id"] is None


def test_R16_student_without_sis_id_reported_once_per_student():
    frame = rows_frame(6)
    frame["canvas_user_id"] = [500, 500, 500, 501, 502, 502]
    frame = with_values(frame, "student_sis_id", {100, 101, 102}, None)
    gate = run_gate(frame, ["grades"], run_name="sis")
    assert sorted(gate.held_back) == [100, 101, 102]
    (found,) = gate.findings
    assert "500" in found["message"] and found["student_sis_id"] is None


def test_R2_category_mismatch_one_finding_per_group_per_class_with_suggestion():
    frame = with_values(rows_frame(8), "category_sourced_id", set(range(100, 108)), None)
    frame["group_name"] = "Quizes"
    frame["category_suggestion"] = "Quizzes"
    frame["aspen_categories"] = "Quizzes, Homework, Tests"
    gate = run_gate(frame, ["match"], run_name="cat")
    assert set(gate.held_back) == set(range(100, 108))
    mismatches = findings_of(gate, "category_mismatch")
    assert sorted(f["aspen_class_id"] for f in mismatches) == ["CLS-A", "CLS-B"]
    for found in mismatches:
        assert found["suggestion"] == "Quizzes"
        assert found["group_name"] == "Quizes"
        assert "Quizzes, Homework, Tests" in found["message"]
        assert found["student_sis_id"] is None and found["assignment_id"] is None


def test_R4_one_finding_per_row_even_when_two_expectations_of_its_kind_flag_it():
    frame = with_values(rows_frame(), "score_status", {100}, None)
    frame = with_values(frame, "score", {100}, np.nan)  # no status and no score: two R4 checks fail
    gate = run_gate(frame, ["grades"], run_name="dedupe")
    assert gate.statistics["grades"]["unsuccessful"] == 2
    assert gate.held_back == {100: ["non_numeric_score"]}
    assert len(gate.findings) == 1


@pytest.mark.parametrize("nullable", [False, True], ids=["parquet", "parquet-nullable-dtypes"])
def test_a_frame_read_back_from_parquet_is_gated_the_same(tmp_path, nullable):
    frame = with_values(rows_frame(8), "student_sis_id", {100}, None)
    frame = with_values(frame, "in_roster", {101}, None)
    frame = with_values(frame, "in_roster", {102}, False)
    frame = with_values(frame, "grading_period_locked", {103}, True)
    frame = with_values(frame, "grading_period_locked", {104}, None)  # unknown is not locked
    frame = with_values(frame, "score", {105}, np.nan)
    frame = with_values(frame, "due_at", {106}, pd.NaT)
    frame.to_parquet(tmp_path / "rows.parquet")
    read = pd.read_parquet(tmp_path / "rows.parquet")
    if nullable:
        read = read.convert_dtypes()
    gate = run_gate(read, ROWS_SUITES, run_name="parquet")
    assert gate.held_back == {
        100: ["student_without_sis_id"],
        101: ["student_not_in_aspen_class"],
        102: ["student_not_in_aspen_class"],
        103: ["locked_grading_period"],
        105: ["non_numeric_score"],
        106: ["no_due_date"],
    }


def test_a_row_failing_several_expectations_carries_every_kind_most_urgent_first():
    frame = with_values(rows_frame(), "student_sis_id", {100}, None)
    frame = with_values(frame, "score", {100}, 99.0)
    frame = with_values(frame, "due_at", {100}, pd.NaT)
    gate = run_gate(frame, ROWS_SUITES, run_name="many")
    assert gate.held_back == {100: ["over_max", "no_due_date", "student_without_sis_id"]}


def random_frame_and_oracle() -> tuple[pd.DataFrame, dict[int, set[str]]]:
    """A messy frame and, computed independently of GX, the kinds each row must be held for."""
    rng = np.random.default_rng(7)
    n = 3000
    frame = rows_frame(n)
    pick = lambda share: rng.random(n) < share  # noqa: E731
    frame.loc[pick(0.02), "student_sis_id"] = None
    frame.loc[pick(0.02), "aspen_class_id"] = None
    frame["score"] = rng.choice(
        [-1.0, 0.0, 5.0, 10.0, 10.5, np.nan, np.inf], size=n, p=[0.03, 0.1, 0.6, 0.1, 0.05, 0.07, 0.05]
    )
    frame.loc[pick(0.1), "score_status"] = "exempt"
    frame.loc[pick(0.01), "score_status"] = "submitted"
    frame.loc[pick(0.03), "points_possible"] = rng.choice([np.nan, 0.0])
    frame.loc[pick(0.03), "due_at"] = pd.NaT
    frame.loc[pick(0.03), "grading_period_id"] = None
    frame.loc[pick(0.02), "grading_period_locked"] = True
    frame.loc[pick(0.03), "category_sourced_id"] = None
    frame.loc[pick(0.02), "in_roster"] = False
    frame.loc[pick(0.02), "roster_ambiguous"] = True

    score, points = frame["score"], frame["points_possible"]
    finite = np.isfinite(score)
    status = frame["score_status"]
    oracle = {
        "student_without_sis_id": frame["student_sis_id"].isna(),
        "section_without_sis_id": frame["aspen_class_id"].isna(),
        "non_numeric_score": ((status != "exempt") & score.isna())
        | np.isinf(score)
        | ~status.isin(["exempt", "fully graded", "not submitted"]),
        "negative_score": finite & (score < 0),
        "over_max": finite & (points > 0) & (score > points),
        "no_due_date": frame["due_at"].isna(),
        "no_grading_period": frame["due_at"].notna() & frame["grading_period_id"].isna(),
        "locked_grading_period": frame["grading_period_locked"].eq(True),
        "no_points_possible": points.isna() | (points <= 0),
        "category_mismatch": frame["category_sourced_id"].isna() & frame["aspen_class_id"].notna(),
        "student_not_in_aspen_class": frame["in_roster"].ne(True)
        & frame["aspen_class_id"].notna()
        & frame["student_sis_id"].notna(),
        "ambiguous_student": frame["roster_ambiguous"]
        & frame["aspen_class_id"].notna()
        & frame["student_sis_id"].notna(),
    }
    expected: dict[int, set[str]] = {}
    for kind, mask in oracle.items():
        for row_id in frame.loc[mask.to_numpy(dtype=bool), "row_id"]:
            expected.setdefault(int(row_id), set()).add(kind)
    assert len(expected) > n // 5  # the frame really exercises the gate
    return frame, expected


def test_held_back_matches_an_independent_oracle_on_a_random_frame():
    frame, expected = random_frame_and_oracle()
    gate = run_gate(frame, ROWS_SUITES, run_name="oracle")
    assert {row_id: set(kinds) for row_id, kinds in gate.held_back.items()} == expected


def test_with_data_docs_the_gate_holds_back_and_reports_exactly_the_same():
    frame, expected = random_frame_and_oracle()
    without_docs = run_gate(frame, ROWS_SUITES, run_name="oracle")
    with_docs = run_gate(frame, ROWS_SUITES, run_name="oracle", data_docs=True)
    assert with_docs.stored is not None and without_docs.stored is None
    assert {row_id: set(kinds) for row_id, kinds in with_docs.held_back.items()} == expected
    assert with_docs.held_back == without_docs.held_back
    assert with_docs.findings == without_docs.findings


# ------------------------------------------------------------------ warnings never hold


def test_R13_R14_R2_advice_warns_and_never_holds():
    groups = groups_frame()
    groups.loc[0, "group_weight"] = None  # weighted course, unweighted group
    groups.loc[1, "aspen_category_weight"] = 35.0  # weight mismatch
    groups.loc[2, "is_imported_group"] = True  # imported assignments
    groups.loc[3, "match_kind"] = "case"  # name matches only up to case
    gate = run_gate(groups, ["advice"], run_name="advice")
    assert gate.held_back == {}
    assert sorted(f["kind"] for f in gate.findings) == [
        "category_case_mismatch",
        "imported_assignments_group",
        "unweighted_group",
        "weight_mismatch",
    ]
    assert {f["severity"] for f in gate.findings} == {"warning"}


def test_R13_weight_within_tolerance_and_unweighted_course_are_fine():
    gate = run_gate(groups_frame(), ["advice"], run_name="advice")
    assert gate.findings == []


def test_R13_weight_mismatch_reports_both_weights():
    groups = groups_frame()
    groups.loc[1, "aspen_category_weight"] = 35.0
    (found,) = run_gate(groups, ["advice"], run_name="w").findings
    assert found["kind"] == "weight_mismatch" and found["rule"] == "R13"
    assert (found["value"], found["limit"], found["aspen_class_id"]) == (40.0, 35.0, "CLS-B")


def test_R13_zero_weight_in_weighted_course_is_unweighted_once_per_course_group():
    groups = groups_frame()
    groups["group_weight"] = groups["group_weight"].astype(float)
    groups.loc[[0, 1], "group_weight"] = 0.0
    groups.loc[[0, 1], "aspen_category_weight"] = 0.0
    gate = run_gate(groups, ["advice"], run_name="zero")
    (found,) = gate.findings
    assert (found["kind"], found["canvas_course_id"], found["group_name"]) == (
        "unweighted_group",
        11,
        "Tests",
    )


def test_R14_imported_group_warning_even_on_a_frame_with_row_ids():
    groups = groups_frame().assign(row_id=[1, 2, 3, 4])
    groups.loc[0, "is_imported_group"] = True
    gate = run_gate(groups, ["advice"], run_name="imp")
    assert gate.held_back == {}
    assert [f["kind"] for f in gate.findings] == ["imported_assignments_group"]


# ------------------------------------------------------------------ results, docs, errors


def test_findings_carry_only_report_fields_and_plain_json():
    frame = with_values(rows_frame(), "score", {100}, 11.0)
    frame = with_values(frame, "grading_period_id", {101}, None)
    gate = run_gate(frame, ROWS_SUITES, run_name="json")
    for found in gate.findings:
        assert tuple(found) == FIELDS
    json.dumps(gate.findings, allow_nan=False)
    no_period = findings_of(gate, "no_grading_period")[0]
    assert no_period["value"] == "2026-01-15T12:00:00+00:00"
    assert gate.results["grades"]["success"] is False
    json.dumps(gate.results, allow_nan=False)


def _stored_as_a_stage_file_keeps_them(gates) -> list[dict]:
    """What a stage writes (storage.write_json) and the report reads back (storage.read_json)."""
    return json.loads(json.dumps([entry for gate in gates for entry in gate.stored], default=str))


def test_one_data_docs_site_of_several_gate_calls_lists_and_renders_each(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # a gate call writes nothing, here or anywhere
    shard0 = run_gate(
        with_values(rows_frame(), "score", {100}, 11.0),
        ROWS_SUITES,
        run_name="night-shard0-validate",
        data_docs=True,
    )
    shard1 = run_gate(groups_frame(), ["advice"], run_name="night-shard1-advice", data_docs=True)
    assert list(tmp_path.iterdir()) == []
    stored = _stored_as_a_stage_file_keeps_them([shard0, shard1])
    assert [e["key"][:2] for e in stored] == [
        ["grades", "night-shard0-validate"],
        ["assignments", "night-shard0-validate"],
        ["match", "night-shard0-validate"],
        ["advice", "night-shard1-advice"],
    ]

    index = build_data_docs(stored, tmp_path / "datadocs")
    assert index == tmp_path / "datadocs" / "index.html"
    pages = sorted((tmp_path / "datadocs" / "validations").rglob("*.html"))
    assert [p.relative_to(tmp_path / "datadocs" / "validations").parts[:2] for p in pages] == [
        ("advice", "night-shard1-advice"),
        ("assignments", "night-shard0-validate"),
        ("grades", "night-shard0-validate"),
        ("match", "night-shard0-validate"),
    ]
    # GX's own index: its table (rendered in the browser) makes each row a link to a result's page
    links = set(re.findall(r"'_table_row_link_path': '(validations/[^']+)'", index.read_text()))
    assert links == {p.relative_to(tmp_path / "datadocs").as_posix() for p in pages}
    grades = (tmp_path / "datadocs" / "validations" / "grades").rglob("*.html")
    text = next(grades).read_text()
    assert "night-shard0-validate" in text and "R5: the score is at most" in text
    assert "1 unexpected values found" in text  # the result itself, not just a page for it
    assert ">8<" in text and ">7<" in text  # evaluated and successful expectations
    assert (tmp_path / "datadocs" / "expectations" / "advice.html").is_file()  # the suites a page links


def _failed(kwargs: dict, row_ids: list[int]) -> dict:
    """GX's JSON of one failed expectation as the gate's result format leaves it: no values."""
    return {
        "success": False,
        "expectation_config": {"type": "expect_x", "kwargs": kwargs, "meta": {}},
        "result": {
            "unexpected_count": len(row_ids),
            "unexpected_index_column_names": ["row_id"],
            "unexpected_index_list": [{"row_id": row_ids}],
            "partial_unexpected_index_list": [{"row_id": row_ids[:20]}],
        },
    }


def test_data_docs_samples_are_the_failing_values_from_the_frame_in_gx_shapes():
    rows = pd.DataFrame(
        {
            "score": [150.0, 150.0, -3.0, np.nan, 8.0],
            "points_possible": 10.0,
            "due_at": [pd.Timestamp("2026-01-15T12:00:00Z"), pd.NaT, pd.NaT, pd.NaT, pd.NaT],
            "student_name": "never shown",
        },
        index=pd.Index([100, 101, 102, 103, 104], name="row_id"),
    )
    passed = {"success": True, "expectation_config": {"kwargs": {"column": "score"}}, "result": {}}
    result = {
        "results": [
            _failed({"column": "score"}, [102, 100, 103, 101]),
            _failed({"column_A": "points_possible", "column_B": "score"}, [100, 101]),
            _failed({"column": "due_at"}, [101, 100]),
            _failed({"column": "student_name"}, [100]),
            passed,
        ]
    }
    untouched = json.loads(json.dumps(result["results"][3:]))

    out = with_samples(result, rows)["results"]
    score = out[0]["result"]
    # most common first, every failing row with its value and row id (NaN as null)
    assert score["partial_unexpected_counts"] == [
        {"value": 150.0, "count": 2},
        {"value": -3.0, "count": 1},
        {"value": None, "count": 1},
    ]
    assert score["unexpected_index_list"] == [
        {"score": -3.0, "row_id": 102},
        {"score": 150.0, "row_id": 100},
        {"score": None, "row_id": 103},
        {"score": 150.0, "row_id": 101},
    ]
    assert score["partial_unexpected_index_list"] == score["unexpected_index_list"]
    pair = out[1]["result"]
    assert pair["partial_unexpected_counts"] == [{"value": [10.0, 150.0], "count": 2}]
    assert pair["unexpected_index_list"][0] == {"points_possible": 10.0, "score": 150.0, "row_id": 100}
    assert out[2]["result"]["partial_unexpected_counts"] == [
        {"value": "2026-01-15T12:00:00+00:00", "count": 1},
        {"value": None, "count": 1},
    ]
    assert out[3:] == untouched  # a name column's values never; a passed expectation as it was
    json.dumps(out, allow_nan=False)


def test_data_docs_samples_list_at_most_20_values_and_every_failing_row():
    rows = pd.DataFrame({"score": np.arange(30) + 100.0}, index=pd.Index(range(30), name="row_id"))
    rows.loc[[0, 1, 2], "score"] = 999.0
    result = with_samples({"results": [_failed({"column": "score"}, list(range(30)))]}, rows)
    samples = result["results"][0]["result"]
    assert len(samples["partial_unexpected_counts"]) == 20
    assert samples["partial_unexpected_counts"][0] == {"value": 999.0, "count": 3}
    assert len(samples["unexpected_index_list"]) == 30
    assert len(samples["partial_unexpected_index_list"]) == 20


def test_data_docs_page_shows_the_failing_values_and_their_row_ids(tmp_path):
    frame = with_values(rows_frame(), "score", {100, 102}, 150.0)
    frame = with_values(frame, "score", {101}, -3.0)
    gate = run_gate(frame, ["grades"], run_name="night-shard0-validate", data_docs=True)
    build_data_docs(_stored_as_a_stage_file_keeps_them([gate]), tmp_path / "datadocs")
    page = next((tmp_path / "datadocs" / "validations" / "grades").rglob("*.html")).read_text()
    cells = re.findall(r"<td[^>]*>\s*(?:<[^>]+>\s*)*([^<]*?)\s*<", page)
    # R5 (points_possible, score), its rows 100 and 102; R4 negative, row 101
    assert "150.0" in page and ("('10.0', '150.0')" in cells or "('150.0', '10.0')" in cells)
    assert "-3.0" in cells and "100, 102" in cells and "101" in cells
    assert "Unexpected Value" in page


def test_a_data_docs_site_of_no_results_is_an_index_of_none(tmp_path):
    index = build_data_docs([], tmp_path / "datadocs")
    assert index.is_file()
    assert not (tmp_path / "datadocs" / "validations").exists()


def test_gx_info_chatter_stays_out_of_the_task_log(caplog, capsys):
    frame = with_values(rows_frame(), "score", {100}, 11.0)
    with caplog.at_level(logging.DEBUG):
        run_gate(frame, ROWS_SUITES, run_name="quiet")
    gx_records = [r for r in caplog.records if r.name.startswith("great_expectations")]
    assert [r for r in gx_records if r.levelno < logging.WARNING] == []
    assert "Calculating Metrics" not in capsys.readouterr().err  # no progress bars
    assert any(r.name == "canvas_aspen.validation" for r in caplog.records)


def test_an_empty_shard_passes_every_suite():
    gate = run_gate(rows_frame(0), ROWS_SUITES, run_name="empty")
    assert gate.held_back == {} and gate.findings == []
    assert run_gate(groups_frame().iloc[:0], ["advice"], run_name="empty").findings == []


def test_no_data_docs_results_unless_asked_and_not_when_turned_off(monkeypatch):
    assert run_gate(rows_frame(), ["grades"], run_name="x").stored is None
    monkeypatch.setenv(DATA_DOCS_ENV, "off")
    assert run_gate(rows_frame(), ["grades"], run_name="x", data_docs=True).stored is None


@pytest.fixture
def suites_copy(tmp_path, monkeypatch) -> Path:
    """A writable copy of the suites, selected through the environment override."""
    directory = tmp_path / "suites"
    shutil.copytree(REPO_EXPECTATIONS_DIR, directory)
    monkeypatch.setenv(EXPECTATIONS_DIR_ENV, str(directory))
    return directory


def write_suite(directory: Path, name: str, expectations: list[dict]) -> None:
    (directory / f"{name}.json").write_text(json.dumps({"name": name, "expectations": expectations}))


def meta(kind="over_max", severity="error", rule="R5"):
    return {"kind": kind, "rule": rule, "severity": severity, "finding_key": ["row_id"], "message": "m"}


def test_expectations_dir_defaults_to_the_repo_and_honours_the_override(suites_copy, monkeypatch):
    assert expectations_dir() == suites_copy
    assert expectations_dir("/elsewhere") == Path("/elsewhere")
    monkeypatch.delenv(EXPECTATIONS_DIR_ENV)
    assert expectations_dir() == REPO_EXPECTATIONS_DIR == Path(__file__).resolve().parents[2] / "expectations"


def test_gx_error_on_an_expectation_raises_with_the_result(suites_copy):
    write_suite(
        suites_copy,
        "broken",
        [
            {
                "type": "expect_column_values_to_not_be_null",
                "kwargs": {"column": "no_such_column"},
                "meta": meta(),
            },
        ],
    )
    with pytest.raises(GateError, match="no_such_column") as caught:
        run_gate(rows_frame(), ["broken"], run_name="broken")
    assert caught.value.suite == "broken"
    assert caught.value.result["success"] is False


def test_a_failing_blocking_expectation_that_names_no_rows_raises(suites_copy):
    write_suite(
        suites_copy,
        "tablewide",
        [
            {"type": "expect_table_row_count_to_be_between", "kwargs": {"max_value": 1}, "meta": meta()},
        ],
    )
    with pytest.raises(GateError, match="without naming rows"):
        run_gate(rows_frame(), ["tablewide"], run_name="t")


@pytest.mark.parametrize(
    "expectation, error",
    [
        # GX logs an unknown type and drops it from the suite: the gate must notice
        ({"type": "expect_column_values_to_be_sendable", "kwargs": {"column": "score"}}, "accepted 0 of 1"),
        (
            {"type": "expect_column_values_to_be_between", "kwargs": {"column": "score"}},
            "cannot both be None",
        ),
    ],
)
def test_an_expectation_gx_cannot_build_is_an_error_not_a_silent_skip(suites_copy, expectation, error):
    write_suite(suites_copy, "typo", [{**expectation, "meta": meta()}])
    with pytest.raises(ValueError, match=error):
        run_gate(rows_frame(), ["typo"], run_name="t")


@pytest.mark.parametrize(
    "bad_meta, error",
    [
        (meta(kind="nonsense"), "unknown finding kind"),
        (meta(severity="warning"), "severity"),
        ({"kind": "over_max"}, "meta lacks"),
    ],
)
def test_suite_meta_must_agree_with_the_finding_vocabulary(suites_copy, bad_meta, error):
    write_suite(
        suites_copy,
        "bad",
        [
            {"type": "expect_column_values_to_not_be_null", "kwargs": {"column": "score"}, "meta": bad_meta},
        ],
    )
    with pytest.raises(ValueError, match=error):
        load_suite("bad")


def test_blocking_suites_need_unique_row_ids():
    with pytest.raises(ValueError, match="row_id"):
        run_gate(rows_frame().drop(columns="row_id"), ["grades"], run_name="t")
    frame = rows_frame()
    frame.loc[1, "row_id"] = 100
    with pytest.raises(ValueError, match="not unique"):
        run_gate(frame, ["grades"], run_name="t")


def test_missing_report_columns_are_named_before_validating():
    with pytest.raises(ValueError, match="aspen_categories"):
        run_gate(rows_frame().drop(columns="aspen_categories"), ["match"], run_name="t")


def test_R16_a_row_without_class_or_student_id_is_reported_once_not_again_by_the_match_suite():
    frame = with_values(rows_frame(), "aspen_class_id", {100}, None)
    frame = with_values(frame, "student_sis_id", {101}, None)
    frame.loc[frame["row_id"].eq(100), "category_sourced_id"] = None  # no class: no category either
    frame.loc[frame["row_id"].isin([100, 101]), "in_roster"] = False
    gate = run_gate(frame, ["grades", "match"], run_name="once")
    assert gate.held_back == {100: ["section_without_sis_id"], 101: ["student_without_sis_id"]}
    assert sorted(f["kind"] for f in gate.findings) == ["section_without_sis_id", "student_without_sis_id"]
