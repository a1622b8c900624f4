"""The one place the apps touch the channel layer from synchronous code.

Events are sent after the surrounding transaction commits: the database is the source of
truth and the layer is transport, so nothing is announced that might still roll back.
"""

import contextlib
import logging
from collections.abc import Iterable, Iterator
from contextvars import ContextVar
from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import transaction

logger = logging.getLogger(__name__)

# Events committed by a service that a consumer runs in a worker thread: the consumer's event
# loop sends them when the service returns. Sending from the worker instead would hold it
# (and the database connection it took) while it waits for the loop, once per event.
_held_events: ContextVar[list[tuple[str, dict[str, Any]]] | None] = ContextVar("held_events", default=None)


def group_send(group: str, event: dict[str, Any]) -> None:
    """Deliver one event to one group. The single place chat touches the channel layer.

    Inside `events_sent_on_return` the event waits for the calling coroutine; elsewhere (HTTP
    views, commands) it is sent now.
    """
    held = _held_events.get()
    if held is not None:
        held.append((group, event))
        return
    async_to_sync(get_channel_layer().group_send)(group, event)


@contextlib.contextmanager
def events_sent_on_return() -> Iterator[list[tuple[str, dict[str, Any]]]]:
    """Hold the events that synchronous code run from here commits; send them with `send_held`."""
    held: list[tuple[str, dict[str, Any]]] = []
    token = _held_events.set(held)
    try:
        yield held
    finally:
        _held_events.reset(token)


async def send_held(held: list[tuple[str, dict[str, Any]]]) -> None:
    """Send held events in the order they were committed."""
    layer = get_channel_layer()
    for group, event in held:
        try:
            await layer.group_send(group, event)
        except Exception:
            # As in `broadcast`: committed already, and clients resume from the database.
            logger.exception("broadcast of %s to %s failed", event["type"], group)


def broadcast(*, groups: Iterable[str], event_type: str, **payload: Any) -> None:
    """Send an event to each group once the current transaction commits.

    Nothing is announced that the database might still roll back; a client that misses the
    event because the layer dropped it recovers it from the database on resume.
    """
    event = {"type": event_type, **payload}
    targets = list(groups)

    def send() -> None:
        for group in targets:
            try:
                group_send(group, event)
            except Exception:
                # The write has committed; the layer is transport only. Clients resume from
                # the database, so a failed send loses nothing.
                logger.exception("broadcast of %s to %s failed", event_type, group)

    transaction.on_commit(send)
