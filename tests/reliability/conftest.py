"""Reliability fixtures: the DAG's stage functions driven the way the DAG drives them,
against a sandbox (127.0.0.1 only), with a ledger and stage files per test.

``Pipeline`` is one DAG run: ``plan()``, then each stage over every shard, ``report()``;
every (stage, shard) call gets fresh hooks, as every Airflow task instance does, and the
Connections come from ``AIRFLOW_CONN_*`` as ``sandbox.airflow_conn_env()`` gives them. Two
``Pipeline``s on one ledger are a nightly run and a manual backfill, which tests interleave
stage by stage.
"""

from __future__ import annotations

import json
import os
import secrets
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from unittest import mock

import pytest

REPO = Path(__file__).resolve().parents[2]
DEMO = json.loads((REPO / "sandbox/scenarios/demo.json").read_text())
EXPECTED = json.loads((REPO / "sandbox/scenarios/demo.expected.json").read_text())
PARAMS = {
    "course_ids": [],
    "dry_run": False,
    "full_resync": False,
    "delete_orphans": False,
    "category_mappings": {},
    "mapping_file": "",
}
BUCKETS = ("posted", "unchanged", "empty", "hidden", "held_back", "failed")  # R17 (hidden: R20)
STAGES = ("extract", "validate", "match", "deltas", "post", "verify")


def demo_scenario(**secret_overrides: str) -> dict[str, Any]:
    """The demo district with fresh, unguessable secrets (so a search for them means something)."""
    scenario = json.loads(json.dumps(DEMO))
    scenario["canvas"]["token"] = secret_overrides.get("canvas_token") or f"cvtok-{secrets.token_hex(12)}"
    scenario["aspen"]["client_secret"] = (
        secret_overrides.get("aspen_secret") or f"aspsec-{secrets.token_hex(12)}"
    )
    return scenario


def student_names() -> list[str]:
    return [u["name"] for u in DEMO["canvas"]["users"]]


# ------------------------------------------------------------------------ Aspen's state


def _ref(value: Any) -> Any:
    return value.get("sourcedId") if isinstance(value, dict) else value


LI_FIELDS = (
    "title",
    "class",
    "category",
    "gradingPeriod",
    "dueDate",
    "assignDate",
    "resultValueMin",
    "resultValueMax",
    "status",
)
RESULT_FIELDS = ("lineItem", "student", "scoreStatus", "score", "status")


def ours(state: dict) -> dict[str, dict]:
    """Our line items and results in Aspen, by sourcedId, as comparable values (server
    bookkeeping such as ``dateLastModified`` left out)."""

    def norm(record: dict, fields: tuple) -> tuple:
        out = []
        for f in fields:
            v = _ref(record.get(f))
            out.append(
                float(v) if f in ("score", "resultValueMin", "resultValueMax") and v is not None else v
            )
        return tuple(out)

    return {
        "lineItems": {
            k: norm(v, LI_FIELDS) for k, v in state["lineItems"].items() if k.startswith("canvas-")
        },
        "results": {
            k: norm(v, RESULT_FIELDS) for k, v in state["results"].items() if k.startswith("canvas-")
        },
    }


def assert_buckets_add_up(report: dict) -> None:
    t = report["totals"]
    assert t["considered"] == sum(t[b] for b in BUCKETS), t
    for c in report["courses"]:
        assert c["considered"] == sum(c[b] for b in BUCKETS), c


def assert_ledger_agrees(
    ledger, state: dict, *, classes: list[str] | None = None, complete: bool = True
) -> None:
    """Every result the ledger says we posted is what Aspen holds, and (``complete``) every
    result of ours that Aspen holds is in the ledger (nothing posted behind its back),
    except the pre-existing ones of the scenario."""
    posted = ledger.posted_results(classes)
    held = state["results"]
    for r in posted.to_dict("records"):
        got = held.get(r["result_id"])
        assert got is not None, f"ledger says {r['result_id']} was posted; Aspen does not hold it"
        assert got.get("scoreStatus") == r["score_status"], (r["result_id"], got, r)
        if r["score_status"] != "exempt":
            assert float(got["score"]) == pytest.approx(float(r["score"])), (r["result_id"], got, r)
    if not complete:
        return
    pre_existing = {r["sourcedId"] for r in DEMO["aspen"].get("results", [])}
    ledger_ids = set(posted["result_id"])
    ours_in_aspen = {k for k in held if k.startswith("canvas-") and k not in pre_existing}
    assert ours_in_aspen <= ledger_ids, sorted(ours_in_aspen - ledger_ids)[:5]


# ------------------------------------------------------------------------ the driver


class Pipeline:
    """One DAG run, stage by stage, in this process (or one stage in a child process)."""

    def __init__(
        self,
        sb,
        ledger,
        root: Path,
        run_id: str,
        *,
        shards: int = 2,
        env: dict | None = None,
        lease_minutes: int = 240,
        data_docs: bool = False,
        **params: Any,
    ):
        self.sb, self.ledger, self.root, self.run_id = sb, ledger, root, run_id
        self.shard_count = shards
        self.env = dict(env if env is not None else sb.airflow_conn_env())
        if not data_docs:  # the report builds GX Data Docs; they cost seconds and prove nothing here
            self.env.setdefault("CANVAS_ASPEN_DATA_DOCS", "off")
        self.params = {**PARAMS, **params}
        self.run_dir = root / "stage" / run_id
        self.reports_dir = root / "reports"
        self.lease = timedelta(minutes=lease_minutes)
        self.shards: list[int] = []
        self.out: dict[str, Any] = {}
        self.started = datetime.now(timezone.utc)

    @contextmanager
    def connections(self):
        with mock.patch.dict(os.environ, self.env):
            yield

    def hooks(self):
        from canvas_aspen.hooks.aspen import AspenHook
        from canvas_aspen.hooks.canvas import CanvasHook

        return CanvasHook(canvas_conn_id="canvas_default"), AspenHook(aspen_conn_id="aspen_default")

    # ---- stages, as the DAG's tasks call them

    def plan(self) -> list[int]:
        from canvas_aspen import stages

        with self.connections():
            canvas, aspen = self.hooks()
            self.ledger.start_run(
                self.run_id, params=self.params, dry_run=self.params["dry_run"], started_at=self.started
            )
            out = stages.plan(canvas, aspen, self.run_dir, params=self.params, shard_count=self.shard_count)
        self.shards = [s["shard"] for s in out]
        return self.shards

    def stage(self, name: str, shard: int) -> dict:
        from canvas_aspen import stages
        from canvas_aspen.airflow_glue import mappings

        kw = _lease_kwargs(self, name)
        with self.connections():
            canvas, aspen = self.hooks()
            if name == "extract":
                return stages.extract(canvas, self.run_dir, shard, **kw)
            if name == "validate":
                return stages.validate(
                    self.run_dir,
                    shard,
                    timezone_name="America/New_York",
                )
            if name == "match":
                return stages.match(
                    aspen,
                    self.run_dir,
                    shard,
                    mappings=mappings(self.params),
                )
            if name == "deltas":
                return stages.deltas(
                    aspen, self.ledger, self.run_dir, shard, full_resync=self.params["full_resync"], **kw
                )
            if name == "post":
                return stages.post(
                    aspen,
                    self.ledger,
                    self.run_dir,
                    shard,
                    run_id=self.run_id,
                    dry_run=self.params["dry_run"],
                    delete_orphans=self.params["delete_orphans"],
                    **kw,
                )
            if name == "verify":
                return stages.verify(aspen, self.run_dir, shard, dry_run=self.params["dry_run"])
        raise ValueError(name)

    def run_stage(self, name: str) -> list[dict]:
        """One stage over every shard; a shard whose task raises is recorded, as Airflow
        records a failed task instance, and its downstream shards are skipped."""
        outs = []
        for k in self.shards:
            if k in self.out.get("dead", set()):
                continue
            try:
                outs.append(self.stage(name, k))
            except Exception as exc:  # the task failed: Airflow marks it failed, report runs anyway
                self.out.setdefault("dead", set()).add(k)
                self.out.setdefault("errors", []).append((name, k, exc))
        self.out[name] = outs
        return outs

    def report(self) -> tuple[str, dict]:
        from canvas_aspen import stages

        with self.connections():
            out = stages.report(
                self.ledger,
                self.run_dir,
                self.reports_dir,
                run_id=self.run_id,
                started_at=self.started.isoformat(),
            )
        self.out["report"] = out
        state = "failed" if out["failed_reasons"] else "success"
        return state, json.loads(Path(out["report"]).read_text())

    def run(self, upto: str | None = None) -> tuple[str, dict]:
        self.plan()
        for name in STAGES:
            self.run_stage(name)
            if name == upto:
                return "", {}
        return self.report()


def _lease_kwargs(p: Pipeline, stage: str) -> dict[str, Any]:
    """The course-lease arguments of the stages that take them (issue 8), as the DAG passes them."""
    if stage == "extract":
        return {"ledger": p.ledger, "run_id": p.run_id, "lease": p.lease}
    if stage == "post":
        return {"lease": p.lease}
    return {}


def fault_free(sb, root: Path, **kwargs) -> tuple[dict, dict]:
    """Aspen (``ours``) and the report after one undisturbed run from the scenario's start."""
    from canvas_aspen.ledger import Ledger

    sb.reset()
    ledger = Ledger(f"sqlite:///{root / 'baseline-ledger.db'}")
    ledger.migrate()
    try:
        state, report = Pipeline(sb, ledger, root, "baseline", **kwargs).run()
    finally:
        ledger.dispose()
    assert state == "success", report["totals"]
    assert report["totals"]["posted"] == len(EXPECTED["results"])
    after = ours(sb.state())
    sb.reset()
    return after, report


def conn_env(
    sb,
    *,
    extra: dict[str, Any] | None = None,
    canvas: dict[str, Any] | None = None,
    aspen: dict[str, Any] | None = None,
) -> dict[str, str]:
    """``sb``'s ``AIRFLOW_CONN_*`` (what ``Pipeline`` uses by default), changed: ``extra`` is
    merged into both connections' extras; ``canvas`` / ``aspen`` change that connection alone
    (``{"host": proxy_url}``, or ``{"extra": {...}}``, merged into its extras)."""
    env = {}
    for key, value in sb.airflow_conn_env().items():
        conn = json.loads(value)
        if extra:
            conn["extra"] = {**conn.get("extra", {}), **extra}
        own = canvas if key.endswith("CANVAS_DEFAULT") else aspen if key.endswith("ASPEN_DEFAULT") else None
        for field, change in (own or {}).items():
            if change is None:
                continue
            conn[field] = {**conn.get(field, {}), **change} if field == "extra" else change
        env[key] = json.dumps(conn)
    return env


def course(report: dict, course_id: int) -> dict:
    """One course's line of a report."""
    return next(c for c in report["courses"] if c["canvas_course_id"] == course_id)


# ------------------------------------------------------------------------ fixtures


@pytest.fixture(scope="module")
def sb():
    """The demo district on a sandbox of this test module's own, with fresh secrets; tests
    ``sb.reset()`` it before they use it."""
    from sandbox.control import Sandbox

    with Sandbox.start(scenario=demo_scenario()) as sandbox:
        yield sandbox


@pytest.fixture(scope="module")
def baseline(sb, tmp_path_factory):
    """Aspen (``ours``) and the report after an undisturbed run of ``sb`` (a module that
    drives its runs differently overrides this fixture with its own ``fault_free`` call)."""
    return fault_free(sb, tmp_path_factory.mktemp("baseline"))


from tests.e2e.conftest import DAG_ID, _runner, airflow_db, passback_dag  # noqa: E402,F401 - the DAG for real


@pytest.fixture
def dag_run(passback_dag, tmp_path, monkeypatch):  # noqa: F811 - the fixture imported above
    """``dag_run(sb, **conf)`` -> (state, report, dag_run, report folder): the DAG itself with
    ``dag.test()`` (tasks in this process) against sandbox ``sb``, with its own stage files,
    reports and ledger (shared by the test's runs)."""
    return _runner(passback_dag, tmp_path, monkeypatch, whole=True)


@pytest.fixture
def ledger(tmp_path):
    from canvas_aspen.ledger import Ledger

    led = Ledger(f"sqlite:///{tmp_path / 'ledger.db'}")
    led.migrate()
    yield led
    led.dispose()


@pytest.fixture
def pipeline(ledger, tmp_path):
    """``pipeline(sb, run_id="…", **params)`` -> a ``Pipeline`` on the test's ledger and folders."""
    counter = iter(range(1, 1000))

    def make(sb, run_id: str | None = None, **kwargs):
        return Pipeline(sb, ledger, tmp_path, run_id or f"run-{next(counter)}", **kwargs)

    return make
