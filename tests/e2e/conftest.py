"""Browsers for the end-to-end tests: each test opens as many as it needs."""

from pathlib import Path

import pytest

from tests.e2e.browser import chromium


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
    artifacts = Path(__file__).resolve().parents[2] / "build" / "test-artifacts"
    artifacts.mkdir(parents=True, exist_ok=True)
    for index, driver in enumerate(opened):
        driver.save_screenshot(str(artifacts / f"{request.node.name[:80]}-{index}.png"))
        driver.quit()
