"""R17: the run report. Every considered grade is in exactly one bucket, and the
buckets add up; the report is what the data team reviews every morning.

No student names: students appear by SIS id only.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pandas as pd

from canvas_aspen import storage
from canvas_aspen.buckets import FINAL, TOTAL_KEYS, Bucket
from canvas_aspen.findings import urgency
from canvas_aspen.storage import private_dir

BUCKETS: tuple[str, ...] = tuple(b.value for b in FINAL)
"""R17's six buckets (:data:`canvas_aspen.buckets.FINAL`) as the plain strings report.json holds;
``hidden`` (R20): graded in Canvas but hidden from the student by a manual posting policy, so not sent."""


def _only_known_buckets(seen: Any) -> None:
    unknown = set(seen) - set(BUCKETS)
    if unknown:  # a row that ended nowhere is a bug, never a silent loss
        raise ValueError(f"rows ended outside the R17 buckets: {sorted(unknown)}")


def bucket_counts(df: pd.DataFrame) -> dict[str, int]:
    """The grades considered and how many ended in each of R17's six buckets; ValueError when
    a row ended outside them or in none (an empty bucket): the buckets always add up."""
    counts = df["bucket"].value_counts() if len(df) else pd.Series(dtype=int)
    _only_known_buckets(counts.index)
    out = {"considered": int(len(df))}
    out.update({b: int(counts.get(b, 0)) for b in BUCKETS})
    nowhere = out["considered"] - sum(out[b] for b in BUCKETS)
    if nowhere:  # a real check, not an assert: it holds under python -O too
        raise ValueError(
            f"{nowhere} row(s) ended in no R17 bucket (bucket empty): the buckets must add up to "
            f"the {out['considered']} grades considered"
        )
    return out


def course_table(df: pd.DataFrame, failed_courses: dict[str, str]) -> list[dict[str, Any]]:
    """One line per course: its SIS id, its Aspen classes, its buckets (counted for all
    courses at once: one group at a time cost a second on a district night)."""
    courses = []
    if len(df):
        _only_known_buckets(df["bucket"].dropna().unique())
        counts = pd.crosstab(df["canvas_course_id"], df["bucket"]).reindex(
            columns=list(BUCKETS), fill_value=0
        )
        by_course = df.groupby("canvas_course_id", sort=True)
        sis = by_course["sis_course_id"].first()  # the first that is not null
        classes = by_course["aspen_class_id"].agg(lambda s: sorted(s.dropna().unique().tolist()))
        for course_id, n in zip(counts.index, counts.to_numpy().tolist(), strict=True):
            sis_id = sis.get(course_id)
            courses.append(
                {
                    "canvas_course_id": int(course_id),
                    "sis_course_id": None if pd.isna(sis_id) else sis_id,
                    "aspen_class_ids": classes.get(course_id, []),
                    "considered": int(sum(n)),
                    **{b: int(v) for b, v in zip(BUCKETS, n, strict=True)},
                    "error": failed_courses.get(str(course_id)),
                }
            )
    seen = {c["canvas_course_id"] for c in courses}
    for course_id, error in sorted(failed_courses.items()):
        if int(course_id) not in seen:
            courses.append(
                {
                    "canvas_course_id": int(course_id),
                    "sis_course_id": None,
                    "aspen_class_ids": [],
                    **dict.fromkeys(TOTAL_KEYS, 0),
                    "error": error,
                }
            )
    return courses


def sort_findings(findings: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return sorted(
        findings,
        key=lambda f: (
            urgency(f["kind"]),
            str(f.get("canvas_course_id")),
            str(f.get("aspen_class_id")),
            str(f.get("assignment_id")),
        ),
    )


def failed_grades(rows: pd.DataFrame) -> dict[str, int]:
    """The failed grades by what failed: ``aspen_refused`` (Aspen answered the PUT with a
    refusal) and ``not_posted`` (never sent: its course or a stage failed, the course was
    busy, the run stopped); the second comes with the distinct reasons, most grades first."""
    if not len(rows):
        return {"aspen_refused": 0, "not_posted": 0}
    failed = rows[rows["bucket"].eq(Bucket.FAILED)]
    refused = (
        failed["aspen_refused"].fillna(False).astype(bool)
        if "aspen_refused" in failed
        else pd.Series(False, index=failed.index)
    )
    return {"aspen_refused": int(refused.sum()), "not_posted": int((~refused).sum())}


def _not_posted_reasons(rows: pd.DataFrame, limit: int = 3) -> list[str]:
    if not len(rows) or "error" not in rows:
        return []
    failed = rows[rows["bucket"].eq(Bucket.FAILED)]
    if "aspen_refused" in failed:
        failed = failed[~failed["aspen_refused"].fillna(False).astype(bool)]
    return [str(e)[:200] for e in failed["error"].dropna().value_counts().index[:limit]]


def build(
    *,
    run_id: str,
    dry_run: bool,
    params: dict[str, Any],
    started_at: str,
    finished_at: str,
    rows: pd.DataFrame,
    failed_courses: dict[str, str],
    findings: list[dict[str, Any]],
    verify: dict[str, int],
    error: str | None = None,
) -> dict[str, Any]:
    """The report; ``error`` is why the run failed as a whole (its plan failed)."""
    totals = bucket_counts(rows)  # checks that the buckets add up
    doc = {
        "run_id": run_id,
        "dry_run": dry_run,
        "params": params,
        "started_at": started_at,
        "finished_at": finished_at,
        "totals": totals,
        "courses": course_table(rows, failed_courses),
        "findings": sort_findings(findings),
        "verify": verify,
        "failed_courses": len(failed_courses),
        "failed_grades": failed_grades(rows),
        "error": error,
    }
    doc["failed_reasons"] = run_failed(doc, not_posted_reasons=_not_posted_reasons(rows))
    return doc


def run_failed(report: dict[str, Any], *, not_posted_reasons: list[str] | None = None) -> list[str]:
    """Why the run must end failed (after everything else was posted and written). Grades
    count as "not accepted by Aspen" only when Aspen refused them (never in a dry run, which
    sends nothing); the others are described by what failed."""
    if "failed_reasons" in report and not_posted_reasons is None:
        return list(report["failed_reasons"])
    reasons = []
    if report.get("error"):
        reasons.append(str(report["error"]))
    if report["failed_courses"]:
        reasons.append(f"{report['failed_courses']} course(s) failed")
    split = report.get("failed_grades") or {"aspen_refused": report["totals"]["failed"], "not_posted": 0}
    refused = 0 if report.get("dry_run") else split["aspen_refused"]
    not_posted = report["totals"]["failed"] - refused
    if refused:
        reasons.append(f"{refused} grade(s) not accepted by Aspen")
    if not_posted:
        why = f" ({'; '.join(not_posted_reasons)})" if not_posted_reasons else ""
        reasons.append(f"{not_posted} grade(s) not posted{why}")
    if report["verify"]["mismatched"]:
        reasons.append(f"verify found {report['verify']['mismatched']} difference(s) in Aspen")
    return reasons


def write_private(folder: Path, name: str, text: str) -> Path:
    """Reports hold student SIS ids and scores: readable by the owner (the data team's
    service account) only."""
    return storage.write_private(private_dir(folder) / name, text.encode())


def restrict(folder: Path) -> None:
    """Everything under ``folder`` readable by the owner only: Great Expectations writes its
    Data Docs with the process umask (usually world-readable), and they show grades."""
    if not folder.exists():
        return
    os.chmod(folder, 0o700)
    for path in folder.rglob("*"):
        if not path.is_symlink():
            os.chmod(path, 0o700 if path.is_dir() else 0o600)


def write_json(folder: Path, report: dict[str, Any]) -> Path:
    return write_private(folder, "report.json", json.dumps(report, indent=2, default=str))
