"""The benchmark's clocks: HTTP time as the union over task processes, and where the time
outside HTTP waits went."""

from bench.measure import outside_by_stage, union_seconds


def test_union_of_busy_intervals_counts_overlaps_once():
    assert union_seconds([]) == 0
    assert union_seconds([(1, 2), (1.5, 3), (4, 5)]) == 2.0 + 1.0
    assert union_seconds([(0, 10), (1, 2), (3, 4)]) == 10


def test_outside_http_time_goes_to_the_stages_running_then():
    # requests in flight 1-2 and 3-4; "a" runs 0-2.5, "b" 2-5 (both 2-2.5)
    got = outside_by_stage([(1, 2), (3, 4)], [("a", 0, 2.5), ("b", 2, 5)], 0, 5)
    assert got == {"a": 1.0 + 0.25, "b": 0.25 + 0.5 + 1.0}


def test_outside_http_time_with_no_task_running_is_the_workers_own():
    got = outside_by_stage([(0, 10), (1, 2), (6, 12)], [("a", 0, 14)], 0, 15)
    assert got == {"a": 2.0, "(none)": 1.0}
    assert sum(got.values()) == 15 - union_seconds([(0, 10), (1, 2), (6, 12)])
