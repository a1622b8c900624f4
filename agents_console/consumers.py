"""The helper's console websocket: the live queue and the conversations the helper holds."""

import asyncio
import logging
from typing import Any

from django import forms
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError

from agents_console import events as console_events
from agents_console import presence
from agents_console import selectors as selectors_console
from agents_console.models import HelperProfile
from agents_console.roles import Role, helper_role, helper_role_now
from chat import events, selectors, services
from chat.consumers import ConversationStreamMixin
from chat.forms import (
    CallbackRefForm,
    CobrowseCodeForm,
    CobrowseConversationForm,
    CobrowseGuideForm,
    CobrowseRefForm,
    CobrowseStopForm,
    ConversationMessageSendForm,
    ConversationOpenForm,
    ConversationReadForm,
    ConversationRefForm,
    EmptyForm,
    FrameForm,
)
from chat.models import Conversation, Message
from chat.protocol import FORBIDDEN_CLOSE_CODE, FrameConsumer, FrameHandler
from config.async_db import db
from kiosk import events as kiosk_events
from kiosk import selectors as kiosk_selectors

logger = logging.getLogger(__name__)

# Closes a console socket whose helper was given another role since it opened: the console
# page, drawn for the old role, loads again.
ROLE_CHANGED_CLOSE_CODE = 4409


class PresenceSetForm(FrameForm):
    status = forms.ChoiceField(choices=HelperProfile.Status.choices)


class TransferForm(ConversationRefForm):
    to_helper_id = forms.IntegerField(min_value=1, required=False)
    note = forms.CharField(max_length=1000, required=False)


class NoteAddForm(ConversationRefForm):
    body = forms.CharField(max_length=2000)


def console_snapshot(*, user, role: Role) -> dict[str, Any]:
    """The `queue.snapshot` data. Volunteers see the number waiting, not who."""
    waiting = list(selectors.conversation_list_waiting())
    awaiting_wrap_up = selectors_console.conversation_list_awaiting_wrap_up(helper_id=user.pk)
    sees_queue = role != Role.VOLUNTEER
    return {
        "waiting": [events.conversation_staff_payload(c) for c in waiting] if sees_queue else [],
        "waiting_count": len(waiting),
        "mine": [
            events.conversation_staff_payload(c)
            for c in selectors.conversation_list_active_for_helper(helper_id=user.pk)
        ],
        # A console that was away learns here which of its conversations ended meanwhile.
        "awaiting_wrap_up": [events.conversation_staff_payload(c) for c in awaiting_wrap_up.newest],
        "awaiting_wrap_up_count": awaiting_wrap_up.count,
        "callbacks": [events.callback_payload(c) for c in selectors.callback_list_pending()] if sees_queue else [],
        "presence": presence.helper_profile(user).status,
        "live": [events.conversation_staff_payload(c) for c in selectors.conversation_list_active()]
        if role == Role.SUPERVISOR
        else [],
        "helpers": selectors_console.helper_list_online(),
    }


def _conversation_for(*, conversation_id: int, user, role: Role) -> tuple[Conversation | None, bool]:
    """The conversation this user may follow, and whether only to watch it.

    Its helper follows it; a supervisor may watch any live one; a volunteer never sees one
    that has ended (no transcripts after the end).
    """
    conversation = selectors.conversation_get(conversation_id=conversation_id)
    if conversation is None:
        return None, False
    if conversation.assigned_helper_id == user.pk:
        if role == Role.VOLUNTEER and conversation.is_ended:
            return None, False
        return conversation, False
    if role == Role.SUPERVISOR and not conversation.is_ended:
        return conversation, True
    return None, False


def _open_console(channel_name: str, user, role: Role) -> dict[str, Any]:
    presence.helper_profile(user)
    presence.console_connection_open(channel_name=channel_name, helper_id=user.pk)
    return console_snapshot(user=user, role=role)


def _transfer(*, conversation_id: int, user, role: Role, to_helper_id: int | None, note: str) -> Conversation:
    to_helper = None
    if to_helper_id is not None:
        to_helper = get_user_model().objects.filter(pk=to_helper_id, is_active=True).first()
        if to_helper is None or helper_role(to_helper) is None:
            raise services.chat_error("helper_not_found")
        # The list to choose from can be a few seconds old: a resident told "You are being
        # transferred to Bea" would otherwise wait for Bea until the sweep gave up on her.
        if to_helper.pk not in presence.helper_ids_online():
            raise services.chat_error("helper_offline")
    return services.conversation_transfer(
        conversation_id=conversation_id,
        by_helper=user,
        to_helper=to_helper,
        note=note,
        by_supervisor=role == Role.SUPERVISOR,
    )


class RoleReadAgainAtPings:
    """For a staff socket, whose helper's role (`self.role`) was read when it opened. Each
    ping reads it again, beside the pong (a slow database must hold neither the pong nor the
    check): a helper who has since signed out, been deactivated or been given another role
    may not go on acting through this socket (`role_changed`)."""

    role_check: asyncio.Future | None = None
    # A ping came while a check was under way, which may have read the role before a change
    # the ping must see: one more check follows it. Pings in a flood make no more than that.
    role_check_again = False

    def check_role_beside_the_pong(self) -> None:
        if self.role_check is None or self.role_check.done():
            self.role_check = asyncio.ensure_future(self.check_role())
        else:
            self.role_check_again = True

    async def check_role(self) -> None:
        while True:
            self.role_check_again = False
            try:
                role = await db(helper_role_now)(self.scope["session"].session_key)
            except Exception:
                logger.exception("could not read the role of user %s again", self.user.pk)
                return
            if self.closing:
                return
            if not self.role_still_serves(role):
                logger.warning(
                    "%s of user %s closed: role %s, now %s", type(self).__name__, self.user.pk, self.role, role
                )
                await self.role_changed(role)
                return
            if not self.role_check_again:
                return

    def role_still_serves(self, role: Role | None) -> bool:
        return role == self.role

    async def role_changed(self, role: Role | None) -> None:
        raise NotImplementedError

    async def websocket_disconnect(self, message):
        if self.role_check is not None:
            self.role_check.cancel()
        await super().websocket_disconnect(message)


class ConsoleConsumer(RoleReadAgainAtPings, ConversationStreamMixin, FrameConsumer):
    """One console tab of a signed-in advisor, volunteer or supervisor."""

    frame_handlers = {
        "conversation.accept": FrameHandler(ConversationRefForm, "handle_accept"),
        "conversation.open": FrameHandler(ConversationOpenForm, "handle_open"),
        "message.send": FrameHandler(ConversationMessageSendForm, "handle_message_send"),
        "conversation.end": FrameHandler(ConversationRefForm, "handle_end"),
        "conversation.transfer": FrameHandler(TransferForm, "handle_transfer"),
        "note.add": FrameHandler(NoteAddForm, "handle_note"),
        "message.read": FrameHandler(ConversationReadForm, "handle_read"),
        "typing.start": FrameHandler(ConversationRefForm, "handle_typing_start"),
        "typing.stop": FrameHandler(ConversationRefForm, "handle_typing_stop"),
        "presence.set": FrameHandler(PresenceSetForm, "handle_presence"),
        "helpers.list": FrameHandler(EmptyForm, "handle_helpers_list"),
        "callback.claim": FrameHandler(CallbackRefForm, "handle_callback_claim"),
        "callback.done": FrameHandler(CallbackRefForm, "handle_callback_done"),
        "cobrowse.request": FrameHandler(CobrowseConversationForm, "handle_cobrowse_request"),
        "cobrowse.join_code": FrameHandler(CobrowseCodeForm, "handle_cobrowse_join_code"),
        "cobrowse.view": FrameHandler(CobrowseRefForm, "handle_cobrowse_view"),
        "cobrowse.stop": FrameHandler(CobrowseStopForm, "handle_cobrowse_stop"),
        "cobrowse.guide": FrameHandler(CobrowseGuideForm, "handle_cobrowse_guide"),
        "ping": FrameHandler(EmptyForm, "handle_ping"),
    }
    setup_frame_types = frozenset({"conversation.accept", "conversation.open"})
    # Helpers type quickly across several conversations.
    rate_per_second = 10.0
    rate_burst = 40

    async def connect(self) -> None:
        await self.stream_init()
        self.watching: set[int] = set()
        # Co-browse sessions this tab shows: session id -> conversation id.
        self.viewing: dict[int, int] = {}
        self.user = self.scope.get("user")
        self.role = await db(helper_role)(self.user)
        if self.role is None:
            await self.refuse("console socket")
            return
        await self.channel_layer.group_add(events.queue_group(), self.channel_name)
        await self.accept()
        snapshot = await db(_open_console)(self.channel_name, self.user, self.role)
        if self.role == Role.SUPERVISOR:
            # Supervisors watch the floor live (from this snapshot on; pongs refresh it too);
            # others ask for the list when they transfer.
            await self.channel_layer.group_add(console_events.presence_group(), self.channel_name)
        await self.send_frame("queue.snapshot", snapshot)

    async def disconnect(self, code: int) -> None:
        if getattr(self, "role", None) is not None:
            await self.channel_layer.group_discard(events.queue_group(), self.channel_name)
            await self.channel_layer.group_discard(console_events.presence_group(), self.channel_name)
            await db(presence.console_connection_close)(channel_name=self.channel_name)
        for conversation_id in list(getattr(self, "delivered", {})):
            await self.channel_layer.group_discard(events.conversation_staff_group(conversation_id), self.channel_name)
        for session_id in list(getattr(self, "viewing", {})):
            await self.stop_viewing(session_id)
        await self.stream_leave_all()

    def deny(self, what: str) -> None:
        logger.warning("user %s (%s) denied %s", self.user.pk, self.role, what)
        raise services.chat_error("forbidden")

    async def follow(self, conversation: Conversation, *, after_seq: int, watch: bool) -> None:
        staff_group = events.conversation_staff_group(conversation.pk)
        await self.channel_layer.group_add(staff_group, self.channel_name)
        if watch:
            self.watching.add(conversation.pk)
        else:
            self.watching.discard(conversation.pk)
        try:
            await self.stream_join(conversation, after_seq=after_seq, staff=True)
        except ValidationError:
            # Gone before its snapshot (deleted past its retention): stream_join has let go of
            # it, and so does this tab, or its groups would outlive the socket.
            await self.channel_layer.group_discard(staff_group, self.channel_name)
            self.watching.discard(conversation.pk)
            raise
        notes = await db(_notes)(conversation.pk)
        await self.send_frame(
            "notes.snapshot", {"conversation_id": conversation.pk, "notes": notes, "read_only": watch}
        )

    def refuse_volunteer(self, what: str) -> None:
        """Volunteers work only on what is given to them: they take nothing from the queue or
        the call-back list themselves."""
        if self.role == Role.VOLUNTEER:
            self.deny(what)

    async def handle_accept(self, *, conversation_id: int) -> None:
        self.refuse_volunteer(f"accepting conversation {conversation_id}")
        conversation = await db(services.conversation_assign)(conversation_id=conversation_id, helper=self.user)
        await self.follow(conversation, after_seq=0, watch=False)

    async def handle_open(self, *, conversation_id: int, last_seq: int | None) -> None:
        conversation, watch = await db(_conversation_for)(
            conversation_id=conversation_id, user=self.user, role=self.role
        )
        if conversation is None:
            logger.warning("user %s (%s) denied conversation %s", self.user.pk, self.role, conversation_id)
            raise services.chat_error("not_assigned")
        await self.follow(conversation, after_seq=last_seq or 0, watch=watch)

    async def handle_message_send(self, *, conversation_id: int, client_id: str, body: str) -> None:
        # New or resent, the message comes back through the conversation group, this socket's too.
        await services.amessage_create(
            conversation_id=conversation_id,
            author_kind=Message.AuthorKind.HELPER,
            author=self.user,
            body=body,
            client_id=client_id,
        )

    async def handle_end(self, *, conversation_id: int) -> None:
        await db(services.conversation_end)(
            conversation_id=conversation_id, ended_by=Conversation.EndedBy.HELPER, helper=self.user
        )

    async def handle_transfer(self, *, conversation_id: int, to_helper_id: int | None, note: str) -> None:
        await db(_transfer)(
            conversation_id=conversation_id, user=self.user, role=self.role, to_helper_id=to_helper_id, note=note
        )

    async def handle_note(self, *, conversation_id: int, body: str) -> None:
        await db(services.note_create)(
            conversation_id=conversation_id, author=self.user, body=body, by_supervisor=self.role == Role.SUPERVISOR
        )

    async def handle_read(self, *, conversation_id: int, seq: int) -> None:
        if not self.following(conversation_id) or conversation_id in self.watching:
            raise services.chat_error("not_assigned")
        await db(services.conversation_mark_read)(
            conversation_id=conversation_id, reader=Message.AuthorKind.HELPER, seq=seq, helper=self.user
        )

    async def handle_typing_start(self, *, conversation_id: int) -> None:
        await self.typing(conversation_id, typing=True)

    async def handle_typing_stop(self, *, conversation_id: int) -> None:
        await self.typing(conversation_id, typing=False)

    async def typing(self, conversation_id: int, *, typing: bool) -> None:
        # Following a conversation was authorised when it was opened; no database hop here.
        if not self.following(conversation_id) or conversation_id in self.watching:
            raise services.chat_error("not_assigned")
        await self.stream_typing(conversation_id=conversation_id, author_kind="helper", typing=typing)

    async def handle_presence(self, *, status: str) -> None:
        await db(presence.helper_status_set)(user=self.user, status=status)
        await self.send_frame("presence.updated", {"status": status})
        if status == HelperProfile.Status.AVAILABLE:
            await db(_route_waiting)()

    async def handle_helpers_list(self) -> None:
        helpers = await db(selectors_console.helper_list_online)()
        await self.send_frame("helpers.updated", {"helpers": helpers})

    async def handle_ping(self) -> None:
        self.check_role_beside_the_pong()
        following = frozenset(self.delivered)
        data = await self.within_pong_wait(following, lambda: db(_heartbeat)(self.channel_name, list(following)))
        await self.send_frame("pong", data or {})

    async def role_changed(self, role: Role | None) -> None:
        if role is None:
            await self.send_error("forbidden")
            await self.close(code=FORBIDDEN_CLOSE_CODE)
        else:
            # The console page, drawn for the old role, loads again.
            await self.close(code=ROLE_CHANGED_CLOSE_CODE)

    async def send_queue_count(self) -> None:
        count = await db(_waiting_count)()
        await self.send_frame("queue.counted", {"waiting_count": count})

    def sees(self, conversation: dict[str, Any]) -> bool:
        return self.role != Role.VOLUNTEER or conversation["assigned_helper_id"] == self.user.pk

    async def let_go_unless_still_mine(self, conversation: dict[str, Any]) -> bool | None:
        """A conversation this socket held as its helper went back to the queue or to another
        helper: it stops reading and writing there (typing, read marks, messages) at once, and
        says whether it did. A supervisor who only watches it keeps watching. None: the event
        is older than this socket's hold on it, and must not reach the console, which would
        let go of a conversation the server goes on giving it."""
        conversation_id = conversation["id"]
        if (
            not self.following(conversation_id)
            or conversation_id in self.watching
            or conversation["assigned_helper_id"] == self.user.pk
        ):
            return False
        # The event may be older than this socket's hold on it: the "queued" of a conversation
        # this helper has accepted since can arrive after the accept (another process, or
        # the layer's own delay). The database says who holds it now.
        if await db(selectors.conversation_helper_id)(conversation_id=conversation_id) == self.user.pk:
            return None
        await self.channel_layer.group_discard(events.conversation_staff_group(conversation_id), self.channel_name)
        await self.stream_leave(conversation_id)
        return True

    # A volunteer is told of a conversation taken from them (the console lets it go), though
    # of no other conversation not theirs: those only change the number waiting.

    async def chat_conversation_queued(self, event: dict[str, Any]) -> None:
        conversation = event["conversation"]
        taken = await self.let_go_unless_still_mine(conversation)
        if taken is None:
            return
        sees = self.sees(conversation)
        if sees or taken:
            await self.send_frame("conversation.queued", {"conversation": conversation})
        if not sees:
            await self.send_queue_count()

    async def chat_conversation_assigned(self, event: dict[str, Any]) -> None:
        conversation = event["conversation"]
        taken = await self.let_go_unless_still_mine(conversation)
        if taken is None:
            return
        if self.sees(conversation) or taken:
            await self.send_frame("conversation.assigned", {"conversation": conversation})
        # A volunteer's count falls whoever took it, them included (routing gave it to them).
        if self.role == Role.VOLUNTEER:
            await self.send_queue_count()

    async def chat_conversation_ended(self, event: dict[str, Any]) -> None:
        conversation = event["conversation"]
        # A supervisor who watched it goes on only watching: no typing or read marks after the end.
        if self.sees(conversation):
            await self.send_frame("conversation.ended", {"conversation": conversation})
        else:
            await self.send_queue_count()

    async def chat_conversation_changed(self, event: dict[str, Any]) -> None:
        """The resident's copy of a change; this socket has the fuller queue event already."""

    async def agents_presence_changed(self, event: dict[str, Any]) -> None:
        await self.send_frame("helpers.updated", {"helpers": event["helpers"]})

    async def chat_callback_requested(self, event: dict[str, Any]) -> None:
        if self.role != Role.VOLUNTEER:
            await self.send_frame("callback.requested", {"callback": event["callback"]})

    async def chat_callback_changed(self, event: dict[str, Any]) -> None:
        if self.role != Role.VOLUNTEER:
            await self.send_frame("callback.updated", {"callback": event["callback"]})

    async def handle_callback_claim(self, *, callback_id: int) -> None:
        self.refuse_volunteer(f"call-back request {callback_id}")
        await db(services.callback_claim)(
            callback_id=callback_id, helper=self.user, by_supervisor=self.role == Role.SUPERVISOR
        )

    async def handle_callback_done(self, *, callback_id: int) -> None:
        self.refuse_volunteer(f"call-back request {callback_id}")
        await db(services.callback_complete)(
            callback_id=callback_id, helper=self.user, by_supervisor=self.role == Role.SUPERVISOR
        )

    async def chat_note_created(self, event: dict[str, Any]) -> None:
        if self.following(event["note"]["conversation_id"]):
            await self.send_frame("note.created", {"note": event["note"]})

    async def chat_visitor_presence_changed(self, event: dict[str, Any]) -> None:
        if self.following(event["conversation_id"]):
            await self.send_frame(
                "visitor.presence",
                {"conversation_id": event["conversation_id"], "connected": event["connected"], "at": event["at"]},
            )

    async def chat_typing_changed(self, event: dict[str, Any]) -> None:
        if event["author_kind"] == "visitor":
            await self.send_frame(
                "typing.updated", {"conversation_id": event["conversation_id"], "typing": event["typing"]}
            )

    # --- Co-browse ----------------------------------------------------------------------------

    async def handle_cobrowse_request(self, *, conversation_id: int) -> None:
        await db(services.cobrowse_request)(conversation_id=conversation_id, helper=self.user)

    async def handle_cobrowse_join_code(self, *, code: str) -> None:
        session = await db(services.cobrowse_code_join)(code=code, helper=self.user)
        await self.send_frame(
            "cobrowse.code_joined", {"conversation_id": session.conversation_id, "session_id": session.pk}
        )

    async def handle_cobrowse_view(self, *, session_id: int) -> None:
        """Start (or restart, after a reconnect) showing a session: the resident's page sends a
        fresh full snapshot, so the view is never blank."""
        session = await db(services.cobrowse_viewable)(session_id=session_id, helper=self.user)
        if session is None:
            raise services.chat_error("cobrowse_not_found")
        self.viewing[session.pk] = session.conversation_id
        await self.channel_layer.group_add(events.cobrowse_viewer_group(session.pk), self.channel_name)
        await self.guide(session.pk, {"kind": "snapshot"})

    async def handle_cobrowse_stop(self, *, conversation_id: int, session_id: int) -> None:
        await db(services.cobrowse_stop)(
            conversation_id=conversation_id,
            session_id=session_id,
            stopped_by=Conversation.EndedBy.HELPER,
            helper=self.user,
        )

    async def handle_cobrowse_guide(self, *, session_id: int, **guidance: Any) -> None:
        if session_id not in self.viewing:
            raise services.chat_error("cobrowse_not_active")
        await self.guide(session_id, {key: value for key, value in guidance.items() if value not in (None, "")})

    async def guide(self, session_id: int, guidance: dict[str, Any]) -> None:
        await self.channel_layer.group_send(
            events.cobrowse_resident_group(self.viewing[session_id]),
            {"type": events.COBROWSE_GUIDANCE, "session_id": session_id, "guidance": guidance},
        )

    async def stop_viewing(self, session_id: int) -> None:
        self.viewing.pop(session_id, None)
        await self.channel_layer.group_discard(events.cobrowse_viewer_group(session_id), self.channel_name)

    async def chat_cobrowse_events(self, event: dict[str, Any]) -> None:
        if event["session_id"] in self.viewing:
            await self.send_frame("cobrowse.events", {k: v for k, v in event.items() if k != "type"})

    async def chat_cobrowse_changed(self, event: dict[str, Any]) -> None:
        cobrowse = event["cobrowse"]
        if cobrowse["status"] != "active" and cobrowse["id"] in self.viewing:
            await self.stop_viewing(cobrowse["id"])
        if self.following(cobrowse["conversation_id"]):
            await self.send_frame("cobrowse.updated", {"cobrowse": cobrowse})

    async def chat_read_changed(self, event: dict[str, Any]) -> None:
        read = event["read"]
        if read["reader"] == "visitor":
            await self.send_frame("read.updated", {"conversation_id": read["conversation_id"], "seq": read["seq"]})


def _waiting_count() -> int:
    return selectors.conversation_list_waiting().count()


def _notes(conversation_id: int) -> list[dict[str, Any]]:
    return [events.note_payload(note) for note in selectors.note_list(conversation_id=conversation_id)]


def _route_waiting() -> None:
    from agents_console.assignment import queue_route_waiting

    queue_route_waiting()


def _heartbeat(channel_name: str, conversation_ids: list[int]) -> dict[str, Any]:
    presence.console_connection_seen(channel_name=channel_name)
    seqs = selectors.conversation_last_seqs(conversation_ids=conversation_ids)
    return {
        "conversations": [{"id": pk, "last_seq": seq} for pk, seq in sorted(seqs.items())],
        "helpers": selectors_console.helper_list_online(),
    }


class KioskStatusConsumer(RoleReadAgainAtPings, FrameConsumer):
    """Supervisors' kiosks page: every kiosk's state, live. Nobody else may listen."""

    frame_handlers = {"ping": FrameHandler(EmptyForm, "handle_ping")}

    async def connect(self) -> None:
        self.user = self.scope.get("user")
        self.role = await db(helper_role)(self.user)
        if self.role != Role.SUPERVISOR:
            await self.refuse("kiosk status socket")
            return
        await self.channel_layer.group_add(kiosk_events.devices_group(), self.channel_name)
        await self.accept()
        kiosks = await db(_kiosk_payloads)()
        await self.send_frame("kiosks.snapshot", {"kiosks": kiosks})

    async def disconnect(self, code: int) -> None:
        await self.channel_layer.group_discard(kiosk_events.devices_group(), self.channel_name)

    async def handle_ping(self) -> None:
        self.check_role_beside_the_pong()
        await self.send_frame("pong", {})

    async def role_changed(self, role: Role | None) -> None:
        await self.send_error("forbidden")
        await self.close(code=FORBIDDEN_CLOSE_CODE)

    async def kiosk_device_changed(self, event: dict[str, Any]) -> None:
        await self.send_frame("kiosk.updated", {"kiosk": event["device"]})


def _kiosk_payloads() -> list[dict[str, Any]]:
    return [kiosk_selectors.device_payload(device) for device in kiosk_selectors.device_list()]
