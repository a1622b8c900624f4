"""Reads for the advisor console."""

from django.db.models import QuerySet

from chat.models import Conversation


def conversation_list_awaiting_wrap_up(*, helper_id: int) -> QuerySet[Conversation]:
    """Ended conversations this helper held that nobody has logged yet, newest first."""
    return (
        Conversation.objects.filter(
            status=Conversation.Status.ENDED, assigned_helper_id=helper_id, assisted_transaction__isnull=True
        )
        .select_related("service")
        .order_by("-ended_at")
    )
