"""A console frame the rules refuse gets its own error code and changes nothing.

The pairs of frame and code not already driven through the socket elsewhere: each test
sends the frame over the real ASGI application and checks the database after.
"""

import pytest
from asgiref.sync import sync_to_async
from channels.layers import channel_layers, get_channel_layer

from agents_console import consumers as console_consumers
from chat import events, services
from chat.models import CallbackRequest, CobrowseSession, Conversation, InternalNote, Message
from config.asgi import application
from tests.agents_console.test_consumers import console, expect_error
from tests.chat.test_cobrowse import accepted_conversation, drain
from tests.chat.test_consumers import ORIGIN, connect, expect, start
from tests.sockets import Communicator

pytestmark = pytest.mark.django_db(transaction=True)


async def refused(communicator, frame_type, data):
    await communicator.send_json_to({"type": frame_type, "data": data})
    error = await expect_error(communicator)
    assert error["frame_type"] == frame_type
    # Named, so the console shows the error beside that conversation.
    assert error.get("conversation_id") == data.get("conversation_id")
    return error["code"]


async def signed_in(user):
    communicator = await console(user)
    await expect(communicator, "queue.snapshot")
    return communicator


async def test_a_transfer_that_would_move_nothing_or_is_not_theirs_is_refused(advisor, other_advisor, supervisor):
    alex, resident, held_id = await accepted_conversation(advisor)
    bea, sam = await signed_in(other_advisor), await signed_in(supervisor)
    waiting = await connect()
    await start(waiting, name="Wendy")
    waiting_conversation = await Conversation.objects.aget(visitor_name="Wendy")
    messages_before = await Message.objects.acount()

    assert await refused(bea, "conversation.transfer", {"conversation_id": held_id}) == "not_assigned"
    # To the helper who has it: the resident would be told of a move that is none.
    for who in (alex, sam):
        to_alex = {"conversation_id": held_id, "to_helper_id": advisor.pk}
        assert await refused(who, "conversation.transfer", to_alex) == "already_assigned"
    # Back to the queue it waits in: it would lose its place.
    back = {"conversation_id": waiting_conversation.pk, "note": "Try again"}
    assert await refused(sam, "conversation.transfer", back) == "already_waiting"

    held = await Conversation.objects.aget(pk=held_id)
    assert (held.status, held.assigned_helper_id) == ("active", advisor.pk)
    after = await Conversation.objects.aget(pk=waiting_conversation.pk)
    assert (after.status, after.queued_at) == ("waiting", waiting_conversation.queued_at)
    assert await Message.objects.acount() == messages_before
    assert await InternalNote.objects.acount() == 0

    # A supervisor may still give the waiting conversation to a helper.
    to_alex = {"conversation_id": waiting_conversation.pk, "to_helper_id": advisor.pk}
    await sam.send_json_to({"type": "conversation.transfer", "data": to_alex})
    while (await Conversation.objects.aget(pk=waiting_conversation.pk)).assigned_helper_id != advisor.pk:
        await sam.receive_json_from()

    await sync_to_async(services.conversation_end)(conversation_id=held_id, ended_by="visitor")
    assert await refused(alex, "conversation.transfer", {"conversation_id": held_id}) == "conversation_ended"
    assert (await Conversation.objects.aget(pk=held_id)).status == "ended"
    for communicator in (alex, bea, sam, resident, waiting):
        await communicator.disconnect()


async def test_a_note_on_someone_elses_conversation_and_a_share_in_an_ended_one_are_refused(advisor, other_advisor):
    alex, resident, conversation_id = await accepted_conversation(advisor)
    bea = await signed_in(other_advisor)

    note = {"conversation_id": conversation_id, "body": "I know this resident"}
    assert await refused(bea, "note.add", note) == "not_assigned"
    assert await InternalNote.objects.acount() == 0

    await sync_to_async(services.conversation_end)(conversation_id=conversation_id, ended_by="visitor")
    assert await refused(alex, "cobrowse.request", {"conversation_id": conversation_id}) == "conversation_ended"
    assert await CobrowseSession.objects.acount() == 0
    for communicator in (alex, bea, resident):
        await communicator.disconnect()


async def test_a_call_back_taken_on_by_one_helper_cannot_be_claimed_by_another(advisor, other_advisor):
    callback = await sync_to_async(services.callback_request_create)(
        name="Pat", message="Call me", phone="01632 960001"
    )
    alex, bea = await signed_in(advisor), await signed_in(other_advisor)
    await alex.send_json_to({"type": "callback.claim", "data": {"callback_id": callback.pk}})
    while (await CallbackRequest.objects.aget()).claimed_by_id != advisor.pk:
        await alex.receive_json_from()

    assert await refused(bea, "callback.claim", {"callback_id": callback.pk}) == "callback_taken"
    claimed = await CallbackRequest.objects.aget()
    assert (claimed.status, claimed.claimed_by_id) == ("claimed", advisor.pk)
    for communicator in (alex, bea):
        await communicator.disconnect()


async def test_a_helper_past_the_per_minute_limit_is_told_and_nothing_more_is_stored(advisor, settings):
    settings.CHAT_MESSAGES_PER_MINUTE = 2
    alex, resident, conversation_id = await accepted_conversation(advisor)

    for number in range(1, 4):
        body = {"conversation_id": conversation_id, "client_id": f"h-{number}", "body": f"Reply {number}"}
        await alex.send_json_to({"type": "message.send", "data": body})
    error = await expect_error(alex)
    assert (error["code"], error["frame_type"], error["client_id"]) == ("rate_limited", "message.send", "h-3")
    stored = [m.client_id async for m in Message.objects.filter(author_kind="helper").order_by("seq")]
    assert stored == ["h-1", "h-2"]
    for communicator in (alex, resident):
        await communicator.disconnect()


async def test_a_conversation_gone_while_opening_or_reading_is_refused_and_not_followed(advisor, monkeypatch, settings):
    # The in-memory layer, whichever the run uses, so that its groups can be looked into.
    settings.CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    channel_layers.backends.clear()
    try:
        alex, resident, conversation_id = await accepted_conversation(advisor)
        found = console_consumers._conversation_for

        def deleted_after_lookup(**kwargs):
            conversation, watch = found(**kwargs)
            Conversation.objects.filter(pk=conversation.pk).delete()
            return conversation, watch

        # Deleted (its retention passed) between the access check and the snapshot.
        monkeypatch.setattr(console_consumers, "_conversation_for", deleted_after_lookup)
        code = await refused(alex, "conversation.open", {"conversation_id": conversation_id})
        monkeypatch.undo()

        assert code == "conversation_not_found"
        members = get_channel_layer().groups
        (console_channel,) = members[events.queue_group()]
        for group in (events.conversation_group(conversation_id), events.conversation_staff_group(conversation_id)):
            assert console_channel not in members.get(group, {}), group
        await alex.send_json_to({"type": "ping", "data": {}})
        assert (await expect(alex, "pong")) is not None, "the socket goes on"
        for communicator in (alex, resident):
            await communicator.disconnect()
    finally:
        channel_layers.backends.clear()


async def test_marking_read_a_conversation_deleted_meanwhile_is_refused(advisor):
    alex, resident, conversation_id = await accepted_conversation(advisor)
    await Conversation.objects.filter(pk=conversation_id).adelete()

    code = await refused(alex, "message.read", {"conversation_id": conversation_id, "seq": 1})

    assert code == "conversation_not_found"
    assert await Conversation.objects.acount() == 0
    for communicator in (alex, resident):
        await communicator.disconnect()


async def test_a_second_sharing_code_on_one_socket_is_refused():
    resident = await connect()
    await resident.send_json_to({"type": "cobrowse.code.request", "data": {}})
    await expect(resident, "cobrowse.code")

    assert await refused(resident, "cobrowse.code.request", {}) == "already_joined"
    assert await CobrowseSession.objects.acount() == 1
    assert await drain(resident) == []
    await resident.disconnect()


async def test_a_start_past_the_per_address_limit_is_refused(settings):
    settings.CHAT_STARTS_PER_ADDRESS_PER_HOUR = 1

    async def connect_from_one_address():
        communicator = Communicator(application, "/ws/chat/", headers=[ORIGIN])
        communicator.scope["client"] = ("203.0.113.9", 50000)
        assert (await communicator.connect())[0]
        return communicator

    first = await connect_from_one_address()
    await start(first, name="Pat")
    second = await connect_from_one_address()

    assert await refused(second, "conversation.start", {"name": "Pat again"}) == "too_many_conversations"
    assert [c.visitor_name async for c in Conversation.objects.all()] == ["Pat"]
    for communicator in (first, second):
        await communicator.disconnect()


async def test_an_error_names_the_conversation_only_when_the_frame_named_it_validly(advisor):
    alex = await signed_in(advisor)

    await alex.send_json_to({"type": "message.send", "data": {"conversation_id": 7, "client_id": "c-1"}})
    error = await expect_error(alex)
    assert (error["code"], list(error["fields"])) == ("invalid_frame", ["body"])
    assert (error["conversation_id"], error["client_id"]) == (7, "c-1")

    for wrong in ("7", 0, True):
        await alex.send_json_to({"type": "conversation.open", "data": {"conversation_id": wrong}})
        error = await expect_error(alex)
        assert (error["code"], list(error["fields"])) == ("invalid_frame", ["conversation_id"])
        assert "conversation_id" not in error
    await alex.disconnect()
