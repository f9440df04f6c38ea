"""``python -m sandbox serve|generate|check`` (run from the repository root)."""

from __future__ import annotations

import argparse
import json
import sys
import time


def _json_arg(text: str) -> dict:
    value = json.loads(text)
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError("expected a JSON object")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m sandbox", description="Sandbox Canvas + Aspen district")
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="start the Canvas and Aspen stand-ins on 127.0.0.1")
    serve.add_argument(
        "--scenario", default="demo", help="a scenario name (sandbox/scenarios/NAME.json) or path"
    )
    serve.add_argument(
        "--aspen-student-ids",
        action="store_true",
        help="serve the scenario with Aspen-style student sourcedIds (std_000123); the Canvas "
        "sis_user_id is then each Aspen user's identifier",
    )
    serve.add_argument("--canvas-port", type=int, default=0, help="default: a free port")
    serve.add_argument("--aspen-port", type=int, default=0, help="default: a free port")
    serve.add_argument("--urls-file", help="write the URLs and credentials here as JSON once serving")
    serve.add_argument("--aspen-error-style", choices=["json", "text"])
    serve.add_argument("--canvas-latency-ms", type=float, help="shorthand for canvas faults latency_ms")
    serve.add_argument("--aspen-latency-ms", type=float, help="shorthand for aspen faults latency_ms")
    serve.add_argument("--canvas-jitter-ms", type=float)
    serve.add_argument("--aspen-jitter-ms", type=float)
    serve.add_argument("--canvas-faults", type=_json_arg, default={}, help='JSON, e.g. {"error_rate": 0.05}')
    serve.add_argument("--aspen-faults", type=_json_arg, default={}, help="JSON (see sandbox/README.md)")
    serve.add_argument(
        "--settings", type=_json_arg, default={}, help='JSON, e.g. {"canvas_omit_last_link": true}'
    )
    serve.add_argument("--log-level", default="warning")

    gen = sub.add_parser("generate", help="write a generated district scenario")
    gen.add_argument("--courses", type=int, required=True)
    gen.add_argument("--students-per-section", type=int, required=True)
    gen.add_argument("--assignments", type=int, required=True, help="sendable assignments per course")
    gen.add_argument("--seed", type=int, default=0)
    gen.add_argument(
        "--sections-per-course",
        default="1:0.7,2:0.27,3:0.03",
        help="N, or a distribution 'count:weight,...' (default 1:0.7,2:0.27,3:0.03)",
    )
    gen.add_argument(
        "--messiness", type=float, default=1.0, help="scale of the messy cases (0: a clean district)"
    )
    gen.add_argument("--lock-periods", default="", help="comma-separated grading periods to lock, e.g. Q1")
    gen.add_argument(
        "--aspen-student-ids",
        action="store_true",
        help="Aspen users get Aspen-style sourcedIds (std_000123); Canvas sis_user_id = their identifier",
    )
    gen.add_argument(
        "--past-courses",
        type=int,
        default=0,
        help="last year's concluded courses (a past term; their Aspen classes do not exist)",
    )
    gen.add_argument(
        "--hidden-assignments",
        type=float,
        default=0.0,
        help="fraction of sendable assignments with a manual posting policy and hidden grades",
    )
    gen.add_argument("-o", "--output", required=True)

    check = sub.add_parser("check", help="load and check a scenario, print its size")
    check.add_argument("scenario")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "serve":
        from sandbox.server import serve

        settings = dict(args.settings)
        if args.aspen_error_style:
            settings["aspen_error_style"] = args.aspen_error_style
        canvas_faults, aspen_faults = dict(args.canvas_faults), dict(args.aspen_faults)
        for faults, latency, jitter in (
            (canvas_faults, args.canvas_latency_ms, args.canvas_jitter_ms),
            (aspen_faults, args.aspen_latency_ms, args.aspen_jitter_ms),
        ):
            if latency is not None:
                faults["latency_ms"] = latency
            if jitter is not None:
                faults["jitter_ms"] = jitter
        scenario = args.scenario
        if args.aspen_student_ids:
            from sandbox import scenario as scenario_mod
            from sandbox.student_ids import aspen_style_student_ids

            scenario = aspen_style_student_ids(scenario_mod.load(scenario))
        serve(
            scenario,
            canvas_port=args.canvas_port,
            aspen_port=args.aspen_port,
            urls_file=args.urls_file,
            settings=settings,
            canvas_faults=canvas_faults,
            aspen_faults=aspen_faults,
            log_level=args.log_level,
        )
        return 0
    if args.command == "generate":
        from sandbox.generator import generate, write

        started = time.perf_counter()
        data = generate(
            courses=args.courses,
            students_per_section=args.students_per_section,
            assignments=args.assignments,
            seed=args.seed,
            sections_per_course=args.sections_per_course,
            messiness=args.messiness,
            lock_periods=[p for p in args.lock_periods.split(",") if p],
            aspen_student_ids=args.aspen_student_ids,
            past_courses=args.past_courses,
            hidden_assignments=args.hidden_assignments,
        )
        write(data, args.output)
        print(
            json.dumps(
                dict(data["stats"], seconds=round(time.perf_counter() - started, 2), output=args.output)
            )
        )
        return 0
    if args.command == "check":
        from sandbox import scenario
        from sandbox.aspen_state import AspenState
        from sandbox.canvas_state import CanvasState

        data = scenario.load(args.scenario)
        print(json.dumps({"canvas": CanvasState(data).summary(), "aspen": AspenState(data).summary()}))
        return 0
    return 2


if __name__ == "__main__":
    sys.exit(main())
