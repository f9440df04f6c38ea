"""``python -m bench --airflow local|celery``: the runs under a real Airflow, not the model.

A real Airflow is started beside the sandbox (:mod:`sandbox.airflow_stack`: ``airflow
api-server``, ``scheduler`` and ``dag-processor`` on a fresh PostgreSQL metadata database,
with the LocalExecutor (``parallelism`` 4, the model's 4 slots), or the CeleryExecutor with
two workers of 2 slots each on Redis), the DAG folder holding the passback's DAG and the naive
baseline's one-task DAG (:mod:`bench.naive_dag`), and no pool: the DAG runs as a plain
deployment runs it (every task in ``default_pool``, one task instance of each task at a time).
A pool is made only when ``--env CANVAS_ASPEN_CANVAS_POOL=…``/``CANVAS_ASPEN_ASPEN_POOL=…`` names
one (:func:`pools_named`, as docker compose's ``airflow-init`` makes them). Each run is triggered
through the REST API, as the Trigger form does, and measured from the trigger to the state
``success`` seen by polling the API every 0.25 s.

The same sandbox latencies, concurrency caps, set-up state (the model's cached set-up run),
day of grading, request counts, minimum requests and lower bound as the model
(:mod:`bench.runner`), so a real record sits beside the model's of the same district.
Per task instance: its stage, when it was queued, started and ended (REST API), so
``queued_s`` (waiting for a slot or a pool, and the executor's start-up) and ``running_s``
(the task process, start to end) are known. Peak memory: the largest PSS sum over every
Airflow process (api-server, scheduler, dag-processor, workers, task processes), sampled every
0.5 s. Not measured here: the time with an HTTP request in flight (the task processes are
Airflow's, not the benchmark's), so ``outside_http_share`` is empty.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import threading
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from bench import bounds, district
from bench.measure import pss_bytes
from bench.naive_dag import NAIVE_DAG_ID
from bench.runner import DEFAULT_CAP, LATENCY, REPO, by_endpoint
from bench.sizes import Size

EXECUTORS = {"local": "LocalExecutor", "celery": "CeleryExecutor"}
SLOTS = 4  # LocalExecutor parallelism; Celery: 2 workers x 2
POOL_VARIABLES = ("CANVAS_ASPEN_CANVAS_POOL", "CANVAS_ASPEN_ASPEN_POOL")
POLL_S = 0.25
RUN_TIMEOUT_S = 3600.0


class TreePss:
    """Every ``interval`` s, the PSS summed over the stack's processes and all their
    descendants (task processes come and go); ``peak`` is the largest sum seen."""

    def __init__(self, pids: list[int], interval: float = 0.5) -> None:
        self.roots, self.interval, self.peak = pids, interval, 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="stack-pss", daemon=True)

    def _run(self) -> None:
        import psutil

        while not self._stop.wait(self.interval):
            pids = set()
            for root in self.roots:
                try:
                    proc = psutil.Process(root)
                    pids |= {root, *(c.pid for c in proc.children(recursive=True))}
                except psutil.Error:
                    continue
            self.peak = max(self.peak, sum(pss_bytes(p) for p in pids))

    def __enter__(self) -> TreePss:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)


def proc_stat_cpu(text: str) -> tuple[float, float]:
    """(busy, total) CPU seconds of every core since boot, from ``/proc/stat``'s ``cpu`` line
    (busy: all but idle and iowait)."""
    for line in text.splitlines():
        fields = line.split()
        if fields and fields[0] == "cpu":
            ticks = [int(x) for x in fields[1:]]
            hz = os.sysconf("SC_CLK_TCK")
            idle = ticks[3] + (ticks[4] if len(ticks) > 4 else 0)
            return (sum(ticks) - idle) / hz, sum(ticks) / hz
    raise ValueError("no cpu line in /proc/stat")


class CpuUse:
    """The machine's busy CPU seconds over a run (every process, from ``/proc/stat``), how full
    its cores were, and how much of it the sandbox (Canvas and Aspen stand-ins) took: what is
    left is Airflow (scheduler, executor, task processes) and the benchmark's polling."""

    def __init__(self, sandbox_pid: int) -> None:
        self.sandbox_pid = sandbox_pid
        self.out: dict[str, Any] = {}

    def _sample(self) -> tuple[float, float, float, float]:
        import psutil

        busy, total = proc_stat_cpu(Path("/proc/stat").read_text())
        try:
            t = psutil.Process(self.sandbox_pid).cpu_times()
            sandbox = t.user + t.system
        except psutil.Error:
            sandbox = 0.0
        return busy, total, sandbox, time.monotonic()

    def __enter__(self) -> CpuUse:
        self._start = self._sample()
        return self

    def __exit__(self, *exc: object) -> None:
        busy, total, sandbox, elapsed = (b - a for a, b in zip(self._start, self._sample(), strict=True))
        cores = os.cpu_count() or 1
        self.out = {
            "cores": cores,
            "busy_s": round(busy, 1),
            "busy_share": round(busy / total, 3) if total else None,
            "sandbox_s": round(sandbox, 1),
            "rest_s": round(busy - sandbox, 1),
            "wall_s": round(elapsed, 1),
        }


def pools_named(env: dict[str, str]) -> dict[str, int]:
    """The pools the DAG will use with ``env`` ({name: slots}), as docker compose's
    ``airflow-init`` makes them: each name in ``CANVAS_ASPEN_CANVAS_POOL``/``_ASPEN_POOL`` but
    ``default_pool`` (Airflow's own), with ``CANVAS_ASPEN_POOL_SLOTS`` slots (default 1). None
    named: none made, every task in ``default_pool``."""
    slots = int(env.get("CANVAS_ASPEN_POOL_SLOTS", "1"))
    names = (env.get(var, "").strip() for var in POOL_VARIABLES)
    return {name: slots for name in names if name and name != "default_pool"}


def _ts(value: str | None) -> float | None:
    return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp() if value else None


def task_table(tis: list[dict[str, Any]], started: float) -> list[dict[str, Any]]:
    """One row per task instance: stage, shard, seconds queued and running, start since the trigger."""
    rows = []
    for ti in tis:
        queued, start, end = _ts(ti.get("queued_when")), _ts(ti.get("start_date")), _ts(ti.get("end_date"))
        rows.append(
            {
                "stage": ti["task_id"].split(".")[-1].replace("naive_passback", "naive"),
                "map_index": ti.get("map_index", -1),
                "state": ti.get("state"),
                "try": ti.get("try_number"),
                "hostname": ti.get("hostname"),
                "queued_s": round(start - queued, 3) if queued and start else None,
                "running_s": round(end - start, 3) if start and end else None,
                "start_s": round(start - started, 3) if start else None,
                "end_s": round(end - started, 3) if end else None,
            }
        )
    return sorted(rows, key=lambda r: (r["start_s"] is None, r["start_s"] or 0))


def stage_table(tasks: list[dict[str, Any]]) -> dict[str, dict[str, float]]:
    """Per stage: running seconds summed over its tasks (``wall_s``, as the model's), queued
    seconds summed, the longest task, the number of tasks."""
    out: dict[str, dict[str, float]] = {}
    for t in tasks:
        s = out.setdefault(t["stage"], {"wall_s": 0.0, "queued_s": 0.0, "max_running_s": 0.0, "tasks": 0})
        s["wall_s"] += t["running_s"] or 0.0
        s["queued_s"] += t["queued_s"] or 0.0
        s["max_running_s"] = max(s["max_running_s"], t["running_s"] or 0.0)
        s["tasks"] += 1
    return {k: {m: round(v, 3) if isinstance(v, float) else v for m, v in s.items()} for k, s in out.items()}


def timeline(tasks: list[dict[str, Any]], wall: float) -> dict[str, float]:
    """Where the run's wall time went: with ≥ 1 task process running, and with none (the
    scheduler between tasks: a finished task seen, the next one queued, a process started)."""
    spans = sorted(
        (t["start_s"], t["end_s"]) for t in tasks if t["start_s"] is not None and t["end_s"] is not None
    )
    busy, end = 0.0, float("-inf")
    for a, b in spans:
        if b <= end:
            continue
        busy += b - max(a, end)
        end = b
    first = spans[0][0] if spans else 0.0
    return {
        "tasks_running_s": round(busy, 3),
        "no_task_running_s": round(max(0.0, wall - busy), 3),
        "until_first_task_s": round(first, 3),
    }


class StackSession:
    """One real Airflow for a size's runs; the sandbox restarted on the same ports (and the
    ledger file replaced) when a run needs another starting state."""

    def __init__(
        self,
        size: Size,
        work: Path,
        *,
        executor: str,
        shards: int,
        courses_per_shard: int,
        data_docs: bool,
        log,
        env: dict[str, str] | None = None,
        profile_dir: Path | None = None,
    ) -> None:
        from sandbox.airflow_stack import free_port

        self.size, self.work, self.executor, self.log = size, work, EXECUTORS[executor], log
        self.shards, self.courses_per_shard, self.data_docs = shards, courses_per_shard, data_docs
        self.extra_env = dict(env or {})
        self.ports = {"canvas_port": free_port(), "aspen_port": free_port()}
        # fixed credentials: every sandbox of this session answers to the stack's connections
        self.credentials = {
            "canvas_token": secrets.token_urlsafe(24),
            "aspen_client_id": "bench",
            "aspen_client_secret": secrets.token_urlsafe(24),
        }
        self.ledger = work / "ledger.db"
        self.dags = work / "dags"
        self.dags.mkdir(parents=True, exist_ok=True)
        shutil.copy(REPO / "dags" / "canvas_aspen_grade_passback.py", self.dags)
        shutil.copy(REPO / "bench" / "naive_dag.py", self.dags / "canvas_aspen_naive_passback.py")
        self.plugins = work / "plugins"  # the benchmark's own (the package's come by entry point)
        self.plugins.mkdir(exist_ok=True)
        if profile_dir is not None:
            shutil.copy(REPO / "bench" / "task_profile_plugin.py", self.plugins)
            self.extra_env["CANVAS_ASPEN_BENCH_PROFILE_DIR"] = str(profile_dir)
        self.sb: Any = None
        self.stack: Any = None
        self.scenario: Path | None = None
        self.classes: list[str] = []

    # --- state -----------------------------------------------------------------------------

    def load(self, scenario: Path, ledger_src: Path | None) -> None:
        """The sandbox with ``scenario`` (same ports and credentials), the ledger from ``ledger_src``."""
        from sandbox.control import Sandbox

        if self.sb is not None:
            self.sb.stop()
            self.sb = None
        for suffix in ("", "-wal", "-shm"):
            Path(f"{self.ledger}{suffix}").unlink(missing_ok=True)
        if ledger_src is not None:
            district.copy_sqlite(ledger_src, self.ledger)
        self.sb = Sandbox.start(scenario=str(scenario), startup_timeout=600, **self.ports, **self.credentials)
        self.scenario, self.classes = scenario, district.aspen_classes(scenario)

    def conn_env(self) -> dict[str, str]:
        env = {}
        for key, value in self.sb.airflow_conn_env().items():
            for suffix, cap in (("DEFAULT", DEFAULT_CAP), ("NAIVE", 1)):
                conn = json.loads(value)
                conn["extra"]["max_concurrency"] = cap
                env[key.replace("_DEFAULT", f"_{suffix}")] = json.dumps(conn)
        return env

    def start(self) -> None:
        from sandbox.airflow_stack import AirflowStack

        t0 = time.monotonic()
        env = {
            "AIRFLOW_CONN_CANVAS_ASPEN_LEDGER": json.dumps(
                {"conn_type": "sqlite", "extra": {"sqlalchemy_url": f"sqlite:///{self.ledger}"}}
            ),
            "CANVAS_ASPEN_DATA_DOCS": "on" if self.data_docs else "off",
            "CANVAS_ASPEN_COURSES_PER_SHARD": str(self.courses_per_shard),
            "AIRFLOW__LOGGING__LOGGING_LEVEL": "WARNING",
            "AIRFLOW__CORE__PLUGINS_FOLDER": str(self.plugins),
            **self.extra_env,
        }
        self.stack = AirflowStack.start(
            conn_env=self.conn_env(),
            executor=self.executor,
            celery_workers=2,
            worker_concurrency=SLOTS // 2,
            parallelism=SLOTS,
            shards=self.shards,
            ledger="default",
            pools=pools_named(self.extra_env),
            env=env,
            dags_folder=self.dags,
        )
        for dag_id in (self.stack.dag_id, NAIVE_DAG_ID):
            self.stack.poll(
                f"the dag-processor to parse {dag_id}",
                lambda d=dag_id: (
                    self.stack.request("GET", f"/api/v2/dags/{d}", expect=(200, 404)).get("dag_id") == d
                ),
                300,
            )
            self.stack.request("PATCH", f"/api/v2/dags/{dag_id}", json={"is_paused": False})
        self.log(f"[{self.size.name}] Airflow ({self.executor}) up in {time.monotonic() - t0:.0f}s")

    def close(self) -> None:
        if self.stack is not None:
            self.stack.stop()
        if self.sb is not None:
            self.sb.stop()

    def latency(self, on: bool) -> None:
        for system in ("canvas", "aspen"):
            self.sb.set_faults(system, **({"latency_ms": LATENCY[system]} if on else {}))

    # --- one run ---------------------------------------------------------------------------

    def warm(self, course_id: int) -> None:
        run_id, state, _, _ = self._trigger_and_wait(
            self.stack.dag_id, {"course_ids": [course_id], "dry_run": True}
        )
        if state != "success":
            raise RuntimeError(f"warm-up run {run_id} ended {state}\n{self.stack.task_summary(run_id)}")

    def _trigger_and_wait(self, dag_id: str, conf: dict[str, Any]) -> tuple[str, str, float, float]:
        st = self.stack
        run_id = f"bench__{dag_id.rsplit('_', 1)[-1]}_{time.strftime('%Y%m%dT%H%M%S')}_{secrets.token_hex(3)}"
        started = time.time()
        t0 = time.monotonic()
        st.request(
            "POST",
            f"/api/v2/dags/{dag_id}/dagRuns",
            json={"dag_run_id": run_id, "logical_date": None, "conf": conf},
        )
        deadline = t0 + RUN_TIMEOUT_S
        while True:
            state = st.request("GET", f"/api/v2/dags/{dag_id}/dagRuns/{run_id}")["state"]
            if state in ("success", "failed"):
                return run_id, state, time.monotonic() - t0, started
            st.check_alive()
            if time.monotonic() > deadline:
                raise RuntimeError(f"{dag_id} run {run_id} still {state} after {RUN_TIMEOUT_S:.0f}s")
            time.sleep(POLL_S)

    def run(self, label: str, *, naive: bool = False, conf: dict[str, Any] | None = None) -> dict[str, Any]:
        """One measured run with latency; the same fields as the model's
        (:meth:`bench.runner.Session.run`)."""
        from bench.worker import _facts

        self.latency(False)
        canvas_need = bounds.canvas_minimum(self.sb)
        before = bounds.aspen_snapshot(self.sb, self.classes)
        self.latency(True)
        self.sb.reset_stats()
        out_file = self.work / f"naive-{label}.json"
        dag_id = NAIVE_DAG_ID if naive else self.stack.dag_id
        with TreePss([c.popen.pid for c in self.stack.components]) as tree, CpuUse(self.sb.pid) as cpu:
            run_id, state, wall, started = self._trigger_and_wait(
                dag_id, {"out": str(out_file)} if naive else dict(conf or {})
            )
        stats = {s: self.sb.stats(s) for s in ("canvas", "aspen")}
        self.latency(False)
        tis = self.stack.request(
            "GET", f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances", params={"limit": 1000}
        )["task_instances"]
        if state != "success":
            summary = self.stack.task_summary(run_id) if not naive else json.dumps(tis)[:3000]
            raise RuntimeError(f"{label}: run {run_id} ended {state}\n{summary}")
        dag_run = self.stack.request("GET", f"/api/v2/dags/{dag_id}/dagRuns/{run_id}")
        tasks = task_table(tis, started)
        out: dict[str, Any] = {
            "wall_s": round(wall, 3),
            "dag_run_s": round(_ts(dag_run["end_date"]) - _ts(dag_run["start_date"]), 3),
            "http_busy_s": None,
            "peak_rss_mb": round(tree.peak / 2**20, 1),
            "cpu": cpu.out,
            "slots": SLOTS,
            "airflow": self.executor,
            "tasks": tasks,
            "stages": stage_table(tasks),
            "timeline": timeline(tasks, wall),
            "run_id": run_id,
        }
        if naive:
            got = json.loads(out_file.read_text())
            out.update(
                {
                    "naive": got["naive"],
                    "shards": 1,
                    "naive_stages": got["stages"],
                    "naive_task_wall_s": got["wall_s"],
                    "naive_http_busy_s": got["http_busy_s"],
                }
            )
        else:
            report = self.stack.report(run_id)
            shard_ids = sorted({t["map_index"] for t in tasks if t["stage"] == "extract"})
            from airflow.sdk import ObjectStoragePath

            from canvas_aspen.ids import run_folder_name

            run_dir = ObjectStoragePath(self.stack.stage_root) / run_folder_name(run_id)
            out.update(
                {
                    "facts": _facts(run_dir, shard_ids),
                    "totals": report["totals"],
                    "verify": report.get("verify"),
                    "shards": len(shard_ids),
                }
            )
        out["requests"], out["http_errors"], out["server_ms"] = {}, {}, {}
        for s in ("canvas", "aspen"):
            out["requests"][s], out["http_errors"][s], out["server_ms"][s] = by_endpoint(stats[s], s)
        out["max_in_flight"] = {s: stats[s]["max_in_flight"] for s in ("canvas", "aspen")}
        classes = (out.get("facts") or {}).get("classes") or self.classes
        after = bounds.aspen_snapshot(self.sb, classes)
        aspen_need, changes = bounds.aspen_minimum({c: before[c] for c in classes}, after)
        out["min_requests"] = {"canvas": canvas_need, "aspen": aspen_need}
        out["aspen_changes"] = changes
        return out


def _model_runs(size: Size, args, setup: tuple[Path, Path], log) -> dict[str, dict[str, Any]]:
    """The model's no-change, nightly and first runs of the same district (``--with-model``),
    measured in the same invocation, so real/model ratios come from one machine state."""
    from bench import runner

    out: dict[str, dict[str, Any]] = {}

    def session(scenario: Path, ledger: Path | None) -> runner.Session:
        return runner.Session(
            size,
            runner.new_workdir(args.workdir),
            scenario=scenario,
            ledger_src=ledger,
            shards=args.shards,
            courses_per_shard=args.courses_per_shard,
            data_docs=not args.no_data_docs,
            log_level=args.log_level,
            slots=SLOTS,
        )

    s = session(*setup)
    try:
        log(f"[{size.name}] model: no-change, nightly ...")
        out["no-change"] = s.run("no-change", latency=True)
        s.day_of_grading()
        out["nightly"] = s.run("nightly", latency=True)
    finally:
        s.close()
        shutil.rmtree(s.work, ignore_errors=True)
    if size.first_run_measured:
        s = session(district.district_file(size), None)
        try:
            log(f"[{size.name}] model: first ...")
            out["first"] = s.run("first", latency=True)
        finally:
            s.close()
            shutil.rmtree(s.work, ignore_errors=True)
    return out


def first_course(scenario: Path) -> int:
    """The first course of the district with an SIS section (what a backfill would name)."""
    courses = json.loads(scenario.read_text())["canvas"]["courses"]
    return min(int(c["id"]) for c in courses if any(s.get("sis_section_id") for s in c.get("sections") or []))


def load_average() -> list[float]:
    import os

    return [round(x, 2) for x in os.getloadavg()]


def cpu_share() -> dict[str, Any]:
    """How the kernel shares the cores with other work: with autogroup on, CPU time is split
    between sessions first, so another session's ``nice -n 19`` work still gets its session's
    share beside the benchmark; ``autogroup`` is this process's group and its nice value."""
    out: dict[str, Any] = {}
    for key, path in (
        ("autogroup_enabled", "/proc/sys/kernel/sched_autogroup_enabled"),
        ("autogroup", "/proc/self/autogroup"),
    ):
        try:
            out[key] = Path(path).read_text().strip()
        except OSError:
            continue
    return out


def main(args, size: Size, wanted: set[str], emit, log) -> dict[str, dict[str, Any]]:
    """The real-scheduler runs of one size: no-change and nightly from the model's cached
    set-up state, then the first full run on the fresh district and, right after it, the
    naive DAG; one JSON record each (``airflow`` says which executor), the naive one with
    its wall over each of ours before it (``naive_over_runs``) and, with ``--with-model``, the
    model's figures of the same runs beside."""
    from bench import record, runner

    cap = {"canvas": DEFAULT_CAP, "aspen": DEFAULT_CAP}
    setup = None
    if wanted & {"no-change", "nightly", "backfill"} or args.with_model:
        setup_scenario, setup_ledger, _ = runner.ensure_setup(
            size, shards=args.shards, fresh=args.fresh_setup, log=log
        )
        setup = (setup_scenario, setup_ledger)
    model = _model_runs(size, args, setup, log) if args.with_model else {}
    work = runner.new_workdir(args.workdir)
    extra_env = dict(item.split("=", 1) for item in args.env)
    session = StackSession(
        size,
        work,
        executor=args.airflow,
        shards=args.shards,
        courses_per_shard=args.courses_per_shard,
        data_docs=not args.no_data_docs,
        log=log,
        env=extra_env,
        profile_dir=args.profile.resolve() if args.profile else None,
    )
    records: dict[str, dict[str, Any]] = {}

    def measured(label: str, **kw) -> None:
        load = load_average()
        log(f"[{size.name}] {session.executor}: {label} run ... (load {load})")
        out = session.run(label, **kw)
        n = out.get("naive")
        if n is not None:
            out["min_requests"]["aspen"] = bounds.naive_minimum(
                out["min_requests"]["canvas"], len(session.classes), n["line_items"], n["results"]
            )["aspen"]
        extra = {
            "airflow": session.executor,
            "env": extra_env,
            "profiled": args.profile is not None,
            "pools": pools_named(extra_env),
            "load_avg_before": load,
            "load_avg_after": load_average(),
            "cpu_share": cpu_share(),
            "dag_run_s": out["dag_run_s"],
            "cpu": out["cpu"],
            "timeline": out["timeline"],
            "tasks": out["tasks"],
        }
        if n is not None:
            extra.update(
                {
                    "naive": n,
                    "naive_stages": out["naive_stages"],
                    "naive_task_wall_s": out["naive_task_wall_s"],
                }
            )
        m = model.get(label)
        if m is not None:
            extra["model"] = {
                "wall_s": m["wall_s"],
                "peak_rss_mb": m["peak_rss_mb"],
                "stages": {k: v["wall_s"] for k, v in m["stages"].items()},
            }
            extra["real_over_model"] = round(out["wall_s"] / m["wall_s"], 3)
        naive_cap = {"canvas": 1, "aspen": 1}
        rec = record.build(
            size,
            "naive" if n is not None else label,
            out,
            latency=LATENCY,
            cap=naive_cap if n is not None else cap,
            extra=extra,
        )
        if n is not None:  # the naive DAG runs last: its wall over each run of ours before it
            rec["naive_over_runs"] = {k: round(rec["wall_s"] / r["wall_s"], 2) for k, r in records.items()}
        records[rec["run"]] = rec
        emit(rec)  # at once: a later run that fails loses nothing measured
        log(
            f"[{size.name}] {session.executor}: {label} {rec['wall_s']:.1f}s "
            f"(bound {rec['bound_s']['total']:.1f}s, "
            f"dag run {out['dag_run_s']:.1f}s, no task running {out['timeline']['no_task_running_s']:.1f}s, "
            f"peak {rec['peak_rss_mb']:.0f} MB, cores {out['cpu'].get('busy_share') or 0:.0%} busy)"
        )

    try:
        first_scenario = district.district_file(size)
        session.load(setup[0] if setup else first_scenario, setup[1] if setup else None)
        session.start()
        # A scheduler that has just started runs its first task slowly (3-30 s more for plan, on this
        # machine); a deployed one has been up for days. One dry run of one course first, not measured.
        t0 = time.monotonic()
        session.warm(first_course(session.scenario))
        log(f"[{size.name}] warm-up run (one course, dry run, not measured): {time.monotonic() - t0:.1f}s")
        if "no-change" in wanted:
            measured("no-change")
        if "backfill" in wanted:  # the Trigger form: one course, dry run
            measured("backfill", conf={"course_ids": [first_course(session.scenario)], "dry_run": True})
        if "nightly" in wanted:
            if "no-change" not in wanted:  # the nightly run follows a night that posted nothing
                session.run("warm")
            session.sb.day_of_grading(**runner.DAY_OF_GRADING)
            measured("nightly")
        if wanted & {"first", "naive"}:
            session.load(first_scenario, None)
        if "first" in wanted:
            measured("first")
        if "naive" in wanted:
            measured("naive", naive=True)
    finally:
        session.close()
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    return records
