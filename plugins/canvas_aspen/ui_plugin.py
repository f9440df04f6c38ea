"""The run reports in the Airflow UI: an Airflow 3 plugin (entry point ``airflow.plugins``).

The API server mounts a small FastAPI app under ``/canvas-aspen`` that lists the runs of
``canvas_aspen_grade_passback`` (newest first, with their totals) and serves each run's
``report.html``, ``report.json``, ``findings.csv`` and Great Expectations Data Docs from
``CANVAS_ASPEN_REPORTS_DIR/<run>/``. Two external views link to it: a navigation entry
(Browse → Grade passback reports) and a tab on every DAG run page.

Security. Airflow does **not** authenticate plugin FastAPI apps: the app is attached with
``app.mount()`` and inherits none of the core API's dependencies (``plugins.rst``, apache/airflow
PR #72655). Every route here therefore runs the API server's own dependency
``requires_access_dag(method="GET", access_entity=DagAccessEntity.RUN, param_dag_id=DAG_ID)``
as an app-level dependency: the caller must present the Airflow JWT (the UI's ``_token`` cookie
or an ``Authorization: Bearer`` header) and the configured auth manager must let that user read
the runs of this DAG. The DAG id is fixed, never taken from the request. Anonymous → 401,
invalid token or no access → 403.

The reports hold student SIS ids and scores: the HTML they contain (and the Data Docs, which
load scripts from public CDNs) is served with a CSP ``sandbox`` so it runs in an opaque origin
and cannot use the viewer's Airflow session; nothing is cached; paths are resolved strictly
inside the run's folder. Only counts are ever logged.
"""

import functools
import html
import json
import logging
import mimetypes
import os
import re
import stat
import threading
from datetime import datetime, timezone
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

from airflow.configuration import conf
from airflow.plugins_manager import AirflowPlugin
from fastapi import Depends, FastAPI, HTTPException, Query, Request
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, RedirectResponse, Response
from jinja2 import DictLoader, Environment, select_autoescape
from starlette.exceptions import HTTPException as StarletteHTTPException

from canvas_aspen.buckets import TOTAL_KEYS
from canvas_aspen.ids import run_folder_name
from canvas_aspen.settings import Settings

log = logging.getLogger(__name__)

DAG_ID = "canvas_aspen_grade_passback"
URL_PREFIX = "/canvas-aspen"
PLUGIN_NAME = "canvas_aspen_reports"
# The files of a run folder that may be served besides anything under datadocs/.
RUN_FILES = {
    "report.html": "text/html; charset=utf-8",
    "report.json": "application/json",
    "findings.csv": "text/csv; charset=utf-8",
}
# The teacher digests of a run (the digest task writes them under digests/): these names only.
_DIGEST_FILE_RE = re.compile(r"^teacher-[0-9]{1,20}\.(txt|html)$")
# A run folder is canvas_aspen.ids.run_folder_name(run_id): this alphabet only, never "." or "..".
_FOLDER_RE = re.compile(r"^[A-Za-z0-9_.+-]{1,250}$")
# One segment of a path under datadocs/: no separators, NUL or control characters.
_SEGMENT_RE = re.compile(r"^[^/\\\x00-\x1f\x7f]{1,255}$")

# Our own pages: no script at all, styles inline only.
_PAGE_CSP = (
    "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'self'"
)
# Served report files: report.html has inline scripts (filter/sort), Data Docs pull theirs from
# CDNs. A CSP sandbox without allow-same-origin gives them an opaque origin: scripts run, but
# they cannot read or call the Airflow UI/API with the viewer's session.
_FILE_CSP = (
    "sandbox allow-scripts allow-popups allow-popups-to-escape-sandbox allow-downloads; "
    "frame-ancestors 'self'"
)


def _api_root_path() -> str:
    """The path the API server is served under (``[api] base_url``), with a trailing slash."""
    path = urlsplit(conf.get("api", "base_url", fallback="") or "").path
    return path if path.endswith("/") else path + "/"


def _external_views() -> list[dict[str, Any]]:
    base = _api_root_path() + URL_PREFIX.lstrip("/")
    return [
        {
            "name": "Grade passback reports",
            "href": f"{base}/",
            "destination": "nav",
            "category": "browse",
            "url_route": "canvas-aspen-reports",
        },
        {
            # {DAG_ID}/{RUN_ID} are filled in (URL-encoded) by the UI on the DAG run page. The
            # tab shows on every DAG's runs (external views cannot be scoped to one DAG): the app
            # answers for this DAG only.
            "name": "Grade passback report",
            "href": f"{base}/run?dag_id={{DAG_ID}}&run_id={{RUN_ID}}",
            "destination": "dag_run",
            "url_route": "canvas-aspen-run-report",
        },
    ]


# ---------------------------------------------------------------------------------------------
# Reading the reports folder (counts only; nothing of a report's content is ever logged)


def reports_dir() -> Path:
    return Settings.from_env().reports_dir


def _is_regular_file(path: Path) -> bool:
    try:
        return stat.S_ISREG(path.stat().st_mode)
    except OSError:
        return False


def run_failed_reasons(doc: dict[str, Any]) -> list[str]:
    """Why a run ended failed, from its report.json: the report's own ``failed_reasons``
    (``canvas_aspen.report.run_failed``); for reports written before they were stored, the
    same computation as it was then (a test pins the two together)."""
    stored = doc.get("failed_reasons")
    if isinstance(stored, list):
        return [str(r) for r in stored]
    totals, verify = doc.get("totals") or {}, doc.get("verify") or {}
    reasons = []
    if doc.get("failed_courses"):
        reasons.append(f"{doc['failed_courses']} course(s) failed")
    if totals.get("failed"):
        reasons.append(f"{totals['failed']} grade(s) not accepted by Aspen")
    if verify.get("mismatched"):
        reasons.append(f"verify found {verify['mismatched']} difference(s) in Aspen")
    return reasons


def _parse_instant(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        instant = datetime.fromisoformat(value)
    except ValueError:
        return None
    return instant if instant.tzinfo else instant.replace(tzinfo=timezone.utc)


def _summary_from_doc(doc: dict[str, Any]) -> dict[str, Any]:
    findings = doc.get("findings") or []
    totals = doc.get("totals") or {}
    reasons = run_failed_reasons(doc)
    return {
        "run_id": str(doc.get("run_id") or ""),
        "dry_run": bool(doc.get("dry_run")),
        "status": "failed" if reasons else "succeeded",
        "failed_reasons": reasons,
        "started_at": doc.get("started_at"),
        "finished_at": doc.get("finished_at"),
        "totals": {k: int(totals.get(k) or 0) for k in TOTAL_KEYS},
        "verify": {k: int((doc.get("verify") or {}).get(k) or 0) for k in ("checked", "mismatched")},
        "failed_courses": int(doc.get("failed_courses") or 0),
        "courses": len(doc.get("courses") or []),
        "findings": len(findings),
        "findings_errors": sum(1 for f in findings if isinstance(f, dict) and f.get("severity") == "error"),
    }


_cache: dict[str, tuple[tuple[int, int], dict[str, Any]]] = {}
_cache_lock = threading.Lock()


def _read_summary(report_json: Path) -> dict[str, Any] | None:
    """The counts of one report.json, cached on (mtime, size): a year of nightly runs is parsed
    once, not on every page view."""
    try:
        st = report_json.stat()
    except OSError:
        return None
    if not stat.S_ISREG(st.st_mode):
        return None
    key, sig = str(report_json), (st.st_mtime_ns, st.st_size)
    with _cache_lock:
        hit = _cache.get(key)
    if hit and hit[0] == sig:
        return hit[1]
    try:
        doc = json.loads(report_json.read_text(encoding="utf-8"))
        summary = _summary_from_doc(doc) if isinstance(doc, dict) else {"status": "unreadable"}
    except (OSError, ValueError, TypeError, AttributeError):  # incl. PermissionError: not our user
        summary = {"status": "unreadable"}
    with _cache_lock:
        _cache[key] = (sig, summary)
    return summary


PLAN_FAILED = "plan-failed.json"  # canvas_aspen.stages.report's: the plan's reason, before report ran


def _plan_failure(folder: Path) -> tuple[str | None, str | None]:
    """(why, when the run started) from what a failed plan left; (None, None) without it."""
    path = folder / PLAN_FAILED
    if not _is_regular_file(path):
        return None, None
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
        reason, started = doc.get("reason"), doc.get("started_at")
    except (OSError, ValueError, AttributeError):
        return None, None
    return (f"plan failed: {reason}" if reason else None), (started if isinstance(started, str) else None)


def airflow_runs(folders: set[str] | None = None) -> dict[str, dict[str, Any]]:
    """{report folder name: {run_id, state, failed_tasks, missing_pools}} of this DAG's runs in
    Airflow's metadata DB (the API server has it), for runs without a report: is the run still
    going (and is any of its tasks waiting for a pool that does not exist, which Airflow never
    schedules), and if it ended, which tasks failed. ``folders`` None: the runs waiting for a
    missing pool only. {} when the DB cannot be read (never an error page)."""
    try:
        from airflow.models.dagrun import DagRun
        from airflow.models.pool import Pool
        from airflow.models.taskinstance import TaskInstance
        from airflow.utils.session import create_session
        from sqlalchemy import select

        with create_session() as session:
            waiting = session.execute(
                select(TaskInstance.run_id, TaskInstance.task_id, TaskInstance.pool).where(
                    TaskInstance.dag_id == DAG_ID,
                    TaskInstance.state == "scheduled",
                    TaskInstance.pool.not_in(select(Pool.pool)),
                )
            ).all()
            missing: dict[str, dict[str, set[str]]] = {}
            for run_id, task_id, pool in waiting:
                missing.setdefault(run_id, {}).setdefault(pool, set()).add(task_id)
            query = select(DagRun.run_id, DagRun.state).where(DagRun.dag_id == DAG_ID)
            if folders is None:
                query = query.where(DagRun.run_id.in_(list(missing)))
            runs = session.execute(query).all()
            wanted = {
                run_folder_name(r): (r, str(st))
                for r, st in runs
                if folders is None or run_folder_name(r) in folders
            }
            out: dict[str, dict[str, Any]] = {}
            for name, (run_id, state) in wanted.items():
                failed = (
                    session.execute(
                        select(TaskInstance.task_id).where(
                            TaskInstance.dag_id == DAG_ID,
                            TaskInstance.run_id == run_id,
                            TaskInstance.state.in_(["failed", "upstream_failed"]),
                        )
                    )
                    .scalars()
                    .all()
                )
                out[name] = {
                    "run_id": run_id,
                    "state": state.rsplit(".", 1)[-1].lower(),
                    "failed_tasks": sorted(set(failed)),
                    "missing_pools": {p: sorted(t) for p, t in sorted(missing.get(run_id, {}).items())},
                }
            return out
    except Exception:  # no metadata DB here (tests, a bare process): say only what the files say
        log.debug("canvas-aspen UI: the Airflow metadata DB could not be read", exc_info=True)
        return {}


def no_report_reason(airflow_run: dict[str, Any] | None) -> str | None:
    """Why a finished run has no report, or why a running one will never get there (a task
    waits for a pool that does not exist); None while it is simply still going, or unknown."""
    if airflow_run and airflow_run.get("missing_pools"):
        parts = [
            f"task(s) {', '.join(tasks)} wait for the pool {pool!r}, which does not exist"
            for pool, tasks in airflow_run["missing_pools"].items()
        ]
        names = " / ".join(f'airflow pools set {p} 1 "grade passback"' for p in airflow_run["missing_pools"])
        return (
            "the run cannot finish: " + "; ".join(parts) + " (Airflow never schedules them). Create the pool "
            f"({names}, or Admin → Pools), or unset CANVAS_ASPEN_CANVAS_POOL / CANVAS_ASPEN_ASPEN_POOL; "
            "then clear the waiting tasks or trigger again"
        )
    if not airflow_run or airflow_run["state"] not in ("success", "failed"):
        return None
    tasks = airflow_run["failed_tasks"]
    if tasks:
        return (
            f"the run ended {airflow_run['state']} without a report: task(s) {', '.join(tasks)} failed "
            "(their logs say why)"
        )
    return f"the run ended {airflow_run['state']} without a report (the report task did not run)"


_NO_REPORT: dict[str, Any] = {
    "dry_run": None,
    "status": "no_report",
    "started_at": None,
    "finished_at": None,
    "totals": None,
    "verify": None,
    "failed_courses": None,
    "courses": None,
    "findings": None,
    "findings_errors": None,
}
"""A listed run's summary before (or without) its report.json."""


def _run_summary(folder: Path, airflow_run: dict[str, Any] | None = None) -> dict[str, Any]:
    name = folder.name
    summary = _read_summary(folder / "report.json")
    has_report = summary is not None and summary.get("status") != "unreadable"
    out: dict[str, Any] = {**_NO_REPORT, "folder": name, "run_id": name, "failed_reasons": []}
    if summary is not None:
        out.update({k: v for k, v in summary.items() if v is not None and v != ""})
    if summary is None:  # no report (yet): what the plan left, or what Airflow says of the run
        if airflow_run:
            out["run_id"] = airflow_run["run_id"]
        plan_why, started_at = _plan_failure(folder)
        why = plan_why or no_report_reason(airflow_run)
        if why:
            out["failed_reasons"] = [why]
        if started_at:
            out["started_at"] = started_at.replace(" ", "T", 1)
    try:
        mtime = folder.stat().st_mtime
    except OSError:
        mtime = 0.0
    started = _parse_instant(out.get("started_at")) or datetime.fromtimestamp(mtime, timezone.utc)
    out["_sort"] = started
    out["files"] = {
        "report_html": _is_regular_file(folder / "report.html"),
        "report_json": has_report,
        "findings_csv": _is_regular_file(folder / "findings.csv"),
        "datadocs": _is_regular_file(folder / "datadocs" / "index.html"),
    }
    return out


def run_digests(folder: Path) -> list[dict[str, Any]]:
    """The run's teacher digests as the digest task listed them (digests/index.json): teacher,
    status, why, how many things to fix, and the files; [] when there are none."""
    path = folder / "digests" / "index.json"
    if not _is_regular_file(path):
        return []
    try:
        listing = json.loads(path.read_text())
    except (OSError, ValueError):
        log.warning("canvas-aspen UI: a digest listing is unreadable")
        return []
    keep = ("teacher_id", "name", "email", "mode", "status", "reason", "findings", "course_ids", "error")
    out = []
    for e in listing if isinstance(listing, list) else []:
        if isinstance(e, dict):
            files = {
                k: e[k] for k in ("html", "text") if isinstance(e.get(k), str) and _DIGEST_FILE_RE.match(e[k])
            }
            out.append({**{k: e.get(k) for k in keep}, **files})
    return out


def _stuck_run(folder: str, airflow_run: dict[str, Any]) -> dict[str, Any]:
    """A run that has no report folder yet and never will: it waits for a missing pool."""
    return {
        **_NO_REPORT,
        "folder": folder,
        "run_id": airflow_run["run_id"],
        "exists": False,
        "failed_reasons": [no_report_reason(airflow_run)],
        "_sort": datetime.now(timezone.utc),
        "files": {"report_html": False, "report_json": False, "findings_csv": False, "datadocs": False},
    }


def list_runs(root: Path | None = None) -> list[dict[str, Any]]:
    """Every run folder under the reports dir, newest first."""
    root = root or reports_dir()
    runs: list[Any] = []
    try:
        entries = list(os.scandir(root))
    except FileNotFoundError:
        entries = []
    except PermissionError:
        log.warning("canvas-aspen UI: the API server cannot read the reports dir (permissions)")
        entries = []
    for entry in entries:
        if not _FOLDER_RE.match(entry.name) or entry.name in (".", "..") or entry.name.startswith("."):
            continue
        if not entry.is_dir(follow_symlinks=False):
            continue
        runs.append(Path(entry.path))
    without_report = {p.name for p in runs if not (p / "report.json").exists()}
    states = airflow_runs(without_report) if without_report else {}
    stuck = {k: v for k, v in airflow_runs(None).items() if k not in {p.name for p in runs}}
    runs = [_run_summary(p, states.get(p.name)) for p in runs] + [_stuck_run(n, r) for n, r in stuck.items()]
    runs.sort(key=lambda r: (r["_sort"], r["folder"]), reverse=True)
    live = {str(root / r["folder"] / "report.json") for r in runs}
    with _cache_lock:  # forget the folders that are gone
        for key in [k for k in _cache if k.startswith(str(root) + os.sep) and k not in live]:
            del _cache[key]
    for r in runs:
        r.pop("_sort")
    log.debug("canvas-aspen UI: %d run folder(s) listed", len(runs))
    return runs


def run_folder(name: str, root: Path | None = None) -> Path:
    """The run's folder, or 404: the name must be a folder name we write (no separators, not
    "." or ".."), a real directory directly inside the reports dir (not a symlink)."""
    if not _FOLDER_RE.match(name) or name.startswith("."):
        raise HTTPException(404, "No such run")
    root = root or reports_dir()
    folder = root / name
    try:
        st = folder.lstat()
        root_real = root.resolve(strict=True)
    except OSError:
        raise HTTPException(404, "No such run") from None
    if not stat.S_ISDIR(st.st_mode) or folder.resolve().parent != root_real:
        raise HTTPException(404, "No such run")
    return folder


def resolve_file(folder: Path, relative: str) -> Path:
    """A file at ``relative`` (``/``-separated) inside ``folder``, or 404. Rejects empty,
    ``.``/``..``, hidden and odd segments, then checks the resolved path (symlinks followed)
    is still inside the folder and is an existing regular file."""
    segments = relative.split("/")
    if not relative or len(segments) > 16:
        raise HTTPException(404, "Not found")
    for seg in segments:
        if seg in ("", ".", "..") or seg.startswith(".") or not _SEGMENT_RE.match(seg):
            raise HTTPException(404, "Not found")
    try:
        base = folder.resolve(strict=True)
        target = folder.joinpath(*segments).resolve(strict=True)
    except (OSError, RuntimeError):
        raise HTTPException(404, "Not found") from None
    if not target.is_relative_to(base) or target == base or not _is_regular_file(target):
        raise HTTPException(404, "Not found")
    return target


def content_type(path: Path) -> str:
    name = path.name.lower()
    if name in RUN_FILES:
        return RUN_FILES[name]
    if name.endswith((".html", ".htm")):
        return "text/html; charset=utf-8"
    guessed, _ = mimetypes.guess_type(name)
    if guessed is None:
        return "application/octet-stream"
    if guessed.startswith("text/") or guessed in ("application/javascript", "text/javascript"):
        return f"{guessed}; charset=utf-8"
    return guessed


# ---------------------------------------------------------------------------------------------
# Pages

# A template line that ends in a backslash goes on at the start of the next one: Python drops
# the backslash and the line break, so the page renders exactly as if it were one line.
_TEMPLATES = {
    "base": """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{% block title %}{% endblock %}</title>
<style>
 body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; margin: 20px; color: #1d2330; }
 h1 { font-size: 19px; margin: 0 0 10px; } .muted { color: #5b6475; }
 table { border-collapse: collapse; width: 100%; } \
th, td { border: 1px solid #dde1e8; padding: 4px 8px; text-align: left; }
 th { background: #eef1f6; } td.num { text-align: right; font-variant-numeric: tabular-nums; }
 .badge { display: inline-block; padding: 1px 8px; border-radius: 10px; font-size: 12px; font-weight: 600; }
 .ok { background: #dff5e3; color: #17652a; } .bad { background: #fde2e1; color: #9b1c1c; }
 .dry { background: #fff3cd; color: #7a5a00; } .none { background: #eef1f6; color: #5b6475; }
 code { font-size: 12px; } .why { color: #9b1c1c; font-size: 12px; margin-top: 2px; max-width: 32em; }
</style></head><body>{% block body %}{% endblock %}</body></html>""",
    "index.html": """{% extends "base" %}{% block title %}Grade passback reports{% endblock %}{% block body %}
<h1>Canvas → Aspen grade passback: run reports</h1>
<p class="muted">DAG <code>{{ dag_id }}</code> · {{ total }} run(s)\
{% if total > runs|length %}, showing {{ offset + 1 }}–{{ offset + runs|length }}{% endif %} \
· newest first</p>
{% if not runs %}<p>No run reports yet.</p>{% else %}
<table>
<thead><tr><th>started (UTC)</th><th>run</th><th>result</th>
{% for k in total_keys %}<th>{{ k | replace("_", " ") }}</th>{% endfor %}\
<th>verify mismatched</th><th>findings (errors)</th><th>open</th></tr></thead>
<tbody>
{% for r in runs %}<tr>
 <td>{{ (r.started_at or "")[:19] | replace("T", " ") }}</td>
 <td>{% if r.exists is not defined or r.exists %}\
<a href="{{ root }}/runs/{{ r.folder | urlencode }}/"><code>{{ r.run_id }}</code></a>\
{% else %}<code>{{ r.run_id }}</code>{% endif %}\
{% if r.dry_run %} <span class="badge dry">dry run</span>{% endif %}</td>
 <td>{% if r.status == "succeeded" %}<span class="badge ok">succeeded</span>\
{% elif r.status == "failed" %}<span class="badge bad">failed</span>\
{% elif r.status == "unreadable" %}<span class="badge none">unreadable</span>\
{% else %}<span class="badge none">no report</span>{% endif %}\
{% if r.failed_reasons %}<div class="why">{{ r.failed_reasons | join("; ") }}</div>{% endif %}</td>
 {% for k in total_keys %}<td class="num">{{ r.totals[k] if r.totals else "" }}</td>{% endfor %}
 <td class="num">{{ r.verify.mismatched if r.verify else "" }}</td>
 <td class="num">{% if r.findings is not none %}{{ r.findings }} ({{ r.findings_errors }}){% endif %}</td>
 <td>{% set base = root ~ "/runs/" ~ (r.folder | urlencode) %}
  {% if r.files.report_html %}<a href="{{ base }}/report.html">report</a>{% endif %}
  {% if r.files.findings_csv %} · <a href="{{ base }}/findings.csv">findings.csv</a>{% endif %}
  {% if r.files.datadocs %} · <a href="{{ base }}/datadocs/index.html">Data Docs</a>{% endif %}</td>
</tr>{% endfor %}
</tbody></table>
<p>{% if offset > 0 %}\
<a href="{{ root }}/?offset={{ [offset - limit, 0] | max }}&amp;limit={{ limit }}">newer</a>{% endif %}
{% if offset + runs|length < total %} \
<a href="{{ root }}/?offset={{ offset + limit }}&amp;limit={{ limit }}">older</a>{% endif %}</p>
{% endif %}{% endblock %}""",
    "run.html": """{% extends "base" %}{% block title %}Run {{ r.run_id }}{% endblock %}{% block body %}
<h1>Run <code>{{ r.run_id }}</code></h1>
<p><a href="{{ root }}/">all runs</a></p>
{% if r.status == "no_report" and r.failed_reasons %}\
<p><span class="badge bad">no report</span> {{ r.failed_reasons | join("; ") }}</p>
{% elif r.status == "no_report" %}\
<p>No report for this run yet: the run is still going, or ended before its report task.</p>
{% else %}<p>\
{% if r.status == "failed" %}<span class="badge bad">failed: {{ r.failed_reasons | join("; ") }}</span>\
{% elif r.status == "succeeded" %}<span class="badge ok">succeeded</span>\
{% else %}<span class="badge none">report unreadable</span>{% endif %}
{% if r.dry_run %} <span class="badge dry">dry run</span>{% endif %} \
<span class="muted">{{ r.started_at or "" }} → {{ r.finished_at or "" }}</span></p>
{% if r.totals %}<table><thead><tr>{% for k in total_keys %}<th>{{ k | replace("_", " ") }}</th>{% endfor %}\
<th>verified</th><th>verify mismatched</th></tr></thead>
<tbody><tr>{% for k in total_keys %}<td class="num">{{ r.totals[k] }}</td>{% endfor %}\
<td class="num">{{ r.verify.checked }}</td><td class="num">{{ r.verify.mismatched }}</td></tr>\
</tbody></table>{% endif %}{% endif %}
<ul>
{% if r.files.report_html %}<li><a href="{{ base }}/report.html">report</a></li>{% endif %}
{% if r.files.findings_csv %}<li><a href="{{ base }}/findings.csv">findings.csv</a></li>{% endif %}
{% if r.files.report_json %}<li><a href="{{ base }}/report.json">report.json</a></li>{% endif %}
{% if r.files.datadocs %}\
<li><a href="{{ base }}/datadocs/index.html">Great Expectations Data Docs</a></li>{% endif %}
</ul>
<h2 style="font-size: 16px;">Teacher digests</h2>
{% if not digests %}<p class="muted">None for this run \
(a dry run, nothing changed for any teacher, the digest is off, or its task has not run).</p>
{% else %}<table><thead><tr><th>teacher</th><th>email</th><th>Canvas courses</th><th>to fix</th>\
<th>why now</th><th>status</th><th>digest</th></tr></thead><tbody>
{% for d in digests %}<tr><td>{{ d.name or d.teacher_id }}</td><td>{{ d.email or "" }}</td>\
<td>{{ (d.course_ids or []) | join(", ") }}</td><td class="num">{{ d.findings }}</td>
<td>{{ (d.reason or "") | replace("_", " ") }}</td>\
<td>{% if d.status == "failed" %}<span class="badge bad">failed</span> {{ d.error or "" }}\
{% elif d.status == "sent" %}<span class="badge ok">sent</span>\
{% else %}<span class="badge none">{{ d.status }}</span>{% endif %}</td>
<td>{% if d.html %}<a href="{{ base }}/digests/{{ d.html }}">HTML</a>{% endif %}\
{% if d.text %} · <a href="{{ base }}/digests/{{ d.text }}">text</a>{% endif %}</td></tr>
{% endfor %}</tbody></table>{% endif %}{% endblock %}""",
    "message.html": """{% extends "base" %}{% block title %}{{ title }}{% endblock %}{% block body %}
<h1>{{ title }}</h1><p>{{ message }}</p>\
{% if link %}<p><a href="{{ link }}">all grade passback runs</a></p>{% endif %}{% endblock %}""",
}
_env = Environment(
    loader=DictLoader(_TEMPLATES), autoescape=select_autoescape(default=True, default_for_string=True)
)


def _root(request: Request) -> str:
    """The app's own URL path (the API server's base path + /canvas-aspen), from the mount."""
    return request.scope.get("root_path", "").rstrip("/")


def _page(template: str, status_code: int = 200, **context: Any) -> HTMLResponse:
    body = _env.get_template(template).render(dag_id=DAG_ID, total_keys=TOTAL_KEYS, **context)
    return HTMLResponse(body, status_code=status_code, headers={"Content-Security-Policy": _PAGE_CSP})


def _serve(path: Path, *, download_name: str | None = None) -> FileResponse:
    headers = {"Content-Security-Policy": _FILE_CSP}
    if download_name:
        headers["Content-Disposition"] = f'attachment; filename="{download_name}"'
    return FileResponse(path, media_type=content_type(path), headers=headers)


_BODY_RE = re.compile(r"<body[^>]*>", re.IGNORECASE)


def _report_with_nav(path: Path, root: str, folder: str) -> Response:
    """report.html as written, with a line of links back to the reports list on top (the file
    itself stays standalone: it is also opened from disk)."""
    nav = (
        '<nav style="font:13px system-ui,sans-serif;margin:0 0 12px">'
        f'&larr; <a href="{html.escape(root)}/" target="_self">All grade passback runs</a> · '
        f'<a href="{html.escape(root)}/runs/{html.escape(quote(folder))}/" target="_self">'
        "this run's files</a>"
        "</nav>"
    )
    text = path.read_text(encoding="utf-8", errors="replace")
    match = _BODY_RE.search(text)
    text = text[: match.end()] + nav + text[match.end() :] if match else nav + text
    return Response(text, media_type=RUN_FILES["report.html"], headers={"Content-Security-Policy": _FILE_CSP})


def _wants_html(request: Request) -> bool:
    return "text/html" in request.headers.get("accept", "")


def _build_app() -> FastAPI:
    # Imported here, not at module level: every Airflow process that loads plugins imports this
    # module, only the API server needs its security machinery.
    from airflow.api_fastapi.auth.managers.models.resource_details import DagAccessEntity
    from airflow.api_fastapi.core_api.security import requires_access_dag

    # The API server's own check, as the core endpoint GET /dags/{dag_id}/dagRuns/{run_id} uses
    # it, with the DAG id pinned (never read from the request's path or query).
    can_read_runs = requires_access_dag(method="GET", access_entity=DagAccessEntity.RUN, param_dag_id=DAG_ID)

    app = FastAPI(
        title="Canvas → Aspen grade passback reports",
        dependencies=[Depends(can_read_runs)],
        docs_url=None,
        redoc_url=None,
        openapi_url=None,  # these routes are added without the app's dependencies: keep them off
    )

    @app.middleware("http")
    async def private_headers(request: Request, call_next):
        response = await call_next(request)
        response.headers["Cache-Control"] = "no-store"
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Referrer-Policy"] = "same-origin"
        response.headers.setdefault("X-Frame-Options", "SAMEORIGIN")
        return response

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        if _wants_html(request) and exc.status_code in (401, 403, 404):
            message = {
                401: "Sign in to Airflow to see the grade passback reports.",
                403: f"Your Airflow account may not read the runs of {DAG_ID}.",
                404: str(exc.detail),
            }[exc.status_code]
            return _page(
                "message.html",
                status_code=exc.status_code,
                title=str(exc.status_code),
                message=message,
                link=None if exc.status_code != 404 else f"{_root(request)}/",
            )
        return JSONResponse({"detail": exc.detail}, status_code=exc.status_code, headers=exc.headers)

    @app.get("/", response_class=HTMLResponse)
    def index(request: Request, offset: int = Query(0, ge=0), limit: int = Query(100, ge=1, le=1000)):
        runs = list_runs()
        return _page(
            "index.html",
            runs=runs[offset : offset + limit],
            total=len(runs),
            offset=offset,
            limit=limit,
            root=_root(request),
        )

    @app.get("/api/runs")
    def api_runs(request: Request, offset: int = Query(0, ge=0), limit: int = Query(100, ge=1, le=1000)):
        runs = list_runs()
        root = _root(request)
        page = []
        for r in runs[offset : offset + limit]:
            base = f"{root}/runs/{quote(r['folder'])}"
            files = r.pop("files")
            r["links"] = {
                "run": f"{base}/" if r.pop("exists", True) else None,
                "report_html": f"{base}/report.html" if files["report_html"] else None,
                "report_json": f"{base}/report.json" if files["report_json"] else None,
                "findings_csv": f"{base}/findings.csv" if files["findings_csv"] else None,
                "datadocs": f"{base}/datadocs/index.html" if files["datadocs"] else None,
            }
            page.append(r)
        return {"dag_id": DAG_ID, "total_entries": len(runs), "runs": page}

    @app.get("/run")
    def run_by_id(
        request: Request,
        run_id: str = Query(..., min_length=1, max_length=250),
        dag_id: str | None = Query(None, max_length=250),
    ):
        """The DAG run page's tab: this run's report, by Airflow run id."""
        root = _root(request)
        if dag_id is not None and dag_id != DAG_ID:
            return _page(
                "message.html",
                title="Grade passback report",
                message=f"This tab shows the reports of {DAG_ID} runs only.",
                link=None,
            )
        name = run_folder_name(run_id)
        try:
            folder = run_folder(name)
        except HTTPException:
            why = no_report_reason(airflow_runs({name}).get(name))
            if why:
                return _page(
                    "message.html",
                    status_code=404,
                    title="No report for this run",
                    message=why[0].upper() + why[1:] + ".",
                    link=f"{root}/",
                )
            return _page(
                "message.html",
                status_code=404,
                title="No report yet",
                message="This run has no report yet: it is still going, or ended before its report task.",
                link=f"{root}/",
            )
        target = "report.html" if _is_regular_file(folder / "report.html") else ""
        return RedirectResponse(f"{root}/runs/{quote(name)}/{target}", status_code=303)

    @app.get("/runs/{run}/", response_class=HTMLResponse)
    def run_page(request: Request, run: str):
        folder = run_folder(run)
        root = _root(request)
        airflow_run = (
            None if (folder / "report.json").exists() else airflow_runs({folder.name}).get(folder.name)
        )
        return _page(
            "run.html",
            r=_run_summary(folder, airflow_run),
            root=root,
            digests=run_digests(folder),
            base=f"{root}/runs/{quote(folder.name)}",
        )

    @app.get("/runs/{run}/digests/{name}")
    def digest_file(run: str, name: str):
        """One teacher digest of the run (preview or sent copy)."""
        if not _DIGEST_FILE_RE.match(name):
            raise HTTPException(404, "Not found")
        folder = run_folder(run)
        return _serve(resolve_file(folder / "digests", name))

    @app.get("/runs/{run}/datadocs/{path:path}")
    def datadocs(run: str, path: str):
        folder = run_folder(run)
        return _serve(resolve_file(folder / "datadocs", path or "index.html"))

    @app.get("/runs/{run}/{name}")
    def run_file(request: Request, run: str, name: str):
        if name not in RUN_FILES:
            raise HTTPException(404, "Not found")
        folder = run_folder(run)
        path = resolve_file(folder, name)
        if name == "report.html":  # opened in the run tab too: a way back to the list
            return _report_with_nav(path, _root(request), folder.name)
        download = f"findings-{folder.name}.csv" if name == "findings.csv" else None
        return _serve(path, download_name=download)

    return app


@functools.cache
def get_app() -> FastAPI:
    return _build_app()


class CanvasAspenReportsPlugin(AirflowPlugin):
    """Registered through the ``airflow.plugins`` entry point in pyproject.toml."""

    name = PLUGIN_NAME
    external_views = _external_views()

    @property
    def fastapi_apps(self) -> list[dict[str, Any]]:  # type: ignore[override]
        # Built on first use (by the API server), so other Airflow processes never import it.
        return [{"app": get_app(), "url_prefix": URL_PREFIX, "name": "Canvas → Aspen grade passback reports"}]
