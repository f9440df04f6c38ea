"""Property-based tests: messy Canvas payloads through the rows frame, the Great
Expectations gate, category matching and deltas, as the validate, match and deltas stages
run them (issue 8), with odd values already in Aspen (text and non-finite scores, unknown
statuses, tombstones, records without a sourcedId) for deltas to compare against.

Whatever Canvas sends in a value (NaN, infinities, negative, huge and text scores, nulls
and missing fields, unknown enum values, Unicode, emoji and HTML in names, names over 50
characters, duplicate group names), nothing crashes; every bad grade is held back with a
finding that names it; every good grade is still eligible, and its line item and result
are bodies the sandbox Aspen's own validation accepts (strict JSON: no NaN, no Infinity).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from canvas_aspen import oneroster, rows, rules, storage

from .canvas_payloads import CATEGORIES, COURSE_ID, MISSING, PERIODS, SECTIONS, TZ, Course, courses

pytestmark = pytest.mark.timeout(600)

GRADING_PERIODS = [rules.GradingPeriod.from_oneroster(p) for p in PERIODS]


def row_keys(df: pd.DataFrame) -> dict[tuple[int, int, int], str]:
    return {
        (int(a), int(u), int(s)): b
        for a, u, s, b in zip(
            df["assignment_id"], df["canvas_user_id"], df["canvas_section_id"], df["bucket"], strict=True
        )
    }


# --------------------------------------------------------------------------- rows (fast, many examples)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(courses())
def test_rows_frame_never_crashes_and_has_exactly_the_grades_the_rules_consider(course: Course):
    bundle = json.loads(json.dumps(course.bundle))  # as canvas.json stores it (NaN/Infinity kept)
    df = rows.build_rows([bundle], GRADING_PERIODS, TZ)
    want = {k: v for k, v in course.labels.items() if v != "absent"}
    got = row_keys(df)
    assert set(got) == set(want)
    for key, label in want.items():
        assert got[key] == ("empty" if label == "empty" else "eligible"), (key, label)
    assert df["row_id"].is_unique
    assert df["score"].dtype == "float64" and df["points_possible"].dtype == "float64"


# --------------------------------------------------------------------------- the stages (GX)


class FakeAspen:
    """Aspen for match and deltas: the two classes with their categories and rosters; an
    unknown class has none (so its grades are held back, not failed)."""

    stats: dict = {}  # what the stages' progress lines read from a hook
    student_id_field = "sourcedId"  # the Aspen connection's defaults (R22, R21)
    column_code_length = 10

    def __init__(self, roster: set[str], held: dict[str, tuple[list, list]] | None = None):
        self.roster = sorted(roster)
        self.held = held or {}  # class -> (line items, results) Aspen holds already, oddities included

    def list_categories(self, class_id):
        if class_id not in SECTIONS.values():
            return []
        return [
            {
                "sourcedId": f"cat-{class_id}-{i}",
                "title": t,
                "status": "active",
                "metadata": {"classId": class_id, "weight": 30},
            }
            for i, t in enumerate(CATEGORIES)
        ]

    def list_students(self, class_id):
        return [{"sourcedId": s} for s in self.roster] if class_id in SECTIONS.values() else []

    def list_line_items(self, class_id):
        return self.held.get(class_id, ([], []))[0]

    def list_results(self, class_id):
        return self.held.get(class_id, ([], []))[1]

    def map_concurrent(self, fn, items, *, on_error="raise", **_):
        out = []
        for item in items:
            try:
                out.append(fn(item))
            except Exception as exc:  # noqa: BLE001 - collected, like the hook
                if on_error == "raise":
                    raise
                out.append(exc)
        return out


def aspen_accepts(li_bodies: dict[str, dict], results: list[tuple[str, dict]], roster: set[str]) -> None:
    """Every body survives strict JSON and the sandbox Aspen's validation of a PUT."""
    from sandbox.aspen_state import AspenState

    scenario = {
        "canvas": {"users": []},
        "aspen": {
            "client_id": "x",
            "client_secret": "y",
            "grading_periods": PERIODS and [{**p, "locked": p["metadata"]["locked"]} for p in PERIODS],
            "classes": [
                {
                    "sourcedId": c,
                    "roster": sorted(roster),
                    "categories": [
                        {"sourcedId": f"cat-{c}-{i}", "code": f"C{i}", "title": t}
                        for i, t in enumerate(CATEGORIES)
                    ],
                }
                for c in SECTIONS.values()
            ],
        },
    }
    aspen = AspenState(scenario)
    for sid, body in li_bodies.items():
        aspen.put_line_item(sid, json.loads(json.dumps({"lineItem": body}, allow_nan=False)))
    for sid, body in results:
        aspen.put_result(sid, json.loads(json.dumps({"result": body}, allow_nan=False)))


@pytest.fixture(scope="module")
def ledger_url(tmp_path_factory):
    from canvas_aspen.ledger import Ledger

    path = tmp_path_factory.mktemp("props") / "ledger.db"
    Ledger(f"sqlite:///{path}").migrate()
    return f"sqlite:///{path}"


ODD_SCORES = [7.5, 0, "8", "abc", None, math.nan, 1e308, -1, {}, [], True]
ODD_STATUSES = ["fully graded", " Fully Graded ", "exempt", "not submitted", "WEIRD", None, MISSING, 5]


@st.composite
def aspen_holdings(draw, course: Course) -> dict[str, tuple[list, list]]:
    """What Aspen already holds in the two classes: some of our results and line items with
    odd values (text and non-finite scores, unknown statuses, tombstones), and junk records."""
    held: dict[str, tuple[list, list]] = {c: ([], []) for c in SECTIONS.values()}
    for (aid, uid, sid), label in course.labels.items():
        if label == "absent" or not draw(st.booleans()):
            continue
        items, results = held[SECTIONS[sid]]
        r = {"sourcedId": f"canvas-a{aid}-s{sid}-u{uid}"}
        for key, values in (
            ("score", ODD_SCORES),
            ("scoreStatus", ODD_STATUSES),
            ("status", ["active", "tobedeleted", None, MISSING]),
        ):
            value = draw(st.sampled_from(values))
            if value is not MISSING:
                r[key] = value
        results.append(r)
        if draw(st.booleans()):
            items.append(
                {
                    "sourcedId": f"canvas-a{aid}-s{sid}",
                    "title": draw(st.sampled_from([None, "x", 5])),
                    "status": draw(st.sampled_from(["active", "tobedeleted", None])),
                }
            )
    for items, results in held.values():
        if draw(st.booleans()):
            results.append({"score": 1, "scoreStatus": "fully graded"})  # no sourcedId
            items.append({"title": "no id"})
            items.append({"sourcedId": "canvas-a999-s11", "title": "deleted in Canvas"})  # an orphan
    return held


def _value(status, score) -> tuple[str, float]:
    try:
        number = float(score) if score not in (None, "") else math.nan
    except (TypeError, ValueError):
        number = math.nan
    return str(status if status is not None else "").strip().lower(), number


def _same(a: tuple[str, float], b: tuple[str, float]) -> bool:
    if a[0] != b[0]:
        return False
    return a[0] == "exempt" or (math.isnan(a[1]) and math.isnan(b[1])) or abs(a[1] - b[1]) <= 1e-6


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(course=courses(), n=st.integers(0, 10**9), data=st.data())
def test_gate_holds_back_every_bad_grade_with_a_finding_and_lets_every_good_one_through(
    course: Course, n: int, data, tmp_path: Path, ledger_url: str
):
    from canvas_aspen import stages
    from canvas_aspen.ledger import Ledger
    from canvas_aspen.stages.extract import write_canvas_answers

    run_dir = tmp_path / f"run-{n}"
    sd = run_dir / "shard-0000"
    storage.write_json(
        run_dir / "plan.json",
        {"params": {}, "course_ids": [COURSE_ID], "shards": [[COURSE_ID]], "grading_periods": PERIODS},
    )
    write_canvas_answers(sd, [course.bundle])  # as extract writes them
    storage.write_json(sd / "failed-courses.json", {})
    held = data.draw(aspen_holdings(course), label="Aspen holds")
    aspen = FakeAspen(course.roster, held)

    stages.validate(run_dir, 0, timezone_name=TZ)
    stages.match(aspen, run_dir, 0, mappings={})
    df = storage.read_frame(sd / "rows.parquet")
    findings = storage.read_json(sd / "findings-validate.json") + storage.read_json(
        sd / "findings-match.json"
    )

    got = row_keys(df)
    want = {k: v for k, v in course.labels.items() if v != "absent"}
    assert set(got) == set(want)
    expected_bucket = {"good": "eligible", "bad": "held_back", "empty": "empty"}
    errors = dict(zip(row_keys(df), df["error"], strict=True))
    wrong = {k: (want[k], b, errors[k]) for k, b in got.items() if b != expected_bucket[want[k]]}
    assert not wrong, wrong
    for r in df[df["bucket"].eq("held_back")].to_dict("records"):
        kinds = [k for k in (r["held_kinds"] or "").split(",") if k]
        assert kinds, r
        for kind in kinds:  # a finding of that kind names this grade (or its group or assignment)
            assert any(
                f["kind"] == kind
                and f["severity"] == "error"
                and f.get("canvas_course_id") in (None, COURSE_ID)
                and f.get("assignment_id") in (None, r["assignment_id"])
                and f.get("student_sis_id") in (None, r["student_sis_id"])
                for f in findings
            ), (kind, r["result_id"])

    ledger = Ledger(ledger_url)
    try:
        stages.deltas(aspen, ledger, run_dir, 0, full_resync=False)
    finally:
        ledger.dispose()
    actions = storage.read_frame(sd / "actions.parquet")
    eligible = storage.read_frame(sd / "rows.parquet").query("bucket == 'eligible'")
    assert set(actions["row_id"]) == set(eligible["row_id"])
    # nothing in the ledger: a grade is unchanged exactly when Aspen already holds its value (R8)
    holds = {}
    for _, results in held.values():
        for r in results:
            if r.get("sourcedId") and r.get("status") != "tobedeleted":
                holds[r["sourcedId"]] = _value(r.get("scoreStatus"), r.get("score"))
    action = dict(zip(actions["row_id"], actions["action"].astype(str), strict=True))
    for r in eligible.to_dict("records"):
        ours_ = _value(r["score_status"], r["score"])
        agrees = r["result_id"] in holds and _same(holds[r["result_id"]], ours_)
        assert action[r["row_id"]] == ("unchanged" if agrees else "post"), (
            r["result_id"],
            holds.get(r["result_id"]),
        )
    items = storage.read_frame(sd / "line-items.parquet")
    bodies = {r["line_item_id"]: json.loads(r["body"]) for r in items.to_dict("records")}
    assert set(bodies) == set(eligible["line_item_id"])
    results = [
        (r["result_id"], oneroster.result_body(r, pd.Timestamp("2026-12-01", tz="UTC")))
        for r in eligible.to_dict("records")
    ]
    aspen_accepts(bodies, results, course.roster)
    for _, body in results:
        assert "score" not in body or math.isfinite(body["score"])
