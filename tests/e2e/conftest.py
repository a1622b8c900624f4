"""Browsers for the end-to-end tests: each test opens as many as it needs."""

from pathlib import Path

import pytest

from tests.e2e.browser import chromium


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """Note on the test whether its body failed, for the `browsers` fixture's teardown."""
    outcome = yield
    report = outcome.get_result()
    if report.when == "call":
        item.body_failed = report.failed


@pytest.fixture
def browsers(request, tmp_path):
    """Call it to open one more real Chromium (downloads go to `tmp_path`). Each one's last
    screen is kept in build/test-artifacts for a failed run, then all are closed."""
    opened = []

    def open_browser():
        driver = chromium()
        driver.execute_cdp_cmd("Browser.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(tmp_path)})
        opened.append(driver)
        return driver

    yield open_browser
    failed = getattr(request.node, "body_failed", True)
    artifacts = Path(__file__).resolve().parents[2] / "build" / "test-artifacts"
    for index, driver in enumerate(opened):
        if failed:
            artifacts.mkdir(parents=True, exist_ok=True)
            name = f"{request.node.name[:80]}-{index}"
            driver.save_screenshot(str(artifacts / f"{name}.png"))
            (artifacts / f"{name}.txt").write_text(f"{driver.current_url}\n{driver.title}\n")
        driver.quit()
