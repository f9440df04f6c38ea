"""The class guard (stages/class_guard.py): post writes only into the Aspen classes this run
resolved from a Canvas section's SIS id. A line item's id names its section; the section's
SIS id must be the class its body, its row and its results name, else the whole shard is
refused, before any write."""

from __future__ import annotations

import json

import pandas as pd

from canvas_aspen import ids, storage
from canvas_aspen.buckets import Bucket
from canvas_aspen.stages.class_guard import refuse_shard, section_classes, unresolved_writes

COURSE, SECTION, CLASS = 101, 5001, "ALG1-P1"
OTHER_SECTION, OTHER_CLASS = 5002, "ENG10-P3"
BUNDLES = [
    {
        "course": {"id": COURSE},
        "sections": [
            {"id": SECTION, "sis_section_id": CLASS},
            {"id": OTHER_SECTION, "sis_section_id": OTHER_CLASS},
            {"id": 5003, "sis_section_id": None},  # a section without SIS id: no class
        ],
    }
]
LI = ids.line_item_id(7, SECTION)


def _line_items(class_id: str = CLASS, body_class: str = CLASS, li: str = LI) -> pd.DataFrame:
    body = json.dumps({"sourcedId": li, "class": {"sourcedId": body_class}})
    return pd.DataFrame({"line_item_id": [li], "aspen_class_id": [class_id], "body": [body]})


def _results(class_id: str = CLASS, li: str = LI, user: int = 9) -> pd.DataFrame:
    return pd.DataFrame({"result_id": [f"{li}-u{user}"], "line_item_id": [li], "aspen_class_id": [class_id]})


def _guard(li_post=None, to_post=None, orphans=()) -> str | None:
    li_post = _line_items() if li_post is None else li_post
    to_post = _results() if to_post is None else to_post
    return unresolved_writes(li_post, to_post, list(orphans), section_classes(BUNDLES))


def test_sections_name_their_class_and_course():
    assert section_classes(BUNDLES) == {
        SECTION: (CLASS, COURSE),
        OTHER_SECTION: (OTHER_CLASS, COURSE),
        5003: (None, COURSE),
    }


def test_writes_to_the_classes_their_sections_name_pass():
    assert _guard() is None
    assert _guard(orphans=[ids.line_item_id(8, OTHER_SECTION)]) is None


def test_a_line_item_row_naming_another_class_refuses_the_shard():
    why = _guard(li_post=_line_items(class_id=OTHER_CLASS, body_class=OTHER_CLASS))
    assert why and why.startswith("refused to post this shard: 1 write(s)") and LI in why


def test_a_line_item_body_naming_another_class_refuses_the_shard():
    assert "line item" in (_guard(li_post=_line_items(body_class="CHEM-P4")) or "")


def test_a_result_in_a_class_its_line_item_is_not_refuses_the_shard():
    assert "result" in (_guard(to_post=_results(class_id=OTHER_CLASS)) or "")


def test_a_result_under_a_line_item_that_is_not_ours_refuses_the_shard():
    teachers_own = "ASPEN-ALG1-NB1"  # a column a teacher made in Aspen: no section in its id
    assert _guard(to_post=_results(li=teachers_own)) is not None


def test_a_result_id_not_under_its_line_item_refuses_the_shard():
    to_post = _results().assign(result_id=f"{ids.line_item_id(8, SECTION)}-u9")
    assert _guard(to_post=to_post) is not None


def test_deleting_a_line_item_of_no_section_of_this_run_refuses_the_shard():
    assert "orphan deletion" in (_guard(orphans=[ids.line_item_id(8, 9999)]) or "")
    assert "orphan deletion" in (_guard(orphans=["ASPEN-ALG1-NB1"]) or "")


def test_a_section_without_sis_id_names_no_class_to_write_to():
    li = ids.line_item_id(7, 5003)
    assert _guard(li_post=_line_items(li=li), to_post=_results(li=li)) is not None


def test_a_refused_shard_fails_its_grades_to_post_and_every_course_names_why(tmp_path):
    df = pd.DataFrame(
        {"bucket": [Bucket.ELIGIBLE, Bucket.ELIGIBLE, Bucket.UNCHANGED], "error": [None, None, None]},
        index=[1, 2, 3],
    )
    refuse_shard(df, tmp_path, pd.Index([1, 2]), [101, 103], "refused to post this shard: ...")
    assert df["bucket"].tolist() == [Bucket.FAILED, Bucket.FAILED, Bucket.UNCHANGED]
    assert df["error"].tolist()[:2] == ["refused to post this shard: ..."] * 2
    assert storage.read_json(tmp_path / "failed-courses.json") == {
        "101": "refused to post this shard: ...",
        "103": "refused to post this shard: ...",
    }
