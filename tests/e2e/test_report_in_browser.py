"""The data team's review: the demo run's report.html, rendered by headless Chromium.

Chromium comes from Debian (`make browser`, which `.ci/run` runs). The screenshot is kept
in test-artifacts/ for a person to look at.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

pytestmark = [pytest.mark.slow, pytest.mark.airflow_db]

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
]


def _chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if not found:
        if os.environ.get("CI_REQUIRE_SERVICES") == "1":
            pytest.fail("chromium is not installed (make browser installs it)")
        pytest.skip("chromium is not installed: run `make browser` (Debian's chromium)")
    return found


def _chrome(args: list[str], profile: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [_chromium(), *FLAGS, f"--user-data-dir={profile}", *args],
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture(scope="module")
def demo_report(sandbox_factory_module, run_passback_module):
    sb = sandbox_factory_module(scenario="demo")
    state, report = run_passback_module(sb)
    assert state == "success"
    return report


def test_report_html_shows_mismatches_and_over_max_in_a_real_browser(demo_report, tmp_path):
    folder = Path(demo_report["_folder"])
    page = folder / "report.html"
    dom = _chrome(["--virtual-time-budget=3000", "--dump-dom", page.as_uri()], tmp_path / "p1").stdout
    assert 'id="kind-category_mismatch"' in dom and 'id="kind-over_max"' in dom
    mismatch = dom.split('id="kind-category_mismatch"')[1].split("</section>")[0]
    assert "Quizzes" in mismatch and "<b>Quiz</b>" in mismatch  # the Canvas group and the suggested category
    over = dom.split('id="kind-over_max"')[1].split("</section>")[0]
    assert "HW 4" in over and ">12" in over and ">10" in over  # assignment, score and maximum
    assert "findings.csv" in dom and "Category setup sheet" in dom
    ARTIFACTS.mkdir(exist_ok=True)
    shot = ARTIFACTS / "report-demo.png"
    shot.unlink(missing_ok=True)
    _chrome(["--window-size=1400,2400", f"--screenshot={shot}", page.as_uri()], tmp_path / "p2")
    assert shot.exists() and shot.stat().st_size > 20_000


def test_teacher_digest_preview_and_its_listing_in_a_real_browser(demo_report, tmp_path):
    """The demo run's digest for Dana Whitfield (preview, the default) as a teacher sees it, and
    the report's listing of it."""
    folder = Path(demo_report["_folder"])
    digest = folder / "digests" / "teacher-9001.html"
    dom = _chrome(["--virtual-time-budget=2000", "--dump-dom", digest.as_uri()], tmp_path / "d1").stdout
    assert "Dear Dana Whitfield" in dom and "Algebra I" in dom and "Biology" in dom
    assert "Categories → Options → Add" in dom and "<code>QUIZZES</code>" in dom  # the setup sheet row
    assert 'data-kind="over_max"' in dom and "<code>S1001</code>: 12" in dom
    listing = _chrome(
        ["--virtual-time-budget=2000", "--dump-dom", (folder / "report.html").as_uri()], tmp_path / "d2"
    ).stdout
    table = listing.split('id="digests"')[1].split("</table>")[0]
    assert "Dana Whitfield" in table and 'href="digests/teacher-9001.html"' in table and "previewed" in table
    ARTIFACTS.mkdir(exist_ok=True)
    shot = ARTIFACTS / "digest-demo.png"
    shot.unlink(missing_ok=True)
    _chrome(["--window-size=900,2200", f"--screenshot={shot}", digest.as_uri()], tmp_path / "d3")
    assert shot.exists() and shot.stat().st_size > 20_000
