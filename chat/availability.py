"""Whether the webchat can take a new conversation: opening hours, closures, helpers online.

Who is online is the advisor console's business; it registers a provider at start-up so that
chat, a lower app, never imports it.
"""

import datetime
from collections.abc import Callable
from dataclasses import dataclass

from django.utils import timezone

from chat.models import ClosureDate, OpeningHours

_helper_available: Callable[[], bool] | None = None


def register_helper_availability(provider: Callable[[], bool]) -> None:
    global _helper_available
    _helper_available = provider


@dataclass(frozen=True)
class Availability:
    available: bool
    # "closed" (outside opening hours or a closure date), "no_helpers", or None.
    reason: str | None
    next_open: datetime.datetime | None
    # The closure date keeping it closed now, if one is: yesterday's, in a night that began on it.
    closure: datetime.date | None = None


def _open_at(moment: datetime.datetime, hours: list[OpeningHours], closed_dates: set[datetime.date]) -> bool:
    """Whether a row's hours cover `moment` (local time): one of its day's, or one of the day
    before's that runs past midnight. A closure date closes its whole calendar day, and a row
    starting on it does not open the small hours after it either."""
    if moment.date() in closed_dates:
        return False
    today = moment.date()
    started_on = [day for day in (today, today - datetime.timedelta(days=1)) if day not in closed_dates]
    for h in hours:
        for day in started_on:
            if h.weekday == day.weekday():
                opens, closes = h.span_from(day, moment.tzinfo)
                if opens <= moment < closes:
                    return True
    return False


def _closure_in_force(
    moment: datetime.datetime, hours: list[OpeningHours], closed_dates: set[datetime.date]
) -> datetime.date | None:
    today = moment.date()
    yesterday = today - datetime.timedelta(days=1)
    if today in closed_dates:
        return today
    for h in hours:
        if yesterday in closed_dates and h.weekday == yesterday.weekday():
            opens, closes = h.span_from(yesterday, moment.tzinfo)
            if opens <= moment < closes:
                return yesterday
    return None


def _next_opening(moment: datetime.datetime, hours: list[OpeningHours], closed_dates: set[datetime.date]):
    for days_ahead in range(15):
        day = moment.date() + datetime.timedelta(days=days_ahead)
        if day in closed_dates:
            continue
        if not hours and days_ahead:
            # No weekly hours: open all day, every day but the closures.
            return timezone.make_aware(datetime.datetime.combine(day, datetime.time()), moment.tzinfo)
        for h in sorted((h for h in hours if h.weekday == day.weekday()), key=lambda h: h.opens_at):
            opens, _closes = h.span_from(day, moment.tzinfo)
            if opens > moment:
                return opens.astimezone(moment.tzinfo)
    return None


def chat_availability(*, now: datetime.datetime | None = None) -> Availability:
    """Open if the weekly hours (none configured means always) and closures allow it and a
    helper is online."""
    moment = timezone.localtime(now or timezone.now())
    hours = list(OpeningHours.objects.all())
    # From yesterday: a closure then keeps its night shut past midnight.
    closed_dates = set(
        ClosureDate.objects.filter(
            date__gte=moment.date() - datetime.timedelta(days=1), date__lte=moment.date() + datetime.timedelta(days=15)
        ).values_list("date", flat=True)
    )
    if (hours and not _open_at(moment, hours, closed_dates)) or (not hours and moment.date() in closed_dates):
        return Availability(
            available=False,
            reason="closed",
            next_open=_next_opening(moment, hours, closed_dates),
            closure=_closure_in_force(moment, hours, closed_dates),
        )
    if _helper_available is not None and not _helper_available():
        return Availability(available=False, reason="no_helpers", next_open=None)
    return Availability(available=True, reason=None, next_open=None)
