"""Reads for the advisor console."""

from dataclasses import dataclass
from typing import Any

from django.contrib.auth import get_user_model

from agents_console.models import CannedResponse, Guide, HelperProfile
from agents_console.presence import helper_ids_online
from chat import events as chat_events
from chat import selectors as chat_selectors
from chat.models import Conversation

# The console lists this many of a helper's conversations waiting to be logged, the newest, and
# says how many more there are: a helper who never logs would otherwise be sent every chat they
# ever ended, on every page load and connection. Far more than a helper holds at once (three by
# default), so a console back from a lost connection still finds among them those that ended
# meanwhile.
AWAITING_WRAP_UP_LISTED = 50


@dataclass(frozen=True)
class AwaitingWrapUp:
    newest: list[Conversation]
    count: int

    @property
    def more(self) -> int:
        """How many are not among the newest listed."""
        return self.count - len(self.newest)


def conversation_list_awaiting_wrap_up(*, helper_id: int) -> AwaitingWrapUp:
    """Ended conversations this helper held that nobody has logged yet: the newest
    `AWAITING_WRAP_UP_LISTED`, newest first, and how many there are in all."""
    awaiting = Conversation.objects.filter(
        status=Conversation.Status.ENDED, assigned_helper_id=helper_id, assisted_transaction__isnull=True
    )
    newest = list(
        awaiting.select_related(*chat_selectors.PAYLOAD_RELATIONS).order_by("-ended_at")[:AWAITING_WRAP_UP_LISTED]
    )
    return AwaitingWrapUp(newest, len(newest) if len(newest) < AWAITING_WRAP_UP_LISTED else awaiting.count())


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


def helper_list_online() -> list[dict[str, Any]]:
    """Helpers online now, with presence and load: for transfers and the supervisor's view."""
    online = helper_ids_online()
    profiles = {p.user_id: p for p in HelperProfile.objects.filter(user_id__in=online)}
    load = chat_selectors.conversation_active_counts(helper_ids=list(online))
    default_capacity = HelperProfile._meta.get_field("capacity").default
    return [
        {
            "id": user.pk,
            "name": chat_events.staff_display_name(user),
            "presence": profiles[user.pk].status if user.pk in profiles else HelperProfile.Status.AVAILABLE,
            "active": load.get(user.pk, 0),
            "capacity": profiles[user.pk].capacity if user.pk in profiles else default_capacity,
        }
        for user in get_user_model().objects.filter(pk__in=online).order_by("first_name", "username")
    ]
