"""A run is split into as many shards as its courses need: a small district is not paid eight
times over (a task instance per stage per shard), a large one is still split at most
``CANVAS_ASPEN_SHARDS`` ways."""

import pytest

from canvas_aspen import stages, storage
from canvas_aspen.settings import Settings
from canvas_aspen.stages.plan import shards_for, split_courses


class _Hooks:
    """Canvas and Aspen for ``plan`` asked for ``courses`` course ids (a backfill's path)."""

    def __init__(self, courses: int):
        self.params = {"course_ids": [100 + k for k in range(courses)]}

    def get_course(self, cid):
        return {"id": cid, "workflow_state": "available"}

    def map_concurrent(self, fn, items, on_error="raise"):
        return [fn(i) for i in items]

    def list_grading_periods(self):
        return []


@pytest.mark.parametrize(
    ("courses", "shards"), [(0, 0), (1, 1), (3, 1), (10, 1), (11, 2), (40, 4), (43, 5), (79, 8), (300, 8)]
)
def test_shard_count_fits_the_district(courses, shards):
    assert shards_for(courses, max_shards=8, courses_per_shard=10) == shards


def test_plan_splits_a_three_course_district_into_one_shard_and_a_large_one_into_the_maximum(tmp_path):
    hooks = _Hooks(3)
    small = stages.plan(
        hooks, hooks, tmp_path / "small", params=hooks.params, shard_count=8, courses_per_shard=10
    )
    assert small == [{"shard": 0, "courses": 3}]
    hooks = _Hooks(300)
    large = stages.plan(
        hooks, hooks, tmp_path / "large", params=hooks.params, shard_count=8, courses_per_shard=10
    )
    assert [s["courses"] for s in large] == [18, 41, 41, 40, 40, 40, 40, 40]  # a half-size first shard
    plan = storage.read_json(tmp_path / "large" / "plan.json")
    assert sorted(c for shard in plan["shards"] for c in shard) == plan["course_ids"]  # every course once


def test_settings_default_to_ten_courses_per_shard_and_read_the_environment(monkeypatch):
    monkeypatch.delenv("CANVAS_ASPEN_COURSES_PER_SHARD", raising=False)
    assert Settings.from_env().courses_per_shard == 10
    monkeypatch.setenv("CANVAS_ASPEN_COURSES_PER_SHARD", "1")
    assert Settings.from_env().courses_per_shard == 1


@pytest.mark.parametrize(
    ("courses", "shards", "sizes"),
    [
        (40, 4, [5, 12, 12, 11]),  # the first shard half: Aspen starts while shards 1-3 are read
        (43, 5, [4, 10, 10, 10, 9]),
        (5, 2, [3, 2]),  # half a shard would be one course: equal shards, round-robin
        (16, 8, [2, 2, 2, 2, 2, 2, 2, 2]),
        (3, 1, [3]),
        (0, 0, []),
    ],
)
def test_the_first_shard_is_half_size_when_shards_are_large_enough(courses, shards, sizes):
    ids = [100 + k for k in range(courses)]
    split = split_courses(ids, shards)
    assert [len(s) for s in split] == sizes
    assert sorted(c for s in split for c in s) == ids  # every course in exactly one shard
    if courses == 5:
        assert split == [[100, 102, 104], [101, 103]]  # small districts keep round-robin
