"""The run-reports page in the Airflow UI (``canvas_aspen.ui_plugin``).

The API tests build the API server the way ``airflow api-server`` does
(``airflow.api_fastapi.app.create_app``: plugins discovered through the entry point, the
auth manager, the JWT refresh middleware) with the SimpleAuthManager, against a migrated
SQLite metadata DB in the session's isolated Airflow home, and sign in through the auth
manager's own ``POST /auth/token``.
"""

from __future__ import annotations

import ast
import json
import logging
import os
import sqlite3
import subprocess
import sys
from contextlib import closing
from importlib.metadata import entry_points
from pathlib import Path

import pytest

from canvas_aspen import ui_plugin

DAG_ID = "canvas_aspen_grade_passback"
PREFIX = "/canvas-aspen"
SECRET = "S3CRET-DO-NOT-SERVE"
STUDENT = "STU-90210"  # a student SIS id inside the reports: must never reach a log
USERS = {"viewer": "viewer", "nobody": ""}  # username -> SimpleAuthManager role ("" = no role)


# ---------------------------------------------------------------------------------------------
# fixtures


def _report(
    run_id: str, started_at: str, *, dry_run=False, failed=0, mismatched=0, failed_courses=0, hidden=None
):
    """A report.json; without ``hidden`` as reports were before R20's sixth bucket."""
    totals = {
        "considered": 10,
        "posted": 5 - failed,
        "unchanged": 2,
        "empty": 1,
        "held_back": 2,
        "failed": failed,
    }
    if hidden is not None:
        totals = {**totals, "considered": 10 + hidden, "hidden": hidden}
    return {
        "run_id": run_id,
        "dry_run": dry_run,
        "params": {},
        "started_at": started_at,
        "finished_at": started_at.replace("T22:00", "T22:07"),
        "totals": totals,
        "courses": [{"canvas_course_id": "101"}, {"canvas_course_id": "102"}],
        "findings": [
            {"kind": "over_max", "severity": "error", "student_sis_id": STUDENT, "value": 12, "limit": 10},
            {"kind": "category_case_mismatch", "severity": "warning", "student_sis_id": None},
        ],
        "verify": {"checked": 5, "mismatched": mismatched},
        "failed_courses": failed_courses,
    }


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    path.write_text(text)
    path.chmod(0o600)


@pytest.fixture
def reports(tmp_path, monkeypatch) -> Path:
    """A reports dir with three runs (older failed, newer dry run, newest still without its
    report), plus secrets just outside the run folders and symlinks pointing at them."""
    root = tmp_path / "reports"
    root.mkdir(mode=0o700)
    _write(tmp_path / "secret.txt", SECRET)
    _write(root / "secret.txt", SECRET)

    old = root / "scheduled__2026-03-02T03_00_00+00_00"
    doc = _report(
        "scheduled__2026-03-02T03:00:00+00:00",
        "2026-03-02T22:00:01+00:00",
        failed=1,
        mismatched=2,
        failed_courses=1,
        hidden=3,
    )
    _write(old / "report.json", json.dumps(doc))
    _write(old / "report.html", f"<!doctype html><p>report {STUDENT}</p>")
    _write(old / "findings.csv", f"rule,kind,student_sis_id\nR5,over_max,{STUDENT}\n")
    _write(old / "notes.txt", SECRET)  # in the run folder, but not a report file
    _write(old / "datadocs" / "index.html", "<!doctype html><p>data docs index</p>")
    _write(old / "datadocs" / "static" / "styles" / "data_docs_custom_styles.css", "body{}")
    _write(old / "datadocs" / "static" / "images" / "logo.png", "\x89PNG")
    _write(old / "datadocs" / "validations" / "grades" / "run:1" / "batch+1.html", "<p>validation</p>")
    (old / "datadocs" / "leak.txt").symlink_to(tmp_path / "secret.txt")
    _write(old / "datadocs" / ".git" / "config", SECRET)  # hidden: never served

    new = root / "manual__2026-03-03T15_30_00+00_00"
    doc = _report("manual__2026-03-03T15:30:00+00:00", "2026-03-03T22:00:00+00:00", dry_run=True)
    _write(new / "report.json", json.dumps(doc))
    _write(new / "report.html", "<!doctype html><p>dry run report</p>")
    _write(new / "findings.csv", "rule,kind\n")

    running = root / "manual__2026-03-04T09_00_00+00_00"  # validate built Data Docs, no report yet
    _write(running / "datadocs" / "index.html", "<p>docs of a running run</p>")
    os.utime(running, (2_000_000_000, 2_000_000_000))  # folder mtime 2033: the newest

    outside = tmp_path / "elsewhere"
    _write(outside / "report.html", SECRET)
    (root / "linked_run").symlink_to(outside, target_is_directory=True)

    monkeypatch.setenv("CANVAS_ASPEN_REPORTS_DIR", str(root))
    return root


def _migrated(db: Path) -> bool:
    """Whether another fixture of this session already ran `airflow db migrate` (SQLite)."""
    if not db.exists():
        return False
    with closing(sqlite3.connect(db)) as con:
        try:
            return con.execute("select count(*) from alembic_version").fetchone()[0] > 0
        except sqlite3.Error:
            return False


@pytest.fixture(scope="module")
def api(airflow_home, tmp_path_factory):
    """The API server app with the SimpleAuthManager and two users, over a migrated DB."""
    from airflow.api_fastapi.app import create_app, purge_cached_app
    from airflow.api_fastapi.auth.managers.base_auth_manager import BaseAuthManager
    from fastapi.testclient import TestClient

    pw_file = tmp_path_factory.mktemp("auth") / "passwords.json"
    env = {
        "AIRFLOW__CORE__AUTH_MANAGER": (
            "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager"
        ),
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": ",".join(f"{u}:{r}" for u, r in USERS.items()),
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "False",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(pw_file),
        "AIRFLOW__API_AUTH__JWT_SECRET": "canvas-aspen-test-" + "x" * 64,
    }
    with pytest.MonkeyPatch.context() as mp:
        for k, v in env.items():
            mp.setenv(k, v)
        if not _migrated(airflow_home / "airflow.db"):
            out = subprocess.run(
                [str(Path(sys.executable).parent / "airflow"), "db", "migrate"],
                env=dict(os.environ),
                capture_output=True,
                text=True,
                timeout=600,
            )
            assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
        BaseAuthManager._get_token_signer.cache_clear()
        BaseAuthManager._get_token_validator.cache_clear()
        purge_cached_app()
        app = create_app(apps="core")
        with TestClient(app) as client:
            client.passwords = json.loads(pw_file.read_text())
            yield client
        purge_cached_app()
        BaseAuthManager._get_token_signer.cache_clear()
        BaseAuthManager._get_token_validator.cache_clear()


def _login(api, username: str) -> str:
    """Sign in as the UI's login form does: POST /auth/token with the user's password."""
    r = api.post("/auth/token", json={"username": username, "password": api.passwords[username]})
    assert r.status_code == 201, r.text
    return r.json()["access_token"]


@pytest.fixture
def viewer(api):
    return {"Authorization": f"Bearer {_login(api, 'viewer')}"}


ROUTES = [
    "/",
    "/api/runs",
    "/run?dag_id=canvas_aspen_grade_passback&run_id=scheduled__2026-03-02T03:00:00%2B00:00",
    "/runs/scheduled__2026-03-02T03_00_00+00_00/",
    "/runs/scheduled__2026-03-02T03_00_00+00_00/report.html",
    "/runs/scheduled__2026-03-02T03_00_00+00_00/report.json",
    "/runs/scheduled__2026-03-02T03_00_00+00_00/findings.csv",
    "/runs/scheduled__2026-03-02T03_00_00+00_00/datadocs/index.html",
    "/runs/scheduled__2026-03-02T03_00_00+00_00/datadocs/",
]


# ---------------------------------------------------------------------------------------------
# discovery


def test_entry_point_registers_the_plugin():
    eps = {ep.name: ep.value for ep in entry_points(group="airflow.plugins")}
    assert eps.get("canvas_aspen_reports") == "canvas_aspen.ui_plugin:CanvasAspenReportsPlugin"


@pytest.mark.airflow_db
def test_plugins_manager_discovers_app_and_views(api):
    from airflow import plugins_manager
    from airflow.api_fastapi.core_api.datamodels.plugins import ExternalViewResponse
    from starlette.routing import Mount

    info = {p["name"]: p for p in plugins_manager.get_plugin_info()}
    ours = info["canvas_aspen_reports"]
    assert "canvas_aspen.ui_plugin:CanvasAspenReportsPlugin" in str(ours["source"])
    assert [a["url_prefix"] for a in ours["fastapi_apps"]] == [PREFIX]
    apps, _ = plugins_manager.get_fastapi_plugins()
    assert any(a["app"] is ui_plugin.get_app() and a["url_prefix"] == PREFIX for a in apps)

    views = {v["destination"]: ExternalViewResponse(**v) for v in ours["external_views"]}
    assert set(views) == {"nav", "dag_run"}
    assert views["nav"].href == f"{PREFIX}/"
    assert views["dag_run"].href == f"{PREFIX}/run?dag_id={{DAG_ID}}&run_id={{RUN_ID}}"
    assert all(v.url_route for v in views.values())  # rendered inside the Airflow UI (iframe)

    _, import_errors = plugins_manager._get_plugins()
    assert "canvas_aspen.ui_plugin" not in import_errors

    # mounted by the API server, and offered to the UI by the core API
    assert any(
        isinstance(r, Mount) and r.path == PREFIX and r.app is ui_plugin.get_app() for r in api.app.routes
    )
    r = api.get("/api/v2/plugins", headers={"Authorization": f"Bearer {_login(api, 'viewer')}"})
    assert r.status_code == 200, r.text
    served = {p["name"]: p for p in r.json()["plugins"]}["canvas_aspen_reports"]
    assert {v["destination"] for v in served["external_views"]} == {"nav", "dag_run"}


def test_the_plugin_module_imports_no_api_server_code_at_import_time():
    """Every Airflow process that loads plugins imports the module; only the API server builds
    the app (on first use of ``fastapi_apps``) and imports the security machinery."""
    tree = ast.parse(Path(ui_plugin.__file__).read_text())
    top_level = {n.module for n in tree.body if isinstance(n, ast.ImportFrom)}
    top_level |= {a.name for n in tree.body if isinstance(n, ast.Import) for a in n.names}
    assert not {m for m in top_level if m.startswith("airflow.api_fastapi")}
    assert isinstance(vars(ui_plugin.CanvasAspenReportsPlugin)["fastapi_apps"], property)


# ---------------------------------------------------------------------------------------------
# authentication and authorization


@pytest.mark.airflow_db
@pytest.mark.parametrize("route", ROUTES)
def test_anonymous_is_refused_everywhere(api, reports, route):
    r = api.get(PREFIX + route, follow_redirects=False)
    assert r.status_code == 401, (route, r.status_code)
    assert STUDENT not in r.text and "report" not in r.text.lower()
    r = api.get(PREFIX + route, headers={"Accept": "text/html"}, follow_redirects=False)
    assert r.status_code == 401 and STUDENT not in r.text and "Sign in" in r.text


@pytest.mark.airflow_db
def test_forged_or_expired_tokens_are_refused(api, reports):
    from airflow.api_fastapi.app import get_auth_manager
    from airflow.api_fastapi.auth.managers.simple.user import SimpleAuthManagerUser
    from airflow.api_fastapi.auth.tokens import JWTGenerator

    forged = JWTGenerator(
        secret_key="not-the-server-key-" + "y" * 64, valid_for=300, audience="apache-airflow"
    ).generate({"sub": "viewer", "role": "admin"})
    r = api.get(f"{PREFIX}/api/runs", headers={"Authorization": f"Bearer {forged}"})
    assert r.status_code == 403 and STUDENT not in r.text

    expired = get_auth_manager().generate_jwt(
        SimpleAuthManagerUser(username="viewer", role="viewer"), expiration_time_in_seconds=-120
    )
    r = api.get(f"{PREFIX}/api/runs", headers={"Authorization": f"Bearer {expired}"})
    assert r.status_code in (401, 403) and "runs" not in r.json()


@pytest.mark.airflow_db
def test_signed_in_user_without_a_role_is_forbidden(api, reports):
    token = _login(api, "nobody")
    for route in ROUTES:
        r = api.get(PREFIX + route, headers={"Authorization": f"Bearer {token}"}, follow_redirects=False)
        assert r.status_code == 403, (route, r.status_code)
        assert STUDENT not in r.text


@pytest.mark.airflow_db
def test_access_is_decided_by_the_auth_manager_for_this_dag(api, reports, viewer):
    """A user the auth manager does not let read this DAG's runs gets 403, whatever dag_id the
    request carries; the check is made for canvas_aspen_grade_passback, method GET, entity RUN."""
    from airflow.api_fastapi.app import get_auth_manager
    from airflow.api_fastapi.auth.managers.models.resource_details import DagAccessEntity

    manager = get_auth_manager()
    calls = []

    def only_other_dags(*, method, user, access_entity=None, details=None):
        calls.append((method, access_entity, details.id if details else None, user.get_name()))
        return details is not None and details.id != DAG_ID

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(manager, "is_authorized_dag", only_other_dags)
        for route in [*ROUTES, "/run?dag_id=some_other_dag&run_id=x", "/?dag_id=some_other_dag"]:
            r = api.get(PREFIX + route, headers=viewer, follow_redirects=False)
            assert r.status_code == 403, (route, r.status_code)
            assert STUDENT not in r.text
    assert calls and set(calls) == {("GET", DagAccessEntity.RUN, DAG_ID, "viewer")}
    assert api.get(f"{PREFIX}/api/runs", headers=viewer).status_code == 200


# ---------------------------------------------------------------------------------------------
# what a signed-in reader sees


@pytest.mark.airflow_db
def test_viewer_lists_runs_newest_first_with_totals(api, reports, viewer):
    r = api.get(f"{PREFIX}/api/runs", headers=viewer)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["dag_id"] == DAG_ID and body["total_entries"] == 3
    runs = body["runs"]
    assert [x["folder"] for x in runs] == [
        "manual__2026-03-04T09_00_00+00_00",  # no report yet: sorted by folder time (2033)
        "manual__2026-03-03T15_30_00+00_00",
        "scheduled__2026-03-02T03_00_00+00_00",
    ]
    running, dry, failed = runs
    assert running["status"] == "no_report" and running["totals"] is None
    assert running["links"]["datadocs"].endswith("/manual__2026-03-04T09_00_00%2B00_00/datadocs/index.html")
    assert running["links"]["report_html"] is None

    assert dry["status"] == "succeeded" and dry["dry_run"] is True
    assert dry["run_id"] == "manual__2026-03-03T15:30:00+00:00"
    # a report.json written before the sixth bucket (no "hidden") still shows, hidden as 0
    assert dry["totals"] == {
        "considered": 10,
        "posted": 5,
        "unchanged": 2,
        "empty": 1,
        "hidden": 0,
        "held_back": 2,
        "failed": 0,
    }
    assert dry["links"]["datadocs"] is None

    assert failed["status"] == "failed" and failed["dry_run"] is False
    assert failed["totals"]["failed"] == 1 and failed["verify"] == {"checked": 5, "mismatched": 2}
    assert failed["totals"]["hidden"] == 3 and failed["totals"]["considered"] == 13  # R20's sixth bucket
    assert failed["findings"] == 2 and failed["findings_errors"] == 1 and failed["courses"] == 2
    assert len(failed["failed_reasons"]) == 3
    base = f"{PREFIX}/runs/scheduled__2026-03-02T03_00_00%2B00_00"
    assert failed["links"] == {
        "run": f"{base}/",
        "report_html": f"{base}/report.html",
        "report_json": f"{base}/report.json",
        "findings_csv": f"{base}/findings.csv",
        "datadocs": f"{base}/datadocs/index.html",
    }
    assert STUDENT not in r.text  # the listing carries counts, not findings

    for run in runs:  # every link works for the signed-in reader
        for link in filter(None, run["links"].values()):
            assert api.get(link, headers=viewer).status_code == 200, link

    page = api.get(f"{PREFIX}/", headers=viewer)
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    html = page.text
    positions = [
        html.index(f"<code>{rid}</code>")
        for rid in (
            "manual__2026-03-04T09_00_00+00_00",
            "manual__2026-03-03T15:30:00+00:00",
            "scheduled__2026-03-02T03:00:00+00:00",
        )
    ]
    assert positions == sorted(positions)
    assert "<th>hidden</th>" in html
    assert "dry run" in html and ">failed<" in html and ">succeeded<" in html and "no report" in html
    assert f'href="{base}/report.html"' in html and f'href="{base}/findings.csv"' in html
    assert f'href="{base}/datadocs/index.html"' in html
    assert "<script" not in html and "script-src" not in page.headers["content-security-policy"]
    assert page.headers["cache-control"] == "no-store"


@pytest.mark.airflow_db
def test_the_ui_session_cookie_is_accepted(api, reports):
    """In the Airflow UI the page is opened with the `_token` cookie, not a bearer header."""
    token = _login(api, "viewer")
    r = api.get(f"{PREFIX}/", cookies={"_token": token})
    assert r.status_code == 200 and "scheduled__2026-03-02T03:00:00+00:00" in r.text


@pytest.mark.airflow_db
def test_files_are_served_with_their_content_types(api, reports, viewer):
    run = f"{PREFIX}/runs/scheduled__2026-03-02T03_00_00+00_00"
    expected = {
        "/report.html": "text/html; charset=utf-8",
        "/report.json": "application/json",
        "/findings.csv": "text/csv; charset=utf-8",
        "/datadocs/index.html": "text/html; charset=utf-8",
        "/datadocs/": "text/html; charset=utf-8",
        "/datadocs/static/styles/data_docs_custom_styles.css": "text/css; charset=utf-8",
        "/datadocs/static/images/logo.png": "image/png",
        "/datadocs/validations/grades/run%3A1/batch%2B1.html": "text/html; charset=utf-8",
    }
    for path, ctype in expected.items():
        r = api.get(run + path, headers=viewer)
        assert r.status_code == 200, (path, r.status_code)
        assert r.headers["content-type"] == ctype, path
        assert r.headers["x-content-type-options"] == "nosniff"
        assert r.headers["cache-control"] == "no-store"
        assert r.headers["content-security-policy"].startswith("sandbox allow-scripts")  # opaque origin
    csv = api.get(run + "/findings.csv", headers=viewer)
    assert csv.headers["content-disposition"].startswith("attachment;") and STUDENT in csv.text
    assert STUDENT in api.get(run + "/report.html", headers=viewer).text
    assert api.get(run + "/datadocs/", headers=viewer).text == "<!doctype html><p>data docs index</p>"
    page = api.get(run + "/", headers=viewer)
    assert page.status_code == 200 and "1 course(s) failed" in page.text
    assert f'href="{PREFIX}/runs/scheduled__2026-03-02T03_00_00%2B00_00/datadocs/index.html"' in page.text


@pytest.mark.airflow_db
def test_run_page_lists_the_teacher_digests_and_serves_them(api, reports, viewer):
    folder = reports / "scheduled__2026-03-02T03_00_00+00_00"
    _write(folder / "digests" / "teacher-9001.html", "<!doctype html><p>Dear Dana</p>")
    _write(folder / "digests" / "teacher-9001.txt", "Dear Dana")
    _write(folder / "digests" / "notes.txt", SECRET)  # not a digest: never served
    _write(
        folder / "digests" / "index.json",
        json.dumps(
            [
                {
                    "teacher_id": 9001,
                    "name": "Dana Whitfield",
                    "email": "dana@district.test",
                    "mode": "send",
                    "status": "failed",
                    "reason": "first",
                    "findings": 4,
                    "course_ids": [101, 102],
                    "error": "SMTPDataError: 451",
                    "html": "teacher-9001.html",
                    "text": "teacher-9001.txt",
                },
                {
                    "teacher_id": 9002,
                    "name": "Marcus Bell",
                    "mode": "send",
                    "status": "sent",
                    "reason": "changed",
                    "findings": 1,
                    "course_ids": [103],
                    "html": "../report.json",
                    "text": "teacher-9002.txt",
                },
            ]
        ),
    )
    run = f"{PREFIX}/runs/scheduled__2026-03-02T03_00_00%2B00_00"
    page = api.get(run + "/", headers=viewer).text
    assert "Dana Whitfield" in page and "SMTPDataError: 451" in page and "Marcus Bell" in page
    assert f'href="{run}/digests/teacher-9001.html"' in page and "../report.json" not in page
    r = api.get(run + "/digests/teacher-9001.html", headers=viewer)
    assert r.status_code == 200 and r.headers["content-type"] == "text/html; charset=utf-8"
    assert r.headers["content-security-policy"].startswith("sandbox allow-scripts") and "Dear Dana" in r.text
    assert api.get(run + "/digests/teacher-9001.txt", headers=viewer).text == "Dear Dana"
    for bad in ("notes.txt", "index.json", "teacher-9002.txt", "..%2Freport.json"):
        assert api.get(f"{run}/digests/{bad}", headers=viewer).status_code == 404, bad
    empty = api.get(f"{PREFIX}/runs/manual__2026-03-03T15_30_00%2B00_00/", headers=viewer).text
    assert "None for this run" in empty


@pytest.mark.airflow_db
@pytest.mark.parametrize(
    "path",
    [
        "/runs/%2e%2e/secret.txt",
        "/runs/..%2Fsecret.txt/report.html",
        "/runs/%2e%2e/%2e%2e/secret.txt",
        "/runs/scheduled__2026-03-02T03_00_00+00_00/notes.txt",
        "/runs/scheduled__2026-03-02T03_00_00+00_00/%2e%2e/secret.txt",
        "/runs/scheduled__2026-03-02T03_00_00+00_00/datadocs/%2e%2e/%2e%2e/secret.txt",
        "/runs/scheduled__2026-03-02T03_00_00+00_00/datadocs/..%2F..%2F..%2Fsecret.txt",
        "/runs/scheduled__2026-03-02T03_00_00+00_00/datadocs/%2Fetc/passwd",
        "/runs/scheduled__2026-03-02T03_00_00+00_00/datadocs//etc/passwd",
        "/runs/scheduled__2026-03-02T03_00_00+00_00/datadocs/leak.txt",
        "/runs/scheduled__2026-03-02T03_00_00+00_00/datadocs/.git/config",
        "/runs/scheduled__2026-03-02T03_00_00+00_00/datadocs/static",
        "/runs/scheduled__2026-03-02T03_00_00+00_00/datadocs/missing.html",
        "/runs/scheduled__2026-03-02T03_00_00+00_00/datadocs/static%5C..%5C..%5Creport.json",
        "/runs/linked_run/report.html",
        "/runs/linked_run/",
        "/runs/.hidden/report.html",
        "/runs/no_such_run/report.html",
        "/run?run_id=..",
        "/run?run_id=../secret.txt",
    ],
)
def test_path_traversal_and_unknown_files_are_404(api, reports, viewer, path):
    r = api.get(PREFIX + path, headers=viewer, follow_redirects=True)
    assert r.status_code in (400, 404), (path, r.status_code, r.text[:200])
    assert SECRET not in r.text and "root:" not in r.text


@pytest.mark.airflow_db
def test_dag_run_tab_opens_that_runs_report(api, reports, viewer):
    r = api.get(
        f"{PREFIX}/run",
        params={"dag_id": DAG_ID, "run_id": "scheduled__2026-03-02T03:00:00+00:00"},
        headers=viewer,
        follow_redirects=False,
    )
    assert r.status_code == 303
    assert r.headers["location"] == f"{PREFIX}/runs/scheduled__2026-03-02T03_00_00%2B00_00/report.html"
    assert STUDENT in api.get(r.headers["location"], headers=viewer).text

    # a run that has Data Docs but no report yet: its run page
    r = api.get(
        f"{PREFIX}/run",
        params={"run_id": "manual__2026-03-04T09:00:00+00:00"},
        headers=viewer,
        follow_redirects=False,
    )
    assert r.status_code == 303 and r.headers["location"].endswith("/manual__2026-03-04T09_00_00%2B00_00/")
    assert "No report for this run yet" in api.get(r.headers["location"], headers=viewer).text

    r = api.get(
        f"{PREFIX}/run",
        params={"dag_id": DAG_ID, "run_id": "manual__2030-01-01T00:00:00+00:00"},
        headers=viewer,
        follow_redirects=False,
    )
    assert r.status_code == 404 and "no report yet" in r.text

    # the tab is on every DAG's run pages; another DAG's run with the same run id shows nothing
    r = api.get(
        f"{PREFIX}/run",
        params={"dag_id": "other_dag", "run_id": "scheduled__2026-03-02T03:00:00+00:00"},
        headers=viewer,
        follow_redirects=False,
    )
    assert r.status_code == 200 and "location" not in r.headers
    assert STUDENT not in r.text and f"reports of {DAG_ID} runs only" in r.text


@pytest.mark.airflow_db
def test_empty_or_missing_reports_dir(api, tmp_path, monkeypatch, viewer):
    monkeypatch.setenv("CANVAS_ASPEN_REPORTS_DIR", str(tmp_path / "not-yet"))
    r = api.get(f"{PREFIX}/api/runs", headers=viewer)
    assert r.status_code == 200 and r.json()["runs"] == []
    assert "No run reports yet" in api.get(f"{PREFIX}/", headers=viewer).text


@pytest.mark.airflow_db
def test_no_report_content_is_logged(api, reports, viewer, caplog):
    with caplog.at_level(logging.DEBUG):
        api.get(f"{PREFIX}/", headers=viewer)
        api.get(f"{PREFIX}/api/runs", headers=viewer)
        api.get(f"{PREFIX}/runs/scheduled__2026-03-02T03_00_00+00_00/report.html", headers=viewer)
        api.get(f"{PREFIX}/runs/scheduled__2026-03-02T03_00_00+00_00/findings.csv", headers=viewer)
    assert "3 run folder(s) listed" in caplog.text
    assert STUDENT not in caplog.text and SECRET not in caplog.text


# ---------------------------------------------------------------------------------------------
# agreement with the code that writes the reports


def test_folder_name_is_the_report_stages_folder(tmp_path):
    """The page looks a run up in the folder the report stage writes: both name it with
    ``ids.run_folder_name``, which keeps a folder name safe whatever the run id."""
    from canvas_aspen import ids, stages

    for run_id in [
        "scheduled__2026-03-02T03:00:00+00:00",
        "manual__2026-11-01T06:30:00.123456+00:00",
        "backfill with spaces/and slashes",
        "..",
        "a" * 300,
    ]:
        folder = stages.report_folder(tmp_path, run_id)
        assert folder.parent == tmp_path and folder.name == ids.run_folder_name(run_id)


def test_failed_reasons_are_the_reports_own():
    from canvas_aspen.report import run_failed

    for kw in [
        {},
        {"failed": 2},
        {"mismatched": 1},
        {"failed_courses": 3},
        {"failed": 1, "mismatched": 4, "failed_courses": 1},
    ]:
        doc = _report("r", "2026-03-02T22:00:00+00:00", **kw)
        assert ui_plugin.run_failed_reasons(doc) == run_failed(doc)


@pytest.mark.airflow_db
def test_a_failed_runs_reason_is_visible_text_in_the_list(api, reports, viewer):
    html = api.get(f"{PREFIX}/", headers=viewer).text
    row = html[html.index("<code>scheduled__2026-03-02T03:00:00+00:00</code>") :]
    row = row[: row.index("</tr>")]
    assert "title=" not in row  # not only a tooltip
    for reason in ("1 course(s) failed", "verify found 2 difference(s) in Aspen"):
        assert reason in row.split('class="why">', 1)[1], row


@pytest.mark.airflow_db
def test_a_run_whose_plan_failed_is_listed_with_its_reason(api, reports, viewer):
    """The plan writes its reason at once; the report task then writes a report that says it."""
    folder = reports / "manual__2026-03-05T10_00_00+00_00"
    _write(
        folder / "plan-failed.json",
        json.dumps(
            {
                "reason": "course_ids: Canvas has no course with id 999999",
                "started_at": "2026-03-05T10:00:02+00:00",
            }
        ),
    )
    listed = {r["folder"]: r for r in api.get(f"{PREFIX}/api/runs", headers=viewer).json()["runs"]}
    run = listed[folder.name]
    assert run["status"] == "no_report" and run["started_at"] == "2026-03-05T10:00:02+00:00"
    assert run["failed_reasons"] == ["plan failed: course_ids: Canvas has no course with id 999999"]

    doc = _report("manual__2026-03-05T10:00:00+00:00", "2026-03-05T10:00:00+00:00")
    doc.update(totals=dict.fromkeys(ui_plugin.TOTAL_KEYS, 0), failed_reasons=[run["failed_reasons"][0]])
    _write(folder / "report.json", json.dumps(doc))
    listed = {r["folder"]: r for r in api.get(f"{PREFIX}/api/runs", headers=viewer).json()["runs"]}
    assert listed[folder.name]["status"] == "failed"
    assert listed[folder.name]["failed_reasons"] == run["failed_reasons"]
    assert "Canvas has no course with id 999999" in api.get(f"{PREFIX}/", headers=viewer).text


@pytest.mark.airflow_db
def test_a_finished_run_without_a_report_says_why_in_the_tab_and_the_list(
    api, reports, viewer, monkeypatch, caplog
):
    with caplog.at_level(logging.DEBUG, logger=ui_plugin.log.name):
        assert ui_plugin.airflow_runs({"nothing"}) == {}  # the real metadata DB: read, no such run
    assert "could not be read" not in caplog.text
    ended = {
        "manual__2026-03-04T09_00_00+00_00": {
            "run_id": "manual__2026-03-04T09:00:00+00:00",
            "state": "failed",
            "failed_tasks": ["report"],
        },
        "manual__2026-03-06T09_00_00+00_00": {
            "run_id": "manual__2026-03-06T09:00:00+00:00",
            "state": "failed",
            "failed_tasks": ["extract", "report"],
        },
    }
    monkeypatch.setattr(
        ui_plugin,
        "airflow_runs",
        lambda folders=None: {k: v for k, v in ended.items() if folders is None or k in folders},
    )
    r = api.get(
        f"{PREFIX}/run",
        params={"dag_id": DAG_ID, "run_id": "manual__2026-03-06T09:00:00+00:00"},
        headers=viewer,
        follow_redirects=False,
    )
    assert r.status_code == 404 and "still going" not in r.text
    assert "ended failed without a report: task(s) extract, report failed" in r.text
    listed = {x["folder"]: x for x in api.get(f"{PREFIX}/api/runs", headers=viewer).json()["runs"]}
    folder = listed["manual__2026-03-04T09_00_00+00_00"]  # a folder (Data Docs) but no report
    assert folder["failed_reasons"] == [
        "the run ended failed without a report: task(s) report failed (their logs say why)"
    ]
    page = api.get(f"{PREFIX}/runs/manual__2026-03-04T09_00_00+00_00/", headers=viewer).text
    assert "task(s) report failed" in page and "still going" not in page


@pytest.mark.airflow_db
def test_a_report_opened_in_the_run_tab_links_back_to_the_list(api, reports, viewer):
    r = api.get(
        f"{PREFIX}/run",
        params={"dag_id": DAG_ID, "run_id": "scheduled__2026-03-02T03:00:00+00:00"},
        headers=viewer,
    )
    assert r.status_code == 200 and STUDENT in r.text
    assert f'<a href="{PREFIX}/" target="_self">All grade passback runs</a>' in r.text
    assert r.text.index("All grade passback runs") < r.text.index(STUDENT)
    assert "sandbox" in r.headers["content-security-policy"]
    on_disk = (reports / "scheduled__2026-03-02T03_00_00+00_00" / "report.html").read_text()
    assert "All grade passback runs" not in on_disk  # the file itself is unchanged


@pytest.fixture
def run_waiting_for_a_missing_pool(api):
    """A run in the metadata DB whose extract is scheduled in a pool nobody created (what
    Airflow does with CANVAS_ASPEN_CANVAS_POOL=canvas_api without `airflow pools set`)."""
    import uuid
    from datetime import datetime, timezone

    import sqlalchemy as sa
    from airflow.models.dagrun import DagRun
    from airflow.models.taskinstance import TaskInstance
    from airflow.utils.session import create_session

    run_id = f"manual__pool-{uuid.uuid4().hex[:8]}"
    now = datetime.now(timezone.utc)
    with create_session() as session:
        session.execute(
            sa.insert(DagRun.__table__).values(
                dag_id=DAG_ID,
                run_id=run_id,
                state="running",
                run_type="manual",
                run_after=now,
                start_date=now,
                queued_at=now,
                clear_number=0,
                log_template_id=None,
                span_status="not_started",
            )
        )
        for task_id, state, pool in [
            ("plan", "success", "default_pool"),
            ("extract", "scheduled", "canvas_api"),
        ]:
            session.execute(
                sa.insert(TaskInstance.__table__).values(
                    id=uuid.uuid4(),
                    task_id=task_id,
                    dag_id=DAG_ID,
                    run_id=run_id,
                    map_index=-1,
                    try_number=1,
                    max_tries=2,
                    hostname="",
                    unixname="airflow",
                    priority_weight=1,
                    pool=pool,
                    pool_slots=1,
                    queue="default",
                    state=state,
                    custom_operator_name="@task",
                    executor_config=b"\x80\x04}\x94.",
                    span_status="not_started",
                    operator="_PythonDecoratedOperator",
                    updated_at=now,
                )
            )
    yield run_id
    with create_session() as session:
        session.execute(sa.delete(TaskInstance.__table__).where(TaskInstance.__table__.c.run_id == run_id))
        session.execute(sa.delete(DagRun.__table__).where(DagRun.__table__.c.run_id == run_id))


@pytest.mark.airflow_db
def test_a_run_waiting_for_a_pool_that_does_not_exist_says_so(
    api, reports, viewer, run_waiting_for_a_missing_pool
):
    run_id = run_waiting_for_a_missing_pool
    r = api.get(
        f"{PREFIX}/run", params={"dag_id": DAG_ID, "run_id": run_id}, headers=viewer, follow_redirects=False
    )
    assert "still going" not in r.text
    assert "task(s) extract wait for the pool &#39;canvas_api&#39;, which does not exist" in r.text
    assert "airflow pools set canvas_api 1" in r.text and "CANVAS_ASPEN_CANVAS_POOL" in r.text
    listed = {x["run_id"]: x for x in api.get(f"{PREFIX}/api/runs", headers=viewer).json()["runs"]}
    assert "canvas_api" in listed[run_id]["failed_reasons"][0] and listed[run_id]["links"]["run"] is None
    assert "which does not exist" in api.get(f"{PREFIX}/", headers=viewer).text
