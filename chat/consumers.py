"""The resident's websocket: start or resume one conversation, send messages, end it."""

import logging
from typing import Any

from channels.db import database_sync_to_async

from chat import events, selectors, services
from chat.forms import ConversationResumeForm, ConversationStartForm, EmptyForm, MessageSendForm
from chat.models import Conversation, Message
from chat.protocol import FrameConsumer, FrameHandler
from kiosk.models import Service

logger = logging.getLogger(__name__)


def conversation_snapshot(*, conversation: Conversation, after_seq: int, staff: bool) -> dict[str, Any]:
    """The `state.snapshot` data: the conversation and the messages after `after_seq`."""
    messages = selectors.message_list_after(conversation_id=conversation.pk, after_seq=after_seq)
    build = events.conversation_staff_payload if staff else events.conversation_public_payload
    return {
        "conversation": build(conversation),
        "messages": [events.message_payload(message) for message in messages],
        "has_more": bool(messages) and messages[-1].seq < conversation.last_seq,
    }


class ConversationStreamMixin:
    """Follows conversations for one socket and delivers each message to it at most once.

    The socket joins the conversation group *before* reading the database, so a message
    committed in between arrives in the snapshot or live, or both, and the set of delivered
    sequence numbers drops the second copy. Live events may arrive out of order when
    senders sit on different processes; clients order by `seq`.
    """

    async def stream_init(self) -> None:
        self.delivered: dict[int, set[int]] = {}

    async def stream_join(self, conversation: Conversation, *, after_seq: int, staff: bool) -> None:
        await self.channel_layer.group_add(events.conversation_group(conversation.pk), self.channel_name)
        delivered = self.delivered.setdefault(conversation.pk, set())
        snapshot = await database_sync_to_async(conversation_snapshot)(
            conversation=conversation, after_seq=after_seq, staff=staff
        )
        snapshot["messages"] = [m for m in snapshot["messages"] if m["seq"] not in delivered]
        delivered.update(m["seq"] for m in snapshot["messages"])
        await self.send_frame("state.snapshot", snapshot)

    async def stream_leave(self, conversation_id: int) -> None:
        await self.channel_layer.group_discard(events.conversation_group(conversation_id), self.channel_name)
        self.delivered.pop(conversation_id, None)

    async def stream_leave_all(self) -> None:
        for conversation_id in list(getattr(self, "delivered", {})):
            await self.stream_leave(conversation_id)

    async def deliver_message(self, payload: dict[str, Any]) -> None:
        delivered = self.delivered.get(payload["conversation_id"])
        if delivered is None or payload["seq"] in delivered:
            return
        delivered.add(payload["seq"])
        await self.send_frame("message.created", payload)

    async def chat_message_created(self, event: dict[str, Any]) -> None:
        await self.deliver_message(event["message"])


def _service_by_slug(slug: str) -> Service | None:
    return Service.objects.filter(slug=slug, is_active=True).first()


class VisitorConsumer(ConversationStreamMixin, FrameConsumer):
    """A resident's socket. It carries at most one conversation, named by its secret token."""

    frame_handlers = {
        "conversation.start": FrameHandler(ConversationStartForm, "handle_start"),
        "conversation.resume": FrameHandler(ConversationResumeForm, "handle_resume"),
        "message.send": FrameHandler(MessageSendForm, "handle_message_send"),
        "conversation.end": FrameHandler(EmptyForm, "handle_end"),
        "ping": FrameHandler(EmptyForm, "handle_ping"),
    }

    async def connect(self) -> None:
        await self.stream_init()
        self.conversation_id: int | None = None
        await self.accept()

    async def disconnect(self, code: int) -> None:
        await self.stream_leave_all()

    async def handle_start(self, *, name: str, service: str) -> None:
        if self.conversation_id is not None:
            raise services.chat_error("already_joined")
        service_obj = None
        if service:
            service_obj = await database_sync_to_async(_service_by_slug)(service)
            if service_obj is None:
                raise services.chat_error("service_not_found")
        conversation, token = await database_sync_to_async(services.conversation_start)(
            visitor_name=name, service=service_obj
        )
        self.conversation_id = conversation.pk
        await self.send_frame("conversation.started", {"token": token})
        await self.stream_join(conversation, after_seq=0, staff=False)

    async def handle_resume(self, *, token: str, last_seq: int | None) -> None:
        conversation = await database_sync_to_async(selectors.conversation_get_by_token)(
            token_hash=services.token_hash(token)
        )
        if conversation is None:
            raise services.chat_error("conversation_not_found")
        if self.conversation_id not in (None, conversation.pk):
            raise services.chat_error("already_joined")
        self.conversation_id = conversation.pk
        # Resuming the same conversation again on this socket is how a client fills a gap.
        await self.stream_join(conversation, after_seq=last_seq or 0, staff=False)

    def require_conversation(self) -> int:
        if self.conversation_id is None:
            raise services.chat_error("not_joined")
        return self.conversation_id

    async def handle_message_send(self, *, client_id: str, body: str) -> None:
        message, created = await database_sync_to_async(services.message_create)(
            conversation_id=self.require_conversation(),
            author_kind=Message.AuthorKind.VISITOR,
            body=body,
            client_id=client_id,
        )
        if not created:
            # A resend: the original was announced long ago, perhaps to a socket now gone.
            await self.deliver_message(events.message_payload(message))

    async def handle_end(self) -> None:
        await database_sync_to_async(services.conversation_end)(
            conversation_id=self.require_conversation(), ended_by=Conversation.EndedBy.VISITOR
        )

    async def handle_ping(self) -> None:
        data: dict[str, Any] = {}
        if self.conversation_id is not None:
            seqs = await database_sync_to_async(selectors.conversation_last_seqs)(
                conversation_ids=[self.conversation_id]
            )
            data["last_seq"] = seqs.get(self.conversation_id, 0)
        await self.send_frame("pong", data)

    async def chat_conversation_changed(self, event: dict[str, Any]) -> None:
        await self.send_frame("conversation.updated", {"conversation": event["conversation"]})
