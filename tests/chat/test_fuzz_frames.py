"""Property: whatever a client sends, the socket survives and nothing invalid is stored.

Both sockets a person drives: the resident's (`/ws/chat/`) and the helper's console
(`/ws/console/`), each with every frame type it handles, frames of every shape (not JSON,
binary, over the size limit) and values near what each field expects.
"""

import json
import os
import re

import pytest
from asgiref.sync import async_to_sync
from django.core.validators import validate_email
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agents_console.consumers import ConsoleConsumer
from chat import services
from chat.consumers import VisitorConsumer
from chat.models import CallbackRequest, CobrowseSession, Conversation, InternalNote, Message
from chat.protocol import MAX_FRAME_BYTES
from config.asgi import application
from tests.agents_console.test_consumers import console
from tests.sockets import Communicator

pytestmark = pytest.mark.django_db(transaction=True)

FRAME_TYPES = [*VisitorConsumer.frame_handlers, "nonsense"]
CONSOLE_FRAME_TYPES = [*ConsoleConsumer.frame_handlers, "nonsense"]
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
    "in_person",
    "session_id",
    "accept",
    "page",
    "batch",
    "part",
    "parts",
    "data",
]
CONSOLE_FIELDS = [
    "conversation_id",
    "last_seq",
    "client_id",
    "body",
    "seq",
    "to_helper_id",
    "note",
    "status",
    "callback_id",
    "session_id",
    "code",
    "kind",
    "x",
    "y",
    "node_id",
    "scroll",
]
MARKER = "fuzz.end-of-frames"
CLIENT_ID = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")
PHONE = re.compile(r"^\+?(?:[ ()-]*[0-9]){7,15}[ ()-]*$")

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
# Just over the limit, in characters or (two bytes each) only in bytes.
oversize_frames = st.sampled_from(["a", "é"]).flatmap(
    lambda character: st.integers(MAX_FRAME_BYTES // len(character.encode()) - 30, MAX_FRAME_BYTES).map(
        lambda count: json.dumps({"type": "message.send", "data": {"client_id": "big", "body": character * count}})
    )
)
raw_frames = st.one_of(
    envelopes, st.text(max_size=200), json_values.map(json.dumps), st.binary(max_size=64), oversize_frames
)


async def exchange(frames: list[str | bytes], communicator: Communicator | None = None) -> None:
    """Send `frames` on `communicator` (by default a new resident socket), then a marker, and
    read every answer up to the marker's."""
    if communicator is None:
        communicator = Communicator(application, "/ws/chat/", headers=[(b"origin", b"http://testserver")])
        connected, _ = await communicator.connect()
        assert connected
        answers = RESIDENT_ANSWERS
    else:
        answers = CONSOLE_ANSWERS
    for frame in frames:
        # send_input, not send_to: an empty text frame is a frame a client can send too.
        key = "bytes" if isinstance(frame, bytes) else "text"
        await communicator.send_input({"type": "websocket.receive", key: frame})
    await answered_up_to_a_marker(communicator, answers)


async def answered_up_to_a_marker(communicator: Communicator, answers: frozenset[str]) -> None:
    """Send a marker, read every answer up to the marker's (each a frame this socket may
    receive, no `server_error`), and close the socket.

    The socket is alive if, after everything, it still answers: frames are handled in order,
    so the error for the final marker proves none of the frames before it broke it."""
    await communicator.send_to(text_data=json.dumps({"type": MARKER, "data": {}}))
    while True:
        frame = await communicator.receive_json_from()
        assert frame["type"] in answers and isinstance(frame["data"], dict), frame
        if frame["type"] == "error":
            assert frame["data"]["code"] and frame["data"]["message"]
            assert frame["data"]["code"] != "server_error", frame
        if frame["type"] == "error" and frame["data"].get("frame_type") == MARKER:
            break
    await communicator.disconnect()


RESIDENT_ANSWERS = frozenset(
    {
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
        "cobrowse.updated",
        "cobrowse.code",
    }
)
CONSOLE_ANSWERS = frozenset(
    {
        "error",
        "pong",
        "queue.snapshot",
        "queue.counted",
        "state.snapshot",
        "message.created",
        "conversation.queued",
        "conversation.assigned",
        "conversation.ended",
        "conversation.updated",
        "note.created",
        "notes.snapshot",
        "read.updated",
        "typing.updated",
        "presence.updated",
        "helpers.updated",
        "visitor.presence",
        "callback.requested",
        "callback.updated",
        "cobrowse.updated",
        "cobrowse.events",
        "cobrowse.joined",
    }
)


def assert_one_line(text: str, limit: int) -> None:
    assert len(text) <= limit and "\n" not in text and "\r" not in text and "\x00" not in text


def assert_database_valid() -> None:
    for message in Message.objects.all():
        assert 1 <= len(message.body) <= 2000
        assert "\x00" not in message.body
        assert message.body == message.body.strip() or message.author_kind == "system"
        assert message.client_id is None or CLIENT_ID.match(message.client_id)
    for conversation in Conversation.objects.all():
        seqs = list(conversation.messages.order_by("seq").values_list("seq", flat=True))
        assert seqs == list(range(1, conversation.last_seq + 1))
        assert_one_line(conversation.visitor_name, 80)
        if conversation.visitor_email:
            validate_email(conversation.visitor_email)
        assert conversation.rating is None or 1 <= conversation.rating <= 5
        assert len(conversation.rating_comment) <= 500 and (conversation.rating or not conversation.rating_comment)
        assert 0 <= conversation.visitor_read_seq <= conversation.last_seq
        assert 0 <= conversation.helper_read_seq <= conversation.last_seq
    for callback in CallbackRequest.objects.all():
        assert callback.message and 1 <= len(callback.message) <= 2000
        assert callback.name and callback.name == callback.name.strip()
        assert_one_line(callback.name, 80)
        assert callback.phone or callback.email
        assert not callback.phone or PHONE.match(callback.phone)
        if callback.email:
            validate_email(callback.email)
    for note in InternalNote.objects.all():
        assert 1 <= len(note.body) <= 2000 and "\x00" not in note.body
    for session in CobrowseSession.objects.all():
        assert session.status in CobrowseSession.Status.values


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


def console_envelopes(ids: dict[str, list[int]]):
    """Console frames whose ids are mostly those of rows that exist (`ids`), so the frames
    reach the services rather than stopping at "not found"."""
    known = {
        name: st.one_of(st.sampled_from(values), st.integers(min_value=-2, max_value=10**6))
        for name, values in ids.items()
    }
    fields = st.fixed_dictionaries(
        {},
        optional={name: known.get(name, plausible_values) for name in CONSOLE_FIELDS},
    )
    return st.builds(
        lambda frame_type, data: json.dumps({"type": frame_type, "data": data}),
        st.sampled_from(CONSOLE_FRAME_TYPES),
        fields | st.dictionaries(st.sampled_from(CONSOLE_FIELDS), plausible_values, max_size=6),
    )


def console_world(advisor) -> dict[str, list[int]]:
    """A waiting conversation, one the advisor holds with a screen share asked for, and a
    call-back: the rows a console's frames act on."""
    waiting, _token = services.conversation_start(visitor_name="Waiting")
    held, _token = services.conversation_start(visitor_name="Held")
    services.conversation_assign(conversation_id=held.pk, helper=advisor)
    session = services.cobrowse_request(conversation_id=held.pk, helper=advisor)
    callback = services.callback_request_create(name="Pat", message="Call me", phone="01632 960001")
    return {
        "conversation_id": [waiting.pk, held.pk],
        "session_id": [session.pk],
        "callback_id": [callback.pk],
        "to_helper_id": [advisor.pk],
    }


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_any_console_frames_leave_the_socket_alive_and_the_database_valid(advisor, other_advisor, data):
    ids = console_world(advisor)
    ids["to_helper_id"].append(other_advisor.pk)
    frames = data.draw(st.lists(st.one_of(console_envelopes(ids), raw_frames), max_size=12))

    async def run() -> None:
        communicator = await console(advisor)
        await exchange(frames, communicator)

    async_to_sync(run)()
    assert_database_valid()


def two_sided_steps(conversation_id: int, helper_ids: list[int]):
    """Frames from the resident's socket and the helper's console, interleaved, about one
    conversation: mostly well formed, with the values that reach its rules (a client id
    reused, a body too long or blank, a rating before the end, a transfer to anyone)."""
    client_ids = st.sampled_from(["c-1", "c-2", "c-3", "bad id", ""])
    bodies = st.sampled_from(["Hello", "  spaced  ", "", " ", "x" * 2001, "\x00", "Ask at https://example.org"])
    sessions = st.integers(min_value=1, max_value=4)
    seqs = st.integers(min_value=-1, max_value=12)
    ours = {"conversation_id": st.sampled_from([conversation_id, conversation_id + 1])}

    def frame(frame_type, **fields):
        return st.fixed_dictionaries(fields).map(lambda data: json.dumps({"type": frame_type, "data": data}))

    resident = st.one_of(
        frame("message.send", client_id=client_ids, body=bodies),
        frame("message.read", seq=seqs),
        frame("typing.start"),
        frame("typing.stop"),
        frame("conversation.end"),
        frame("conversation.rate", rating=st.integers(min_value=0, max_value=6), comment=st.sampled_from(["", "Good"])),
        frame("callback.request", name=st.just("Pat"), phone=st.just("01632 960001"), message=bodies),
        frame("cobrowse.respond", session_id=sessions, accept=st.booleans()),
        frame("cobrowse.stop", session_id=sessions),
        frame("ping"),
    )
    console_side = st.one_of(
        frame("message.send", **ours, client_id=client_ids, body=bodies),
        frame("message.read", **ours, seq=seqs),
        frame("typing.start", **ours),
        frame("conversation.end", **ours),
        frame("conversation.transfer", **ours, to_helper_id=st.sampled_from(helper_ids)),
        frame("conversation.transfer", **ours, note=st.sampled_from(["", "Over to the queue"])),
        frame("note.add", **ours, body=bodies),
        frame("cobrowse.request", **ours),
        frame("cobrowse.stop", **ours, session_id=sessions),
        frame("conversation.open", **ours),
        frame("ping"),
    )
    # At most 16: with the resume and the marker, within the resident socket's burst of 20 frames.
    sides = st.tuples(st.just("resident"), resident) | st.tuples(st.just("console"), console_side)
    return st.lists(sides, max_size=16)


async def exchange_interleaved(steps, resident, helper) -> None:
    """Send each step's frame on its socket, in order, then a marker on both, and read every
    answer of each up to its marker's."""
    sockets = {"resident": resident, "console": helper}
    for side, frame in steps:
        await sockets[side].send_to(text_data=frame)
    await answered_up_to_a_marker(resident, RESIDENT_ANSWERS)
    await answered_up_to_a_marker(helper, CONSOLE_ANSWERS)


def assert_conversation_consistent(conversation_id: int) -> None:
    conversation = Conversation.objects.get(pk=conversation_id)
    said = conversation.messages.exclude(author_kind="system")
    if conversation.status == "ended":
        assert conversation.ended_at is not None
        assert not said.filter(created_at__gt=conversation.ended_at).exists(), "nobody speaks after the end"
    else:
        assert conversation.ended_at is None and conversation.rating is None
    client_ids = [cid for cid in said.values_list("client_id", flat=True) if cid]
    assert len(client_ids) == len(set(client_ids)), "a client id stores one message"
    assert conversation.helper_read_seq <= conversation.last_seq
    assert conversation.visitor_read_seq <= conversation.last_seq


@settings(
    max_examples=int(os.environ.get("FUZZ_EXAMPLES", 30)),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(data=st.data())
def test_both_sides_interleaved_leave_the_conversation_consistent(advisor, other_advisor, data):
    conversation, token = services.conversation_start(visitor_name="Pat")
    services.conversation_assign(conversation_id=conversation.pk, helper=advisor)
    steps = data.draw(two_sided_steps(conversation.pk, [advisor.pk, other_advisor.pk, 10**6]))

    async def run() -> None:
        resident = Communicator(application, "/ws/chat/", headers=[(b"origin", b"http://testserver")])
        assert (await resident.connect())[0]
        await resident.send_json_to({"type": "conversation.resume", "data": {"token": token}})
        helper = await console(advisor)
        await helper.send_json_to({"type": "conversation.open", "data": {"conversation_id": conversation.pk}})
        await exchange_interleaved(steps, resident, helper)

    async_to_sync(run)()
    assert_database_valid()
    assert_conversation_consistent(conversation.pk)
