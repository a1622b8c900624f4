"""The resident's websockets: the chat (start or resume one conversation, chat, end, rate) and an
enrolled kiosk's shell (heartbeats, wipe and revocation orders)."""

import logging
import time
from typing import Any, NamedTuple

from django.core.exceptions import ValidationError
from django.utils import timezone

from chat import events, selectors, services
from chat.forms import (
    CallbackRequestForm,
    CobrowseEventsForm,
    CobrowseRefForm,
    CobrowseRespondForm,
    ConversationResumeForm,
    ConversationStartForm,
    EmptyForm,
    KioskHeartbeatForm,
    MessageSendForm,
    RateForm,
    ReadForm,
)
from chat.models import Conversation, Message
from chat.protocol import FrameConsumer, FrameHandler
from config.async_db import db
from kiosk import events as kiosk_events
from kiosk import services as kiosk_services
from kiosk.middleware import DEVICE_COOKIE
from kiosk.models import KioskDevice, Service

logger = logging.getLogger(__name__)

# Typing frames faster than this are absorbed: the other side's indicator does not need them.
TYPING_MIN_INTERVAL_SECONDS = 2.0


def conversation_snapshot(*, conversation_id: int, after_seq: int, staff: bool) -> dict[str, Any] | None:
    """The `state.snapshot` data: the conversation as it is now and its messages after
    `after_seq`; None if it is gone.

    Read again, not taken from the caller: a change committed before the socket joined the
    conversation's group reached no socket. Automatic routing answers a new conversation
    within its start, so its resident would otherwise be shown the queue while a helper chats.
    """
    conversation = selectors.conversation_get(conversation_id=conversation_id)
    if conversation is None:
        return None
    messages = selectors.message_list_after(conversation_id=conversation.pk, after_seq=after_seq)
    build = events.conversation_staff_payload if staff else events.conversation_public_payload
    cobrowse = services.cobrowse_live_for(conversation.pk)
    return {
        "conversation": build(conversation),
        "messages": [events.message_payload(message) for message in messages],
        "has_more": bool(messages) and messages[-1].seq < conversation.last_seq,
        "cobrowse": events.cobrowse_payload(cobrowse) if cobrowse else None,
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
        # Per conversation: the last typing state this socket relayed, when, and as whom.
        self.typing_sent: dict[int, tuple[bool, float, str]] = {}

    async def stream_join(self, conversation: Conversation, *, after_seq: int, staff: bool) -> dict[str, Any]:
        """Follow the conversation and send its `state.snapshot`, which is returned."""
        await self.channel_layer.group_add(events.conversation_group(conversation.pk), self.channel_name)
        delivered = self.delivered.setdefault(conversation.pk, set())
        snapshot = await db(conversation_snapshot)(conversation_id=conversation.pk, after_seq=after_seq, staff=staff)
        if snapshot is None:
            await self.stream_leave(conversation.pk)
            raise services.chat_error("conversation_not_found")
        await self.on_snapshot(conversation.pk, snapshot)
        snapshot["messages"] = [m for m in snapshot["messages"] if m["seq"] not in delivered]
        delivered.update(m["seq"] for m in snapshot["messages"])
        # So that a client whose clock is wrong can still tell how far off the times in it are.
        snapshot["server_time"] = events.isoformat(timezone.now())
        await self.send_frame("state.snapshot", snapshot)
        return snapshot

    async def on_snapshot(self, conversation_id: int, snapshot: dict[str, Any]) -> None:
        """Called with each `state.snapshot` before it is sent."""

    async def stream_leave(self, conversation_id: int) -> None:
        # Whoever was typing here has gone: the other side must not see "typing…" for ever.
        last = self.typing_sent.pop(conversation_id, None)
        if last is not None and last[0]:
            await self.channel_layer.group_send(
                events.conversation_group(conversation_id),
                events.typing_changed_event(conversation_id=conversation_id, author_kind=last[2], typing=False),
            )
        await self.channel_layer.group_discard(events.conversation_group(conversation_id), self.channel_name)
        self.delivered.pop(conversation_id, None)

    async def stream_leave_all(self) -> None:
        for conversation_id in list(getattr(self, "delivered", {})):
            await self.stream_leave(conversation_id)

    def following(self, conversation_id: int) -> bool:
        return conversation_id in self.delivered

    async def deliver_message(self, payload: dict[str, Any]) -> None:
        delivered = self.delivered.get(payload["conversation_id"])
        if delivered is None or payload["seq"] in delivered:
            return
        delivered.add(payload["seq"])
        await self.send_frame("message.created", payload)

    async def stream_typing(self, *, conversation_id: int, author_kind: str, typing: bool) -> None:
        """Relay a typing change unless it repeats the last one sent within the interval."""
        last = self.typing_sent.get(conversation_id)
        now = time.monotonic()
        if last is not None and last[0] == typing and now - last[1] < TYPING_MIN_INTERVAL_SECONDS:
            return
        self.typing_sent[conversation_id] = (typing, now, author_kind)
        await self.channel_layer.group_send(
            events.conversation_group(conversation_id),
            events.typing_changed_event(conversation_id=conversation_id, author_kind=author_kind, typing=typing),
        )

    async def chat_message_created(self, event: dict[str, Any]) -> None:
        await self.deliver_message(event["message"])


def _service_by_slug(slug: str) -> Service | None:
    return Service.objects.filter(slug=slug, is_active=True).first()


async def service_from_slug(slug: str) -> Service | None:
    """The active catalogue service for `slug`; ValidationError `service_not_found` if none."""
    if not slug:
        return None
    service = await db(_service_by_slug)(slug)
    if service is None:
        raise services.chat_error("service_not_found")
    return service


class VisitorConsumer(ConversationStreamMixin, FrameConsumer):
    """A resident's socket. It carries at most one conversation, named by its secret token."""

    frame_handlers = {
        "conversation.start": FrameHandler(ConversationStartForm, "handle_start"),
        "conversation.resume": FrameHandler(ConversationResumeForm, "handle_resume"),
        "message.send": FrameHandler(MessageSendForm, "handle_message_send"),
        "message.read": FrameHandler(ReadForm, "handle_read"),
        "typing.start": FrameHandler(EmptyForm, "handle_typing_start"),
        "typing.stop": FrameHandler(EmptyForm, "handle_typing_stop"),
        "conversation.end": FrameHandler(EmptyForm, "handle_end"),
        "conversation.rate": FrameHandler(RateForm, "handle_rate"),
        "callback.request": FrameHandler(CallbackRequestForm, "handle_callback_request"),
        "cobrowse.respond": FrameHandler(CobrowseRespondForm, "handle_cobrowse_respond"),
        "cobrowse.stop": FrameHandler(CobrowseRefForm, "handle_cobrowse_stop"),
        "cobrowse.events": FrameHandler(CobrowseEventsForm, "handle_cobrowse_events"),
        "cobrowse.code.request": FrameHandler(EmptyForm, "handle_cobrowse_code_request"),
        "ping": FrameHandler(EmptyForm, "handle_ping"),
    }
    bulk_frame_types = frozenset({"cobrowse.events"})
    setup_frame_types = frozenset({"conversation.start", "conversation.resume"})

    async def connect(self) -> None:
        await self.stream_init()
        self.conversation_id: int | None = None
        # The hash of the token this socket opened its conversation with.
        self.token_hash: str | None = None
        # The co-browse session this socket may send page events for: set only while the
        # resident's consent stands, cleared the moment they stop or the conversation ends.
        self.sharing_session_id: int | None = None
        self.code_session_id: int | None = None
        self.waiting = False
        self.queue_event_at = 0.0
        self.position_sent: dict[str, Any] | None = None
        # On an enrolled kiosk the widget asks for help as the kiosk (with its location).
        self.kiosk_device = await kiosk_device_from_scope(self.scope)
        client = self.scope.get("client") or (None, None)
        self.address_hash = services.limited_address_hash(client[0], self.kiosk_device)
        await self.accept()

    async def disconnect(self, code: int) -> None:
        if self.conversation_id is not None:
            await db(services.conversation_visitor_left)(
                conversation_id=self.conversation_id, channel_name=self.channel_name
            )
        await self.leave_waiting()
        if self.conversation_id is not None:
            await self.channel_layer.group_discard(
                events.cobrowse_resident_group(self.conversation_id), self.channel_name
            )
        if self.code_session_id is not None:
            await self.channel_layer.group_discard(events.cobrowse_code_group(self.code_session_id), self.channel_name)
        await self.stream_leave_all()

    async def bind(self, conversation: Conversation, *, after_seq: int, recheck_token: bool = False) -> None:
        self.conversation_id = conversation.pk
        self.token_hash = conversation.token_hash
        await self.channel_layer.group_add(events.cobrowse_resident_group(conversation.pk), self.channel_name)
        if recheck_token:
            # Handed to another device between reading it and joining its group, this socket
            # missed the news (`chat_token_changed`): ask the database, now that it will hear.
            current = await db(selectors.conversation_token_hash)(conversation_id=conversation.pk)
            if current != self.token_hash:
                await self.unbind()
                raise services.chat_error("conversation_not_found")
        try:
            snapshot = await self.stream_join(conversation, after_seq=after_seq, staff=False)
        except ValidationError:
            # Gone since it was read: this socket carries no conversation, as before.
            await self.unbind()
            raise
        if snapshot["conversation"]["status"] == Conversation.Status.WAITING:
            await self.join_waiting()

    async def unbind(self) -> None:
        """Stop following this socket's conversation: it no longer belongs to this socket."""
        conversation_id, self.conversation_id = self.conversation_id, None
        self.sharing_session_id = None
        await self.leave_waiting()
        await self.channel_layer.group_discard(events.cobrowse_resident_group(conversation_id), self.channel_name)
        await self.stream_leave(conversation_id)

    async def join_waiting(self) -> None:
        if not self.waiting:
            self.waiting = True
            await self.channel_layer.group_add(events.waiting_group(), self.channel_name)
        read_at = time.time()
        state = await db(selectors.queue_state)()
        # A queue event stamped before this read, still on its way, is older than what it sends.
        self.queue_event_at = max(self.queue_event_at, read_at)
        await self.send_position(state, always=True)

    async def leave_waiting(self) -> None:
        if self.waiting:
            self.waiting = False
            await self.channel_layer.group_discard(events.waiting_group(), self.channel_name)

    async def send_position(self, state: dict[str, Any], *, always: bool = False) -> None:
        """Tell the resident their place, their wait and whether webchat is open, when any of
        them changed (or on joining)."""
        if self.conversation_id not in state["waiting"]:
            return
        position = state["waiting"].index(self.conversation_id) + 1
        current = {
            "position": position,
            "estimated_wait_seconds": position * state["seconds_per_place"],
            "available": state["available"],
            "reason": state["reason"],
        }
        if current == self.position_sent and not always:
            return
        self.position_sent = current
        await self.send_frame("queue.position", current)

    async def handle_start(self, *, client_id: str, name: str, email: str, service: str, in_person: bool) -> None:
        if self.conversation_id is not None:
            raise services.chat_error("already_joined")
        service_obj = await service_from_slug(service)
        conversation, token = await db(services.conversation_start)(
            visitor_name=name,
            visitor_email=email,
            service=service_obj,
            address_hash=self.address_hash,
            kiosk_device=self.kiosk_device,
            helper_in_person=in_person,
            start_key=client_id,
        )
        await self.send_frame("conversation.started", {"token": token})
        await self.bind(conversation, after_seq=0)

    async def handle_resume(self, *, token: str, last_seq: int | None) -> None:
        conversation = await db(selectors.conversation_get_by_token)(token_hash=services.token_hash(token))
        if conversation is None:
            raise services.chat_error("conversation_not_found")
        if self.conversation_id not in (None, conversation.pk):
            raise services.chat_error("already_joined")
        first_on_this_socket = self.conversation_id is None
        # Resuming the same conversation again on this socket is how a client fills a gap.
        await self.bind(conversation, after_seq=last_seq or 0, recheck_token=first_on_this_socket)
        if first_on_this_socket and not conversation.is_ended:
            # After joining its groups: if the page this one replaces is still closing, its
            # "left" reaches this socket, which answers that the resident is here.
            await db(services.conversation_touch_visitor)(conversation_id=conversation.pk)

    def require_conversation(self) -> int:
        if self.conversation_id is None:
            raise services.chat_error("not_joined")
        return self.conversation_id

    async def handle_message_send(self, *, client_id: str, body: str) -> None:
        # New or resent, the message comes back through the conversation group, this socket's too.
        await services.amessage_create(
            conversation_id=self.require_conversation(),
            author_kind=Message.AuthorKind.VISITOR,
            body=body,
            client_id=client_id,
            token_hash=self.token_hash,
        )

    async def on_refusal(self, frame_type: str, code: str) -> None:
        # Every service this socket asks to act in its conversation checks the token it opened
        # it with. Refused because that no longer opens it (it moved to another device, or it
        # was deleted), the socket lets go, as `chat_token_changed` makes it: that event is how
        # a socket usually learns, and the database's word covers one the channel layer
        # dropped. A resume's refusal is about the token it names, not this socket's.
        if (
            code == "conversation_not_found"
            and frame_type != "conversation.resume"
            and self.conversation_id is not None
        ):
            await self.unbind()

    async def handle_read(self, *, seq: int) -> None:
        await db(services.conversation_mark_read)(
            conversation_id=self.require_conversation(),
            reader=Message.AuthorKind.VISITOR,
            seq=seq,
            token_hash=self.token_hash,
        )

    async def handle_typing_start(self) -> None:
        await self.stream_typing(conversation_id=self.require_conversation(), author_kind="visitor", typing=True)

    async def handle_typing_stop(self) -> None:
        await self.stream_typing(conversation_id=self.require_conversation(), author_kind="visitor", typing=False)

    async def handle_end(self) -> None:
        await db(services.conversation_end)(
            conversation_id=self.require_conversation(),
            ended_by=Conversation.EndedBy.VISITOR,
            token_hash=self.token_hash,
        )

    async def handle_rate(self, *, rating: int, comment: str) -> None:
        await db(services.conversation_rate)(
            conversation_id=self.require_conversation(), rating=rating, comment=comment, token_hash=self.token_hash
        )
        await self.send_frame("conversation.rated", {"rating": rating})

    async def handle_callback_request(
        self, *, client_id: str, name: str, phone: str, email: str, message: str, service: str
    ) -> None:
        service_obj = await service_from_slug(service)
        callback = await db(services.callback_request_create)(
            client_id=client_id,
            name=name,
            phone=phone,
            email=email,
            message=message,
            service=service_obj,
            address_hash=self.address_hash,
            instead_of=self.conversation_id,
            token_hash=self.token_hash,
        )
        await self.send_frame("callback.requested", {"reference": events.callback_reference(callback)})

    async def handle_cobrowse_respond(self, *, session_id: int, accept: bool) -> None:
        await db(services.cobrowse_respond)(
            conversation_id=self.require_conversation(),
            session_id=session_id,
            accept=accept,
            token_hash=self.token_hash,
        )

    async def handle_cobrowse_stop(self, *, session_id: int) -> None:
        conversation_id = self.require_conversation()
        if session_id == self.sharing_session_id:
            # Nothing more is relayed from here on, even if the database refuses the stop
            # (the chat moved to another device meanwhile). A stop naming another session
            # changes nothing here, as it changes nothing there.
            self.sharing_session_id = None
        await db(services.cobrowse_stop)(
            conversation_id=conversation_id,
            session_id=session_id,
            stopped_by=Conversation.EndedBy.VISITOR,
            token_hash=self.token_hash,
        )

    def counts_in_bytes(self, frame_type: Any) -> bool:
        # Only while the resident shares their screen: any other socket's page events are
        # refused, and counted like every other frame.
        return self.sharing_session_id is not None and super().counts_in_bytes(frame_type)

    async def handle_cobrowse_events(self, **part: Any) -> None:
        self.require_conversation()
        if part["session_id"] != self.sharing_session_id:
            raise services.chat_error("cobrowse_not_active")
        await self.channel_layer.group_send(
            events.cobrowse_viewer_group(part["session_id"]), {"type": events.COBROWSE_EVENTS, **part}
        )

    async def handle_cobrowse_code_request(self) -> None:
        if self.conversation_id is not None or self.code_session_id is not None:
            raise services.chat_error("already_joined")
        session, code = await db(services.cobrowse_code_issue)(address_hash=self.address_hash)
        self.code_session_id = session.pk
        await self.channel_layer.group_add(events.cobrowse_code_group(session.pk), self.channel_name)
        await self.send_frame("cobrowse.code", {"code": code, "expires_at": events.isoformat(session.code_expires_at)})

    async def on_snapshot(self, conversation_id: int, snapshot: dict[str, Any]) -> None:
        self.follow_cobrowse(snapshot.get("cobrowse"))

    def follow_cobrowse(self, cobrowse: dict[str, Any] | None) -> None:
        active = cobrowse is not None and cobrowse["status"] == "active"
        self.sharing_session_id = cobrowse["id"] if active else None

    async def chat_cobrowse_changed(self, event: dict[str, Any]) -> None:
        if event["cobrowse"]["conversation_id"] != self.conversation_id:
            return
        self.follow_cobrowse(event["cobrowse"])
        await self.send_frame("cobrowse.updated", {"cobrowse": event["cobrowse"]})

    async def chat_cobrowse_guidance(self, event: dict[str, Any]) -> None:
        if event["session_id"] == self.sharing_session_id:
            await self.send_frame("cobrowse.guidance", event["guidance"])

    async def chat_cobrowse_joined(self, event: dict[str, Any]) -> None:
        if event["session_id"] != self.code_session_id:
            return
        await self.channel_layer.group_discard(events.cobrowse_code_group(self.code_session_id), self.channel_name)
        self.code_session_id = None
        await self.send_frame("cobrowse.joined", {"token": event["token"]})

    async def chat_visitor_presence_changed(self, event: dict[str, Any]) -> None:
        # Another of this resident's sockets closed: this one is still here, so they are too.
        if (
            not event["connected"]
            and event["conversation_id"] == self.conversation_id
            and event["channel_name"] != self.channel_name
        ):
            here = await db(services.conversation_touch_visitor)(
                conversation_id=self.conversation_id, token_hash=self.token_hash, announce=True
            )
            if not here:
                await self.lose_conversation()

    async def handle_ping(self) -> None:
        data: dict[str, Any] = {}
        if self.conversation_id is not None:
            conversation_id, token_hash = self.conversation_id, self.token_hash
            state = await self.within_pong_wait(
                (conversation_id, token_hash), lambda: db(_ping_state)(conversation_id, token_hash)
            )
            if state is not None and not state.opens:
                await self.lose_conversation()
            elif state is not None:
                data["last_seq"] = state.last_seq
        await self.send_frame("pong", data)

    async def chat_conversation_changed(self, event: dict[str, Any]) -> None:
        conversation = event["conversation"]
        await self.send_frame("conversation.updated", {"conversation": conversation})
        if conversation["status"] != Conversation.Status.WAITING:
            await self.leave_waiting()
        elif not self.waiting and conversation["id"] == self.conversation_id:
            # Back in the queue (transferred to it, or its helper went away): place and wait again.
            await self.join_waiting()

    async def chat_token_changed(self, event: dict[str, Any]) -> None:
        if event["conversation_id"] != self.conversation_id or event["token_hash"] == self.token_hash:
            return
        await self.lose_conversation()

    async def lose_conversation(self) -> None:
        """Opened with a token that no longer opens it (the chat moved from a kiosk to a
        phone): this socket can neither read nor post in it any more, exactly as if it resumed
        now."""
        await self.unbind()
        await self.send_error("conversation_not_found")

    async def chat_queue_moved(self, event: dict[str, Any]) -> None:
        # Read before a helper took the chat, an event can arrive after the news that one did
        # (which made this socket stop waiting): it would show a place in a queue it has left.
        if not self.waiting or event["at"] < self.queue_event_at:
            return
        self.queue_event_at = event["at"]
        await self.send_position(event)

    async def chat_typing_changed(self, event: dict[str, Any]) -> None:
        if event["author_kind"] == "helper":
            await self.send_frame("typing.updated", {"typing": event["typing"]})

    async def chat_read_changed(self, event: dict[str, Any]) -> None:
        if event["read"]["reader"] == "helper":
            await self.send_frame("read.updated", {"seq": event["read"]["seq"]})


class PingState(NamedTuple):
    opens: bool  # whether the socket's token still opens the conversation
    last_seq: int


def _ping_state(conversation_id: int, token_hash: str) -> PingState:
    """What a resident's ping reports; the resident counts as here only if the socket's token
    still opens the conversation."""
    if not services.conversation_touch_visitor(conversation_id=conversation_id, token_hash=token_hash):
        return PingState(opens=False, last_seq=0)
    return PingState(
        opens=True,
        last_seq=selectors.conversation_last_seqs(conversation_ids=[conversation_id]).get(conversation_id, 0),
    )


async def kiosk_device_from_scope(scope) -> KioskDevice | None:
    credential = (scope.get("cookies") or {}).get(DEVICE_COOKIE, "")
    return await db(kiosk_services.device_authenticate)(credential) if credential else None


class KioskConsumer(FrameConsumer):
    """An enrolled kiosk's shell: heartbeats in; wipe and revocation orders out."""

    frame_handlers = {
        "kiosk.heartbeat": FrameHandler(KioskHeartbeatForm, "handle_heartbeat"),
        "ping": FrameHandler(EmptyForm, "handle_ping"),
    }
    rate_per_second = 1.0
    rate_burst = 10

    async def connect(self) -> None:
        self.device = await kiosk_device_from_scope(self.scope)
        if self.device is None:
            # Revoked while the kiosk was offline, it learns so here and returns to pairing.
            await self.refuse("kiosk socket")
            return
        await self.channel_layer.group_add(kiosk_events.device_group(self.device.pk), self.channel_name)
        await self.accept()
        await db(kiosk_services.device_socket_changed)(device_id=self.device.pk, opened=True)
        await self.send_frame(
            "kiosk.ready",
            {
                "name": self.device.name,
                "location": self.device.location,
                "idle_timeout_seconds": self.device.idle_timeout_seconds,
            },
        )

    async def disconnect(self, code: int) -> None:
        if getattr(self, "device", None) is None:
            return
        await self.channel_layer.group_discard(kiosk_events.device_group(self.device.pk), self.channel_name)
        await db(kiosk_services.device_socket_changed)(device_id=self.device.pk, opened=False)

    async def handle_heartbeat(self, *, activity: str) -> None:
        await db(kiosk_services.device_heartbeat)(device_id=self.device.pk, activity=activity)

    async def handle_ping(self) -> None:
        await self.send_frame("pong", {})

    async def kiosk_wipe_requested(self, event: dict[str, Any]) -> None:
        await self.send_frame("kiosk.wipe", {})

    async def kiosk_credential_revoked(self, event: dict[str, Any]) -> None:
        await self.send_frame("kiosk.revoked", {})
        await self.close(code=4401)
