"""The helper's console websocket: the live queue and the conversations the helper holds."""

import logging
from typing import Any

from agents_console import presence
from agents_console.roles import helper_role
from chat import events, selectors, services
from chat.consumers import ConversationStreamMixin
from chat.forms import (
    ConversationMessageSendForm,
    ConversationOpenForm,
    ConversationReadForm,
    ConversationRefForm,
    EmptyForm,
)
from chat.models import Conversation, Message
from chat.protocol import FrameConsumer, FrameHandler, db

logger = logging.getLogger(__name__)

FORBIDDEN_CLOSE_CODE = 4403


def console_snapshot(*, helper_id: int) -> dict[str, Any]:
    """The `queue.snapshot` data: who is waiting and what this helper holds."""
    return {
        "waiting": [events.conversation_staff_payload(c) for c in selectors.conversation_list_waiting()],
        "mine": [
            events.conversation_staff_payload(c)
            for c in selectors.conversation_list_active_for_helper(helper_id=helper_id)
        ],
        "callbacks": [events.callback_payload(c) for c in selectors.callback_list_open()],
    }


class ConsoleConsumer(ConversationStreamMixin, FrameConsumer):
    """One console tab of a signed-in advisor, volunteer or supervisor."""

    frame_handlers = {
        "conversation.accept": FrameHandler(ConversationRefForm, "handle_accept"),
        "conversation.open": FrameHandler(ConversationOpenForm, "handle_open"),
        "message.send": FrameHandler(ConversationMessageSendForm, "handle_message_send"),
        "conversation.end": FrameHandler(ConversationRefForm, "handle_end"),
        "message.read": FrameHandler(ConversationReadForm, "handle_read"),
        "typing.start": FrameHandler(ConversationRefForm, "handle_typing_start"),
        "typing.stop": FrameHandler(ConversationRefForm, "handle_typing_stop"),
        "ping": FrameHandler(EmptyForm, "handle_ping"),
    }
    # Helpers type quickly across several conversations.
    rate_per_second = 10.0
    rate_burst = 40

    async def connect(self) -> None:
        await self.stream_init()
        self.user = self.scope.get("user")
        self.role = await db(helper_role)(self.user)
        if self.role is None:
            # Accept only to say why, then close: a bare handshake refusal tells the client nothing.
            await self.accept()
            await self.send_error("forbidden")
            await self.close(code=FORBIDDEN_CLOSE_CODE)
            logger.warning("console socket refused for user %s", getattr(self.user, "pk", None))
            return
        await self.channel_layer.group_add(events.queue_group(), self.channel_name)
        await self.accept()
        await db(presence.console_connection_open)(channel_name=self.channel_name, helper_id=self.user.pk)
        snapshot = await db(console_snapshot)(helper_id=self.user.pk)
        await self.send_frame("queue.snapshot", snapshot)

    async def disconnect(self, code: int) -> None:
        if getattr(self, "role", None) is not None:
            await self.channel_layer.group_discard(events.queue_group(), self.channel_name)
            await db(presence.console_connection_close)(channel_name=self.channel_name)
        await self.stream_leave_all()

    async def handle_accept(self, *, conversation_id: int) -> None:
        conversation = await db(services.conversation_assign)(conversation_id=conversation_id, helper=self.user)
        await self.stream_join(conversation, after_seq=0, staff=True)

    async def handle_open(self, *, conversation_id: int, last_seq: int | None) -> None:
        conversation = await db(selectors.conversation_get_for_helper)(
            conversation_id=conversation_id, helper_id=self.user.pk
        )
        if conversation is None:
            raise services.chat_error("not_assigned")
        await self.stream_join(conversation, after_seq=last_seq or 0, staff=True)

    async def handle_message_send(self, *, conversation_id: int, client_id: str, body: str) -> None:
        message, created = await db(services.message_create)(
            conversation_id=conversation_id,
            author_kind=Message.AuthorKind.HELPER,
            author=self.user,
            body=body,
            client_id=client_id,
        )
        if not created:
            await self.deliver_message(events.message_payload(message))

    async def handle_end(self, *, conversation_id: int) -> None:
        await db(services.conversation_end)(
            conversation_id=conversation_id, ended_by=Conversation.EndedBy.HELPER, helper=self.user
        )

    async def handle_read(self, *, conversation_id: int, seq: int) -> None:
        if not self.following(conversation_id):
            raise services.chat_error("not_assigned")
        await db(services.conversation_mark_read)(
            conversation_id=conversation_id, reader=Message.AuthorKind.HELPER, seq=seq
        )

    async def handle_typing_start(self, *, conversation_id: int) -> None:
        await self.typing(conversation_id, typing=True)

    async def handle_typing_stop(self, *, conversation_id: int) -> None:
        await self.typing(conversation_id, typing=False)

    async def typing(self, conversation_id: int, *, typing: bool) -> None:
        # Following a conversation was authorised when it was opened; no database hop here.
        if not self.following(conversation_id):
            raise services.chat_error("not_assigned")
        await self.stream_typing(conversation_id=conversation_id, author_kind="helper", typing=typing)

    async def handle_ping(self) -> None:
        seqs = await db(_heartbeat)(self.channel_name, list(self.delivered))
        await self.send_frame(
            "pong", {"conversations": [{"id": pk, "last_seq": seq} for pk, seq in sorted(seqs.items())]}
        )

    async def chat_conversation_queued(self, event: dict[str, Any]) -> None:
        await self.send_frame("conversation.queued", {"conversation": event["conversation"]})

    async def chat_conversation_assigned(self, event: dict[str, Any]) -> None:
        await self.send_frame("conversation.assigned", {"conversation": event["conversation"]})

    async def chat_conversation_ended(self, event: dict[str, Any]) -> None:
        await self.send_frame("conversation.ended", {"conversation": event["conversation"]})

    async def chat_conversation_changed(self, event: dict[str, Any]) -> None:
        """The resident's copy of a change; this socket has the fuller queue event already."""

    async def chat_callback_requested(self, event: dict[str, Any]) -> None:
        await self.send_frame("callback.requested", {"callback": event["callback"]})

    async def chat_typing_changed(self, event: dict[str, Any]) -> None:
        if event["author_kind"] == "visitor":
            await self.send_frame(
                "typing.updated", {"conversation_id": event["conversation_id"], "typing": event["typing"]}
            )

    async def chat_read_changed(self, event: dict[str, Any]) -> None:
        read = event["read"]
        if read["reader"] == "visitor":
            await self.send_frame("read.updated", {"conversation_id": read["conversation_id"], "seq": read["seq"]})


def _heartbeat(channel_name: str, conversation_ids: list[int]) -> dict[int, int]:
    presence.console_connection_seen(channel_name=channel_name)
    return selectors.conversation_last_seqs(conversation_ids=conversation_ids)
