"""Co-browse over the real ASGI app: consent before anything flows, events only to the
session's helper, stop and end cut the flow, and the six-digit code path."""

import datetime
import json

import pytest
from asgiref.sync import sync_to_async
from django.utils import timezone

from chat import services
from chat.models import CobrowseSession, Conversation, Message
from tests.agents_console.test_consumers import console, expect_follow
from tests.chat.test_consumers import connect, expect, start

pytestmark = pytest.mark.django_db(transaction=True)

CARD = "4111 1111 1111 1111"


async def until(communicator, frame_type, *, limit=20):
    """The next frame of this type, skipping others (system messages, queue updates)."""
    for _ in range(limit):
        frame = await communicator.receive_json_from()
        if frame["type"] == frame_type:
            return frame["data"]
    raise AssertionError(f"no {frame_type} frame")


async def until_status(communicator, status):
    for _ in range(20):
        cobrowse = (await until(communicator, "cobrowse.updated"))["cobrowse"]
        if cobrowse["status"] == status:
            return cobrowse
    raise AssertionError(f"no co-browse update to {status}")


async def drain(communicator):
    frames = []
    while not await communicator.receive_nothing(timeout=0.3):
        frames.append(await communicator.receive_json_from())
    return frames


async def accepted_conversation(advisor):
    helper = await console(advisor)
    await expect(helper, "queue.snapshot")
    visitor = await connect()
    await start(visitor, name="Pat")
    queued = await until(helper, "conversation.queued")
    conversation_id = queued["conversation"]["id"]
    await helper.send_json_to({"type": "conversation.accept", "data": {"conversation_id": conversation_id}})
    await expect_follow(helper)
    await drain(helper)
    await drain(visitor)
    return helper, visitor, conversation_id


async def screen_shared_and_viewed(advisor):
    """A conversation whose resident shares their screen with Alex, who is viewing it."""
    helper, visitor, conversation_id = await accepted_conversation(advisor)
    await helper.send_json_to({"type": "cobrowse.request", "data": {"conversation_id": conversation_id}})
    session_id = (await until_status(visitor, "requested"))["id"]
    await visitor.send_json_to({"type": "cobrowse.respond", "data": {"session_id": session_id, "accept": True}})
    await until_status(helper, "active")
    await helper.send_json_to({"type": "cobrowse.view", "data": {"session_id": session_id}})
    await until(visitor, "cobrowse.guidance")
    return helper, visitor, session_id


def events_frame(session_id, data, part=0, parts=1, batch=0):
    return {
        "type": "cobrowse.events",
        "data": {"session_id": session_id, "page": "p1", "batch": batch, "part": part, "parts": parts, "data": data},
    }


async def test_nothing_flows_before_consent_then_only_to_the_helper_until_stop(advisor):
    helper, visitor, conversation_id = await accepted_conversation(advisor)
    await helper.send_json_to({"type": "cobrowse.request", "data": {"conversation_id": conversation_id}})
    requested = (await until(visitor, "cobrowse.updated"))["cobrowse"]
    assert requested["status"] == "requested" and requested["helper_name"] == "Alex"
    session_id = requested["id"]

    # Before consent: refused, and nothing reaches the helper.
    await visitor.send_json_to(events_frame(session_id, "[]"))
    assert (await until(visitor, "error"))["code"] == "cobrowse_not_active"
    await helper.send_json_to({"type": "cobrowse.view", "data": {"session_id": session_id}})
    assert (await until(helper, "error"))["code"] == "cobrowse_not_found"

    await visitor.send_json_to({"type": "cobrowse.respond", "data": {"session_id": session_id, "accept": True}})
    await until_status(helper, "active")
    await helper.send_json_to({"type": "cobrowse.view", "data": {"session_id": session_id}})
    assert await until(visitor, "cobrowse.guidance") == {"kind": "snapshot"}, "a late viewer gets a fresh snapshot"

    batch = json.dumps([{"type": 3, "data": {"source": 5, "text": "*" * len(CARD)}}])
    await visitor.send_json_to(events_frame(session_id, batch))
    relayed = await until(helper, "cobrowse.events")
    assert relayed["data"] == batch and relayed["session_id"] == session_id

    await helper.send_json_to(
        {
            "type": "cobrowse.guide",
            "data": {"session_id": session_id, "kind": "highlight", "node_id": 42, "note": "Here"},
        }
    )
    assert await until(visitor, "cobrowse.guidance") == {
        "kind": "highlight",
        "node_id": 42,
        "note": "Here",
        "scroll": False,
    }

    await visitor.send_json_to({"type": "cobrowse.stop", "data": {"session_id": session_id}})
    await until_status(helper, "stopped")
    await visitor.send_json_to(events_frame(session_id, "[1]", batch=1))
    assert (await until(visitor, "error"))["code"] == "cobrowse_not_active"
    assert not [f for f in await drain(helper) if f["type"] == "cobrowse.events"], "nothing after stop"

    session = await CobrowseSession.objects.aget()
    assert (session.status, session.stopped_by) == ("stopped", "visitor")
    assert session.requested_at and session.responded_at and session.stopped_at
    bodies = [m.body async for m in Message.objects.filter(conversation_id=conversation_id).order_by("seq")]
    assert "Alex asked to see your screen." in bodies
    assert "The resident agreed to share their screen." in bodies
    assert "Screen sharing was stopped by the resident." in bodies
    for communicator in (helper, visitor):
        await communicator.disconnect()


async def test_declining_and_ending_the_conversation(advisor):
    helper, visitor, conversation_id = await accepted_conversation(advisor)
    await helper.send_json_to({"type": "cobrowse.request", "data": {"conversation_id": conversation_id}})
    session_id = (await until(visitor, "cobrowse.updated"))["cobrowse"]["id"]
    await visitor.send_json_to({"type": "cobrowse.respond", "data": {"session_id": session_id, "accept": False}})
    await until_status(helper, "declined")
    await visitor.send_json_to({"type": "cobrowse.respond", "data": {"session_id": session_id, "accept": True}})
    assert (await until(visitor, "error"))["code"] == "cobrowse_not_requested", "an answer is final"

    await helper.send_json_to({"type": "cobrowse.request", "data": {"conversation_id": conversation_id}})
    second = (await until_status(visitor, "requested"))["id"]
    await visitor.send_json_to({"type": "cobrowse.respond", "data": {"session_id": second, "accept": True}})
    await until_status(helper, "active")
    await helper.send_json_to({"type": "conversation.end", "data": {"conversation_id": conversation_id}})
    stopped = await until_status(visitor, "stopped")
    assert stopped["stopped_by"] == "system"
    await visitor.send_json_to(events_frame(second, "[]"))
    assert (await until(visitor, "error"))["code"] == "cobrowse_not_active"
    for communicator in (helper, visitor):
        await communicator.disconnect()


async def test_another_helper_cannot_ask_or_watch(advisor, other_advisor):
    helper, visitor, conversation_id = await accepted_conversation(advisor)
    intruder = await console(other_advisor)
    await expect(intruder, "queue.snapshot")
    await intruder.send_json_to({"type": "cobrowse.request", "data": {"conversation_id": conversation_id}})
    assert (await until(intruder, "error"))["code"] == "not_assigned"
    await helper.send_json_to({"type": "cobrowse.request", "data": {"conversation_id": conversation_id}})
    session_id = (await until(visitor, "cobrowse.updated"))["cobrowse"]["id"]
    await visitor.send_json_to({"type": "cobrowse.respond", "data": {"session_id": session_id, "accept": True}})
    await until_status(helper, "active")
    await intruder.send_json_to({"type": "cobrowse.view", "data": {"session_id": session_id}})
    assert (await until(intruder, "error"))["code"] == "cobrowse_not_found"
    await visitor.send_json_to(events_frame(session_id, "[]"))
    assert not [f for f in await drain(intruder) if f["type"] == "cobrowse.events"]
    for communicator in (helper, visitor, intruder):
        await communicator.disconnect()


async def test_a_code_starts_a_conversation_and_asks_consent(advisor):
    visitor = await connect()
    await visitor.send_json_to({"type": "cobrowse.code.request", "data": {}})
    code = (await expect(visitor, "cobrowse.code"))["code"]
    assert len(code) == 6 and code.isdigit()
    assert code not in (await CobrowseSession.objects.aget()).code_hash

    helper = await console(advisor)
    await expect(helper, "queue.snapshot")
    wrong = "000000" if code != "000000" else "111111"
    await helper.send_json_to({"type": "cobrowse.join_code", "data": {"code": wrong}})
    assert (await until(helper, "error"))["code"] == "cobrowse_code_invalid"
    assert await Conversation.objects.acount() == 0

    await helper.send_json_to({"type": "cobrowse.join_code", "data": {"code": f"{code[:3]} {code[3:]}"}})
    joined = await until(helper, "cobrowse.code_joined")
    token = (await until(visitor, "cobrowse.joined"))["token"]
    await visitor.send_json_to({"type": "conversation.resume", "data": {"token": token}})
    snapshot = await until(visitor, "state.snapshot")
    assert snapshot["cobrowse"]["status"] == "requested" and snapshot["conversation"]["id"] == joined["conversation_id"]

    await helper.send_json_to({"type": "cobrowse.join_code", "data": {"code": code}})
    assert (await until(helper, "error"))["code"] == "cobrowse_code_invalid", "a code works once"
    for communicator in (helper, visitor):
        await communicator.disconnect()


async def test_too_many_wrong_codes_shut_the_helper_out_of_every_code(advisor, settings):
    settings.COBROWSE_CODE_MISSES_PER_HELPER_PER_HOUR = 1
    _session, code = await sync_to_async(services.cobrowse_code_issue)()
    wrong = "000000" if code != "000000" else "111111"
    helper = await console(advisor)
    await expect(helper, "queue.snapshot")
    await helper.send_json_to({"type": "cobrowse.join_code", "data": {"code": wrong}})
    assert (await until(helper, "error"))["code"] == "cobrowse_code_invalid"

    await helper.send_json_to({"type": "cobrowse.join_code", "data": {"code": code}})
    error = await until(helper, "error")

    assert (error["code"], error["frame_type"]) == ("too_many_code_misses", "cobrowse.join_code")
    assert "too many wrong codes" in error["message"]
    assert await Conversation.objects.acount() == 0
    await helper.disconnect()


async def test_an_expired_code_gives_nothing(advisor):
    _session, code = await sync_to_async(services.cobrowse_code_issue)(
        now=timezone.now() - services.COBROWSE_CODE_LIFETIME - datetime.timedelta(seconds=1)
    )
    helper = await console(advisor)
    await expect(helper, "queue.snapshot")
    await helper.send_json_to({"type": "cobrowse.join_code", "data": {"code": code}})
    assert (await until(helper, "error"))["code"] == "cobrowse_code_invalid"
    assert await Conversation.objects.acount() == 0
    await helper.disconnect()


async def test_page_events_from_a_socket_not_sharing_are_counted_as_frames():
    """Not a way round the frame rate: each is refused, and a flood of them is limited."""
    visitor = await connect()
    for _ in range(40):
        await visitor.send_json_to({"type": "cobrowse.events"})
    codes = [frame["data"]["code"] for frame in await drain(visitor) if frame["type"] == "error"]

    # Bursts of 20 frames, not 4 MiB of bytes: the rest are dropped with one error a second.
    assert "rate_limited" in codes
    assert codes.count("invalid_frame") + codes.count("not_joined") < 40
    await visitor.disconnect()


async def test_tiny_page_events_count_as_a_kibibyte_each(advisor, monkeypatch):
    monkeypatch.setattr("chat.protocol.BULK_BURST_BYTES", 10 * 1024)
    monkeypatch.setattr("chat.protocol.BULK_BYTES_PER_SECOND", 1)
    helper, visitor, session_id = await screen_shared_and_viewed(advisor)

    for index in range(30):
        await visitor.send_json_to(events_frame(session_id, "[]", part=index, parts=30))
    assert (await until(visitor, "error", limit=5))["code"] == "rate_limited"
    relayed = [f for f in await drain(helper) if f["type"] == "cobrowse.events"]
    # A 10 KiB budget: ten frames of a few bytes each, where their bytes alone would let all
    # thirty through.
    assert len(relayed) == 10
    for communicator in (helper, visitor):
        await communicator.disconnect()


async def test_page_events_past_the_byte_budget_are_refused_and_not_relayed(advisor, monkeypatch):
    # A small budget that does not refill during the test, so the outcome does not depend on
    # how fast this machine relays (the real one is 4 MiB, then 1 MiB a second).
    monkeypatch.setattr("chat.protocol.BULK_BURST_BYTES", 10 * 15200)
    monkeypatch.setattr("chat.protocol.BULK_BYTES_PER_SECOND", 1)
    helper, visitor, session_id = await screen_shared_and_viewed(advisor)

    part = "x" * 15000
    for index in range(30):
        await visitor.send_json_to(events_frame(session_id, part, part=index, parts=30))
    assert (await until(visitor, "error", limit=5))["code"] == "rate_limited"
    relayed = [f for f in await drain(helper) if f["type"] == "cobrowse.events"]
    # Counted in bytes, not frames: ten ~15 kB frames fit the budget (twenty would pass a
    # frame count), the other twenty are dropped.
    assert len(relayed) == 10
    for communicator in (helper, visitor):
        await communicator.disconnect()


async def test_a_helper_stops_only_a_session_of_a_conversation_they_hold(advisor, other_advisor):
    helper, visitor, session_id = await screen_shared_and_viewed(advisor)
    conversation_id = (await CobrowseSession.objects.aget(pk=session_id)).conversation_id
    other = await console(other_advisor)
    await expect(other, "queue.snapshot")

    for who, data, code in (
        (other, {"conversation_id": conversation_id, "session_id": session_id}, "not_assigned"),
        (helper, {"conversation_id": conversation_id, "session_id": session_id + 1000}, "cobrowse_not_found"),
        (helper, {"conversation_id": 10**9, "session_id": session_id}, "conversation_not_found"),
    ):
        await who.send_json_to({"type": "cobrowse.stop", "data": data})
        refused = await until(who, "error")
        assert (refused["code"], refused["frame_type"]) == (code, "cobrowse.stop")
    assert (await CobrowseSession.objects.aget(pk=session_id)).status == "active"

    await helper.send_json_to(
        {"type": "cobrowse.stop", "data": {"conversation_id": conversation_id, "session_id": session_id}}
    )
    assert (await until_status(visitor, "stopped"))["stopped_by"] == "helper"
    for communicator in (helper, visitor, other):
        await communicator.disconnect()


async def test_a_resident_stop_or_answer_naming_another_session_changes_nothing(advisor):
    helper, visitor, session_id = await screen_shared_and_viewed(advisor)

    for frame in (
        {"type": "cobrowse.stop", "data": {"session_id": session_id + 1000}},
        {"type": "cobrowse.respond", "data": {"session_id": session_id + 1000, "accept": False}},
    ):
        await visitor.send_json_to(frame)
        refused = await until(visitor, "error")
        assert (refused["code"], refused["frame_type"]) == ("cobrowse_not_found", frame["type"])
    assert (await CobrowseSession.objects.aget(pk=session_id)).status == "active"

    # The share this socket has still flows to the helper.
    await visitor.send_json_to(events_frame(session_id, "[7]", batch=1))
    assert (await until(helper, "cobrowse.events"))["data"] == "[7]"
    for communicator in (helper, visitor):
        await communicator.disconnect()
