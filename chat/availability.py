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


# How far ahead a closed chat looks for its next opening, and so which closures it reads.
DAYS_AHEAD = 15


@dataclass(frozen=True)
class Schedule:
    """What decides when chat is open around one day: the weekly hours, and the closures from
    the day before (a closure keeps its night shut past midnight) to DAYS_AHEAD days after."""

    hours: list[OpeningHours]
    closures: list[ClosureDate]


def schedule_around(day: datetime.date) -> Schedule:
    return Schedule(
        hours=list(OpeningHours.objects.all()),
        closures=list(
            ClosureDate.objects.filter(
                date__gte=day - datetime.timedelta(days=1), date__lte=day + datetime.timedelta(days=DAYS_AHEAD)
            )
        ),
    )


@dataclass(frozen=True)
class Availability:
    available: bool
    # "closed" (outside opening hours or a closure date), "no_helpers", or None.
    reason: str | None
    next_open: datetime.datetime | None
    # The closure date keeping it closed now, if one is: yesterday's, in a night that began on it.
    closure: datetime.date | None = None


def _started_covering(
    moment: datetime.datetime, hours: list[OpeningHours], days: list[datetime.date]
) -> datetime.date | None:
    """The first of `days` on which a row starts whose hours cover `moment`."""
    for day in days:
        for h in hours:
            if h.weekday == day.weekday():
                opens, closes = h.span_from(day, moment.tzinfo)
                if opens <= moment < closes:
                    return day
    return None


def _open_at(moment: datetime.datetime, hours: list[OpeningHours], closed_dates: set[datetime.date]) -> bool:
    """Whether a row's hours cover `moment` (local time): one of its day's, or one of the day
    before's that runs past midnight. A closure date closes its whole calendar day, and a row
    starting on it does not open the small hours after it either."""
    today = moment.date()
    if today in closed_dates:
        return False
    started_on = [day for day in (today, today - datetime.timedelta(days=1)) if day not in closed_dates]
    return _started_covering(moment, hours, started_on) is not None


def _closure_in_force(
    moment: datetime.datetime, hours: list[OpeningHours], closed_dates: set[datetime.date]
) -> datetime.date | None:
    today = moment.date()
    yesterday = today - datetime.timedelta(days=1)
    if today in closed_dates:
        return today
    if yesterday in closed_dates and _started_covering(moment, hours, [yesterday]):
        return yesterday
    return None


def _next_opening(moment: datetime.datetime, hours: list[OpeningHours], closed_dates: set[datetime.date]):
    for days_ahead in range(DAYS_AHEAD):
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


def chat_availability(*, now: datetime.datetime | None = None, schedule: Schedule | None = None) -> Availability:
    """Open if the weekly hours (none configured means always) and closures allow it and a
    helper is online. `schedule`, if the caller has read it, must be `schedule_around` today."""
    moment = timezone.localtime(now or timezone.now())
    schedule = schedule or schedule_around(moment.date())
    hours = schedule.hours
    closed_dates = {closure.date for closure in schedule.closures}
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
