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


def date_time_text(value: datetime.datetime) -> str:
    """For example "5 November 2026 at 5:30pm", in the current time zone."""
    value = timezone.localtime(value)
    return f"{value.day} {value:%B %Y} at {clock_text(value)}"
