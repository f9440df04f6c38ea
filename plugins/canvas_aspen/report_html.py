"""The run report for people: report.html and findings.csv beside report.json."""

from __future__ import annotations

import csv
import io
from datetime import datetime, timezone
from itertools import groupby
from pathlib import Path
from typing import Any

from jinja2 import Environment, PackageLoader, select_autoescape

from canvas_aspen.buckets import TOTAL_KEYS
from canvas_aspen.findings import FIELDS
from canvas_aspen.report import run_failed, sort_findings, write_private

_env = Environment(
    loader=PackageLoader("canvas_aspen", "templates"), autoescape=select_autoescape(["html", "j2"])
)


def when(value: Any) -> str:
    """An instant as the report shows it: ``2026-03-02 22:00:01 UTC`` (one format, whether it
    came as ISO text with a ``T`` or as Python's ``str()`` of a datetime)."""
    if not value:
        return ""
    try:
        instant = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return str(value)
    if instant.tzinfo is None:
        instant = instant.replace(tzinfo=timezone.utc)
    return instant.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


_env.filters["when"] = when


def findings_csv(findings: list[dict[str, Any]]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(FIELDS), extrasaction="ignore")
    writer.writeheader()
    for f in sort_findings(findings):
        # a leading = + - @ would be a formula in a spreadsheet: neutralise it
        writer.writerow({k: ("'" + v if isinstance(v, str) and v[:1] in "=+-@" else v) for k, v in f.items()})
    return out.getvalue()


def render(
    report: dict[str, Any],
    sheet: list[dict[str, Any]],
    data_docs: str | None,
    digests: list[dict[str, Any]] | None = None,
    digest_mode: str | None = None,
) -> str:
    findings = sort_findings(report["findings"])
    groups = [(kind, list(items)) for kind, items in groupby(findings, key=lambda f: f["kind"])]
    return _env.get_template("report.html.j2").render(
        r=report,
        total_keys=TOTAL_KEYS,
        groups=groups,
        sheet=sheet,
        data_docs=data_docs,
        failed_reasons=run_failed(report),
        digests=digests,
        digest_mode=digest_mode,
        no_teacher=report.get("courses_without_teacher_email") or [],
    )


def write(
    folder: Path,
    report: dict[str, Any],
    sheet: list[dict[str, Any]],
    digests: list[dict[str, Any]] | None = None,
    digest_mode: str | None = None,
) -> Path:
    """report.html (+ findings.csv); links the run's Data Docs when they were built, and the
    teacher digests once the digest task wrote them (``digests``: its listing)."""
    docs = folder / "datadocs" / "index.html"
    write_private(folder, "findings.csv", findings_csv(report["findings"]))
    page = render(report, sheet, "datadocs/index.html" if docs.exists() else None, digests, digest_mode)
    return write_private(folder, "report.html", page)
