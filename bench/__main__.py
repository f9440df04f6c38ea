"""``python -m bench [--size S|M] ...`` (``make bench BENCH_ARGS="--size S"``).

Prints one JSON line per measured run, appends it to bench/results.jsonl and refreshes the
table in docs/benchmarks.md. See docs/benchmarks.md for the method.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
from pathlib import Path

from bench import bounds, district, record, runner
from bench.sizes import SIZES

DEFAULT_SLOTS = 4  # an Airflow worker's task slots; the DAG's pools allow one Canvas and one Aspen task


def parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    p.add_argument("--size", default="M", choices=sorted(SIZES), help="district size (default M)")
    p.add_argument(
        "--shards", type=int, default=8, help="the most shards, as CANVAS_ASPEN_SHARDS (default 8)"
    )
    p.add_argument(
        "--courses-per-shard",
        type=int,
        default=10,
        help="as CANVAS_ASPEN_COURSES_PER_SHARD (default 10): fewer shards for a small district",
    )
    p.add_argument(
        "--slots",
        type=int,
        default=DEFAULT_SLOTS,
        help=f"task slots of the Airflow worker the runs model (default {DEFAULT_SLOTS}; 1: stage after "
        "stage, each over every shard, in one process)",
    )
    p.add_argument(
        "--runs",
        default="all",
        help="comma-separated subset of setup,first,no-change,nightly,naive and, with --airflow, "
        "backfill (one course, dry run) (default: all the size has; setup only prepares the cached "
        "set-up state)",
    )
    p.add_argument("--fresh-setup", action="store_true", help="redo the cached set-up run")
    p.add_argument("--no-data-docs", action="store_true", help="runs without building GX Data Docs")
    p.add_argument(
        "--profile",
        type=Path,
        help="pyinstrument profiles of each measured run into this folder "
        "(with --airflow: of every task process)",
    )
    p.add_argument("--results", type=Path, default=record.RESULTS, help="JSON lines file to append to")
    p.add_argument("--no-record", action="store_true", help="print only: no results file, no docs table")
    p.add_argument("--workdir", type=Path, help="parent of the run folders (default: the system temp dir)")
    p.add_argument(
        "--cache", type=Path, help="where districts and set-up states are kept (default bench/.cache)"
    )
    p.add_argument("--keep", action="store_true", help="keep the run folders (stage files, reports, ledger)")
    p.add_argument(
        "--code",
        type=Path,
        help="run the stages of another checkout (its plugins/ and expectations/), "
        "e.g. an earlier commit extracted with git archive: before/after",
    )
    p.add_argument("--log-level", default="WARNING", help="log level of the runs' stages")
    p.add_argument(
        "--airflow",
        choices=("local", "celery"),
        help="run the DAG under a real Airflow (LocalExecutor, or CeleryExecutor with two workers) "
        "triggered through its REST API, instead of the model; the naive DAG right after",
    )
    p.add_argument(
        "--env",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="with --airflow: a variable for every Airflow process (repeatable), e.g. "
        "CANVAS_ASPEN_PRELOAD=off CANVAS_ASPEN_COURSES_PER_SHARD=1 for the set-up before those",
    )
    p.add_argument(
        "--with-model",
        action="store_true",
        help="with --airflow: also the model's runs of the same district, in this invocation",
    )
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    if (
        args.profile and args.slots > 1 and not args.airflow
    ):  # the tasks run in forked processes the profiler does not follow
        sys.exit("python -m bench: --profile needs --slots 1 (stage after stage, in one process)")
    if args.cache:
        os.environ["BENCH_CACHE"] = str(args.cache)
    size = SIZES[args.size]
    wanted = {"first", "no-change", "nightly", "naive"} if args.runs == "all" else set(args.runs.split(","))
    if args.airflow and args.runs == "all":
        wanted.add("backfill")
    if not size.first_run_measured:
        wanted.discard("first")
    if not size.naive_measured:
        wanted.discard("naive")
    if args.airflow and args.runs == "all" and size.name in ("S", "M"):
        wanted.discard("naive")  # S: 28k sequential requests, 20 min: ask for it with --runs
    cap = {"canvas": runner.DEFAULT_CAP, "aspen": runner.DEFAULT_CAP}
    records: dict[str, dict] = {}
    if args.profile:
        args.profile.mkdir(parents=True, exist_ok=True)

    def log(msg: str) -> None:
        print(msg, file=sys.stderr, flush=True)

    def emit(rec: dict) -> None:
        rec.setdefault("data_docs", not args.no_data_docs)
        if args.code:
            rec["code"] = args.code.name  # e.g. the commit it was extracted from
        records[rec["run"]] = rec
        print(json.dumps(rec, separators=(",", ":")), flush=True)
        if not args.no_record:
            record.append(rec, args.results)

    def session(scenario: Path, ledger: Path | None) -> runner.Session:
        work = runner.new_workdir(args.workdir)
        return runner.Session(
            size,
            work,
            scenario=scenario,
            ledger_src=ledger,
            shards=args.shards,
            courses_per_shard=args.courses_per_shard,
            data_docs=not args.no_data_docs,
            profile_dir=args.profile,
            log_level=args.log_level,
            code=args.code,
            slots=args.slots,
        )

    def done(s: runner.Session) -> None:
        s.close()
        if not args.keep:
            shutil.rmtree(s.work, ignore_errors=True)
        else:
            log(f"[{size.name}] kept {s.work}")

    scen = district.district_file(size)
    log(f"[{size.name}] district {scen.name}")
    if args.airflow:
        from bench import scheduler

        scheduler.main(args, size, wanted, emit, log)
        if not args.no_record and record.update_doc(results=args.results):
            log(f"table updated in {record.DOC.relative_to(record.REPO)}")
        return 0
    if wanted & {"setup", "no-change", "nightly"}:
        setup_scenario, setup_ledger, _ = runner.ensure_setup(
            size, shards=args.shards, fresh=args.fresh_setup, log=log
        )
    if wanted & {"no-change", "nightly"}:
        s = session(setup_scenario, setup_ledger)
        try:
            if "no-change" in wanted:
                log(f"[{size.name}] no-change run ...")
                out = s.run("no-change", latency=True)
                emit(record.build(size, "no-change", out, latency=runner.LATENCY, cap=cap))
            if "nightly" in wanted:
                if "no-change" not in wanted:  # the nightly run follows a night that posted nothing
                    s.run("warm", latency=False, measure=False)
                dog = s.day_of_grading()
                log(f"[{size.name}] day of grading {dog}; nightly run ...")
                out = s.run("nightly", latency=True)
                emit(
                    record.build(
                        size, "nightly", out, latency=runner.LATENCY, cap=cap, extra={"day_of_grading": dog}
                    )
                )
        finally:
            done(s)
    if "first" in wanted:
        s = session(scen, None)
        try:
            log(f"[{size.name}] first full run with latency ...")
            out = s.run("first", latency=True)
            emit(record.build(size, "first", out, latency=runner.LATENCY, cap=cap))
        finally:
            done(s)
    if "naive" in wanted:
        s = session(scen, None)
        try:
            log(f"[{size.name}] naive baseline (sequential, re-post every grade) ...")
            out = s.run("naive", latency=True, mode="naive", cap=1)
            n = out["naive"]
            out["min_requests"]["aspen"] = bounds.naive_minimum(
                out["min_requests"]["canvas"], len(s.classes), n["line_items"], n["results"]
            )["aspen"]
            emit(
                record.build(
                    size,
                    "naive",
                    out,
                    latency=runner.LATENCY,
                    cap={"canvas": 1, "aspen": 1},
                    extra={"naive": n},
                )
            )
        finally:
            done(s)
    nightly = records.get("nightly")
    if nightly is not None:
        facts_classes = nightly["district"]["classes"] or 0
        need = bounds.naive_minimum(
            nightly["min_requests"]["canvas"],
            facts_classes,
            nightly.get("graded_line_items", 0),
            nightly.get("graded_results", 0),
        )
        nb = {s_: sum(v.values()) for s_, v in need.items()}
        naive_bound = {
            "ts": nightly["ts"],
            "commit": nightly["commit"],
            "size": size.name,
            "run": "naive-bound",
            "min_requests": need,
            "min_requests_total": {**nb, "total": sum(nb.values())},
            "bound_s": bounds.bound_seconds(nb, runner.LATENCY, {"canvas": 1, "aspen": 1}),
            "nightly_speedup": None,
        }
        naive_bound["nightly_speedup"] = round(naive_bound["bound_s"]["total"] / nightly["wall_s"], 1)
        emit(naive_bound)
        if "no-change" in records:
            checks = record.targets(nightly, records["no-change"], naive_bound)
            log(f"[{size.name}] targets:")
            for c in checks:
                log(f"   {'MET ' if c['met'] else 'MISS'} {c['target']}: {c['value']}")
    if not args.no_record and record.update_doc(results=args.results):
        log(f"table updated in {record.DOC.relative_to(record.REPO)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
