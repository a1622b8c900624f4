"""Reads for the advisor console."""

from django.db.models import QuerySet

from agents_console.models import CannedResponse, Guide
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


def guidance_payload() -> dict:
    """Canned responses and guides for the console page, searched in the browser."""
    return {
        "responses": [
            {"id": r.pk, "title": r.title, "body": r.body, "service": r.service.name if r.service else ""}
            for r in CannedResponse.objects.filter(is_active=True).select_related("service")
        ],
        "guides": [
            {"id": g.pk, "title": g.title, "service": g.service.name, "steps": g.step_list()}
            for g in Guide.objects.filter(is_active=True).select_related("service")
        ],
    }
