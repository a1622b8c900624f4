"""Browsers for the end-to-end tests: each test opens as many as it needs."""

from pathlib import Path

import pytest

from tests.e2e.browser import chromium, made_new_again


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """Note on the test whether its body failed, for the `browsers` fixture's teardown."""
    outcome = yield
    report = outcome.get_result()
    if report.when == "call":
        item.body_failed = report.failed


# Most tests need one or two browsers. More are not kept: an idle Chromium still costs some
# 1-4 % of a core (five idle ones: 19 %), more than starting the odd extra one.
IDLE_BROWSERS_KEPT = 2


@pytest.fixture(scope="session")
def idle_browsers():
    """Browsers a test has finished with, made new again for the next one (see
    `made_new_again`); closed when the tests end."""
    idle = []
    yield idle
    for driver in idle:
        driver.quit()


@pytest.fixture
def browsers(request, tmp_path, idle_browsers):
    """Call it to open one more real Chromium (downloads go to `tmp_path`). After a failed run
    each one's last screen is kept in build/test-artifacts and it is closed; after a passed run
    it goes back to `idle_browsers`."""
    opened = []

    def open_browser():
        driver = idle_browsers.pop() if idle_browsers else chromium()
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
        elif len(idle_browsers) < IDLE_BROWSERS_KEPT and made_new_again(driver):
            idle_browsers.append(driver)
        else:
            driver.quit()
