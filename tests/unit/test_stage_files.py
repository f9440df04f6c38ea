"""Stage files keep no more student data than the passback needs (FERPA), and on the local
file system only their owner can read them."""

import logging
import os
import stat

import pandas as pd
import pytest

from canvas_aspen import stages, storage
from canvas_aspen.errors import CanvasApiError
from canvas_aspen.stages.extract import course_bundle, submission_fields
from canvas_aspen.stages.report import shard_outcome


class _Canvas:
    def get_course(self, cid):
        return {"id": cid, "sis_course_id": "C"}

    def list_sections(self, cid):
        return [{"id": 1, "sis_section_id": "S1"}]

    def list_student_enrollments(self, cid):
        return [
            {
                "user_id": 7,
                "course_section_id": 1,
                "sis_user_id": None,
                "user": {
                    "id": 7,
                    "name": "Ava Johnson",
                    "sortable_name": "Johnson, Ava",
                    "sis_user_id": "S7",
                    "login_id": "ava.j",
                },
            }
        ]

    def list_teachers(self, cid):
        return [{"id": 90, "name": "Dana Whitfield", "email": "dana@district.test"}]

    def list_assignment_groups(self, cid):
        return []

    def list_submissions(self, cid):
        return []


def test_extract_keeps_enrollment_ids_but_not_student_names():
    bundle = course_bundle(_Canvas(), 1)
    assert bundle["enrollments"] == [{"user_id": 7, "course_section_id": 1, "sis_user_id": "S7"}]
    assert "Ava" not in repr(bundle) and "ava.j" not in repr(bundle)


def test_extract_keeps_each_teachers_id_name_and_email_for_the_digest():
    bundle = course_bundle(_Canvas(), 1)
    assert bundle["teachers"] == [{"id": 90, "name": "Dana Whitfield", "email": "dana@district.test"}]


class _CanvasWithoutTeachers(_Canvas):
    def list_teachers(self, cid):
        raise CanvasApiError(
            "user not authorized to perform that action", status=403, endpoint="list_teachers"
        )


def test_a_course_whose_teachers_cannot_be_read_still_passes_back(caplog):
    with caplog.at_level(logging.WARNING):
        bundle = course_bundle(_CanvasWithoutTeachers(), 1)
    assert bundle["teachers"] is None  # unknown: the report lists the course for the data team
    assert bundle["enrollments"] == [{"user_id": 7, "course_section_id": 1, "sis_user_id": "S7"}]
    assert "teachers not readable" in caplog.text


class _CanvasWithWork(_Canvas):
    """A graded submission as Canvas sends it: the grade, and the student's own work."""

    def list_assignment_groups(self, cid):
        return [
            {
                "id": 3,
                "name": "Tests",
                "assignments": [
                    {
                        "id": 11,
                        "published": True,
                        "post_to_sis": True,
                        "grading_type": "points",
                        "points_possible": 10,
                    }
                ],
            }
        ]

    def list_submissions(self, cid, assignment_ids=None):
        assert assignment_ids == [11]
        return [
            {
                "id": 5,
                "assignment_id": 11,
                "user_id": 7,
                "score": 9.0,
                "grade": "9",
                "excused": False,
                "late": True,
                "missing": False,
                "late_policy_status": None,
                "graded_at": "2026-10-01T12:00:00Z",
                "body": "<p>My essay about my family</p>",
                "url": "https://example.org/ava",
                "attachments": [{"display_name": "ava-essay.docx"}],
                "submission_comments": [{"comment": "Nice"}],
                "user": {"name": "Ava Johnson"},
                "workflow_state": "graded",
                "seconds_late": 60,
            }
        ]


def test_extract_keeps_only_the_grade_fields_of_a_submission():
    bundle = course_bundle(_CanvasWithWork(), 1)
    assert bundle["submissions"] == [
        {
            "assignment_id": 11,
            "user_id": 7,
            "score": 9.0,
            "grade": "9",
            "excused": False,
            "missing": False,
            "late": True,
            "late_policy_status": None,
            "graded_at": "2026-10-01T12:00:00Z",
        }
    ]
    for text in ("essay", "ava-essay", "Nice", "Ava", "example.org"):
        assert text not in repr(bundle)


def test_a_field_canvas_left_out_stays_out_and_a_malformed_submission_is_kept_for_the_check():
    assert submission_fields({"assignment_id": 1, "user_id": 2}) == {"assignment_id": 1, "user_id": 2}
    assert submission_fields("not an object") == "not an object"


# --- stage files are owner-only on the local file system (they hold SIS ids and scores) ---------


class _Hooks(_Canvas):
    """Canvas and Aspen for ``plan`` and ``extract``: one course with one SIS section."""

    stats: dict = {}

    def list_terms(self):
        return [{"id": 1, "name": "Default Term", "start_at": None, "end_at": None}]

    def list_courses(self, enrollment_term_id=None, state=None):
        return [{"id": 1, "sis_course_id": "C", "workflow_state": "available"}]

    def list_sections(self, cid):
        return [{"id": 1, "sis_section_id": "S1"}]

    def list_grading_periods(self):
        return []

    def map_concurrent(self, fn, items, **_):
        return [fn(item) for item in items]


PARAMS = {"course_ids": [], "dry_run": False}


def _open_to_others(root) -> list[str]:
    """Every folder or file under ``root`` (itself included) its group or others may use."""
    return [
        f"{p} {oct(stat.S_IMODE(p.stat().st_mode))}"
        for p in [root, *root.rglob("*")]
        if stat.S_IMODE(p.stat().st_mode) & 0o077
    ]


@pytest.fixture
def open_umask():
    """A umask that makes new files group- and world-readable (the usual 022)."""
    old = os.umask(0o022)
    yield
    os.umask(old)


def _stage_a_run(run_dir) -> None:
    hooks = _Hooks()
    stages.plan(hooks, hooks, run_dir, params=PARAMS, shard_count=1)
    stages.extract(hooks, run_dir, 0)
    storage.write_frame(run_dir / "shard-0000" / "rows.parquet", pd.DataFrame({"student_sis_id": ["S7"]}))


def test_stage_root_run_folder_and_stage_files_are_owner_only(tmp_path, open_umask):
    from airflow.sdk import ObjectStoragePath

    root = tmp_path / "airflow" / "canvas_aspen" / "stage"
    run_dir = ObjectStoragePath(f"file://{root}") / "scheduled__2026-11-20"  # as the DAG makes it
    _stage_a_run(run_dir)

    files = {p.name for p in root.rglob("*") if p.is_file()}
    assert {"plan.json", "canvas.json", "failed-courses.json", "rows.parquet"} <= files
    assert stat.S_IMODE(root.stat().st_mode) == 0o700
    assert stat.S_IMODE((root / "scheduled__2026-11-20").stat().st_mode) == 0o700
    assert _open_to_others(root) == []


def test_an_existing_stage_root_open_to_others_is_tightened_with_a_warning(tmp_path, open_umask, caplog):
    root = tmp_path / "stage"
    root.mkdir(mode=0o755)
    os.chmod(root, 0o755)
    (root / "old-run").mkdir()
    os.chmod(root / "old-run", 0o755)
    caplog.set_level(logging.WARNING, logger="canvas_aspen.storage")

    _stage_a_run(root / "new-run")

    assert _open_to_others(root / "new-run") == []
    assert stat.S_IMODE(root.stat().st_mode) == 0o700  # the old run's files are no longer reachable
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and str(root) in warnings[0] and "owner-only" in warnings[0], warnings
    assert "S7" not in caplog.text  # the path, no student data


def test_an_existing_stage_file_open_to_others_is_rewritten_owner_only(tmp_path, open_umask):
    path = tmp_path / "stage" / "run" / "shard-0000" / "canvas.json"
    path.parent.mkdir(parents=True)
    path.write_text("[]")
    os.chmod(path, 0o644)
    storage.write_json(path, [{"sis_user_id": "S7"}])
    assert stat.S_IMODE(path.stat().st_mode) == 0o600 and storage.read_json(path) == [{"sis_user_id": "S7"}]


class _ObjectStorePath:
    """What ``storage`` uses of an ``ObjectStoragePath`` on an object store: no local file,
    no permission bits (the store's own access control applies)."""

    protocol = "s3"

    def __init__(self, key: str, blobs: dict[str, bytes]):
        self.key, self.blobs = key, blobs

    def __truediv__(self, name: str) -> "_ObjectStorePath":
        return _ObjectStorePath(f"{self.key}/{name}", self.blobs)

    @property
    def parent(self) -> "_ObjectStorePath":
        return _ObjectStorePath(self.key.rsplit("/", 1)[0], self.blobs)

    def mkdir(self, **_):
        pass

    def exists(self) -> bool:
        return self.key in self.blobs

    def open(self, mode: str):
        import io

        if "r" in mode:
            return (
                io.BytesIO(self.blobs[self.key])
                if "b" in mode
                else io.StringIO(self.blobs[self.key].decode())
            )
        blobs, key = self.blobs, self.key

        class _Blob(io.BytesIO):
            def close(self):
                blobs[key] = self.getvalue()
                super().close()

        return _Blob()


def test_object_store_stage_files_are_left_to_the_store(tmp_path, open_umask, monkeypatch):
    from airflow.sdk import ObjectStoragePath

    assert storage.local_path(ObjectStoragePath("s3://district-bucket/stage") / "run") is None
    assert storage.local_path(ObjectStoragePath(f"file://{tmp_path}") / "run") == tmp_path / "run"
    assert storage.local_path(tmp_path / "run") == tmp_path / "run"

    monkeypatch.chdir(tmp_path)
    blobs: dict[str, bytes] = {}
    run_dir = _ObjectStorePath("stage/run", blobs)
    storage.private_run_dir(run_dir)  # nothing to do on a store
    storage.write_json(run_dir / "shard-0000" / "canvas.json", [{"sis_user_id": "S7"}])
    storage.write_frame(run_dir / "shard-0000" / "rows.parquet", pd.DataFrame({"student_sis_id": ["S7"]}))
    assert set(blobs) == {"stage/run/shard-0000/canvas.json", "stage/run/shard-0000/rows.parquet"}
    assert storage.read_json(run_dir / "shard-0000" / "canvas.json") == [{"sis_user_id": "S7"}]
    assert list(tmp_path.iterdir()) == []  # nothing written to the local disk


def test_R17_a_stage_that_failed_is_named_with_its_error_in_the_course_and_the_grades(tmp_path):
    """match raised (say, a mapping file that vanished after plan): the shard's courses say
    which stage did not finish and why, and its unsettled grades are 'not posted', never
    'not accepted by Aspen'."""
    from canvas_aspen import report
    from canvas_aspen.run_params import ParamError

    run_dir = tmp_path / "run"
    sd = run_dir / "shard-0000"
    storage.write_json(sd / "failed-courses.json", {})
    storage.write_frame(
        sd / "rows.parquet",
        pd.DataFrame(
            {
                "bucket": ["eligible", "eligible", "empty"],
                "canvas_course_id": [101] * 3,
                "sis_course_id": "C",
                "aspen_class_id": "A",
                "error": [None] * 3,
            }
        ),
    )
    stages.record_stage_error(run_dir, 0, "match", ParamError("mapping_file /m.csv: no such file"))
    df, failed, _, _ = shard_outcome(run_dir, 0, [101])
    assert failed == {"101": "match did not finish: ParamError: mapping_file /m.csv: no such file"}
    assert set(df.loc[df["bucket"].eq("failed"), "error"]) == {
        "not posted: match did not finish: ParamError: mapping_file /m.csv: no such file"
    }
    doc = report.build(
        run_id="r",
        dry_run=True,
        params={},
        started_at="s",
        finished_at="f",
        rows=df,
        failed_courses=failed,
        findings=[],
        verify={"checked": 0, "mismatched": 0},
    )
    assert doc["failed_reasons"] == [
        "1 course(s) failed",
        "2 grade(s) not posted (not posted: match did not "
        "finish: ParamError: mapping_file /m.csv: no such file)",
    ]


def test_R17_a_shard_whose_validate_failed_fails_its_courses_and_counts_no_grade(tmp_path):
    """validate raised before it wrote rows.parquet: the report reads the shard (it crashed on
    the empty frame before), its courses name the stage and why."""
    run_dir = tmp_path / "run"
    storage.write_json(run_dir / "shard-0000" / "failed-courses.json", {})
    stages.record_stage_error(run_dir, 0, "validate", RuntimeError("out of memory"))
    df, failed, findings, _ = shard_outcome(run_dir, 0, [101, 103])
    assert len(df) == 0 and findings == []
    assert failed == dict.fromkeys(["101", "103"], "validate did not finish: RuntimeError: out of memory")
