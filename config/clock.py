"""Times as GOV.UK writes them: "9am", "5:30pm", "midday", "midnight".

The same rule as `clockText` in chat/static/chat/js/socket.js, so a time reads the same
whether the server wrote it (a transcript, a page) or the browser did (a live update).
Templates use it as `{% load clock %}{{ value|clock }}`.
"""

import datetime

from django import template
from django.utils import timezone

register = template.Library()


@register.filter(name="clock")
def clock_text(value: datetime.time | datetime.datetime) -> str:
    """`value`'s time of day; a datetime is read in the current time zone first."""
    if isinstance(value, datetime.datetime):
        value = timezone.localtime(value)
    if value.minute == 0 and value.hour in (0, 12):
        return "midnight" if value.hour == 0 else "midday"
    hour = value.hour % 12 or 12
    suffix = "am" if value.hour < 12 else "pm"
    return f"{hour}{suffix}" if value.minute == 0 else f"{hour}:{value.minute:02d}{suffix}"


@register.filter(name="when")
def when_text(value: datetime.datetime, now: datetime.datetime | None = None) -> str:
    """A moment as the console writes it, in the current time zone: "9:15pm" today, "Friday 27
    November at 9:15pm" on another day of this year, "Thursday 27 November 2025 at 9:15pm"
    in another year. `formatWhen` in socket.js writes the same."""
    value = timezone.localtime(value)
    today = timezone.localtime(now).date() if now else timezone.localdate()
    if value.date() == today:
        return clock_text(value)
    year = f" {value.year}" if value.year != today.year else ""
    return f"{value:%A} {value.day} {value:%B}{year} at {clock_text(value)}"


def hours_text(opens: datetime.time, closes: datetime.time) -> str:
    """A day's opening hours: "9am to 5pm", "9am to midnight", "10pm to 2am the next day", or
    "all day" (midnight to midnight). A closing time at or before the opening is the next day's."""
    if opens == closes == datetime.time(0):
        return "all day"
    text = f"{clock_text(opens)} to {clock_text(closes)}"
    # Closing at midnight ends the same day, as readers take "to midnight".
    return text + " the next day" if closes <= opens and closes != datetime.time(0) else text


def date_text(value: datetime.date) -> str:
    """For example "5 November 2026"; a datetime is read in the current time zone first."""
    if isinstance(value, datetime.datetime):
        value = timezone.localtime(value)
    return f"{value.day} {value:%B %Y}"


def date_time_text(value: datetime.datetime) -> str:
    """For example "5 November 2026 at 5:30pm", in the current time zone."""
    return f"{date_text(value)} at {clock_text(value)}"
