"""R2: Canvas groups <-> Aspen categories; the advice frame for R13/R14."""

import pandas as pd

from canvas_aspen import match, students

CATS = [
    match.Category("CAT-HW", "Homework", 30.0),
    match.Category("CAT-QZ", "Quizzes", 40.0),
    match.Category("CAT-PRJ", "Projects", 30.0),
]


def test_R2_exact_trimmed_name_matches():
    m = match.match_group(1, "  Quizzes ", CATS)
    assert (m.category.sourced_id, m.kind, m.suggestion) == ("CAT-QZ", "exact", None)


def test_R2_case_or_whitespace_only_difference_matches_with_a_warning_kind():
    m = match.match_group(1, "HOMEWORK", CATS)
    assert (m.category.sourced_id, m.kind, m.suggestion) == ("CAT-HW", "case", "Homework")
    spaced = match.match_group(1, "Lab  Reports", [match.Category("CAT-LR", "Lab Reports", None)])
    assert (spaced.category.sourced_id, spaced.kind) == ("CAT-LR", "case")


def test_R2_no_match_is_held_back_with_the_closest_category_suggested():
    m = match.match_group(1, "Quiz", CATS)
    assert m.category is None and m.kind == "none" and m.suggestion == "Quizzes"
    assert match.match_group(1, "Labs", []).suggestion is None


def test_R2_suggestion_only_when_the_closest_category_is_actually_close():
    cats = [
        match.Category("CAT-T", "Tests", None),
        match.Category("CAT-Q", "Quiz", None),
        match.Category("CAT-P", "Participation", None),
    ]
    assert match.match_group(1, "Imported Assignments", cats).suggestion is None  # "Tests" is unrelated
    assert match.match_group(1, "Essays", cats).suggestion is None
    assert match.match_group(1, "Quizzes", cats).suggestion == "Quiz"
    assert match.match_group(1, "Participaton", cats).suggestion == "Participation"
    # the threshold sits between the two: Essays/Tests reads 0.55 alike, Quizzes/Quiz 0.73
    assert 0.55 < match.SUGGEST_MIN_RATIO <= 0.72


def test_R2_explicit_per_class_mapping_overrides_names():
    m = match.match_group(7, "Tests", CATS, {"Tests": "CAT-QZ"})
    assert (m.category.sourced_id, m.kind) == ("CAT-QZ", "mapped")
    assert match.match_group(7, "Tests", CATS, {"7": "CAT-PRJ"}).category.sourced_id == "CAT-PRJ"
    bad = match.match_group(7, "Tests", CATS, {"Tests": "CAT-OTHER-CLASS"})
    assert bad.category is None and bad.kind == "none"


def test_R2_matching_is_per_class_and_reports_the_class_categories():
    pairs = pd.DataFrame(
        {"aspen_class_id": ["A", "B", None], "group_id": [1, 1, 1], "group_name": ["Quizzes"] * 3}
    )
    table = match.match_table(
        pairs, {"A": CATS, "B": [match.Category("X", "Labs", None)]}, {"B": {"Quizzes": "X"}}
    ).set_index("aspen_class_id")
    assert table.loc["A", "category_sourced_id"] == "CAT-QZ"
    assert table.loc["B", "match_kind"] == "mapped"
    assert table.loc["A", "aspen_categories"] == "Homework; Projects; Quizzes"
    assert len(table) == 2


def test_R16_roster_membership_is_flagged_per_row():
    rows = pd.DataFrame(
        {
            "aspen_class_id": ["A", "A", None],
            "group_id": [1, 1, 1],
            "group_name": ["Quizzes"] * 3,
            "student_sis_id": ["S1", "S2", "S1"],
        }
    )
    table = match.match_table(rows, {"A": CATS})
    out = match.apply_matches(rows, table, {"A": students.roster([{"sourcedId": "S1"}])})
    assert out["in_roster"].tolist() == [True, False, False]
    assert out["aspen_student_id"].tolist() == ["S1", None, None]
    assert out["category_sourced_id"].tolist()[:2] == ["CAT-QZ", "CAT-QZ"]


def test_R14_imported_assignments_group_is_flagged_in_the_advice_frame():
    rows = pd.DataFrame(
        {
            "canvas_course_id": [1, 1],
            "group_id": [1, 2],
            "aspen_class_id": ["A", "A"],
            "group_name": ["Imported Assignments", "Quizzes"],
            "group_weight": [None, 40.0],
            "course_weighted": [True, True],
            "aspen_category_weight": [None, 40.0],
            "match_kind": ["none", "exact"],
        }
    )
    g = match.groups_frame(rows)
    assert g.set_index("group_id")["is_imported_group"].to_dict() == {1: True, 2: False}


def test_mapping_file_json_and_csv(tmp_path):
    (tmp_path / "m.csv").write_text("aspen_class_id,canvas_group,category_sourced_id\nA, Tests ,CAT-QZ\n")
    (tmp_path / "m.json").write_text('{"A": {"Tests": "CAT-QZ"}}')
    assert match.load_mappings(tmp_path / "m.csv") == {"A": {"Tests": "CAT-QZ"}}
    assert match.load_mappings(tmp_path / "m.json") == {"A": {"Tests": "CAT-QZ"}}
