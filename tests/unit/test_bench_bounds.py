"""The lower bound's arithmetic: per system requests × latency ÷ cap, their sum, and the
pipelined bound (the busier system alone, since shards overlap the two systems)."""

import pytest

from bench.bounds import bound_seconds
from bench.record import wall_over_pipelined


def test_the_pipelined_bound_is_the_larger_of_the_two_systems_terms():
    bound = bound_seconds(
        {"canvas": 800, "aspen": 1600}, {"canvas": 25.0, "aspen": 40.0}, {"canvas": 8, "aspen": 8}
    )
    assert bound == {"canvas": 2.5, "aspen": 8.0, "total": 10.5, "pipelined": 8.0}
    assert wall_over_pipelined(12.0, bound) == 1.5


def test_records_made_before_the_pipelined_bound_get_it_from_their_two_terms():
    assert wall_over_pipelined(12.0, {"canvas": 2.5, "aspen": 8.0, "total": 10.5}) == pytest.approx(1.5)
    assert wall_over_pipelined(None, {"canvas": 2.5, "aspen": 8.0}) is None  # a bound-only record
