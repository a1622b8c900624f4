"""The browser tests' own waiting, without a browser: what it asks again and what it reports."""

import pytest
from selenium.common.exceptions import TimeoutException, WebDriverException

from tests.e2e.browser import NODE_OF_A_REPLACED_PAGE, wait


def replies(*outcomes):
    """A condition that gives each outcome in turn (raising the exceptions among them)."""
    pending = list(outcomes)

    def condition(_driver):
        outcome = pending.pop(0)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    return condition


def test_an_element_read_as_its_page_was_replaced_is_asked_again():
    replaced = WebDriverException(f"unknown error: Node with given id {NODE_OF_A_REPLACED_PAGE}")

    assert wait(object(), timeout=2).until(replies(replaced, "the new page's heading")) == "the new page's heading"


def test_any_other_browser_error_fails_the_wait_at_once():
    with pytest.raises(WebDriverException, match="chrome not reachable"):
        wait(object(), timeout=2).until(replies(WebDriverException("chrome not reachable"), True))


def test_a_condition_never_met_still_times_out():
    with pytest.raises(TimeoutException):
        wait(object(), timeout=0.3).until(lambda _driver: False)
