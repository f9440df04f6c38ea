"""The stages of one passback run, as plain functions over hooks and stage files.

The DAG (``dags/canvas_aspen_grade_passback.py``) wraps each in a task; tests and the
benchmark call them the same way. Hooks are passed in, so this module imports nothing of
Airflow. Each shard keeps its files in its own folder (docs/design.md); a stage reads
what the stage before it wrote and returns only small summaries (they go to XCom).

A failure of one course (or one Aspen class) never stops the others: its rows end in
the ``failed`` bucket with the error, and the report fails the run at the very end.
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import pandas as pd

from canvas_aspen import column_codes, deltas, ids, match, oneroster, rows, rules, storage, students, terms
from canvas_aspen.buckets import GRADEABLE, Bucket
from canvas_aspen.errors import ApiError
from canvas_aspen.findings import finding

if TYPE_CHECKING:
    from canvas_aspen.hooks.protocols import AspenApi, CanvasApi, ConcurrentApi

log = logging.getLogger(__name__)


# ---------------------------------------------------------------------------- helpers


@dataclass
class Progress:
    """Logs "done of total" at most every few seconds on long stages."""

    what: str
    total: int
    hook: Any = None  # when given, the log line also says how many requests were sent
    every: float = 5.0
    done: int = 0
    _t0: float = field(default_factory=time.monotonic)
    _last: float = -math.inf  # the first step always logs (monotonic() may be small after boot)

    def step(self, n: int = 1) -> None:
        self.done += n
        now = time.monotonic()
        if self.done == self.total or now - self._last >= self.every:
            self._last = now
            elapsed = max(now - self._t0, 1e-9)
            sent = self.hook.stats.get("requests", 0) if self.hook is not None else None
            log.info(
                "%s: %d of %d done (%.1f/s)%s",
                self.what,
                self.done,
                self.total,
                self.done / elapsed,
                "" if sent is None else f", {sent} requests sent ({sent / elapsed:.1f}/s)",
            )


def _shard_dir(run_dir: Any, shard: int) -> Any:
    return run_dir / f"shard-{shard:04d}"


def report_folder(reports_dir: Path, run_id: str) -> Path:
    return Path(reports_dir) / ids.run_folder_name(run_id)


def data_docs_dir(reports_dir: Path, run_id: str, shard: int, stage: str) -> Path:
    """Where one gate call builds its Great Expectations Data Docs (one site per call)."""
    return report_folder(reports_dir, run_id) / "datadocs" / f"shard-{shard:04d}-{stage}"


def _error_text(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"[:500]


def _each(hook: ConcurrentApi, fn, items: list, what: str) -> list:
    """``fn`` over ``items`` within the hook's concurrency cap, with progress lines; an
    exception stands in the place of its item's answer (one failure never hides the rest)."""
    progress = Progress(what, len(items), hook)

    def one(item):
        try:
            return fn(item)
        finally:
            progress.step()

    return hook.map_concurrent(one, items, on_error="collect") if items else []


def _fail_rows(df: pd.DataFrame, mask: pd.Series, message: str) -> None:
    df.loc[mask, "bucket"] = Bucket.FAILED
    df.loc[mask, "error"] = message


# ---------------------------------------------------------------------------- course leases, failing loudly


def _lease(ledger, run_id: str | None, lease: timedelta | None, course_ids: list[int]) -> dict[str, str]:
    """Take, or extend, this run's leases on courses; {course: why} for those another live run
    holds. A nightly run and a manual backfill never post the same course at the same time: a
    run leases its courses before it reads Canvas (extract) and checks again before it writes
    (post); a busy course's grades end ``failed`` and go with the next run."""
    if ledger is None or run_id is None or lease is None or not course_ids:
        return {}
    _, refused = ledger.acquire_courses(course_ids, run_id, lease)
    busy = {str(c): f"course busy: run {holder} holds it; retried next run" for c, holder in refused.items()}
    for course, why in busy.items():
        log.warning("course %s: %s", course, why)
    return busy


def _fail_class(
    df: pd.DataFrame, sd: Any, class_id: str, buckets: tuple[Bucket, ...], error: BaseException
) -> None:
    """An Aspen class whose answers could not be used: its grades fail, and its courses carry
    the error (naming the endpoint) into the report, so the run fails loudly."""
    message = f"Aspen class {class_id}: {_error_text(error)}"
    in_class = df["aspen_class_id"].eq(class_id)
    _fail_rows(df, in_class & df["bucket"].isin(buckets), message)
    log.warning("%s", message)
    _add_course_errors(sd, {str(c): message for c in df.loc[in_class, "canvas_course_id"].unique()})


def _fail_missing_class(df: pd.DataFrame, sd: Any, class_id: str, error: BaseException) -> None:
    """An Aspen class that does not exist (Aspen answered 404): the section's SIS id names no
    class, as with a concluded course named in ``course_ids`` (R19) whose class is gone. Its
    whole course fails, naming the class, and nothing of that course is written."""
    courses = sorted(int(c) for c in df.loc[df["aspen_class_id"].eq(class_id), "canvas_course_id"].unique())
    message = (
        f"Aspen has no class {class_id} (the SIS id of a section of this course): nothing of this course "
        f"was written. A concluded course's Aspen class is usually gone; fix the section's SIS id or leave "
        f"the course out. ({_error_text(error)})"
    )
    _fail_rows(df, df["canvas_course_id"].isin(courses) & df["bucket"].isin(GRADEABLE), message)
    log.warning(
        "Aspen class %s does not exist: course(s) %s fail, nothing of them is written", class_id, courses
    )
    _add_course_errors(sd, {str(c): message for c in courses})
    missing = storage.read_json(sd / "missing-classes.json", default=[])
    storage.write_json(sd / "missing-classes.json", sorted({*missing, class_id}))


def _checked(answer: Any) -> Any:
    """A course's Canvas answers, or the error that makes them unusable (malformed ids)."""
    if isinstance(answer, BaseException):
        return answer
    try:
        rows.check_bundle(answer)
    except ValueError as exc:
        return exc
    return answer


def _add_course_errors(sd: Any, errors: dict[str, str]) -> None:
    """Courses that failed after extract, with why: the report shows them (and fails the run)."""
    if errors:
        merged = storage.read_json(sd / "failed-courses.json", default={})
        for course, why in errors.items():
            merged[course] = (
                why if not merged.get(course) or why in merged[course] else f"{merged[course]}; {why}"
            )
        storage.write_json(sd / "failed-courses.json", merged)


# ---------------------------------------------------------------------------- plan


def shards_for(courses: int, *, max_shards: int, courses_per_shard: int) -> int:
    """How many shards a run of ``courses`` courses gets: one per ``courses_per_shard``
    courses (rounded up), at most ``max_shards``, one at least when there is a course. Each
    shard costs a task instance per stage (scheduling, a process, a Great Expectations gate):
    three courses in eight shards would pay that eight times for a few seconds of work."""
    if courses <= 0:
        return 0
    return max(1, min(max_shards, -(-courses // max(1, courses_per_shard))))


def scope_courses(
    canvas: CanvasApi,
    *,
    course_ids: list[int],
    term_refs: str | list[str] | None,
    today: date,
    timezone_name: str,
) -> list[dict[str, Any]]:
    """R19: the courses this run covers, as the course list (or ``get_course``) gives them.

    ``course_ids`` given: exactly those, whatever their term or state. Otherwise the courses in
    ``available`` state of the current terms (``today`` in the district's calendar), or of the
    terms ``term_refs`` names (``CANVAS_ASPEN_TERMS``): one terms listing, then the course list
    per term filtered by Canvas (``enrollment_term_id``, ``state[]``), so nothing of a course
    out of scope is read, not even its listing page."""
    if course_ids:
        courses = canvas.map_concurrent(canvas.get_course, course_ids, on_error="raise")
        courses = [c for c in courses if c.get("workflow_state") not in ("deleted",)]
        log.info("plan: %d course(s) as asked (course_ids), whatever their term or state", len(courses))
        return courses
    refs = term_refs if isinstance(term_refs, list) else terms.parse_term_refs(term_refs)
    listed = canvas.list_terms()
    chosen = terms.named_terms(listed, refs) if refs else terms.current_terms(listed, today, timezone_name)
    seen: dict[int, dict[str, Any]] = {}
    dropped = 0
    for term in chosen:
        for course in canvas.list_courses(enrollment_term_id=term["id"], state=list(terms.IN_SCOPE_STATES)):
            if not terms.in_scope(course):
                dropped += 1
            else:
                seen.setdefault(int(course["id"]), course)
    how = "named by CANVAS_ASPEN_TERMS" if refs else f"current on {today.isoformat()} ({timezone_name})"
    log.info(
        "plan: %d of %d Canvas terms %s: %s; %d term(s) out of scope (their courses not listed)",
        len(chosen),
        len(listed),
        how,
        ", ".join(terms.describe(t) for t in chosen) or "none",
        len(listed) - len(chosen),
    )
    log.info(
        "plan: %d course(s) in scope (available); %d listed but not available, out of scope",
        len(seen),
        dropped,
    )
    if not chosen:
        log.warning("plan: no Canvas term is in scope: this run covers no course")
    return list(seen.values())


def plan(
    canvas: CanvasApi,
    aspen: AspenApi,
    run_dir: Any,
    *,
    params: dict[str, Any],
    shard_count: int,
    courses_per_shard: int = 1,
    today: date | None = None,
    timezone_name: str = "America/New_York",
    term_refs: str | list[str] | None = None,
) -> list[dict[str, Any]]:
    """Which courses this run covers (R19, :func:`scope_courses`), split into at most
    ``shard_count`` shards of about ``courses_per_shard`` courses or more (:func:`shards_for`);
    Aspen's grading periods once. ``today`` is the run's date in the district's calendar
    (default: now)."""
    today = today or datetime.now(ZoneInfo(timezone_name)).date()
    wanted = [int(c) for c in params.get("course_ids") or []]
    courses = scope_courses(
        canvas, course_ids=wanted, term_refs=term_refs, today=today, timezone_name=timezone_name
    )
    course_ids = sorted({int(c["id"]) for c in courses})
    periods = aspen.list_grading_periods()
    n = shards_for(len(course_ids), max_shards=shard_count, courses_per_shard=courses_per_shard)
    shards = [course_ids[k::n] for k in range(n)]
    storage.private_run_dir(run_dir)  # stage files hold SIS ids and scores: owner-only (local paths)
    storage.write_json(
        run_dir / "plan.json",
        {
            "params": params,
            "course_ids": course_ids,
            "shards": shards,
            "grading_periods": periods,
            "courses": {str(int(c["id"])): c for c in courses},  # extract needs no GET /courses/{id}
            "started_at": datetime.now(timezone.utc).isoformat(),  # verify reads back what changed since
        },
    )
    log.info("plan: %d courses in %d shards, %d Aspen grading periods", len(course_ids), n, len(periods))
    return [{"shard": k, "courses": len(s)} for k, s in enumerate(shards)]


def _plan(run_dir: Any) -> dict[str, Any]:
    return storage.read_json(run_dir / "plan.json")


# ---------------------------------------------------------------------------- extract


def _enrollment_ids(e: dict[str, Any]) -> dict[str, Any]:
    """Only the ids of an enrollment: Canvas also sends the student's name, which must not
    land in stage files (FERPA: keep no more student data than the passback needs)."""
    return {
        "user_id": e.get("user_id"),
        "course_section_id": e.get("course_section_id"),
        "sis_user_id": rows.student_sis_id(e),
    }


SUBMISSION_FIELDS = (
    "assignment_id",
    "user_id",
    "score",
    "grade",
    "excused",
    "missing",
    "late",
    "late_policy_status",
    "graded_at",
    "posted_at",
)
"""What the rows (R4, R6, R7, R20) read of a submission. Canvas sends some twenty fields more, among
them the student's own work (``body``, ``url``, ``attachments``); stage files keep none of it,
and half the size of ``canvas.json`` goes with them."""


def _submission_fields(sub: Any) -> Any:
    """A submission with only :data:`SUBMISSION_FIELDS` (a field Canvas left out stays out);
    anything but an object is kept as it came, for ``rows.check_bundle`` to name."""
    return {k: sub[k] for k in SUBMISSION_FIELDS if k in sub} if isinstance(sub, dict) else sub


MAX_ASSIGNMENT_FILTER = 200  # more sendable assignments than this: list every submission (URL length)


def _sendable_ids(groups: Any) -> list[int] | None:
    """The ids of the sendable assignments (R1) to filter the submissions listing by; None
    (no filter) when the answer is not plain enough to be sure of them, or they are too many."""
    try:
        ids_ = sorted({a["id"] for g in groups for a in g.get("assignments") or [] if rules.is_sendable(a)})
    except (AttributeError, KeyError, TypeError):
        return None
    if len(ids_) > MAX_ASSIGNMENT_FILTER or not all(type(i) is int for i in ids_):
        return None
    return ids_


def _no_sis_section(sections: Any) -> bool:
    try:
        return not any(rows.sis_id(s.get("sis_section_id")) for s in sections)
    except (AttributeError, TypeError):
        return False  # read the rest; extract decides on the whole answer


def _teachers(canvas: CanvasApi, course_id: int) -> list[dict[str, Any]] | None:
    """The course's teachers (id, name, email) for the teacher digest, or None when Canvas would
    not list them: the passback of the course goes on, and the report lists the course for the
    data team (no teacher can be told). Names and emails never go to the log."""
    try:
        return [
            {"id": t.get("id"), "name": t.get("name"), "email": t.get("email")}
            for t in canvas.list_teachers(course_id)
        ]
    except ApiError as exc:  # the grades do not depend on it
        log.warning(
            "extract: course %s: teachers not readable (%s); no teacher digest for it",
            course_id,
            _error_text(exc),
        )
        return None


def _student_enrollments(canvas: CanvasApi, course_id: int, course: Any) -> list[dict[str, Any]]:
    """The students whose grades count: active enrollments; in a concluded course (named in
    ``course_ids``, R19) every student's enrollment is ``completed``, and those count."""
    concluded = isinstance(course, dict) and course.get("workflow_state") == "completed"
    if concluded:
        return canvas.list_student_enrollments(course_id, states=("active", "completed"))
    return canvas.list_student_enrollments(course_id)


def _course_bundle(canvas: CanvasApi, course_id: int, course: dict[str, Any] | None = None) -> dict[str, Any]:
    """The Canvas answers of one course, in as few requests as they allow: the course comes
    from the plan (the course list has the same fields), a course without any SIS section
    needs nothing more, and only the submissions of sendable assignments (R1) are listed
    (the others are never sent; R10's deletions come from the assignment groups)."""
    sections = canvas.list_sections(course_id)
    bundle = {
        "course": course if course is not None else canvas.get_course(course_id),
        "sections": sections,
        "enrollments": [],
        "assignment_groups": [],
        "submissions": [],
    }
    if _no_sis_section(sections):
        return bundle  # extract skips it
    bundle["teachers"] = _teachers(canvas, course_id)
    bundle["enrollments"] = [
        _enrollment_ids(e) for e in _student_enrollments(canvas, course_id, bundle["course"])
    ]
    bundle["assignment_groups"] = groups = canvas.list_assignment_groups(course_id)
    sendable = _sendable_ids(groups)
    if sendable != []:
        bundle["submissions"] = [
            _submission_fields(s) for s in canvas.list_submissions(course_id, assignment_ids=sendable)
        ]
    return bundle


def write_canvas_answers(sd: Any, bundles: list[dict[str, Any]]) -> None:
    """extract's output: ``canvas.json`` (every answer) for validate, ``courses.json``, each
    course without its enrollments, submissions and teachers, which is all deltas (R10) and post
    (the class guard) read (parsing a shard's whole canvas.json cost each of them seconds), and
    ``teachers.json`` (course -> its teachers) for the report and the teacher digest."""
    storage.write_json(sd / "canvas.json", bundles)
    storage.write_json(
        sd / "courses.json",
        [
            {k: v for k, v in b.items() if k not in ("enrollments", "submissions", "teachers")}
            for b in bundles
        ],
    )
    storage.write_json(
        sd / "teachers.json",
        {str(b["course"]["id"]): b.get("teachers") for b in bundles if isinstance(b.get("course"), dict)},
    )


def extract(
    canvas: CanvasApi,
    run_dir: Any,
    shard: int,
    *,
    ledger=None,
    run_id: str | None = None,
    lease: timedelta | None = None,
) -> dict[str, Any]:
    """Canvas groups, assignments, overrides, enrollments and grades of the shard's courses.
    With ``ledger``/``run_id``/``lease`` (not in a dry run) the courses are leased first: a
    course another run holds is read all the same (its grades are counted) but fails."""
    plan_doc = _plan(run_dir)
    course_ids = plan_doc["shards"][shard]
    busy = {} if plan_doc["params"].get("dry_run") else _lease(ledger, run_id, lease, course_ids)
    known = plan_doc.get("courses") or {}
    answers = _each(
        canvas,
        lambda c: _course_bundle(canvas, c, known.get(str(c))),
        course_ids,
        f"extract shard {shard}: courses",
    )
    answers = [_checked(a) for a in answers]  # a malformed answer fails its course here, not the shard later
    bundles, failures = [], {}
    for course_id, answer in zip(course_ids, answers, strict=True):
        if isinstance(answer, BaseException):
            failures[str(course_id)] = _error_text(answer)
            log.warning("extract: course %s failed: %s", course_id, failures[str(course_id)])
        elif not any(rows.sis_id(s.get("sis_section_id")) for s in answer["sections"]):
            log.info("extract: course %s has no SIS section; skipped", course_id)
        else:
            bundles.append(answer)
    bundled = {str(b["course"]["id"]) for b in bundles}
    busy = {c: why for c, why in busy.items() if c in bundled}
    failures.update(busy)
    sd = _shard_dir(run_dir, shard)
    storage.write_json(sd / "busy-courses.json", busy)
    write_canvas_answers(sd, bundles)
    storage.write_json(sd / "failed-courses.json", failures)
    subs = sum(len(b["submissions"]) for b in bundles)
    log.info(
        "extract shard %d: %d courses, %d submissions, %d courses failed",
        shard,
        len(bundles),
        subs,
        len(failures),
    )
    return {"shard": shard, "courses": len(bundles), "submissions": subs, "failed_courses": len(failures)}


# ---------------------------------------------------------------------------- validate


def _gate(frame: pd.DataFrame, suites: list[str], run_name: str, docs_dir: Any | None):
    from canvas_aspen import report as report_mod
    from canvas_aspen import validation  # GX is heavy: imported only where it runs

    if docs_dir is None:
        return validation.run_gate(frame, suites, run_name=run_name, data_docs_dir=docs_dir)
    report_mod.private_dir(
        Path(docs_dir).parent.parent
    )  # the run's report folder: owner only, before GX writes
    try:
        return validation.run_gate(frame, suites, run_name=run_name, data_docs_dir=docs_dir)
    finally:
        report_mod.restrict(Path(docs_dir))


def _hold(df: pd.DataFrame, held: dict[int, list[str]]) -> None:
    """Rows the gate flagged -> held_back (empty and failed rows keep their bucket)."""
    mask = df["row_id"].isin(list(held)) & df["bucket"].eq(Bucket.ELIGIBLE)
    df.loc[mask, "bucket"] = Bucket.HELD_BACK
    df.loc[df["row_id"].isin(list(held)), "held_kinds"] = df["row_id"].map(
        lambda r: ",".join(sorted(held.get(r, [])))
    )


def validate(run_dir: Any, shard: int, *, timezone_name: str, docs_dir: Any | None = None) -> dict[str, Any]:
    """Build the rows frame and run the grades and assignments suites (R4, R5, R15, R16) on the
    grades that may go (not the empty ones, R7, nor those hidden from students, R20)."""
    sd = _shard_dir(run_dir, shard)
    periods = [rules.GradingPeriod.from_oneroster(p) for p in _plan(run_dir)["grading_periods"]]
    df = rows.build_rows(storage.read_json(sd / "canvas.json"), periods, timezone_name)
    df["error"] = None
    df["held_kinds"] = None
    graded = df[df["bucket"].eq(Bucket.ELIGIBLE)]
    result = _gate(graded, ["grades", "assignments"], f"{run_dir.name}-shard{shard}-validate", docs_dir)
    _hold(df, result.held_back)
    storage.write_frame(sd / "rows.parquet", df)
    storage.write_json(sd / "findings-validate.json", result.findings + rules.hidden_findings(df))
    counts = df["bucket"].value_counts().to_dict()
    log.info(
        "validate shard %d: %d grades, buckets %s, findings %s",
        shard,
        len(df),
        counts,
        dict(Counter(f["kind"] for f in result.findings)),
    )
    return {"shard": shard, "rows": len(df), "buckets": counts, "findings": len(result.findings)}


# ---------------------------------------------------------------------------- match


def match_stage(
    aspen: AspenApi,
    run_dir: Any,
    shard: int,
    *,
    mappings: dict[str, dict[str, str]],
    docs_dir: Any | None = None,
    student_id_field: str | None = None,
) -> dict[str, Any]:
    """R2: categories of every Aspen class of the shard; rosters (R16, R22: keyed by the Aspen
    connection's ``student_id_field`` unless given); the match and advice suites (R2, R13,
    R14, R22)."""
    field = student_id_field or aspen.student_id_field
    sd = _shard_dir(run_dir, shard)
    df = storage.read_frame(sd / "rows.parquet")
    classes = sorted(df["aspen_class_id"].dropna().unique().tolist())
    answers = _each(
        aspen,
        lambda c: (match.active_categories(aspen.list_categories(c)), aspen.list_students(c)),
        classes,
        f"match shard {shard}: Aspen classes",
    )
    categories, rosters = {}, {}
    for class_id, answer in zip(classes, answers, strict=True):
        if isinstance(answer, ApiError) and answer.status == 404:
            _fail_missing_class(df, sd, class_id, answer)
        elif isinstance(answer, BaseException):
            _fail_class(df, sd, class_id, (*GRADEABLE, Bucket.FAILED), answer)
        else:
            categories[class_id] = answer[0]
            rosters[class_id] = students.roster(answer[1], field)

    table = match.match_table(df, categories, mappings)
    df = match.apply_matches(df, table, rosters)
    gradeable = df[df["bucket"].isin(GRADEABLE)]
    result = _gate(gradeable, ["match"], f"{run_dir.name}-shard{shard}-match", docs_dir)
    _hold(df, result.held_back)
    advice = _gate(
        match.groups_frame(gradeable),
        ["advice"],
        f"{run_dir.name}-shard{shard}-advice",
        docs_dir.with_name(docs_dir.name + "-advice") if docs_dir else None,
    )

    storage.write_frame(sd / "rows.parquet", df)
    storage.write_json(sd / "findings-match.json", result.findings + advice.findings)
    counts = df["bucket"].value_counts().to_dict()
    log.info(
        "match shard %d: %d classes, kinds %s, students by %s: %d ambiguous, buckets %s",
        shard,
        len(classes),
        dict(Counter(table["match_kind"])),
        field,
        int(df["roster_ambiguous"].sum()),
        counts,
    )
    return {"shard": shard, "classes": len(classes), "buckets": counts}


# ---------------------------------------------------------------------------- deltas


def _line_items_desired(eligible: pd.DataFrame, titles: dict[str, str] | None = None) -> pd.DataFrame:
    """One line item body per line item of the eligible rows; ``titles`` (R21) where given."""
    firsts = eligible.drop_duplicates("line_item_id")
    titles = titles or {}
    bodies = [
        oneroster.line_item_body(r, titles.get(r["line_item_id"]))
        for r in firsts[list(oneroster.LINE_ITEM_FIELDS)].to_dict("records")
    ]
    return pd.DataFrame(
        {
            "line_item_id": firsts["line_item_id"].to_numpy(),
            "aspen_class_id": firsts["aspen_class_id"].to_numpy(),
            "canvas_course_id": firsts["canvas_course_id"].to_numpy(),
            "assignment_id": firsts["assignment_id"].to_numpy(),
            "body": bodies,
            "payload_hash": [deltas.payload_hash(b) for b in bodies],
        }
    )


def _aspen_results_frame(results: list[dict[str, Any]]) -> pd.DataFrame:
    return pd.DataFrame(
        [(r.get("sourcedId"), *oneroster.result_value(r), r.get("status")) for r in results],
        columns=["result_id", "score_status", "score", "status"],
    )


def deltas_stage(
    aspen: AspenApi,
    ledger,
    run_dir: Any,
    shard: int,
    *,
    full_resync: bool,
    column_code_length: int | None = None,
) -> dict[str, Any]:
    """R8, R9, R7 (cleared), R10: what Aspen holds now and what we posted before, against
    what Canvas says; only the difference is posted. R21: line item titles unique in each
    class's gradebook column codes (the Aspen connection's ``column_code_length`` unless given)."""
    length = aspen.column_code_length if column_code_length is None else column_code_length
    sd = _shard_dir(run_dir, shard)
    df = storage.read_frame(sd / "rows.parquet")
    bundles = storage.read_json(sd / "courses.json")
    busy = storage.read_json(sd / "busy-courses.json", default={})
    for course, why in busy.items():  # leased by another live run: nothing of it goes
        _fail_rows(df, df["canvas_course_id"].eq(int(course)) & df["bucket"].eq(Bucket.ELIGIBLE), why)
    bundles = [b for b in bundles if str(b["course"]["id"]) not in busy]  # R10 not judged there
    classes = sorted(df["aspen_class_id"].dropna().unique().tolist())
    missing = set(
        storage.read_json(sd / "missing-classes.json", default=[])
    )  # Aspen has no such class: not read again
    live = sorted(set(df.loc[df["bucket"].ne(Bucket.FAILED), "aspen_class_id"].dropna()) - missing)
    with ThreadPoolExecutor(max_workers=1) as reader:  # the ledger is read while Aspen answers
        posted_later = reader.submit(ledger.posted_results, classes)
        answers = _each(
            aspen,
            lambda c: (aspen.list_line_items(c), aspen.list_results(c)),
            live,
            f"deltas shard {shard}: Aspen classes",
        )
        posted = posted_later.result()
    aspen_items, aspen_results = [], []
    for class_id, answer in zip(live, answers, strict=True):
        if isinstance(answer, BaseException):
            _fail_class(df, sd, class_id, GRADEABLE, answer)
            continue
        aspen_items += [{**li, "_class": class_id} for li in answer[0]]
        aspen_results += answer[1]

    aspen_now = _aspen_results_frame(aspen_results)
    eligible = df[df["bucket"].eq(Bucket.ELIGIBLE)]
    decided = deltas.result_actions(eligible, posted, aspen_now, full_resync=full_resync)
    actions = decided.actions[["row_id", "result_id", "action", "reason"]].assign(
        adopt=decided.actions.index.isin(decided.adopt.index)
    )
    findings = decided.findings + deltas.cleared_findings(df[df["bucket"].eq(Bucket.EMPTY)], posted)
    findings += deltas.hidden_after_posting_findings(df[df["bucket"].eq(Bucket.HIDDEN)], posted)

    items_now = pd.DataFrame(
        {
            "line_item_id": [li.get("sourcedId") for li in aspen_items],
            "aspen_class_id": [li["_class"] for li in aspen_items],
            "title": [li.get("title") for li in aspen_items],
            "status": [li.get("status") for li in aspen_items],
        }
    )
    taking_part = column_codes.participants(df[df["bucket"].ne(Bucket.FAILED)], oneroster.line_item_title)
    titles = column_codes.unique_titles(taking_part, items_now, length)
    desired = _line_items_desired(eligible, titles.titles)
    sent = (
        taking_part[taking_part["line_item_id"].isin(desired["line_item_id"])]
        .merge(desired[["line_item_id", "canvas_course_id"]], on="line_item_id")
        .merge(eligible.drop_duplicates("line_item_id")[["line_item_id", "group_name"]], on="line_item_id")
    )
    findings += column_codes.collision_findings(sent, titles, length)
    li_actions = deltas.line_item_actions(
        desired, ledger.posted_line_items(classes), items_now, full_resync=full_resync
    )
    assignment_ids = {
        int(b["course"]["id"]): {
            int(a["id"]) for g in b["assignment_groups"] for a in g.get("assignments") or []
        }
        for b in bundles
    }
    class_to_course = (
        df.dropna(subset=["aspen_class_id"])
        .drop_duplicates("aspen_class_id")
        .set_index("aspen_class_id")["canvas_course_id"]
        .to_dict()
    )
    orphaned = deltas.orphans(items_now, assignment_ids, class_to_course)
    findings += orphaned.findings
    orphan_ids = orphaned.line_item_ids

    storage.write_frame(sd / "rows.parquet", df)
    storage.write_frame(sd / "actions.parquet", actions)
    li_actions = li_actions.assign(body=li_actions["body"].map(json.dumps))
    storage.write_frame(sd / "line-items.parquet", li_actions)
    storage.write_json(sd / "orphans.json", orphan_ids)
    storage.write_json(sd / "findings-deltas.json", findings)
    todo = Counter(actions["action"]) if len(actions) else Counter()
    log.info(
        "deltas shard %d: results %s, line items to post %d, orphans %d",
        shard,
        dict(todo),
        int((li_actions["action"] == "post").sum()),
        len(orphan_ids),
    )
    return {
        "shard": shard,
        "post": todo.get("post", 0),
        "unchanged": todo.get("unchanged", 0),
        "orphans": len(orphan_ids),
    }


# ---------------------------------------------------------------------------- post


def _section_classes(bundles: list[dict[str, Any]]) -> dict[int, tuple[str | None, int]]:
    """Canvas section -> (its SIS id = its Aspen class, its Canvas course), as extract read
    them from Canvas in this run: the only classes this run may write to."""
    return {
        int(s["id"]): (rows.sis_id(s.get("sis_section_id")), int(b["course"]["id"]))
        for b in bundles
        for s in b.get("sections") or []
    }


def _unresolved_writes(
    li_post: pd.DataFrame,
    to_post: pd.DataFrame,
    orphan_ids: list[str],
    sections: dict[int, tuple[str | None, int]],
) -> str | None:
    """The class guard: why some write would touch an Aspen class this run did not resolve from a
    Canvas section's SIS id (None when every write is fine). A line item's id names its Canvas
    section; that section's SIS id must be the class its body, its row and its results name.
    Aspen does not scope a client to classes: this is what keeps a tampered or buggy stage
    file from writing into any other class of the district."""

    def target(li_id: Any) -> str | None:
        parsed = ids.parse_line_item_id(str(li_id))
        return sections.get(parsed[1], (None, 0))[0] if parsed else None

    where = {
        li_id: target(li_id) for li_id in {*li_post["line_item_id"], *to_post["line_item_id"], *orphan_ids}
    }
    body_class = li_post["body"].map(
        lambda b: str(((json.loads(b) or {}).get("class") or {}).get("sourcedId"))
    )
    bad = [
        f"line item {i} -> class {c!r}"
        for i, c, b in zip(li_post["line_item_id"], li_post["aspen_class_id"], body_class, strict=True)
        if where[i] is None or where[i] != c or b != c
    ]
    bad += [
        f"result {r} -> class {c!r}"
        for r, i, c in zip(
            to_post["result_id"], to_post["line_item_id"], to_post["aspen_class_id"], strict=True
        )
        if where[i] is None or where[i] != c or not str(r).startswith(f"{i}-u")
    ]
    bad += [f"orphan deletion {i}" for i in orphan_ids if where[i] is None]
    if not bad:
        return None
    return (
        f"refused to post this shard: {len(bad)} write(s) name an Aspen class this run did not resolve "
        f"from a Canvas section's SIS id (stage files altered?), e.g. {'; '.join(bad[:3])}"
    )


def post(
    aspen: AspenApi,
    ledger,
    run_dir: Any,
    shard: int,
    *,
    run_id: str,
    dry_run: bool,
    delete_orphans: bool,
    now: datetime | None = None,
    chunk: int = 2000,
    lease: timedelta | None = None,
) -> dict[str, Any]:
    """PUT the changed line items, then the changed results; record each accepted value in
    the ledger as soon as its chunk is done (a crash loses no record of what Aspen took).

    Before any write: the shard's courses are leased again (``lease``; a course
    another live run took meanwhile is not written and its grades fail), and every write
    must go to a class resolved from a Canvas section in this run, else nothing of the shard
    is written. The leases are given back at the end."""
    now = now or datetime.now(timezone.utc)
    sd = _shard_dir(run_dir, shard)
    df = storage.read_frame(sd / "rows.parquet").set_index("row_id", drop=False)
    df[REFUSED] = False  # set for the grades Aspen itself did not accept (the report says so)
    actions = storage.read_frame(sd / "actions.parquet").set_index("row_id")
    li = storage.read_frame(sd / "line-items.parquet")
    findings: list[dict[str, Any]] = []

    act = actions["action"].reindex(df.index)
    df.loc[act.eq(deltas.UNCHANGED), "bucket"] = Bucket.UNCHANGED
    to_post = df[act.eq(deltas.POST) & df["bucket"].eq(Bucket.ELIGIBLE)]

    if dry_run:
        df.loc[to_post.index, "bucket"] = Bucket.POSTED
        log.info(
            "post shard %d: dry run, would post %d line items and %d results",
            shard,
            int(li["action"].eq("post").sum()),
            len(to_post),
        )
        return _finish_post(sd, df, findings, shard, dry_run=True)

    shard_courses = [int(c) for c in _plan(run_dir)["shards"][shard]]
    busy_before = storage.read_json(sd / "busy-courses.json", default={})
    busy = _lease(ledger, run_id, lease, [c for c in shard_courses if str(c) not in busy_before])
    for course, why in busy.items():
        _fail_rows(df, df.index.isin(to_post.index) & df["canvas_course_id"].eq(int(course)), why)
    _add_course_errors(sd, busy)
    to_post = to_post[~to_post["canvas_course_id"].astype(str).isin(list(busy))]
    li = li[~li["canvas_course_id"].astype(str).isin(list(busy))]
    sections = _section_classes(storage.read_json(sd / "courses.json"))
    orphan_ids = [
        i
        for i in storage.read_json(sd / "orphans.json", default=[])
        if not ((p := ids.parse_line_item_id(str(i))) and str(sections.get(p[1], (None, 0))[1]) in busy)
    ]
    refused = _unresolved_writes(
        li[li["action"].eq("post")], to_post, orphan_ids if delete_orphans else [], sections
    )
    if refused:
        log.error("post shard %d: %s", shard, refused)
        _fail_rows(df, df.index.isin(to_post.index), refused)
        _add_course_errors(sd, {str(c): refused for c in shard_courses})
        return _finish_post(sd, df, findings, shard, dry_run=False)

    # line items first: a result needs its line item
    li_post = li[li["action"].eq("post")]
    outcomes = _each(
        aspen,
        lambda r: aspen.put_line_item(r["line_item_id"], json.loads(r["body"])),
        li_post.to_dict("records"),
        f"post shard {shard}: line items",
    )
    bad_items: dict[str, str] = {}
    good = []
    for r, out in zip(li_post.to_dict("records"), outcomes, strict=True):
        if isinstance(out, BaseException):
            bad_items[r["line_item_id"]] = _error_text(out)
            findings.append(
                finding(
                    "aspen_rejected",
                    f"Aspen rejected line item {r['line_item_id']}: {_error_text(out)}",
                    canvas_course_id=int(r["canvas_course_id"]),
                    aspen_class_id=r["aspen_class_id"],
                    assignment_id=int(r["assignment_id"]),
                )
            )
        else:
            good.append(r)
    if good:
        ledger.record_posted_line_items(
            pd.DataFrame(good).drop(columns=["body", "action"], errors="ignore"), run_id=run_id, posted_at=now
        )

    blocked = to_post["line_item_id"].isin(list(bad_items))
    for rid, li_id in to_post.loc[blocked, "line_item_id"].items():
        df.loc[rid, ["bucket", "error"]] = [Bucket.FAILED, f"line item not accepted: {bad_items[li_id]}"]
    df.loc[to_post.index[blocked.to_numpy()], REFUSED] = True
    results = to_post[~blocked]
    progress = Progress(f"post shard {shard}: results", len(results), aspen)
    for start in range(0, len(results), chunk):
        part = results.iloc[start : start + chunk]
        records = part.to_dict("records")
        outs = aspen.map_concurrent(
            lambda r: aspen.put_result(r["result_id"], oneroster.result_body(r, now)),
            records,
            on_error="collect",
        )
        accepted = []
        for r, out in zip(records, outs, strict=True):
            if isinstance(out, BaseException):
                df.loc[r["row_id"], ["bucket", "error"]] = [Bucket.FAILED, _error_text(out)]
                df.loc[r["row_id"], REFUSED] = True
                findings.append(
                    finding(
                        "aspen_rejected",
                        f"Aspen rejected the result: {_error_text(out)}",
                        canvas_course_id=int(r["canvas_course_id"]),
                        aspen_class_id=r["aspen_class_id"],
                        assignment_id=int(r["assignment_id"]),
                        assignment_name=r["assignment_name"],
                        group_name=r["group_name"],
                        student_sis_id=r["student_sis_id"],
                        value=r["score_raw"],
                    )
                )
            else:
                accepted.append(r["row_id"])
        if accepted:
            ledger.record_posted_results(df.loc[accepted], run_id=run_id, posted_at=now)
            df.loc[accepted, "bucket"] = Bucket.POSTED
        progress.step(len(records))

    adopt = actions.index[actions["adopt"]]
    adopt = adopt[~df.loc[adopt, "canvas_course_id"].astype(str).isin(list(busy)).to_numpy()]
    if len(adopt):  # Aspen already holds the Canvas value: the ledger now says so too
        ledger.record_posted_results(df.loc[adopt], run_id=run_id, posted_at=now)

    if delete_orphans and orphan_ids:
        outs = _each(aspen, aspen.delete_line_item, orphan_ids, f"post shard {shard}: orphan deletions")
        deleted = [i for i, o in zip(orphan_ids, outs, strict=True) if not isinstance(o, BaseException)]
        findings += [
            finding("aspen_rejected", f"could not delete orphaned line item {i}: {_error_text(o)}", value=i)
            for i, o in zip(orphan_ids, outs, strict=True)
            if isinstance(o, BaseException)
        ]
        ledger.mark_line_items_deleted(deleted, run_id=run_id, at=now)
        log.info("post shard %d: deleted %d of %d orphaned line items", shard, len(deleted), len(orphan_ids))
    if lease is not None and run_id:
        ledger.release_courses(run_id, shard_courses)  # verify only reads; report releases the rest
    return _finish_post(sd, df, findings, shard, dry_run=False)


def _finish_post(sd: Any, df: pd.DataFrame, findings: list, shard: int, *, dry_run: bool) -> dict[str, Any]:
    storage.write_frame(sd / "final.parquet", df.reset_index(drop=True))
    storage.write_json(sd / "findings-post.json", findings)
    counts = df["bucket"].value_counts().to_dict()
    log.info("post shard %d: buckets %s%s", shard, counts, " (dry run)" if dry_run else "")
    return {"shard": shard, "buckets": counts}


# ---------------------------------------------------------------------------- verify

READ_BACK_MARGIN = timedelta(minutes=15)  # clock skew between this worker and Aspen


def _read_back_since(run_dir: Any) -> str | None:
    """Results Aspen modified after this instant hold everything this run posted: the plan's
    start, less a margin for clock skew (None for a plan without it)."""
    started = _plan(run_dir).get("started_at")
    if not started:
        return None
    return (
        (datetime.fromisoformat(started) - READ_BACK_MARGIN)
        .astimezone(timezone.utc)
        .strftime("%Y-%m-%dT%H:%M:%S.000Z")
    )


def _read_back(
    aspen: AspenApi, classes: list[str], posted: pd.DataFrame, since: str | None, shard: int
) -> list:
    """Each class's results as verify needs them: only those modified since the run began
    (one page for a night's changes instead of the whole class), and the whole class where
    that answer lacks any result this run posted (a lost write, clock skew, a filter the
    server rejects): what verify compares is then exactly what a full read gives."""
    what = f"verify shard {shard}: Aspen classes"
    if since is None:
        return _each(aspen, aspen.list_results, classes, what)

    def recent(class_id: str):
        try:
            return aspen.list_results(class_id, modified_since=since)
        except ApiError as exc:
            if exc.status in (400, 422):
                return None  # the filter is refused here: read the class in full
            raise

    answers = _each(aspen, recent, classes, what)
    wanted = posted.groupby("aspen_class_id")["result_id"].agg(set).to_dict()
    again = [
        k
        for k, (class_id, answer) in enumerate(zip(classes, answers, strict=True))
        if answer is None
        or (
            not isinstance(answer, BaseException)
            and wanted.get(class_id, set()) - {r.get("sourcedId") for r in answer}
        )
    ]
    if again:
        log.info("verify shard %d: %d of %d classes read back in full", shard, len(again), len(classes))
        for k, answer in zip(
            again, _each(aspen, aspen.list_results, [classes[k] for k in again], what), strict=True
        ):
            answers[k] = answer
    return answers


def verify(aspen: AspenApi, run_dir: Any, shard: int, *, dry_run: bool) -> dict[str, Any]:
    """R18: read back every class we posted to; any difference is a verify_mismatch."""
    sd = _shard_dir(run_dir, shard)
    df = storage.read_frame(sd / "final.parquet")
    posted = df[df["bucket"].eq(Bucket.POSTED)]
    if dry_run or posted.empty:
        storage.write_json(sd / "verify.json", {"checked": 0, "mismatched": 0, "findings": []})
        return {"shard": shard, "checked": 0, "mismatched": 0}
    classes = sorted(posted["aspen_class_id"].unique().tolist())
    answers = _read_back(aspen, classes, posted, _read_back_since(run_dir), shard)
    findings, results = [], []
    for class_id, answer in zip(classes, answers, strict=True):
        if isinstance(answer, BaseException):
            findings.append(
                finding(
                    "verify_mismatch",
                    f"could not read back class {class_id}: {_error_text(answer)}",
                    aspen_class_id=class_id,
                )
            )
        else:
            results += answer
    readable = posted[~posted["aspen_class_id"].isin([f["aspen_class_id"] for f in findings])]
    aspen_now = _aspen_results_frame(results)
    differs = readable[~deltas.aspen_holds(readable, aspen_now)]
    now_by_id = aspen_now.drop_duplicates("result_id").set_index("result_id")
    for r in differs.to_dict("records"):
        held = now_by_id.loc[r["result_id"]] if r["result_id"] in now_by_id.index else None
        findings.append(
            finding(
                "verify_mismatch",
                "Aspen does not hold the value that was posted"
                if held is not None
                else "the posted result is missing in Aspen",
                canvas_course_id=int(r["canvas_course_id"]),
                aspen_class_id=r["aspen_class_id"],
                assignment_id=int(r["assignment_id"]),
                assignment_name=r["assignment_name"],
                student_sis_id=r["student_sis_id"],
                value=None if held is None else f"{held['score']} ({held['score_status']})",
                limit=f"{r['score']} ({r['score_status']})",
            )
        )
    out = {"checked": len(posted), "mismatched": len(findings), "findings": findings}
    storage.write_json(sd / "verify.json", out)
    log.info("verify shard %d: %d results read back, %d mismatches", shard, len(posted), len(findings))
    return {"shard": shard, "checked": len(posted), "mismatched": len(findings)}


# ---------------------------------------------------------------------------- report

_STAGE_FINDINGS = ("validate", "match", "deltas", "post")


REFUSED = "aspen_refused"
"""A rows column: True where Aspen answered the PUT of this grade (or its line item) with a refusal."""

REPORT_COLUMNS = [
    "bucket",
    "canvas_course_id",
    "sis_course_id",
    "aspen_class_id",
    "match_kind",
    "group_id",
    "group_name",
    "group_weight",
    "aspen_categories",
    "category_suggestion",
    "error",
    REFUSED,
]
"""What the report (R17) and the setup sheet read of a shard's rows."""


def record_stage_error(run_dir: Any, shard: int, stage: str, exc: BaseException) -> None:
    """A shard's stage failed: which one and why, for the report's course errors (the
    shard's grades that it had not settled count as failed, described by this)."""
    storage.write_json(
        _shard_dir(run_dir, shard) / "stage-error.json", {"stage": stage, "error": _error_text(exc)}
    )


def _stage_error_text(sd: Any) -> str | None:
    path = sd / "stage-error.json"
    if not path.exists():
        return None
    doc = storage.read_json(path)
    return f"{doc.get('stage')} did not finish: {doc.get('error')}"


def _shard_outcome(run_dir: Any, shard: int, course_ids: list[int]) -> tuple[pd.DataFrame, dict, list, dict]:
    """Final rows, failed courses, findings and verify of one shard, however far it got:
    if a stage crashed, every grade it had not settled counts as failed."""
    sd = _shard_dir(run_dir, shard)
    failed = (
        storage.read_json(sd / "failed-courses.json", default={})
        if (sd / "failed-courses.json").exists()
        else None
    )
    if failed is None:
        return (
            pd.DataFrame(columns=["bucket"]),
            {str(c): "extract did not run or crashed" for c in course_ids},
            [],
            {},
        )
    frame = next((sd / n for n in ("final.parquet", "rows.parquet") if (sd / n).exists()), None)
    df = storage.read_frame(frame, REPORT_COLUMNS) if frame is not None else pd.DataFrame(columns=["bucket"])
    if frame is None or frame.name != "final.parquet":
        why = _stage_error_text(sd)
        _fail_rows(
            df,
            df["bucket"].eq(Bucket.ELIGIBLE),
            f"not posted: {why}" if why else "the run stopped before these grades were posted",
        )
        for c in set(course_ids) - {int(b) for b in failed}:
            failed.setdefault(str(c), why or "a stage of this shard did not finish")
    findings = []
    for stage in _STAGE_FINDINGS:
        path = sd / f"findings-{stage}.json"
        if path.exists():
            findings += storage.read_json(path)
    verify_out = storage.read_json(sd / "verify.json") if (sd / "verify.json").exists() else {}
    findings += verify_out.get("findings", [])
    return df, failed, findings, verify_out


def report_stage(ledger, run_dir: Any, reports_dir: Any, *, run_id: str, started_at: str) -> dict[str, Any]:
    """Gather every shard into report.json, store findings and totals in the ledger, and
    say whether the run must fail."""
    from canvas_aspen import digest, report_html, setup_sheet
    from canvas_aspen import report as report_mod

    if not (run_dir / "plan.json").exists():  # the plan task failed: nothing was read or posted
        return _report_without_plan(ledger, reports_dir, run_id=run_id, started_at=started_at)
    plan_doc = _plan(run_dir)
    frames, failed, findings = [], {}, []
    verify_total = {"checked": 0, "mismatched": 0}
    for shard, course_ids in enumerate(plan_doc["shards"]):
        df, f, fnd, ver = _shard_outcome(run_dir, shard, course_ids)
        frames.append(df)
        failed.update(f)
        findings += fnd
        verify_total["checked"] += ver.get("checked", 0)
        verify_total["mismatched"] += ver.get("mismatched", 0)
    frames = [f for f in frames if len(f)]
    rows_all = (
        pd.concat(frames, ignore_index=True)
        if frames
        else pd.DataFrame(columns=["bucket", "canvas_course_id", "sis_course_id", "aspen_class_id"])
    )
    params = plan_doc["params"]
    doc = report_mod.build(
        run_id=run_id,
        dry_run=bool(params.get("dry_run")),
        params=params,
        started_at=started_at,
        finished_at=datetime.now(timezone.utc).isoformat(),
        rows=rows_all,
        failed_courses=failed,
        findings=findings,
        verify=verify_total,
    )
    doc["setup_sheet"] = sheet = setup_sheet.setup_sheet(rows_all)
    doc["courses_without_teacher_email"] = digest.courses_without_teacher_email(doc, course_teachers(run_dir))
    folder = report_folder(reports_dir, run_id)
    path = report_mod.write_json(folder, doc)
    report_html.write_docs_index(folder)
    html = report_html.write(folder, doc, sheet)
    report_mod.restrict(folder)  # report files (and the Data Docs GX wrote) owner-only
    reasons = report_mod.run_failed(doc)
    ledger.release_courses(run_id)  # whatever a failed shard still held (course leases)
    ledger.record_findings(run_id, doc["findings"], scope="report")
    ledger.finish_run(
        run_id,
        finished_at=datetime.now(timezone.utc),
        status="failed" if reasons else "success",
        totals=doc["totals"],
    )
    log.info("report: %s (for people: %s)", path, html)
    log.info("report: totals %s", doc["totals"])
    log.info("report: findings by kind %s", dict(Counter(f["kind"] for f in doc["findings"])))
    return {"report": str(path), "html": str(html), "totals": doc["totals"], "failed_reasons": reasons}


# ---------------------------------------------------------------------------- teacher digest


def course_teachers(run_dir: Any) -> dict[int, list[dict[str, Any]] | None]:
    """Each course extract read (with an SIS section), and its teachers as Canvas listed them
    (None: Canvas would not list them). A shard whose extract did not finish has none."""
    out: dict[int, list[dict[str, Any]] | None] = {}
    for shard in range(len(_plan(run_dir)["shards"])):
        path = _shard_dir(run_dir, shard) / "teachers.json"
        if path.exists():
            out.update({int(course): teachers for course, teachers in storage.read_json(path).items()})
    return out


DIGEST_FOLDER = "digests"


def _scrub(text: str) -> str:
    """An SMTP error without any address in it (a refused recipient is named in the error)."""
    import re

    return re.sub(r"[\w.+-]+@[\w-]+(\.[\w-]+)+", "<address>", text)[:500]


def digest_stage(
    ledger,
    run_dir: Any,
    reports_dir: Any,
    *,
    run_id: str,
    mode: str,
    resend_after: timedelta,
    mailer: Any = None,
    canvas_url: str | None = None,
    timezone_name: str | None = None,
    now: datetime | None = None,
) -> dict[str, Any]:
    """The teacher digests of a run, after its report: one per teacher whose actionable findings
    changed since the last digest sent to them, or whose last digest is older than
    ``resend_after`` (``digest.due``). ``mode``: ``off`` (nothing), ``preview`` (write each
    digest, .txt and .html, owner-only, into the run's report folder; send nothing) or
    ``send`` (also send it through ``mailer``, an object with ``send(to, subject, text,
    html)``). Never for a dry run. Every digest is claimed in the ledger before it is sent, so
    a rerun or a retried task never sends one twice; a failed send fails that teacher's digest
    only (recorded; the next run tries again). The report's HTML then lists the digests.
    Logs counts only: no teacher's name or address."""
    from canvas_aspen import digest, report_html
    from canvas_aspen import report as report_mod

    now = now or datetime.now(timezone.utc)
    folder = report_folder(reports_dir, run_id)
    counts: Counter = Counter()
    if mode == "off":
        log.info("digest: CANVAS_ASPEN_TEACHER_DIGEST=off, no teacher digest")
        return {"mode": mode, "counts": {}}
    if not (folder / "report.json").exists():
        log.warning(
            "digest: the run has no report.json (the report task did not write it): no teacher digest"
        )
        return {"mode": mode, "counts": {}, "skipped": "no report"}
    if not (run_dir / "plan.json").exists():
        log.info("digest: the run's plan failed (nothing was read): no teacher digest")
        return {"mode": mode, "counts": {}, "skipped": "plan failed"}
    doc = json.loads((folder / "report.json").read_text())
    if doc.get("dry_run"):
        log.info("digest: a dry run sends and writes no teacher digest")
        return {"mode": mode, "counts": {}, "skipped": "dry run"}
    if mode == "send" and mailer is None:
        raise ValueError("digest: mode send needs a mailer")
    course_info = {
        int(k): {"name": v.get("name"), "sis_course_id": v.get("sis_course_id")}
        for k, v in (_plan(run_dir).get("courses") or {}).items()
    }
    digests = digest.build_digests(
        doc,
        course_teachers(run_dir),
        course_info=course_info,
        canvas_url=canvas_url,
        timezone_name=timezone_name,
    )
    last = ledger.last_sent_digests([d.teacher_id for d in digests])
    out_dir = storage.private_dir(folder / DIGEST_FOLDER)
    listing = storage.read_json(out_dir / "index.json", default=[])  # a retried task's earlier attempt
    for d in digests:
        d.reason = digest.due(d, last.get(d.teacher_id), now=now, resend_after=resend_after)
        if d.reason is None:
            counts["unchanged"] += 1
            continue
        if not ledger.claim_digest(
            run_id,
            d.teacher_id,
            mode=mode,
            email=d.email,
            fingerprint=d.fingerprint,
            findings=d.actionable,
            course_ids=d.course_ids,
            reason=d.reason,
            now=now,
        ):
            counts["already_done"] += 1  # this run sent (or previewed) it before: never twice
            continue
        text, html = digest.render(d)
        stem = f"teacher-{d.teacher_id}"
        report_mod.write_private(out_dir, f"{stem}.txt", text)
        report_mod.write_private(out_dir, f"{stem}.html", html)
        entry = {
            "teacher_id": d.teacher_id,
            "name": d.name,
            "email": d.email,
            "mode": mode,
            "reason": d.reason,
            "findings": d.actionable,
            "information": d.info,
            "course_ids": d.course_ids,
            "subject": d.subject,
            "text": f"{stem}.txt",
            "html": f"{stem}.html",
            "status": None,
            "error": None,
        }
        if mode == "preview":
            ledger.finish_digest(run_id, d.teacher_id, mode=mode, status="previewed", at=now)
            entry["status"] = "previewed"
        else:
            try:
                mailer.send(d.email, d.subject, text, html)
            except Exception as exc:  # SMTP refused or unreachable: this teacher's digest only
                entry["status"], entry["error"] = "failed", _scrub(f"{type(exc).__name__}: {exc}")
                ledger.finish_digest(
                    run_id, d.teacher_id, mode=mode, status="failed", at=now, error=entry["error"]
                )
            else:
                entry["status"] = "sent"
                ledger.finish_digest(
                    run_id, d.teacher_id, mode=mode, status="sent", at=datetime.now(timezone.utc)
                )
        counts[entry["status"]] += 1
        listing = [e for e in listing if (e["teacher_id"], e["mode"]) != (d.teacher_id, mode)] + [entry]
        storage.write_json(out_dir / "index.json", listing)  # after each teacher: a crash loses no record
    report_html.write(folder, doc, doc.get("setup_sheet") or [], digests=listing, digest_mode=mode)
    report_mod.restrict(folder)
    log.info("digest (%s): %d teachers, %s", mode, len(digests), dict(sorted(counts.items())))
    return {"mode": mode, "teachers": len(digests), "counts": dict(counts)}


PLAN_FAILED = "plan-failed.json"


def write_plan_failure(
    reports_dir: Any,
    run_id: str,
    exc: BaseException,
    *,
    params: dict[str, Any] | None,
    started_at: str | None,
) -> None:
    """The plan task failed: its reason goes into the run's report folder at once, so the
    reports list shows the run and why, and ``report`` writes a report that says so."""
    from canvas_aspen import report as report_mod
    from canvas_aspen.run_params import ParamError

    reason = str(exc) if isinstance(exc, ParamError) else _error_text(exc)
    doc = {
        "reason": reason,
        "params": params or {},
        "started_at": started_at,
        "failed_at": datetime.now(timezone.utc).isoformat(),
    }
    report_mod.write_private(report_folder(reports_dir, run_id), PLAN_FAILED, json.dumps(doc, default=str))


def clear_plan_failure(reports_dir: Any, run_id: str) -> None:
    """A retried plan that succeeded: the earlier attempt's reason no longer holds."""
    (report_folder(reports_dir, run_id) / PLAN_FAILED).unlink(missing_ok=True)


def _report_without_plan(ledger, reports_dir: Any, *, run_id: str, started_at: str) -> dict[str, Any]:
    """The report of a run whose plan failed: no grade was read or posted; the reason is
    the plan's (or, when it left none, that it did not finish)."""
    from canvas_aspen import report as report_mod
    from canvas_aspen import report_html

    folder = report_folder(reports_dir, run_id)
    left = folder / PLAN_FAILED
    failure = storage.read_json(left) if left.exists() else {}
    reason = failure.get("reason") or "the plan task did not finish (its log names what failed)"
    params = failure.get("params") or {}
    doc = report_mod.build(
        run_id=run_id,
        dry_run=bool(params.get("dry_run")),
        params=params,
        started_at=started_at,
        finished_at=datetime.now(timezone.utc).isoformat(),
        rows=pd.DataFrame(columns=["bucket", "canvas_course_id", "sis_course_id", "aspen_class_id"]),
        failed_courses={},
        findings=[],
        verify={"checked": 0, "mismatched": 0},
        error=f"plan failed: {reason}",
    )
    path = report_mod.write_json(folder, doc)
    html = report_html.write(folder, doc, [])
    report_mod.restrict(folder)
    ledger.release_courses(run_id)
    try:
        ledger.finish_run(
            run_id, finished_at=datetime.now(timezone.utc), status="failed", totals=doc["totals"]
        )
    except LookupError:
        pass  # the plan failed before it recorded the run
    log.info("report: %s (for people: %s); the plan failed, nothing was read or posted", path, html)
    return {
        "report": str(path),
        "html": str(html),
        "totals": doc["totals"],
        "failed_reasons": doc["failed_reasons"],
    }
