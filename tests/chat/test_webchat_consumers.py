"""The webchat frames on real sockets: queue position, typing, read marks, rating, call backs."""

import datetime
import io
import time

import pytest
from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer
from django.core.management import call_command
from django.utils import timezone

from agents_console.models import ConsoleSettings
from chat import events, selectors, services
from chat.consumers import VisitorConsumer
from chat.error_messages import error_message
from chat.models import CallbackRequest, ClosureDate, CobrowseSession, Conversation, Message
from config.asgi import application
from kiosk import services as kiosk_services
from kiosk.middleware import DEVICE_COOKIE
from tests.agents_console.test_consumers import console, expect_follow
from tests.chat.test_cobrowse import drain, until
from tests.chat.test_consumers import ORIGIN, connect, expect, send, start
from tests.sockets import Communicator

pytestmark = pytest.mark.django_db(transaction=True)


async def accept(helper, conversation_id):
    await helper.send_json_to({"type": "conversation.accept", "data": {"conversation_id": conversation_id}})
    await expect_follow(helper)
    await expect(helper, "conversation.assigned")


async def test_waiting_residents_see_their_place_move_up(advisor):
    helper = await console(advisor)
    await expect(helper, "queue.snapshot")
    first = await connect()
    await start(first, name="First")
    first_id = (await expect(helper, "conversation.queued"))["conversation"]["id"]
    second = await connect()
    await second.send_json_to({"type": "conversation.start", "data": {"name": "Second"}})
    await expect(second, "conversation.started")
    await expect(second, "state.snapshot")
    position = await expect(second, "queue.position")
    assert position["position"] == 2
    assert position["estimated_wait_seconds"] == 2 * 180
    await expect(helper, "conversation.queued")
    assert await first.receive_nothing(timeout=0.3), "the first resident's place did not change"

    await accept(helper, first_id)

    assert (await expect(second, "queue.position"))["position"] == 1
    for communicator in (helper, first, second):
        await communicator.disconnect()


@pytest.mark.real_availability
async def test_a_waiting_resident_is_told_at_once_when_the_last_advisor_steps_away(advisor):
    helper = await console(advisor)
    await expect(helper, "queue.snapshot")
    visitor = await connect()
    await visitor.send_json_to({"type": "conversation.start", "data": {}})
    await expect(visitor, "conversation.started")
    await expect(visitor, "state.snapshot")
    first = await expect(visitor, "queue.position")
    assert (first["available"], first["reason"]) == (True, None)

    await helper.send_json_to({"type": "presence.set", "data": {"status": "away"}})

    told = await expect(visitor, "queue.position")
    assert told == {**first, "available": False, "reason": "no_helpers"}, "the same place, and why"
    await helper.send_json_to({"type": "presence.set", "data": {"status": "available"}})
    assert (await expect(visitor, "queue.position"))["available"] is True
    for communicator in (helper, visitor):
        await communicator.disconnect()


async def test_the_sweep_tells_waiting_residents_when_webchat_closes_and_says_nothing_new_twice(advisor):
    helper = await console(advisor)
    await expect(helper, "queue.snapshot")
    visitor = await connect()
    await start(visitor)
    await sync_to_async(ClosureDate.objects.create)(date=timezone.localdate(), reason="Staff training")

    await sync_to_async(call_command)("assist_sweep", stdout=io.StringIO())

    told = await expect(visitor, "queue.position")
    assert (told["position"], told["available"], told["reason"]) == (1, False, "closed")
    await sync_to_async(services.waiting_residents_update)()
    assert await visitor.receive_nothing(timeout=0.3), "nothing changed: nothing sent"
    for communicator in (helper, visitor):
        await communicator.disconnect()


def test_nobody_waiting_is_nobody_to_tell(broadcasts):
    services.waiting_residents_update()

    assert broadcasts.events(events.QUEUE_MOVED) == []


def test_a_queue_update_that_fails_is_logged_and_what_committed_stands(monkeypatch, caplog):
    def unreadable():
        raise RuntimeError("database gone")

    monkeypatch.setattr(selectors, "queue_state", unreadable)

    conversation, _token = services.conversation_start(visitor_name="Pat")

    assert Conversation.objects.get(pk=conversation.pk).status == Conversation.Status.WAITING
    assert f"broadcast of {events.QUEUE_MOVED} failed" in caplog.text


async def test_a_queue_event_that_arrives_after_a_helper_took_the_chat_is_not_passed_on(advisor, monkeypatch):
    sockets = []
    join_waiting = VisitorConsumer.join_waiting

    async def recorded(self):
        sockets.append(self.channel_name)
        await join_waiting(self)

    monkeypatch.setattr(VisitorConsumer, "join_waiting", recorded)
    helper, visitor, conversation_id = await active_conversation(advisor)
    # Read while the chat still waited, and already on its way to the resident's socket when
    # that socket left the waiting residents' group.
    moved = {
        "type": events.QUEUE_MOVED,
        "waiting": [conversation_id],
        "seconds_per_place": 60,
        "available": True,
        "reason": None,
        "at": time.time(),
    }

    await get_channel_layer().send(sockets[0], moved)

    assert await visitor.receive_nothing(timeout=0.3), "no place in a queue it has left"
    for communicator in (helper, visitor):
        await communicator.disconnect()


async def test_a_queue_event_older_than_the_place_a_resident_was_given_is_ignored(advisor):
    helper = await console(advisor)
    await expect(helper, "queue.snapshot")
    before_start = time.time()
    visitor = await connect()
    await start(visitor)  # place 1
    conversation_id = (await expect(helper, "conversation.queued"))["conversation"]["id"]
    layer = get_channel_layer()
    moved = {
        "type": events.QUEUE_MOVED,
        "waiting": [10**9, conversation_id],
        "seconds_per_place": 60,
        "available": True,
        "reason": None,
    }

    # Read before the resident joined, and still on its way: it would say place 2.
    await layer.group_send(events.waiting_group(), {**moved, "at": before_start})
    assert await visitor.receive_nothing(timeout=0.3)
    await layer.group_send(events.waiting_group(), {**moved, "at": time.time()})

    assert await expect(visitor, "queue.position") == {
        "position": 2,
        "estimated_wait_seconds": 120,
        "available": True,
        "reason": None,
    }
    for communicator in (helper, visitor):
        await communicator.disconnect()


async def active_conversation(advisor):
    """A helper console and a resident in a conversation it has accepted, both drained; the
    resident's token is kept on their communicator (`visitor.token`)."""
    helper = await console(advisor)
    await expect(helper, "queue.snapshot")
    visitor = await connect()
    visitor.token, _snapshot = await start(visitor)
    conversation_id = (await expect(helper, "conversation.queued"))["conversation"]["id"]
    await accept(helper, conversation_id)
    await expect(visitor, "message.created")
    await expect(visitor, "conversation.updated")
    return helper, visitor, conversation_id


async def test_typing_is_relayed_to_the_other_side_only_and_throttled(advisor):
    helper, visitor, conversation_id = await active_conversation(advisor)

    await visitor.send_json_to({"type": "typing.start", "data": {}})
    await visitor.send_json_to({"type": "typing.start", "data": {}})
    assert await expect(helper, "typing.updated") == {"conversation_id": conversation_id, "typing": True}
    assert await helper.receive_nothing(timeout=0.3), "a repeat within two seconds is absorbed"
    assert await visitor.receive_nothing(timeout=0.1), "the typist does not hear their own typing"

    await helper.send_json_to({"type": "typing.start", "data": {"conversation_id": conversation_id}})
    assert await expect(visitor, "typing.updated") == {"typing": True}
    await helper.send_json_to({"type": "typing.stop", "data": {"conversation_id": conversation_id}})
    assert await expect(visitor, "typing.updated") == {"typing": False}
    await helper.disconnect()
    await visitor.disconnect()


async def test_typing_in_a_conversation_you_do_not_follow_is_refused(advisor):
    helper = await console(advisor)
    await expect(helper, "queue.snapshot")
    await helper.send_json_to({"type": "typing.start", "data": {"conversation_id": 5}})
    assert (await expect(helper, "error"))["code"] == "not_assigned"
    visitor = await connect()
    await visitor.send_json_to({"type": "typing.start", "data": {}})
    assert (await expect(visitor, "error"))["code"] == "not_joined"
    await helper.disconnect()
    await visitor.disconnect()


async def test_read_marks_reach_the_writer(advisor):
    helper, visitor, conversation_id = await active_conversation(advisor)
    await helper.send_json_to(
        {"type": "message.send", "data": {"conversation_id": conversation_id, "client_id": "h1", "body": "Hello"}}
    )
    await expect(helper, "message.created")
    await expect(visitor, "message.created")

    await visitor.send_json_to({"type": "message.read", "data": {"seq": 2}})
    assert await expect(helper, "read.updated") == {"conversation_id": conversation_id, "seq": 2}
    await helper.send_json_to({"type": "message.read", "data": {"conversation_id": conversation_id, "seq": 2}})
    assert await expect(visitor, "read.updated") == {"seq": 2}
    conversation = await Conversation.objects.aget(pk=conversation_id)
    assert (conversation.visitor_read_seq, conversation.helper_read_seq) == (2, 2)
    await helper.disconnect()
    await visitor.disconnect()


async def test_a_message_stored_but_never_announced_reaches_the_helper_when_the_resident_resends(advisor, monkeypatch):
    helper, visitor, conversation_id = await active_conversation(advisor)
    # The process that stored it stopped before announcing it (its socket got no answer).
    with monkeypatch.context() as unannounced:
        unannounced.setattr(events, "broadcast_message_created", lambda message: None)
        await sync_to_async(services.message_create)(
            conversation_id=conversation_id, author_kind="visitor", body="Are you there?", client_id="v-1"
        )
    assert await helper.receive_nothing(timeout=0.2)

    # So the widget resends it with its client id.
    await send(visitor, "Are you there?", "v-1")

    assert (await expect(visitor, "message.created"))["seq"] == 2
    assert (await expect(helper, "message.created"))["body"] == "Are you there?"
    assert await visitor.receive_nothing(timeout=0.3), "the same seq must not reach one socket twice"
    await send(visitor, "Are you there?", "v-1")
    assert await helper.receive_nothing(timeout=0.3), "both sockets hold it now: a further resend reaches nobody"
    assert await visitor.receive_nothing(timeout=0.1)
    assert await Message.objects.filter(conversation_id=conversation_id, client_id="v-1").acount() == 1
    await helper.disconnect()
    await visitor.disconnect()


async def test_rating_after_the_end():
    visitor = await connect()
    await start(visitor)
    await visitor.send_json_to({"type": "conversation.rate", "data": {"rating": 5}})
    assert (await expect(visitor, "error"))["code"] == "conversation_not_ended"
    await visitor.send_json_to({"type": "conversation.end", "data": {}})
    await expect(visitor, "message.created")
    await expect(visitor, "conversation.updated")
    await visitor.send_json_to({"type": "conversation.rate", "data": {"rating": 6}})
    assert (await expect(visitor, "error"))["code"] == "invalid_frame"

    await visitor.send_json_to({"type": "conversation.rate", "data": {"rating": 4, "comment": "Kind"}})

    assert await expect(visitor, "conversation.rated") == {"rating": 4}
    conversation = await Conversation.objects.aget()
    assert (conversation.rating, conversation.rating_comment) == (4, "Kind")
    await visitor.disconnect()


async def test_a_chat_closed_before_any_helper_had_it_cannot_be_rated():
    visitor = await connect()
    await start(visitor)
    conversation = await Conversation.objects.aget()
    await sync_to_async(services.conversation_end)(
        conversation_id=conversation.pk, ended_by="system", reason="unanswered"
    )
    await expect(visitor, "message.created")
    await expect(visitor, "conversation.updated")

    await visitor.send_json_to({"type": "conversation.rate", "data": {"rating": 1, "comment": "Nobody came"}})

    error = await expect(visitor, "error")
    assert (error["code"], error["frame_type"]) == ("nothing_to_rate", "conversation.rate")
    conversation = await Conversation.objects.aget()
    assert (conversation.rating, conversation.rating_comment) == (None, "")
    await visitor.disconnect()


async def test_a_socket_open_since_before_the_token_expired_can_no_longer_rate(settings):
    visitor = await connect()
    await start(visitor)
    await visitor.send_json_to({"type": "conversation.end", "data": {}})
    await expect(visitor, "message.created")
    await expect(visitor, "conversation.updated")
    # Ended longer ago than the token lives: a new socket could not reach it, this one neither.
    ended = (await Conversation.objects.aget()).ended_at
    await Conversation.objects.aupdate(ended_at=ended - datetime.timedelta(minutes=settings.CHAT_TOKEN_TTL_MINUTES + 1))

    await visitor.send_json_to({"type": "conversation.rate", "data": {"rating": 1, "comment": "After expiry"}})

    assert (await expect(visitor, "error"))["code"] == "conversation_not_found"
    conversation = await Conversation.objects.aget()
    assert (conversation.rating, conversation.rating_comment) == (None, "")
    await visitor.disconnect()


async def test_a_callback_request_reaches_every_console_and_not_other_residents(advisor):
    helper = await console(advisor)
    await expect(helper, "queue.snapshot")
    bystander = await connect()
    await start(bystander)
    await expect(helper, "conversation.queued")
    visitor = await connect()
    await visitor.send_json_to(
        {"type": "callback.request", "data": {"name": "Pat", "email": "pat@example.com", "message": "Call me"}}
    )

    reference = (await expect(visitor, "callback.requested"))["reference"]
    callback = (await expect(helper, "callback.requested"))["callback"]
    assert reference == f"CB-{callback['id']:06d}"
    assert (callback["name"], callback["email"], callback["message"]) == ("Pat", "pat@example.com", "Call me")
    assert await bystander.receive_nothing(timeout=0.3)
    assert await CallbackRequest.objects.acount() == 1
    for communicator in (helper, bystander, visitor):
        await communicator.disconnect()


async def test_a_callback_request_sent_again_after_its_answer_was_lost_is_kept_once(advisor):
    helper = await console(advisor)
    await expect(helper, "queue.snapshot")
    frame = {
        "type": "callback.request",
        "data": {"client_id": "c" * 32, "name": "Pat", "phone": "01632 960001", "message": "Call me"},
    }
    lost = await connect()
    await lost.send_json_to(frame)
    told = (await expect(helper, "callback.requested"))["callback"]
    await lost.disconnect()  # before its answer was read

    again = await connect()
    await again.send_json_to(frame)

    assert (await expect(again, "callback.requested"))["reference"] == f"CB-{told['id']:06d}"
    assert await helper.receive_nothing(timeout=0.3), "the consoles were told once"
    assert await CallbackRequest.objects.acount() == 1
    for communicator in (helper, again):
        await communicator.disconnect()


async def test_one_address_is_limited_across_its_sockets_and_an_enrolled_kiosk_is_not(settings, kiosk_credential):
    settings.COBROWSE_CODES_PER_ADDRESS_PER_HOUR = 2
    settings.CHAT_STARTS_PER_ADDRESS_PER_HOUR = 0
    kiosk_cookie = (b"cookie", f"{DEVICE_COOKIE}={kiosk_credential}".encode())

    async def ask(frame_type, data, *, headers=()):
        """The first answer to one frame on a fresh socket from 203.0.113.9."""
        communicator = Communicator(application, "/ws/chat/", headers=[ORIGIN, *headers])
        communicator.scope["client"] = ("203.0.113.9", 50000)
        assert (await communicator.connect())[0]
        await communicator.send_json_to({"type": frame_type, "data": data})
        answer = await communicator.receive_json_from()
        await communicator.disconnect()
        return answer["type"], answer["data"].get("code")

    code_request = ("cobrowse.code.request", {})
    assert [(await ask(*code_request))[0] for _ in range(2)] == ["cobrowse.code", "cobrowse.code"]
    assert await ask(*code_request) == ("error", "too_many_codes")
    callback = ("callback.request", {"name": "Pat", "email": "pat@example.com", "message": "Call me"})
    assert await ask(*callback) == ("error", "too_many_conversations")
    assert (await CobrowseSession.objects.acount(), await CallbackRequest.objects.acount()) == (2, 0)

    # An enrolled kiosk at the same address serves one resident after another.
    assert (await ask(*code_request, headers=[kiosk_cookie]))[0] == "cobrowse.code"
    assert (await ask(*callback, headers=[kiosk_cookie]))[0] == "callback.requested"
    assert (await CobrowseSession.objects.acount(), await CallbackRequest.objects.acount()) == (3, 1)


async def test_a_waiting_resident_who_leaves_a_message_stops_waiting_and_an_active_one_does_not(advisor):
    helper = await console(advisor)
    await expect(helper, "queue.snapshot")
    waiting, active = await connect(), await connect()
    await start(waiting, name="Pat")
    waiting_id = (await expect(helper, "conversation.queued"))["conversation"]["id"]
    # What the resident wrote while waiting goes with the message they leave.
    for number, body in enumerate(("My green bin was missed", "It was due on Monday"), start=1):
        await send(waiting, body, f"w-{number}")
        await expect(waiting, "message.created")
    await start(active, name="Kim")
    active_id = (await expect(helper, "conversation.queued"))["conversation"]["id"]
    await accept(helper, active_id)
    callback = {"name": "Pat", "phone": "01632 960001", "message": "Call me about my bin"}

    for communicator in (waiting, active):
        await communicator.send_json_to({"type": "callback.request", "data": callback})
    assert (await until(waiting, "callback.requested"))["reference"].startswith("CB-")
    # With an advisor already there, the resident is in the chat: no message is kept.
    assert (await until(active, "error"))["code"] == "already_answered"

    updated = await until(waiting, "conversation.updated")
    assert (updated["conversation"]["status"], updated["conversation"]["ended_reason"]) == ("ended", "left_message")
    told = {}
    while len(told) < 2:  # in either order: they reach the console through different groups
        frame = await helper.receive_json_from()
        if frame["type"] in ("conversation.ended", "callback.requested"):
            told[frame["type"]] = frame["data"]
    assert told["conversation.ended"]["conversation"]["id"] == waiting_id
    assert told["callback.requested"]["callback"]["earlier_messages"] == [
        "My green bin was missed",
        "It was due on Monday",
    ]
    assert await CallbackRequest.objects.acount() == 1
    left = await Conversation.objects.aget(pk=waiting_id)
    assert (left.status, left.ended_by, left.ended_reason) == ("ended", "visitor", "left_message")
    assert await left.messages.filter(body__contains="left a message").aexists()
    assert (await Conversation.objects.aget(pk=active_id)).status == "active"
    for communicator in (helper, waiting, active):
        await communicator.disconnect()


@pytest.mark.parametrize(
    ("data", "code"),
    [
        ({"name": "Pat", "message": "Call me"}, "contact_required"),
        ({"name": "Pat", "phone": "not a phone", "message": "Call me"}, "invalid_frame"),
        ({"name": "Pat", "phone": "-------", "message": "Call me"}, "invalid_frame"),
        ({"name": "Pat", "phone": "(01) 23-45", "message": "Call me"}, "invalid_frame"),
        ({"name": "Pat", "email": "nope", "message": "Call me"}, "invalid_frame"),
        ({"phone": "01632 960001", "message": "Call me"}, "invalid_frame"),
        ({"name": "Pat", "phone": "01632 960001", "message": "Call me", "client_id": "too-short"}, "invalid_frame"),
    ],
)
async def test_a_bad_callback_request_stores_nothing(data, code):
    visitor = await connect()
    await visitor.send_json_to({"type": "callback.request", "data": data})
    assert (await expect(visitor, "error"))["code"] == code
    assert await CallbackRequest.objects.acount() == 0
    await visitor.disconnect()


@pytest.mark.real_availability
async def test_starting_with_nobody_online_is_refused():
    visitor = await connect()
    await visitor.send_json_to({"type": "conversation.start", "data": {}})
    assert (await expect(visitor, "error"))["code"] == "chat_unavailable"
    assert await Conversation.objects.acount() == 0
    await visitor.disconnect()


@pytest.mark.real_availability
async def test_an_open_console_makes_the_chat_available_until_the_grace_after_closing(advisor):
    helper = await console(advisor)
    await expect(helper, "queue.snapshot")
    visitor = await connect()
    await start(visitor)
    await helper.disconnect()

    # Within the grace period a helper who closed the tab (or is reloading it) still counts.
    during_grace = await connect()
    await during_grace.send_json_to({"type": "conversation.start", "data": {}})
    assert (await expect(during_grace, "conversation.started"))["token"]

    await sync_to_async(ConsoleSettings.objects.update_or_create)(pk=1, defaults={"presence_grace_seconds": 0})
    after_grace = await connect()
    await after_grace.send_json_to({"type": "conversation.start", "data": {}})
    assert (await expect(after_grace, "error"))["code"] == "chat_unavailable"
    for communicator in (visitor, during_grace, after_grace):
        await communicator.disconnect()


async def test_a_configured_council_site_may_embed_the_widget(settings):
    origin = (b"origin", b"https://www.millbrook.example.gov.uk")
    communicator = Communicator(application, "/ws/chat/", headers=[origin])
    connected, _ = await communicator.connect()
    assert not connected, "not configured yet"
    await communicator.disconnect()

    # The allowed list is read when routing is built, as at start-up.
    from importlib import reload

    import chat.routing
    import config.asgi

    settings.CHAT_WIDGET_ORIGINS = ["https://www.millbrook.example.gov.uk"]
    try:
        reload(chat.routing)
        app = reload(config.asgi).application
        communicator = Communicator(app, "/ws/chat/", headers=[origin])
        connected, _ = await communicator.connect()
        assert connected
        await communicator.disconnect()
        console_socket = Communicator(app, "/ws/console/", headers=[origin])
        connected, _ = await console_socket.connect()
        assert not connected, "the console never accepts another site"
        await console_socket.disconnect()
    finally:
        settings.CHAT_WIDGET_ORIGINS = []
        reload(chat.routing)
        reload(config.asgi)


async def test_the_message_and_start_of_an_ended_conversation_can_still_be_read_by_resume():
    visitor = await connect()
    token, _ = await start(visitor)
    await send(visitor, "Hello", "c1")
    await expect(visitor, "message.created")
    await visitor.send_json_to({"type": "conversation.end", "data": {}})
    await expect(visitor, "message.created")
    await expect(visitor, "conversation.updated")
    await visitor.disconnect()

    again = await connect()
    await again.send_json_to({"type": "conversation.resume", "data": {"token": token, "last_seq": 0}})
    snapshot = await expect(again, "state.snapshot")
    assert snapshot["conversation"]["status"] == "ended"
    assert snapshot["messages"][0]["body"] == "Hello"
    assert await again.receive_nothing(timeout=0.2), "no queue position for an ended conversation"
    await again.disconnect()
    assert await sync_to_async(Conversation.objects.count)() == 1


async def frames_until(communicator, frame_type) -> list[dict]:
    """Every frame up to and including the first of `frame_type`."""
    frames = []
    while not frames or frames[-1]["type"] != frame_type:
        frames.append(await communicator.receive_json_from())
    return frames


async def test_a_resident_put_back_in_the_queue_sees_their_place_and_its_moves_again(advisor):
    helper, visitor, conversation_id = await active_conversation(advisor)

    await helper.send_json_to(
        {"type": "conversation.transfer", "data": {"conversation_id": conversation_id, "note": "Needs parking"}}
    )

    frames = await frames_until(visitor, "queue.position")
    assert [frame["data"]["conversation"]["status"] for frame in frames if frame["type"] == "conversation.updated"] == [
        "waiting"
    ]
    assert frames[-1]["data"] == {"position": 1, "estimated_wait_seconds": 180, "available": True, "reason": None}
    # Live again: a resident who queues later is behind, and when this one is taken the
    # resident behind moves up, as for anyone who never left the queue.
    later = await connect()
    await later.send_json_to({"type": "conversation.start", "data": {}})
    await expect(later, "conversation.started")
    await expect(later, "state.snapshot")
    assert (await expect(later, "queue.position"))["position"] == 2
    await helper.send_json_to({"type": "conversation.accept", "data": {"conversation_id": conversation_id}})
    assert (await expect(later, "queue.position"))["position"] == 1
    for communicator in (helper, visitor, later):
        await communicator.disconnect()


async def test_a_chat_handed_to_a_phone_can_no_longer_be_read_or_posted_in_from_the_kiosk(kiosk_credential):
    kiosk = Communicator(
        application, "/ws/chat/", headers=[ORIGIN, (b"cookie", f"{DEVICE_COOKIE}={kiosk_credential}".encode())]
    )
    assert (await kiosk.connect())[0]
    await start(kiosk)
    conversation = await Conversation.objects.select_related("kiosk_visit").aget()
    link = await sync_to_async(kiosk_services.handoff_create)(
        visit=conversation.kiosk_visit, path="/services/report-missed-bin/", with_conversation=True
    )
    _link, phone_token = await sync_to_async(kiosk_services.handoff_redeem)(link)

    assert await expect(kiosk, "error") == {
        "code": "conversation_not_found",
        "message": error_message("conversation_not_found"),
    }
    await send(kiosk, "Still here?", "k-1")
    assert (await expect(kiosk, "error"))["code"] == "not_joined"
    phone = await connect()
    await phone.send_json_to({"type": "conversation.resume", "data": {"token": phone_token}})
    await expect(phone, "state.snapshot")
    await expect(phone, "queue.position")
    await send(phone, "On my phone now", "p-1")
    assert (await expect(phone, "message.created"))["body"] == "On my phone now"
    assert await kiosk.receive_nothing(timeout=0.3), "the kiosk no longer hears the conversation"
    assert [body async for body in Message.objects.filter(author_kind="visitor").values_list("body", flat=True)] == [
        "On my phone now"
    ]
    await kiosk.disconnect()
    await phone.disconnect()


@pytest.mark.parametrize("who", ["helper", "visitor"])
async def test_typing_stops_for_the_other_side_when_the_typist_goes(advisor, who):
    helper, visitor, conversation_id = await active_conversation(advisor)
    typist, other = (helper, visitor) if who == "helper" else (visitor, helper)
    await typist.send_json_to({"type": "typing.start", "data": {"conversation_id": conversation_id}})
    assert (await expect(other, "typing.updated"))["typing"] is True

    await typist.disconnect()

    if who == "visitor":
        assert (await expect(other, "visitor.presence"))["connected"] is False
    assert (await expect(other, "typing.updated"))["typing"] is False
    await other.disconnect()


async def test_call_backs_are_taken_on_and_done_from_the_console_and_every_console_hears(
    advisor, other_advisor, volunteer
):
    alex, bea, vic = await console(advisor), await console(other_advisor), await console(volunteer)
    for communicator in (alex, bea, vic):
        await expect(communicator, "queue.snapshot")
    callback = await sync_to_async(services.callback_request_create)(
        name="Pat", message="Call me", phone="01632 960001"
    )
    for communicator in (alex, bea):
        await expect(communicator, "callback.requested")

    await vic.send_json_to({"type": "callback.claim", "data": {"callback_id": callback.pk}})
    assert (await expect(vic, "error"))["code"] == "forbidden"
    await alex.send_json_to({"type": "callback.claim", "data": {"callback_id": callback.pk}})
    for communicator in (alex, bea):
        updated = (await expect(communicator, "callback.updated"))["callback"]
        assert (updated["status"], updated["claimed_by_name"]) == ("claimed", "Alex")
    await bea.send_json_to({"type": "callback.done", "data": {"callback_id": callback.pk}})
    assert (await expect(bea, "error"))["code"] == "callback_taken"
    await alex.send_json_to({"type": "callback.done", "data": {"callback_id": callback.pk}})
    for communicator in (alex, bea):
        assert (await expect(communicator, "callback.updated"))["callback"]["status"] == "done"
    assert await vic.receive_nothing(timeout=0.3), "volunteers hear nothing of call-backs"
    assert (await CallbackRequest.objects.aget()).status == "done"
    # A console opened now lists no call-back: it is done.
    again = await console(other_advisor)
    assert (await expect(again, "queue.snapshot"))["callbacks"] == []
    for communicator in (alex, bea, vic, again):
        await communicator.disconnect()


async def test_a_token_handed_over_while_a_resume_reads_it_does_not_open_the_conversation(monkeypatch):
    resident = await connect()
    token, _snapshot = await start(resident)
    read_by_token = selectors.conversation_get_by_token

    def read_then_hand_over(**kwargs):
        # The hand-over commits (and is announced) after the resume read the conversation
        # and before its socket joined the group that hears of it.
        conversation = read_by_token(**kwargs)
        services._rotate_token(Conversation.objects.get(pk=conversation.pk))
        return conversation

    monkeypatch.setattr(selectors, "conversation_get_by_token", read_then_hand_over)
    late = await connect()
    await late.send_json_to({"type": "conversation.resume", "data": {"token": token}})

    assert (await expect(late, "error"))["code"] == "conversation_not_found"
    await send(late, "Am I in?", "l-1")
    assert (await expect(late, "error"))["code"] == "not_joined"
    for communicator in (resident, late):
        await communicator.disconnect()


async def handed_over_unheard(resident, *, started: bool = False) -> Conversation:
    """The resident's conversation, moved to another device without this socket hearing: the
    channel layer dropped `chat.token_changed` (a channel over capacity drops events)."""
    if not started:
        resident.token, _snapshot = await start(resident)
    conversation = await Conversation.objects.aget(token_hash=services.token_hash(resident.token))
    await Conversation.objects.filter(pk=conversation.pk).aupdate(token_hash=services.token_hash("the phone's"))
    return conversation


@pytest.mark.parametrize(
    ("frame_type", "with_helper"),
    [
        ("message.read", False),
        ("conversation.rate", False),
        ("callback.request", False),
        ("cobrowse.respond", True),
        ("cobrowse.stop", True),
    ],
)
async def test_a_socket_that_missed_the_hand_over_changes_nothing_in_the_chat(advisor, frame_type, with_helper):
    resident = await connect()
    resident.token, _snapshot = await start(resident)
    conversation = await Conversation.objects.aget(token_hash=services.token_hash(resident.token))
    await send(resident, "Hello", "k-1")
    session = None
    if with_helper:
        await sync_to_async(services.conversation_assign)(conversation_id=conversation.pk, helper=advisor)
        session = await sync_to_async(services.cobrowse_request)(conversation_id=conversation.pk, helper=advisor)
    await drain(resident)
    await handed_over_unheard(resident, started=True)
    data = {
        "message.read": {"seq": 1},
        "conversation.rate": {"rating": 5},
        "callback.request": {"name": "Pat", "phone": "01632 960001", "message": "Call me"},
        "cobrowse.respond": {"session_id": session and session.pk, "accept": True},
        "cobrowse.stop": {"session_id": session and session.pk},
    }[frame_type]

    await resident.send_json_to({"type": frame_type, "data": data})

    refused = await expect(resident, "error")
    assert (refused["code"], refused["frame_type"]) == ("conversation_not_found", frame_type)
    await conversation.arefresh_from_db()
    assert (conversation.status, conversation.visitor_read_seq, conversation.rating) == (
        "active" if with_helper else "waiting",
        0,
        None,
    )
    assert not await CallbackRequest.objects.aexists()
    if session is not None:
        assert (await CobrowseSession.objects.aget(pk=session.pk)).status == "requested"
    await send(resident, "Still here?", "k-2")
    assert (await expect(resident, "error"))["code"] == "not_joined", "it let go of the chat"
    await resident.disconnect()


async def test_a_socket_that_missed_the_hand_over_does_not_answer_for_the_resident(advisor):
    helper, kiosk, conversation_id = await active_conversation(advisor)
    await handed_over_unheard(kiosk, started=True)
    phone = await connect()
    await resume(phone, "the phone's")
    await phone.disconnect()

    assert (await expect(helper, "visitor.presence"))["connected"] is False
    told = await expect(kiosk, "error")
    assert told["code"] == "conversation_not_found" and "frame_type" not in told
    assert await helper.receive_nothing(timeout=0.3), "nobody is there: the kiosk does not say otherwise"
    assert (await Conversation.objects.aget(pk=conversation_id)).visitor_left_at is not None
    for communicator in (helper, kiosk):
        await communicator.disconnect()


async def test_a_socket_that_missed_the_hand_over_can_post_nothing_and_stops_hearing_the_chat():
    resident = await connect()
    conversation = await handed_over_unheard(resident)

    await send(resident, "Still me at the kiosk", "k-1")

    refused = await expect(resident, "error")
    assert (refused["code"], refused["frame_type"], refused["client_id"]) == (
        "conversation_not_found",
        "message.send",
        "k-1",
    )
    assert await Message.objects.filter(conversation=conversation).acount() == 0
    assert (await Conversation.objects.aget(pk=conversation.pk)).last_seq == 0, "no number taken"
    # It let go of the conversation: the phone's messages no longer reach it.
    await sync_to_async(services.message_create)(
        conversation_id=conversation.pk, author_kind="visitor", body="From my phone", client_id="p-1"
    )
    assert await resident.receive_nothing(timeout=0.3)
    await send(resident, "Again", "k-2")
    assert (await expect(resident, "error"))["code"] == "not_joined"
    await resident.disconnect()


async def test_a_socket_that_missed_the_hand_over_can_not_end_the_chat():
    resident = await connect()
    conversation = await handed_over_unheard(resident)

    await resident.send_json_to({"type": "conversation.end", "data": {}})

    refused = await expect(resident, "error")
    assert (refused["code"], refused["frame_type"]) == ("conversation_not_found", "conversation.end")
    assert (await Conversation.objects.aget(pk=conversation.pk)).status == "waiting"
    await resident.send_json_to({"type": "conversation.end", "data": {}})
    assert (await expect(resident, "error"))["code"] == "not_joined"
    await resident.disconnect()


async def test_a_ping_tells_a_socket_that_missed_the_hand_over_and_does_not_count_it_as_the_resident():
    resident = await connect()
    conversation = await handed_over_unheard(resident)
    seen_before = (await Conversation.objects.aget(pk=conversation.pk)).visitor_last_seen_at

    await resident.send_json_to({"type": "ping", "data": {}})

    told = await expect(resident, "error")
    assert told["code"] == "conversation_not_found" and "frame_type" not in told, "as the token's own news says"
    assert await expect(resident, "pong") == {}, "answered, with nothing of a chat it no longer has"
    assert (await Conversation.objects.aget(pk=conversation.pk)).visitor_last_seen_at == seen_before
    await send(resident, "Hello?", "k-1")
    assert (await expect(resident, "error"))["code"] == "not_joined"
    await resident.disconnect()


async def test_a_conversation_deleted_while_a_resume_reads_it_is_not_found_and_not_joined(monkeypatch):
    resident = await connect()
    token, _snapshot = await start(resident)
    await resident.disconnect()
    read_token_hash = selectors.conversation_token_hash

    def read_then_delete(*, conversation_id):
        # Deleted (its retention over) after the resume checked its token, before the
        # snapshot reads it.
        token_hash = read_token_hash(conversation_id=conversation_id)
        Conversation.objects.filter(pk=conversation_id).delete()
        return token_hash

    monkeypatch.setattr(selectors, "conversation_token_hash", read_then_delete)
    late = await connect()
    await late.send_json_to({"type": "conversation.resume", "data": {"token": token}})

    assert (await expect(late, "error"))["code"] == "conversation_not_found"
    await send(late, "Am I in?", "l-1")
    assert (await expect(late, "error"))["code"] == "not_joined"
    assert await Message.objects.acount() == 0
    await late.disconnect()


async def test_a_client_id_reused_for_different_words_is_refused_and_stores_nothing():
    visitor = await connect()
    await start(visitor)
    await send(visitor, "Hello", "c-1")
    await expect(visitor, "message.created")

    await send(visitor, "Something else", "c-1")

    error = await expect(visitor, "error")
    assert (error["code"], error["client_id"], error["frame_type"]) == ("duplicate_client_id", "c-1", "message.send")
    assert [m.body async for m in Message.objects.all()] == ["Hello"]
    # The same words again are a resend, not a clash: no error, and nothing stored twice
    # (this socket already holds the message, so nothing is sent to it again).
    await send(visitor, "Hello", "c-1")
    assert await visitor.receive_nothing(timeout=0.3)
    assert await Message.objects.acount() == 1
    await visitor.disconnect()


async def test_a_second_rating_is_refused_and_the_first_stands():
    visitor = await connect()
    await start(visitor)
    await visitor.send_json_to({"type": "conversation.end", "data": {}})
    await expect(visitor, "message.created")
    await expect(visitor, "conversation.updated")
    await visitor.send_json_to({"type": "conversation.rate", "data": {"rating": 5, "comment": "Great"}})
    await expect(visitor, "conversation.rated")

    await visitor.send_json_to({"type": "conversation.rate", "data": {"rating": 1, "comment": "Changed my mind"}})

    assert (await expect(visitor, "error"))["code"] == "already_rated"
    conversation = await Conversation.objects.aget()
    assert (conversation.rating, conversation.rating_comment) == (5, "Great")
    await visitor.disconnect()


@pytest.mark.parametrize("frame_type", ["callback.claim", "callback.done"])
async def test_a_call_back_that_does_not_exist_is_refused(advisor, frame_type):
    helper = await console(advisor)
    await expect(helper, "queue.snapshot")

    await helper.send_json_to({"type": frame_type, "data": {"callback_id": 999_999}})

    error = await expect(helper, "error")
    assert (error["code"], error["frame_type"]) == ("callback_not_found", frame_type)
    assert await CallbackRequest.objects.acount() == 0
    assert await helper.receive_nothing(timeout=0.2), "nobody hears of a refusal"
    await helper.disconnect()


async def resume(communicator, token):
    await communicator.send_json_to({"type": "conversation.resume", "data": {"token": token, "last_seq": 0}})
    return await expect(communicator, "state.snapshot")


async def test_the_helper_sees_the_resident_leave_and_come_back(advisor):
    helper, visitor, conversation_id = await active_conversation(advisor)

    await visitor.disconnect()

    left = await expect(helper, "visitor.presence")
    assert (left["conversation_id"], left["connected"]) == (conversation_id, False)
    conversation = await Conversation.objects.aget(pk=conversation_id)
    assert conversation.visitor_left_at is not None
    assert not events.visitor_connected(conversation)
    # A console opening it now is told too, by the conversation itself.
    again = await console(advisor)
    mine = (await expect(again, "queue.snapshot"))["mine"]
    assert [(c["id"], c["visitor_connected"]) for c in mine] == [(conversation_id, False)]

    back = await connect()
    await resume(back, visitor.token)

    assert (await expect(helper, "visitor.presence"))["connected"] is True
    assert (await Conversation.objects.aget(pk=conversation_id)).visitor_left_at is None
    for communicator in (helper, back, again):
        await communicator.disconnect()


async def test_closing_one_of_two_open_pages_does_not_count_as_leaving(advisor):
    helper, first, conversation_id = await active_conversation(advisor)
    second = await connect()
    await resume(second, first.token)

    await first.disconnect()

    # The page still open answers for the resident at once.
    assert (await expect(helper, "visitor.presence"))["connected"] is False
    assert (await expect(helper, "visitor.presence"))["connected"] is True
    assert (await Conversation.objects.aget(pk=conversation_id)).visitor_left_at is None
    assert await second.receive_nothing(timeout=0.3), "the page still open is told nothing"
    await helper.disconnect()
    await second.disconnect()


async def test_an_ended_conversation_records_no_departure(advisor):
    visitor = await connect()
    await start(visitor)
    await visitor.send_json_to({"type": "conversation.end", "data": {}})
    await expect(visitor, "message.created")
    await expect(visitor, "conversation.updated")

    await visitor.disconnect()

    assert (await Conversation.objects.aget()).visitor_left_at is None


async def test_a_bound_socket_refuses_another_conversation_and_a_sharing_code():
    first, second = await connect(), await connect()
    await start(first, name="Pat")
    other_token, _snapshot = await start(second, name="Kim")

    await first.send_json_to({"type": "conversation.resume", "data": {"token": other_token}})
    assert (await expect(first, "error"))["code"] == "already_joined"
    await first.send_json_to({"type": "cobrowse.code.request", "data": {}})
    assert (await expect(first, "error"))["code"] == "already_joined"

    # It still carries its own conversation, and only that one.
    await send(first, "Still Pat", "p-1")
    created = await expect(first, "message.created")
    assert created["conversation_id"] != (await Conversation.objects.aget(visitor_name="Kim")).pk
    assert not await CobrowseSession.objects.aexists()
    for communicator in (first, second):
        await communicator.disconnect()


async def test_a_message_left_for_a_service_that_does_not_exist_is_refused_and_nothing_kept():
    resident = await connect()

    await resident.send_json_to(
        {
            "type": "callback.request",
            "data": {"name": "Pat", "phone": "01632 960001", "message": "Call me", "service": "no-such-service"},
        }
    )

    refused = await expect(resident, "error")
    assert (refused["code"], refused["frame_type"]) == ("service_not_found", "callback.request")
    assert not await CallbackRequest.objects.aexists()
    await resident.disconnect()


async def test_the_per_minute_limit_refuses_the_message_by_its_client_id_and_keeps_nothing(settings):
    settings.CHAT_MESSAGES_PER_MINUTE = 2
    resident = await connect()
    await start(resident)
    for number in (1, 2):
        await send(resident, f"Message {number}", f"m-{number}")
        await expect(resident, "message.created")

    await send(resident, "One too many", "m-3")

    refused = await expect(resident, "error")
    assert (refused["code"], refused["frame_type"], refused["client_id"]) == ("rate_limited", "message.send", "m-3")
    assert await Message.objects.filter(author_kind="visitor").acount() == 2
    await resident.disconnect()


@pytest.mark.parametrize(
    ("frame_type", "data"),
    [
        ("message.read", {"seq": 1}),
        ("conversation.rate", {"rating": 5}),
        ("conversation.end", {}),
        ("callback.request", {"name": "Pat", "phone": "01632 960001", "message": "Call me"}),
        ("ping", {}),
    ],
)
async def test_a_socket_open_since_the_end_loses_the_chat_once_its_token_expires(settings, frame_type, data):
    resident = await connect()
    resident.token, _snapshot = await start(resident)
    conversation = await Conversation.objects.aget(token_hash=services.token_hash(resident.token))
    await send(resident, "Hello", "r-1")
    await sync_to_async(services.conversation_end)(conversation_id=conversation.pk, ended_by="visitor")
    await drain(resident)
    # The tab stayed open past the token's lifetime.
    ended_long_ago = timezone.now() - datetime.timedelta(minutes=settings.CHAT_TOKEN_TTL_MINUTES + 1)
    await Conversation.objects.filter(pk=conversation.pk).aupdate(ended_at=ended_long_ago)

    await resident.send_json_to({"type": frame_type, "data": data})

    told = await expect(resident, "error")
    assert told["code"] == "conversation_not_found"
    assert told.get("frame_type") == (None if frame_type == "ping" else frame_type)
    if frame_type == "ping":
        await expect(resident, "pong")
    await conversation.arefresh_from_db()
    assert (conversation.visitor_read_seq, conversation.rating, conversation.ended_at) == (0, None, ended_long_ago)
    assert not await CallbackRequest.objects.aexists()
    await send(resident, "Still here?", "r-2")
    assert (await expect(resident, "error"))["code"] == "not_joined", "it let go of the chat"
    await resident.disconnect()
