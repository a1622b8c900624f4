"""The resident's whole webchat journey in real Chromium, on another council site, through a
server restart, and when nobody is available; axe-core checks every state of the widget."""

import contextlib
import datetime
import http.server
import importlib
import json
import os
import re
import signal
import socket
import threading
import time
import zoneinfo

import pytest
from django.apps import apps
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.utils import timezone
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import Select

from chat import services
from chat.models import CallbackRequest, ClosureDate, Conversation, Message, OpeningHours
from config.clock import when_text
from kiosk.models import Service, ServiceCategory
from tests.e2e import browser
from tests.e2e.browser import (
    assert_accessible,
    click,
    require_browser,
    wait,
    wait_for_text,
)
from tests.servers import browser_test_server, http_server, pushed_from_the_test_process

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PAGE = """<!DOCTYPE html>
<html lang="en-GB"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title} – Millbrook District Council</title>{style}</head>
<body><header><a href="/">Millbrook District Council</a></header>
<main><h1>{title}</h1><p>A page of the council's main website, which carries the chat widget.</p>
<p><a href="/other">Another page</a></p></main>
<div id="host-notice" data-dioa-keep-usable>The host page's own notice, which stays usable.</div>
<script type="module" src="{widget}" data-dioa-chat data-service="report-missed-bin"
  data-privacy-url="/privacy"></script>
</body></html>"""


# What a council site's own stylesheet commonly does to every page (a smaller root font size
# for rem arithmetic, Bootstrap's box sizing, text styles on the body and on bare elements).
HOST_STYLES = """<style>
html { font-size: 62.5%; }
*, *::before, *::after { box-sizing: border-box; }
body { font: 1.4rem/2 Georgia, serif; color: #767676; letter-spacing: 0.1em; text-align: center;
  text-transform: uppercase; word-spacing: 0.3em; }
p, ul, ol, li, h2, h3, label, legend, fieldset, form, div, span { margin: 0 0 2rem; padding: 0; color: #767676; }
a { color: #d4351c; text-decoration: none; font-weight: bold; }
button, input, textarea, select { font: inherit; color: inherit; border-radius: 8px; background: pink; }
textarea { resize: none; }
html.js p, html.js span, html.js label, html.js li { color: #505a5f; font-style: italic; }
a:link, a:visited { color: #00703c; text-decoration: underline wavy; }
input[type="text"], input[type="email"], select[name] { border-radius: 12px; background: #f3f2f1; }
</style>
<script>document.documentElement.classList.add("js");</script>"""


@pytest.fixture
def site(transactional_db):
    require_browser()
    importlib.import_module("agents_console.migrations.0002_roles").create_roles(apps, None)
    category = ServiceCategory.objects.create(name="Bins and recycling", slug="bins")
    Service.objects.create(name="Report a missed bin collection", slug="report-missed-bin", category=category, url="/")
    advisor = get_user_model().objects.create_user(username="alex", password="alex-password-123", first_name="Alex")
    advisor.groups.add(Group.objects.get(name="advisor"))
    return advisor


class CouncilPage(http.server.BaseHTTPRequestHandler):
    """A page of the council's main website, carrying the widget its server was given."""

    def do_GET(self):
        title = "Another page" if self.path.startswith("/other") else "Bins and recycling"
        style = HOST_STYLES if self.path.startswith("/styled") else ""
        body = PAGE.format(title=title, widget=self.server.widget, style=style).encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def council_httpd():
    """The council site's server, listening before this project's server starts, which must
    know its origin: a port only picked now could be taken by then."""
    httpd = http_server(CouncilPage)
    yield httpd
    httpd.server_close()


@pytest.fixture
def server(site, council_httpd):
    """This project on its own Daphne, allowing the council site (another origin) to embed it."""
    with browser_test_server(CHAT_WIDGET_ORIGINS=f"http://localhost:{council_httpd.server_port}") as daphne:
        yield daphne


@contextlib.contextmanager
def serving_council_pages(httpd, server):
    """Serve the council's pages from `httpd`, carrying `server`'s widget; yields their origin."""
    httpd.widget = f"{server.http}/static/chat/js/widget.js"
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        yield f"http://localhost:{httpd.server_port}"
    finally:
        httpd.shutdown()


@pytest.fixture
def council_site(server, council_httpd):
    """The council's main website on another origin (localhost, another port)."""
    with serving_council_pages(council_httpd, server) as origin:
        yield origin


@pytest.fixture
def unlisted_site(server):
    """A council website the service was not told about (not in CHAT_WIDGET_ORIGINS)."""
    httpd = http_server(CouncilPage)
    with serving_council_pages(httpd, server) as origin:
        yield origin
    httpd.server_close()


def test_a_site_the_council_has_not_listed_gets_no_chat_and_is_told_why(unlisted_site, browsers):
    """Its socket would be refused: a launcher there could only hang at "Connecting…"."""
    visitor = browsers()
    visitor.get(unlisted_site)

    wait(visitor).until(
        lambda d: d.execute_script("return Boolean(window.dioaChat) && !document.querySelector('.dioa-chat')")
    )
    logged = [entry["message"] for entry in visitor.get_log("browser")]
    refusal = f"{unlisted_site} is not in the service's CHAT_WIDGET_ORIGINS"
    assert any(refusal in message for message in logged), logged
    # Nor does it connect when the page comes back from the back/forward cache with a chat.
    stopped = visitor.execute_script(
        """
        sessionStorage.setItem("dioa-chat", JSON.stringify({ token: "t", open: true, outbox: [], notSent: [] }));
        window.dispatchEvent(new PageTransitionEvent("pageshow", { persisted: true }));
        return window.dioaChat.socket.stopped;
        """
    )
    assert stopped is True


WIDGET_STYLES = """
// Each shown element of the widget, with the styles a host page's rules could change.
const properties = [
  "color", "background-color", "font-family", "font-size", "font-weight", "line-height", "letter-spacing",
  "word-spacing", "text-align", "text-transform", "text-decoration-line", "box-sizing", "margin-top",
  "margin-bottom", "padding-top", "padding-left", "border-top-width", "border-top-left-radius", "width", "height",
  "resize",
];
return [...document.querySelectorAll(".dioa-chat, .dioa-chat *")].filter((node) => node.getClientRects().length).map(
  (node) => {
    const style = getComputedStyle(node);
    const name = `${node.tagName.toLowerCase()}#${node.id}.${node.className}`;
    return [name, Object.fromEntries(properties.map((property) => [property, style.getPropertyValue(property)]))];
  },
);
"""


@pytest.mark.parametrize("screen", ["desktop", "phone"])
def test_the_host_pages_own_styles_do_not_reach_the_widget(server, council_site, browsers, screen):
    helper = browsers()
    sign_in(helper, server)
    visitor = browsers()
    if screen == "phone":  # 320 px wide, where the panel takes the whole screen
        visitor.execute_cdp_cmd(
            "Emulation.setDeviceMetricsOverride", {"width": 320, "height": 640, "deviceScaleFactor": 2, "mobile": True}
        )
    seen = {}
    for page in ("/", "/styled"):
        visitor.get(council_site + page)
        wait(visitor).until(lambda d: d.find_element(By.CSS_SELECTOR, ".chat-launcher").is_displayed())
        closed = visitor.execute_script(WIDGET_STYLES)
        click(visitor, ".chat-launcher")
        wait(visitor).until(lambda d: d.find_element(By.ID, "dioa-chat-name").is_displayed())
        seen[page] = closed + visitor.execute_script(WIDGET_STYLES)

    changed = [
        (name, {key: (value, styled[key]) for key, value in plain.items() if styled[key] != value})
        for (name, plain), (_, styled) in zip(seen["/"], seen["/styled"], strict=True)
        if plain != styled
    ]
    assert not changed, changed


def sign_in(driver, server) -> None:
    browser.sign_in(driver, server.http, "alex", "alex-password-123")
    wait_for_text(driver, "#console-connection", "Connected")


def pat_starts(visitor, page) -> None:
    """Pat opens the chat on `page` and starts one, giving only a name."""
    visitor.get(page)
    click(visitor, ".chat-launcher")
    visitor.find_element(By.ID, "dioa-chat-name").send_keys("Pat")
    visitor.find_element(By.CSS_SELECTOR, ".chat-start button[type=submit]").click()


def helper_online_and_pat_starts(server, council_site, browsers):
    """Alex's console open, and Pat starting a chat on the council site: both browsers."""
    helper = browsers()
    sign_in(helper, server)
    visitor = browsers()
    pat_starts(visitor, council_site)
    return helper, visitor


def texts_of(driver, selector: str) -> list[str]:
    return driver.execute_script(
        "return [...document.querySelectorAll(arguments[0])].map((node) => node.innerText)", selector
    )


def type_message(driver, text: str) -> None:
    driver.find_element(By.ID, "dioa-chat-message").send_keys(text, Keys.ENTER)


def type_while_the_server_is_down(server, visitor, text: str) -> None:
    """Stop the server under a resident in a chat, who then types `text`: left "Sending…"."""
    server.stop()
    wait_for_text(visitor, "#dioa-chat-status", "You are offline")
    type_message(visitor, text)
    wait_for_text(visitor, ".chat-log", "Sending…")
    assert_accessible(visitor, "offline, with a message waiting to be sent")


def test_the_whole_journey_on_another_council_site(server, council_site, browsers, tmp_path):
    helper = browsers()
    sign_in(helper, server)
    visitor = browsers()
    visitor.get(council_site)
    wait(visitor).until(lambda d: d.find_element(By.CSS_SELECTOR, ".chat-launcher").is_displayed())
    assert_accessible(visitor, "the council page with the launcher")

    click(visitor, ".chat-launcher")
    assert visitor.switch_to.active_element.get_attribute("id") == "dioa-chat-name"
    wait(visitor).until(lambda d: len(Select(d.find_element(By.ID, "dioa-chat-topic")).options) > 1)
    assert (
        Select(visitor.find_element(By.ID, "dioa-chat-topic")).first_selected_option.text
        == "Report a missed bin collection"
    )
    assert_accessible(visitor, "the pre-chat form")
    notice = visitor.find_element(By.CSS_SELECTOR, ".chat-start p.govuk-body-s")
    wait(visitor).until(lambda _: "This chat is run by Millbrook District Council." in notice.text)
    assert (
        notice.find_element(By.LINK_TEXT, "How we use your information (opens in new tab)")
        .get_attribute("href")
        .endswith("/privacy")
    )
    visitor.find_element(By.ID, "dioa-chat-name").send_keys("Pat")
    visitor.find_element(By.ID, "dioa-chat-email").send_keys("pat@")
    visitor.find_element(By.CSS_SELECTOR, ".chat-start button[type=submit]").click()
    wait_for_text(visitor, ".chat-start", "Enter an email address in the correct format, like name@example.com")
    assert_accessible(visitor, "the pre-chat form with an error")
    visitor.find_element(By.ID, "dioa-chat-email").send_keys("example.com")
    visitor.find_element(By.CSS_SELECTOR, ".chat-start button[type=submit]").click()
    wait_for_text(visitor, "#dioa-chat-status", "You are number 1 in the queue. Estimated wait: about 3 minutes.")
    wait_for_text(visitor, "#dioa-chat-keep-open", "If you close it for more than 10 minutes, your chat will end.")
    assert len(Conversation.objects.get().start_key_hash) == 64, "the widget's start can be sent again safely"
    assert_accessible(visitor, "the queue")

    wait_for_text(helper, "#queue-list", "Report a missed bin collection")
    click(helper, "[data-accept]")
    wait_for_text(visitor, "#dioa-chat-status", "You are chatting with Alex.")
    assert not visitor.find_element(By.ID, "dioa-chat-keep-open").is_displayed(), "only while waiting"

    visitor.find_element(By.ID, "dioa-chat-message").send_keys("My bin")
    wait_for_text(helper, "#conversation-typing", "Pat is typing…")
    visitor.find_element(By.ID, "dioa-chat-message").send_keys(" was <b>missed</b>", Keys.ENTER)
    wait_for_text(helper, "#conversation-log", "My bin was <b>missed</b>")
    wait_for_text(visitor, ".chat-log__item--mine .chat-log__state", "Read")

    helper.find_element(By.ID, "compose-message").send_keys("Sorry")
    wait_for_text(visitor, "#dioa-chat-typing", "Alex is typing…")
    assert_accessible(visitor, "a conversation with the advisor typing")
    helper.find_element(By.ID, "compose-message").send_keys(" – report it at https://example.org/bins.", Keys.ENTER)
    wait_for_text(visitor, ".chat-log", "report it at")
    link = visitor.find_element(By.CSS_SELECTOR, ".chat-log a.govuk-link")
    assert (link.get_attribute("href"), link.get_attribute("rel")) == (
        "https://example.org/bins",
        "noopener noreferrer nofollow",
    )
    assert visitor.find_elements(By.CSS_SELECTOR, ".chat-log b") == [], "message text is never HTML"
    assert visitor.find_element(By.ID, "dioa-chat-typing").text == ""
    assert_accessible(visitor, "a conversation")
    # Labels and live regions point at ids document-wide: the host page's own must not clash.
    ids = visitor.execute_script("return [...document.querySelectorAll('.dioa-chat [id]')].map((e) => e.id)")
    assert len(ids) > 20 and all(i.startswith("dioa-") for i in ids), [i for i in ids if not i.startswith("dioa-")]

    # The resident moves to another page of the council site: the chat follows, nothing twice.
    visitor.find_element(By.LINK_TEXT, "Another page").click()
    wait_for_text(visitor, "h1", "Another page")
    wait_for_text(visitor, ".chat-log", "report it at")
    bodies = [item.text for item in visitor.find_elements(By.CSS_SELECTOR, ".chat-log__item")]
    assert sum("missed" in body for body in bodies) == 1

    click(helper, "#end-conversation")
    wait_for_text(visitor, "#dioa-chat-status", "This chat has ended.")
    assert_accessible(visitor, "the end of a conversation with the rating form")
    visitor.find_element(By.CSS_SELECTOR, ".chat-rate button[type=submit]").click()
    wait_for_text(visitor, ".chat-rate .govuk-error-summary", "Select how helpful this chat was")
    assert "Select how helpful" in visitor.find_element(By.CSS_SELECTOR, ".chat-rate fieldset").get_attribute(
        "innerText"
    )
    assert_accessible(visitor, "the rating form with an error")
    visitor.find_element(By.CSS_SELECTOR, "label[for=dioa-chat-rating-5]").click()
    visitor.find_element(By.ID, "dioa-chat-rating-comment").send_keys("Very patient")
    visitor.find_element(By.CSS_SELECTOR, ".chat-rate button[type=submit]").click()
    wait_for_text(visitor, "#dioa-chat-rated", "Thank you for your feedback.")
    assert not visitor.find_element(By.CSS_SELECTOR, ".chat-rate .govuk-error-summary").is_displayed()
    assert_accessible(visitor, "after rating")
    click(visitor, "#dioa-chat-transcript")
    deadline = time.monotonic() + 10
    while not list(tmp_path.glob("conversation-*.txt")) and time.monotonic() < deadline:
        time.sleep(0.2)
    transcript = next(tmp_path.glob("conversation-*.txt")).read_text()
    assert "Pat: My bin was <b>missed</b>" in transcript
    assert "Alex: Sorry – report it at https://example.org/bins." in transcript

    conversation = Conversation.objects.get()
    assert (conversation.rating, conversation.rating_comment) == (5, "Very patient")
    assert conversation.visitor_email == "pat@example.com"
    assert conversation.service.slug == "report-missed-bin"
    assert Message.objects.filter(author_kind__in=["visitor", "helper"]).count() == 2

    # Once the token has expired, downloading says the chat is gone (trying again cannot
    # work) and offers a new one, with the keyboard on it.
    Conversation.objects.filter(pk=conversation.pk).update(
        ended_at=timezone.now() - datetime.timedelta(minutes=settings.CHAT_TOKEN_TTL_MINUTES + 1)
    )
    click(visitor, "#dioa-chat-transcript")
    wait_for_text(visitor, "#dioa-chat-error", "Your earlier chat has ended or could not be found.")
    assert visitor.switch_to.active_element.get_attribute("id") == "dioa-chat-name"
    assert len(list(tmp_path.glob("conversation-*.txt"))) == 1
    assert_accessible(visitor, "a new chat offered after the old one expired")


def test_a_page_without_a_chat_opens_no_connection_when_shown_again(server, council_site, browsers):
    visitor = browsers()
    visitor.get(council_site)
    wait(visitor).until(lambda d: d.find_element(By.CSS_SELECTOR, ".chat-launcher").is_displayed())

    visitor.execute_script("document.dispatchEvent(new Event('visibilitychange')); dispatchEvent(new Event('online'))")
    time.sleep(1)

    # Thousands of council pages are open at once: only those with a chat hold a socket.
    assert visitor.execute_script("return window.dioaChat.socket.socket") is None


def test_a_connection_that_dies_without_closing_is_noticed_and_replaced(server, council_site, browsers):
    helper, visitor = helper_online_and_pat_starts(server, council_site, browsers)
    click(helper, "[data-accept]")
    wait_for_text(visitor, "#dioa-chat-status", "You are chatting with Alex.")

    # The server stops answering but nothing closes: to the browser the socket is still open,
    # as when a phone changes networks.
    os.kill(server.process.pid, signal.SIGSTOP)
    try:
        # Coming back to the page checks at once instead of at the next ping.
        visitor.execute_script("document.dispatchEvent(new Event('visibilitychange'))")
        wait_for_text(visitor, "#dioa-chat-status", "You are offline", timeout=20)
        type_message(visitor, "Typed on a dead line")
        wait_for_text(visitor, ".chat-log", "Sending…")
    finally:
        os.kill(server.process.pid, signal.SIGCONT)

    wait_for_text(visitor, "#dioa-chat-status", "You are chatting with Alex.", timeout=40)
    wait_for_text(helper, "#conversation-log", "Typed on a dead line", timeout=20)
    wait_for_text(visitor, "#dioa-chat-announcer", "Connected again.")
    assert Message.objects.filter(body="Typed on a dead line").count() == 1


def test_reconnecting_slows_down_until_the_server_serves_the_socket_not_merely_opens_it(server, browsers):
    """A server that opens sockets but fails the resume (its database down) and closes them
    would otherwise be asked again twice a second by every open widget."""
    driver = browsers()
    driver.get(f"{server.http}/")
    attempts = driver.execute_async_script(
        """
        const done = arguments[arguments.length - 1];
        (async () => {
          const { FrameSocket, socketUrl } = await import("/static/chat/js/socket.js");
          let opened, answered;
          const open = new Promise((resolve) => { opened = resolve; });
          const answer = () => new Promise((resolve) => { answered = resolve; });
          const socket = new FrameSocket({
            url: socketUrl("/ws/chat/"),
            handlers: { error: () => answered(), pong: () => answered() },
            onOpen: () => opened(),
          });
          const seen = {};
          socket.attempt = 3;  // as after three tries that failed
          socket.connect();
          await open;
          seen.open = socket.attempt;
          let reply = answer();
          socket.send("no.such.frame", {});
          await reply;
          seen.error = socket.attempt;
          reply = answer();
          socket.send("ping", {});
          await reply;
          seen.served = socket.attempt;
          socket.close();
          done(seen);
        })().catch((error) => done(String(error)));
        """
    )
    assert attempts == {"open": 3, "error": 3, "served": 0}


def test_opening_the_panel_on_a_chat_that_ended_meanwhile_puts_the_keyboard_on_the_rating(
    server, council_site, browsers
):
    helper, visitor = helper_online_and_pat_starts(server, council_site, browsers)
    click(helper, "[data-accept]")
    wait_for_text(visitor, "#dioa-chat-status", "You are chatting with Alex.")
    visitor.find_element(By.ID, "dioa-chat-message").send_keys(Keys.ESCAPE)
    wait(visitor).until(lambda d: d.find_element(By.CSS_SELECTOR, ".chat-launcher").is_displayed())

    click(helper, "#end-conversation")
    wait_for_text(visitor, ".chat-launcher", "new message")
    click(visitor, ".chat-launcher")

    wait(visitor).until(lambda d: d.switch_to.active_element.get_attribute("id") == "dioa-chat-rating-1")


def test_on_a_small_screen_the_panel_is_the_whole_screen_and_every_button_is_reachable(server, council_site, browsers):
    helper, visitor = helper_online_and_pat_starts(server, council_site, browsers)
    click(helper, "[data-accept]")
    wait_for_text(visitor, "#dioa-chat-status", "You are chatting with Alex.")

    # A phone: the panel covers the screen, and the page behind is out of the keyboard's reach.
    visitor.execute_cdp_cmd(
        "Emulation.setDeviceMetricsOverride", {"width": 320, "height": 568, "deviceScaleFactor": 2, "mobile": True}
    )
    panel = visitor.find_element(By.ID, "dioa-chat-panel")
    wait(visitor).until(lambda _: panel.rect["width"] == 320 and panel.rect["y"] == 0)
    assert visitor.execute_script("return document.querySelector('main').closest('[inert]') !== null")
    assert visitor.execute_script("return document.getElementById('host-notice').inert") is False
    assert_accessible(visitor, "the conversation at 320 px")
    # Closed, the launcher is a button in the corner, not a bar over the foot of every page.
    visitor.find_element(By.ID, "dioa-chat-message").send_keys(Keys.ESCAPE)
    launcher = visitor.find_element(By.CSS_SELECTOR, ".chat-launcher")
    wait(visitor).until(lambda _: launcher.is_displayed())
    assert launcher.rect["width"] < 200, launcher.rect
    click(visitor, ".chat-launcher")

    # 400 % zoom of a 1280 x 1024 screen: the message box and its buttons still reachable.
    visitor.execute_cdp_cmd(
        "Emulation.setDeviceMetricsOverride", {"width": 320, "height": 256, "deviceScaleFactor": 1, "mobile": False}
    )
    type_message(visitor, "Sent at 400 per cent zoom")
    click(visitor, ".chat-compose .govuk-button--warning")
    wait_for_text(helper, "#conversation-log", "Sent at 400 per cent zoom")
    wait_for_text(visitor, "#dioa-chat-status", "This chat has ended.")

    # Wide again: the panel sits in the corner and the page is usable with it open.
    visitor.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})
    wait(visitor).until(lambda d: d.execute_script("return document.querySelector('[inert]') === null"))


# Keeps every text the chat's live region says on a page, from before the page's own scripts.
RECORD_ANNOUNCEMENTS = """
window.heard = [];
new MutationObserver(() => {
  const region = document.getElementById("dioa-chat-announcer");
  if (region && region.textContent && region.textContent !== window.heard.at(-1)) window.heard.push(region.textContent);
}).observe(document, { subtree: true, childList: true, characterData: true });
"""


# Keeps the type of every frame the page's sockets receive, in order.
RECORD_FRAMES = """
window.framesSeen = [];
window.WebSocket = class extends window.WebSocket {
  constructor(...args) {
    super(...args);
    this.addEventListener("message", (event) => window.framesSeen.push(JSON.parse(event.data).type));
  }
};
"""


def test_the_queue_position_is_announced_once_not_again_on_the_next_page(server, council_site, browsers):
    helper, visitor = helper_online_and_pat_starts(server, council_site, browsers)
    wait_for_text(visitor, "#dioa-chat-announcer", "You are number 1 in the queue.")
    visitor.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": RECORD_ANNOUNCEMENTS})

    visitor.find_element(By.LINK_TEXT, "Another page").click()
    wait_for_text(visitor, "h1", "Another page")
    wait_for_text(visitor, "#dioa-chat-status", "You are number 1 in the queue.")
    click(helper, "[data-accept]")
    wait_for_text(visitor, "#dioa-chat-announcer", "You are chatting with Alex.")

    heard = visitor.execute_script("return window.heard")
    assert not any("in the queue" in text for text in heard), heard
    assert sum("You are chatting with Alex." in text for text in heard) == 1, heard


DEVICE_CLOCK_40_MINUTES_FAST = """
const nowAsTheServerHasIt = Date.now;
Date.now = () => nowAsTheServerHasIt() + 40 * 60000;
"""


def test_a_phone_whose_clock_is_out_still_promises_only_the_wait_the_chat_can_last(server, council_site, browsers):
    """Read against the phone's own clock, 40 minutes fast, the 30 minutes a chat may wait
    would have ended before the 3-minute estimate, and the resident told to leave a message."""
    helper = browsers()
    sign_in(helper, server)
    visitor = browsers()
    visitor.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": DEVICE_CLOCK_40_MINUTES_FAST})

    pat_starts(visitor, council_site)

    wait_for_text(visitor, "#dioa-chat-status", "You are number 1 in the queue. Estimated wait: about 3 minutes.")
    # Still told once the wait really would outrun the chat.
    visitor.execute_script("window.dioaChat.state.queue.until += 60 * 60000; window.dioaChat.waitTick()")
    wait_for_text(visitor, "#dioa-chat-status", "An advisor may not be free in time to answer this chat.")


def test_the_estimated_wait_counts_down_and_says_when_it_is_taking_longer(server, council_site, browsers):
    _helper, visitor = helper_online_and_pat_starts(server, council_site, browsers)
    wait_for_text(visitor, "#dioa-chat-status", "You are number 1 in the queue. Estimated wait: about 3 minutes.")

    # An estimate past the time an unanswered chat lasts (30 minutes from when its wait
    # began) is not promised: nor is 3 minutes more after 28 minutes' wait.
    late = "An advisor may not be free in time to answer this chat. You can leave a message instead."
    visitor.execute_script("window.dioaChat.state.queue.until += 60 * 60000; window.dioaChat.waitTick()")
    wait_for_text(visitor, "#dioa-chat-status", late)
    visitor.execute_script("window.dioaChat.state.queue.until -= 60 * 60000; window.dioaChat.waitTick()")
    wait_for_text(visitor, "#dioa-chat-status", "Estimated wait: about 3 minutes.")
    queued_at = visitor.execute_script("return window.dioaChat.conversation.queued_at")
    visitor.execute_script(
        "const c = window.dioaChat.conversation; c.queued_at = new Date(Date.now() - 28 * 60000).toISOString();"
        "window.dioaChat.waitTick()"
    )
    wait_for_text(visitor, "#dioa-chat-status", late)
    visitor.execute_script(f"window.dioaChat.conversation.queued_at = '{queued_at}'; window.dioaChat.waitTick()")
    wait_for_text(visitor, "#dioa-chat-status", "Estimated wait: about 3 minutes.")

    # Two and a half minutes later (the clock moved on for the widget; it redraws every 30 s).
    visitor.execute_script("window.dioaChat.state.queue.until -= 150000; window.dioaChat.waitTick()")
    wait_for_text(visitor, "#dioa-chat-status", "Estimated wait: about 1 minute.")
    assert "about 1 minute" not in visitor.find_element(By.ID, "dioa-chat-announcer").text, "shown, not read out"

    visitor.execute_script("window.dioaChat.state.queue.until -= 60000; window.dioaChat.waitTick()")
    wait_for_text(visitor, "#dioa-chat-status", "It is taking longer than we estimated.")
    wait_for_text(visitor, "#dioa-chat-announcer", "It is taking longer than we estimated.")

    # Another page of the site: the wait already counted goes on counting.
    visitor.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": RECORD_FRAMES})
    visitor.find_element(By.LINK_TEXT, "Another page").click()
    wait_for_text(visitor, "h1", "Another page")
    wait_for_text(visitor, "#dioa-chat-status", "It is taking longer than we estimated.")

    # The server's estimate for the same place changes (helpers are slower today): the wait
    # is counted down from the new one, the time already waited still counting. (After this
    # page's own queue.position, which would otherwise come after it and set it back.)
    wait(visitor).until(lambda d: "queue.position" in d.execute_script("return window.framesSeen"))
    moved = visitor.execute_script(
        "const before = window.dioaChat.state.queue.until;"
        "window.dioaChat.onPosition({position: 1, estimated_wait_seconds: 900, available: true, reason: null});"
        "return window.dioaChat.state.queue.until - before"
    )
    assert moved == (900 - 180) * 1000, "12 minutes more than the first estimate, from when it was made"
    wait_for_text(visitor, "#dioa-chat-status", "You are number 1 in the queue. Estimated wait: about 1")


def test_the_enter_that_picks_a_suggested_word_sends_nothing(server, council_site, browsers):
    """A Japanese or Chinese keyboard's Enter chooses among its suggestions: the message is not done."""
    _helper, visitor = helper_online_and_pat_starts(server, council_site, browsers)
    wait_for_text(visitor, "#dioa-chat-status", "in the queue")
    box = visitor.find_element(By.ID, "dioa-chat-message")
    box.send_keys("こんにちは")
    visitor.execute_script(
        "arguments[0].dispatchEvent(new KeyboardEvent('keydown', {key: 'Enter', isComposing: true, bubbles: true}))",
        box,
    )
    assert box.get_attribute("value") == "こんにちは"
    assert not visitor.find_elements(By.CSS_SELECTOR, ".chat-log__item--mine"), "nothing sent"

    box.send_keys(Keys.ENTER)
    wait(visitor).until(lambda d: Message.objects.filter(body="こんにちは").exists(), "sent by a plain Enter")


def test_leaving_a_message_instead_starts_fresh_and_going_back_sends_nothing(server, council_site, browsers):
    # Nobody online: Pat leaves a message without a chat, on this page.
    visitor = browsers()
    visitor.get(council_site)
    click(visitor, ".chat-launcher")
    wait_for_text(visitor, "#dioa-chat-unavailable-reason", "All our advisors are busy or away")
    visitor.find_element(By.ID, "dioa-callback-name").send_keys("Pat")
    visitor.find_element(By.ID, "dioa-callback-phone").send_keys("01632 960001")
    visitor.find_element(By.ID, "dioa-callback-message").send_keys("First message")
    visitor.find_element(By.CSS_SELECTOR, ".chat-callback button[type=submit]").click()
    wait_for_text(visitor, "#dioa-callback-confirmation", "Your reference is CB-")

    # Later an advisor is online, and Pat starts a chat on the same page.
    helper = browsers()
    sign_in(helper, server)
    click(visitor, ".chat-panel__close")
    click(visitor, ".chat-launcher")
    wait(visitor).until(lambda d: d.find_element(By.ID, "dioa-chat-name").is_displayed())
    visitor.find_element(By.ID, "dioa-chat-name").send_keys("Pat")
    visitor.find_element(By.CSS_SELECTOR, ".chat-start button[type=submit]").click()
    wait_for_text(visitor, "#dioa-chat-status", "You are number 1 in the queue.")

    click(visitor, "#dioa-chat-leave-instead")
    # A new form, not the earlier message's confirmation.
    assert visitor.find_element(By.CSS_SELECTOR, ".chat-callback").is_displayed()
    assert not visitor.find_element(By.ID, "dioa-callback-confirmation").is_displayed()
    assert visitor.switch_to.active_element.get_attribute("id") == "dioa-callback-name"
    assert visitor.find_element(By.ID, "dioa-callback-message").get_attribute("value") == "", "sent, not kept"

    # Sent while the connection is down, then "Keep waiting": it must never go.
    visitor.execute_script(
        "const s = window.dioaChat.socket; s.connectReal = s.connect; s.connect = () => {};"
        "Object.defineProperty(s, 'isOpen', { get: () => false, configurable: true });"
    )
    visitor.find_element(By.ID, "dioa-callback-message").send_keys("Second message")
    visitor.find_element(By.CSS_SELECTOR, ".chat-callback button[type=submit]").click()
    assert visitor.execute_script("return window.dioaChat.state.pendingFrame.type") == "callback.request"
    click(visitor, "#dioa-chat-keep-waiting")
    visitor.execute_script(
        "const s = window.dioaChat.socket; delete s.isOpen; s.connect = s.connectReal;"
        "window.dioaChat.socket.send('ping', {})"
    )
    wait_for_text(visitor, "#dioa-chat-status", "You are number 1 in the queue.")
    assert visitor.execute_script("return window.dioaChat.state.pendingFrame") is None
    assert list(CallbackRequest.objects.values_list("message", flat=True)) == ["First message"]
    assert Conversation.objects.get().status == "waiting"


def wait_for_pong(visitor) -> None:
    """Ping and wait for the pong, which comes back after anything the server sent before it."""
    visitor.execute_script(
        "const chat = window.dioaChat, onPong = chat.onPong.bind(chat);"
        "chat.onPong = (data) => { window.ponged = true; onPong(data); }; chat.socket.send('ping', {})"
    )
    wait(visitor).until(lambda driver: driver.execute_script("return window.ponged") is True)


@pushed_from_the_test_process
def test_a_waiting_resident_is_told_once_when_chat_closes_and_may_leave_a_message(server, council_site, browsers):
    _helper, visitor = helper_online_and_pat_starts(server, council_site, browsers)
    wait_for_text(visitor, "#dioa-chat-status", "You are number 1 in the queue. Estimated wait")
    ClosureDate.objects.create(date=timezone.localdate(), reason="Staff training")

    # assist_sweep's next pass tells the residents waiting.
    services.waiting_residents_update()

    closed = "Webchat has now closed, but an advisor may still answer you. You can leave a message instead."
    wait_for_text(visitor, "#dioa-chat-status", closed)
    wait_for_text(visitor, "#dioa-chat-announcer", "Webchat has now closed")
    assert visitor.find_element(By.ID, "dioa-chat-leave-instead").is_displayed()
    assert Conversation.objects.get().status == "waiting", "still in the queue: an advisor may answer"
    # A configuration that cannot be read (the page's own still says open) leaves what the
    # newer frame said.
    visitor.execute_script(
        "const fetched = window.fetch; window.fetch = async () => new Response('{}', { status: 500 });"
        "return window.dioaChat.loadConfig().finally(() => { window.fetch = fetched; })"
    )
    assert closed in visitor.find_element(By.ID, "dioa-chat-status").text
    # The next pass and a fresh look at the configuration: nothing new, so nothing said again.
    visitor.execute_script("window.dioaChat.announce = (text) => { window.heardAgain = text; }")
    services.waiting_residents_update()
    visitor.execute_script("return window.dioaChat.loadConfig()")
    wait_for_pong(visitor)
    assert visitor.execute_script("return window.heardAgain") is None, "said once"

    # Nor on the site's next page, where the place and the closure come back from the server.
    visitor.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": RECORD_ANNOUNCEMENTS})
    visitor.find_element(By.LINK_TEXT, "Another page").click()
    wait_for_text(visitor, "h1", "Another page")
    wait_for_text(visitor, "#dioa-chat-status", closed)
    wait_for_pong(visitor)
    heard = visitor.execute_script("return window.heard")
    assert not any("queue" in text or "closed" in text for text in heard), heard


def test_a_waiting_resident_whose_server_cannot_push_the_closure_is_told_by_the_widgets_own_check(
    server, council_site, browsers
):
    # One process on the in-memory layer: assist_sweep runs apart and cannot reach the socket.
    _helper, visitor = helper_online_and_pat_starts(server, council_site, browsers)
    wait_for_text(visitor, "#dioa-chat-status", "You are number 1 in the queue. Estimated wait")
    ClosureDate.objects.create(date=timezone.localdate(), reason="Staff training")

    # Two minutes on, the widget asks again whether chat is open.
    visitor.execute_script("window.dioaChat.configLoadedAt -= 2 * 60 * 1000; window.dioaChat.waitTick()")

    wait_for_text(visitor, "#dioa-chat-status", "Webchat has now closed, but an advisor may still answer you.")
    wait_for_text(visitor, "#dioa-chat-announcer", "Webchat has now closed")


def test_a_server_restart_mid_chat_loses_and_duplicates_nothing(server, council_site, browsers, site):
    helper, visitor = helper_online_and_pat_starts(server, council_site, browsers)
    click(helper, "[data-accept]")
    wait_for_text(visitor, "#dioa-chat-status", "You are chatting with Alex.")
    type_message(visitor, "Before the restart")
    wait_for_text(helper, "#conversation-log", "Before the restart")

    type_while_the_server_is_down(server, visitor, "Typed while the server was down")
    conversation = Conversation.objects.get()
    for body in ("Missed one", "Missed two"):
        services.message_create(conversation_id=conversation.pk, author_kind="helper", author=site, body=body)

    restarted = server.start_again()
    try:
        wait_for_text(helper, "#conversation-log", "Typed while the server was down", timeout=40)
        wait_for_text(visitor, "#dioa-chat-status", "You are chatting with Alex.", timeout=40)
        # What was missed is announced once it arrives, both messages, not only the last.
        wait_for_text(visitor, "#dioa-chat-announcer", "Connected again. Alex says: Missed one Alex says: Missed two")
        helper.find_element(By.ID, "compose-message").send_keys("Got it", Keys.ENTER)
        wait_for_text(visitor, ".chat-log", "Got it")
        wait_for_text(helper, "#conversation-log", "Missed two")
        # Read in one step each: the console redraws its log as events arrive.
        visitor_texts = texts_of(visitor, ".chat-log__item")
        helper_texts = texts_of(helper, "#conversation-log li")
        said = list(conversation.messages.exclude(author_kind="system").order_by("seq").values_list("body", flat=True))
        assert sorted(said) == sorted(
            ["Before the restart", "Typed while the server was down", "Missed one", "Missed two", "Got it"]
        ), said
        # Each message once on each screen, in the order the database numbered them.
        for texts in (visitor_texts, helper_texts):
            assert [body for text in texts for body in said if body in text] == said, texts
    finally:
        restarted.stop()


def test_a_queue_place_that_arrives_after_a_helper_took_the_chat_is_ignored(server, council_site, browsers):
    helper, visitor = helper_online_and_pat_starts(server, council_site, browsers)
    click(helper, "[data-accept]")
    wait_for_text(visitor, "#dioa-chat-status", "You are chatting with Alex.")

    # As a `queue.position` read while the chat still waited, delivered after the news.
    visitor.execute_script(
        "window.dioaChat.onPosition({position: 3, estimated_wait_seconds: 540, available: true, reason: null})"
    )

    assert visitor.execute_script("return window.dioaChat.state.queue") is None, "no place kept to count down from"
    assert visitor.find_element(By.ID, "dioa-chat-status").text == "You are chatting with Alex."


def test_a_message_that_arrives_ahead_of_a_missed_one_is_read_out_after_it(
    server, council_site, browsers, site, monkeypatch
):
    helper, visitor = helper_online_and_pat_starts(server, council_site, browsers)
    click(helper, "[data-accept]")
    wait_for_text(visitor, "#dioa-chat-status", "You are chatting with Alex.")
    compose = helper.find_element(By.ID, "compose-message")
    compose.send_keys("Right after it")
    # Stored but never announced (as when the layer drops an event): the resident's widget
    # first hears of the next message, and fetches this one from the database.
    monkeypatch.setattr("config.realtime.group_send", lambda group, event: None)
    conversation = Conversation.objects.get()
    services.message_create(conversation_id=conversation.pk, author_kind="helper", author=site, body="Missed one")
    compose.send_keys(Keys.ENTER)

    wait_for_text(visitor, "#dioa-chat-announcer", "Alex says: Missed one Alex says: Right after it")
    texts = [item.text for item in visitor.find_elements(By.CSS_SELECTOR, ".chat-log__item")]
    assert [i for i, text in enumerate(texts) if "Missed one" in text] < [
        i for i, text in enumerate(texts) if "Right after it" in text
    ], "shown in order too"


def test_the_helper_sees_the_resident_leave_the_page_and_come_back(server, council_site, browsers):
    helper, visitor = helper_online_and_pat_starts(server, council_site, browsers)
    click(helper, "[data-accept]")
    wait_for_text(visitor, "#dioa-chat-status", "You are chatting with Alex.")
    wait_for_text(helper, "#conversation-context", "Has the chat open")

    # Another page of the site: gone for a moment, which the helper is not bothered with.
    visitor.get(council_site)
    wait_for_text(visitor, "#dioa-chat-status", "You are chatting with Alex.")
    time.sleep(6)
    assert "left the page" not in helper.find_element(By.ID, "mine-list").text

    # Off the site: the browser keeps the page whole for its Back button, and its socket
    # would stay open unless the widget closes it.
    visitor.execute_script("window.keptWhole = true")
    visitor.get("about:blank")
    wait_for_text(helper, "#mine-list", "Pat – left the page", timeout=15)
    wait_for_text(helper, "#conversation-context", "Left the chat page at")
    context = helper.find_element(By.ID, "conversation-context").text
    assert re.search(r"Left the chat page at (\d{1,2}(:\d\d)?[ap]m|midday|midnight)\.", context), context
    wait_for_text(helper, "#console-announcer", "Pat has left the chat page.")

    visitor.back()
    wait_for_text(helper, "#conversation-context", "Has the chat open", timeout=15)
    wait_for_text(helper, "#console-announcer", "Pat is back in the chat.")
    assert "left the page" not in helper.find_element(By.ID, "mine-list").text
    wait_for_text(visitor, "#dioa-chat-status", "You are chatting with Alex.")
    assert visitor.execute_script("return window.keptWhole") is True, "the kept page came back, not a new load"


def test_back_to_a_kept_page_from_before_the_chat_shows_the_chat_started_since(server, council_site, browsers):
    helper = browsers()
    sign_in(helper, server)
    visitor = browsers()
    visitor.get(council_site)
    wait(visitor).until(lambda d: d.find_element(By.CSS_SELECTOR, ".chat-launcher").is_displayed())
    visitor.execute_script("window.keptWhole = true")
    pat_starts(visitor, f"{council_site}/other")
    click(helper, "[data-accept]")
    wait_for_text(visitor, "#dioa-chat-status", "You are chatting with Alex.")

    visitor.back()

    assert visitor.execute_script("return window.keptWhole") is True, "the kept page came back, not a new load"
    wait_for_text(visitor, "#dioa-chat-status", "You are chatting with Alex.")
    wait_for_text(helper, "#conversation-context", "Has the chat open", timeout=15)
    helper.find_element(By.ID, "compose-message").send_keys("Still here?", Keys.ENTER)
    wait_for_text(visitor, ".chat-log", "Still here?")


def reply_then_come_back(helper, visitor, council_site, reply: str) -> None:
    """Alex replies while Pat is away from the chat; Pat then opens another page of the
    council's site, whose announcements are recorded (`window.heard`)."""
    helper.find_element(By.ID, "compose-message").send_keys(reply, Keys.ENTER)
    wait(helper).until(lambda d: Message.objects.filter(body=reply).exists())
    visitor.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": RECORD_ANNOUNCEMENTS})
    visitor.get(f"{council_site}/other")


def wait_until_heard(visitor, text: str) -> None:
    wait(visitor).until(lambda d: any(text in heard for heard in d.execute_script("return window.heard")), text)


def test_a_reply_that_lands_between_pages_is_read_out_and_counted_on_the_next(server, council_site, browsers):
    helper, visitor = helper_online_and_pat_starts(server, council_site, browsers)
    click(helper, "[data-accept]")
    wait_for_text(visitor, "#dioa-chat-status", "You are chatting with Alex.")
    helper.find_element(By.ID, "compose-message").send_keys("Which street is it?", Keys.ENTER)
    wait_for_text(visitor, ".chat-log", "Which street is it?")
    click(visitor, ".chat-panel__close")

    # Pat is on another site while Alex replies, then comes back to the council's.
    visitor.get(f"{server.http}/healthz")
    wait_for_text(helper, "#conversation-context", "Left the chat page", timeout=15)
    reply_then_come_back(helper, visitor, council_site, "Are you still there?")

    wait_for_text(visitor, ".chat-launcher", "Chat with an advisor (1 new message)")
    wait_until_heard(visitor, "Are you still there?")
    heard = visitor.execute_script("return window.heard")
    assert not any("Which street is it?" in text for text in heard), "what the last page had is not read again"

    # And the next page still says it is unread, until the panel is opened.
    visitor.find_element(By.LINK_TEXT, "Another page").click()
    wait_for_text(visitor, ".chat-launcher", "Chat with an advisor (1 new message)")
    click(visitor, ".chat-launcher")
    click(visitor, ".chat-panel__close")
    visitor.get(council_site)
    wait(visitor).until(lambda d: d.execute_script("return Boolean(window.dioaChat?.state.token)"), "the same chat")
    assert visitor.find_element(By.CSS_SELECTOR, ".chat-launcher").text == "Chat with an advisor"


@pytest.mark.parametrize(
    ("days_closed", "when"),
    [
        pytest.param(1, lambda opens: f"{opens:%A}", id="tomorrow"),
        # Not "on Wednesday", which would read as this week's.
        pytest.param(8, lambda opens: f"{opens:%A} {opens.day} {opens:%B}", id="a week or more away"),
    ],
)
def test_closed_today_with_no_weekly_hours_says_when_it_opens(server, council_site, browsers, days_closed, when):
    today = timezone.localdate()
    for days in range(days_closed):
        ClosureDate.objects.create(date=today + datetime.timedelta(days=days), reason="Staff training")
    opens = today + datetime.timedelta(days=days_closed)
    visitor = browsers()
    visitor.get(council_site)
    click(visitor, ".chat-launcher")

    wait_for_text(visitor, "#dioa-chat-unavailable-reason", "Webchat is closed at the moment.")
    reason = visitor.find_element(By.ID, "dioa-chat-unavailable-reason").text
    assert reason.endswith(f"We open again on {when(opens)}."), reason
    assert_accessible(visitor, "webchat closed")


def test_with_nobody_available_the_resident_can_leave_a_message(server, council_site, browsers, settings):
    for weekday in range(7):
        OpeningHours.objects.create(weekday=weekday, opens_at=datetime.time(0), closes_at=datetime.time(0))
    ClosureDate.objects.create(date=datetime.date(2030, 12, 25), reason="Christmas Day")
    closure = ClosureDate.objects.create(
        date=timezone.localdate() + datetime.timedelta(days=3), reason="Staff training"
    )
    visitor = browsers()
    visitor.get(council_site)
    click(visitor, ".chat-launcher")
    wait_for_text(visitor, "#dioa-chat-unavailable-reason", "All our advisors are busy or away at the moment.")
    hours = visitor.find_element(By.CSS_SELECTOR, ".chat-hours").text
    assert "Webchat opening hours" in hours
    assert "Monday: all day" in hours, "midnight to midnight"
    assert f"Closed on {closure.date:%A} {closure.date.day} {closure.date:%B} (Staff training)" in hours
    assert "Christmas Day" not in hours, "only the next two weeks' closures"
    # Why chat is unavailable is read first, then the form, next from the keyboard.
    wait(visitor).until(lambda d: d.switch_to.active_element.get_attribute("id") == "dioa-chat-unavailable-reason")
    assert_accessible(visitor, "the leave-a-message form")
    ActionChains(visitor).send_keys(Keys.TAB).perform()
    assert visitor.execute_script("return document.activeElement.closest('.chat-callback') !== null")
    assert (
        "This chat is run by Millbrook District Council."
        in visitor.find_element(By.CSS_SELECTOR, ".chat-callback").text
    )

    # Nothing filled in: GOV.UK's error summary takes focus and links to each field in error,
    # and each field says what is wrong above it.
    visitor.find_element(By.ID, "dioa-callback-phone").send_keys("not a number")
    visitor.find_element(By.CSS_SELECTOR, ".chat-callback button[type=submit]").click()
    wait_for_text(visitor, ".chat-callback .govuk-error-summary", "There is a problem")
    summary = visitor.find_element(By.CSS_SELECTOR, ".chat-callback .govuk-error-summary")
    assert visitor.switch_to.active_element == summary
    assert [link.text for link in summary.find_elements(By.TAG_NAME, "a")] == [
        "Enter your name",
        "Enter a phone number, like 01632 960 001",
        "Enter your message",
    ]
    error = visitor.find_element(By.ID, "dioa-callback-name-error").get_attribute("textContent")
    assert error == "Error: Enter your name", "the prefix is for screen readers"
    assert "dioa-callback-phone-error" in visitor.find_element(By.ID, "dioa-callback-phone").get_attribute(
        "aria-describedby"
    )
    assert_accessible(visitor, "the leave-a-message form with errors")
    summary.find_element(By.LINK_TEXT, "Enter your message").click()
    assert visitor.switch_to.active_element.get_attribute("id") == "dioa-callback-message"
    assert visitor.execute_script("return location.hash") == "", "the host page's address is left alone"

    visitor.find_element(By.ID, "dioa-callback-phone").clear()
    visitor.find_element(By.ID, "dioa-callback-name").send_keys("Pat")
    visitor.find_element(By.ID, "dioa-callback-message").send_keys("Please call me about my bin")
    visitor.find_element(By.CSS_SELECTOR, ".chat-callback button[type=submit]").click()
    wait_for_text(visitor, "#dioa-callback-phone-error", "Enter a phone number or an email address")
    assert not visitor.find_elements(By.ID, "dioa-callback-name-error"), "a corrected field's error goes"
    assert CallbackRequest.objects.count() == 0
    visitor.find_element(By.ID, "dioa-callback-phone").send_keys("01632 960001")
    visitor.find_element(By.CSS_SELECTOR, ".chat-callback button[type=submit]").click()
    wait_for_text(visitor, "#dioa-callback-confirmation", "Your reference is CB-")
    assert_accessible(visitor, "the call-back confirmation")

    callback = CallbackRequest.objects.get()
    assert (callback.name, callback.phone, callback.service.slug) == ("Pat", "01632 960001", "report-missed-bin")


def start_chat_with_a_double_press(visitor, council_site) -> None:
    visitor.get(council_site)
    click(visitor, ".chat-launcher")
    visitor.find_element(By.ID, "dioa-chat-name").send_keys("Pat")
    ActionChains(visitor).double_click(
        visitor.find_element(By.CSS_SELECTOR, ".chat-start button[type=submit]")
    ).perform()


def steps_answered(visitor, site, settings, count: int) -> Conversation:
    """The helper's `count` answers "Step 1." to "Step `count`." in the one chat, written here
    at once (only Redis carries them to the server: `pushed_from_the_test_process`), and seen."""
    conversation = Conversation.objects.get()
    settings.CHAT_MESSAGES_PER_MINUTE = 100
    for number in range(1, count + 1):
        services.message_create(
            conversation_id=conversation.pk, author_kind="helper", author=site, body=f"Step {number}."
        )
    wait_for_text(visitor, ".chat-log", f"Step {count}.")
    return conversation


@pushed_from_the_test_process
def test_a_long_chat_reloaded_with_a_message_typed_offline_delivers_it(server, council_site, browsers, site, settings):
    helper = browsers()
    sign_in(helper, server)
    visitor = browsers()
    # A double press on "Start chat" starts one chat (it used to leave the widget "Connecting…").
    start_chat_with_a_double_press(visitor, council_site)
    wait_for_text(visitor, "#dioa-chat-status", "You are number 1 in the queue.")
    click(helper, "[data-accept]")
    wait_for_text(visitor, "#dioa-chat-status", "You are chatting with Alex.")
    # Forty answers: a reload's snapshot holds them all (it used to send a read mark for each,
    # past the socket's frame limit, so the message resent after them was refused unseen).
    steps_answered(visitor, site, settings, 40)

    type_while_the_server_is_down(server, visitor, "Typed while offline")
    restarted = server.start_again()
    try:
        visitor.refresh()
        wait_for_text(visitor, ".chat-log", "Step 40")
        wait_for_text(helper, "#conversation-log", "Typed while offline", timeout=30)
        wait(visitor).until(
            lambda d: "Sending…" not in d.find_element(By.CSS_SELECTOR, ".chat-log").text, "still sending"
        )
        texts = [item.text for item in visitor.find_elements(By.CSS_SELECTOR, ".chat-log__item")]
        assert sum("Typed while offline" in text for text in texts) == 1
        assert not visitor.find_element(By.ID, "dioa-chat-error").is_displayed(), "no refusal shown"
        # A reload does not pull the keyboard into the chat.
        assert visitor.switch_to.active_element.tag_name == "body"
        assert list(Message.objects.filter(author_kind="visitor").values_list("body", flat=True)) == [
            "Typed while offline"
        ]
        assert Conversation.objects.count() == 1
    finally:
        restarted.stop()


def pat_left_unanswered(server, council_site, browsers, settings):
    """Pat's chat, ended because nobody answered in time, offering to leave a message: her
    browser. The end is pushed from this process, so only with Redis."""
    _helper, visitor = helper_online_and_pat_starts(server, council_site, browsers)
    wait_for_text(visitor, "#dioa-chat-status", "You are number 1 in the queue.")
    later = timezone.now() + datetime.timedelta(minutes=settings.CHAT_WAITING_TIMEOUT_MINUTES + 1)
    assert len(services.conversation_end_expired(now=later)) == 1
    wait_for_text(visitor, "#dioa-chat-unavailable-reason", "No advisor was free to answer in time.")
    return visitor


LOSE_THE_ANSWER_TO_A_MESSAGE_LEFT = """
// The connection goes just as a message left is sent: the message arrives, its answer does not
// (a socket closed by this side hears nothing more).
const send = WebSocket.prototype.send;
WebSocket.prototype.send = function (data) {
  send.call(this, data);
  if (JSON.parse(data).type === "callback.request") {
    WebSocket.prototype.send = send;
    this.close();
  }
};
"""


def test_a_message_left_again_after_its_answer_was_lost_is_kept_once(server, council_site, browsers):
    for weekday in range(7):
        OpeningHours.objects.create(weekday=weekday, opens_at=datetime.time(0), closes_at=datetime.time(0))
    visitor = browsers()
    visitor.get(council_site)
    click(visitor, ".chat-launcher")
    wait_for_text(visitor, "#dioa-chat-unavailable-reason", "All our advisors are busy or away at the moment.")
    fill_in_a_message_to_leave(visitor, "Please call me about my bin")
    visitor.execute_script(LOSE_THE_ANSWER_TO_A_MESSAGE_LEFT)
    send = visitor.find_element(By.CSS_SELECTOR, ".chat-callback button[type=submit]")

    send.click()
    wait(visitor).until(lambda _: CallbackRequest.objects.exists())
    kept = CallbackRequest.objects.get()
    assert not visitor.find_element(By.ID, "dioa-callback-confirmation").is_displayed(), "no answer came"
    send.click()  # so the resident presses Send again

    wait_for_text(visitor, "#dioa-callback-confirmation", f"Your reference is CB-{kept.pk:06d}")
    assert list(CallbackRequest.objects.values_list("pk", flat=True)) == [kept.pk]


def fill_in_a_message_to_leave(visitor, message: str) -> None:
    visitor.find_element(By.ID, "dioa-callback-name").send_keys("Pat")
    visitor.find_element(By.ID, "dioa-callback-phone").send_keys("01632 960001")
    visitor.find_element(By.ID, "dioa-callback-message").send_keys(message)


@pushed_from_the_test_process
def test_a_chat_nobody_answered_offers_to_leave_a_message(server, council_site, browsers, settings):
    visitor = pat_left_unanswered(server, council_site, browsers, settings)

    wait_for_text(visitor, "#dioa-chat-status", "This chat has ended.")
    assert not visitor.find_element(By.CSS_SELECTOR, ".chat-rate").is_displayed(), "nothing to rate"
    assert_accessible(visitor, "a chat nobody answered")
    fill_in_a_message_to_leave(visitor, "Nobody answered, please call")
    visitor.find_element(By.CSS_SELECTOR, ".chat-callback button[type=submit]").click()
    wait_for_text(visitor, "#dioa-callback-confirmation", "Your reference is CB-")
    assert visitor.switch_to.active_element.get_attribute("id") == "dioa-callback-confirmation"
    assert CallbackRequest.objects.get().message == "Nobody answered, please call"


def test_a_waiting_resident_can_leave_a_message_instead_and_stops_waiting(server, council_site, browsers):
    helper, visitor = helper_online_and_pat_starts(server, council_site, browsers)
    wait_for_text(visitor, "#dioa-chat-status", "You are number 1 in the queue.")
    type_message(visitor, "My green bin was missed on Monday")
    wait_for_text(visitor, ".chat-log__item--mine .chat-log__state", "Sent")

    click(visitor, "#dioa-chat-leave-instead")
    wait_for_text(visitor, "#dioa-chat-unavailable-reason", "You keep your place in the queue")
    assert visitor.switch_to.active_element.get_attribute("id") == "dioa-callback-name"
    assert visitor.find_element(By.ID, "dioa-callback-name").get_attribute("value") == "Pat", "what they told us"
    assert not visitor.find_element(By.ID, "dioa-chat-message").is_displayed()
    assert_accessible(visitor, "leaving a message instead of waiting")
    # Changed their mind: back in the queue, which they never left.
    click(visitor, "#dioa-chat-keep-waiting")
    assert visitor.switch_to.active_element.get_attribute("id") == "dioa-chat-leave-instead"
    assert visitor.find_element(By.ID, "dioa-chat-message").is_displayed()
    assert Conversation.objects.get().status == "waiting"

    click(visitor, "#dioa-chat-leave-instead")
    visitor.find_element(By.ID, "dioa-callback-phone").send_keys("01632 960001")
    visitor.find_element(By.ID, "dioa-callback-message").send_keys("Please call me about my bin")
    visitor.find_element(By.CSS_SELECTOR, ".chat-callback button[type=submit]").click()

    wait_for_text(visitor, "#dioa-callback-confirmation", "Your reference is CB-")
    wait_for_text(visitor, "#dioa-chat-status", "This chat has ended.")
    wait_for_text(visitor, "#dioa-chat-unavailable-reason", "You left a message, so you are no longer in the queue.")
    assert visitor.switch_to.active_element.get_attribute("id") == "dioa-callback-confirmation"
    assert not visitor.find_element(By.CSS_SELECTOR, ".chat-rate").is_displayed(), "nobody to rate"
    assert_accessible(visitor, "a message left instead of waiting")
    wait(helper).until(lambda d: not d.find_elements(By.CSS_SELECTOR, "[data-accept]"), "the chat left the queue")
    assert CallbackRequest.objects.get().name == "Pat"
    assert Conversation.objects.get().ended_reason == "left_message"
    # Whoever calls back sees what Pat had already said in the chat.
    wait_for_text(helper, "#callbacks-list", "Please call me about my bin")
    wait_for_text(helper, "#callbacks-list", "Written in the chat before:")
    assert "My green bin was missed on Monday" in helper.find_element(By.ID, "callbacks-list").text
    assert_accessible(helper, "the console with a message left in place of a chat")

    # Another page of the site: no second form, and why the chat ended.
    visitor.find_element(By.LINK_TEXT, "Another page").click()
    wait_for_text(visitor, "h1", "Another page")
    wait_for_text(visitor, "#dioa-chat-unavailable-reason", "You left a message")
    assert not visitor.find_element(By.CSS_SELECTOR, ".chat-callback").is_displayed()


@pushed_from_the_test_process
def test_a_chat_closed_because_the_resident_was_away_says_so(server, council_site, browsers):
    _helper, visitor = helper_online_and_pat_starts(server, council_site, browsers)
    wait_for_text(visitor, "#dioa-chat-status", "You are number 1 in the queue.")

    # As assist_sweep ends it once the resident's page has been closed too long.
    services.conversation_end(conversation_id=Conversation.objects.get().pk, ended_by="system", reason="abandoned")

    wait_for_text(
        visitor,
        "#dioa-chat-unavailable-reason",
        "This chat closed because the website was closed for more than 10 minutes.",
    )
    assert "No advisor was free" not in visitor.find_element(By.CSS_SELECTOR, ".dioa-chat").text


@pytest.mark.parametrize("reloaded", [False, True], ids=["on the same page", "after a reload while offline"])
def test_ending_the_chat_while_offline_still_delivers_what_was_typed_before_it(
    server, council_site, browsers, reloaded
):
    helper, visitor = helper_online_and_pat_starts(server, council_site, browsers)
    click(helper, "[data-accept]")
    wait_for_text(visitor, "#dioa-chat-status", "You are chatting with Alex.")

    type_while_the_server_is_down(server, visitor, "My reference is 123")
    click(visitor, ".chat-compose .govuk-button--warning")
    assert visitor.execute_script("return window.dioaChat.state.pendingFrame.type") == "conversation.end", "held"
    if reloaded:
        # Gone to another page (the same one, reloaded) before the connection came back: the
        # end goes with the chat, as what was typed does.
        visitor.refresh()
    restarted = server.start_again()
    try:
        if reloaded:
            visitor.refresh()
        wait_for_text(visitor, "#dioa-chat-status", "This chat has ended.", timeout=40)
        wait_for_text(helper, "#conversation-log", "My reference is 123", timeout=20)
        # Sent before the end, as typed: it used to go after it and be refused as too late.
        wait(visitor).until(lambda d: "Sending…" not in d.find_element(By.CSS_SELECTOR, ".chat-log").text)
        assert "Not sent" not in visitor.find_element(By.CSS_SELECTOR, ".chat-log").text
        conversation = Conversation.objects.get()
        message = Message.objects.get(body="My reference is 123")
        assert (conversation.status, conversation.ended_by) == ("ended", "visitor")
        assert message.created_at <= conversation.ended_at
    finally:
        restarted.stop()


# The page reports itself hidden while `window.pageHidden` is true, as a locked phone's does.
FAKE_VISIBILITY = """
window.pageHidden = false;
Object.defineProperty(document, "visibilityState", {
  configurable: true,
  get: () => (window.pageHidden ? "hidden" : "visible"),
});
"""


def test_a_reply_that_came_while_the_phone_was_locked_is_marked_read_once_back_online(server, council_site, browsers):
    helper = browsers()
    sign_in(helper, server)
    visitor = browsers()
    visitor.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": FAKE_VISIBILITY})
    pat_starts(visitor, council_site)
    click(helper, "[data-accept]")
    wait_for_text(visitor, "#dioa-chat-status", "You are chatting with Alex.")
    visitor.execute_script("window.pageHidden = true")
    helper.find_element(By.ID, "compose-message").send_keys("Came while locked", Keys.ENTER)
    wait_for_text(visitor, ".chat-log", "Came while locked")
    reply = Message.objects.get(body="Came while locked")
    time.sleep(1)
    assert Conversation.objects.get().visitor_read_seq < reply.seq, "not read while the page is hidden"

    # The phone drops the connection while locked; unlocked, the page is shown before the
    # connection is back, so the read mark cannot go then.
    server.stop()
    wait_for_text(visitor, "#dioa-chat-status", "You are offline")
    visitor.execute_script("window.pageHidden = false; document.dispatchEvent(new Event('visibilitychange'))")
    time.sleep(1)
    restarted = server.start_again()
    try:
        wait_for_text(visitor, "#dioa-chat-status", "You are chatting with Alex.", timeout=40)
        wait(visitor).until(
            lambda _: Conversation.objects.get().visitor_read_seq >= reply.seq, "the read mark goes once served"
        )
    finally:
        restarted.stop()


BLOCK_STORAGE = """
Storage.prototype.setItem = function () {
  throw new DOMException("Storage is blocked on this browser.", "SecurityError");
};
"""


def test_a_browser_that_blocks_storage_can_still_chat_on_the_page(server, council_site, browsers):
    helper = browsers()
    sign_in(helper, server)
    visitor = browsers()
    visitor.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": BLOCK_STORAGE})
    visitor.get(council_site)
    click(visitor, ".chat-launcher")
    wait(visitor).until(lambda d: d.switch_to.active_element.get_attribute("id") == "dioa-chat-name")

    visitor.find_element(By.ID, "dioa-chat-name").send_keys("Pat")
    visitor.find_element(By.CSS_SELECTOR, ".chat-start button[type=submit]").click()
    wait_for_text(visitor, "#dioa-chat-status", "You are number 1 in the queue.")
    click(helper, "[data-accept]")
    wait_for_text(visitor, "#dioa-chat-status", "You are chatting with Alex.")
    type_message(visitor, "Typed with storage blocked")
    wait_for_text(helper, "#conversation-log", "Typed with storage blocked")

    # Back to the page the browser kept: with nothing in storage, its own chat is the truth.
    visitor.execute_script("window.keptWhole = true")
    visitor.get(f"{server.http}/healthz")
    visitor.back()
    wait(visitor).until(lambda d: d.execute_script("return window.keptWhole === true"), "the kept page came back")
    wait_for_text(visitor, "#dioa-chat-status", "You are chatting with Alex.")
    helper.find_element(By.ID, "compose-message").send_keys("Still with you", Keys.ENTER)
    wait_for_text(visitor, ".chat-log", "Still with you")


def test_a_chat_found_gone_while_the_panel_is_closed_leaves_it_closed_back_on_a_kept_page(
    server, council_site, browsers
):
    _, visitor = helper_online_and_pat_starts(server, council_site, browsers)
    wait_for_text(visitor, "#dioa-chat-status", "You are number 1 in the queue.")
    click(visitor, ".chat-panel__close")
    visitor.execute_script("window.keptWhole = true")
    Conversation.objects.all().delete()

    visitor.find_element(By.LINK_TEXT, "Another page").click()
    wait(visitor).until(lambda d: d.execute_script("return window.dioaChat?.state.token === null"), "found gone")
    visitor.back()

    wait(visitor).until(
        lambda d: d.execute_script("return window.keptWhole === true && window.dioaChat.state.token === null"),
        "the kept page came back and took the news",
    )
    assert visitor.find_element(By.CSS_SELECTOR, ".chat-launcher").is_displayed()
    assert not visitor.find_element(By.ID, "dioa-chat-panel").is_displayed()


def chatting_with_the_minutes_messages_used_up(server, council_site, browsers):
    """Pat chatting with Alex, having sent as many messages as a minute allows: Alex's and
    Pat's browsers, and the conversation."""
    helper, visitor = helper_online_and_pat_starts(server, council_site, browsers)
    click(helper, "[data-accept]")
    wait_for_text(visitor, "#dioa-chat-status", "You are chatting with Alex.")
    conversation = Conversation.objects.get()
    for number in range(settings.CHAT_MESSAGES_PER_MINUTE):
        services.message_create(conversation_id=conversation.pk, author_kind="visitor", body=f"Earlier {number + 1}")
    # Loaded again to fetch them: stored by this process, they reach no socket without Redis.
    visitor.refresh()
    wait_for_text(visitor, ".chat-log", f"Earlier {settings.CHAT_MESSAGES_PER_MINUTE}")
    return helper, visitor, conversation


# Whether the chat's message holding the text `arguments[0]` is in view where the log scrolls.
IN_VIEW = """
    const items = [...document.querySelectorAll(".chat-log__item")];
    const reply = items.find((item) => item.innerText.includes(arguments[0]));
    const scrolls = (box) => box.scrollHeight > box.clientHeight && getComputedStyle(box).overflowY !== "visible";
    let box = reply.parentElement;
    while (box && !scrolls(box)) box = box.parentElement;
    const shown = (box || document.documentElement).getBoundingClientRect();
    const seen = reply.getBoundingClientRect();
    return seen.top >= shown.top && seen.bottom <= shown.bottom;
"""


def test_replies_scroll_into_view_below_a_message_that_was_not_sent(server, council_site, browsers, site):
    helper, visitor, _conversation = chatting_with_the_minutes_messages_used_up(server, council_site, browsers)
    # As in browsers that do not keep the view on what it showed (Safari).
    visitor.execute_script(
        "const style = document.createElement('style');"
        "style.textContent = '.dioa-chat, .dioa-chat * { overflow-anchor: none !important; }';"
        "document.head.append(style);"
    )
    type_message(visitor, "One too many")
    wait_for_text(visitor, ".chat-log", "Not sent")
    assert_accessible(visitor, "a message that was not sent")

    compose = helper.find_element(By.ID, "compose-message")
    for reply in ("Slow down, please", "There is a limit a minute", "Try again in a moment"):
        compose.send_keys(reply, Keys.ENTER)
        wait_for_text(visitor, ".chat-log", reply)

    wait(visitor).until(lambda d: d.execute_script(IN_VIEW, "Try again in a moment"), "the last reply is in view")

    # Tried again from the keyboard: the row with the button goes, the keyboard does not.
    visitor.find_element(By.CSS_SELECTOR, ".chat-retry").send_keys(Keys.ENTER)
    wait(visitor).until(lambda d: d.switch_to.active_element.get_attribute("id") == "dioa-chat-message")


@pushed_from_the_test_process
def test_a_resident_reading_earlier_messages_is_not_moved_by_a_new_one(server, council_site, browsers, site, settings):
    helper, visitor = helper_online_and_pat_starts(server, council_site, browsers)
    click(helper, "[data-accept]")
    wait_for_text(visitor, "#dioa-chat-status", "You are chatting with Alex.")
    conversation = steps_answered(visitor, site, settings, 30)
    wait(visitor).until(lambda d: d.execute_script(IN_VIEW, "Step 30."), "the latest message in view")
    assert not visitor.execute_script(IN_VIEW, "Step 1."), "a chat longer than its panel"

    visitor.execute_script("document.getElementById('dioa-chat-body').scrollTop = 0")
    services.message_create(conversation_id=conversation.pk, author_kind="helper", author=site, body="Step 31.")
    wait_for_text(visitor, ".chat-log", "Step 31.")
    wait_for_text(visitor, "#dioa-chat-announcer", "Step 31.")
    assert visitor.execute_script(IN_VIEW, "Step 1."), "left where they were reading"
    assert visitor.execute_script("return document.getElementById('dioa-chat-body').scrollTop") == 0

    # What they send themselves they see sent, and what follows it.
    type_message(visitor, "Thanks, that is clear")
    wait(visitor).until(lambda d: d.execute_script(IN_VIEW, "Thanks, that is clear"), "their own message in view")
    services.message_create(conversation_id=conversation.pk, author_kind="helper", author=site, body="Step 32.")
    wait_for_text(visitor, ".chat-log", "Step 32.")
    wait(visitor).until(lambda d: d.execute_script(IN_VIEW, "Step 32."), "the next message in view")


def test_a_connection_attempt_that_hangs_counts_as_failed_and_is_tried_again(server, council_site, browsers):
    """An attempt made as a phone changes networks can hang until the browser gives up,
    minutes later; the widget would say "Connecting…" all that time."""
    hanging = socket.socket()
    hanging.bind(("127.0.0.1", 0))
    hanging.listen(8)  # The handshake's connection is made, but nothing ever answers it.
    try:
        driver = browsers()
        driver.get(council_site)
        closes = driver.execute_async_script(
            """
            const [moduleUrl, url, done] = arguments;
            (async () => {
              const { FrameSocket } = await import(moduleUrl);
              const closes = [];
              const socket = new FrameSocket({
                url,
                connectTimeoutMs: 500,
                onClose: (event) => {
                  closes.push(event.code);
                  if (closes.length === 2) {
                    socket.close();
                    done(closes);
                  }
                },
              });
              socket.connect();
            })().catch((error) => done(String(error)));
            """,
            f"{server.http}/static/chat/js/socket.js",
            f"ws://127.0.0.1:{hanging.getsockname()[1]}/ws/chat/",
        )
    finally:
        hanging.close()
    assert closes == [4000, 4000], "given up on, and tried again"


def test_an_update_read_before_the_end_but_arriving_after_it_changes_nothing(server, council_site, browsers):
    """Frames from two server processes can cross: the chat must not come back to life."""
    helper, visitor = helper_online_and_pat_starts(server, council_site, browsers)
    click(helper, "[data-accept]")
    wait_for_text(visitor, "#dioa-chat-status", "You are chatting with Alex.")
    active = visitor.execute_script("return structuredClone(window.dioaChat.conversation)")
    click(helper, "#end-conversation")
    wait_for_text(visitor, "#dioa-chat-status", "This chat has ended.")

    visitor.execute_script(
        "const frame = {type: 'conversation.updated', data: {conversation: arguments[0]}};"
        "window.dioaChat.socket.dispatch(JSON.stringify(frame));",
        active,
    )

    assert visitor.execute_script("return window.dioaChat.conversation.status") == "ended"
    assert "This chat has ended." in visitor.find_element(By.ID, "dioa-chat-status").text
    assert not visitor.find_element(By.ID, "dioa-chat-message").is_displayed()


def test_a_token_spoilt_in_storage_starts_again_instead_of_hanging(server, council_site, browsers):
    visitor = browsers()
    visitor.get(council_site)
    visitor.execute_script(
        "sessionStorage.setItem('dioa-chat', JSON.stringify({token: 'x'.repeat(300), open: true, outbox: []}))"
    )
    visitor.refresh()

    wait_for_text(visitor, "#dioa-chat-error", "Your earlier chat has ended or could not be found.")
    assert visitor.execute_script("return window.dioaChat.state.token") is None
    assert "Connecting" not in visitor.find_element(By.ID, "dioa-chat-panel").text


def test_a_first_reply_that_lands_between_pages_is_read_out_and_counted_on_the_next(server, council_site, browsers):
    """Before any message reached the page where the chat started, every one is news."""
    helper, visitor = helper_online_and_pat_starts(server, council_site, browsers)
    wait_for_text(visitor, "#dioa-chat-status", "You are number 1 in the queue.")
    click(visitor, ".chat-panel__close")
    visitor.get(f"{server.http}/healthz")

    click(helper, "[data-accept]")
    wait_for_text(helper, "#conversation-log", "joined the conversation")
    reply_then_come_back(helper, visitor, council_site, "Hello Pat, how can I help?")

    wait_for_text(visitor, ".chat-launcher", "new messages)")
    wait_until_heard(visitor, "Hello Pat, how can I help?")


@pushed_from_the_test_process
def test_a_message_left_offline_for_a_chat_gone_meanwhile_is_sent_and_confirmed(
    server, council_site, browsers, settings
):
    visitor = pat_left_unanswered(server, council_site, browsers, settings)

    server.stop()
    wait_for_text(visitor, "#dioa-chat-status", "You are offline")
    fill_in_a_message_to_leave(visitor, "Nobody answered, please call")
    visitor.find_element(By.CSS_SELECTOR, ".chat-callback button[type=submit]").click()
    assert visitor.execute_script("return window.dioaChat.state.pendingFrame.type") == "callback.request", "held"
    # Offline past the token's lifetime: the chat it was left for can no longer be opened.
    ended_long_ago = timezone.now() - datetime.timedelta(minutes=settings.CHAT_TOKEN_TTL_MINUTES + 1)
    Conversation.objects.update(ended_at=ended_long_ago)

    restarted = server.start_again()
    try:
        wait_for_text(visitor, "#dioa-callback-confirmation", "Your reference is CB-", timeout=40)
        assert visitor.switch_to.active_element.get_attribute("id") == "dioa-callback-confirmation"
        # The chat it was left for is let go of: a new one may be started.
        assert visitor.execute_script("return window.dioaChat.state.token") is None
        assert visitor.find_element(By.CSS_SELECTOR, ".chat-start").is_displayed()
        assert CallbackRequest.objects.get().message == "Nobody answered, please call"
        assert_accessible(visitor, "a message left for a chat found gone, confirmed")
    finally:
        restarted.stop()


FILL_STORAGE = """
// Fills the page's session storage to within a few bytes of its quota.
let index = 0;
for (let size = 1 << 20; size >= 1; size = Math.floor(size / 4)) {
  const filler = "f".repeat(size);
  try {
    for (;;) sessionStorage.setItem(`filler-${index++}`, filler);
  } catch {}
}
"""


def test_a_chat_saved_to_full_storage_leaves_no_older_copy_behind(server, council_site, browsers):
    """The next page would otherwise pick up the older copy and read out again what was heard."""
    helper, visitor = helper_online_and_pat_starts(server, council_site, browsers)
    click(helper, "[data-accept]")
    wait_for_text(visitor, "#dioa-chat-status", "You are chatting with Alex.")
    assert visitor.execute_script('return sessionStorage.getItem("dioa-chat")') is not None

    # A message typed into a connection that died without closing: never sent from here.
    visitor.execute_script("window.WebSocket.prototype.send = function () {}")
    type_message(visitor, "Typed as the line went")
    visitor.execute_script(FILL_STORAGE)
    stored, works, token, heard, outbox = visitor.execute_script(
        """
        const chat = window.dioaChat;
        chat.state.heard = (chat.state.heard || 0) + 1;
        chat.state.draft = "x".repeat(20000);
        chat.save();
        const { token, heard, outbox } = chat.state;
        return [sessionStorage.getItem("dioa-chat"), chat.storageWorks, token, heard, outbox];
        """
    )

    assert works is False
    # Not the older copy, but the chat itself, with what this page has heard and not sent.
    assert [item["body"] for item in outbox] == ["Typed as the line went"]
    said = "You are chatting with Alex."
    expected = {"token": token, "open": True, "heard": heard, "announcedStatus": said, "outbox": outbox, "notSent": []}
    assert json.loads(stored) == expected, stored

    # So the next page of the site still has the chat, and sends the message, once, without
    # saying again what was said.
    visitor.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": RECORD_ANNOUNCEMENTS})
    visitor.get(f"{council_site}/other")
    wait_for_text(visitor, "#dioa-chat-status", said)
    wait_for_text(helper, "#conversation-log", "Typed as the line went")
    assert Message.objects.filter(body="Typed as the line went").count() == 1
    heard_here = visitor.execute_script("return window.heard")
    assert not any(said in text for text in heard_here), heard_here


def test_a_message_not_sent_is_still_offered_again_on_the_next_page(server, council_site, browsers):
    helper, visitor, conversation = chatting_with_the_minutes_messages_used_up(server, council_site, browsers)
    type_message(visitor, "One too many")
    wait(visitor).until(lambda d: d.find_elements(By.CSS_SELECTOR, ".chat-retry"), "refused, with Try again")

    # On another page of the site, before trying again: the words are still there to send.
    visitor.get(f"{council_site}/other")
    wait(visitor).until(lambda d: d.find_elements(By.CSS_SELECTOR, ".chat-retry"), "offered again")
    assert "One too many" in visitor.find_element(By.CSS_SELECTOR, ".chat-log").text
    assert_accessible(visitor, "a message not sent, on the next page")

    # A minute later the limit lets it through.
    Message.objects.filter(conversation=conversation).update(created_at=timezone.now() - datetime.timedelta(minutes=2))
    click(visitor, ".chat-retry")
    wait_for_text(helper, "#conversation-log", "One too many")
    wait(visitor).until(lambda d: "Not sent" not in d.find_element(By.CSS_SELECTOR, ".chat-log").text)
    assert visitor.execute_script("return window.dioaChat.state.notSent") == []
    visitor.refresh()
    wait_for_text(visitor, ".chat-log", "One too many")
    assert not visitor.find_elements(By.CSS_SELECTOR, ".chat-retry"), "sent, so not offered again"


@pushed_from_the_test_process
def test_a_message_being_left_when_the_chat_expires_is_kept_to_send(server, council_site, browsers, settings):
    visitor = pat_left_unanswered(server, council_site, browsers, settings)
    fill_in_a_message_to_leave(visitor, "Still writing this")

    # The page stayed open past the token's lifetime: the next ping finds the chat gone.
    ended_long_ago = timezone.now() - datetime.timedelta(minutes=settings.CHAT_TOKEN_TTL_MINUTES + 1)
    Conversation.objects.update(ended_at=ended_long_ago)
    visitor.execute_script("window.dioaChat.socket.ping()")

    wait(visitor).until(lambda d: d.execute_script("return window.dioaChat.state.token") is None, "let go of")
    assert visitor.find_element(By.ID, "dioa-callback-message").get_attribute("value") == "Still writing this"
    assert visitor.find_element(By.ID, "dioa-callback-message").is_displayed()
    assert visitor.switch_to.active_element.get_attribute("id") == "dioa-callback-message"
    visitor.find_element(By.CSS_SELECTOR, ".chat-callback button[type=submit]").click()
    wait_for_text(visitor, "#dioa-callback-confirmation", "Your reference is CB-")
    assert CallbackRequest.objects.get().message == "Still writing this"


FORMAT_WHEN = """
const done = arguments[arguments.length - 1];
import("/static/chat/js/socket.js").then(({ formatWhen }) => done(arguments[0].map(
  (iso) => formatWhen(iso, { timeZone: "Europe/London", now: new Date(arguments[1]) }),
)));
"""


def test_the_browser_writes_a_moment_as_the_server_does(server, browsers):
    """The console's and the Kiosks page's live updates replace what the server wrote."""
    visitor = browsers()
    visitor.get(f"{server.http}/")
    london = zoneinfo.ZoneInfo("Europe/London")
    now = datetime.datetime(2026, 11, 30, 9, 0, tzinfo=london)
    moments = [
        datetime.datetime(2026, 11, 30, 0, 5, tzinfo=london),
        datetime.datetime(2026, 11, 27, 21, 15, tzinfo=london),
        datetime.datetime(2026, 11, 29, 23, 30, tzinfo=datetime.UTC),
        datetime.datetime(2026, 7, 1, 23, 30, tzinfo=datetime.UTC),
        datetime.datetime(2025, 11, 27, 12, 0, tzinfo=london),
    ]

    written = visitor.execute_async_script(FORMAT_WHEN, [m.isoformat() for m in moments], now.isoformat())

    with timezone.override(london):
        assert written == [when_text(moment, now) for moment in moments]
    assert written[-1] == "Thursday 27 November 2025 at midday"


LINKIFY = """
const done = arguments[arguments.length - 1];
import("/static/chat/js/dom.js").then(({ linkify }) => done(arguments[0].map((text) => linkify(text).map(
  (node) => (node.nodeName === "A" ? { link: node.getAttribute("href"), text: node.textContent } : node.textContent),
))));
"""


def test_only_addresses_that_go_where_they_read_are_made_links(server, browsers):
    visitor = browsers()
    visitor.get(f"{server.http}/")
    texts = [
        "See https://en.wikipedia.org/wiki/Foo_(bar). Thanks",
        "(at https://www.example.gov.uk/bins)",
        "https://www.millbrook.gov.uk@evil.example/pay",
        "https://www.millbrook.g\u043ev.uk/pay now",
        "https://www.example.gov.uk/pay\u202egpj.exe",
        "javascript:alert(1) and http://",
    ]

    shown = visitor.execute_async_script(LINKIFY, texts)

    wiki = "https://en.wikipedia.org/wiki/Foo_(bar)"
    assert shown[0] == ["See ", {"link": wiki, "text": wiki}, ". Thanks"]
    assert shown[1] == [
        "(at ",
        {"link": "https://www.example.gov.uk/bins", "text": "https://www.example.gov.uk/bins"},
        ")",
    ]
    # Elsewhere than they read: left as text.
    assert shown[2] == [texts[2]]
    assert shown[3] == [texts[3]]
    # A direction override ends the address: what follows it is never part of a link.
    pay = "https://www.example.gov.uk/pay"
    assert shown[4] == [{"link": pay, "text": pay}, "\u202egpj.exe"]
    assert shown[5] == [texts[5]]


def test_a_chat_rated_in_another_tab_is_thanked_for_here_too(server, council_site, browsers):
    helper, visitor = helper_online_and_pat_starts(server, council_site, browsers)
    click(helper, "[data-accept]")
    wait_for_text(visitor, "#dioa-chat-status", "You are chatting with Alex.")
    click(helper, "#end-conversation")
    wait_for_text(visitor, "#dioa-chat-status", "This chat has ended.")
    # Rated meanwhile from another tab, which this one never hears of.
    conversation = Conversation.objects.get()
    services.conversation_rate(conversation_id=conversation.pk, rating=4)

    visitor.find_element(By.CSS_SELECTOR, "label[for=dioa-chat-rating-2]").click()
    visitor.find_element(By.CSS_SELECTOR, ".chat-rate button[type=submit]").click()

    wait_for_text(visitor, "#dioa-chat-rated", "Thank you for your feedback.")
    assert not visitor.find_element(By.CSS_SELECTOR, ".chat-rate").is_displayed()
    assert Conversation.objects.get().rating == 4
