"""The console's workspace frames on real sockets: transfer, notes, presence, volunteers."""

import pytest
from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer

from agents_console import presence
from agents_console.models import AssistedTransaction, ConsoleSettings, HelperProfile
from chat import events, services
from chat.models import Conversation, Message
from tests.agents_console.test_consumers import console, expect, expect_follow
from tests.chat.test_consumers import connect as connect_visitor
from tests.chat.test_consumers import expect as expect_visitor
from tests.chat.test_consumers import start

pytestmark = pytest.mark.django_db(transaction=True)


async def online_elsewhere(helper) -> None:
    """`helper` has a console open somewhere (the test does not drive it): transfers may reach them."""
    await sync_to_async(presence.console_connection_open)(channel_name=f"elsewhere-{helper.pk}", helper_id=helper.pk)


async def waiting_conversation(helper):
    visitor = await connect_visitor()
    await start(visitor, name="Pat")
    conversation_id = (await expect(helper, "conversation.queued"))["conversation"]["id"]
    return visitor, conversation_id


async def accept(helper, conversation_id):
    await helper.send_json_to({"type": "conversation.accept", "data": {"conversation_id": conversation_id}})
    await expect_follow(helper)
    await expect(helper, "conversation.assigned")


async def active_conversation(helper):
    """A resident in a conversation this fresh console accepted; the resident's news drained."""
    await expect(helper, "queue.snapshot")
    visitor, conversation_id = await waiting_conversation(helper)
    await accept(helper, conversation_id)
    await expect_visitor(visitor, "message.created")
    await expect_visitor(visitor, "conversation.updated")
    return visitor, conversation_id


async def test_transfer_with_a_note_reaches_the_new_helper_and_not_the_resident(advisor, other_advisor):
    alex = await console(advisor)
    bea = await console(other_advisor)
    await expect(alex, "queue.snapshot")
    await expect(bea, "queue.snapshot")
    visitor, conversation_id = await waiting_conversation(alex)
    await expect(bea, "conversation.queued")
    await accept(alex, conversation_id)
    await expect(bea, "conversation.assigned")
    await expect_visitor(visitor, "message.created")
    await expect_visitor(visitor, "conversation.updated")

    await alex.send_json_to(
        {
            "type": "conversation.transfer",
            "data": {"conversation_id": conversation_id, "to_helper_id": other_advisor.pk, "note": "Permit, step 3"},
        }
    )

    note = (await expect(alex, "note.created"))["note"]
    assert note["body"] == "Transfer note: Permit, step 3"
    assert (await expect(alex, "message.created"))["body"] == "You are being transferred to Bea."
    assigned = await expect(bea, "conversation.assigned")
    assert assigned["conversation"]["assigned_helper_id"] == other_advisor.pk
    await bea.send_json_to({"type": "conversation.open", "data": {"conversation_id": conversation_id}})
    await expect(bea, "state.snapshot")
    notes = await expect(bea, "notes.snapshot")
    assert [n["body"] for n in notes["notes"]] == ["Transfer note: Permit, step 3"]

    assert (await expect_visitor(visitor, "message.created"))["body"] == "You are being transferred to Bea."
    updated = await expect_visitor(visitor, "conversation.updated")
    assert updated["conversation"]["helper_name"] == "Bea"
    assert await visitor.receive_nothing(timeout=0.3), "the note never reaches the resident"
    for communicator in (alex, bea, visitor):
        await communicator.disconnect()


@pytest.mark.parametrize("to", ["queue", "helper"])
async def test_after_a_transfer_the_old_helper_can_no_longer_read_or_write_there(advisor, other_advisor, to):
    alex = await console(advisor)
    visitor, conversation_id = await active_conversation(alex)
    data = {"conversation_id": conversation_id}
    if to == "helper":
        await online_elsewhere(other_advisor)
        data["to_helper_id"] = other_advisor.pk
    await alex.send_json_to({"type": "conversation.transfer", "data": data})
    await expect(alex, "message.created")
    await expect(alex, "conversation.queued" if to == "queue" else "conversation.assigned")

    while not await visitor.receive_nothing(timeout=0.3):  # the transfer's news
        await visitor.receive_json_from()
    await visitor.send_json_to({"type": "message.send", "data": {"client_id": "v-1", "body": "Only for the next one"}})
    assert (await expect_visitor(visitor, "message.created"))["body"] == "Only for the next one"
    for frame_type in ("typing.start", "message.read"):
        extra = {"seq": 1} if frame_type == "message.read" else {}
        await alex.send_json_to({"type": frame_type, "data": {"conversation_id": conversation_id, **extra}})
        assert (await expect(alex, "error"))["code"] == "not_assigned"
    assert await alex.receive_nothing(timeout=0.3), "the resident's message did not reach the old helper"
    assert await visitor.receive_nothing(timeout=0.1), "the resident saw no typing from the old helper"
    await alex.disconnect()
    await visitor.disconnect()


async def test_transfer_to_someone_who_is_not_a_helper_is_refused(advisor, resident_account):
    alex = await console(advisor)
    await expect(alex, "queue.snapshot")
    visitor, conversation_id = await waiting_conversation(alex)
    await accept(alex, conversation_id)
    await alex.send_json_to(
        {
            "type": "conversation.transfer",
            "data": {"conversation_id": conversation_id, "to_helper_id": resident_account.pk},
        }
    )
    assert (await expect(alex, "error"))["code"] == "helper_not_found"
    assert (await Conversation.objects.aget(pk=conversation_id)).assigned_helper_id == advisor.pk
    await alex.disconnect()
    await visitor.disconnect()


async def test_transfer_to_a_helper_who_is_not_online_is_refused(advisor, other_advisor):
    """Else the resident is told "You are being transferred to Bea" and waits for nobody."""
    alex = await console(advisor)
    await expect(alex, "queue.snapshot")
    visitor, conversation_id = await waiting_conversation(alex)
    await accept(alex, conversation_id)
    transfer = {"conversation_id": conversation_id, "to_helper_id": other_advisor.pk}
    await alex.send_json_to({"type": "conversation.transfer", "data": transfer})
    assert (await expect(alex, "error"))["code"] == "helper_offline"
    assert (await Conversation.objects.aget(pk=conversation_id)).assigned_helper_id == advisor.pk
    assert not await Message.objects.filter(conversation_id=conversation_id, body__contains="transferred").aexists()
    await alex.disconnect()
    await visitor.disconnect()


async def test_presence_can_be_set_and_survives_reconnection(advisor):
    alex = await console(advisor)
    snapshot = await expect(alex, "queue.snapshot")
    assert snapshot["presence"] == "available"
    await alex.send_json_to({"type": "presence.set", "data": {"status": "away"}})
    assert await expect(alex, "presence.updated") == {"status": "away"}
    await alex.send_json_to({"type": "presence.set", "data": {"status": "asleep"}})
    assert (await expect(alex, "error"))["code"] == "invalid_frame"
    await alex.disconnect()

    again = await console(advisor)
    assert (await expect(again, "queue.snapshot"))["presence"] == "away"
    assert (await HelperProfile.objects.aget(user=advisor)).status == "away"
    await again.disconnect()


async def test_helpers_list_names_who_is_online_with_their_status_and_load(advisor, other_advisor, volunteer):
    alex, bea = await console(advisor), await console(other_advisor)
    for communicator in (alex, bea):
        await expect(communicator, "queue.snapshot")
    await bea.send_json_to({"type": "presence.set", "data": {"status": "away"}})
    await expect(bea, "presence.updated")
    visitor, conversation_id = await waiting_conversation(alex)
    await expect(bea, "conversation.queued")
    await accept(alex, conversation_id)

    await alex.send_json_to({"type": "helpers.list", "data": {}})

    helpers = (await expect(alex, "helpers.updated"))["helpers"]
    by_id = {helper["id"]: helper for helper in helpers}
    assert set(by_id) == {advisor.pk, other_advisor.pk}, "a helper with no console open is not offered"
    assert (by_id[advisor.pk]["presence"], by_id[advisor.pk]["active"]) == ("available", 1)
    assert (by_id[other_advisor.pk]["presence"], by_id[other_advisor.pk]["active"]) == ("away", 0)
    assert [helper["name"] for helper in helpers] == ["Alex", "Bea"]
    for communicator in (alex, bea, visitor):
        await communicator.disconnect()


async def accepted_while_a_volunteer_counts(alex, vic):
    """A resident who starts and whom Alex accepts: Vic, a volunteer, is told only the count."""
    visitor, conversation_id = await waiting_conversation(alex)
    assert await expect(vic, "queue.counted") == {"waiting_count": 1}
    await accept(alex, conversation_id)
    assert await expect(vic, "queue.counted") == {"waiting_count": 0}
    return visitor, conversation_id


async def test_a_volunteer_sees_no_queue_details_only_what_is_given_to_them(volunteer, advisor):
    vic = await console(volunteer)
    snapshot = await expect(vic, "queue.snapshot")
    alex = await console(advisor)
    await expect(alex, "queue.snapshot")
    visitor, conversation_id = await accepted_while_a_volunteer_counts(alex, vic)
    await alex.send_json_to(
        {"type": "conversation.transfer", "data": {"conversation_id": conversation_id, "to_helper_id": volunteer.pk}}
    )
    given = await expect(vic, "conversation.assigned")
    assert given["conversation"]["assigned_helper_id"] == volunteer.pk
    assert await expect(vic, "queue.counted") == {"waiting_count": 0}
    assert snapshot["waiting"] == [] and snapshot["callbacks"] == []

    await vic.send_json_to({"type": "conversation.open", "data": {"conversation_id": conversation_id}})
    await expect_follow(vic)
    await vic.send_json_to({"type": "conversation.end", "data": {"conversation_id": conversation_id}})
    await expect(vic, "message.created")
    await expect(vic, "conversation.ended")
    await vic.send_json_to({"type": "conversation.open", "data": {"conversation_id": conversation_id}})
    assert (await expect(vic, "error"))["code"] == "not_assigned", "no transcript after the end"
    for communicator in (vic, alex, visitor):
        await communicator.disconnect()


async def given_to_volunteer(alex, vic, volunteer):
    """A conversation Alex accepted and passed to Vic, who follows it."""
    visitor, conversation_id = await accepted_while_a_volunteer_counts(alex, vic)
    await alex.send_json_to(
        {"type": "conversation.transfer", "data": {"conversation_id": conversation_id, "to_helper_id": volunteer.pk}}
    )
    await expect(vic, "conversation.assigned")
    assert await expect(vic, "queue.counted") == {"waiting_count": 0}
    await vic.send_json_to({"type": "conversation.open", "data": {"conversation_id": conversation_id}})
    await expect_follow(vic)
    return visitor, conversation_id


@pytest.mark.parametrize("to_advisor", [False, True], ids=["back to the queue", "to an advisor"])
async def test_a_volunteer_is_told_when_a_conversation_is_taken_from_them(volunteer, advisor, to_advisor):
    """So their console lets it go, rather than keep a chat whose every reply is refused."""
    vic = await console(volunteer)
    await expect(vic, "queue.snapshot")
    alex = await console(advisor)
    await expect(alex, "queue.snapshot")
    visitor, conversation_id = await given_to_volunteer(alex, vic, volunteer)

    data = (
        {"conversation_id": conversation_id, "to_helper_id": advisor.pk}
        if to_advisor
        else {"conversation_id": conversation_id}
    )
    await vic.send_json_to({"type": "conversation.transfer", "data": data})

    # The conversation's own "transferred" line may come first: Vic still followed it then.
    frame = await vic.receive_json_from()
    if frame["type"] == "message.created":
        assert frame["data"]["author"]["kind"] == "system"
        frame = await vic.receive_json_from()
    taken = frame["data"]
    if to_advisor:
        assert frame["type"] == "conversation.assigned"
        assert taken["conversation"]["assigned_helper_id"] == advisor.pk
        assert await expect(vic, "queue.counted") == {"waiting_count": 0}
    else:
        assert frame["type"] == "conversation.queued"
        assert taken["conversation"]["status"] == "waiting"
        assert await expect(vic, "queue.counted") == {"waiting_count": 1}
    assert taken["conversation"]["id"] == conversation_id
    await vic.send_json_to({"type": "typing.start", "data": {"conversation_id": conversation_id}})
    assert (await expect(vic, "error"))["code"] == "not_assigned"
    for communicator in (vic, alex, visitor):
        await communicator.disconnect()


async def test_a_volunteer_is_not_told_of_conversations_never_theirs(volunteer, advisor, other_advisor):
    vic = await console(volunteer)
    await expect(vic, "queue.snapshot")
    alex = await console(advisor)
    await expect(alex, "queue.snapshot")
    visitor, conversation_id = await accepted_while_a_volunteer_counts(alex, vic)
    await online_elsewhere(other_advisor)

    await alex.send_json_to(
        {
            "type": "conversation.transfer",
            "data": {"conversation_id": conversation_id, "to_helper_id": other_advisor.pk},
        }
    )
    assert await expect(vic, "queue.counted") == {"waiting_count": 0}
    await sync_to_async(services.conversation_transfer)(conversation_id=conversation_id, by_helper=other_advisor)
    assert await expect(vic, "queue.counted") == {"waiting_count": 1}
    assert await vic.receive_nothing(timeout=0.3)
    for communicator in (vic, alex, visitor):
        await communicator.disconnect()


async def test_a_supervisor_watches_read_only_and_may_leave_a_note(supervisor, advisor):
    alex = await console(advisor)
    visitor, conversation_id = await active_conversation(alex)
    sam = await console(supervisor)
    snapshot = await expect(sam, "queue.snapshot")
    assert [c["id"] for c in snapshot["live"]] == [conversation_id]

    await sam.send_json_to({"type": "conversation.open", "data": {"conversation_id": conversation_id}})
    await expect(sam, "state.snapshot")
    assert (await expect(sam, "notes.snapshot"))["read_only"] is True
    await sam.send_json_to({"type": "typing.start", "data": {"conversation_id": conversation_id}})
    assert (await expect(sam, "error"))["code"] == "not_assigned"
    await sam.send_json_to({"type": "note.add", "data": {"conversation_id": conversation_id, "body": "Well handled"}})
    assert (await expect(sam, "note.created"))["note"]["body"] == "Well handled"
    assert (await expect(alex, "note.created"))["note"]["author_name"] == "Sam"
    assert await visitor.receive_nothing(timeout=0.3)

    # Still only watching once it has ended.
    await alex.send_json_to({"type": "conversation.end", "data": {"conversation_id": conversation_id}})
    # The system message and the end travel to different groups: either may come first.
    assert sorted([(await sam.receive_json_from())["type"] for _ in range(2)]) == [
        "conversation.ended",
        "message.created",
    ]
    for frame_type in ("typing.start", "message.read"):
        data = {"conversation_id": conversation_id, **({"seq": 3} if frame_type == "message.read" else {})}
        await sam.send_json_to({"type": frame_type, "data": data})
        assert (await expect(sam, "error"))["code"] == "not_assigned"
    assert (await Conversation.objects.aget(pk=conversation_id)).helper_read_seq == 0
    for communicator in (sam, alex, visitor):
        await communicator.disconnect()


@pytest.mark.django_db
def test_help_without_a_chat_is_logged_from_the_same_form(client, advisor, service):
    client.force_login(advisor)
    response = client.post(
        "/console/log/",
        {
            "channel": "drop_in",
            "services": [service.pk],
            "outcome": "done_alone",
            "typed_by": "resident",
            "can_do_alone_next_time": "yes",
            "minutes_spent": "20",
        },
    )
    assert response.status_code == 302
    record = AssistedTransaction.objects.get()
    assert (record.channel, record.conversation, record.outcome) == ("drop_in", None, "done_alone")


@pytest.mark.django_db
def test_help_without_a_chat_needs_where_it_was_given(client, advisor, service):
    client.force_login(advisor)
    response = client.post("/console/log/", {"services": [service.pk], "outcome": "done_alone"})
    assert "Select where you helped." in response.content.decode()
    assert AssistedTransaction.objects.count() == 0


async def test_every_denied_attempt_is_logged_with_who_tried(advisor, other_advisor, volunteer, caplog):
    alex = await console(advisor)
    await expect(alex, "queue.snapshot")
    visitor, conversation_id = await waiting_conversation(alex)
    vic = await console(volunteer)
    await expect(vic, "queue.snapshot")
    await vic.send_json_to({"type": "conversation.accept", "data": {"conversation_id": conversation_id}})
    assert (await expect(vic, "error"))["code"] == "forbidden"
    await accept(alex, conversation_id)
    bea = await console(other_advisor)
    await expect(bea, "queue.snapshot")
    await bea.send_json_to(
        {"type": "message.send", "data": {"conversation_id": conversation_id, "client_id": "x", "body": "hi"}}
    )
    assert (await expect(bea, "error"))["code"] == "not_assigned"

    logged = [record.getMessage() for record in caplog.records if record.levelname == "WARNING"]
    assert any(f"user {volunteer.pk} (volunteer) denied accepting conversation {conversation_id}" in m for m in logged)
    assert any(f"denied message.send (not_assigned) to user {other_advisor.pk}" in m for m in logged)
    for communicator in (alex, vic, bea, visitor):
        await communicator.disconnect()


async def test_a_late_queue_event_does_not_take_away_a_conversation_the_helper_holds(advisor):
    alex = await console(advisor)
    visitor, conversation_id = await active_conversation(alex)

    # The "queued" announced when the resident arrived, delivered only now (a slow layer).
    conversation = await Conversation.objects.aget(pk=conversation_id)
    conversation.assigned_helper = None
    stale = await sync_to_async(events.conversation_staff_payload)(conversation)
    await get_channel_layer().group_send(
        events.queue_group(), {"type": events.CONVERSATION_QUEUED, "conversation": stale}
    )
    # Not passed on: the console would let go of a conversation the server goes on giving it.
    assert await alex.receive_nothing(timeout=0.3)

    await visitor.send_json_to({"type": "message.send", "data": {"client_id": "v-1", "body": "Still there?"}})
    assert (await expect(alex, "message.created"))["body"] == "Still there?"
    await alex.disconnect()
    await visitor.disconnect()


async def routing_automatically_to(helper):
    """Automatic routing, `helper`'s console (its snapshot read) and a resident's socket."""
    await sync_to_async(ConsoleSettings.objects.update_or_create)(
        pk=1, defaults={"routing": ConsoleSettings.Routing.AUTOMATIC}
    )
    helper_console = await console(helper)
    await expect(helper_console, "queue.snapshot")
    return helper_console, await connect_visitor()


async def test_a_resident_answered_by_automatic_routing_within_their_start_is_shown_the_chat(advisor):
    """Routing gives the conversation to Alex before the resident's socket follows it, so the
    snapshot must say so: not "in the queue" while Alex is already there."""
    alex, visitor = await routing_automatically_to(advisor)

    await visitor.send_json_to({"type": "conversation.start", "data": {"name": "Pat"}})
    await expect_visitor(visitor, "conversation.started")
    snapshot = await expect_visitor(visitor, "state.snapshot")

    assert (snapshot["conversation"]["status"], snapshot["conversation"]["helper_name"]) == ("active", "Alex")
    assert [m["body"] for m in snapshot["messages"]] == ["Alex joined the conversation."]
    assert await visitor.receive_nothing(timeout=0.3), "no queue position for a resident being answered"
    for communicator in (alex, visitor):
        await communicator.disconnect()


async def test_a_volunteer_given_a_chat_by_routing_sees_the_number_waiting_fall(volunteer):
    vic, visitor = await routing_automatically_to(volunteer)

    await visitor.send_json_to({"type": "conversation.start", "data": {"name": "Pat"}})

    # The count sent as it joined the queue may already be 0 (routing can commit first).
    frame = await vic.receive_json_from()
    while frame["type"] == "queue.counted":
        frame = await vic.receive_json_from()
    assert frame["type"] == "conversation.assigned"
    assert frame["data"]["conversation"]["assigned_helper_id"] == volunteer.pk
    # It used to stay "Waiting (1)" until something else changed the queue.
    assert await expect(vic, "queue.counted") == {"waiting_count": 0}
    for communicator in (vic, visitor):
        await communicator.disconnect()
