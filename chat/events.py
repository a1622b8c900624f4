"""Channel-layer group names, event types, payload builders and the broadcast helper for chat.

Higher apps (the advisor console) listen to these groups; chat never imports them.
Payloads hold only JSON primitives so that they survive the Redis layers' msgpack round trip.
"""

import datetime
import logging
import time
from typing import Any

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from chat.models import Conversation, Message
from config import realtime

logger = logging.getLogger(__name__)

# Layer event types: <app>.<noun>_<past verb>. Consumer handlers are the same with "_" for ".".
CONVERSATION_QUEUED = "chat.conversation_queued"
CONVERSATION_ASSIGNED = "chat.conversation_assigned"
CONVERSATION_ENDED = "chat.conversation_ended"
# The resident-facing view of a status change; queue events above carry staff-only fields.
CONVERSATION_CHANGED = "chat.conversation_changed"
TYPING_CHANGED = "chat.typing_changed"
READ_CHANGED = "chat.read_changed"
QUEUE_MOVED = "chat.queue_moved"
CALLBACK_REQUESTED = "chat.callback_requested"
# Taken on or done: every console shows who is calling back, and drops it once done.
CALLBACK_CHANGED = "chat.callback_changed"
NOTE_CREATED = "chat.note_created"
MESSAGE_CREATED = "chat.message_created"
# Co-browse: the session's state (to the conversation group), and to one side only: the
# resident's page events (to the viewer), the helper's pointer, highlights and snapshot
# requests (to the resident), and a code redeemed (to the resident's socket showing it).
COBROWSE_CHANGED = "chat.cobrowse_changed"
COBROWSE_EVENTS = "chat.cobrowse_events"
COBROWSE_GUIDANCE = "chat.cobrowse_guidance"
COBROWSE_JOINED = "chat.cobrowse_joined"
# The conversation's token changed hands (a kiosk's chat moved to the resident's phone):
# resident sockets that opened it with the old token stop following it.
TOKEN_CHANGED = "chat.token_changed"  # noqa: S105 (an event type, not a secret)
# The resident's page opened or closed their chat (to the staff following it, and to the
# resident's other sockets, which answer for themselves if one of them is still open).
VISITOR_PRESENCE_CHANGED = "chat.visitor_presence_changed"

# A resident's widget pings every 25 seconds, which records them as seen; a browser may slow
# a background tab's timers to once a minute. One not seen for longer than this has gone
# without its socket closing (a process that died, a network that dropped).
VISITOR_SILENT_AFTER = datetime.timedelta(seconds=150)


def queue_group() -> str:
    """Every helper's console: the waiting queue and who took what. Never a resident."""
    return "chat.queue"


def waiting_group() -> str:
    """Residents' sockets whose conversation is waiting: told when the queue moves."""
    return "chat.waiting"


def conversation_group(conversation_id: int) -> str:
    """The resident and the helpers in one conversation: only what the resident may see."""
    return f"chat.conversation.{conversation_id}"


def conversation_staff_group(conversation_id: int) -> str:
    """Only the helpers following one conversation: internal notes. Never the resident."""
    return f"chat.conversation.{conversation_id}.staff"


def cobrowse_viewer_group(session_id: int) -> str:
    """The helper's consoles viewing one co-browse session. Never the resident."""
    return f"chat.cobrowse.{session_id}.viewer"


def cobrowse_resident_group(conversation_id: int) -> str:
    """The resident's sockets in one conversation: guidance and snapshot requests. No helper."""
    return f"chat.conversation.{conversation_id}.resident"


def cobrowse_code_group(session_id: int) -> str:
    """The resident's socket that showed a screen-sharing code, until a helper uses it."""
    return f"chat.cobrowse.{session_id}.code"


def isoformat(value) -> str | None:
    return value.isoformat() if value else None


def message_payload(message: Message) -> dict[str, Any]:
    return {
        "conversation_id": message.conversation_id,
        "seq": message.seq,
        "client_id": message.client_id,
        "author": {"kind": message.author_kind, "name": message.author_name},
        "body": message.body,
        "created_at": isoformat(message.created_at),
    }


def note_payload(note) -> dict[str, Any]:
    return {
        "conversation_id": note.conversation_id,
        "id": note.pk,
        "author_name": note.author_name,
        "body": note.body,
        "created_at": isoformat(note.created_at),
    }


def callback_reference(callback) -> str:
    """What the resident is given to quote, and what the console shows."""
    return f"CB-{callback.pk:06d}"


def callback_payload(callback) -> dict[str, Any]:
    service = callback.service
    return {
        "id": callback.pk,
        "reference": callback_reference(callback),
        "status": callback.status,
        "name": callback.name,
        "phone": callback.phone,
        "email": callback.email,
        "message": callback.message,
        "earlier_messages": callback.earlier_messages,
        "service": {"id": service.pk, "name": service.name} if service else None,
        "created_at": isoformat(callback.created_at),
        "claimed_by_id": callback.claimed_by_id,
        "claimed_by_name": staff_display_name(callback.claimed_by) if callback.claimed_by_id else None,
        "claimer_left": callback.claimer_left,
        "done_at": isoformat(callback.done_at),
    }


def helper_display_name(user) -> str:
    """The name residents see of a helper: their first name, never their login (often a staff
    number or an email address)."""
    if user is None:
        return ""
    return user.get_short_name() or str(_("Advisor"))


def staff_display_name(user) -> str:
    """The name colleagues see of a helper: the login tells apart two without a first name."""
    if user is None:
        return ""
    return user.get_short_name() or user.get_username()


def conversation_public_payload(conversation: Conversation) -> dict[str, Any]:
    """What a resident may know about their own conversation."""
    return {
        "id": conversation.pk,
        "status": conversation.status,
        "channel": conversation.channel,
        "helper_name": helper_display_name(conversation.assigned_helper),
        "last_seq": conversation.last_seq,
        "ended_by": conversation.ended_by or None,
        "ended_reason": conversation.ended_reason or None,
        "helper_read_seq": conversation.helper_read_seq,
        "rating": conversation.rating,
        # When the current wait began: a chat nobody answers ends a set time after it.
        "queued_at": isoformat(conversation.queued_at) if conversation.status == Conversation.Status.WAITING else None,
    }


def conversation_staff_payload(conversation: Conversation) -> dict[str, Any]:
    """What a helper's console shows about a conversation, in the queue or in the workspace."""
    service = conversation.service
    return {
        "id": conversation.pk,
        "status": conversation.status,
        "channel": conversation.channel,
        "visitor_name": conversation.visitor_name,
        "service": {"id": service.pk, "name": service.name} if service else None,
        "assigned_helper_id": conversation.assigned_helper_id,
        "helper_name": staff_display_name(conversation.assigned_helper),
        "last_seq": conversation.last_seq,
        "created_at": isoformat(conversation.created_at),
        "waiting_since": isoformat(conversation.waiting_since),
        "queued_at": isoformat(conversation.queued_at),
        "assigned_at": isoformat(conversation.assigned_at),
        "ended_at": isoformat(conversation.ended_at),
        "ended_by": conversation.ended_by or None,
        "visitor_read_seq": conversation.visitor_read_seq,
        "rating": conversation.rating,
        "assigned_automatically": conversation.assigned_automatically,
        "helper_in_person": conversation.helper_in_person,
        "kiosk": kiosk_context(conversation) if conversation.kiosk_visit_id else None,
        "visitor_connected": visitor_connected(conversation),
        "visitor_left_at": isoformat(conversation.visitor_left_at),
    }


def visitor_connected(conversation: Conversation, *, now: datetime.datetime | None = None) -> bool:
    """Whether the resident has the chat open now, as far as the database knows."""
    seen = conversation.visitor_last_seen_at
    now = now or timezone.now()
    return conversation.visitor_left_at is None and seen is not None and seen >= now - VISITOR_SILENT_AFTER


def kiosk_context(conversation: Conversation) -> dict[str, Any]:
    """Where the kiosk is, and what the same resident asked earlier in this kiosk visit."""
    visit = conversation.kiosk_visit
    earlier = (
        Conversation.objects.filter(kiosk_visit_id=visit.pk, created_at__lt=conversation.created_at)
        .select_related("service")
        .order_by("created_at")
    )
    return {
        "name": visit.device.name,
        "location": visit.device.location,
        "visit_id": visit.pk,
        "earlier_in_visit": [
            {
                "id": other.pk,
                "status": other.status,
                "created_at": isoformat(other.created_at),
                "service": other.service.name if other.service else None,
            }
            for other in earlier
        ],
    }


def broadcast_conversation_queued(conversation: Conversation) -> None:
    realtime.broadcast(
        groups=[queue_group()],
        event_type=CONVERSATION_QUEUED,
        conversation=conversation_staff_payload(conversation),
    )
    broadcast_queue_moved()


def broadcast_queue_moved() -> None:
    """Tell waiting residents the queue changed, or whether webchat is open. The state is read
    after the commit, so each event reflects a committed queue; `at` lets a socket ignore one
    that arrives late."""

    def send() -> None:
        from chat import selectors

        # Stamped before the reads: of two events, the later stamped read the newer queue.
        at = time.time()
        # What committed stands, and its caller (a helper's console opening, say) goes on:
        # a resident who misses this is told by the next event or the sweep's next pass.
        try:
            state = selectors.queue_state()
            if state["waiting"]:
                realtime.group_send(waiting_group(), {"type": QUEUE_MOVED, **state, "at": at})
        except Exception:
            logger.exception("broadcast of %s failed", QUEUE_MOVED)

    transaction.on_commit(send)


def typing_changed_event(*, conversation_id: int, author_kind: str, typing: bool) -> dict[str, Any]:
    """Typing is not stored, so consumers send this at once, with no commit to wait for."""
    return {"type": TYPING_CHANGED, "conversation_id": conversation_id, "author_kind": author_kind, "typing": typing}


def broadcast_read_changed(conversation: Conversation, *, reader: str, seq: int) -> None:
    realtime.broadcast(
        groups=[conversation_group(conversation.pk)],
        event_type=READ_CHANGED,
        read={"conversation_id": conversation.pk, "reader": reader, "seq": seq},
    )


def broadcast_callback_requested(callback) -> None:
    realtime.broadcast(groups=[queue_group()], event_type=CALLBACK_REQUESTED, callback=callback_payload(callback))


def broadcast_callback_changed(callback) -> None:
    realtime.broadcast(groups=[queue_group()], event_type=CALLBACK_CHANGED, callback=callback_payload(callback))


def broadcast_token_changed(conversation: Conversation) -> None:
    realtime.broadcast(
        groups=[cobrowse_resident_group(conversation.pk)],
        event_type=TOKEN_CHANGED,
        conversation_id=conversation.pk,
        token_hash=conversation.token_hash,
    )


def broadcast_visitor_presence_changed(
    *, conversation_id: int, connected: bool, at: datetime.datetime, channel_name: str | None = None
) -> None:
    """`channel_name`: the resident's socket that closed, which does not answer for itself."""
    realtime.broadcast(
        groups=[conversation_staff_group(conversation_id), cobrowse_resident_group(conversation_id)],
        event_type=VISITOR_PRESENCE_CHANGED,
        conversation_id=conversation_id,
        connected=connected,
        at=isoformat(at),
        channel_name=channel_name,
    )


def broadcast_conversation_changed(conversation: Conversation) -> None:
    realtime.broadcast(
        groups=[conversation_group(conversation.pk)],
        event_type=CONVERSATION_CHANGED,
        conversation=conversation_public_payload(conversation),
    )


def broadcast_conversation_assigned(conversation: Conversation) -> None:
    realtime.broadcast(
        groups=[queue_group()],
        event_type=CONVERSATION_ASSIGNED,
        conversation=conversation_staff_payload(conversation),
    )
    broadcast_conversation_changed(conversation)
    broadcast_queue_moved()


def broadcast_conversation_ended(conversation: Conversation, *, was_waiting: bool) -> None:
    realtime.broadcast(
        groups=[queue_group()],
        event_type=CONVERSATION_ENDED,
        conversation=conversation_staff_payload(conversation),
    )
    broadcast_conversation_changed(conversation)
    if was_waiting:
        broadcast_queue_moved()


def broadcast_message_created(message: Message) -> None:
    realtime.broadcast(
        groups=[conversation_group(message.conversation_id)],
        event_type=MESSAGE_CREATED,
        message=message_payload(message),
    )


async def asend_message_created(message: Message) -> None:
    """`broadcast_message_created` from the event loop, for a message already committed."""
    await realtime.agroup_send(
        conversation_group(message.conversation_id), {"type": MESSAGE_CREATED, "message": message_payload(message)}
    )


def broadcast_note_created(note) -> None:
    realtime.broadcast(
        groups=[conversation_staff_group(note.conversation_id)], event_type=NOTE_CREATED, note=note_payload(note)
    )


def signal_after_commit(signal, **kwargs: Any) -> None:
    """Send a chat signal once the transaction commits, so listeners see the new state."""
    transaction.on_commit(lambda: signal.send(sender=Conversation, **kwargs))


def cobrowse_payload(session) -> dict[str, Any]:
    return {
        "id": session.pk,
        "conversation_id": session.conversation_id,
        "status": session.status,
        "helper_name": helper_display_name(session.helper),
        "requested_at": isoformat(session.requested_at),
        "responded_at": isoformat(session.responded_at),
        "stopped_at": isoformat(session.stopped_at),
        "stopped_by": session.stopped_by or None,
    }


def broadcast_cobrowse_changed(session) -> None:
    realtime.broadcast(
        groups=[conversation_group(session.conversation_id)],
        event_type=COBROWSE_CHANGED,
        cobrowse=cobrowse_payload(session),
    )


def broadcast_cobrowse_joined(session, *, token: str) -> None:
    realtime.broadcast(
        groups=[cobrowse_code_group(session.pk)], event_type=COBROWSE_JOINED, session_id=session.pk, token=token
    )
