"""District sizes of the benchmark (arguments of ``python -m sandbox generate``)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Size:
    name: str
    courses: int
    students_per_section: int
    assignments: int  # sendable assignments per course
    seed: int = 1
    first_run_measured: bool = False  # also measure a first full run with latency
    naive_measured: bool = False  # also measure the naive baseline
    scenario: str | None = None  # a sandbox scenario (``demo``) instead of a generated district


SIZES = {
    # a few seconds: only for tests/integration/bench/test_bench_smoke.py
    "XS": Size(
        "XS", courses=3, students_per_section=6, assignments=4, first_run_measured=True, naive_measured=True
    ),
    "S": Size(
        "S", courses=20, students_per_section=28, assignments=40, first_run_measured=True, naive_measured=True
    ),
    "M": Size("M", courses=300, students_per_section=28, assignments=40),
    # the sandbox's demo district, as a user tries the package (the real-scheduler runs' small size)
    "demo": Size(
        "demo",
        courses=5,
        students_per_section=0,
        assignments=0,
        first_run_measured=True,
        naive_measured=True,
        scenario="demo",
    ),
    # 40 courses, ~11k grades: where a real scheduler's fixed costs meet the naive DAG
    "D40": Size(
        "D40",
        courses=40,
        students_per_section=10,
        assignments=20,
        first_run_measured=True,
        naive_measured=True,
    ),
}

CANVAS_LATENCY_MS = 25.0
ASPEN_LATENCY_MS = 40.0
