"""Who has the console open, across every server process, kept in the database."""

import datetime

from django.db import transaction
from django.utils import timezone

from agents_console.models import ConsoleConnection

# Console sockets ping every 25 seconds; three missed pings and the connection stops counting.
CONNECTION_FRESH_SECONDS = 90


def _fresh_since(now: datetime.datetime) -> datetime.datetime:
    return now - datetime.timedelta(seconds=CONNECTION_FRESH_SECONDS)


def console_connection_open(*, channel_name: str, helper_id: int) -> None:
    now = timezone.now()
    ConsoleConnection.objects.update_or_create(
        channel_name=channel_name, defaults={"helper_id": helper_id, "last_seen_at": now}
    )
    # Rows left by processes that died are no longer fresh; sweep a few on the way.
    ConsoleConnection.objects.filter(last_seen_at__lt=_fresh_since(now) - datetime.timedelta(hours=1)).delete()


def console_connection_seen(*, channel_name: str) -> None:
    ConsoleConnection.objects.filter(channel_name=channel_name).update(last_seen_at=timezone.now())


@transaction.atomic
def console_connection_close(*, channel_name: str) -> None:
    ConsoleConnection.objects.filter(channel_name=channel_name).delete()


def helpers_online(*, now: datetime.datetime | None = None) -> bool:
    """True when at least one helper has a console open."""
    return ConsoleConnection.objects.filter(last_seen_at__gte=_fresh_since(now or timezone.now())).exists()
