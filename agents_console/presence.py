"""Who has the console open and in what state, across every server process, in the database.

A helper is online while one of their console sockets has pinged within the heartbeat and
is open, or closed less than the grace period ago. Their presence is then the status they
chose (available, busy, away); otherwise offline. Nothing here needs a timer: presence is
derived from rows each time it is asked for.
"""

import datetime

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from agents_console import events
from agents_console.models import ConsoleConnection, ConsoleSettings, HelperProfile

# Console sockets ping every 25 seconds; three missed pings and the connection stops counting.
CONNECTION_FRESH_SECONDS = 90
OFFLINE = "offline"


def _helper_ids_connected(
    *, grace_seconds: int, silent_seconds: int = CONNECTION_FRESH_SECONDS, now: datetime.datetime | None = None
) -> set[int]:
    """Helpers with a console connection that has pinged within `silent_seconds` and is open,
    or closed less than `grace_seconds` ago."""
    now = now or timezone.now()
    pinged = now - datetime.timedelta(seconds=silent_seconds)
    closed_recently = now - datetime.timedelta(seconds=grace_seconds)
    connected = Q(last_seen_at__gte=pinged) & (Q(closed_at__isnull=True) | Q(closed_at__gte=closed_recently))
    return set(ConsoleConnection.objects.filter(connected).values_list("helper_id", flat=True))


def helper_ids_online(*, now: datetime.datetime | None = None) -> set[int]:
    return _helper_ids_connected(grace_seconds=ConsoleSettings.load().presence_grace_seconds, now=now)


def helper_ids_seen_within(seconds: int, *, now: datetime.datetime | None = None) -> set[int]:
    """Helpers with a console open, or closed or silent for less than `seconds`: those whose
    chats are still theirs (`ConsoleSettings.requeue_after_seconds`). A console silent for
    less than the heartbeat counts as it does for presence."""
    return _helper_ids_connected(grace_seconds=seconds, silent_seconds=max(seconds, CONNECTION_FRESH_SECONDS), now=now)


def helper_profile(user: AbstractBaseUser) -> HelperProfile:
    profile, _created = HelperProfile.objects.get_or_create(user=user)
    return profile


def helper_presence(*, user: AbstractBaseUser, now: datetime.datetime | None = None) -> str:
    """available, busy, away, or offline."""
    if user.pk not in helper_ids_online(now=now):
        return OFFLINE
    return helper_profile(user).status


def helper_ids_available(*, now: datetime.datetime | None = None) -> set[int]:
    """Online helpers whose chosen status is available."""
    online = helper_ids_online(now=now)
    busy_or_away = set(
        HelperProfile.objects.filter(user_id__in=online)
        .exclude(status=HelperProfile.Status.AVAILABLE)
        .values_list("user_id", flat=True)
    )
    return online - busy_or_away


def helpers_available(*, now: datetime.datetime | None = None) -> bool:
    """True when at least one helper is online and available: residents can then chat."""
    return bool(helper_ids_available(now=now))


def console_connection_open(*, channel_name: str, helper_id: int) -> None:
    now = timezone.now()
    was_online = helper_id in helper_ids_online(now=now)
    ConsoleConnection.objects.update_or_create(
        channel_name=channel_name, defaults={"helper_id": helper_id, "last_seen_at": now, "closed_at": None}
    )
    # Rows left by processes that died, or closed long ago, no longer count; tidy them away.
    ConsoleConnection.objects.filter(last_seen_at__lt=now - datetime.timedelta(hours=1)).delete()
    if not was_online:
        events.broadcast_presence_changed()


def console_connection_seen(*, channel_name: str) -> None:
    ConsoleConnection.objects.filter(channel_name=channel_name).update(last_seen_at=timezone.now())


@transaction.atomic
def console_connection_close(*, channel_name: str) -> None:
    ConsoleConnection.objects.filter(channel_name=channel_name).update(closed_at=timezone.now())


@transaction.atomic
def helper_status_set(*, user: AbstractBaseUser, status: str) -> HelperProfile:
    profile = helper_profile(user)
    profile.status = status
    profile.status_changed_at = timezone.now()
    profile.save(update_fields=["status", "status_changed_at"])
    events.broadcast_presence_changed()
    return profile
