"""A browser one test has finished with is handed to the next as if just started."""

import pytest
from selenium.webdriver.support import expected_conditions as EC

from tests.e2e.browser import chromium, made_new_again, require_browser, wait
from tests.servers import browser_test_server

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def server():
    require_browser()
    with browser_test_server() as daphne:
        yield daphne


def test_a_reused_browser_keeps_nothing_a_test_set_on_its_tabs(server):
    driver = chromium()
    try:
        driver.get(f"{server.http}/accounts/login/")
        driver.add_cookie({"name": "left", "value": "behind"})
        driver.execute_script("sessionStorage.setItem('left', 'behind')")
        driver.execute_cdp_cmd("Emulation.setTimezoneOverride", {"timezoneId": "Pacific/Auckland"})
        driver.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": "window.addedByTheLastTest = true"})
        driver.switch_to.new_window("window")
        driver.get(f"{server.http}/accounts/login/")
        driver.set_script_timeout(1)

        assert made_new_again(driver)

        assert len(driver.window_handles) == 1
        assert driver.current_url == "about:blank"
        driver.get(f"{server.http}/accounts/login/")
        assert driver.get_cookie("left") is None
        assert driver.execute_script("return sessionStorage.getItem('left')") is None
        assert driver.execute_script("return Intl.DateTimeFormat().resolvedOptions().timeZone") != "Pacific/Auckland"
        assert driver.execute_script("return window.addedByTheLastTest") is None
        assert driver.timeouts.script == 30
    finally:
        driver.quit()


def test_a_browser_the_test_quit_is_not_reused():
    require_browser()
    driver = chromium()
    driver.quit()

    assert not made_new_again(driver)


def test_a_browser_left_with_a_dialog_open_is_not_reused():
    require_browser()
    driver = chromium()
    try:
        driver.get("data:text/html,<p>A page that asks</p>")
        driver.execute_script("setTimeout(() => alert('Leave this page?'), 0)")
        wait(driver, 5).until(EC.alert_is_present())

        assert not made_new_again(driver)
    finally:
        driver.quit()
