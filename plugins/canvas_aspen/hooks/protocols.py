"""What the stages use of the two hooks, as Protocols (no Airflow here).

The stages are plain functions over "something that reads Canvas" and "something that reads
and writes Aspen's gradebook": :class:`~canvas_aspen.hooks.canvas.CanvasHook` and
:class:`~canvas_aspen.hooks.aspen.AspenHook` in the DAG, small fakes in the unit tests. The
stages import these under ``TYPE_CHECKING`` only, so an editor follows a stage's call to the
hook method it reaches, and the stages still import no Airflow.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Literal, Protocol, TypeVar, runtime_checkable

T = TypeVar("T")
R = TypeVar("R")


@runtime_checkable
class ConcurrentApi(Protocol):
    """Bounded fan-out and the request counters every hook has."""

    @property
    def stats(self) -> dict[str, int]: ...

    def map_concurrent(
        self,
        fn: Callable[[T], R],
        items: Iterable[T],
        *,
        on_error: Literal["raise", "collect"] = "raise",
        max_workers: int | None = None,
    ) -> list[R | BaseException]: ...


@runtime_checkable
class CanvasApi(ConcurrentApi, Protocol):
    """The Canvas reads of domain.md §1 (every list already paged to its end)."""

    def list_terms(self, account_id: str | int | None = None) -> list[dict]: ...

    def list_courses(
        self,
        account_id: str | int | None = None,
        enrollment_term_id: str | int | None = None,
        state: Iterable[str] | None = None,
    ) -> list[dict]: ...

    def get_course(self, course_id: str | int) -> dict: ...

    def list_sections(self, course_id: str | int) -> list[dict]: ...

    def list_student_enrollments(
        self, course_id: str | int, states: Iterable[str] = ("active",)
    ) -> list[dict]: ...

    def list_teachers(self, course_id: str | int) -> list[dict]: ...

    def list_assignment_groups(self, course_id: str | int) -> list[dict]: ...

    def list_submissions(
        self,
        course_id: str | int,
        assignment_ids: Iterable[str | int] | None = None,
        graded_since: datetime | str | None = None,
    ) -> list[dict]: ...


@runtime_checkable
class AspenApi(ConcurrentApi, Protocol):
    """The OneRoster gradebook reads and writes of domain.md §2, and the Connection's extras
    for R21 (column codes) and R22 (the roster field of the student id)."""

    @property
    def column_code_length(self) -> int: ...

    @property
    def student_id_field(self) -> str: ...

    def list_categories(self, class_id: str) -> list[dict]: ...

    def list_grading_periods(self) -> list[dict]: ...

    def list_line_items(self, class_id: str) -> list[dict]: ...

    def list_results(self, class_id: str, modified_since: datetime | str | None = None) -> list[dict]: ...

    def list_students(self, class_id: str) -> list[dict]: ...

    def put_line_item(self, sourced_id: str, line_item: dict) -> dict | None: ...

    def put_result(self, sourced_id: str, result: dict) -> dict | None: ...

    def delete_line_item(self, sourced_id: str) -> bool: ...
