"""A resident and an advisor on different Daphne processes, through real Redis and PostgreSQL."""

import asyncio
import json
import urllib.request

import pytest
from asgiref.sync import sync_to_async
from django.conf import settings
from django.test import Client
from websockets.asyncio.client import connect

from chat.models import Message
from tests.servers import free_port, start_daphne

pytestmark = [pytest.mark.services, pytest.mark.django_db(transaction=True)]


class Socket:
    """A protocol client written from docs/protocol.md: JSON frames `{type, data}`."""

    def __init__(self, connection):
        self.connection = connection

    async def send(self, frame_type, **data):
        await self.connection.send(json.dumps({"type": frame_type, "data": data}))

    async def expect(self, frame_type, timeout=5):
        frame = json.loads(await asyncio.wait_for(self.connection.recv(), timeout))
        assert frame["type"] == frame_type, frame
        return frame["data"]

    async def nothing(self, timeout=0.5):
        try:
            frame = await asyncio.wait_for(self.connection.recv(), timeout)
        except TimeoutError:
            return True
        raise AssertionError(f"unexpected frame {frame}")


async def open_socket(base, path, cookie=None):
    headers = {"Cookie": cookie} if cookie else None
    connection = await connect(f"{base.ws}{path}", origin=base.http, additional_headers=headers)
    return Socket(connection)


async def session_cookie(user) -> str:
    client = Client()
    await sync_to_async(client.force_login)(user)
    return f"{settings.SESSION_COOKIE_NAME}={client.cookies[settings.SESSION_COOKIE_NAME].value}"


async def test_visitor_and_advisor_on_different_processes_exchange_messages_and_resume(daphne_pair, advisor):
    process_a, process_b = daphne_pair
    helper = await open_socket(process_b, "/ws/console/", await session_cookie(advisor))
    await helper.expect("queue.snapshot")

    visitor = await open_socket(process_a, "/ws/chat/")
    await visitor.send("conversation.start", name="Pat")
    token = (await visitor.expect("conversation.started"))["token"]
    await visitor.expect("state.snapshot")
    assert (await visitor.expect("queue.position"))["position"] == 1
    conversation_id = (await helper.expect("conversation.queued"))["conversation"]["id"]

    await helper.send("conversation.accept", conversation_id=conversation_id)
    await helper.expect("state.snapshot")
    await helper.expect("notes.snapshot")
    await helper.expect("conversation.assigned")
    await visitor.expect("message.created")  # "Alex joined the conversation."
    await visitor.expect("conversation.updated")

    await visitor.send("message.send", client_id="v-1", body="Hello from process A")
    assert (await visitor.expect("message.created"))["seq"] == 2
    assert (await helper.expect("message.created"))["body"] == "Hello from process A"
    await helper.send("message.send", conversation_id=conversation_id, client_id="h-1", body="Hello from process B")
    assert (await helper.expect("message.created"))["seq"] == 3
    assert (await visitor.expect("message.created"))["body"] == "Hello from process B"

    # The resident's connection drops. While they are away the advisor writes twice, and the
    # resident's last message was stored but its acknowledgement never arrived.
    await visitor.connection.close()
    # Process A tells the advisor on process B at once, not at the abandoned timeout.
    assert (await helper.expect("visitor.presence"))["connected"] is False
    for index in (1, 2):
        await helper.send(
            "message.send", conversation_id=conversation_id, client_id=f"h-away-{index}", body=f"away {index}"
        )
        await helper.expect("message.created")

    # They come back on the *other* process, resuming from the last message they saw.
    visitor = await open_socket(process_b, "/ws/chat/")
    await visitor.send("conversation.resume", token=token, last_seq=3)
    snapshot = await visitor.expect("state.snapshot")
    assert [(m["seq"], m["body"]) for m in snapshot["messages"]] == [(4, "away 1"), (5, "away 2")]
    assert (await helper.expect("visitor.presence"))["connected"] is True
    await visitor.send("message.send", client_id="v-1", body="Hello from process A")
    resent = await visitor.expect("message.created")
    assert resent["seq"] == 2, "a resend returns the stored message"
    await visitor.nothing()
    await helper.nothing()

    bodies = await sync_to_async(list)(
        Message.objects.filter(conversation_id=conversation_id).order_by("seq").values_list("seq", "body")
    )
    assert [seq for seq, _ in bodies] == [1, 2, 3, 4, 5]
    assert sum(1 for _, body in bodies if body == "Hello from process A") == 1
    await visitor.connection.close()
    await helper.connection.close()


def test_healthz_is_unavailable_when_the_database_is_unreachable(transactional_db, redis_url, postgres):
    broken = start_daphne(
        env_overrides={"REDIS_URL": redis_url, "DATABASE_URL": f"postgres://postgres@127.0.0.1:{free_port()}/none"},
        wait_healthy=False,
    )
    try:
        with pytest.raises(urllib.error.HTTPError) as error:
            urllib.request.urlopen(f"{broken.http}/healthz", timeout=10)  # noqa: S310
        assert error.value.code == 503
        assert json.loads(error.value.read()) == {
            "status": "unavailable",
            "database": "unavailable",
            "channel_layer": "ok",
        }
    finally:
        broken.stop()


async def until(socket, frame_type, limit=20):
    for _ in range(limit):
        frame = json.loads(await asyncio.wait_for(socket.connection.recv(), 5))
        if frame["type"] == frame_type:
            return frame["data"]
    raise AssertionError(f"no {frame_type}")


async def test_cobrowse_events_cross_processes_and_stop_cuts_them(daphne_pair, advisor):
    """The resident shares from process A, the helper watches on process B, through Redis."""
    process_a, process_b = daphne_pair
    helper = await open_socket(process_b, "/ws/console/", await session_cookie(advisor))
    await helper.expect("queue.snapshot")
    visitor = await open_socket(process_a, "/ws/chat/")
    await visitor.send("conversation.start", name="Pat")
    conversation_id = (await until(helper, "conversation.queued"))["conversation"]["id"]
    await helper.send("conversation.accept", conversation_id=conversation_id)
    await until(helper, "notes.snapshot")

    await helper.send("cobrowse.request", conversation_id=conversation_id)
    session_id = (await until(visitor, "cobrowse.updated"))["cobrowse"]["id"]
    await visitor.send("cobrowse.respond", session_id=session_id, accept=True)
    while (await until(helper, "cobrowse.updated"))["cobrowse"]["status"] != "active":
        pass
    await helper.send("cobrowse.view", session_id=session_id)
    assert await until(visitor, "cobrowse.guidance") == {"kind": "snapshot"}

    # A batch in three parts, as a page snapshot is sent: relayed in order, unchanged.
    text = json.dumps([{"type": 4, "data": {"href": "/", "width": 800, "height": 600}, "timestamp": 1}] * 900)
    parts = [text[i : i + 12000] for i in range(0, len(text), 12000)]
    for index, data in enumerate(parts):
        await visitor.send(
            "cobrowse.events", session_id=session_id, page="p", batch=0, part=index, parts=len(parts), data=data
        )
    received = [await until(helper, "cobrowse.events") for _ in parts]
    assert "".join(frame["data"] for frame in sorted(received, key=lambda f: f["part"])) == text

    await visitor.send("cobrowse.stop", session_id=session_id)
    await visitor.send("cobrowse.events", session_id=session_id, page="p", batch=1, part=0, parts=1, data="[]")
    assert (await until(visitor, "error"))["code"] == "cobrowse_not_active"
    assert (await until(helper, "cobrowse.updated"))["cobrowse"]["status"] == "stopped"
    await helper.nothing()
    await visitor.connection.close()
    await helper.connection.close()
