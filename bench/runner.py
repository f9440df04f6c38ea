"""Drive the sandbox and the measured runs of one size.

Set-up (not measured): the district, then a first full run with zero latency so that
Aspen and the ledger hold the district (cached: ``bench/.cache/setup-*``). Measured, with
25 ms Canvas / 40 ms Aspen latency and the hooks' default concurrency caps: a no-change
run, then a nightly run after a day of grading. Sizes that ask for it also measure a first
full run with latency (fresh Aspen and ledger) and the naive baseline.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench import bounds, district
from bench.sizes import ASPEN_LATENCY_MS, CANVAS_LATENCY_MS, Size

REPO = Path(__file__).resolve().parents[1]
LATENCY = {"canvas": CANVAS_LATENCY_MS, "aspen": ASPEN_LATENCY_MS}
DEFAULT_CAP = 8  # HttpSettings.max_concurrency: the hooks' default
DAY_OF_GRADING = {
    "fraction": 0.02,
    "add_assignments": 3,
    "delete_assignments": 2,
    "seed": 7,
    "scripted": False,
}


def endpoint_name(key: str, system: str) -> str:
    """A sandbox stats key ("GET /api/v1/courses/{course_id}/sections") as the hook method."""
    method, _, path = key.partition(" ")
    if system == "canvas":
        for suffix, name in (
            ("/students/submissions", "list_submissions"),
            ("/sections", "list_sections"),
            ("/enrollments", "list_student_enrollments"),
            ("/users", "list_teachers"),
            ("/assignment_groups", "list_assignment_groups"),
            ("/accounts/{account_id}/courses", "list_courses"),
            ("/accounts/{account_id}/terms", "list_terms"),
            ("/courses/{course_id}", "get_course"),
        ):
            if path.endswith(suffix):
                return name
        return key
    if method == "POST":
        return "token"
    if method in ("PUT", "DELETE"):
        kind = "line_item" if "/lineItems/" in path else "result"
        return f"{method.lower()}_{kind}"
    for suffix, name in (
        ("/categories", "list_categories"),
        ("/gradingPeriods", "list_grading_periods"),
        ("/lineItems", "list_line_items"),
        ("/results", "list_results"),
        ("/students", "list_students"),
    ):
        if path.endswith(suffix):
            return name
    return key


def by_endpoint(
    stats: dict[str, Any], system: str
) -> tuple[dict[str, int], dict[str, int], dict[str, float]]:
    """Requests per endpoint (hook names), non-2xx statuses, and the mean time the sandbox
    took per request of each endpoint (its injected latency included), from its stats."""
    out: dict[str, int] = {}
    seconds: dict[str, float] = {}
    for key, ep in stats["endpoints"].items():
        name = endpoint_name(key, system)
        out[name] = out.get(name, 0) + ep["count"]
        seconds[name] = seconds.get(name, 0.0) + ep["latency_s_total"]
    bad = {k: v for k, v in stats["statuses"].items() if not str(k).startswith("2")}
    return out, bad, {k: round(1000 * seconds[k] / out[k], 1) for k in out if out[k]}


class Session:
    """One sandbox and one ledger, the runs measured one after the other."""

    def __init__(
        self,
        size: Size,
        work: Path,
        *,
        scenario: Path,
        ledger_src: Path | None,
        shards: int,
        courses_per_shard: int = 1,
        cap: int = DEFAULT_CAP,
        data_docs: bool = True,
        profile_dir: Path | None = None,
        log_level: str = "WARNING",
        code: Path | None = None,
        slots: int = 1,
    ) -> None:
        from sandbox.control import Sandbox

        self.size, self.work, self.shards, self.cap, self.slots = size, work, shards, cap, slots
        self.courses_per_shard = courses_per_shard
        self.data_docs, self.profile_dir, self.log_level = data_docs, profile_dir, log_level
        self.code = code  # another checkout's plugins/ and expectations/ (before/after comparisons)
        self.scenario = scenario
        self.classes = district.aspen_classes(scenario)
        self.ledger = work / "ledger.db"
        if ledger_src is not None:
            district.copy_sqlite(ledger_src, self.ledger)
        self.sb = Sandbox.start(scenario=str(scenario), startup_timeout=600)
        self.runs = 0

    def close(self) -> None:
        self.sb.stop()

    def latency(self, on: bool) -> None:
        for system in ("canvas", "aspen"):
            self.sb.set_faults(system, **({"latency_ms": LATENCY[system]} if on else {}))

    def env(self, cap: int) -> dict[str, str]:
        env = {}
        for key, value in self.sb.airflow_conn_env().items():
            conn = json.loads(value)
            conn["extra"]["max_concurrency"] = cap
            env[key] = json.dumps(conn)
        env.update(
            {
                "AIRFLOW_HOME": str(self.work / "airflow"),
                "GX_ANALYTICS_ENABLED": "False",
                "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
                "CANVAS_ASPEN_DATA_DOCS": "on" if self.data_docs else "off",
            }
        )
        return env

    def _worker(self, spec: dict[str, Any]) -> dict[str, Any]:
        self.runs += 1
        spec_path = self.work / f"spec-{self.runs}.json"
        out_path = self.work / f"out-{self.runs}.json"
        spec_path.write_text(json.dumps(spec))
        paths = [str(self.code / "plugins")] if self.code else []
        env = dict(
            os.environ,
            PYTHONPATH=os.pathsep.join(filter(None, [*paths, str(REPO), os.environ.get("PYTHONPATH")])),
        )
        if self.code:
            env["CANVAS_ASPEN_EXPECTATIONS_DIR"] = str(self.code / "expectations")
        proc = subprocess.run(
            [sys.executable, "-m", "bench.worker", str(spec_path), str(out_path)],
            cwd=REPO,
            env=env,
            capture_output=True,
            text=True,
        )
        if proc.returncode != 0:
            raise RuntimeError(
                f"bench worker failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-6000:]}"
            )
        return json.loads(out_path.read_text())

    def run(
        self,
        label: str,
        *,
        latency: bool,
        params: dict[str, Any] | None = None,
        mode: str = "dag",
        cap: int | None = None,
        measure: bool = True,
    ) -> dict[str, Any]:
        """One run; with ``measure``, also the sandbox's request counts and the lower bound."""
        cap = cap or self.cap
        if measure:
            self.latency(False)
            canvas_need = bounds.canvas_minimum(self.sb)
            before = bounds.aspen_snapshot(self.sb, self.classes)
        self.latency(latency)
        self.sb.reset_stats()
        run_id = f"bench-{self.size.name}-{label}-{int(time.time())}"
        spec = {
            "env": self.env(cap),
            "run_id": run_id,
            "params": params or {},
            "shards": self.shards,
            "courses_per_shard": self.courses_per_shard,
            "ledger_url": f"sqlite:///{self.ledger}",
            "stage_root": f"file://{self.work / 'stage'}",
            "reports_dir": str(self.work / "reports"),
            "mode": mode,
            "log_level": self.log_level,
            "slots": self.slots,
        }
        if self.profile_dir is not None and measure:
            spec["profile"] = str(self.profile_dir / f"profile-{self.size.name}-{label}.html")
        t0 = time.perf_counter()
        out = self._worker(spec)
        out["process_wall_s"] = round(time.perf_counter() - t0, 3)
        stats = {s: self.sb.stats(s) for s in ("canvas", "aspen")}
        self.latency(False)
        if not measure:
            return out
        out["requests"], out["http_errors"], out["server_ms"] = {}, {}, {}
        for s in ("canvas", "aspen"):
            out["requests"][s], out["http_errors"][s], out["server_ms"][s] = by_endpoint(stats[s], s)
        out["max_in_flight"] = {s: stats[s]["max_in_flight"] for s in ("canvas", "aspen")}
        classes = out.get("facts", {}).get("classes") or self.classes
        after = bounds.aspen_snapshot(self.sb, classes)
        aspen_need, changes = bounds.aspen_minimum({c: before[c] for c in classes}, after)
        out["min_requests"] = {"canvas": canvas_need, "aspen": aspen_need}
        out["aspen_changes"] = changes
        return out

    def day_of_grading(self) -> dict[str, Any]:
        done = self.sb.day_of_grading(**DAY_OF_GRADING)
        c = done["canvas"]
        return {
            "changed": len(c["changed"]),
            "slots": c["slots"],
            "added_assignments": len(c["added_assignments"]),
            "deleted_assignments": len(c["deleted_assignments"]),
        }


def new_workdir(root: Path | None = None) -> Path:
    return Path(tempfile.mkdtemp(prefix="canvas-aspen-bench-", dir=root))


def ensure_setup(size: Size, *, shards: int, fresh: bool, log) -> tuple[Path, Path, dict[str, Any] | None]:
    """The set-up state (scenario with Aspen's state after a first full run, ledger file)."""
    target = district.setup_dir(size)
    scen = district.district_file(size)
    if fresh or not (target / "scenario.json").exists() or not (target / "ledger.db").exists():
        log(f"[{size.name}] set-up: first full run with zero latency (not measured) ...")
        work = new_workdir()
        session = Session(size, work, scenario=scen, ledger_src=None, shards=shards, data_docs=False)
        try:
            out = session.run("setup", latency=False, measure=False)
            log(f"[{size.name}] set-up run: {out['wall_s']:.1f}s, totals {out['totals']}")
            district.save_setup(session.sb, scen, session.ledger, target)
        finally:
            session.close()
            shutil.rmtree(work, ignore_errors=True)
        return target / "scenario.json", target / "ledger.db", out
    return target / "scenario.json", target / "ledger.db", None
