"""Real headless Chromium for end-to-end tests, and the axe-core accessibility check."""

import shutil
from pathlib import Path

from selenium import webdriver
from selenium.common.exceptions import (
    NoSuchElementException,
    StaleElementReferenceException,
    TimeoutException,
    WebDriverException,
)
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.ui import WebDriverWait

from config.settings import BASE_DIR
from tests.conftest import need

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
AXE = Path(BASE_DIR) / "node_modules" / "axe-core" / "axe.min.js"
WCAG_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa"]

CHROMIUM_ARGUMENTS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--no-first-run",
    # Without these Chromium keeps trying to reach outside hosts, which this network refuses.
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--window-size=1280,1000",
]


def require_browser() -> None:
    need(
        shutil.which(CHROMIUM) is not None and shutil.which(CHROMEDRIVER) is not None,
        "Debian's chromium and chromium-driver are not installed (.ci/run installs them)",
    )
    need(AXE.exists(), "node_modules/axe-core is missing (make setup installs it)")


def chromium() -> webdriver.Chrome:
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in CHROMIUM_ARGUMENTS:
        options.add_argument(argument)
    driver = webdriver.Chrome(options=options, service=Service(CHROMEDRIVER))
    driver.implicitly_wait(0)
    return driver


def made_new_again(driver: webdriver.Chrome) -> bool:
    """Leave `driver` as a just-started one would be, for another test to reuse: starting
    Chromium costs over a second of CPU, and the end-to-end tests open some 150 browsers.

    One blank tab replaces every tab the test had: what a test set on its tab through DevTools
    (a time zone, a screen size, the network cut, a script run on every page) goes with the
    tab, and so do the pages' sockets and sessionStorage. Cookies are cleared; what pages kept
    on their origins stays, on origins no later server reuses (tests/servers.py). False when it
    cannot be done (the test quit the browser, say): then it is not reused.
    """
    if driver.service.process.poll() is not None:
        return False
    try:
        earlier_tabs = driver.window_handles
        driver.switch_to.new_window("tab")
        blank = driver.current_window_handle
        for tab in earlier_tabs:
            driver.switch_to.window(tab)
            driver.close()
        driver.switch_to.window(blank)
        driver.execute_cdp_cmd("Network.clearBrowserCookies", {})
        driver.implicitly_wait(0)
        driver.set_script_timeout(30)
        driver.set_page_load_timeout(300)
    except WebDriverException:
        return False
    return True


# What Chromium says of an element read while its page was being replaced (a navigation).
NODE_OF_A_REPLACED_PAGE = "does not belong to the document"


class PageChangeTolerantWait(WebDriverWait):
    """Pages redraw what the server sends (the console's lists, at every pong) and navigate by
    themselves (a kiosk going back to pairing): a condition that met an element as it was
    replaced is asked again, not failed."""

    def __init__(self, driver, timeout: float):
        super().__init__(driver, timeout, ignored_exceptions=[NoSuchElementException, StaleElementReferenceException])

    def until(self, method, message: str = ""):
        def asked(driver):
            try:
                return method(driver)
            except WebDriverException as error:
                if NODE_OF_A_REPLACED_PAGE in str(error):
                    return False
                raise

        return super().until(asked, message)


def wait(driver, timeout: float = 10) -> WebDriverWait:
    return PageChangeTolerantWait(driver, timeout)


def wait_for_text(driver, selector: str, text: str, timeout: float = 10) -> None:
    wait(driver, timeout).until(EC.text_to_be_present_in_element((By.CSS_SELECTOR, selector), text))


def click(driver, selector: str, timeout: float = 10) -> None:
    wait(driver, timeout).until(EC.element_to_be_clickable((By.CSS_SELECTOR, selector))).click()


def axe_violations(driver) -> list[dict]:
    """Run axe-core's WCAG 2.2 A and AA rules on the current page and return the violations."""
    driver.execute_script(AXE.read_text())
    driver.set_script_timeout(30)
    result = driver.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        "axe.run(document, {runOnly: {type: 'tag', values: arguments[0]}})"
        ".then(r => done(r.violations)).catch(e => done([{id: 'axe-error', help: String(e), nodes: []}]));",
        WCAG_TAGS,
    )
    return result


def describe_violations(violations: list[dict]) -> str:
    lines = []
    for violation in violations:
        targets = [node.get("target") for node in violation.get("nodes", [])]
        lines.append(f"{violation['id']}: {violation['help']} at {targets}")
    return "\n".join(lines)


def assert_accessible(driver, state: str) -> None:
    violations = axe_violations(driver)
    assert violations == [], f"axe-core on {state}:\n{describe_violations(violations)}"


def sign_in(driver, base_url: str, username: str, password: str, next_path: str = "/console/") -> None:
    """Sign in through the real form and wait until it has taken the browser on."""
    driver.get(f"{base_url}/accounts/login/?next={next_path}")
    try:
        username_field = wait(driver).until(EC.presence_of_element_located((By.ID, "id_username")))
    except TimeoutException:
        # Seen once in CI: the sign-in page showed another page altogether. Say which.
        raise AssertionError(f"no sign-in form at {driver.current_url!r} (title {driver.title!r})") from None
    username_field.send_keys(username)
    driver.find_element(By.ID, "id_password").send_keys(password)
    submit = driver.find_element(By.CSS_SELECTOR, "#main-content form button[type=submit]")
    driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", submit)
    submit.click()
    wait(driver).until(lambda d: "/accounts/login/" not in d.current_url)
