"""The one place the apps touch the channel layer from synchronous code.

Events are sent after the surrounding transaction commits: the database is the source of
truth and the layer is transport, so nothing is announced that might still roll back.
"""

import logging
from collections.abc import Iterable
from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import transaction

logger = logging.getLogger(__name__)


def group_send(group: str, event: dict[str, Any]) -> None:
    """Deliver one event to one group now. The single place chat touches the channel layer."""
    async_to_sync(get_channel_layer().group_send)(group, event)


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
