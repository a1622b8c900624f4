"""The whole loop in two real browsers, and axe-core on every page it passes through."""

import importlib
from concurrent.futures import ThreadPoolExecutor

import pytest
from asgiref.sync import SyncToAsync
from channels.layers import channel_layers
from channels.testing import ChannelsLiveServerTestCase
from daphne.testing import DaphneProcess
from django.apps import apps
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db import connections
from django.utils import timezone
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys

from agents_console.models import AssistedTransaction, ConsoleConnection
from chat.models import Message
from kiosk.models import Service, ServiceCategory
from tests.e2e import browser
from tests.e2e.browser import click, require_browser, wait, wait_for_text

pytestmark = pytest.mark.browser


class ForkedDaphneProcess(DaphneProcess):
    """Daphne in a forked child, cleared of what the fork copied but cannot use.

    Earlier async tests in this process leave asgiref's worker-thread executor (its thread
    does not survive the fork, so database work would wait forever), a channel layer whose
    queues belong to their closed event loops, and database connections.
    """

    def run(self):
        SyncToAsync.single_thread_executor = ThreadPoolExecutor(max_workers=1)
        channel_layers.backends.clear()
        # Nor may it share the parent's database sockets: forget (never close, which would
        # end them for the parent too) the inherited connections and PostgreSQL pool.
        for connection in connections.all(initialized_only=True):
            connection.connection = None
        if hasattr(type(connections["default"]), "_connection_pools"):
            type(connections["default"])._connection_pools.clear()
        super().run()


class BrowserTestCase(ChannelsLiveServerTestCase):
    host = "127.0.0.1"
    ProtocolServerProcess = ForkedDaphneProcess

    def setUp(self):
        require_browser()
        importlib.import_module("agents_console.migrations.0002_roles").create_roles(apps, None)
        category = ServiceCategory.objects.create(name="Bins and recycling", slug="bins")
        self.service = Service.objects.create(
            name="Report a missed bin collection",
            slug="report-missed-bin",
            category=category,
            url="/services/report-missed-bin/",
            kiosk_allowed=True,
        )
        self.advisor = get_user_model().objects.create_user(
            username="alex", password="alex-password-123", first_name="Alex"
        )
        self.advisor.groups.add(Group.objects.get(name="advisor"))
        # A helper has the console open somewhere, so the widget offers a chat.
        ConsoleConnection.objects.create(channel_name="e2e-helper", helper=self.advisor, last_seen_at=timezone.now())

    @pytest.fixture(autouse=True)
    def use_the_browsers_fixture(self, browsers):
        """Browsers from the shared pool, kept (a screenshot) and closed if the test fails."""
        self.browser = browsers

    def sign_in(self, driver):
        browser.sign_in(driver, self.live_server_url, "alex", "alex-password-123")
        wait_for_text(driver, "#console-connection", "Connected")

    def open_widget_and_start(self, driver, name="Pat"):
        driver.get(f"{self.live_server_url}/")
        click(driver, ".chat-launcher")
        driver.find_element(By.ID, "dioa-chat-name").send_keys(name)
        driver.find_element(By.CSS_SELECTOR, ".chat-start button[type=submit]").click()
        wait_for_text(driver, "#dioa-chat-status", "in the queue")


class WalkingSkeletonTests(BrowserTestCase):
    def test_visitor_and_advisor_chat_end_to_end_and_the_wrap_up_is_logged(self):
        visitor = self.browser()
        helper = self.browser()
        self.sign_in(helper)

        self.open_widget_and_start(visitor)
        visitor.find_element(By.ID, "dioa-chat-message").send_keys("My bin was not collected", Keys.ENTER)
        wait_for_text(visitor, ".chat-log", "Sent")

        wait_for_text(helper, "#queue-list", "Pat")
        self.assertEqual(helper.title.split(")")[0], "(1")
        click(helper, "[data-accept]")
        wait_for_text(helper, "#conversation-log", "My bin was not collected")
        wait_for_text(visitor, "#dioa-chat-status", "You are chatting with Alex")

        helper.find_element(By.ID, "compose-message").send_keys("I can help with that. What is your postcode?")
        helper.find_element(By.CSS_SELECTOR, "#compose-form button[type=submit]").click()
        wait_for_text(visitor, ".chat-log", "What is your postcode?")
        wait_for_text(visitor, "#dioa-chat-announcer", "Alex says: I can help with that.")

        visitor.find_element(By.ID, "dioa-chat-message").send_keys("MB1 2CD", Keys.ENTER)
        wait_for_text(helper, "#conversation-log", "MB1 2CD")

        click(helper, "#end-conversation")
        wait_for_text(visitor, "#dioa-chat-status", "This chat has ended")
        wait_for_text(helper, "#conversation-ended", "This conversation has ended")
        click(helper, "#wrap-up-link")
        wait_for_text(helper, "h1", "Log what was done")
        browser.assert_accessible(helper, "the wrap-up form")

        for selector in ("#id_outcome_1", "#id_barriers_2", "#id_typed_by_0", "#id_can_do_alone_next_time_1"):
            helper.find_element(By.CSS_SELECTOR, selector).click()
        helper.find_element(By.CSS_SELECTOR, f"input[name=services][value='{self.service.pk}']").click()
        helper.find_element(By.CSS_SELECTOR, "#wrap-up-form button[type=submit]").click()
        wait_for_text(helper, ".govuk-notification-banner", "has been logged")

        record = AssistedTransaction.objects.get()
        self.assertEqual(record.helper, self.advisor)
        self.assertEqual(record.outcome, "done_with_guidance")
        self.assertTrue(record.barrier_confidence)
        self.assertEqual(list(record.services.all()), [self.service])
        self.assertEqual(
            list(Message.objects.filter(author_kind__in=["visitor", "helper"]).values_list("body", flat=True)),
            ["My bin was not collected", "I can help with that. What is your postcode?", "MB1 2CD"],
        )

    def test_a_page_reload_resumes_the_conversation_without_duplicates(self):
        visitor = self.browser()
        self.open_widget_and_start(visitor)
        visitor.find_element(By.ID, "dioa-chat-message").send_keys("First message", Keys.ENTER)
        wait_for_text(visitor, ".chat-log", "Sent")

        visitor.refresh()
        wait_for_text(visitor, ".chat-log", "First message")
        wait_for_text(visitor, "#dioa-chat-status", "in the queue")
        items = visitor.find_elements(By.CSS_SELECTOR, ".chat-log__item")
        self.assertEqual([item.text.count("First message") for item in items], [1])
        self.assertEqual(Message.objects.count(), 1)


class AccessibilityTests(BrowserTestCase):
    def test_demo_page_with_the_widget_open_has_no_violations(self):
        visitor = self.browser()
        visitor.get(f"{self.live_server_url}/")
        wait(visitor).until(lambda d: d.find_element(By.CSS_SELECTOR, ".chat-launcher"))
        browser.assert_accessible(visitor, "the demo page with the widget closed")
        click(visitor, ".chat-launcher")
        self.assertEqual(visitor.switch_to.active_element.get_attribute("id"), "dioa-chat-name")
        browser.assert_accessible(visitor, "the demo page with the widget open")
        visitor.find_element(By.CSS_SELECTOR, ".chat-start button[type=submit]").click()
        wait_for_text(visitor, "#dioa-chat-status", "in the queue")
        visitor.find_element(By.ID, "dioa-chat-message").send_keys("Hello", Keys.ENTER)
        wait_for_text(visitor, ".chat-log", "Sent")
        browser.assert_accessible(visitor, "the widget in a conversation")

    def test_console_queue_has_no_violations(self):
        visitor = self.browser()
        helper = self.browser()
        self.sign_in(helper)
        browser.assert_accessible(helper, "the empty console")
        self.open_widget_and_start(visitor)
        wait_for_text(helper, "#queue-list", "Pat")
        browser.assert_accessible(helper, "the console with a waiting resident")
        click(helper, "[data-accept]")
        wait_for_text(helper, "#conversation-log", "joined the conversation")
        browser.assert_accessible(helper, "the console with an open conversation")

    def test_kiosk_pairing_and_sign_in_pages_have_no_violations(self):
        driver = self.browser()
        # An unenrolled browser gets the pairing screen, never the launcher (tests/e2e/test_kiosk.py).
        driver.get(f"{self.live_server_url}/kiosk/")
        wait_for_text(driver, "h1", "This kiosk is not set up yet")
        self.assertNotIn("Report a missed bin collection", driver.page_source)
        browser.assert_accessible(driver, "the kiosk pairing page")
        driver.get(f"{self.live_server_url}/accounts/login/")
        driver.find_element(By.CSS_SELECTOR, "form button[type=submit]").click()
        wait_for_text(driver, ".govuk-error-summary", "There is a problem")
        browser.assert_accessible(driver, "the sign-in page with errors")

    def test_the_widget_works_at_320_pixels_wide(self):
        driver = self.browser()
        driver.execute_cdp_cmd(
            "Emulation.setDeviceMetricsOverride", {"width": 320, "height": 640, "deviceScaleFactor": 2, "mobile": True}
        )
        driver.get(f"{self.live_server_url}/")
        click(driver, ".chat-launcher")
        self.assertEqual(driver.execute_script("return window.innerWidth"), 320)
        panel = driver.find_element(By.ID, "dioa-chat-panel")
        self.assertGreaterEqual(panel.rect["x"], 0)
        self.assertLessEqual(panel.rect["x"] + panel.rect["width"], 320)
        self.assertLessEqual(driver.execute_script("return document.documentElement.scrollWidth"), 320)
        browser.assert_accessible(driver, "the widget at 320 px")
