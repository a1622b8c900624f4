"""Routing policy: who should take a waiting conversation when routing is automatic.

The console decides *who*; `chat.services.conversation_assign` does the locked write, so a
helper accepting by hand at the same moment still resolves to one winner.
"""

import logging

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError

from agents_console.models import ConsoleSettings, HelperProfile
from agents_console.presence import helper_ids_available, helper_ids_seen_within
from chat import selectors as chat_selectors
from chat import services as chat_services

logger = logging.getLogger(__name__)


def helper_pick_least_busy(*, exclude: set[int] = frozenset()):
    """The available helper with spare capacity holding the fewest conversations, or None."""
    candidates = helper_ids_available() - set(exclude)
    if not candidates:
        return None
    capacity = dict(HelperProfile.objects.filter(user_id__in=candidates).values_list("user_id", "capacity"))
    load = chat_selectors.conversation_active_counts(helper_ids=list(candidates))
    free = [
        (load.get(helper_id, 0), helper_id)
        for helper_id in candidates
        if load.get(helper_id, 0) < capacity.get(helper_id, HelperProfile._meta.get_field("capacity").default)
    ]
    if not free:
        return None
    _load, helper_id = min(free)
    return get_user_model().objects.get(pk=helper_id)


def queue_route_waiting() -> list[int]:
    """With automatic routing, give waiting conversations, oldest first, to free helpers.

    Returns the ids assigned. Safe to call from anywhere at any time: a conversation someone
    takes meanwhile is skipped.
    """
    if ConsoleSettings.load().routing != ConsoleSettings.Routing.AUTOMATIC:
        return []
    assigned = []
    for conversation in chat_selectors.conversation_list_waiting():
        # Not straight back to the helper it left (who did not answer it, or put it back):
        # it would come back to them at every sweep. They may still accept it by hand.
        passed_over = {conversation.released_by_id} - {None}
        helper = helper_pick_least_busy(exclude=passed_over)
        if helper is None:
            if passed_over:
                continue
            break
        try:
            chat_services.conversation_assign(conversation_id=conversation.pk, helper=helper, automatically=True)
        except ValidationError:
            continue
        assigned.append(conversation.pk)
    return assigned


def on_conversation_waiting(sender, **kwargs) -> None:
    queue_route_waiting()


def on_conversation_released(sender, **kwargs) -> None:
    queue_route_waiting()


def queue_requeue_unanswered() -> list[int]:
    """Return unanswered automatic assignments to the queue (then route them again)."""
    return chat_services.conversation_requeue_unanswered(
        answer_within_seconds=ConsoleSettings.load().answer_within_seconds
    )


def queue_requeue_helper_gone() -> list[int]:
    """Return to the queue the conversations of helpers with no console open for
    `requeue_after_seconds` (then route them again)."""
    after = ConsoleSettings.load().requeue_after_seconds
    return chat_services.conversation_requeue_helper_gone(helper_ids_present=lambda: helper_ids_seen_within(after))
