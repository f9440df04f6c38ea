"""The match stage (stages/match.py) when Aspen cannot answer for a class: a class Aspen does
not have (404, R19: e.g. a concluded course's class is gone) fails its whole course, naming
the class, and is not read again; a class whose answers failed otherwise fails its own grades
only. The other classes are matched as usual."""

from __future__ import annotations

from pathlib import Path

from canvas_aspen import rows, storage
from canvas_aspen.buckets import Bucket
from canvas_aspen.errors import AspenApiError
from canvas_aspen.stages import match
from sandbox import scenario

from ..test_rows_columns import TZ, _bundles


class _Aspen:
    """Every class with the categories its Canvas groups name and every student on its
    roster, but ``missing`` (404) and ``broken`` (500)."""

    stats: dict = {}
    student_id_field = "sourcedId"

    def __init__(self, df, missing: str, broken: str):
        self.df, self.missing, self.broken = df, missing, broken

    def _check(self, class_id: str) -> None:
        if class_id == self.missing:
            raise AspenApiError("Aspen class not found", status=404, endpoint="list_categories")
        if class_id == self.broken:
            raise AspenApiError("Aspen is down", status=500, endpoint="list_categories")

    def list_categories(self, class_id):
        self._check(class_id)
        names = self.df.loc[self.df["aspen_class_id"].eq(class_id), "group_name"].dropna().unique()
        return [{"sourcedId": f"{class_id}-{n}", "title": n, "status": "active"} for n in names]

    def list_students(self, class_id):
        self._check(class_id)
        ids = self.df.loc[self.df["aspen_class_id"].eq(class_id), "student_sis_id"].dropna().unique()
        return [{"sourcedId": s} for s in ids]

    def map_concurrent(self, fn, items, *, on_error="raise", **_):
        out = []
        for item in items:
            try:
                out.append(fn(item))
            except Exception as exc:  # noqa: BLE001 - collected, as the hook does
                out.append(exc)
        return out


def _shard(tmp_path: Path):
    bundles, periods = _bundles(scenario.load("demo"))
    df = rows.build_rows(bundles, periods, TZ).assign(error=None, held_kinds=None)  # as validate writes it
    run_dir = tmp_path / "run"
    storage.write_frame(run_dir / "shard-0000" / "rows.parquet", df)
    storage.write_json(run_dir / "shard-0000" / "failed-courses.json", {})
    return run_dir, df


def test_a_class_aspen_does_not_have_fails_its_whole_course_and_a_broken_class_only_its_grades(tmp_path):
    run_dir, df = _shard(tmp_path)
    gradeable = df[df["bucket"].eq(Bucket.ELIGIBLE)]
    per_course = gradeable.groupby("canvas_course_id")["aspen_class_id"].unique()
    two_classes = [c for c, classes in per_course.items() if len(classes) >= 2]
    course = two_classes[0]
    missing = sorted(per_course[course])[0]  # one class of a course of two or more
    broken = next(cl for c, classes in per_course.items() if c != course for cl in sorted(classes))

    out = match(_Aspen(df, missing, broken), run_dir, 0, mappings={})

    sd = run_dir / "shard-0000"
    after = storage.read_frame(sd / "rows.parquet")
    was = df.set_index("row_id")["bucket"]
    after = after.assign(was=after["row_id"].map(was))
    of_course = after[after["canvas_course_id"].eq(course) & after["was"].eq(Bucket.ELIGIBLE)]
    assert set(of_course["bucket"]) == {Bucket.FAILED}  # every class of the course, not only the missing one
    assert of_course["error"].str.contains(f"Aspen has no class {missing}").all()
    of_broken = after[after["aspen_class_id"].eq(broken) & after["was"].eq(Bucket.ELIGIBLE)]
    assert set(of_broken["bucket"]) == {Bucket.FAILED}
    assert of_broken["error"].str.startswith(f"Aspen class {broken}: ").all()
    others = after[~after["canvas_course_id"].eq(course) & ~after["aspen_class_id"].eq(broken)]
    assert Bucket.FAILED not in set(others["bucket"])  # the rest is matched as usual
    assert storage.read_json(sd / "missing-classes.json") == [missing]  # deltas does not read it again
    failed = storage.read_json(sd / "failed-courses.json")
    assert f"Aspen has no class {missing}" in failed[str(course)]
    assert out["classes"] == len(df["aspen_class_id"].dropna().unique())
