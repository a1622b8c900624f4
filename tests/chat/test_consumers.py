"""The resident's websocket, driven through the real ASGI application."""

import contextlib
import json
import threading

import pytest
from django.db import connection, transaction

from chat import consumers as chat_consumers
from chat import services
from chat.models import Conversation, Message
from chat.protocol import MAX_FRAME_BYTES, FrameConsumer
from config.asgi import application
from tests.sockets import Communicator

pytestmark = pytest.mark.django_db(transaction=True)

ORIGIN = (b"origin", b"http://testserver")


async def connect(origin=ORIGIN):
    communicator = Communicator(application, "/ws/chat/", headers=[origin])
    connected, _ = await communicator.connect()
    assert connected
    return communicator


async def expect(communicator, frame_type):
    frame = await communicator.receive_json_from()
    assert frame["type"] == frame_type, frame
    return frame["data"]


async def start(communicator, **data):
    await communicator.send_json_to({"type": "conversation.start", "data": data})
    token = (await expect(communicator, "conversation.started"))["token"]
    snapshot = await expect(communicator, "state.snapshot")
    await expect(communicator, "queue.position")
    return token, snapshot


async def send(communicator, body, client_id):
    await communicator.send_json_to({"type": "message.send", "data": {"client_id": client_id, "body": body}})


async def test_start_then_send_stores_and_echoes_the_message():
    communicator = await connect()
    token, snapshot = await start(communicator, name="Pat")

    assert snapshot["conversation"]["status"] == "waiting"
    assert snapshot["messages"] == []
    await send(communicator, "Hello", "c-1")
    message = await expect(communicator, "message.created")

    assert (message["seq"], message["body"], message["client_id"]) == (1, "Hello", "c-1")
    conversation = await Conversation.objects.aget(token_hash=services.token_hash(token))
    assert conversation.visitor_name == "Pat"
    assert await Message.objects.filter(conversation=conversation).acount() == 1
    await communicator.disconnect()


async def test_resume_returns_exactly_the_missed_messages_in_order():
    first = await connect()
    token, _ = await start(first)
    for index in range(1, 6):
        await send(first, f"message {index}", f"c-{index}")
        await expect(first, "message.created")
    await first.disconnect()

    second = await connect()
    await second.send_json_to({"type": "conversation.resume", "data": {"token": token, "last_seq": 2}})
    snapshot = await expect(second, "state.snapshot")
    assert (await expect(second, "queue.position"))["position"] == 1

    assert [m["seq"] for m in snapshot["messages"]] == [3, 4, 5]
    assert [m["body"] for m in snapshot["messages"]] == ["message 3", "message 4", "message 5"]
    assert snapshot["has_more"] is False
    assert await second.receive_nothing(timeout=0.2)
    await second.disconnect()


async def test_resending_after_a_lost_connection_returns_the_stored_message_once():
    first = await connect()
    token, _ = await start(first)
    await send(first, "Did this arrive?", "lost-ack")
    await expect(first, "message.created")
    await first.disconnect()

    # The client never saw the acknowledgement, so it resumes from 0 and resends.
    second = await connect()
    await second.send_json_to({"type": "conversation.resume", "data": {"token": token, "last_seq": 0}})
    snapshot = await expect(second, "state.snapshot")
    await expect(second, "queue.position")
    await send(second, "Did this arrive?", "lost-ack")

    assert [m["client_id"] for m in snapshot["messages"]] == ["lost-ack"]
    assert await second.receive_nothing(timeout=0.3), "the same seq must not reach one socket twice"
    assert await Message.objects.filter(client_id="lost-ack").acount() == 1
    await second.disconnect()


async def test_resend_on_a_fresh_socket_without_resume_history_gets_the_stored_copy():
    first = await connect()
    token, _ = await start(first)
    await send(first, "Hello", "c-1")
    await expect(first, "message.created")
    await first.disconnect()

    second = await connect()
    await second.send_json_to({"type": "conversation.resume", "data": {"token": token, "last_seq": 1}})
    await expect(second, "state.snapshot")
    await expect(second, "queue.position")
    await send(second, "Hello", "c-1")
    message = await expect(second, "message.created")

    assert (message["seq"], message["client_id"]) == (1, "c-1")
    assert await Message.objects.acount() == 1
    await second.disconnect()


async def test_a_wrong_token_reads_nothing_and_posts_nothing():
    owner = await connect()
    await start(owner)
    await send(owner, "private", "c-1")
    await expect(owner, "message.created")

    stranger = await connect()
    await stranger.send_json_to({"type": "conversation.resume", "data": {"token": "not-the-token", "last_seq": 0}})
    error = await expect(stranger, "error")
    await send(stranger, "let me in", "c-2")
    not_joined = await expect(stranger, "error")

    assert error["code"] == "conversation_not_found"
    assert not_joined["code"] == "not_joined"
    assert await Message.objects.acount() == 1
    await owner.disconnect()
    await stranger.disconnect()


async def test_a_start_whose_answer_was_lost_is_sent_again_and_finds_the_same_conversation():
    key = "0f1e2d3c4b5a69788796a5b4c3d2e1f0"
    lost = await connect()
    await lost.send_json_to({"type": "conversation.start", "data": {"client_id": key, "name": "Pat"}})
    # The connection goes before the answer is read: the page has no token.
    await lost.disconnect()

    again = await connect()
    token, snapshot = await start(again, client_id=key, name="Pat")

    conversation = await Conversation.objects.aget()
    assert snapshot["conversation"]["id"] == conversation.pk
    assert conversation.token_hash == services.token_hash(token)
    await again.disconnect()


async def test_a_start_key_shorter_than_a_secret_is_refused():
    communicator = await connect()
    await communicator.send_json_to({"type": "conversation.start", "data": {"client_id": "c-1"}})
    error = await expect(communicator, "error")
    assert (error["code"], list(error["fields"])) == ("invalid_frame", ["client_id"])
    assert await Conversation.objects.acount() == 0
    await communicator.disconnect()


async def test_start_twice_on_one_socket_is_refused():
    communicator = await connect()
    await start(communicator)
    await communicator.send_json_to({"type": "conversation.start", "data": {}})

    assert (await expect(communicator, "error"))["code"] == "already_joined"
    assert await Conversation.objects.acount() == 1
    await communicator.disconnect()


async def test_unknown_service_is_refused_and_creates_nothing():
    communicator = await connect()
    await communicator.send_json_to({"type": "conversation.start", "data": {"service": "no-such-service"}})

    assert (await expect(communicator, "error"))["code"] == "service_not_found"
    assert await Conversation.objects.acount() == 0
    await communicator.disconnect()


async def test_resident_ends_the_conversation_and_can_no_longer_post():
    communicator = await connect()
    await start(communicator)
    await communicator.send_json_to({"type": "conversation.end", "data": {}})
    system = await expect(communicator, "message.created")
    updated = await expect(communicator, "conversation.updated")
    await send(communicator, "one more thing", "c-9")
    error = await expect(communicator, "error")

    assert system["author"]["kind"] == "system"
    assert updated["conversation"]["status"] == "ended"
    assert updated["conversation"]["ended_by"] == "visitor"
    assert (error["code"], error["client_id"]) == ("conversation_ended", "c-9")
    await communicator.disconnect()


async def test_ping_reports_the_last_sequence_number():
    communicator = await connect()
    await start(communicator)
    await send(communicator, "Hello", "c-1")
    await expect(communicator, "message.created")
    await communicator.send_json_to({"type": "ping", "data": {}})

    assert (await expect(communicator, "pong")) == {"last_seq": 1}
    await communicator.disconnect()


@contextlib.contextmanager
def writes_held(table):
    """Another connection holds `table` for writing until the block ends (on SQLite, the
    whole database): the server's writes to it wait, as they would on a stalled database."""
    held, release = threading.Event(), threading.Event()

    def hold():
        try:
            # SQLite's transactions here are IMMEDIATE: beginning one takes the write lock.
            with transaction.atomic():
                if connection.vendor == "postgresql":
                    with connection.cursor() as cursor:
                        cursor.execute(f"LOCK TABLE {table} IN EXCLUSIVE MODE")
                held.set()
                release.wait(30)
        finally:
            connection.close()

    holder = threading.Thread(target=hold)
    holder.start()
    assert held.wait(10)
    try:
        yield
    finally:
        release.set()
        holder.join()


async def test_a_ping_is_answered_in_time_while_the_database_is_stalled(monkeypatch):
    monkeypatch.setattr(FrameConsumer, "pong_database_wait_seconds", 0.5)
    touches, touch = [], chat_consumers._ping_state

    def counted_ping(conversation_id, token_hash):
        touches.append(conversation_id)
        return touch(conversation_id, token_hash)

    monkeypatch.setattr(chat_consumers, "_ping_state", counted_ping)
    communicator = await connect()
    token, _snapshot = await start(communicator)
    conversation = await Conversation.objects.aget(token_hash=services.token_hash(token))

    with writes_held(Conversation._meta.db_table):
        for _ in range(2):
            await communicator.send_json_to({"type": "ping", "data": {}})
            # Proof of life without what the database could not tell in time.
            assert (await expect(communicator, "pong")) == {}
        assert touches == [conversation.pk], "the second ping waits for the first's work, not a second call"
    await communicator.send_json_to({"type": "ping", "data": {}})

    assert (await expect(communicator, "pong")) == {"last_seq": 0}
    # The stalled visit was recorded all the same, once the database answered.
    await conversation.arefresh_from_db()
    assert conversation.visitor_last_seen_at > conversation.created_at
    await communicator.disconnect()


async def test_a_ping_whose_database_part_fails_is_still_answered(monkeypatch, caplog):
    def broken(conversation_id, token_hash):
        raise RuntimeError("database gone")

    monkeypatch.setattr(chat_consumers, "_ping_state", broken)
    communicator = await connect()
    await start(communicator)
    await communicator.send_json_to({"type": "ping", "data": {}})

    assert (await expect(communicator, "pong")) == {}
    assert "the database's part of a pong failed" in caplog.text
    await communicator.disconnect()


BAD_FRAMES = [
    pytest.param("{not json", "malformed_json", id="malformed-json"),
    pytest.param("[1, 2]", "invalid_envelope", id="not-an-object"),
    pytest.param('{"data": {}}', "invalid_envelope", id="missing-type"),
    pytest.param('{"type": 5, "data": {}}', "invalid_envelope", id="type-not-string"),
    pytest.param('{"type": "message.send", "data": []}', "invalid_envelope", id="data-not-object"),
    pytest.param('{"type": "message.delete", "data": {}}', "unknown_type", id="unknown-type"),
    pytest.param('{"type": "message.send", "data": {"client_id": "c"}}', "invalid_frame", id="missing-body"),
    pytest.param(
        '{"type": "message.send", "data": {"client_id": "c", "body": ["x"]}}', "invalid_frame", id="body-wrong-type"
    ),
    pytest.param(
        '{"type": "message.send", "data": {"client_id": "c", "body": "   "}}', "invalid_frame", id="blank-body"
    ),
    pytest.param(
        json.dumps({"type": "message.send", "data": {"client_id": "c", "body": "x" * 2001}}),
        "invalid_frame",
        id="body-too-long",
    ),
    pytest.param(
        '{"type": "message.send", "data": {"client_id": "bad id!", "body": "x"}}', "invalid_frame", id="bad-client-id"
    ),
    pytest.param(
        '{"type": "message.send", "data": {"client_id": "c", "body": "a\\u0000b"}}', "invalid_frame", id="nul-byte"
    ),
    pytest.param(
        '{"type": "conversation.resume", "data": {"token": "t", "last_seq": -1}}', "invalid_frame", id="negative-seq"
    ),
    pytest.param(
        '{"type": "conversation.resume", "data": {"token": "t", "last_seq": true}}', "invalid_frame", id="bool-seq"
    ),
    pytest.param("x" * (MAX_FRAME_BYTES + 1), "frame_too_large", id="oversize"),
]


@pytest.mark.parametrize(("raw", "code"), BAD_FRAMES)
async def test_a_bad_frame_gets_an_error_and_changes_nothing(raw, code):
    communicator = await connect()
    await start(communicator)
    await communicator.send_to(text_data=raw)
    error = await expect(communicator, "error")

    assert error["code"] == code
    assert error["message"]
    assert await Message.objects.acount() == 0
    # The socket survives and still works.
    await send(communicator, "still here", "after")
    assert (await expect(communicator, "message.created"))["body"] == "still here"
    await communicator.disconnect()


async def test_an_invalid_message_names_its_valid_client_id_so_the_client_can_mark_it_failed():
    communicator = await connect()
    await start(communicator)
    await communicator.send_json_to({"type": "message.send", "data": {"client_id": "m-1", "body": "   "}})
    error = await expect(communicator, "error")
    await communicator.send_json_to({"type": "message.send", "data": {"client_id": "m-2", "body": ["x"]}})
    wrong_type_error = await expect(communicator, "error")
    await communicator.send_json_to({"type": "message.send", "data": {"client_id": "bad id!", "body": "   "}})
    error_without_id = await expect(communicator, "error")

    assert (error["code"], error["client_id"]) == ("invalid_frame", "m-1")
    assert (wrong_type_error["code"], wrong_type_error["client_id"]) == ("invalid_frame", "m-2")
    assert "client_id" not in error_without_id
    assert await Message.objects.acount() == 0
    await communicator.disconnect()


async def test_half_a_character_in_a_message_is_refused_before_it_reaches_the_database():
    communicator = await connect()
    await start(communicator)

    # JSON can spell half of a UTF-16 pair, which no database can store.
    await communicator.send_to(text_data='{"type": "message.send", "data": {"client_id": "c-1", "body": "Hi \\ud800"}}')
    error = await expect(communicator, "error")

    assert (error["code"], list(error["fields"]), error["client_id"]) == ("invalid_frame", ["body"], "c-1")
    assert await Message.objects.acount() == 0
    await send(communicator, "Still here", "c-2")
    assert (await expect(communicator, "message.created"))["body"] == "Still here"
    await communicator.disconnect()


async def test_half_a_character_in_a_name_starts_nothing():
    communicator = await connect()

    await communicator.send_to(text_data='{"type": "conversation.start", "data": {"name": "Pat \\udc00"}}')
    error = await expect(communicator, "error")

    assert (error["code"], list(error["fields"])) == ("invalid_frame", ["name"])
    assert await Conversation.objects.acount() == 0
    await start(communicator, name="Pat")
    await communicator.disconnect()


async def test_a_fault_of_ours_is_answered_with_server_error_and_the_socket_stays(monkeypatch):
    communicator = await connect()
    await start(communicator)

    async def broken(**_kwargs):
        raise RuntimeError("the kind of fault no test foresaw")

    monkeypatch.setattr(services, "amessage_create", broken)
    await send(communicator, "Hello", "c-1")
    error = await expect(communicator, "error")
    monkeypatch.undo()

    assert (error["code"], error["frame_type"], error["client_id"]) == ("server_error", "message.send", "c-1")
    await send(communicator, "Hello again", "c-2")
    assert (await expect(communicator, "message.created"))["body"] == "Hello again"
    await communicator.disconnect()


async def test_a_fault_of_ours_while_setting_up_closes_the_socket_so_the_client_starts_again(monkeypatch):
    from chat.consumers import VisitorConsumer

    async def broken(self, *args, **kwargs):
        raise RuntimeError("the channel layer went away mid-start")

    monkeypatch.setattr(VisitorConsumer, "bind", broken)
    communicator = await connect()
    await communicator.send_json_to({"type": "conversation.start", "data": {"name": "Pat"}})
    token = (await expect(communicator, "conversation.started"))["token"]
    error = await expect(communicator, "error")
    monkeypatch.undo()

    assert (error["code"], error["frame_type"]) == ("server_error", "conversation.start")
    assert await communicator.receive_output() == {"type": "websocket.close", "code": 1011}
    # The client has its token: a new socket resumes the conversation the start made.
    again = await connect()
    await again.send_json_to({"type": "conversation.resume", "data": {"token": token}})
    assert (await expect(again, "state.snapshot"))["conversation"]["status"] == "waiting"
    await again.disconnect()


async def test_binary_frames_are_refused():
    communicator = await connect()
    await communicator.send_to(bytes_data=b"\x00\x01")

    assert (await expect(communicator, "error"))["code"] == "binary_not_supported"
    await communicator.disconnect()


async def test_a_flood_is_rate_limited_with_one_error_and_stores_only_what_was_allowed():
    communicator = await connect()
    await start(communicator)
    for index in range(60):
        await send(communicator, f"flood {index}", f"f-{index}")
    frames = []
    while not await communicator.receive_nothing(timeout=0.5):
        frames.append(await communicator.receive_json_from())

    created = [f for f in frames if f["type"] == "message.created"]
    errors = [f for f in frames if f["type"] == "error"]
    stored = await Message.objects.acount()
    assert errors and all(e["data"]["code"] == "rate_limited" for e in errors)
    dropped = 60 - len(created)
    # At most one error a second while over the rate: however slowly the machine works
    # through the flood, far fewer errors than dropped frames.
    assert len(errors) * 5 <= dropped, "a flood must not be answered by a flood"
    assert stored == len(created) < 60
    await communicator.disconnect()


async def test_a_foreign_origin_is_refused_at_the_handshake():
    communicator = Communicator(application, "/ws/chat/", headers=[(b"origin", b"https://evil.example")])
    connected, _ = await communicator.connect()

    assert not connected
    await communicator.disconnect()


@pytest.mark.parametrize("path", ["/ws/nope/", "/ws/chat/extra/", "/"])
async def test_an_unknown_path_is_refused_at_the_handshake(path):
    communicator = Communicator(application, path, headers=[(b"origin", b"http://testserver")])
    connected, _ = await communicator.connect()

    assert not connected
    await communicator.disconnect()


# Every frame about the socket's conversation, sent before it has one.
ABOUT_THE_CONVERSATION = {
    "message.send": {"client_id": "c-1", "body": "Hello"},
    "message.read": {"seq": 1},
    "typing.start": {},
    "typing.stop": {},
    "conversation.end": {},
    "conversation.rate": {"rating": 5},
    "cobrowse.respond": {"session_id": 1, "accept": True},
    "cobrowse.stop": {"session_id": 1},
    "cobrowse.events": {"session_id": 1, "page": "p", "batch": 0, "part": 0, "parts": 1, "data": "[]"},
}


@pytest.mark.parametrize("frame_type", ABOUT_THE_CONVERSATION)
async def test_every_frame_about_a_conversation_needs_one_first(frame_type):
    communicator = await connect()

    await communicator.send_json_to({"type": frame_type, "data": ABOUT_THE_CONVERSATION[frame_type]})

    refused = await expect(communicator, "error")
    assert (refused["code"], refused["frame_type"]) == ("not_joined", frame_type)
    assert await Message.objects.acount() == 0
    await communicator.send_json_to({"type": "ping", "data": {}})
    assert await expect(communicator, "pong") == {}, "the socket goes on"
    await communicator.disconnect()


@pytest.mark.parametrize(
    "frame_type",
    sorted(name for name, handler in chat_consumers.VisitorConsumer.frame_handlers.items() if handler.form.base_fields),
)
async def test_every_resident_frame_with_a_field_of_the_wrong_type_is_invalid(frame_type):
    communicator = await connect()
    form = chat_consumers.VisitorConsumer.frame_handlers[frame_type].form
    # A list where each field wants a string, a number or a boolean.
    data = {name: ["wrong"] for name in form.base_fields}

    await communicator.send_json_to({"type": frame_type, "data": data})

    refused = await expect(communicator, "error")
    assert (refused["code"], refused["frame_type"]) == ("invalid_frame", frame_type)
    assert refused["fields"] and set(refused["fields"]) <= set(form.base_fields)
    assert await Conversation.objects.acount() == 0
    await communicator.disconnect()
