"""The JSON line of a run, the results file, the table in docs/benchmarks.md, the targets."""

from __future__ import annotations

import json
import subprocess
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from bench.bounds import bound_seconds
from bench.sizes import Size

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "bench" / "results.jsonl"
DOC = REPO / "docs" / "benchmarks.md"
TABLE_START, TABLE_END = "<!-- bench:table:start -->", "<!-- bench:table:end -->"
STAGES = ("plan", "extract", "validate", "match", "deltas", "post", "verify", "report")


def commit() -> str:
    try:
        sha = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            [
                "git",
                "status",
                "--porcelain",
                "--",
                "plugins",
                "bench",
                "dags",
                "expectations",
                ":!bench/results.jsonl",
            ],
            cwd=REPO,  # the record itself is not the code
            capture_output=True,
            text=True,
        ).stdout.strip()
        return sha + ("+dirty" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def _total(d: dict[str, int]) -> int:
    return int(sum(d.values()))


def wall_over_pipelined(wall: float | None, bound: dict[str, float]) -> float | None:
    """The wall over the pipelined lower bound (the larger of the two systems' terms; records
    made before ``bound_s`` carried ``pipelined`` have the two terms)."""
    pipelined = bound.get("pipelined", max(bound.get("canvas", 0.0), bound.get("aspen", 0.0)))
    return round(wall / pipelined, 3) if wall and pipelined else None


def build(
    size: Size,
    label: str,
    out: dict[str, Any],
    *,
    latency: dict[str, float],
    cap: dict[str, int],
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """One run's JSON line: measured numbers, the minimum and the bound, and their ratios."""
    sent = {s: _total(out["requests"][s]) for s in ("canvas", "aspen")}
    need = {s: _total(out["min_requests"][s]) for s in ("canvas", "aspen")}
    bound = bound_seconds(need, latency, cap)
    wall = out["wall_s"]
    busy = out["http_busy_s"]  # None under a real Airflow: its task processes are not instrumented
    outside = None if busy is None else max(0.0, wall - busy)
    rec = {
        "ts": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "commit": commit(),
        "size": size.name,
        "run": label,
        "district": {
            "courses": size.courses,
            "students_per_section": size.students_per_section,
            "assignments": size.assignments,
            "classes": len(out.get("facts", {}).get("classes", [])) or None,
            "grades": (out.get("totals") or {}).get("considered"),
        },
        "shards": out.get("shards"),
        "slots": out.get("slots", 1),  # task slots of the modelled Airflow worker (1: stage after stage)
        "latency_ms": latency,
        "concurrency": cap,
        "wall_s": wall,
        "bound_s": bound,
        "wall_over_bound": round(wall / bound["total"], 3) if bound["total"] else None,
        "wall_over_pipelined": wall_over_pipelined(wall, bound),
        "requests_total": {**sent, "total": sent["canvas"] + sent["aspen"]},
        "min_requests_total": {**need, "total": need["canvas"] + need["aspen"]},
        "requests_over_min": round(
            (sent["canvas"] + sent["aspen"]) / max(1, need["canvas"] + need["aspen"]), 3
        ),
        "requests": out["requests"],
        "min_requests": out["min_requests"],
        "http_errors": out.get("http_errors"),
        "server_ms": out.get("server_ms"),  # mean time the sandbox took per request (latency included)
        "max_in_flight": out.get("max_in_flight"),
        "http_busy_s": out["http_busy_s"],
        "outside_http_s": None if outside is None else round(outside, 3),
        "outside_http_share": round(outside / wall, 3) if wall and outside is not None else None,
        "peak_rss_mb": out["peak_rss_mb"],
        "stages": out["stages"],
        "outside_by_stage": out.get("outside_by_stage"),  # the outside-HTTP time, by the stages running then
        "totals": out.get("totals"),
        "verify": {k: v for k, v in (out.get("verify") or {}).items() if k in ("checked", "mismatched")},
        "posted": (out.get("totals") or {}).get("posted"),
        "aspen_changes": out.get("aspen_changes"),
        "graded_line_items": out.get("facts", {}).get("graded_line_items"),
        "graded_results": out.get("facts", {}).get("graded_results"),
    }
    rec.update(extra or {})
    return rec


def append(rec: dict[str, Any], path: Path = RESULTS) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as fh:
        fh.write(json.dumps(rec, separators=(",", ":")) + "\n")


def latest(path: Path = RESULTS) -> dict[tuple[str, str], dict[str, Any]]:
    out: dict[tuple[str, str], dict[str, Any]] = {}
    if path.exists():
        for line in path.read_text().splitlines():
            if line.strip():
                rec = json.loads(line)
                if rec.get("size") in ("S", "M", "D40", "demo"):
                    run = (
                        rec["run"]
                        + (
                            ""
                            if rec.get("data_docs", True) or rec["run"].startswith("naive")
                            else " (Data Docs off)"
                        )
                        + (f", {rec['slots']} slots" if rec.get("slots", 1) > 1 else "")
                        + (f" [{rec['code']}]" if rec.get("code") else "")
                        + (f" [{rec['airflow']}]" if rec.get("airflow") else "")
                        + (
                            " [" + " ".join(f"{k}={v}" for k, v in sorted(rec["env"].items())) + "]"
                            if rec.get("env")
                            else ""
                        )
                        + (" [profiled]" if rec.get("profiled") else "")
                    )
                    out[(rec["size"], run)] = rec
    return out


def _fmt(x: Any, digits: int = 1) -> str:
    if x is None:
        return "–"
    if isinstance(x, float):
        return f"{x:.{digits}f}"
    return str(x)


def table(records: dict[tuple[str, str], dict[str, Any]]) -> str:
    order = {
        "backfill": -1,
        "first": 0,
        "no-change": 1,
        "nightly": 2,
        "first (Data Docs off)": 3,
        "no-change (Data Docs off)": 4,
        "nightly (Data Docs off)": 5,
        "naive": 6,
        "naive-bound": 7,
    }
    head = (
        "| size | run | commit | wall s | bound s | wall/bound | wall/pipelined | requests C+A | minimum C+A "
        "| req/min | posted | outside HTTP | peak RSS MB | " + " | ".join(STAGES) + " |"
    )
    lines = [head, "|" + "---|" * (13 + len(STAGES))]

    def rank(kv):
        (size, run), r = kv
        return (
            {"demo": 0, "D40": 1, "S": 2, "M": 3}.get(size, 9),
            "[" not in run,
            r.get("slots", 1),
            order.get(run.split(" [")[0].split(",")[0], 9),
            run,
        )

    for (size, run), r in sorted(records.items(), key=rank):
        st = r.get("stages") or {}
        rt, mt = r.get("requests_total") or {}, r.get("min_requests_total") or {}
        lines.append(
            "| "
            + " | ".join(
                [
                    size,
                    run,
                    r.get("code") or r.get("commit", ""),
                    _fmt(r.get("wall_s")),
                    _fmt((r.get("bound_s") or {}).get("total")),
                    _fmt(r.get("wall_over_bound"), 2),
                    _fmt(wall_over_pipelined(r.get("wall_s"), r.get("bound_s") or {}), 2),
                    f"{rt.get('canvas', '–')}+{rt.get('aspen', '–')}" if rt else "–",
                    f"{mt.get('canvas', '–')}+{mt.get('aspen', '–')}" if mt else "–",
                    _fmt(r.get("requests_over_min"), 3),
                    _fmt(r.get("posted")),
                    f"{r['outside_http_share'] * 100:.0f}%"
                    if r.get("outside_http_share") is not None
                    else "–",
                    _fmt(r.get("peak_rss_mb"), 0),
                    *[_fmt((st.get(s) or {}).get("wall_s")) for s in STAGES],
                ]
            )
            + " |"
        )
    return "\n".join(lines)


def update_doc(path: Path = DOC, results: Path = RESULTS) -> bool:
    """Rewrite the table between the markers of docs/benchmarks.md (False: no markers)."""
    if not path.exists():
        return False
    text = path.read_text()
    if TABLE_START not in text or TABLE_END not in text:
        return False
    head, rest = text.split(TABLE_START, 1)
    _, tail = rest.split(TABLE_END, 1)
    path.write_text(f"{head}{TABLE_START}\n{table(latest(results))}\n{TABLE_END}{tail}")
    return True


TARGETS = (
    ("nightly wall ≤ 1.5 × bound", lambda n, z, nb: n["wall_over_bound"], 1.5),
    ("nightly requests ≤ 1.1 × minimum", lambda n, z, nb: n["requests_over_min"], 1.1),
    ("no-change wall ≤ 1.5 × its bound", lambda n, z, nb: z["wall_over_bound"], 1.5),
    ("nightly wall ≤ 1.3 × pipelined bound", lambda n, z, nb: n["wall_over_pipelined"], 1.3),
    ("no-change wall ≤ 1.5 × its pipelined bound", lambda n, z, nb: z["wall_over_pipelined"], 1.5),
    (
        "no-change posts nothing (PUTs)",
        lambda n, z, nb: sum(
            v for k, v in z["requests"]["aspen"].items() if k.startswith(("put_", "delete_"))
        ),
        0,
    ),
    ("outside HTTP ≤ 15% of nightly wall", lambda n, z, nb: n["outside_http_share"], 0.15),
    ("peak RSS ≤ 2048 MB", lambda n, z, nb: max(n["peak_rss_mb"], z["peak_rss_mb"]), 2048),
    ("naive bound ≥ 20 × nightly wall", lambda n, z, nb: nb["bound_s"]["total"] / n["wall_s"], None),
)


def targets(
    nightly: dict[str, Any], no_change: dict[str, Any], naive_bound: dict[str, Any]
) -> list[dict[str, Any]]:
    out = []
    for name, fn, limit in TARGETS:
        value = fn(nightly, no_change, naive_bound)
        ok = value >= 20 if limit is None else value <= limit
        out.append(
            {"target": name, "value": round(value, 3) if isinstance(value, float) else value, "met": bool(ok)}
        )
    return out
