"""Drive a sandbox from Python: start ``python -m sandbox serve`` as a child process, wait until
both servers answer, call their ``/_sandbox/`` admin API, and always stop the process.

    with Sandbox.start(scenario="demo", aspen_error_style="text") as sb:
        sb.canvas_url, sb.aspen_url, sb.canvas_token, ...
        sb.set_faults("aspen", error_rate=0.05, seed=1)
        sb.day_of_grading(fraction=0.02, add_assignments=2, delete_assignments=1, seed=7)
"""

from __future__ import annotations

import atexit
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from sandbox import scenario as scenario_mod

REPO_ROOT = Path(__file__).resolve().parents[1]
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # loopback: never via a proxy
_LIVE: set[Sandbox] = set()


class SandboxError(RuntimeError):
    pass


def _set_parent_death_signal() -> None:  # pragma: no cover - runs in the child
    """Linux: the server dies with the process that started it, even on SIGKILL of the parent."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


class Sandbox:
    """A running sandbox (Canvas + Aspen in one child process). Use ``Sandbox.start(...)``."""

    def __init__(self, process: subprocess.Popen | None, info: dict, workdir: Path) -> None:
        self.process, self.info, self.workdir = process, info, workdir
        self.canvas_url: str = info["canvas_url"]
        self.aspen_url: str = info["aspen_url"]
        self.canvas_token: str = info["canvas_token"]
        self.aspen_client_id: str = info["aspen_client_id"]
        self.aspen_client_secret: str = info["aspen_client_secret"]
        self.canvas_account_id: str = info["canvas_account_id"]
        self.aspen_token_path: str = info["aspen_token_path"]
        self.aspen_api_path: str = info["aspen_api_path"]
        self.pid: int = info["pid"]

    # --- life cycle ----------------------------------------------------------------------------

    @classmethod
    def start(
        cls,
        scenario: str | Path | dict = "demo",
        aspen_error_style: str = "json",
        canvas_faults: dict | None = None,
        aspen_faults: dict | None = None,
        *,
        canvas_port: int = 0,
        aspen_port: int = 0,
        startup_timeout: float = 120.0,
        **settings: Any,
    ) -> Sandbox:
        if not isinstance(scenario, dict):
            try:
                scenario = str(scenario_mod.resolve(scenario))  # fail fast, before spawning anything
            except scenario_mod.ScenarioError as exc:
                raise SandboxError(str(exc)) from exc
        workdir = Path(tempfile.mkdtemp(prefix="canvas-aspen-sandbox-"))
        if isinstance(scenario, dict):
            path = workdir / "scenario.json"
            path.write_text(json.dumps(scenario))
            scenario = str(path)
        urls_file = workdir / "urls.json"
        settings = dict(settings, aspen_error_style=aspen_error_style)
        cmd = [
            sys.executable,
            "-m",
            "sandbox",
            "serve",
            "--scenario",
            str(scenario),
            "--urls-file",
            str(urls_file),
            "--canvas-port",
            str(canvas_port),
            "--aspen-port",
            str(aspen_port),
            "--settings",
            json.dumps(settings),
            "--canvas-faults",
            json.dumps(canvas_faults or {}),
            "--aspen-faults",
            json.dumps(aspen_faults or {}),
        ]
        env = dict(
            os.environ,
            PYTHONPATH=os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")])),
        )
        log = open(workdir / "server.log", "wb")  # noqa: SIM115 - closed in stop()
        # PR_SET_PDEATHSIG fires when the *thread* that started the child ends: only from the main thread
        tie = sys.platform == "linux" and threading.current_thread() is threading.main_thread()
        process = subprocess.Popen(
            cmd,
            cwd=REPO_ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            preexec_fn=_set_parent_death_signal if tie else None,
        )
        process._sandbox_log = log  # type: ignore[attr-defined]
        deadline = time.monotonic() + startup_timeout
        try:
            while not urls_file.exists():
                if process.poll() is not None:
                    raise SandboxError(
                        f"sandbox exited with {process.returncode}:\n{_tail(workdir / 'server.log')}"
                    )
                if time.monotonic() > deadline:
                    raise SandboxError(
                        f"sandbox did not start in {startup_timeout}s:\n{_tail(workdir / 'server.log')}"
                    )
                time.sleep(0.05)
            sb = cls(process, json.loads(urls_file.read_text()), workdir)
            for system in ("canvas", "aspen"):
                sb._admin(system, "GET", "/health")
        except BaseException:
            _stop_process(process)
            shutil.rmtree(workdir, ignore_errors=True)
            raise
        _LIVE.add(sb)
        return sb

    @classmethod
    def attach(cls, urls_file: str | Path) -> Sandbox:
        """A handle on a sandbox started elsewhere (``python -m sandbox serve --urls-file``); ``stop()``
        leaves that server running."""
        info = json.loads(Path(urls_file).read_text())
        info.setdefault("aspen_token_path", "/oauth/rest/v2.0/auth")
        info.setdefault("aspen_api_path", "/ims/oneroster/v1p1")
        sb = cls(None, info, Path(urls_file).parent)
        sb._admin("canvas", "GET", "/health")
        return sb

    def stop(self) -> None:
        """Stop the server process (idempotent) and remove its working directory."""
        if self.process is None:  # attached: not ours to stop
            return
        _stop_process(self.process)
        _LIVE.discard(self)
        if not os.environ.get("SANDBOX_KEEP_LOGS"):
            shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> Sandbox:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def log_path(self) -> Path:
        return self.workdir / "server.log"

    # --- admin API -------------------------------------------------------------------------------

    def _admin(self, system: str, method: str, path: str, body: Any = None, timeout: float = 120.0) -> Any:
        base = {"canvas": self.canvas_url, "aspen": self.aspen_url}.get(system)
        if base is None:
            raise ValueError("system must be 'canvas' or 'aspen'")
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(
            f"{base}/_sandbox{path}", data=data, method=method, headers={"Content-Type": "application/json"}
        )
        try:
            with _OPENER.open(request, timeout=timeout) as response:
                raw = response.read()
        except urllib.error.HTTPError as exc:
            raise SandboxError(
                f"{method} {path} on {system}: {exc.code} {exc.read().decode(errors='replace')}"
            ) from exc
        return json.loads(raw) if raw else None

    def state(self, class_id: str | None = None, summary: bool = False) -> dict:
        """Aspen's state: {"classes", "categories", "gradingPeriods", "lineItems", "results"}, each
        by sourcedId."""
        query = "?summary=1" if summary else (f"?class_id={class_id}" if class_id else "")
        return self._admin("aspen", "GET", f"/state{query}")

    def canvas_state(self, course_id: int | None = None) -> dict:
        """Canvas: counts, or one course in full (including deleted and unpublished assignments)."""
        return self._admin("canvas", "GET", f"/state?course_id={course_id}" if course_id else "/state")

    def stats(self, system: str = "aspen") -> dict:
        """Requests per endpoint ("GET /api/v1/..."), status counts, max_in_flight, latency totals."""
        return self._admin(system, "GET", "/stats")

    def reset_stats(self, system: str | None = None) -> None:
        for s in (system,) if system else ("canvas", "aspen"):
            self._admin(s, "POST", "/stats/reset")

    def reset(self) -> None:
        """Both servers back to the scenario's initial state, faults and settings; stats zeroed."""
        for system in ("canvas", "aspen"):
            self._admin(system, "POST", "/reset")

    def set_faults(self, system: str, **faults: Any) -> dict:
        """Replace the faults of one server (keys of ``sandbox.faults.Faults``); no keys = all off."""
        return self._admin(system, "PUT", "/faults", faults)

    def faults(self, system: str) -> dict:
        return self._admin(system, "GET", "/faults")

    def set_settings(self, **settings: Any) -> dict:
        """Change settings at run time (both servers share one ``Settings``)."""
        return self._admin("aspen", "PATCH", "/settings", settings)

    def settings(self) -> dict:
        return self._admin("aspen", "GET", "/settings")

    def day_of_grading(
        self,
        fraction: float = 0.02,
        add_assignments: int = 0,
        delete_assignments: int = 0,
        seed: int = 0,
        aspen_edit_fraction: float = 0.0,
        scripted: bool = True,
    ) -> dict:
        """A day of teachers' work; returns {"canvas": {...}, "aspen": {...}} saying what changed."""
        params = {
            "fraction": fraction,
            "add_assignments": add_assignments,
            "delete_assignments": delete_assignments,
            "seed": seed,
            "scripted": scripted,
        }
        canvas = self._admin("canvas", "POST", "/day-of-grading", params)
        aspen = self._admin(
            "aspen",
            "POST",
            "/day-of-grading",
            {"seed": seed, "scripted": scripted, "aspen_edit_fraction": aspen_edit_fraction},
        )
        return {"canvas": canvas, "aspen": aspen}

    def aspen_edit_result(self, result_sourced_id: str, score: float | None, **fields: Any) -> dict:
        """A teacher's hand edit of one result in Aspen (also scoreStatus, comment)."""
        return self._admin("aspen", "PATCH", f"/results/{result_sourced_id}", dict(fields, score=score))

    def aspen_set_grading_period(self, sourced_id: str, **fields: Any) -> dict:
        """E.g. ``locked=True`` to close a grading period."""
        return self._admin("aspen", "PATCH", f"/gradingPeriods/{sourced_id}", fields)

    def aspen_expire_tokens(self) -> int:
        return self._admin("aspen", "POST", "/tokens/expire")["expired"]

    def canvas_set_submission(self, course_id: int, assignment_id: int, user_id: int, **fields: Any) -> dict:
        """A teacher grades one submission (score, excused, late, missing, late_policy_status, ...)."""
        path = f"/courses/{course_id}/assignments/{assignment_id}/submissions/{user_id}"
        return self._admin("canvas", "PUT", path, fields)

    def canvas_post_grades(self, course_id: int, assignment_id: int) -> dict:
        """The teacher posts an assignment's hidden grades (manual posting policy): ``posted_at`` = now."""
        return self._admin("canvas", "POST", f"/courses/{course_id}/assignments/{assignment_id}/post_grades")

    def canvas_hide_grades(self, course_id: int, assignment_id: int) -> dict:
        """The teacher hides an assignment's grades from its students again (``posted_at`` null)."""
        return self._admin("canvas", "POST", f"/courses/{course_id}/assignments/{assignment_id}/hide_grades")

    def canvas_delete_assignment(self, course_id: int, assignment_id: int) -> dict:
        return self._admin("canvas", "DELETE", f"/courses/{course_id}/assignments/{assignment_id}")

    def canvas_update_assignment(self, course_id: int, assignment_id: int, **fields: Any) -> dict:
        """E.g. ``post_to_sis=False``, ``points_possible=20``, ``due_at=...``."""
        return self._admin("canvas", "PATCH", f"/courses/{course_id}/assignments/{assignment_id}", fields)

    # --- for Airflow -------------------------------------------------------------------------------

    def airflow_conn_env(self) -> dict[str, str]:
        """``AIRFLOW_CONN_*`` values (Airflow's JSON connection format) pointing at this sandbox."""
        canvas = {
            "conn_type": "canvas",
            "host": self.canvas_url,
            "password": self.canvas_token,
            "extra": {"account_id": self.canvas_account_id},
        }
        aspen = {
            "conn_type": "aspen",
            "host": self.aspen_url,
            "login": self.aspen_client_id,
            "password": self.aspen_client_secret,
            "extra": {"token_path": self.aspen_token_path, "api_path": self.aspen_api_path},
        }
        return {
            "AIRFLOW_CONN_CANVAS_DEFAULT": json.dumps(canvas),
            "AIRFLOW_CONN_ASPEN_DEFAULT": json.dumps(aspen),
        }


def _tail(path: Path, lines: int = 40) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except FileNotFoundError:
        return ""


def _stop_process(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
    log = getattr(process, "_sandbox_log", None)
    if log is not None:
        log.close()


@atexit.register
def _stop_all() -> None:
    for sb in list(_LIVE):
        sb.stop()
