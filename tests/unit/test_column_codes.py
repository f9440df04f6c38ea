"""R21: line item titles unique in Aspen's gradebook column codes, deterministically and stably."""

import pandas as pd

from canvas_aspen import column_codes as cc


def items(*rows) -> pd.DataFrame:
    """(line_item_id, class, assignment_id, Canvas name) ..."""
    return pd.DataFrame(rows, columns=["line_item_id", "aspen_class_id", "assignment_id", "title"])


def aspen(*rows) -> pd.DataFrame:
    """(line_item_id, class, title[, status]) ..."""
    rows = [r if len(r) == 4 else (*r, "active") for r in rows]
    return pd.DataFrame(rows, columns=["line_item_id", "aspen_class_id", "title", "status"])


NONE = aspen()


def test_r21_column_code_is_the_first_ten_characters_trimmed_without_case():
    assert cc.column_code("  Chapter 1 Quiz") == "chapter 1"
    assert cc.column_code("CHAPTER 1 TEST") == cc.column_code("chapter 1 quiz")
    assert cc.column_code("Chapter 10 Quiz") != cc.column_code("Chapter 1 Quiz")
    assert cc.column_code("Unit 12", 4) == "unit"


def test_r21_two_colliding_assignments_the_older_keeps_its_name_the_other_is_made_unique():
    got = cc.unique_titles(
        items(("li-q", "C", 10, "Chapter 1 Quiz"), ("li-t", "C", 11, "Chapter 1 Test")), NONE
    )
    assert got.titles == {"li-q": "Chapter 1 Quiz", "li-t": "#2 Chapter 1 Test"}
    assert got.collisions == {"li-t": "Chapter 1 Quiz"}
    assert cc.column_code(got.titles["li-t"]) != cc.column_code(got.titles["li-q"])


def test_r21_the_result_does_not_depend_on_the_order_of_the_rows():
    a = items(
        ("li-q", "C", 10, "Chapter 1 Quiz"),
        ("li-t", "C", 11, "Chapter 1 Test"),
        ("li-x", "C", 12, "chapter 1 exam"),
    )
    b = a.iloc[::-1].reset_index(drop=True)
    assert (
        cc.unique_titles(a, NONE).titles
        == cc.unique_titles(b, NONE).titles
        == {"li-q": "Chapter 1 Quiz", "li-t": "#2 Chapter 1 Test", "li-x": "#3 chapter 1 exam"}
    )


def test_r21_codes_are_per_class():
    got = cc.unique_titles(
        items(("li-1", "A", 10, "Chapter 1 Quiz"), ("li-2", "B", 11, "Chapter 1 Test")), NONE
    )
    assert got.titles == {"li-1": "Chapter 1 Quiz", "li-2": "Chapter 1 Test"} and got.collisions == {}


def test_r21_a_line_item_that_is_not_ours_keeps_its_code():
    held = aspen(("ASPEN-NB1", "C", "Notebook check (entered in Aspen)"))
    got = cc.unique_titles(items(("li-n", "C", 10, "Notebook check week 3")), held)
    assert got.titles == {"li-n": "#2 Notebook check week 3"}
    assert got.collisions == {"li-n": "Notebook check (entered in Aspen)"}


def test_r21_a_tag_that_is_taken_too_moves_on():
    held = aspen(("ASPEN-1", "C", "Chapter 1 Quiz"), ("ASPEN-2", "C", "#2 Chapter 9"))
    got = cc.unique_titles(items(("li-t", "C", 10, "Chapter 1 Test")), held)
    assert got.titles == {"li-t": "#3 Chapter 1 Test"}


def test_r21_stable_a_posted_title_stays_when_a_colliding_assignment_appears_later():
    # run 1: only the Test (id 11) existed, posted under its plain name
    held = aspen(("li-t", "C", "Chapter 1 Test"))
    # run 2: the Quiz (id 10, older id) appears; the Test keeps its title, the Quiz gives way
    got = cc.unique_titles(
        items(("li-q", "C", 10, "Chapter 1 Quiz"), ("li-t", "C", 11, "Chapter 1 Test")), held
    )
    assert got.titles == {"li-q": "#2 Chapter 1 Quiz", "li-t": "Chapter 1 Test"}


def test_r21_stable_a_tagged_title_stays_while_the_canvas_name_is_unchanged():
    # the Quiz it collided with is gone from Canvas and Aspen: the Test keeps "#2 ..."
    held = aspen(("li-t", "C", "#2 Chapter 1 Test"))
    got = cc.unique_titles(items(("li-t", "C", 11, "Chapter 1 Test")), held)
    assert got.titles == {"li-t": "#2 Chapter 1 Test"}
    assert got.collisions == {"li-t": None}  # still reported: it goes under a title that is not its name


def test_r21_a_renamed_assignment_gets_its_new_name():
    held = aspen(("li-q", "C", "Chapter 1 Quiz"), ("li-t", "C", "#2 Chapter 1 Test"))
    got = cc.unique_titles(
        items(("li-q", "C", 10, "Chapter 1 Quiz"), ("li-t", "C", 11, "Ch. 1 Unit Test")), held
    )
    assert got.titles == {"li-q": "Chapter 1 Quiz", "li-t": "Ch. 1 Unit Test"} and got.collisions == {}


def test_r21_a_renamed_line_items_old_code_is_not_handed_to_another_in_the_same_run():
    # li-a moves off "Chapter 1 Quiz"; li-b (new) must not take that code while li-a still holds it in Aspen
    held = aspen(("li-a", "C", "Chapter 1 Quiz"))
    got = cc.unique_titles(items(("li-a", "C", 10, "Midterm"), ("li-b", "C", 11, "Chapter 1 Test")), held)
    assert got.titles == {"li-a": "Midterm", "li-b": "#2 Chapter 1 Test"}


def test_r21_tombstoned_line_items_hold_no_code():
    held = aspen(("ASPEN-OLD", "C", "Chapter 1 Quiz", "tobedeleted"))
    got = cc.unique_titles(items(("li-t", "C", 11, "Chapter 1 Test")), held)
    assert got.titles == {"li-t": "Chapter 1 Test"}


def test_r21_length_zero_is_off_and_another_length_is_honoured():
    both = items(("li-q", "C", 10, "Chapter 1 Quiz"), ("li-t", "C", 11, "Chapter 1 Test"))
    assert cc.unique_titles(both, NONE, 0).titles == {"li-q": "Chapter 1 Quiz", "li-t": "Chapter 1 Test"}
    assert cc.unique_titles(both, NONE, 14).collisions == {}
    assert (
        cc.unique_titles(items(("a", "C", 1, "Unit 1"), ("b", "C", 2, "Unit 2")), NONE, 4).titles["b"]
        == "#2 Unit 2"
    )


def test_r21_collision_warning_names_the_assignment_and_the_title_sent():
    part = items(("li-q", "C", 10, "Chapter 1 Quiz"), ("li-t", "C", 11, "Chapter 1 Test"))
    titles = cc.unique_titles(part, NONE)
    sent = part.assign(canvas_course_id=101, assignment_name=part["title"], group_name="Tests")
    (found,) = cc.collision_findings(sent, titles, 10)
    assert (found["kind"], found["rule"], found["severity"]) == ("column_code_collision", "R21", "warning")
    assert (found["assignment_id"], found["assignment_name"], found["value"]) == (
        11,
        "Chapter 1 Test",
        "#2 Chapter 1 Test",
    )
    assert found["aspen_class_id"] == "C" and found["canvas_course_id"] == 101
    assert "Chapter 1 Quiz" in found["message"]
