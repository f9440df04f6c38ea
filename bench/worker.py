"""One passback run: the DAG's stage functions, called the way
``dags/canvas_aspen_grade_passback.py`` calls them, on a worker with ``slots`` task slots
(one slot: stage after stage in this process; more: the mapped task group's tasks in forked
processes, one instance of each system-facing task at a time, as the DAG runs without pools).

    python -m bench.worker SPEC.json OUT.json

Each measured run gets a fresh process (so its peak RSS is its own); inside it, every
(stage, shard) gets fresh hooks, as every Airflow task instance does. The spec carries the
Airflow connection URIs (``env``), the ledger URL, the run folder and the params.
"""

from __future__ import annotations

import gc
import json
import logging
import os
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from bench.measure import (
    HttpClock,
    RssSampler,
    StageTimer,
    TreeSampler,
    outside_by_stage,
    peak_rss_bytes,
    union_seconds,
)


def _stage(stages: Any, name: str, older: str) -> Any:
    """The stage function ``name`` of ``stages``; an earlier commit (``--code``) named it ``older``
    (``match_stage``, ``deltas_stage``, ``report_stage``) and had ``name`` for another module."""
    return getattr(stages, older, None) or getattr(stages, name)


def _call(fn, *args: Any, **kwargs: Any) -> Any:
    """``fn(*args, **kwargs)`` without the keyword arguments an older ``fn`` does not take
    (``--code`` runs the benchmark against an earlier commit of the stages)."""
    import inspect

    accepted = inspect.signature(fn).parameters
    return fn(*args, **{k: v for k, v in kwargs.items() if k in accepted})


PARAM_DEFAULTS = {
    "course_ids": [],
    "dry_run": False,
    "full_resync": False,
    "delete_orphans": False,
    "category_mappings": {},
    "mapping_file": "",
}


STAGES = ("extract", "validate", "match", "deltas", "post", "verify")
# The tasks that talk to Canvas or Aspen: without a pool (the DAG's default) each runs one
# instance at a time (max_active_tis_per_dag=1), so shard 2's match can run beside shard 1's deltas.
ONE_AT_A_TIME = {"extract", "match", "deltas", "post", "verify"}


class _Stages:
    """The DAG's stage calls for one run: ``call(stage, shard)`` with fresh hooks, as every
    Airflow task instance makes its own."""

    def __init__(self, spec: dict[str, Any]) -> None:
        # what an Airflow worker has imported before a task starts
        import pyarrow.parquet  # noqa: F401  (pandas' parquet engine, imported on first use)
        from airflow.sdk import ObjectStoragePath

        from canvas_aspen import ids, stages
        from canvas_aspen.airflow_glue import mappings
        from canvas_aspen.ledger import Ledger

        self.stages, self.spec = stages, spec
        self.run_id = spec["run_id"]
        self.params = {**PARAM_DEFAULTS, **spec.get("params", {})}
        self.reports_dir = Path(spec["reports_dir"])
        folder = getattr(ids, "run_folder_name", None) or stages._safe  # older checkouts (--code)
        self.run_dir = ObjectStoragePath(spec["stage_root"]) / folder(self.run_id)
        self.lease = timedelta(minutes=240)  # CANVAS_ASPEN_LEASE_MINUTES' default
        self.mappings = mappings(self.params)
        self.ledger = Ledger(spec["ledger_url"])
        self.started = datetime.now(timezone.utc)

    @staticmethod
    def hooks():
        from canvas_aspen.hooks.aspen import AspenHook
        from canvas_aspen.hooks.canvas import CanvasHook

        return CanvasHook(canvas_conn_id="canvas_default"), AspenHook(aspen_conn_id="aspen_default")

    def plan(self) -> list[int]:
        self.ledger.migrate()
        self.ledger.start_run(
            self.run_id, params=self.params, dry_run=self.params["dry_run"], started_at=self.started
        )
        shards = _call(
            self.stages.plan,
            *self.hooks(),
            self.run_dir,
            params=self.params,
            shard_count=self.spec["shards"],
            courses_per_shard=self.spec.get("courses_per_shard", 1),
        )
        return [s["shard"] for s in shards]

    def _older_docs_dir(self, k: int, stage: str) -> dict[str, Any]:
        """An earlier commit (``--code``) built Data Docs in each gate call, into the folder its
        ``data_docs_dir`` named; today's report task builds them once per run."""
        older = getattr(self.stages, "data_docs_dir", None)
        return {"docs_dir": older(self.reports_dir, self.run_id, k, stage)} if older else {}

    def call(self, stage: str, k: int) -> Any:
        st, p, run_id = self.stages, self.params, self.run_id
        if stage == "extract":
            return _call(
                st.extract,
                self.hooks()[0],
                self.run_dir,
                k,
                ledger=self.ledger,
                run_id=run_id,
                lease=self.lease,
            )
        if stage == "validate":
            return st.validate(
                self.run_dir,
                k,
                timezone_name=self.spec.get("timezone", "America/New_York"),
                **self._older_docs_dir(k, "validate"),
            )
        if stage == "match":
            return _stage(st, "match", "match_stage")(
                self.hooks()[1],
                self.run_dir,
                k,
                mappings=self.mappings,
                **self._older_docs_dir(k, "match"),
            )
        if stage == "deltas":
            return _stage(st, "deltas", "deltas_stage")(
                self.hooks()[1], self.ledger, self.run_dir, k, full_resync=p["full_resync"]
            )
        if stage == "post":
            return _call(
                st.post,
                self.hooks()[1],
                self.ledger,
                self.run_dir,
                k,
                run_id=run_id,
                dry_run=p["dry_run"],
                delete_orphans=p["delete_orphans"],
                lease=self.lease,
            )
        if stage == "verify":
            return st.verify(self.hooks()[1], self.run_dir, k, dry_run=p["dry_run"])
        raise ValueError(stage)

    def report(self) -> dict[str, Any]:
        return _stage(self.stages, "report", "report_stage")(
            self.ledger,
            self.run_dir,
            self.reports_dir,
            run_id=self.run_id,
            started_at=self.started.isoformat(),
        )


def run(spec: dict[str, Any]) -> dict[str, Any]:
    """One run. ``slots`` 1: stage after stage, each over every shard, in this process.
    More slots: as Airflow runs the DAG's mapped task group on a worker with that many task
    slots (:func:`_pipeline`)."""
    os.environ.update(spec["env"])
    clock = HttpClock()
    clock.install()
    sampler = RssSampler().start()
    run_ = _Stages(spec)
    timer = StageTimer(clock, sampler)
    slots = int(spec.get("slots", 1))

    spans: list[tuple[str, float, float]] = []  # (stage, start, end) of every task

    def timed(stage: str, fn, *args):
        with timer.stage(stage):
            start = time.perf_counter()
            try:
                return fn(*args)
            finally:
                spans.append((stage, start, time.perf_counter()))

    t0 = time.perf_counter()
    shard_ids = timed("plan", run_.plan)
    tree, intervals = None, []
    if slots <= 1:
        for stage in STAGES:
            for k in shard_ids:
                timed(stage, run_.call, stage, k)
    else:
        tree = TreeSampler().start()
        intervals = _pipeline(run_, shard_ids, slots, clock, timer, tree, spans)
    out = timed("report", run_.report)
    t1 = time.perf_counter()
    wall = t1 - t0
    busy = union_seconds(clock.intervals + intervals)
    sampler.stop()
    if tree is not None:
        tree.stop()
    report = json.loads(Path(out["report"]).read_text())
    peak = max(peak_rss_bytes(), tree.peak if tree is not None else 0)
    return {
        "facts": _facts(run_.run_dir, shard_ids),
        "wall_s": round(wall, 3),
        "http_busy_s": round(busy, 3),
        "client_requests": clock.requests,
        "stages": timer.summary(),
        "outside_by_stage": outside_by_stage(clock.intervals + intervals, spans, t0, t1),
        "peak_rss_mb": round(peak / 2**20, 1),
        "slots": slots,
        "totals": report["totals"],
        "verify": report["verify"],
        "findings": len(report["findings"]),
        "failed_reasons": out["failed_reasons"],
        "report": out["report"],
        "shards": len(shard_ids),
    }


def _task(run_: _Stages, clock: HttpClock, stage: str, k: int, conn) -> None:
    """A forked task process: one (stage, shard), its own HTTP clock; the numbers go back on ``conn``."""
    clock.reset()
    run_.ledger.engine.dispose(close=False)  # the parent's pooled connections stay the parent's
    t0 = time.perf_counter()
    try:
        run_.call(stage, k)
        error = None
    except BaseException:  # the parent fails the run with it
        import traceback

        error = traceback.format_exc()[-4000:]
    t1 = time.perf_counter()
    conn.send(
        {
            "start": t0,
            "end": t1,
            "wall_s": t1 - t0,
            "http_s": clock.busy(),
            "requests": clock.requests,
            "intervals": clock.intervals,
            "rss_max_mb": peak_rss_bytes() / 2**20,
            "error": error,
        }
    )
    conn.close()


def _pipeline(
    run_: _Stages,
    shard_ids: list[int],
    slots: int,
    clock: HttpClock,
    timer: StageTimer,
    tree: TreeSampler,
    spans: list[tuple[str, float, float]],
) -> list[tuple[float, float]]:
    """The DAG's mapped task group on one Airflow worker with ``slots`` task slots: a shard's
    stage k+1 starts once its stage k is done; at most one instance of each task that talks to a
    system (``ONE_AT_A_TIME``) at a time;
    among the tasks ready, Airflow's default priority (``weight_rule="downstream"``: earlier
    stages first), then the lower map index. Each task is a process forked from this one, as
    Airflow's task runner forks its task processes; Great Expectations is imported here once,
    while the first extract runs (the sequential mode also imports it once per run). Returns
    the busy HTTP intervals of every task; ``spans`` gets each task's (stage, start, end)."""
    import multiprocessing
    from multiprocessing.connection import wait as wait_any

    fork = multiprocessing.get_context("fork")
    done_upto = {k: 0 for k in shard_ids}  # index in STAGES of each shard's next stage
    running: dict[Any, tuple[str, int, Any]] = {}
    intervals: list[tuple[float, float]] = []
    gx_ready = False

    def ready() -> list[tuple[int, int]]:
        """(stage index, shard) of each shard's next stage, if its stage before is done."""
        busy_shards = {k for _, k, _ in running.values()}
        return sorted(
            (done_upto[k], k) for k in shard_ids if done_upto[k] < len(STAGES) and k not in busy_shards
        )

    while running or any(i < len(STAGES) for i in done_upto.values()):
        for i, k in ready():
            if len(running) >= slots:
                break
            stage = STAGES[i]
            if stage in ONE_AT_A_TIME and stage in {s for s, _, _ in running.values()}:
                continue  # an instance of this task is running
            # as Airflow's executors do before they fork: the tasks' GC leaves the worker's pages shared
            gc.freeze()
            recv, send = fork.Pipe(duplex=False)
            proc = fork.Process(target=_task, args=(run_, clock, stage, k, send), daemon=True)
            proc.start()
            send.close()
            tree.pids.add(proc.pid)
            running[recv] = (stage, k, proc)
        if not gx_ready:  # the first tasks are extracts: import GX meanwhile, before any fork needs it
            from canvas_aspen import validation

            validation.load_great_expectations()
            gx_ready = True
            continue
        for recv in wait_any(list(running)):
            stage, k, proc = running.pop(recv)
            try:
                got = recv.recv()
            except EOFError:
                got = {"error": f"task process died (exit code {proc.exitcode})"}
            proc.join()
            tree.pids.discard(proc.pid)
            if got.get("error"):
                raise RuntimeError(f"{stage}[{k}] failed:\n{got['error']}")
            timer.add(stage, got)
            intervals += got["intervals"]
            spans.append((stage, got["start"], got["end"]))
            done_upto[k] += 1
    return intervals


def _facts(run_dir: Any, shard_ids: list[int]) -> dict[str, Any]:
    """What the lower bound needs to know of the run: the Aspen classes it resolved, and the
    graded (non-empty) line items and results a naive client would re-post."""
    import pandas as pd

    from canvas_aspen import storage

    frames = []
    for k in shard_ids:
        sd = run_dir / f"shard-{k:04d}"
        name = next((n for n in ("final.parquet", "rows.parquet") if (sd / n).exists()), None)
        if name:
            frames.append(storage.read_frame(sd / name)[["aspen_class_id", "line_item_id", "bucket"]])
    df = (
        pd.concat(frames, ignore_index=True)
        if frames
        else pd.DataFrame(columns=["aspen_class_id", "line_item_id", "bucket"])
    )
    graded = df[df["bucket"].ne("empty") & df["aspen_class_id"].notna()]
    return {
        "classes": sorted(df["aspen_class_id"].dropna().unique().tolist()),
        "graded_line_items": int(graded["line_item_id"].nunique()),
        "graded_results": len(graded),
    }


def run_naive(spec: dict[str, Any]) -> dict[str, Any]:
    os.environ.update(spec["env"])
    clock = HttpClock()
    clock.install()
    sampler = RssSampler().start()
    from bench import naive

    try:
        return naive.run(spec, clock, sampler)
    finally:
        sampler.stop()


def main(argv: list[str]) -> int:
    spec_path, out_path = argv
    spec = json.loads(Path(spec_path).read_text())
    logging.basicConfig(
        level=getattr(logging, spec.get("log_level", "WARNING")),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    fn = run_naive if spec.get("mode") == "naive" else run
    if spec.get("profile"):
        from pyinstrument import Profiler

        profiler = Profiler(interval=0.005)
        profiler.start()
        result = fn(spec)
        profiler.stop()
        Path(spec["profile"]).write_text(profiler.output_html())
        profiler.last_session.save(str(Path(spec["profile"]).with_suffix(".pyisession")))
        Path(spec["profile"]).with_suffix(".txt").write_text(profiler.output_text(unicode=True, color=False))
    else:
        result = fn(spec)
    Path(out_path).write_text(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
