"""Property: whatever a client sends, the socket survives and nothing invalid is stored."""

import json
import re

import pytest
from asgiref.sync import async_to_sync
from django.core.validators import validate_email
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chat.models import CallbackRequest, Conversation, Message
from config.asgi import application
from tests.sockets import Communicator

pytestmark = pytest.mark.django_db(transaction=True)

FRAME_TYPES = [
    "conversation.start",
    "conversation.resume",
    "message.send",
    "message.read",
    "typing.start",
    "typing.stop",
    "conversation.end",
    "conversation.rate",
    "callback.request",
    "ping",
    "nonsense",
]
FIELDS = [
    "name",
    "email",
    "service",
    "token",
    "last_seq",
    "client_id",
    "body",
    "seq",
    "rating",
    "comment",
    "phone",
    "message",
]
MARKER = "fuzz.end-of-frames"
CLIENT_ID = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=300),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=12,
)
plausible_values = st.one_of(
    json_values,
    st.text(min_size=1, max_size=2100),
    # Half of a UTF-16 pair, which JSON can spell ("\ud800") and no database stores.
    st.text(alphabet=st.characters(categories=["Cs"]) | st.characters(), min_size=1, max_size=40),
    st.from_regex(CLIENT_ID, fullmatch=True),
    st.integers(min_value=-3, max_value=10),
    st.emails(),
)
envelopes = st.builds(
    lambda frame_type, data: json.dumps({"type": frame_type, "data": data}),
    st.sampled_from(FRAME_TYPES),
    st.dictionaries(st.sampled_from(FIELDS), plausible_values, max_size=6),
)
raw_frames = st.one_of(envelopes, st.text(max_size=200), json_values.map(json.dumps))


async def exchange(frames: list[str]) -> None:
    communicator = Communicator(application, "/ws/chat/", headers=[(b"origin", b"http://testserver")])
    connected, _ = await communicator.connect()
    assert connected
    for frame in frames:
        # send_input, not send_to: an empty text frame is a frame a client can send too.
        await communicator.send_input({"type": "websocket.receive", "text": frame})
    await communicator.send_to(text_data=json.dumps({"type": MARKER, "data": {}}))
    # The socket is alive if, after everything, it still answers: frames are handled in
    # order, so the error for the final marker proves none of the frames before it broke it.
    while True:
        frame = await communicator.receive_json_from()
        assert frame["type"] in {
            "error",
            "pong",
            "conversation.started",
            "state.snapshot",
            "message.created",
            "conversation.updated",
            "queue.position",
            "conversation.rated",
            "callback.requested",
            "read.updated",
            "typing.updated",
        }, frame
        if frame["type"] == "error":
            assert frame["data"]["code"] and frame["data"]["message"]
        if frame["type"] == "error" and frame["data"].get("frame_type") == MARKER:
            break
    await communicator.disconnect()


def assert_database_valid() -> None:
    for message in Message.objects.all():
        assert 1 <= len(message.body) <= 2000
        assert "\x00" not in message.body
        assert message.body == message.body.strip() or message.author_kind == "system"
        assert message.client_id is None or CLIENT_ID.match(message.client_id)
    for conversation in Conversation.objects.all():
        seqs = list(conversation.messages.order_by("seq").values_list("seq", flat=True))
        assert seqs == list(range(1, conversation.last_seq + 1))
        assert len(conversation.visitor_name) <= 80
        if conversation.visitor_email:
            validate_email(conversation.visitor_email)
        assert conversation.rating is None or 1 <= conversation.rating <= 5
    for callback in CallbackRequest.objects.all():
        assert callback.name and callback.message and (callback.phone or callback.email)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(frames=st.lists(raw_frames, max_size=12))
def test_any_frames_leave_the_socket_alive_and_the_database_valid(frames):
    async_to_sync(exchange)(frames)
    assert_database_valid()


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(frames=st.lists(envelopes, max_size=10))
def test_frames_inside_a_conversation_leave_it_consistent(frames):
    start = json.dumps({"type": "conversation.start", "data": {"name": "Fuzz"}})
    async_to_sync(exchange)([start, *frames])
    assert_database_valid()
