"""The helper's console websocket, driven through the real ASGI application."""

import datetime
import json

import pytest
from asgiref.sync import sync_to_async
from django.conf import settings
from django.contrib.auth.models import Group
from django.contrib.sessions.models import Session
from django.test import Client
from django.utils import timezone

from agents_console import selectors as selectors_console
from agents_console import services as console_services
from agents_console.consumers import ConsoleConsumer
from agents_console.models import ConsoleConnection
from agents_console.roles import Role
from chat import services
from chat.models import CallbackRequest, Conversation, Message
from chat.protocol import FrameConsumer
from config.asgi import application
from tests.chat.test_consumers import connect as connect_visitor
from tests.chat.test_consumers import expect, send, start, writes_held
from tests.sockets import Communicator

pytestmark = pytest.mark.django_db(transaction=True)


async def console(user=None, *, path="/ws/console/", cookies=None):
    """A staff socket (the console by default) signed in as `user`, with any extra `cookies`."""
    headers = [(b"origin", b"http://testserver")]
    cookies = dict(cookies or {})
    if user is not None:
        client = Client()
        await sync_to_async(client.force_login)(user)
        cookies[settings.SESSION_COOKIE_NAME] = client.cookies[settings.SESSION_COOKIE_NAME].value
    if cookies:
        headers.append((b"cookie", "; ".join(f"{name}={value}" for name, value in cookies.items()).encode()))
    communicator = Communicator(application, path, headers=headers)
    connected, _ = await communicator.connect()
    assert connected
    return communicator


async def expect_follow(communicator):
    """A console that follows a conversation gets its messages, then its staff notes."""
    snapshot = await expect(communicator, "state.snapshot")
    notes = await expect(communicator, "notes.snapshot")
    assert notes["conversation_id"] == snapshot["conversation"]["id"]
    return snapshot


async def assert_refused(communicator):
    error = await expect(communicator, "error")
    assert error["code"] == "forbidden"
    output = await communicator.receive_output()
    assert output == {"type": "websocket.close", "code": 4403}


def deactivate(user):
    type(user).objects.filter(pk=user.pk).update(is_active=False)


def sign_out_everywhere(user):
    for session in Session.objects.all():
        if session.get_decoded().get("_auth_user_id") == str(user.pk):
            session.delete()


def change_password_elsewhere(user):
    """As an administrator does for a leaver: Django then signs them out everywhere else."""
    user.set_password("a-new-password-123")
    user.save()


def expire_session(user):
    Session.objects.update(expire_date=timezone.now() - datetime.timedelta(seconds=1))


def demote_to_volunteer(user):
    user.groups.set([Group.objects.get(name=Role.VOLUNTEER.value)])


async def after_a_ping(communicator) -> tuple[list, int]:
    """What a socket says after a ping, besides the pong, up to its close (the pong and the
    role check run side by side: the pong may come first, or not at all), and its close code."""
    await communicator.send_json_to({"type": "ping", "data": {}})
    said = []
    while (output := await communicator.receive_output()).get("type") == "websocket.send":
        frame = json.loads(output["text"])
        if frame["type"] != "pong":
            said.append(frame["data"].get("code") if frame["type"] == "error" else frame["type"])
    return said, output["code"]


@pytest.mark.parametrize(
    "change",
    [deactivate, sign_out_everywhere, change_password_elsewhere, expire_session],
    ids=["deactivated", "signed out", "password changed elsewhere", "session expired"],
)
async def test_a_console_open_when_its_helper_loses_access_is_closed_at_the_next_ping(advisor, change):
    """Its socket was allowed when it opened; it may not go on acting as that helper."""
    helper = await console(advisor)
    await expect(helper, "queue.snapshot")
    await helper.send_json_to({"type": "ping", "data": {}})
    await expect(helper, "pong")

    await sync_to_async(change)(advisor)

    assert await after_a_ping(helper) == (["forbidden"], 4403)


async def test_a_stalled_database_delays_neither_the_pong_nor_the_role_check(advisor, monkeypatch):
    monkeypatch.setattr(FrameConsumer, "pong_database_wait_seconds", 0.5)
    helper = await console(advisor)
    await expect(helper, "queue.snapshot")
    await sync_to_async(deactivate)(advisor)

    with writes_held(ConsoleConnection._meta.db_table):
        assert await after_a_ping(helper) == (["forbidden"], 4403)


async def test_frames_sent_as_the_socket_closes_are_not_acted_on(advisor, service):
    conversation, _token = await sync_to_async(services.conversation_start)()
    helper = await console(advisor)
    await expect(helper, "queue.snapshot")
    await sync_to_async(deactivate)(advisor)

    assert await after_a_ping(helper) == (["forbidden"], 4403)

    # Sent before the client heard the close.
    await helper.send_json_to({"type": "conversation.accept", "data": {"conversation_id": conversation.pk}})

    assert await helper.receive_nothing(timeout=0.5)
    assert (await Conversation.objects.aget(pk=conversation.pk)).assigned_helper_id is None


async def test_a_console_whose_helper_has_another_role_now_is_closed_to_open_again(advisor):
    helper = await console(advisor)
    await expect(helper, "queue.snapshot")

    await sync_to_async(demote_to_volunteer)(advisor)

    assert await after_a_ping(helper) == ([], 4409)
    again = await console(advisor)  # as the console does on 4409, by loading the page again
    await expect(again, "queue.snapshot")
    await again.disconnect()


async def test_the_kiosks_page_socket_closes_once_its_supervisor_is_not_one(supervisor):
    watcher = await console(supervisor, path="/ws/console/kiosks/")
    await expect(watcher, "kiosks.snapshot")
    await watcher.send_json_to({"type": "ping", "data": {}})
    await expect(watcher, "pong")

    await sync_to_async(demote_to_volunteer)(supervisor)

    assert await after_a_ping(watcher) == (["forbidden"], 4403)


async def test_anonymous_is_refused():
    await assert_refused(await console())


async def test_signed_in_account_without_a_role_is_refused(resident_account):
    await assert_refused(await console(resident_account))


@pytest.mark.parametrize("role_fixture", ["advisor", "volunteer", "supervisor"])
async def test_each_role_gets_the_queue_snapshot(role_fixture, request):
    user = await sync_to_async(request.getfixturevalue)(role_fixture)
    communicator = await console(user)

    snapshot = await expect(communicator, "queue.snapshot")
    user = await sync_to_async(request.getfixturevalue)(role_fixture)

    assert (snapshot["waiting"], snapshot["mine"], snapshot["callbacks"], snapshot["live"]) == ([], [], [], [])
    assert snapshot["waiting_count"] == 0
    assert snapshot["presence"] == "available"
    assert [helper["id"] for helper in snapshot["helpers"]] == [user.pk]
    await communicator.disconnect()


async def test_the_whole_loop_between_a_resident_and_an_advisor(advisor):
    helper = await console(advisor)
    await expect(helper, "queue.snapshot")
    visitor = await connect_visitor()
    await start(visitor, name="Pat")
    queued = await expect(helper, "conversation.queued")
    conversation_id = queued["conversation"]["id"]
    assert queued["conversation"]["visitor_name"] == "Pat"

    await send(visitor, "I missed my bin", "v-1")
    await expect(visitor, "message.created")
    await helper.send_json_to({"type": "conversation.accept", "data": {"conversation_id": conversation_id}})
    # The accepting socket gets its snapshot first; the queue event follows from the layer.
    snapshot = await expect_follow(helper)
    assigned = await expect(helper, "conversation.assigned")
    assert assigned["conversation"]["assigned_helper_id"] == advisor.pk
    assert [m["body"] for m in snapshot["messages"]] == ["I missed my bin", "Alex joined the conversation."]

    joined = await expect(visitor, "message.created")
    updated = await expect(visitor, "conversation.updated")
    assert joined["author"]["kind"] == "system"
    assert updated["conversation"] == {
        "id": conversation_id,
        "status": "active",
        "channel": "web",
        "helper_name": "Alex",
        "last_seq": 2,
        "ended_by": None,
        "ended_reason": None,
        "helper_read_seq": 0,
        "rating": None,
        "queued_at": None,
    }

    await helper.send_json_to(
        {"type": "message.send", "data": {"conversation_id": conversation_id, "client_id": "h-1", "body": "I can help"}}
    )
    assert (await expect(visitor, "message.created"))["body"] == "I can help"
    assert (await expect(helper, "message.created"))["author"] == {"kind": "helper", "name": "Alex"}

    await send(visitor, "Thank you", "v-2")
    assert (await expect(helper, "message.created"))["body"] == "Thank you"
    await expect(visitor, "message.created")

    await helper.send_json_to({"type": "conversation.end", "data": {"conversation_id": conversation_id}})
    assert (await expect(helper, "message.created"))["body"] == "The helper ended the conversation."
    ended = await expect(helper, "conversation.ended")
    assert ended["conversation"]["status"] == "ended"
    assert (await expect(visitor, "message.created"))["author"]["kind"] == "system"
    assert (await expect(visitor, "conversation.updated"))["conversation"]["status"] == "ended"
    assert await helper.receive_nothing(timeout=0.2)
    assert await Message.objects.filter(conversation_id=conversation_id).acount() == 5
    await helper.disconnect()
    await visitor.disconnect()


async def test_the_second_helper_to_accept_is_told_it_is_gone(advisor, other_advisor):
    first = await console(advisor)
    second = await console(other_advisor)
    await expect(first, "queue.snapshot")
    await expect(second, "queue.snapshot")
    visitor = await connect_visitor()
    await start(visitor)
    conversation_id = (await expect(first, "conversation.queued"))["conversation"]["id"]
    await expect(second, "conversation.queued")

    await first.send_json_to({"type": "conversation.accept", "data": {"conversation_id": conversation_id}})
    await expect_follow(first)
    await expect(first, "conversation.assigned")
    await second.send_json_to({"type": "conversation.accept", "data": {"conversation_id": conversation_id}})
    assigned_seen_by_second = await expect(second, "conversation.assigned")
    error = await expect(second, "error")

    assert assigned_seen_by_second["conversation"]["assigned_helper_id"] == advisor.pk
    assert error["code"] == "conversation_gone"
    conversation = await Conversation.objects.aget(pk=conversation_id)
    assert conversation.assigned_helper_id == advisor.pk
    for communicator in (first, second, visitor):
        await communicator.disconnect()


async def test_a_helper_cannot_open_or_post_in_someone_elses_conversation(advisor, other_advisor):
    owner = await console(advisor)
    intruder = await console(other_advisor)
    await expect(owner, "queue.snapshot")
    await expect(intruder, "queue.snapshot")
    visitor = await connect_visitor()
    await start(visitor)
    conversation_id = (await expect(owner, "conversation.queued"))["conversation"]["id"]
    await owner.send_json_to({"type": "conversation.accept", "data": {"conversation_id": conversation_id}})
    await expect_follow(owner)
    await expect(owner, "conversation.assigned")
    await expect(intruder, "conversation.queued")
    await expect(intruder, "conversation.assigned")

    await intruder.send_json_to({"type": "conversation.open", "data": {"conversation_id": conversation_id}})
    open_error = await expect(intruder, "error")
    await intruder.send_json_to(
        {"type": "message.send", "data": {"conversation_id": conversation_id, "client_id": "x", "body": "hello"}}
    )
    send_error = await expect(intruder, "error")
    await intruder.send_json_to({"type": "conversation.end", "data": {"conversation_id": conversation_id}})
    end_error = await expect(intruder, "error")

    assert [open_error["code"], send_error["code"], end_error["code"]] == ["not_assigned"] * 3
    assert await intruder.receive_nothing(timeout=0.2), "the intruder must see no message of the conversation"
    assert await Message.objects.filter(author_kind="helper").acount() == 0
    assert (await Conversation.objects.aget(pk=conversation_id)).status == "active"
    for communicator in (owner, intruder, visitor):
        await communicator.disconnect()


async def test_a_reconnecting_helper_reopens_a_conversation_from_its_last_seq(advisor):
    helper = await console(advisor)
    await expect(helper, "queue.snapshot")
    visitor = await connect_visitor()
    await start(visitor)
    conversation_id = (await expect(helper, "conversation.queued"))["conversation"]["id"]
    await helper.send_json_to({"type": "conversation.accept", "data": {"conversation_id": conversation_id}})
    await expect_follow(helper)
    await expect(helper, "conversation.assigned")
    await helper.disconnect()

    await send(visitor, "are you there?", "v-1")
    # Stored before the console comes back (the echo says so), so it is in the snapshot.
    while (await visitor.receive_json_from())["type"] != "message.created":
        pass
    again = await console(advisor)
    snapshot = await expect(again, "queue.snapshot")
    assert [c["id"] for c in snapshot["mine"]] == [conversation_id]
    await again.send_json_to({"type": "conversation.open", "data": {"conversation_id": conversation_id, "last_seq": 1}})
    reopened = await expect_follow(again)

    assert [m["body"] for m in reopened["messages"]] == ["are you there?"]
    await again.disconnect()
    await visitor.disconnect()


async def test_the_snapshot_lists_the_helpers_ended_conversations_not_yet_logged(advisor, other_advisor, service):
    """So a console back from a lost connection learns which of its conversations ended."""

    def ended_by(helper, name):
        conversation, _token = services.conversation_start(visitor_name=name, service=service)
        services.conversation_assign(conversation_id=conversation.pk, helper=helper)
        return services.conversation_end(conversation_id=conversation.pk, ended_by="helper", helper=helper)[0]

    def prepare():
        logged = ended_by(advisor, "Logged")
        console_services.assisted_transaction_create(
            helper=advisor,
            services=[service],
            outcome="done_with_guidance",
            barriers=[],
            typed_by="resident",
            can_do_alone_next_time="yes",
            minutes_spent=5,
            conversation=logged,
        )
        ended_by(other_advisor, "Someone else's")
        first = ended_by(advisor, "Pat")
        return first, ended_by(advisor, "Kim")

    first, second = await sync_to_async(prepare)()
    communicator = await console(advisor)
    snapshot = await expect(communicator, "queue.snapshot")

    assert [(c["id"], c["status"], c["visitor_name"]) for c in snapshot["awaiting_wrap_up"]] == [
        (second.pk, "ended", "Kim"),
        (first.pk, "ended", "Pat"),
    ]
    assert snapshot["awaiting_wrap_up_count"] == 2
    assert snapshot["mine"] == []
    await communicator.disconnect()


async def test_the_snapshot_lists_only_the_newest_conversations_not_yet_logged_and_counts_them_all(
    advisor, service, monkeypatch
):
    """A helper who never logs is not sent every conversation they ever ended."""
    monkeypatch.setattr(selectors_console, "AWAITING_WRAP_UP_LISTED", 2)

    def end_three():
        for name in ("Pat", "Kim", "Lee"):
            conversation, _token = services.conversation_start(visitor_name=name, service=service)
            services.conversation_assign(conversation_id=conversation.pk, helper=advisor)
            services.conversation_end(conversation_id=conversation.pk, ended_by="helper", helper=advisor)

    await sync_to_async(end_three)()
    communicator = await console(advisor)
    snapshot = await expect(communicator, "queue.snapshot")

    assert [c["visitor_name"] for c in snapshot["awaiting_wrap_up"]] == ["Lee", "Kim"]
    assert snapshot["awaiting_wrap_up_count"] == 3
    await communicator.disconnect()


async def test_a_fault_while_opening_a_conversation_closes_the_console_socket(advisor, monkeypatch):
    """Half-followed is worse than not at all: the console reconnects and reopens everything."""
    from agents_console.consumers import ConsoleConsumer

    visitor = await connect_visitor()
    await start(visitor)
    helper = await console(advisor)
    await expect(helper, "queue.snapshot")
    conversation_id = (await Conversation.objects.aget()).pk
    await helper.send_json_to({"type": "conversation.accept", "data": {"conversation_id": conversation_id}})
    await expect_follow(helper)
    await expect(helper, "conversation.assigned")

    async def broken(self, *args, **kwargs):
        raise RuntimeError("the channel layer went away mid-open")

    monkeypatch.setattr(ConsoleConsumer, "follow", broken)
    await helper.send_json_to({"type": "conversation.open", "data": {"conversation_id": conversation_id}})
    error = await expect(helper, "error")
    monkeypatch.undo()

    assert (error["code"], error["frame_type"]) == ("server_error", "conversation.open")
    assert await helper.receive_output() == {"type": "websocket.close", "code": 1011}
    await visitor.disconnect()


async def test_the_resident_never_receives_queue_events(advisor):
    visitor = await connect_visitor()
    await start(visitor)
    other_visitor = await connect_visitor()
    await start(other_visitor, name="Someone else")

    assert await visitor.receive_nothing(timeout=0.3), "another resident's arrival must not reach this resident"
    await visitor.disconnect()
    await other_visitor.disconnect()


@pytest.mark.parametrize(
    ("frame", "code"),
    [
        ({"type": "conversation.accept", "data": {}}, "invalid_frame"),
        ({"type": "conversation.accept", "data": {"conversation_id": "7"}}, "invalid_frame"),
        ({"type": "conversation.accept", "data": {"conversation_id": 0}}, "invalid_frame"),
        ({"type": "conversation.accept", "data": {"conversation_id": 987654}}, "conversation_not_found"),
        (
            {"type": "message.send", "data": {"conversation_id": 987654, "client_id": "x", "body": "hi"}},
            "conversation_not_found",
        ),
        ({"type": "conversation.start", "data": {}}, "unknown_type"),
        ({"type": "conversation.open", "data": {"conversation_id": 987654}}, "not_assigned"),
    ],
)
async def test_a_bad_console_frame_gets_an_error_and_changes_nothing(advisor, frame, code):
    helper = await console(advisor)
    await expect(helper, "queue.snapshot")
    await helper.send_json_to(frame)

    assert (await expect(helper, "error"))["code"] == code
    assert await Conversation.objects.acount() == 0
    assert await Message.objects.acount() == 0
    await helper.send_json_to({"type": "ping", "data": {}})
    assert (await expect(helper, "pong"))["conversations"] == []
    await helper.disconnect()


async def test_a_console_ping_is_answered_in_time_while_the_database_is_stalled(advisor, monkeypatch):
    monkeypatch.setattr(FrameConsumer, "pong_database_wait_seconds", 0.5)
    helper = await console(advisor)
    await expect(helper, "queue.snapshot")

    with writes_held(ConsoleConnection._meta.db_table):
        await helper.send_json_to({"type": "ping", "data": {}})
        assert (await expect(helper, "pong")) == {}
    await helper.send_json_to({"type": "ping", "data": {}})

    pong = await expect(helper, "pong")
    assert pong["conversations"] == [] and [h["id"] for h in pong["helpers"]] == [advisor.pk]
    await helper.disconnect()


# Each console frame about a conversation, for one that does not exist (or was deleted).
ABOUT_A_CONVERSATION = [
    ("conversation.accept", {}, "conversation_not_found"),
    ("conversation.open", {}, "not_assigned"),
    ("message.send", {"client_id": "c-1", "body": "Hello"}, "conversation_not_found"),
    ("conversation.end", {}, "conversation_not_found"),
    ("conversation.transfer", {}, "conversation_not_found"),
    ("note.add", {"body": "A note"}, "conversation_not_found"),
    ("message.read", {"seq": 1}, "not_assigned"),
    ("typing.start", {}, "not_assigned"),
    ("typing.stop", {}, "not_assigned"),
    ("cobrowse.request", {}, "conversation_not_found"),
    ("cobrowse.stop", {"session_id": 1}, "conversation_not_found"),
]


@pytest.mark.parametrize(("frame_type", "data", "code"), ABOUT_A_CONVERSATION)
async def test_each_frame_about_a_conversation_that_does_not_exist_is_refused(advisor, frame_type, data, code):
    helper = await console(advisor)
    await expect(helper, "queue.snapshot")

    await helper.send_json_to({"type": frame_type, "data": {"conversation_id": 10**9, **data}})

    refused = await expect(helper, "error")
    assert (refused["code"], refused["frame_type"]) == (code, frame_type)
    assert await Message.objects.acount() == 0
    await helper.send_json_to({"type": "ping", "data": {}})
    assert await expect(helper, "pong") is not None, "the socket goes on"
    await helper.disconnect()


@pytest.mark.parametrize(
    "frame_type", sorted(name for name, handler in ConsoleConsumer.frame_handlers.items() if handler.form.base_fields)
)
async def test_every_console_frame_with_a_field_of_the_wrong_type_is_invalid(advisor, frame_type):
    helper = await console(advisor)
    await expect(helper, "queue.snapshot")
    form = ConsoleConsumer.frame_handlers[frame_type].form

    await helper.send_json_to({"type": frame_type, "data": {name: ["wrong"] for name in form.base_fields}})

    refused = await expect(helper, "error")
    assert (refused["code"], refused["frame_type"]) == ("invalid_frame", frame_type)
    assert refused["fields"] and set(refused["fields"]) <= set(form.base_fields)
    await helper.disconnect()


async def test_a_helper_message_refused_for_an_ended_chat_or_a_reused_client_id_stores_nothing(advisor):
    helper = await console(advisor)
    await expect(helper, "queue.snapshot")
    resident = await connect_visitor()
    await start(resident)
    await expect(helper, "conversation.queued")
    conversation = await Conversation.objects.aget()
    await helper.send_json_to({"type": "conversation.accept", "data": {"conversation_id": conversation.pk}})
    await expect_follow(helper)
    say = {"type": "message.send", "data": {"conversation_id": conversation.pk, "client_id": "h-1", "body": "Hello"}}
    await helper.send_json_to(say)
    while (frame := await helper.receive_json_from())["type"] != "message.created" or frame["data"][
        "client_id"
    ] != "h-1":
        pass

    await helper.send_json_to({**say, "data": {**say["data"], "body": "Other words"}})
    refused = await expect_error(helper)
    assert (refused["code"], refused["client_id"]) == ("duplicate_client_id", "h-1")
    await sync_to_async(services.conversation_end)(conversation_id=conversation.pk, ended_by="visitor")
    await helper.send_json_to({**say, "data": {**say["data"], "client_id": "h-2"}})
    assert (await expect_error(helper))["code"] == "conversation_ended"

    assert await Message.objects.filter(author_kind="helper").acount() == 1
    for communicator in (helper, resident):
        await communicator.disconnect()


async def expect_error(communicator):
    """The next error frame, past the news of the conversation that may come first."""
    while (frame := await communicator.receive_json_from())["type"] != "error":
        pass
    return frame["data"]


async def test_a_volunteer_may_not_complete_a_call_back_and_guidance_needs_a_viewed_share(volunteer, advisor):
    callback = await sync_to_async(services.callback_request_create)(
        name="Pat", message="Call me", phone="01632 960001"
    )
    vic = await console(volunteer)
    await expect(vic, "queue.snapshot")
    await vic.send_json_to({"type": "callback.done", "data": {"callback_id": callback.pk}})
    assert (await expect(vic, "error"))["code"] == "forbidden"
    assert (await CallbackRequest.objects.aget()).status == "open"

    alex = await console(advisor)
    await expect(alex, "queue.snapshot")
    await alex.send_json_to({"type": "cobrowse.guide", "data": {"session_id": 1, "kind": "pointer", "x": 1, "y": 1}})
    refused = await expect(alex, "error")
    assert (refused["code"], refused["frame_type"]) == ("cobrowse_not_active", "cobrowse.guide")
    for communicator in (vic, alex):
        await communicator.disconnect()
