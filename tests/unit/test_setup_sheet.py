"""The teacher's category setup sheet: valid, unique Aspen codes; long names flagged."""

import pandas as pd
import pytest

from canvas_aspen.setup_sheet import CODE_PATTERN, category_code, setup_sheet


@pytest.mark.parametrize(
    "name",
    [
        "Homework",
        "Labs & Projects (2nd term)",
        "Évaluations sommatives",
        "  ",
        "数学",
        "A" * 60,
        "Quiz---Week 1!!",
    ],
)
def test_codes_are_valid_aspen_codes(name):
    code = category_code(name, set())
    assert CODE_PATTERN.match(code), code


def test_codes_are_unique_in_a_class_even_when_names_collide():
    taken: set[str] = set()
    codes = []
    for name in ["Quizzes", "quizzes", "Quizzes!", "Q" * 30, "Q" * 31]:
        codes.append(category_code(name, taken))
        taken.add(codes[-1])
    assert len({c.upper() for c in codes}) == len(codes)
    assert all(CODE_PATTERN.match(c) for c in codes)


def test_sheet_lists_unmatched_groups_per_class_with_weight_and_long_names_flagged():
    long_name = "Science Fair Projects and Independent Research Investigations"
    rows = pd.DataFrame(
        {
            "aspen_class_id": ["C1", "C1", "C1", "C2", None],
            "group_id": [1, 1, 2, 3, 4],
            "group_name": ["Labs", "Labs", long_name, "Quizzes", "Ghost"],
            "group_weight": [25.0, 25.0, None, 40.0, 10.0],
            "match_kind": ["none", "none", "none", "exact", "none"],
            "canvas_course_id": [11, 11, 11, 12, 13],
            "aspen_categories": ["Homework", "Homework", "Homework", "Quizzes", ""],
            "category_suggestion": ["Homework"] * 3 + [None, None],
        }
    )
    sheet = setup_sheet(rows)
    assert [s["aspen_class_id"] for s in sheet] == ["C1"]
    cats = {c["description"]: c for c in sheet[0]["categories"]}
    assert set(cats) == {"Labs", long_name}
    assert cats["Labs"]["weight"] == 25.0 and cats["Labs"]["code"] == "LABS"
    assert cats[long_name]["description_too_long"] is True and cats["Labs"]["description_too_long"] is False
    assert cats[long_name]["weight"] is None
