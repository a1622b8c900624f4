"""The console with several people at once, in real Chromium: two advisors accepting the same
resident at the same moment, a transfer to a volunteer, a supervisor watching, the wrap-up,
and axe-core on every console page."""

import datetime
import importlib
import json
import threading
import time

import pytest
from channels.layers import channel_layers
from django.apps import apps
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.utils import timezone
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.expected_conditions import staleness_of
from selenium.webdriver.support.ui import Select

from agents_console.models import AssistedTransaction, CannedResponse, ConsoleConnection, Guide
from agents_console.selectors import AWAITING_WRAP_UP_LISTED
from chat import services
from chat.models import CallbackRequest, Conversation, InternalNote, Message
from config.clock import clock_text
from kiosk.models import Service, ServiceCategory
from tests.e2e import browser
from tests.e2e.browser import assert_accessible, click, require_browser, wait, wait_for_text
from tests.servers import browser_test_server, pushed_from_the_test_process

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PEOPLE = {"alex": "advisor", "bea": "advisor", "vic": "volunteer", "sam": "supervisor"}


@pytest.fixture
def staff(transactional_db):
    require_browser()
    importlib.import_module("agents_console.migrations.0002_roles").create_roles(apps, None)
    category = ServiceCategory.objects.create(name="Parking", slug="parking")
    service = Service.objects.create(
        name="Apply for a resident parking permit", slug="permit", category=category, url="/"
    )
    CannedResponse.objects.create(title="Proof of address", body="You can use a council tax bill as proof of address.")
    Guide.objects.create(service=service, title="Permit application", steps="Open the form\nEnter the registration")
    people = {}
    for username, role in PEOPLE.items():
        user = get_user_model().objects.create_user(
            username=username,
            password=f"{username}-password-1",
            first_name=username.title(),
            is_staff=role == "supervisor",
        )
        user.groups.add(Group.objects.get(name=role))
        people[username] = user
    return people


@pytest.fixture
def server(staff):
    with browser_test_server() as daphne:
        yield daphne


def sign_in(driver, server, username):
    browser.sign_in(driver, server.http, username, f"{username}-password-1")
    wait_for_text(driver, "#console-connection", "Connected")


def resident_starts_chat(driver, server, name="Pat"):
    driver.get(f"{server.http}/")
    click(driver, ".chat-launcher")
    driver.find_element(By.ID, "dioa-chat-name").send_keys(name)
    wait(driver).until(lambda d: len(Select(d.find_element(By.ID, "dioa-chat-topic")).options) > 1)
    Select(driver.find_element(By.ID, "dioa-chat-topic")).select_by_visible_text("Apply for a resident parking permit")
    driver.find_element(By.CSS_SELECTOR, ".chat-start button[type=submit]").click()
    wait_for_text(driver, "#dioa-chat-status", "in the queue")


def choose_transfer_to(driver, name: str) -> None:
    """Pick the helper called `name` under "Transfer to" once it is offered. The list is drawn
    again at every pong, so an option found may be replaced before it is picked: then again."""

    def chosen(d) -> bool:
        select = Select(d.find_element(By.ID, "transfer-to"))
        offered = [option.get_attribute("value") for option in select.options if option.text.startswith(name)]
        if offered:
            select.select_by_value(offered[0])
        return select.first_selected_option.text.startswith(name)

    wait(driver).until(chosen, f"{name} offered and chosen")


def test_two_advisors_accept_at_once_then_transfer_watch_and_wrap_up(server, staff, browsers):
    alex, bea, vic, sam = (browsers() for _ in range(4))
    for driver, username in ((alex, "alex"), (bea, "bea"), (vic, "vic"), (sam, "sam")):
        sign_in(driver, server, username)
    assert_accessible(alex, "the empty console")
    resident = browsers()
    resident_starts_chat(resident, server)
    wait_for_text(alex, "#queue-list", "Pat")
    wait_for_text(bea, "#queue-list", "Pat")
    wait_for_text(vic, "#queue-count", "1")
    assert vic.find_elements(By.ID, "queue-list") == [], "volunteers do not see who is waiting"
    assert_accessible(alex, "the console with a resident waiting")

    # Both press Accept at the same moment. Each presses the button it was shown: the page
    # keeps it, because the first acceptance can reach the other console and take the button
    # off its screen before WebDriver's click lands (seen on a loaded machine), and then only
    # one of them would have pressed.
    for driver in (alex, bea):
        driver.execute_script("window.shownAccept = document.querySelector('[data-accept]')")
    barrier = threading.Barrier(2)

    def press(driver):
        barrier.wait()
        driver.execute_script("window.shownAccept.click()")

    threads = [threading.Thread(target=press, args=(driver,)) for driver in (alex, bea)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    conversation = None
    for _ in range(50):
        conversation = Conversation.objects.filter(status="active").first()
        if conversation:
            break
        threading.Event().wait(0.1)
    winner, loser = (alex, bea) if conversation.assigned_helper == staff["alex"] else (bea, alex)
    wait_for_text(winner, "#conversation-log", "joined the conversation")
    wait_for_text(loser, "#console-error", "Someone else has already taken this conversation")
    assert loser.find_element(By.ID, "conversation-panel").get_attribute("hidden") is not None
    assert Conversation.objects.get().assigned_helper in (staff["alex"], staff["bea"])

    # The winner answers with a canned response found by search, then hands over to the volunteer.
    winner.find_element(By.ID, "guidance-search").send_keys("proof")
    click(winner, "#guidance-list button")
    assert "council tax bill" in winner.find_element(By.ID, "compose-message").get_attribute("value")
    winner.find_element(By.ID, "compose-message").send_keys(Keys.ENTER)
    wait_for_text(resident, ".chat-log", "council tax bill")
    assert_accessible(winner, "the console with an open conversation")

    wait_for_text(sam, "#live-list", "Pat")
    assert "waiting since" not in sam.find_element(By.ID, "live-list").text, "answered: no longer waiting"
    click(sam, "[data-watch]")
    wait_for_text(sam, "#conversation-log", "council tax bill")
    assert sam.find_element(By.ID, "compose-form").get_attribute("hidden") is not None
    assert_accessible(sam, "the supervisor watching a conversation")

    click(winner, "#transfer-details summary")
    choose_transfer_to(winner, "Vic")
    winner.find_element(By.ID, "transfer-note").send_keys("Needs help with step 2")
    winner.find_element(By.CSS_SELECTOR, "#transfer-form button[type=submit]").click()
    wait_for_text(resident, ".chat-log", "You are being transferred to Vic.")
    wait_for_text(vic, "#console-announcer", "The conversation with Pat is now yours.")
    wait_for_text(winner, "#console-announcer", "The conversation with Pat is now with Vic.")
    wait_for_text(vic, "#conversation-log", "council tax bill")
    wait_for_text(vic, "#notes-list", "Needs help with step 2")
    assert "Needs help with step 2" not in resident.page_source

    vic.find_element(By.ID, "compose-message").send_keys("Hello, I am Vic. Let us do step 2 together.", Keys.ENTER)
    wait_for_text(resident, ".chat-log", "Let us do step 2 together.")
    click(vic, "#end-conversation")
    wait_for_text(resident, "#dioa-chat-status", "This chat has ended.")
    # The button pressed is gone with the message box: the keyboard goes to the next step.
    wait(vic).until(lambda d: d.switch_to.active_element.get_attribute("id") == "wrap-up-link")
    click(vic, "#wrap-up-link")
    wait_for_text(vic, "h1", "Log what was done")
    assert_accessible(vic, "the wrap-up form")
    for selector in ("#id_outcome_1", "#id_barriers_2", "#id_typed_by_2", "#id_can_do_alone_next_time_0"):
        vic.find_element(By.CSS_SELECTOR, selector).click()
    vic.find_element(By.CSS_SELECTOR, "#wrap-up-form button[type=submit]").click()
    wait_for_text(vic, ".govuk-notification-banner", "has been logged")

    record = AssistedTransaction.objects.get()
    assert (record.helper, record.outcome, record.typed_by) == (staff["vic"], "done_with_guidance", "both")
    assert [s.slug for s in record.services.all()] == ["permit"], "the resident's topic was ticked already"
    assert InternalNote.objects.get().body == "Transfer note: Needs help with step 2"


def test_the_other_console_pages_are_accessible(server, staff, browsers):
    driver = browsers()
    driver.get(f"{server.http}/accounts/login/")
    assert_accessible(driver, "the sign-in page")
    sign_in(driver, server, "sam")
    wait_for_text(driver, "#helpers-list", "Sam")
    assert_accessible(driver, "the supervisor's console")
    driver.get(f"{server.http}/console/log/")
    assert_accessible(driver, "the walk-in log form")
    driver.find_element(By.CSS_SELECTOR, "#log-help-form button[type=submit]").click()
    wait_for_text(driver, ".govuk-error-summary", "There is a problem")
    assert_accessible(driver, "the walk-in log form with errors")
    ConsoleConnection.objects.filter(helper=staff["sam"]).update(last_seen_at=timezone.now())


def test_a_volunteer_finds_the_conversations_given_to_them_when_the_console_opens(server, staff, browsers):
    """The snapshot is the whole of a volunteer's start, though their page has no call-backs list."""
    pat, _token = services.conversation_start(visitor_name="Pat")
    services.conversation_assign(conversation_id=pat.pk, helper=staff["vic"])
    services.message_create(conversation_id=pat.pk, author_kind="visitor", body="Can you help me renew my permit?")
    vic = browsers()
    sign_in(vic, server, "vic")

    wait_for_text(vic, "#mine-list", "Pat")
    click(vic, f'[data-open="{pat.pk}"]')
    wait_for_text(vic, "#conversation-log", "Can you help me renew my permit?")
    assert_accessible(vic, "a volunteer's console with a conversation open")


def pat_held_and_watched(server, staff, browsers, helper_name):
    """Pat's chat, given to `helper_name` before anyone signs in: open on that helper's console,
    and watched read-only by Sam, a supervisor."""
    pat, _token = services.conversation_start(visitor_name="Pat")
    services.conversation_assign(conversation_id=pat.pk, helper=staff[helper_name])
    helper, sam = browsers(), browsers()
    sign_in(helper, server, helper_name)
    sign_in(sam, server, "sam")
    click(helper, f'[data-open="{pat.pk}"]')
    click(sam, f'[data-watch="{pat.pk}"]')
    wait_for_text(sam, "#conversation-heading", "Pat")
    return pat, helper, sam


def test_a_volunteer_passes_a_conversation_to_the_supervisor_watching_it(server, staff, browsers):
    pat, vic, sam = pat_held_and_watched(server, staff, browsers, "vic")
    wait(sam).until(lambda d: d.find_element(By.ID, "compose-form").get_attribute("hidden") is not None)

    click(vic, "#transfer-details summary")
    choose_transfer_to(vic, "Sam")
    # The list is drawn again whenever the server sends it (every pong): the choice stays.
    shown = vic.find_element(By.CSS_SELECTOR, "#transfer-to option")
    # Closed, then opened again once closing is done (two quick clicks can make one event),
    # which asks the server for the list again.
    vic.execute_async_script(
        """
        const [done] = arguments;
        const details = document.getElementById("transfer-details");
        details.addEventListener("toggle", () => {
          details.addEventListener("toggle", () => done(), { once: true });
          details.open = true;
        }, { once: true });
        details.open = false;
        """
    )
    wait(vic).until(staleness_of(shown), "the helpers list drawn again")
    assert Select(vic.find_element(By.ID, "transfer-to")).first_selected_option.text.startswith("Sam")
    vic.find_element(By.CSS_SELECTOR, "#transfer-form button[type=submit]").click()

    # Vic lets it go; Sam, who was only watching, now answers it.
    wait_for_text(vic, "#console-announcer", "The conversation with Pat is now with Sam.")
    assert "Pat" not in vic.find_element(By.ID, "mine-list").text
    wait_for_text(sam, "#console-announcer", "The conversation with Pat is now yours.")
    wait(sam).until(lambda d: d.find_element(By.ID, "compose-form").get_attribute("hidden") is None)
    sam.find_element(By.ID, "compose-message").send_keys("Hello Pat, Sam here.", Keys.ENTER)
    wait(sam).until(lambda d: Message.objects.filter(conversation=pat, body="Hello Pat, Sam here.").exists())
    assert_accessible(sam, "a supervisor given the conversation they watched")


def test_a_supervisor_watching_a_conversation_put_back_in_the_queue_goes_on_watching(server, staff, browsers):
    _pat, alex, sam = pat_held_and_watched(server, staff, browsers, "alex")

    def offered(driver):
        return [option.text for option in Select(driver.find_element(By.ID, "transfer-to")).options]

    # Sam may move it, but not to Alex, who has it: the list drawn with Alex online leaves
    # him out.
    click(sam, "#transfer-details summary")
    wait_for_text(sam, "#helpers-list", "Alex")
    assert offered(sam) == ["Back to the queue"]

    click(alex, "#transfer-details summary")
    wait(alex).until(lambda d: Select(d.find_element(By.ID, "transfer-to")).options)
    alex.find_element(By.CSS_SELECTOR, "#transfer-form button[type=submit]").click()
    wait_for_text(sam, "#queue-list", "Pat")

    assert sam.find_element(By.ID, "conversation-panel").get_attribute("hidden") is None, "still shown"
    wait_for_text(sam, "#conversation-log", "You are back in the queue.")
    # Waiting now: it may go to a helper, not back to the queue it is in.
    wait(sam).until(lambda d: any(text.startswith("Alex") for text in offered(d)), "Alex offered")
    assert "Back to the queue" not in offered(sam)


def test_the_wrap_up_list_shows_the_newest_conversations_and_counts_the_older_ones(server, staff, browsers):
    service = Service.objects.get()
    for number in range(AWAITING_WRAP_UP_LISTED + 2):
        conversation, _token = services.conversation_start(visitor_name=f"Resident {number}", service=service)
        services.conversation_assign(conversation_id=conversation.pk, helper=staff["alex"])
        services.conversation_end(conversation_id=conversation.pk, ended_by="helper", helper=staff["alex"])
    alex = browsers()
    # Connected: the socket's snapshot has redrawn the list the page came with.
    sign_in(alex, server, "alex")

    listed = alex.find_elements(By.CSS_SELECTOR, "#wrap-up-list [data-wrap-up]")
    assert [int(item.get_attribute("data-wrap-up")) for item in listed][:1] == [conversation.pk]
    assert len(listed) == AWAITING_WRAP_UP_LISTED
    assert alex.find_element(By.ID, "wrap-up-more").text == (
        "2 older conversations are also waiting. They are listed here as you log these."
    )
    assert_accessible(alex, "the console with more conversations to log than it lists")


@pytest.fixture
def strict_server(staff):
    """A server that lets each side send two messages a minute."""
    with browser_test_server(CHAT_MESSAGES_PER_MINUTE="2") as daphne:
        yield daphne


def test_the_keyboard_stays_where_the_advisor_is_and_nothing_they_type_vanishes(strict_server, staff, browsers):
    server = strict_server
    alex = browsers()
    sign_in(alex, server, "alex")
    pat, rita = browsers(), browsers()
    resident_starts_chat(pat, server, "Pat")
    wait_for_text(alex, "#queue-list", "Pat")
    click(alex, "[data-accept]")
    wait_for_text(alex, "#conversation-heading", "Conversation with Pat")
    resident_starts_chat(rita, server, "Rita")
    wait_for_text(alex, "#queue-list", "Rita")

    # Accepting Rita while Pat is open opens Rita, ready to answer.
    click(alex, "[data-accept]")
    wait_for_text(alex, "#conversation-heading", "Conversation with Rita")
    assert alex.switch_to.active_element.get_attribute("id") == "compose-message"

    # A message the server refuses is not sent later behind the advisor's back: they are told,
    # and the text is back in the box.
    for text in ("One", "Two"):
        alex.find_element(By.ID, "compose-message").send_keys(text, Keys.ENTER)
        wait_for_text(rita, ".chat-log", text)
    alex.find_element(By.ID, "compose-message").send_keys("Three", Keys.ENTER)
    wait_for_text(alex, "#conversation-error", "You are sending too quickly")
    assert alex.find_element(By.ID, "compose-message").get_attribute("value") == "Three"
    assert "Sending…" not in alex.find_element(By.ID, "conversation-log").text
    # Refused while the advisor had typed on: both are kept, neither overwrites the other.
    alex.execute_script(
        """
        const box = document.getElementById("compose-message");
        box.value = "Four";
        document.getElementById("compose-form").requestSubmit();
        box.value = "Typed since";
        """
    )
    wait(alex).until(
        lambda d: d.find_element(By.ID, "compose-message").get_attribute("value") == "Typed since\nFour", "both"
    )

    # The list of conversations is rebuilt as Pat types; the button with the keyboard keeps it.
    pat_id = str(Conversation.objects.get(visitor_name="Pat").pk)
    alex.execute_script(f'document.querySelector("[data-open=\\"{pat_id}\\"]").focus()')
    pat.find_element(By.ID, "dioa-chat-message").send_keys("Hello")
    wait_for_text(alex, "#mine-list", "typing")
    # Read in the page at once: the list (and the element with focus) is rebuilt as Pat types.
    assert alex.execute_script("return document.activeElement.dataset.open") == pat_id
    # When Pat's tab goes mid-word, "typing" does not stay for ever.
    pat.quit()
    wait(alex, timeout=15).until(lambda d: "typing" not in d.find_element(By.ID, "mine-list").text)
    assert Message.objects.filter(author_kind="helper").count() == 2


def test_a_console_left_for_another_page_goes_offline_and_comes_back_with_the_queue(server, staff, browsers):
    alex = browsers()
    sign_in(alex, server, "alex")
    alex.execute_script("window.keptWhole = true")

    alex.get("about:blank")

    # Its socket closed, even with the page kept for the Back button.
    wait(alex, 10).until(lambda _: not ConsoleConnection.objects.filter(closed_at__isnull=True).exists())
    services.conversation_start(visitor_name="Pat")
    alex.back()
    # The kept page came back and loaded itself afresh: chats may have moved meanwhile.
    wait(alex, 10).until(
        lambda d: d.execute_script("return performance.getEntriesByType('navigation')[0].type") == "reload"
    )
    wait_for_text(alex, "#console-connection", "Connected")
    wait_for_text(alex, "#queue-list", "Pat")
    assert alex.execute_script("return window.keptWhole") is None
    assert ConsoleConnection.objects.filter(closed_at__isnull=True).count() == 1

    # With words in a box, coming back only reconnects: a reload would lose them.
    click(alex, "[data-accept]")
    wait_for_text(alex, "#conversation-log", "joined the conversation")
    alex.find_element(By.ID, "compose-message").send_keys("Half a thought")
    alex.execute_script("window.keptWhole = true")
    alex.get("about:blank")
    wait(alex, 10).until(lambda _: not ConsoleConnection.objects.filter(closed_at__isnull=True).exists())
    alex.back()
    wait_for_text(alex, "#console-connection", "Connected")
    assert alex.execute_script("return window.keptWhole") is True
    assert alex.find_element(By.ID, "compose-message").get_attribute("value") == "Half a thought"
    wait(alex, 10).until(lambda _: ConsoleConnection.objects.filter(closed_at__isnull=True).count() == 1)


@pushed_from_the_test_process
def test_a_supervisor_goes_on_watching_after_the_connection_comes_back(server, staff, browsers):
    alex, sam = browsers(), browsers()
    sign_in(alex, server, "alex")
    sign_in(sam, server, "sam")
    services.conversation_start(visitor_name="Pat")
    wait_for_text(alex, "#queue-list", "Pat")
    click(alex, "[data-accept]")
    wait_for_text(sam, "#live-list", "Pat")
    assert "waiting since" not in sam.find_element(By.ID, "live-list").text, "answered: no longer waiting"
    click(sam, "[data-watch]")
    wait_for_text(sam, "#conversation-log", "joined the conversation")

    server.stop()
    wait_for_text(sam, "#console-connection", "Connection lost")
    restarted = server.start_again()
    try:
        for driver in (alex, sam):
            wait_for_text(driver, "#console-connection", "Connected", timeout=40)
        wait_for_text(alex, "#conversation-log", "joined the conversation")
        alex.find_element(By.ID, "compose-message").send_keys("After the restart", Keys.ENTER)
        wait_for_text(sam, "#conversation-log", "After the restart", timeout=15)
    finally:
        restarted.stop()


@pushed_from_the_test_process
def test_a_console_back_from_a_lost_connection_says_what_became_of_its_conversations(server, staff, browsers):
    alex, sam = browsers(), browsers()
    sign_in(alex, server, "alex")
    sign_in(sam, server, "sam")
    names = ("Pat", "Kim", "Lee", "Ola")
    pat, kim, lee, ola = (services.conversation_start(visitor_name=name)[0] for name in names)
    for conversation in (pat, kim, lee, ola):
        services.conversation_touch_visitor(conversation_id=conversation.pk)
        services.conversation_assign(conversation_id=conversation.pk, helper=staff["alex"])
    for name in names:
        wait_for_text(alex, "#mine-list", name)
    click(alex, f'[data-open="{kim.pk}"]')
    wait_for_text(alex, "#conversation-heading", "Kim")
    alex.find_element(By.ID, "compose-message").send_keys("Your permit is ready")
    click(sam, f'[data-watch="{pat.pk}"]')
    wait_for_text(sam, "#conversation-heading", "Pat")

    server.stop()
    wait_for_text(alex, "#console-connection", "Connection lost")
    # Meanwhile, with nobody's console connected to hear it:
    services.conversation_end(conversation_id=pat.pk, ended_by="visitor")
    services.conversation_transfer(conversation_id=kim.pk, by_helper=staff["alex"], to_helper=staff["bea"])
    services.conversation_transfer(conversation_id=lee.pk, by_helper=staff["alex"])
    services.conversation_visitor_left(conversation_id=ola.pk, channel_name="a page that closed")
    restarted = server.start_again()
    try:
        wait_for_text(alex, "#console-connection", "Connected", timeout=40)
        wait_for_text(alex, "#console-announcer", "The conversation with Pat ended while you were disconnected.")
        announced = alex.find_element(By.ID, "console-announcer").text
        assert "The conversation with Kim ended or was passed on while you were disconnected." in announced
        assert "The conversation with Lee went back to the queue while you were disconnected." in announced
        wait_for_text(alex, "#wrap-up-list", f"Log conversation {pat.pk}")
        wait_for_text(alex, "#queue-list", "Lee")
        mine = alex.find_element(By.ID, "mine-list").text
        assert "Kim" not in mine and "Lee" not in mine, mine
        # Kim's chat is no longer shown, and the words typed to Kim are not offered to anyone
        # else: shown to copy instead. The live conversation is shown, not the ended one.
        wait_for_text(alex, "#console-error", "Not sent to Kim: “Your permit is ready”")
        wait_for_text(alex, "#conversation-heading", "Ola")
        assert alex.find_element(By.ID, "compose-message").get_attribute("value") == ""
        # Not at once: a resident reloading the page is away for a moment only.
        assert "left the page" not in mine
        wait_for_text(alex, "#console-announcer", "Ola has left the chat page.", timeout=15)
        wait_for_text(alex, "#mine-list", "Ola – left the page")
        wait_for_text(sam, "#console-announcer", "The conversation you were watching with Pat is no longer live.")
        assert "Pat" not in sam.find_element(By.ID, "conversation-heading").text
        assert_accessible(alex, "the console after a reconnection")

        # Words typed to one conversation stay with it while another is shown.
        zed = services.conversation_start(visitor_name="Zed")[0]
        services.conversation_assign(conversation_id=zed.pk, helper=staff["alex"])
        alex.find_element(By.ID, "compose-message").send_keys("Are you still there?")
        click(alex, f'[data-open="{zed.pk}"]')
        wait_for_text(alex, "#conversation-heading", "Zed")
        assert alex.find_element(By.ID, "compose-message").get_attribute("value") == ""
        click(alex, f'[data-open="{ola.pk}"]')
        wait_for_text(alex, "#conversation-heading", "Ola")
        assert alex.find_element(By.ID, "compose-message").get_attribute("value") == "Are you still there?"
    finally:
        restarted.stop()


def test_a_console_whose_helper_loses_their_role_says_so_or_loads_again_as_the_new_one(server, staff, browsers):
    alex, bea = browsers(), browsers()
    sign_in(alex, server, "alex")
    sign_in(bea, server, "bea")
    bea.execute_script("window.drawnAsBefore = true")

    get_user_model().objects.filter(pk=staff["alex"].pk).update(is_active=False)
    staff["bea"].groups.set([Group.objects.get(name="volunteer")])
    for driver in (alex, bea):  # the next ping, now rather than in 25 seconds
        driver.execute_script("window.dispatchEvent(new Event('online'))")

    # Alex's console loads again, which asks him to sign in (his account is not active).
    wait(alex).until(lambda d: "/accounts/login/" in d.current_url, "sent to sign in")
    wait(bea).until(lambda d: d.execute_script("return window.drawnAsBefore === undefined"), "loaded again")
    wait_for_text(bea, "#console-connection", "Connected")
    assert json.loads(bea.find_element(By.ID, "console-config").get_attribute("textContent"))["role"] == "volunteer"


@pushed_from_the_test_process
def test_a_call_back_taken_on_by_someone_who_has_left_is_open_to_anyone(server, staff, browsers):
    callback = services.callback_request_create(name="Pat", message="About my permit", phone="01632 960001")
    services.callback_claim(callback_id=callback.pk, helper=staff["alex"])
    # Alex leaves the council: the account is deactivated, kept for the record.
    get_user_model().objects.filter(pk=staff["alex"].pk).update(is_active=False)
    bea = browsers()
    sign_in(bea, server, "bea")

    wait_for_text(bea, "#callbacks-list", "Alex took this on but has left. Anyone may call back.")
    click(bea, "[data-callback-claim]")

    wait_for_text(bea, "#callbacks-list", "You are calling back.")
    assert CallbackRequest.objects.get().claimed_by == staff["bea"]


@pushed_from_the_test_process
def test_a_call_back_is_taken_on_by_one_advisor_and_done(server, staff, browsers):
    # One left on an earlier day (a Friday evening, read on Monday) says which day.
    earlier = services.callback_request_create(name="Sam", message="Left last week", phone="01632 960002")
    noon = (timezone.now() - datetime.timedelta(days=3)).replace(hour=12, minute=0)
    CallbackRequest.objects.filter(pk=earlier.pk).update(created_at=noon)
    alex, bea = browsers(), browsers()
    # Alex's computer is set to another zone: the console still reads the council's clock.
    alex.execute_cdp_cmd("Emulation.setTimezoneOverride", {"timezoneId": "Pacific/Auckland"})
    sign_in(alex, server, "alex")
    sign_in(bea, server, "bea")
    left = timezone.localtime(noon)
    wait_for_text(alex, "#callbacks-list", f"left {left:%A} {left.day} {left:%B} at {clock_text(left)}")
    assert alex.execute_script("return Intl.DateTimeFormat().resolvedOptions().timeZone") == "Pacific/Auckland"
    services.callback_complete(callback_id=earlier.pk, helper=staff["bea"])
    services.callback_request_create(name="Pat", message="About my permit", phone="01632 960001")
    for driver in (alex, bea):
        wait_for_text(driver, "#callbacks-list", "About my permit")
    # The reference the resident was given, to match them when they phone quoting it.
    pat = CallbackRequest.objects.get(name="Pat")
    wait_for_text(alex, "#callbacks-list", f"CB-{pat.pk:06d} · 01632 960001")
    assert_accessible(alex, "a call-back request waiting")

    click(alex, "[data-callback-claim]")
    wait_for_text(alex, "#callbacks-list", "You are calling back.")
    wait_for_text(bea, "#callbacks-list", "Alex is calling back.")
    assert bea.find_elements(By.CSS_SELECTOR, "#callbacks-list button") == [], "nothing for Bea to press"
    assert alex.execute_script("return document.activeElement.dataset.callbackDone") is not None, "keyboard stays"

    services.callback_request_create(name="Kim", message="About my bins", phone="01632 960003")
    wait_for_text(alex, "#callbacks-list", "About my bins")

    click(alex, "[data-callback-done]")
    for driver in (alex, bea):
        wait_for_text(driver, "#callbacks-count", "1")
    callback = CallbackRequest.objects.get(name="Pat")
    assert (callback.status, callback.claimed_by.username) == ("done", "alex")
    # Done and gone from the list: the keyboard goes to its heading, not to Kim's button,
    # which a second Enter would press.
    assert alex.switch_to.active_element.get_attribute("id") == "callbacks-heading"


def test_words_being_typed_when_a_supervisor_moves_the_chat_stay_shown(server, staff, browsers):
    _pat, alex, sam = pat_held_and_watched(server, staff, browsers, "alex")
    alex.find_element(By.ID, "compose-message").send_keys("Your permit number is")

    click(sam, "#transfer-details summary")
    sam.find_element(By.CSS_SELECTOR, "#transfer-form button[type=submit]").click()

    wait_for_text(alex, "#console-error", "Not sent to Pat: “Your permit number is”")
    # The console stops saying "typing" there by itself, 3 s after the last key: refused, that
    # used to replace the words with "This conversation is not assigned to you."
    time.sleep(4)
    assert "Your permit number is" in alex.find_element(By.ID, "console-error").text


def test_a_supervisor_who_watched_a_chat_to_its_end_is_not_offered_its_wrap_up(server, staff, browsers):
    _pat, alex, sam = pat_held_and_watched(server, staff, browsers, "alex")

    click(alex, "#end-conversation")

    wait_for_text(sam, "#conversation-ended", "This conversation has ended.")
    # Only its helper logs what was done: Sam's log would have taken Alex's place.
    assert not sam.find_element(By.ID, "wrap-up-link").is_displayed()
    wait_for_text(alex, "#conversation-ended", "Log what was done")
    assert alex.find_element(By.ID, "wrap-up-link").is_displayed()


# Keeps each text the console's live region says, in order.
RECORD_ANNOUNCEMENTS = """
window.heard = [];
const region = document.getElementById("console-announcer");
new MutationObserver(() => {
  if (region.textContent && region.textContent !== window.heard.at(-1)) window.heard.push(region.textContent);
}).observe(region, { subtree: true, childList: true, characterData: true });
"""


def test_a_message_that_came_while_the_console_was_disconnected_is_read_out_once(server, staff, browsers):
    pat, kim = (services.conversation_start(visitor_name=name)[0] for name in ("Pat", "Kim"))
    for conversation in (pat, kim):
        services.conversation_assign(conversation_id=conversation.pk, helper=staff["alex"])
    alex = browsers()
    sign_in(alex, server, "alex")
    wait_for_text(alex, "#mine-list", "Kim")
    click(alex, f'[data-open="{pat.pk}"]')
    wait_for_text(alex, "#conversation-heading", "Pat")
    alex.execute_script(RECORD_ANNOUNCEMENTS)

    server.stop()
    wait_for_text(alex, "#console-connection", "Connection lost")
    services.message_create(conversation_id=kim.pk, author_kind="visitor", body="Is anyone there?")
    restarted = server.start_again()
    try:
        wait_for_text(alex, "#console-connection", "Connected", timeout=40)
        wait(alex).until(
            lambda d: any("Kim says: Is anyone there?" in text for text in d.execute_script("return window.heard")),
            "read out once back",
        )
        wait_for_text(alex, "#mine-list", "1 unread")
        heard = alex.execute_script("return window.heard")
        assert sum("Is anyone there?" in text for text in heard) == 1, heard
    finally:
        restarted.stop()


def test_messages_the_frame_limit_dropped_are_sent_again_and_stored_once_each(staff, browsers):
    # Enough messages a minute for the frame limit (a burst of 40 frames) to be what stops them.
    with browser_test_server(CHAT_MESSAGES_PER_MINUTE="1000") as daphne:
        pat = services.conversation_start(visitor_name="Pat")[0]
        services.conversation_assign(conversation_id=pat.pk, helper=staff["alex"])
        alex = browsers()
        sign_in(alex, daphne, "alex")
        click(alex, f'[data-open="{pat.pk}"]')
        wait_for_text(alex, "#conversation-heading", "Pat")

        # Fifty sent at once (pasted steps, say): the server drops what is over the limit,
        # answering only that some frames were dropped.
        alex.execute_script(
            """
            const box = document.getElementById("compose-message");
            for (let step = 1; step <= 50; step++) {
              box.value = `Step ${step}`;
              document.getElementById("compose-form").requestSubmit();
            }
            """
        )

        sent = Message.objects.filter(conversation=pat, author_kind="helper")
        wait(alex, timeout=30).until(lambda _d: sent.count() >= 50, "every step stored in the end")
        assert sorted(sent.values_list("body", flat=True)) == sorted(f"Step {step}" for step in range(1, 51))
        wait(alex).until(lambda d: "Sending" not in d.find_element(By.ID, "conversation-log").text, "none left sending")


def test_a_long_conversation_scrolls_from_the_keyboard(server, staff, browsers, settings):
    settings.CHAT_MESSAGES_PER_MINUTE = 100
    pat = services.conversation_start(visitor_name="Pat")[0]
    services.conversation_assign(conversation_id=pat.pk, helper=staff["alex"])
    for step in range(1, 41):
        services.message_create(conversation_id=pat.pk, author_kind="visitor", body=f"Step {step} of my form")
    alex = browsers()
    sign_in(alex, server, "alex")
    click(alex, f'[data-open="{pat.pk}"]')
    wait_for_text(alex, "#conversation-log", "Step 40 of my form")

    log = alex.find_element(By.ID, "conversation-log")
    assert alex.execute_script("return arguments[0].scrollHeight > arguments[0].clientHeight", log), "it scrolls"
    assert_accessible(alex, "a conversation longer than its log")


def test_choosing_another_conversation_while_an_accept_is_on_its_way_stays_on_it(server, staff, browsers):
    """The accepted chat does not take the advisor away from the one they chose meanwhile,
    where they may already be typing."""
    pat, _token = services.conversation_start(visitor_name="Pat")
    services.conversation_assign(conversation_id=pat.pk, helper=staff["alex"])
    rita, _token = services.conversation_start(visitor_name="Rita")
    alex = browsers()
    sign_in(alex, server, "alex")
    wait_for_text(alex, "#queue-list", "Rita")
    wait_for_text(alex, "#mine-list", "Pat")

    # Both in one go, so no answer can come between them.
    alex.execute_script(
        f"""
        document.querySelector('[data-accept="{rita.pk}"]').click();
        document.querySelector('[data-open="{pat.pk}"]').click();
        """
    )

    wait_for_text(alex, "#mine-list", "Rita")
    wait_for_text(alex, "#console-announcer", "The conversation with Rita is now yours.")
    assert alex.find_element(By.ID, "conversation-heading").text == "Conversation with Pat"
    assert Conversation.objects.get(pk=rita.pk).assigned_helper == staff["alex"]


def alex_chatting_with_pat(server, browsers):
    """Alex's console and Pat's browser, in the chat Pat started and Alex accepted."""
    alex = browsers()
    sign_in(alex, server, "alex")
    resident = browsers()
    resident_starts_chat(resident, server)
    click(alex, "[data-accept]")
    wait_for_text(alex, "#conversation-log", "joined the conversation")
    return alex, resident, Conversation.objects.get()


def test_words_that_can_no_longer_be_sent_are_given_back(server, staff, browsers):
    alex, resident, conversation = alex_chatting_with_pat(server, browsers)

    # A note refused (the conversation was moved meanwhile) is back in its box.
    Conversation.objects.filter(pk=conversation.pk).update(assigned_helper=staff["bea"])
    alex.find_element(By.ID, "note-body").send_keys("Has a blue badge")
    click(alex, "#note-form button[type=submit]")
    wait_for_text(alex, "#conversation-error", "This conversation is not assigned to you.")
    assert alex.find_element(By.ID, "note-body").get_attribute("value") == "Has a blue badge"
    # So is a transfer's note, with its form open again.
    click(alex, "#transfer-details summary")
    wait(alex).until(lambda d: Select(d.find_element(By.ID, "transfer-to")).options)
    alex.find_element(By.ID, "transfer-note").send_keys("Needs a call on Monday")
    alex.find_element(By.CSS_SELECTOR, "#transfer-form button[type=submit]").click()
    note = alex.find_element(By.ID, "transfer-note")
    wait(alex).until(lambda _: note.get_attribute("value") == "Needs a call on Monday", "the note given back")
    assert alex.find_element(By.ID, "transfer-details").get_attribute("open") is not None
    assert not InternalNote.objects.exists()
    Conversation.objects.filter(pk=conversation.pk).update(assigned_helper=staff["alex"])

    # Typing when the resident ends the chat: the words are shown, not hidden with the box.
    alex.find_element(By.ID, "compose-message").send_keys("Half a sentence")
    click(resident, ".chat-compose .govuk-button--warning")
    wait_for_text(alex, "#conversation-error", "Not sent to Pat: “Half a sentence”")
    assert_accessible(alex, "an ended conversation with words given back")


def test_a_message_missed_live_is_fetched_as_soon_as_a_later_one_arrives(server, staff, browsers, settings):
    alex, resident, conversation = alex_chatting_with_pat(server, browsers)

    # Stored, and its event lost on the way (as a channel layer over capacity drops one): sent
    # through a layer of this process's own, which reaches no server.
    settings.CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    channel_layers.backends.clear()
    try:
        services.message_create(conversation_id=conversation.pk, author_kind="visitor", body="Lost on the way")
    finally:
        channel_layers.backends.clear()
    resident.find_element(By.ID, "dioa-chat-message").send_keys("Arrived", Keys.ENTER)
    wait_for_text(alex, "#conversation-log", "Arrived")

    # Well before the next ping (25 s) would find it missing.
    wait_for_text(alex, "#conversation-log", "Lost on the way", timeout=5)
    log = alex.find_element(By.ID, "conversation-log").text
    assert log.index("Lost on the way") < log.index("Arrived")


def test_two_messages_refused_at_once_are_both_shown_to_copy(server, staff, browsers):
    alex, _resident, conversation = alex_chatting_with_pat(server, browsers)
    # Ended without this console hearing of it yet.
    Conversation.objects.filter(pk=conversation.pk).update(status="ended", ended_at=timezone.now())

    alex.execute_script(
        """
        const box = document.getElementById("compose-message");
        for (const words of ["First thing", "Second thing"]) {
          box.value = words;
          document.getElementById("compose-form").requestSubmit();
        }
        """
    )

    wait_for_text(alex, "#conversation-error", "“Second thing”")
    shown = alex.find_element(By.ID, "conversation-error").text
    assert "Not sent to Pat: “First thing”" in shown and "Not sent to Pat: “Second thing”" in shown
    assert not Message.objects.filter(author_kind="helper").exists()


def test_a_transfer_choice_that_is_no_longer_possible_is_not_swapped_for_another(server, staff, browsers):
    _pat, alex, sam = pat_held_and_watched(server, staff, browsers, "alex")
    bea = browsers()
    sign_in(bea, server, "bea")
    click(sam, "#transfer-details summary")
    choose_transfer_to(sam, "Bea")

    click(alex, "#transfer-details summary")
    choose_transfer_to(alex, "Bea")
    alex.find_element(By.CSS_SELECTOR, "#transfer-form button[type=submit]").click()
    wait_for_text(sam, "#conversation-context", "Bea")

    # Bea has it now: Sam's choice is gone, and nothing else is chosen in its place.
    wait(sam).until(lambda d: Select(d.find_element(By.ID, "transfer-to")).first_selected_option.text == "Choose again")
    wait_for_text(sam, "#conversation-error", "Choose who to transfer to again.")
    sam.find_element(By.CSS_SELECTOR, "#transfer-form button[type=submit]").click()
    wait_for_text(sam, "#conversation-error", "Choose who to transfer to.")
    assert Conversation.objects.get().assigned_helper == staff["bea"]


def test_words_not_yet_sent_survive_a_reload(server, staff, browsers):
    alex, resident, conversation = alex_chatting_with_pat(server, browsers)
    # Into a connection that died without closing: the message never leaves the page.
    alex.execute_script("window.WebSocket.prototype.send = function () {}")
    alex.find_element(By.ID, "compose-message").send_keys("Sent into the void", Keys.ENTER)
    wait_for_text(alex, "#conversation-log", "Sending…")
    alex.find_element(By.ID, "compose-message").send_keys("Half typed")

    alex.refresh()

    wait_for_text(alex, "#console-connection", "Connected")
    wait_for_text(resident, ".chat-log", "Sent into the void")
    compose = alex.find_element(By.ID, "compose-message")
    wait(alex).until(lambda _: compose.get_attribute("value") == "Half typed", "the draft is back")
    assert Message.objects.filter(body="Sent into the void").count() == 1
    # Taken back once: a later load does not send or show them again.
    assert alex.execute_script("return sessionStorage.length") == 0

    # Kept for a chat that ended before the page came back: shown to copy, sent to nobody.
    alex.execute_script("window.WebSocket.prototype.send = function () {}")
    compose.clear()
    compose.send_keys("For nobody", Keys.ENTER)
    wait_for_text(alex, "#conversation-log", "Sending…")
    services.conversation_end(conversation_id=conversation.pk, ended_by="visitor")
    alex.refresh()
    wait_for_text(alex, "#console-error", "Not sent to Pat: “For nobody”")
    assert not Message.objects.filter(body="For nobody").exists()


def test_a_chat_given_while_the_console_was_disconnected_is_announced(server, staff, browsers):
    alex = browsers()
    sign_in(alex, server, "alex")
    server.stop()
    wait_for_text(alex, "#console-connection", "Connection lost")
    pat, _token = services.conversation_start(visitor_name="Pat")
    services.conversation_assign(conversation_id=pat.pk, helper=staff["alex"])

    restarted = server.start_again()
    try:
        wait_for_text(alex, "#console-connection", "Connected", timeout=40)
        wait_for_text(alex, "#mine-list", "Pat")
        wait_for_text(alex, "#console-announcer", "with Pat was given to you while you were disconnected.")
    finally:
        restarted.stop()


def test_an_error_stays_beside_its_own_conversation_and_a_refused_accept_leaves_the_others(server, staff, browsers):
    pat, _token = services.conversation_start(visitor_name="Pat")
    services.conversation_assign(conversation_id=pat.pk, helper=staff["alex"])
    rita, _token = services.conversation_start(visitor_name="Rita")
    services.conversation_assign(conversation_id=rita.pk, helper=staff["alex"])
    sue, _token = services.conversation_start(visitor_name="Sue")
    tom, _token = services.conversation_start(visitor_name="Tom")
    alex = browsers()
    sign_in(alex, server, "alex")
    wait_for_text(alex, "#queue-list", "Tom")
    click(alex, f'[data-open="{pat.pk}"]')
    wait_for_text(alex, "#conversation-heading", "Conversation with Pat")

    # Refused about Pat (moved meanwhile, unknown to this console), then moved back.
    Conversation.objects.filter(pk=pat.pk).update(assigned_helper=staff["bea"])
    alex.find_element(By.ID, "note-body").send_keys("Has a blue badge")
    click(alex, "#note-form button[type=submit]")
    wait_for_text(alex, "#conversation-error", "This conversation is not assigned to you.")
    Conversation.objects.filter(pk=pat.pk).update(assigned_helper=staff["alex"])

    # Not shown beside Rita, and shown again beside Pat.
    click(alex, f'[data-open="{rita.pk}"]')
    wait_for_text(alex, "#conversation-heading", "Conversation with Rita")
    assert not alex.find_element(By.ID, "conversation-error").is_displayed()
    click(alex, f'[data-open="{pat.pk}"]')
    wait_for_text(alex, "#conversation-heading", "Conversation with Pat")
    assert alex.find_element(By.ID, "conversation-error").text == "This conversation is not assigned to you."

    # Sue was taken meanwhile, unknown to this console. Her Accept's refusal, answered first,
    # leaves Tom's Accept to open Tom's conversation, ready to answer.
    Conversation.objects.filter(pk=sue.pk).update(status="active", assigned_helper=staff["bea"])
    alex.execute_script(
        f"""
        document.querySelector('[data-accept="{sue.pk}"]').click();
        document.querySelector('[data-accept="{tom.pk}"]').click();
        """
    )
    wait_for_text(alex, "#conversation-heading", "Conversation with Tom")
    wait(alex).until(lambda d: d.switch_to.active_element.get_attribute("id") == "compose-message", "ready to answer")
    wait_for_text(alex, "#console-error", "Conversation with Sue:")
    assert not alex.find_element(By.ID, "conversation-error").is_displayed()
    assert_accessible(alex, "an error about a conversation not open")


@pushed_from_the_test_process
def test_a_supervisor_takes_over_a_call_back_another_advisor_has_on(server, staff, browsers):
    callback = services.callback_request_create(name="Pat", message="About my permit", phone="01632 960001")
    services.callback_claim(callback_id=callback.pk, helper=staff["alex"])
    alex, sam = browsers(), browsers()
    sign_in(alex, server, "alex")
    sign_in(sam, server, "sam")
    wait_for_text(sam, "#callbacks-list", "Alex is calling back.")

    click(sam, "[data-callback-claim]")
    wait_for_text(sam, "#callbacks-list", "You are calling back.")
    wait_for_text(alex, "#callbacks-list", "Sam is calling back.")
    assert alex.find_elements(By.CSS_SELECTOR, "#callbacks-list button") == [], "nothing left for Alex to press"
    assert CallbackRequest.objects.get().claimed_by == staff["sam"]
    assert_accessible(sam, "a call-back taken over")
