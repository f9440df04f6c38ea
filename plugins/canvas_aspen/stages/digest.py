"""digest: the teacher digests of a run, after its report (CANVAS_ASPEN_TEACHER_DIGEST)."""

from __future__ import annotations

import json
import logging
from collections import Counter
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

from canvas_aspen import storage
from canvas_aspen.stages.extract import course_teachers
from canvas_aspen.stages.files import read_plan, report_folder

if TYPE_CHECKING:
    from canvas_aspen.ledger import Ledger

log = logging.getLogger(__name__)


DIGEST_FOLDER = "digests"


def _scrub(text: str) -> str:
    """An SMTP error without any address in it (a refused recipient is named in the error)."""
    import re

    return re.sub(r"[\w.+-]+@[\w-]+(\.[\w-]+)+", "<address>", text)[:500]


def digest(
    ledger: Ledger,
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
    ``resend_after`` (``canvas_aspen.digest.due``). ``mode``: ``off`` (nothing), ``preview`` (write each
    digest, .txt and .html, owner-only, into the run's report folder; send nothing) or
    ``send`` (also send it through ``mailer``, an object with ``send(to, subject, text,
    html)``). Never for a dry run. Every digest is claimed in the ledger before it is sent, so
    a rerun or a retried task never sends one twice; a failed send fails that teacher's digest
    only (recorded; the next run tries again). The report's HTML then lists the digests.
    Logs counts only: no teacher's name or address."""
    from canvas_aspen import digest as digest_mod
    from canvas_aspen import report as report_mod
    from canvas_aspen import report_html

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
        for k, v in (read_plan(run_dir).get("courses") or {}).items()
    }
    digests = digest_mod.build_digests(
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
        d.reason = digest_mod.due(d, last.get(d.teacher_id), now=now, resend_after=resend_after)
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
        text, html = digest_mod.render(d)
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
