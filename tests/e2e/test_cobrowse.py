"""Co-browse in two real Chromium browsers: the resident fills the parking permit form while
the helper watches, the helper points and highlights, masking keeps a card number out of every
frame the helper receives and out of the database, Stop stops the flow; the code path; axe on
the consent dialog, the code screen and the banner."""

import importlib
import time

import pytest
from django.apps import apps
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By

from chat.models import CobrowseSession, Message
from kiosk.models import Service, ServiceCategory
from tests.e2e import browser
from tests.e2e.browser import assert_accessible, click, require_browser, wait, wait_for_text
from tests.servers import browser_test_server

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

CARD = "4111111111111111"
PERMIT = "/services/resident-parking-permit/"

# Keeps every frame the console's socket receives, to prove what the helper never got.
RECORD_FRAMES = """
window.__frames = [];
const NativeWebSocket = window.WebSocket;
window.WebSocket = class extends NativeWebSocket {
  constructor(...args) {
    super(...args);
    this.addEventListener("message", (event) => window.__frames.push(String(event.data)));
  }
};
"""


@pytest.fixture
def site(transactional_db):
    require_browser()
    importlib.import_module("agents_console.migrations.0002_roles").create_roles(apps, None)
    category = ServiceCategory.objects.create(name="Parking", slug="parking")
    Service.objects.create(
        name="Apply for a resident parking permit", slug="resident-parking-permit", category=category, url=PERMIT
    )
    Service.objects.create(
        name="Report a missed bin collection",
        slug="report-missed-bin",
        category=category,
        url="/services/report-missed-bin/",
    )
    advisor = get_user_model().objects.create_user(username="alex", password="alex-password-1", first_name="Alex")
    advisor.groups.add(Group.objects.get(name="advisor"))


@pytest.fixture
def server(site):
    with browser_test_server() as daphne:
        yield daphne


def helper_console(driver, server):
    driver.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": RECORD_FRAMES})
    browser.sign_in(driver, server.http, "alex", "alex-password-1")
    wait_for_text(driver, "#console-connection", "Connected")


def replayed_text(helper):
    """The text of the resident's page as the helper's live view shows it."""
    return helper.execute_script(
        "const f = document.querySelector('#cobrowse-view iframe');"
        "return f && f.contentDocument && f.contentDocument.body ? f.contentDocument.body.innerText : '';"
    )


def replayed_value(helper, selector):
    return helper.execute_script(
        "const f = document.querySelector('#cobrowse-view iframe');"
        "const el = f && f.contentDocument && f.contentDocument.querySelector(arguments[0]);"
        "return el ? el.value : null;",
        selector,
    )


def cobrowse_frames(helper):
    return [frame for frame in helper.execute_script("return window.__frames") if '"cobrowse.events"' in frame]


def test_the_helper_watches_points_and_highlights_nothing_masked_leaks_and_stop_stops(server, browsers):
    helper, resident = browsers(), browsers()
    helper_console(helper, server)

    resident.get(f"{server.http}{PERMIT}")
    click(resident, ".chat-launcher")
    resident.find_element(By.ID, "dioa-chat-name").send_keys("Pat")
    resident.find_element(By.CSS_SELECTOR, ".chat-start button[type=submit]").click()
    click(helper, "[data-accept]")
    wait_for_text(resident, "#dioa-chat-status", "You are chatting with Alex.")

    # Consent first: nothing is recorded or sent before the resident agrees.
    click(helper, "#cobrowse-request")
    wait(resident).until(lambda d: d.find_element(By.CSS_SELECTOR, ".cobrowse-consent").is_displayed())
    consent = resident.find_element(By.CSS_SELECTOR, ".cobrowse-consent").text
    assert "Alex would like to see your screen" in consent and "Passwords and bank card details" in consent
    assert_accessible(resident, "the co-browse consent dialog")
    assert cobrowse_frames(helper) == []
    resident.find_element(By.CSS_SELECTOR, ".cobrowse-consent .govuk-button:not(.govuk-button--secondary)").click()

    wait(resident).until(lambda d: d.find_element(By.CSS_SELECTOR, ".cobrowse-banner").is_displayed())
    assert "Your helper can see this page" in resident.find_element(By.CSS_SELECTOR, ".cobrowse-banner").text
    assert "1 field is hidden from your helper" in resident.find_element(By.CSS_SELECTOR, ".cobrowse-banner").text
    assert resident.find_element(By.ID, "id_card_number").get_attribute("data-dioa-masked") is not None
    assert_accessible(resident, "the page with the sharing banner")

    # The helper sees the form, live, and where the hidden field is.
    wait(helper, 15).until(lambda d: "Vehicle registration number" in replayed_text(d))
    assert "Hidden from your helper" in replayed_text(helper)
    resident.find_element(By.ID, "id_vehicle_registration").send_keys("XY34 ZZZ")
    wait(helper, 10).until(lambda d: replayed_value(d, "#id_vehicle_registration") == "XY34 ZZZ")
    resident.find_element(By.ID, "id_card_number").send_keys(CARD)
    wait(helper, 10).until(lambda d: replayed_value(d, "#id_card_number") == "*" * len(CARD))

    # The helper's pointer and a highlight of the vehicle registration field.
    overlay = helper.find_element(By.CSS_SELECTOR, ".cobrowse-view__overlay")
    ActionChains(helper).move_to_element_with_offset(overlay, 20, 20).move_by_offset(15, 15).perform()
    wait(resident, 10).until(lambda d: d.find_elements(By.CSS_SELECTOR, ".dioa-cobrowse-pointer"))
    helper.find_element(By.ID, "cobrowse-note").send_keys("Type your number plate here")
    assert helper.execute_script("return window.dioaConsole.viewer.highlightSelector('#id_vehicle_registration')")
    wait(resident, 10).until(
        lambda d: "dioa-cobrowse-highlight" in d.find_element(By.ID, "id_vehicle_registration").get_attribute("class")
    )
    wait_for_text(resident, ".dioa-cobrowse-callout", "Type your number plate here")
    # The helper's view shows the highlight as the resident sees it.
    wait(helper, 10).until(
        lambda d: (
            d.execute_script(
                "const f = document.querySelector('#cobrowse-view iframe');"
                "const el = f && f.contentDocument.querySelector('.dioa-cobrowse-highlight');"
                "return el ? f.contentWindow.getComputedStyle(el).outlineStyle : null;"
            )
            == "solid"
        )
    )
    wait_for_text(resident, "#dioa-cobrowse-announcer", "Your helper highlighted part of the page")
    assert_accessible(resident, "the page with a highlight")

    # The helper reloads the console: the view comes back from a fresh full snapshot.
    helper.refresh()
    wait_for_text(helper, "#console-connection", "Connected")
    wait(helper, 15).until(lambda d: replayed_value(d, "#id_vehicle_registration") == "XY34 ZZZ")

    # The view follows the resident to another page of the site.
    resident.get(f"{server.http}/services/report-missed-bin/")
    wait(helper, 15).until(lambda d: "Which bin was missed?" in replayed_text(d))
    wait(resident).until(lambda d: d.find_element(By.CSS_SELECTOR, ".cobrowse-banner").is_displayed())

    # Stop: no further event reaches the helper.
    click(resident, ".cobrowse-banner__stop")
    wait_for_text(helper, "#cobrowse-status", "Screen sharing has stopped.")
    time.sleep(0.5)
    before = len(cobrowse_frames(helper))
    resident.find_element(By.ID, "id_address_line_1").send_keys("After stop")
    time.sleep(1.5)
    assert len(cobrowse_frames(helper)) == before
    assert not any("After stop" in frame for frame in cobrowse_frames(helper))

    # The card number left the resident's browser in no frame and is nowhere in the database.
    all_frames = " ".join(helper.execute_script("return window.__frames"))
    assert CARD not in all_frames and "4111 1111" not in all_frames
    assert "XY34 ZZZ" in all_frames, "the frames are the real stream, not empty"
    assert_nowhere_in_database(CARD)

    session = CobrowseSession.objects.get()
    assert (session.status, session.stopped_by) == ("stopped", "visitor")
    history = list(Message.objects.filter(author_kind="system").values_list("body", flat=True))
    assert "Alex asked to see your screen." in history
    assert "The resident agreed to share their screen." in history
    assert "Screen sharing was stopped by the resident." in history


def test_sharing_by_code_without_a_chat(server, browsers):
    helper, resident = browsers(), browsers()
    helper_console(helper, server)
    resident.get(f"{server.http}{PERMIT}")
    click(resident, ".chat-launcher")
    click(resident, "#dioa-chat-share-screen")
    wait_for_text(resident, "#dioa-cobrowse-code", "Your code is")
    code = resident.find_element(By.ID, "dioa-cobrowse-code").text.removeprefix("Your code is ").replace(" ", "")
    assert len(code) == 6 and code.isdigit()
    assert_accessible(resident, "the screen-sharing code")
    # Read out once, through the widget's live region, and not by a live region of its own too.
    wait_for_text(resident, "#dioa-chat-announcer", f"Your code is {code[:3]} {code[3:]}")
    reading_it_out = resident.execute_script(
        "return [...document.querySelectorAll('[aria-live], [role=status], [role=alert], [role=log]')]"
        ".filter((region) => region.textContent.includes(arguments[0])).map((region) => region.id)",
        f"{code[:3]} {code[3:]}",
    )
    assert reading_it_out == ["dioa-chat-announcer"]

    helper.find_element(By.ID, "cobrowse-code-input").send_keys("000000" if code != "000000" else "111111")
    helper.find_element(By.CSS_SELECTOR, "#cobrowse-code-form button").click()
    wait_for_text(helper, "#cobrowse-code-error", "That code is not right or has expired")

    helper.find_element(By.ID, "cobrowse-code-input").clear()
    helper.find_element(By.ID, "cobrowse-code-input").send_keys(code)
    helper.find_element(By.CSS_SELECTOR, "#cobrowse-code-form button").click()
    wait(resident, 15).until(lambda d: d.find_element(By.CSS_SELECTOR, ".cobrowse-consent").is_displayed())
    resident.find_element(By.CSS_SELECTOR, ".cobrowse-consent .govuk-button:not(.govuk-button--secondary)").click()
    wait(helper, 15).until(lambda d: "Vehicle registration number" in replayed_text(d))

    # A field marked data-private is hidden too, on the next page, without asking again.
    resident.get(f"{server.http}/services/council-tax-ebilling/")
    wait(helper, 15).until(lambda d: "Council Tax account number" in replayed_text(d))
    assert not resident.find_elements(By.CSS_SELECTOR, ".cobrowse-consent[open]")
    resident.find_element(By.ID, "id_account_number").send_keys("12345678")
    wait(helper, 10).until(lambda d: replayed_value(d, "#id_account_number") == "********")
    assert "12345678" not in " ".join(cobrowse_frames(helper))

    # The server restarts under both: sharing comes back by itself, without asking again, and
    # the helper's view starts afresh from a new snapshot.
    server.stop()
    wait_for_text(resident, "#dioa-chat-status", "You are offline", timeout=15)
    restarted = server.start_again()
    try:
        wait_for_text(resident, "#dioa-chat-status", "You are chatting with Alex", timeout=40)
        wait_for_text(helper, "#console-connection", "Connected", timeout=40)
        resident.find_element(By.ID, "id_full_name").send_keys("Pat Example")
        wait(helper, 20).until(lambda d: replayed_value(d, "#id_full_name") == "Pat Example")
        assert not resident.find_elements(By.CSS_SELECTOR, ".cobrowse-consent[open]")
        assert resident.find_element(By.CSS_SELECTOR, ".cobrowse-banner").is_displayed()
    finally:
        restarted.stop()


def assert_nowhere_in_database(text):
    for model in apps.get_models():
        for row in model.objects.all().values():
            assert text not in repr(row), f"{text!r} found in {model.__name__}"


@pytest.fixture
def mask_all_server(site):
    with browser_test_server(COBROWSE_MASK_ALL_INPUTS="1") as daphne:
        yield daphne


def test_the_mask_everything_setting_hides_every_value(mask_all_server, browsers):
    server = mask_all_server
    helper, resident = browsers(), browsers()
    helper_console(helper, server)
    resident.get(f"{server.http}{PERMIT}")
    click(resident, ".chat-launcher")
    resident.find_element(By.CSS_SELECTOR, ".chat-start button[type=submit]").click()
    click(helper, "[data-accept]")
    click(helper, "#cobrowse-request")
    wait(resident).until(lambda d: d.find_element(By.CSS_SELECTOR, ".cobrowse-consent").is_displayed())
    resident.find_element(By.CSS_SELECTOR, ".cobrowse-consent .govuk-button:not(.govuk-button--secondary)").click()
    wait(helper, 15).until(lambda d: "Vehicle registration number" in replayed_text(d))
    resident.find_element(By.ID, "id_vehicle_registration").send_keys("XY34 ZZZ")
    wait(helper, 10).until(lambda d: replayed_value(d, "#id_vehicle_registration") == "********")
    assert "XY34 ZZZ" not in " ".join(cobrowse_frames(helper))


def test_a_batch_is_never_cut_through_the_middle_of_an_emoji(server, browsers):
    """Half of one is refused by the server as not text, and the batch would never arrive."""
    driver = browsers()
    driver.get(f"{server.http}/")
    driver.set_script_timeout(10)
    parts = driver.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        "import('/static/chat/js/cobrowse.js').then((m) => done([m.textParts('a😀b', 2), m.textParts('ab😀', 3)]));"
    )
    assert parts == [["a", "😀", "b"], ["ab", "😀"]]
