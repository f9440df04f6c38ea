"""The data team's path through the real Airflow UI, driven in Debian's Chromium.

A real Airflow 3.3 (``sandbox.airflow_stack``: api-server, scheduler, dag-processor, LocalExecutor,
SimpleAuthManager, metadata DB on this machine's PostgreSQL) runs beside the demo sandbox district,
with **no pool created** and the package's own ledger default (a SQLite file in the Airflow home).
Playwright for Python drives ``/usr/bin/chromium`` (``make browser`` installs it; no browser is ever
downloaded) as a person would:

1. signs in on Airflow's sign-in page and opens the DAG from the Dags list;
2. triggers it through the **Trigger** button's form with the defaults (the whole district); the
   run succeeds, its **Grade passback report** tab shows the totals, the category and over-maximum
   findings, the findings.csv link and the category setup sheet;
3. triggers it again with ``course_ids`` = ``[101]`` and **Dry run** switched on; the run succeeds,
   its tab shows the dry-run badge and only course 101;
4. opens **Browse → Grade passback reports**: both runs listed, the dry run marked;
5. triggers it with a course that does not exist (``[999999]``): the run fails within a minute and
   is listed with its reason, and its report tab says why.

Screenshots of every step land in ``test-artifacts/ui-*.png``. Without Chromium or PostgreSQL the
tests skip with the reason, and fail instead under ``CI_REQUIRE_SERVICES=1`` (``.ci/run``).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote

import pytest
from playwright.sync_api import expect

from sandbox.airflow_stack import AirflowStack, StackError, StackUnavailable

pytestmark = [pytest.mark.slow, pytest.mark.postgres, pytest.mark.timeout(1500)]  # ~6 min on a quiet machine

DAG_ID = "canvas_aspen_grade_passback"
REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / "test-artifacts"
EXPECTED = json.loads((REPO / "sandbox" / "scenarios" / "demo.expected.json").read_text())
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
RUN_TIMEOUT = 420.0  # the demo district on a busy 2-core machine, queued to finished
FAIL_WITHIN = 60.0  # a run asked for a course that does not exist: failed, queued to finished
UI_TIMEOUT_MS = 30_000  # one page or element


def _unavailable(reason: str) -> None:
    if os.environ.get("CI_REQUIRE_SERVICES") == "1":
        pytest.fail(f"{reason} (CI_REQUIRE_SERVICES=1)")
    pytest.skip(reason)


def _chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if not found:
        _unavailable("chromium is not installed: run `make browser` (Debian's chromium)")
    return found


@pytest.fixture(scope="module")
def stack() -> Iterator[AirflowStack]:
    from sandbox.control import Sandbox

    _chromium()
    with Sandbox.start(scenario="demo") as sb:
        try:
            st = AirflowStack.start(sandbox=sb, executor="LocalExecutor", shards=2, ledger="default")
        except StackUnavailable as exc:
            _unavailable(str(exc))
        with st:
            yield st


@pytest.fixture(scope="module")
def page(stack: AirflowStack) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(exist_ok=True)
    for old in ARTIFACTS.glob("ui-*.png"):
        old.unlink()
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=_chromium(), headless=True, args=CHROMIUM_ARGS)
        try:
            context = browser.new_context(base_url=stack.api_url, viewport={"width": 1400, "height": 1000})
            context.set_default_timeout(UI_TIMEOUT_MS)
            expect.set_options(timeout=UI_TIMEOUT_MS)  # pages load slowly on a busy 2-core machine
            yield context.new_page()
        finally:
            browser.close()


def _shot(page: Any, name: str) -> None:
    path = ARTIFACTS / f"ui-{name}.png"
    page.screenshot(path=str(path), full_page=True)
    path.chmod(0o600)  # student ids (the sandbox's) on screen: owner-only, like the reports


def _sign_in(page: Any, stack: AirflowStack) -> None:
    page.goto("/")
    page.wait_for_url(re.compile(r"/auth/login"))
    page.get_by_label("Username").fill(stack.username)
    page.get_by_label("Password").fill(stack.password)
    _shot(page, "1-sign-in")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("link", name="Dags")).to_be_visible()


def _open_dag(page: Any) -> None:
    page.get_by_role("link", name="Dags").click()
    page.get_by_role("link", name=DAG_ID).first.click()
    expect(page.get_by_role("heading", name=DAG_ID)).to_be_visible()


def _trigger_form(page: Any, *, course_ids: list[int] | None = None, dry_run: bool = False, shot: str) -> str:
    """The DAG page's **Trigger** button → the Trigger Dag dialog (Single Run) → Run Parameters →
    **Trigger**. Airflow then opens the new run's page; its run id."""
    page.get_by_role("button", name="Trigger").first.click()
    dialog = page.get_by_role("dialog")
    expect(dialog.get_by_text(f"Trigger Dag - {DAG_ID}")).to_be_visible()
    expect(dialog.get_by_role("radio", name=re.compile("Single Run"))).to_be_checked()
    if course_ids is not None:  # a JSON editor (Monaco): select all, replace
        dialog.locator("#element_course_ids .monaco-editor .view-lines").click()
        page.keyboard.press("ControlOrMeta+A")
        page.keyboard.press("Delete")
        page.keyboard.insert_text(json.dumps(course_ids))
    if dry_run:  # a switch
        dialog.locator("label:has(input[name=element_dry_run]) [data-part=control]").click()
        expect(dialog.locator("input[name=element_dry_run]")).to_be_checked()
    page.set_viewport_size({"width": 1400, "height": 2400})  # the whole dialog in the screenshot
    _shot(page, shot)
    page.set_viewport_size({"width": 1400, "height": 1000})
    submit = dialog.get_by_role("button", name="Trigger", exact=True)
    expect(
        submit, "the Trigger form's Trigger button is disabled (Run Parameters marked invalid)"
    ).to_be_enabled()
    submit.click()
    # Airflow may show the toast twice (two renders of one notice): one visible is what a person sees
    expect(page.get_by_text("Dag Run Triggered").first).to_be_visible()
    page.wait_for_url(re.compile(rf"/dags/{DAG_ID}/runs/[^/]+$"))
    return unquote(page.url.rsplit("/runs/", 1)[1])


def _run_page(page: Any, run_id: str, state: str) -> None:
    page.goto(f"/dags/{DAG_ID}/runs/{quote(run_id, safe='')}")
    expect(page.get_by_role("heading", name=run_id)).to_be_visible()
    expect(page.get_by_text(state, exact=True).first).to_be_visible()


def _report_tab(page: Any, run_id: str, shot: str) -> Any:
    """The run page's **Grade passback report** tab; the frame showing the run's report."""
    page.get_by_role("link", name="Grade passback report", exact=True).click()
    page.wait_for_url(re.compile(r"/plugin/canvas-aspen-run-report"))
    frame = page.frame_locator("iframe").first
    expect(frame.locator("h1").first).to_be_visible()
    _shot(page, shot)
    return frame


def _reports_list(page: Any, shot: str) -> Any:
    """**Browse → Grade passback reports**; the frame with the list of runs."""
    page.get_by_role("button", name="Browse").click()
    page.get_by_role("menuitem", name="Grade passback reports").click()
    frame = page.frame_locator("iframe").first
    expect(frame.get_by_role("heading", name=re.compile("run reports"))).to_be_visible()
    _shot(page, shot)
    return frame


def _row(frame: Any, run_id: str) -> Any:
    return frame.locator("tr", has=frame.get_by_text(run_id, exact=True))


def _card(frame: Any, total: str) -> str:
    """The number on the report's totals card ``total`` ("posted", "held back", …)."""
    card = frame.locator("#totals .card", has=frame.get_by_text(total, exact=True))
    return card.locator("b").inner_text().strip()


def _wait(stack: AirflowStack, run_id: str, timeout: float) -> tuple[str, float]:
    started = time.monotonic()
    state = stack.wait(run_id, timeout)
    return state, time.monotonic() - started


# --------------------------------------------------------------------------- the path


def test_the_data_teams_path_in_the_airflow_ui(stack: AirflowStack, page: Any) -> None:
    sb = stack.sandbox
    results_expected = len(EXPECTED["results"])
    held_back_expected = len(EXPECTED["held_back"])

    # 1. Sign in; the DAG from the Dags list. It is paused (a new DAG is): the form unpauses it.
    _sign_in(page, stack)
    _open_dag(page)
    _shot(page, "2-dag")

    # 2. The Trigger form with its defaults: the whole district.
    district = _trigger_form(page, shot="3-trigger-defaults")
    state, _ = _wait(stack, district, RUN_TIMEOUT)
    assert state == "success", f"{district}: {state}\n{stack.task_summary(district)}"
    assert stack.dag()["is_paused"] is False
    pools = {t["pool"] for t in stack.task_instances(district)}
    assert pools == {"default_pool"}, f"a plain Airflow has only default_pool, the run used {pools}"
    _run_page(page, district, "Success")
    frame = _report_tab(page, district, "4-report-district")
    expect(frame.locator(".badge.ok", has_text="succeeded")).to_be_visible()
    assert int(_card(frame, "posted")) == results_expected
    assert int(_card(frame, "held back")) == held_back_expected
    assert int(_card(frame, "failed")) == 0
    mismatch = frame.locator("#kind-category_mismatch")
    expect(mismatch).to_contain_text("Quizzes")  # the Canvas group, and the category it should be
    expect(mismatch.locator("b", has_text="Quiz").first).to_be_visible()
    over = frame.locator("#kind-over_max")  # assignment, score and maximum
    expect(over).to_contain_text("HW 4")
    expect(over.get_by_role("cell", name="12.0", exact=True)).to_be_visible()
    expect(over.get_by_role("cell", name="10.0", exact=True)).to_be_visible()
    expect(frame.get_by_role("link", name="findings.csv")).to_be_visible()
    expect(frame.get_by_role("heading", name="Category setup sheet")).to_be_visible()
    aspen_after_district = sb.state()

    # 3. One course, dry run: only course 101, nothing sent to Aspen.
    _open_dag(page)
    dry = _trigger_form(page, course_ids=[101], dry_run=True, shot="5-trigger-dry-run-101")
    state, _ = _wait(stack, dry, RUN_TIMEOUT)
    assert state == "success", f"{dry}: {state}\n{stack.task_summary(dry)}"
    assert stack.run(dry)["conf"]["course_ids"] == [101] and stack.run(dry)["conf"]["dry_run"] is True
    _run_page(page, dry, "Success")
    frame = _report_tab(page, dry, "6-report-dry-run-101")
    expect(frame.locator(".badge.dry")).to_contain_text("nothing was sent")
    courses = frame.locator("xpath=//h2[normalize-space()='Courses']/following-sibling::table[1]")
    expect(courses.get_by_role("cell", name="101", exact=True)).to_be_visible()
    for other in ("102", "103"):
        expect(courses.get_by_role("cell", name=other, exact=True)).to_have_count(0)
    assert sb.state() == aspen_after_district, "the dry run changed Aspen"
    ledger = stack.home / "canvas_aspen" / "ledger.db"  # the package's default ledger: owner-only
    assert ledger.exists(), f"no ledger at {ledger}"
    open_to_others = {
        p.name: oct(p.stat().st_mode & 0o777)
        for p in (ledger.parent, *ledger.parent.glob("ledger.db*"))
        if p.stat().st_mode & 0o077
    }
    assert not open_to_others, (
        f"the ledger holds student ids and scores but is open to others: {open_to_others}"
    )

    # 4. Browse → Grade passback reports: both runs, the dry run marked.
    frame = _reports_list(page, "7-reports-list")
    expect(_row(frame, district)).to_contain_text("succeeded")
    expect(_row(frame, district).locator(".badge.dry")).to_have_count(0)
    expect(_row(frame, dry)).to_contain_text("succeeded")
    expect(_row(frame, dry).locator(".badge.dry")).to_be_visible()
    # each run's links are on screen in a 1400 px wide window, not cut off at the frame's edge
    for link in ("report", "findings.csv", "Data Docs"):
        expect(_row(frame, district).get_by_role("link", name=link, exact=True)).to_be_in_viewport(ratio=1)

    # 5. A course that does not exist: failed within a minute, listed with its reason.
    _open_dag(page)
    missing = _trigger_form(page, course_ids=[999999], shot="8-trigger-missing-course")
    try:
        state, took = _wait(stack, missing, FAIL_WITHIN)
    except StackError:
        pytest.fail(
            f"{missing} (course 999999 does not exist) still {stack.run(missing)['state']} after "
            f"{FAIL_WITHIN:.0f}s: a failure that is certain at once must not be retried\n"
            f"{stack.task_summary(missing)}"
        )
    assert state == "failed", f"{missing}: {state}\n{stack.task_summary(missing)}"
    _run_page(page, missing, "Failed")
    frame = _report_tab(page, missing, "9-report-missing-course")
    expect(frame.locator("body")).to_contain_text("999999")
    expect(frame.locator("body")).not_to_contain_text("still going")
    frame = _reports_list(page, "10-reports-list-failed")
    row = _row(frame, missing)
    expect(row).to_contain_text("failed")
    expect(row).to_contain_text("999999")  # the reason, as text on the page (not only a tooltip)
