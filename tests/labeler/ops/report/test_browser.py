"""The report ``loglabel demo`` writes (a smaller run than ``make demo``'s), opened in
headless Chromium (Debian's package).

It waits for the page to say every chart is drawn, then checks each chart
div holds a drawn plot (an SVG with traces), that nothing was logged as a
console error or thrown, that the page asked for nothing outside the file
(it must work offline), and takes a screenshot. ``LOGLABEL_REPORT_PNG=path``
also writes the screenshot there, and ``LOGLABEL_REPORT_DEMO_COUNT`` sets the
run's size (``make report-png`` makes docs/report.png from a run of the
demo's own size).
Where Chromium is absent the test skips with the reason, except in CI
(``CI=true``), where ``make test`` installed it and a skip would hide a
broken install.
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from labeler.ops.cli import cli

CHROMIUM = os.environ.get("LOGLABEL_CHROMIUM", "/usr/bin/chromium")
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
CHART_CHECK = """() => Array.from(document.querySelectorAll('div.chart')).map(div => ({
    id: div.id,
    svgs: div.querySelectorAll('svg.main-svg').length,
    width: div.getBoundingClientRect().width,
    traces: div.querySelectorAll('.trace').length,
    notes: div.querySelectorAll('.annotation').length,
}))"""


def _browser_or_skip() -> Any:
    missing = None
    if not (Path(CHROMIUM).is_file() and os.access(CHROMIUM, os.X_OK)):
        missing = f"Chromium is not installed at {CHROMIUM} (`make chromium` installs it)"
    else:
        try:
            from playwright.sync_api import sync_playwright
        except ImportError:
            missing = "playwright is not installed (it is in the dev extra)"
    if missing is not None:
        if os.environ.get("CI") == "true":
            pytest.fail(f"{missing}: CI must run the browser test")
        pytest.skip(missing)
    return sync_playwright


@pytest.fixture(scope="module")
def demo_report(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The report `loglabel demo` (what `make demo` runs) writes, at the end of its run."""
    out = tmp_path_factory.mktemp("demo")
    count = os.environ.get("LOGLABEL_REPORT_DEMO_COUNT", "6000")  # make demo's: 40000
    result = CliRunner().invoke(cli, ["demo", "--bootstrap", kafka_bootstrap, "--output",
                                      str(out), "--count", count])
    assert result.exit_code == 0, result.output
    found = re.search(r"^the report: (\S+)$", result.output, re.M)
    assert found, result.output
    path = Path(found.group(1))
    assert path.is_file() and path.parent.parent == out.resolve()
    return path


@pytest.mark.kafka
def test_the_demo_report_renders_every_chart_offline_without_errors(
        demo_report: Path, tmp_path: Path) -> None:
    sync_playwright = _browser_or_skip()
    errors: list[str] = []
    outside: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda exc: errors.append(f"uncaught: {exc}"))

            def only_the_file(route: Any) -> None:
                url = route.request.url
                if url.startswith(("file:", "data:", "blob:")):
                    route.continue_()
                else:
                    outside.append(url)
                    route.abort()

            page.route("**/*", only_the_file)
            page.goto(demo_report.resolve().as_uri())
            page.wait_for_function("document.body.dataset.rendered !== undefined",
                                   timeout=60_000)
            rendered = page.evaluate("document.body.dataset.rendered")
            charts = page.evaluate(CHART_CHECK)
            shot = tmp_path / "report.png"
            page.screenshot(path=str(shot), full_page=True)
        finally:
            browser.close()

    assert rendered == str(len(charts)), f"the page reported {rendered!r}"
    assert len(charts) >= 6, charts  # volume, features, score, calibration, dead letters, status
    empty = [c for c in charts if not (c["svgs"] and c["width"] > 0 and c["traces"])]
    assert not empty, f"charts without a drawn plot: {empty}"
    assert errors == [], errors
    assert outside == [], f"the report asked the network for {outside}"
    data = shot.read_bytes()
    assert data.startswith(PNG_SIGNATURE) and len(data) > 50_000
    target = os.environ.get("LOGLABEL_REPORT_PNG")
    if target:
        Path(target).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(shot, target)
