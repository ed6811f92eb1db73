"""index.html in headless Chromium: the script runs, and the counts it shows agree with the
results, unfiltered and filtered through the URL. Keeps a screenshot of the page."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from harness.report.coverage import FAILING, STATUSES, coverage
from harness.report.write import write_report
from tests.report import synthetic
from tests.report.dom import having

CHROMIUM = shutil.which("chromium")
SHOWN = "/tmp/rfcdrill-report.png"

pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="chromium is not installed (Debian: apt-get install chromium; "
                             "ci/setup.sh installs it)")


def chromium(tmp_path: Path, url: str, *args: str) -> str:
    profile = tmp_path / "profile"
    profile.mkdir(exist_ok=True)
    done = subprocess.run(
        [str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--no-first-run", f"--user-data-dir={profile}", *args, url],
        capture_output=True, text=True, timeout=120, check=True)
    return done.stdout


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("report")
    write_report(folder, synthetic.META, synthetic.results())
    return folder / "index.html"


def _shown_counts(dom: str) -> dict[tuple[str, str], int]:
    return {(e.attrs["data-shown-target"], e.attrs["data-shown-status"]): int(e.text)
            for e in having(dom, "data-shown-status")}


def test_the_counts_the_page_shows_are_the_coverage_figures(report: Path, tmp_path: Path) -> None:
    dom = chromium(tmp_path, report.as_uri(), "--dump-dom")
    cov = coverage(synthetic.results(), synthetic.TARGETS)
    assert _shown_counts(dom) == {(t, s): cov.figures(t).by_status[s]
                                  for t in synthetic.TARGETS for s in STATUSES}
    visible = next(e for e in having(dom, "data-visible") if e.attrs["id"] == "shown-rows")
    assert int(visible.attrs["data-visible"]) == len(cov.requirements)
    assert "10 of 10 cases shown" in dom


def test_a_filter_in_the_url_narrows_the_matrix_and_its_counts(report: Path,
                                                               tmp_path: Path) -> None:
    dom = chromium(tmp_path, report.as_uri() + "#f:status=failing&level=MUST", "--dump-dom")
    cov = coverage(synthetic.results(), synthetic.TARGETS)
    rows = [r for r in cov.requirements.values() if r.level == "MUST"
            and FAILING in (cov.status(r.id, t) for t in synthetic.TARGETS)]
    visible = next(e for e in having(dom, "data-visible") if e.attrs["id"] == "shown-rows")
    assert int(visible.attrs["data-visible"]) == len(rows) == 3
    counts = _shown_counts(dom)
    assert counts[("kernel", FAILING)] == 3
    assert counts[("stack", "passed")] == 3


def test_screenshot(report: Path, tmp_path: Path) -> None:
    shot = tmp_path / "report.png"
    chromium(tmp_path, report.as_uri() + "#f:status=tested", f"--screenshot={shot}",
             "--window-size=1400,2000", "--hide-scrollbars")
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 50_000
    shutil.copy(shot, SHOWN)


def test_a_link_to_a_case_opens_its_panel(report: Path, tmp_path: Path) -> None:
    dom = chromium(tmp_path, report.as_uri() + "#case-fin-ack", "--dump-dom")
    opened = [e.attrs["id"] for e in having(dom, "data-verdicts") if "open" in e.attrs]
    assert opened == ["case-fin-ack"]
