"""Times as GOV.UK writes them, the same on the server as in the browser (socket.js)."""

import datetime
import zoneinfo

import pytest
from django.template import Context, Template

from config.clock import clock_text, date_text, date_time_text, when_text

LONDON = zoneinfo.ZoneInfo("Europe/London")


@pytest.mark.parametrize(
    ("hour", "minute", "text"),
    [
        (9, 0, "9am"),
        (17, 30, "5:30pm"),
        (12, 0, "midday"),
        (0, 0, "midnight"),
        (0, 5, "12:05am"),
        (12, 30, "12:30pm"),
        (23, 59, "11:59pm"),
    ],
)
def test_a_time_of_day(hour, minute, text):
    assert clock_text(datetime.time(hour, minute)) == text


def test_a_moment_is_read_in_the_councils_time_zone():
    # 16:30 UTC in summer is 5:30pm in London; in winter it is 4:30pm.
    assert clock_text(datetime.datetime(2026, 7, 1, 16, 30, tzinfo=datetime.UTC)) == "5:30pm"
    assert clock_text(datetime.datetime(2026, 12, 1, 16, 30, tzinfo=datetime.UTC)) == "4:30pm"
    assert date_time_text(datetime.datetime(2026, 11, 5, 12, 0, tzinfo=LONDON)) == "5 November 2026 at midday"
    # Half past midnight in London on 2 July is still 1 July in UTC.
    assert date_text(datetime.datetime(2026, 7, 1, 23, 30, tzinfo=datetime.UTC)) == "2 July 2026"
    assert date_text(datetime.date(2026, 7, 1)) == "1 July 2026"


def test_a_moment_on_another_day_says_which():
    now = datetime.datetime(2026, 11, 30, 9, 0, tzinfo=LONDON)
    assert when_text(datetime.datetime(2026, 11, 30, 0, 5, tzinfo=LONDON), now) == "12:05am"
    assert when_text(datetime.datetime(2026, 11, 27, 21, 15, tzinfo=LONDON), now) == "Friday 27 November at 9:15pm"
    # 23:30 UTC on 29 November is still 29 November in London (GMT), not "today".
    assert when_text(datetime.datetime(2026, 11, 29, 23, 30, tzinfo=datetime.UTC), now).startswith("Sunday 29")
    assert when_text(datetime.datetime(2025, 11, 27, 9, 0, tzinfo=LONDON), now) == "Thursday 27 November 2025 at 9am"


def test_templates_load_it_as_a_filter():
    moment = datetime.datetime(2026, 11, 30, 9, 15, tzinfo=LONDON)
    rendered = Template("{% load clock %}{{ moment|clock }}").render(Context({"moment": moment}))
    assert rendered == "9:15am"
