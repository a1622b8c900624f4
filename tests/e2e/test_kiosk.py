"""The reception kiosk in real Chromium: enrolment and revocation, a help request reaching the
console live, the phone hand-off working once, the idle warning and privacy wipe with the
back button, a reload and a remembered address showing nothing, and axe-core on every screen."""

import importlib
import re

import pytest
from django.apps import apps
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from selenium.common.exceptions import WebDriverException
from selenium.webdriver.common.by import By

from chat.models import Conversation
from config.clock import clock_text
from config.limits import client_address_hash
from kiosk import services as kiosk_services
from kiosk.models import KioskDevice, KioskVisit, Service, ServiceCategory, ServiceSubmission
from tests.e2e import browser
from tests.e2e.browser import assert_accessible, click, require_browser, wait, wait_for_text
from tests.servers import browser_test_server

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

RESIDENT_ADDRESS = "12 Privet Lane"


@pytest.fixture
def catalogue(transactional_db):
    require_browser()
    importlib.import_module("agents_console.migrations.0002_roles").create_roles(apps, None)
    bins = ServiceCategory.objects.create(name="Bins and recycling", slug="bins")
    Service.objects.create(
        name="Report a missed bin collection",
        slug="report-missed-bin",
        category=bins,
        url="/services/report-missed-bin/",
        kiosk_allowed=True,
    )
    Service.objects.create(
        name="Pay a parking fine", slug="parking-fine", category=bins, url="https://example.org/", kiosk_allowed=False
    )
    for username, role in (("sam", "supervisor"), ("alex", "advisor")):
        user = get_user_model().objects.create_user(
            username=username, password=f"{username}-password-1", first_name=username.title()
        )
        user.groups.add(Group.objects.get(name=role))


@pytest.fixture
def server(catalogue):
    with browser_test_server(KIOSK_IDLE_WARNING_SECONDS="3") as daphne:
        yield daphne


def sign_in(driver, server, username, next_path):
    browser.sign_in(driver, server.http, username, f"{username}-password-1", next_path)


def enrol(kiosk, supervisor, server, *, before_approval=lambda code: None):
    kiosk.get(f"{server.http}/kiosk/")
    code = kiosk.find_element(By.CSS_SELECTOR, "[data-pairing-code]").text
    assert re.fullmatch(r"[A-Z2-9]{4}-[A-Z2-9]{4}", code)
    assert kiosk.find_element(By.CSS_SELECTOR, ".kiosk-qr svg")
    assert not kiosk.find_elements(By.CSS_SELECTOR, "[data-kiosk-shell]"), "no kiosk features before approval"
    assert_accessible(kiosk, "the pairing screen")
    before_approval(code)

    sign_in(supervisor, server, "sam", f"/console/kiosks/approve/?code={code}")
    wait(supervisor).until(lambda d: d.find_elements(By.ID, "id_pairing_code"))
    assert supervisor.find_element(By.ID, "id_pairing_code").get_attribute("value") == code
    assert_accessible(supervisor, "the kiosk approval form")
    supervisor.find_element(By.ID, "id_name").send_keys("Reception kiosk 1")
    supervisor.find_element(By.ID, "id_location").send_keys("Civic Centre, ground floor")
    supervisor.find_element(By.CSS_SELECTOR, "#kiosk-approve-form button[type=submit]").click()
    wait_for_text(supervisor, "[data-kiosks-table]", "Reception kiosk 1")

    # The pairing screen notices by itself and becomes the launcher.
    wait_for_text(kiosk, "h1", "What would you like to do?", timeout=15)
    device = KioskDevice.objects.get(name="Reception kiosk 1")
    assert device.status == KioskDevice.Status.ACTIVE and len(device.credential_hash) == 64
    wait_for_text(supervisor, "[data-kiosk-state]", "Idle", timeout=15)
    assert_accessible(supervisor, "the kiosks page")
    return device


MINUTES_AS_HALF_SECONDS = """
const setTimeoutAsWritten = window.setTimeout;
window.setTimeout = (callback, delay, ...rest) => setTimeoutAsWritten(callback, delay >= 60000 ? 500 : delay, ...rest);
"""


def test_a_network_past_its_pairings_for_the_hour_is_told_why(server, browsers):
    for _ in range(settings.KIOSK_PAIRINGS_PER_ADDRESS_PER_HOUR):
        kiosk_services.device_begin_pairing(address_hash=client_address_hash("127.0.0.1"))
    kiosk = browsers()

    kiosk.get(f"{server.http}/kiosk/")

    wait_for_text(kiosk, "h1", "This kiosk cannot start pairing now")
    assert not kiosk.find_elements(By.CSS_SELECTOR, "[data-pairing-code]")
    assert_accessible(kiosk, "pairing refused")
    # Nobody may be there to reload it: once there is room, it shows its code by itself
    # (its minute between tries made half a second here).
    kiosk.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": MINUTES_AS_HALF_SECONDS})
    kiosk.get(f"{server.http}/kiosk/")
    KioskDevice.objects.filter(status=KioskDevice.Status.PENDING).delete()
    wait(kiosk).until(lambda d: d.find_elements(By.CSS_SELECTOR, "[data-pairing-code]"))


def test_the_kiosks_page_follows_a_kiosk_approved_and_revoked_elsewhere(server, browsers):
    """Its row changes its name and its actions, not only its state."""
    kiosk, supervisor, watcher = browsers(), browsers(), browsers()

    def watch(code):
        sign_in(watcher, server, "sam", "/console/kiosks/")
        wait_for_text(watcher, "[data-kiosks-table]", f"New kiosk, code {code}")

    device = enrol(kiosk, supervisor, server, before_approval=watch)
    row = f'[data-kiosk-id="{device.pk}"]'

    def row_shows(name: str, state: str, actions: list[str]):
        def shown(driver) -> bool:
            try:
                cells = [cell.text for cell in driver.find_elements(By.CSS_SELECTOR, f"{row} th, {row} td")]
                # Each button's visible words, without the kiosk's name said to screen readers.
                buttons = [
                    b.text.splitlines()[0] for b in driver.find_elements(By.CSS_SELECTOR, f"{row} a, {row} button")
                ]
            except WebDriverException:
                return False  # the page is being written again
            return bool(cells) and (cells[0], cells[2]) == (name, state) and buttons == actions

        return shown

    wait(watcher).until(row_shows("Reception kiosk 1", "Idle", ["Wipe now", "Revoke"]), "approved, with its actions")
    # Switched off first: back at pairing it would add a new kiosk, which reloads both pages.
    kiosk.get("about:blank")
    click(supervisor, f'form[action="/console/kiosks/{device.pk}/revoke/"] button')
    supervisor.switch_to.alert.accept()
    wait(watcher).until(row_shows("Reception kiosk 1", "Revoked", []), "revoked, without actions")
    # The page that sent it shows the outcome: the news of the same change did not reload over it.
    wait_for_text(supervisor, ".govuk-notification-banner", "Reception kiosk 1 is revoked")


def test_a_kiosk_revoked_while_offline_keeps_nothing_when_it_comes_back(server, browsers):
    """Refused on reconnecting, it clears what a resident left, as when told while connected."""
    kiosk, supervisor = browsers(), browsers()
    device = enrol(kiosk, supervisor, server)
    kiosk.execute_script(
        "localStorage.setItem('left-behind', 'Pat'); sessionStorage.setItem('left-behind', 'Pat');"
        "window.dioaKiosk.socket.close()"
    )
    kiosk_services.device_revoke(device_id=device.pk, revoked_by=get_user_model().objects.get(username="sam"))

    kiosk.execute_script("window.dioaKiosk.socket.connect()")

    wait_for_text(kiosk, "h1", "This kiosk is not set up yet", timeout=15)
    left = "return [localStorage.getItem('left-behind'), sessionStorage.getItem('left-behind')]"
    assert kiosk.execute_script(left) == [None, None]


def test_enrol_get_help_hand_off_wipe_and_revoke(server, browsers):
    kiosk, supervisor, advisor, phone = browsers(), browsers(), browsers(), browsers()
    # Sam's computer is set to another zone: the kiosks page still reads the council's clock.
    supervisor.execute_cdp_cmd("Emulation.setTimezoneOverride", {"timezoneId": "Pacific/Auckland"})
    device = enrol(kiosk, supervisor, server)

    def last_seen_on_the_council_clock(driver) -> bool:
        device.refresh_from_db()
        return driver.find_element(By.CSS_SELECTOR, "[data-kiosk-last-seen]").text == clock_text(device.last_seen_at)

    wait(supervisor).until(last_seen_on_the_council_clock, "the kiosk's last heartbeat, at the council's time")
    assert_accessible(kiosk, "the kiosk launcher")

    # Search narrows the launcher; the accessibility panel is a dialog.
    kiosk.find_element(By.ID, "kiosk-search").send_keys("zzz")
    wait(kiosk).until(lambda d: d.find_element(By.CSS_SELECTOR, "[data-kiosk-no-results]").is_displayed())
    kiosk.find_element(By.ID, "kiosk-search").clear()
    kiosk.find_element(By.ID, "kiosk-search").send_keys("bin")
    wait_for_text(kiosk, "#kiosk-search-count", "1 service found")

    # Every touch target is at least 44 by 44 CSS pixels.
    small = kiosk.execute_script(
        "return [...document.querySelectorAll('.kiosk-tile, .kiosk-bar a, .kiosk-bar button')]"
        ".filter(e => e.offsetParent).map(e => e.getBoundingClientRect())"
        ".filter(r => r.width < 44 || r.height < 44).length"
    )
    assert small == 0

    click(kiosk, '[data-kiosk-action="accessibility"]')
    click(kiosk, "label[for=kiosk-large-text]")
    click(kiosk, "label[for=kiosk-high-contrast]")
    classes = kiosk.find_element(By.TAG_NAME, "html").get_attribute("class")
    assert "kiosk-large-text" in classes and "kiosk-high-contrast" in classes
    assert_accessible(kiosk, "the accessibility panel with larger text and high contrast")
    # Read aloud speaks the page through the browser's own speech synthesis.
    kiosk.execute_script(
        "window.spoken = []; const speak = speechSynthesis.speak.bind(speechSynthesis);"
        "speechSynthesis.speak = (u) => { window.spoken.push(u.text); speak(u); };"
    )
    click(kiosk, '[data-kiosk-action="read-aloud"]')
    assert "What would you like to do?" in kiosk.execute_script("return window.spoken.join(' ')")
    click(kiosk, '[data-kiosk-dialog="accessibility"] [data-kiosk-close]')
    # The choices last for the visit: they are still on after moving page.
    kiosk.get(f"{server.http}/kiosk/")
    assert "kiosk-high-contrast" in kiosk.find_element(By.TAG_NAME, "html").get_attribute("class")
    assert_accessible(kiosk, "the launcher in high contrast")

    # Anything not allowed on kiosks is refused with a friendly page.
    kiosk.get(f"{server.http}/console/")
    wait_for_text(kiosk, "h1", "This page is not available on the kiosk")
    assert_accessible(kiosk, "the refusal page")

    # A service: the resident starts typing.
    kiosk.get(f"{server.http}/services/report-missed-bin/")
    kiosk.find_element(By.ID, "id_address_line_1").send_keys(RESIDENT_ADDRESS)
    assert_accessible(kiosk, "a sample service on the kiosk")

    # Get help in person: it reaches the console live, with the kiosk's location.
    sign_in(advisor, server, "alex", "/console/")
    wait_for_text(advisor, "#console-connection", "Connected")
    click(kiosk, '[data-kiosk-action="help"]')
    wait(kiosk).until(lambda d: d.find_element(By.CSS_SELECTOR, '[data-kiosk-action="help-in-person"]').is_displayed())
    assert_accessible(kiosk, "the get-help choices")
    click(kiosk, '[data-kiosk-action="help-in-person"]')
    wait_for_text(kiosk, "[data-kiosk-help-text]", "You have asked for a helper")
    wait_for_text(advisor, "#queue-list", "Civic Centre, ground floor", timeout=15)
    wait_for_text(supervisor, "[data-kiosk-state]", "Needs help", timeout=15)
    conversation = Conversation.objects.get()
    assert conversation.channel == Conversation.Channel.KIOSK and conversation.helper_in_person
    assert conversation.kiosk_visit.device_id == device.pk
    click(advisor, f'[data-accept="{conversation.pk}"]')
    wait_for_text(kiosk, "[data-kiosk-help-text]", "Alex is on the way to you", timeout=15)
    assert_accessible(kiosk, "a helper on the way")

    # Continue on the phone: the link works once.
    click(kiosk, '[data-kiosk-action="phone"]')
    wait(kiosk).until(lambda d: d.find_element(By.CSS_SELECTOR, "[data-kiosk-handoff-url]").text.startswith("http"))
    assert kiosk.find_element(By.CSS_SELECTOR, "[data-kiosk-qr] svg")
    assert_accessible(kiosk, "the phone hand-off code")
    link = kiosk.find_element(By.CSS_SELECTOR, "[data-kiosk-handoff-url]").text
    click(kiosk, '[data-kiosk-dialog="phone"] [data-kiosk-close]')
    phone.get(link)
    wait_for_text(phone, "h1", "Continue on your phone")
    assert_accessible(phone, "the hand-off link, before it is used")
    click(phone, "main form button[type=submit]")
    wait(phone).until(lambda d: d.current_url.endswith("/services/report-missed-bin/"))
    # The conversation came too: the phone's widget holds it, the kiosk's token is void.
    wait_for_text(phone, "#dioa-chat-status", "Alex", timeout=15)
    phone.get(link)
    wait_for_text(phone, "h1", "This link no longer works")
    assert_accessible(phone, "a used hand-off link")

    # Idle: the kiosk asks, counts down, then wipes everything of this visit.
    KioskDevice.objects.filter(pk=device.pk).update(idle_timeout_seconds=2)
    kiosk.refresh()  # the page (and its socket) learn the new idle time
    kiosk.find_element(By.ID, "id_address_line_1").send_keys(RESIDENT_ADDRESS)
    wait(kiosk, 15).until(lambda d: d.find_element(By.CSS_SELECTOR, '[data-kiosk-dialog="idle"]').is_displayed())
    assert "Are you still there?" in kiosk.find_element(By.CSS_SELECTOR, '[data-kiosk-dialog="idle"]').text
    assert_accessible(kiosk, "the idle warning")
    wait(kiosk, 15).until(lambda d: d.current_url.endswith("/kiosk/") and "What would you like" in d.page_source)
    visit = KioskVisit.objects.get()
    assert visit.end_reason == KioskVisit.EndReason.IDLE
    # The chat the resident took to their phone goes on there; the kiosk keeps none of it.
    conversation.refresh_from_db()
    assert conversation.status == Conversation.Status.ACTIVE
    phone.get(f"{server.http}/services/report-missed-bin/")
    wait_for_text(phone, "#dioa-chat-status", "Alex", timeout=15)

    # Nothing of that resident comes back: not by Back, nor a reload, nor a remembered address.
    kiosk.back()
    wait(kiosk, 10).until(lambda d: d.current_url.endswith("/kiosk/"))
    assert RESIDENT_ADDRESS not in kiosk.page_source
    kiosk.refresh()
    assert RESIDENT_ADDRESS not in kiosk.page_source
    assert kiosk.execute_script("return sessionStorage.length + localStorage.length") == 0

    # A completed service's confirmation is gone after "Finish and clear my details".
    KioskDevice.objects.filter(pk=device.pk).update(idle_timeout_seconds=600)
    kiosk.get(f"{server.http}/services/report-missed-bin/")
    fill_missed_bin(kiosk)
    wait(kiosk).until(lambda d: "/done/" in d.current_url or "error-summary" in d.page_source)
    assert "/done/" in kiosk.current_url, kiosk.find_element(By.ID, "main-content").text
    wait_for_text(kiosk, ".govuk-panel", "MB-")
    assert_accessible(kiosk, "a completed service on the kiosk")
    reference = ServiceSubmission.objects.get().reference
    done_url = kiosk.current_url
    click(kiosk, '[data-kiosk-action="finish"]')
    wait(kiosk, 10).until(lambda d: d.current_url.endswith("/kiosk/"))
    kiosk.back()
    wait(kiosk, 10).until(lambda d: reference not in d.page_source and d.current_url.endswith("/kiosk/"))
    kiosk.get(done_url)
    assert reference not in kiosk.page_source

    # Revoking sends the kiosk back to pairing at once.
    supervisor.get(f"{server.http}/console/kiosks/")
    click(supervisor, f'form[action="/console/kiosks/{device.pk}/revoke/"] button')
    supervisor.switch_to.alert.accept()
    wait_for_text(kiosk, "h1", "This kiosk is not set up yet", timeout=15)
    device.refresh_from_db()
    assert device.status == KioskDevice.Status.REVOKED and device.credential_hash == ""
    # One new pairing, the one on the screen: no second code for a supervisor to approve.
    shown = kiosk.find_element(By.CSS_SELECTOR, "[data-pairing-code]").text
    pending = KioskDevice.objects.filter(status=KioskDevice.Status.PENDING)
    assert list(pending.values_list("pairing_code", flat=True)) == [shown]


def fill_missed_bin(driver):
    import datetime

    yesterday = datetime.date.today() - datetime.timedelta(days=1)
    driver.execute_script("document.querySelector('input[name=bin_type]').click()")
    driver.find_element(By.ID, "id_address_line_1").send_keys(RESIDENT_ADDRESS)
    driver.find_element(By.ID, "id_postcode").send_keys("SW1A 1AA")
    driver.find_element(By.ID, "id_missed_on").send_keys(str(yesterday.day))
    driver.find_element(By.ID, "id_missed_on_month").send_keys(str(yesterday.month))
    driver.find_element(By.ID, "id_missed_on_year").send_keys(str(yesterday.year))
    driver.execute_script("document.querySelector('input[name=put_out_by_6am][value=yes]').click()")
    submit = driver.find_element(By.CSS_SELECTOR, "#main-content form button[type=submit]")
    driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", submit)
    submit.click()


def test_help_unavailable_chat_on_screen_cancel_remote_wipe_and_offline(server, browsers):
    kiosk, supervisor, advisor = browsers(), browsers(), browsers()
    device = enrol(kiosk, supervisor, server)

    # Nobody in the console: the kiosk says plainly where to get help in person.
    click(kiosk, '[data-kiosk-action="help"]')
    unavailable = '[data-kiosk-dialog="help"] [data-kiosk-help-unavailable]'
    wait(kiosk).until(lambda d: d.find_element(By.CSS_SELECTOR, unavailable).is_displayed())
    assert "Civic Centre, ground floor" in kiosk.find_element(By.CSS_SELECTOR, unavailable).text
    assert_accessible(kiosk, "help unavailable")
    click(kiosk, '[data-kiosk-dialog="help"] [data-kiosk-close]')

    # Chat on the kiosk screen: the widget opens and its conversation is a kiosk one.
    sign_in(advisor, server, "alex", "/console/")
    wait_for_text(advisor, "#console-connection", "Connected")
    kiosk.get(f"{server.http}/services/report-missed-bin/")
    click(kiosk, '[data-kiosk-action="help"]')
    click(kiosk, '[data-kiosk-action="help-chat"]')
    wait(kiosk).until(lambda d: d.find_element(By.ID, "dioa-chat-name").is_displayed())
    kiosk.find_element(By.ID, "dioa-chat-name").send_keys("Pat")
    kiosk.find_element(By.CSS_SELECTOR, ".chat-start button[type=submit]").click()
    wait_for_text(advisor, "#queue-list", "Civic Centre, ground floor", timeout=15)
    chat = Conversation.objects.get()
    assert chat.channel == Conversation.Channel.KIOSK and not chat.helper_in_person

    # A second request in the same visit, in person: the console shows the earlier one; the
    # resident cancels it.
    click(kiosk, '[data-kiosk-action="help"]')
    click(kiosk, '[data-kiosk-action="help-in-person"]')
    wait(kiosk).until(lambda d: Conversation.objects.filter(helper_in_person=True).exists())
    in_person = Conversation.objects.get(helper_in_person=True)
    click(advisor, f'[data-accept="{in_person.pk}"]')
    wait_for_text(advisor, "#conversation-context", f"Conversation {chat.pk}", timeout=15)
    wait_for_text(kiosk, "[data-kiosk-help-text]", "Alex is on the way to you", timeout=15)
    click(kiosk, '[data-kiosk-action="cancel-help"]')
    wait_for_text(kiosk, "[data-kiosk-help-text]", "Your request for help has ended")
    wait(kiosk).until(lambda d: Conversation.objects.get(pk=in_person.pk).status == Conversation.Status.ENDED)
    assert Conversation.objects.get(pk=in_person.pk).ended_by == Conversation.EndedBy.VISITOR

    # A supervisor wipes the kiosk remotely: the resident's text and chat are gone.
    kiosk.find_element(By.ID, "id_address_line_1").send_keys(RESIDENT_ADDRESS)
    supervisor.get(f"{server.http}/console/kiosks/")
    click(supervisor, f'form[action="/console/kiosks/{device.pk}/wipe/"] button')
    wait(kiosk, 15).until(lambda d: d.current_url.endswith("/kiosk/") and "What would you like" in d.page_source)
    assert RESIDENT_ADDRESS not in kiosk.page_source
    assert KioskVisit.objects.get().end_reason == KioskVisit.EndReason.REMOTE
    assert Conversation.objects.get(pk=chat.pk).status == Conversation.Status.ENDED
    assert not kiosk.find_elements(By.CSS_SELECTOR, ".chat-log__item"), "the widget starts afresh"

    # The connection drops: the kiosk says so, keeps working, and recovers by itself.
    server.stop()
    wait_for_text(kiosk, "[data-kiosk-connection]", "lost its connection", timeout=15)
    assert_accessible(kiosk, "the kiosk offline")
    restarted = server.start_again()
    try:
        wait(kiosk, 40).until(lambda d: d.find_element(By.CSS_SELECTOR, "[data-kiosk-connection]").text == "")
        device.refresh_from_db()
        assert device.open_sockets >= 1
    finally:
        restarted.stop()
