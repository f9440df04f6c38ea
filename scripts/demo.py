"""`make demo`: the DAG for real (`airflow dags test`) against the sandbox district.

1. initialise an Airflow home in `.airflow/` (SQLite, no examples);
2. start the sandbox Canvas and Aspen with the `demo` scenario;
3. run the DAG: the first night posts the district;
4. run it again: nothing changed, nothing is posted (and no teacher digest: nothing new to say);
5. apply a day of grading in the sandbox and run once more: only the changes go.
Prints each run's totals and where its report is.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from sandbox.control import Sandbox  # noqa: E402

DAG_ID = "canvas_aspen_grade_passback"
HOME = Path(os.environ.get("AIRFLOW_HOME") or REPO / ".airflow")
BIN = Path(sys.executable).parent


def _env(extra: dict[str, str]) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        {
            "AIRFLOW_HOME": str(HOME),
            "AIRFLOW__CORE__DAGS_FOLDER": str(REPO / "dags"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{HOME / 'airflow.db'}",
            "CANVAS_ASPEN_SHARDS": env.get("CANVAS_ASPEN_SHARDS", "2"),
            "GX_ANALYTICS_ENABLED": "False",
        }
    )
    env.update(extra)
    return env


def _reports_dir() -> Path:
    return Path(os.environ.get("CANVAS_ASPEN_REPORTS_DIR") or HOME / "canvas_aspen" / "reports")


def _run(title: str, env: dict[str, str], n: int) -> dict:
    print(f"\n== {title}", flush=True)
    before = {p.name for p in _reports_dir().glob("*")} if _reports_dir().exists() else set()
    log = HOME / f"demo-run-{n}.log"
    t0 = time.monotonic()
    with log.open("wb") as fh:
        proc = subprocess.run(
            [str(BIN / "airflow"), "dags", "test", DAG_ID],
            env=env,
            stdout=fh,
            stderr=subprocess.STDOUT,
            cwd=REPO,
        )
    new = sorted(
        (p for p in _reports_dir().glob("*") if p.name not in before), key=lambda p: p.stat().st_mtime
    )
    if not new:
        sys.exit(f"the run wrote no report (exit {proc.returncode}); see {log}")
    report = json.loads((new[-1] / "report.json").read_text())
    t = report["totals"]
    print(
        f"   {time.monotonic() - t0:.0f}s  considered {t['considered']}: posted {t['posted']}, "
        f"unchanged {t['unchanged']}, empty {t['empty']}, hidden {t.get('hidden', 0)}, "
        f"held back {t['held_back']}, failed {t['failed']}; "
        f"verified {report['verify']['checked']}, findings {len(report['findings'])}"
    )
    print(f"   report: {new[-1] / 'report.html'}")
    _print_digests(new[-1])
    print(f"   task log: {log}")
    return report


def _print_digests(folder: Path) -> None:
    """The teacher digests the run wrote (CANVAS_ASPEN_TEACHER_DIGEST=preview by default: nothing sent)."""
    index = folder / "digests" / "index.json"
    listing = json.loads(index.read_text()) if index.exists() else []
    if not listing:
        print("   teacher digests: none this run (nothing changed for any teacher since their last digest)")
        return
    for e in listing:
        print(
            f"   teacher digest ({e['status']}, {e['reason']}): {e['findings']} to fix in courses "
            f"{', '.join(map(str, e['course_ids']))}: {folder / 'digests' / e['html']}"
        )


def main() -> None:
    HOME.mkdir(parents=True, exist_ok=True)
    base = _env({})
    print(f"Airflow home: {HOME}")
    with (HOME / "db-migrate.log").open("wb") as fh:
        subprocess.run(
            [str(BIN / "airflow"), "db", "migrate"], env=base, stdout=fh, stderr=subprocess.STDOUT, check=True
        )
    print("Starting the sandbox Canvas and Aspen (scenario: demo) ...")
    with Sandbox.start(scenario="demo") as sb:
        print(f"   Canvas {sb.canvas_url}   Aspen {sb.aspen_url}")
        env = _env(sb.airflow_conn_env())
        first = _run("Night 1: the first passback of the district", env, 1)
        second = _run("Night 2: nothing changed in Canvas, so nothing is posted", env, 2)
        change = sb.day_of_grading(fraction=0.1, add_assignments=1, delete_assignments=1, seed=1)
        c, a = change["canvas"], change["aspen"]
        print(
            "\n   a day of grading in the sandbox: "
            f"{len(c['scripted']) + len(c['changed'])} Canvas grades changed, "
            f"{len(c['added_assignments'])} assignment(s) added, {len(c['deleted_assignments'])} deleted, "
            f"{len(a['scripted']) + len(a['edited'])} hand edit(s) in Aspen"
        )
        third = _run("Night 3: only the day's changes are posted", env, 3)
    print("\nDone. Open the reports above in a browser; every grade is in exactly one bucket.")
    print(
        "Teacher digests are previews (CANVAS_ASPEN_TEACHER_DIGEST=preview, the default): nothing was "
        "sent, so each night previews what `send` would send to a teacher never sent one; "
        "README: turning them on."
    )
    if second["totals"]["posted"]:
        sys.exit("unexpected: the second run posted grades although nothing changed")
    del first, third


if __name__ == "__main__":
    main()
