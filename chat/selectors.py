"""Reads of conversations and messages."""

from django.db.models import QuerySet

from chat.models import Conversation, Message

SNAPSHOT_MESSAGE_LIMIT = 200


def conversation_get_by_token(*, token_hash: str) -> Conversation | None:
    return Conversation.objects.select_related("assigned_helper", "service").filter(token_hash=token_hash).first()


def conversation_get(*, conversation_id: int) -> Conversation | None:
    return Conversation.objects.select_related("assigned_helper", "service").filter(pk=conversation_id).first()


def conversation_list_waiting() -> QuerySet[Conversation]:
    """The queue, oldest first."""
    return (
        Conversation.objects.filter(status=Conversation.Status.WAITING)
        .select_related("service", "assigned_helper")
        .order_by("waiting_since", "pk")
    )


def conversation_list_active_for_helper(*, helper_id: int) -> QuerySet[Conversation]:
    return (
        Conversation.objects.filter(status=Conversation.Status.ACTIVE, assigned_helper_id=helper_id)
        .select_related("service", "assigned_helper")
        .order_by("assigned_at", "pk")
    )


def message_list_after(*, conversation_id: int, after_seq: int, limit: int = SNAPSHOT_MESSAGE_LIMIT) -> list[Message]:
    """Up to `limit` messages with a sequence number above `after_seq`, in order."""
    return list(Message.objects.filter(conversation_id=conversation_id, seq__gt=after_seq).order_by("seq")[:limit])


def conversation_last_seqs(*, conversation_ids: list[int]) -> dict[int, int]:
    return dict(Conversation.objects.filter(pk__in=conversation_ids).values_list("pk", "last_seq"))


def conversation_get_for_helper(*, conversation_id: int, helper_id: int) -> Conversation | None:
    """The conversation if it is assigned to this helper, else None."""
    return (
        Conversation.objects.select_related("assigned_helper", "service")
        .filter(pk=conversation_id, assigned_helper_id=helper_id)
        .first()
    )
