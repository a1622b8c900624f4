"""Events a service commits while a consumer runs it are sent by the consumer's event loop,
after the service returns, in commit order; nothing rolled back is ever sent."""

import asyncio
import logging

import pytest
from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer
from django.db import transaction

from chat.protocol import db
from config import realtime

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.asyncio]

GROUP = "test.realtime"


async def listener():
    layer = get_channel_layer()
    channel = await layer.new_channel()
    await layer.group_add(GROUP, channel)
    return layer, channel


async def received(layer, channel, count: int) -> list[int]:
    return [(await asyncio.wait_for(layer.receive(channel), 10))["n"] for _ in range(count)]


def commit_events(*numbers: int) -> None:
    for number in numbers:
        with transaction.atomic():
            realtime.broadcast(groups=[GROUP], event_type="test.event", n=number)


async def test_committed_events_are_sent_after_the_service_returns_in_commit_order():
    layer, channel = await listener()
    sent_while_running = []

    def service():
        commit_events(1, 2, 3)
        # Still in the worker thread: everything committed so far is held, not sent.
        sent_while_running.extend(event["n"] for _, event in realtime._held_events.get())
        return "done"

    assert await db(service)() == "done"
    assert sent_while_running == [1, 2, 3]
    assert await received(layer, channel, 3) == [1, 2, 3]


async def test_events_committed_before_a_failure_are_still_sent_and_rolled_back_ones_never():
    layer, channel = await listener()

    def service():
        commit_events(1)
        with transaction.atomic():
            realtime.broadcast(groups=[GROUP], event_type="test.event", n=2)
            raise RuntimeError("after the first commit")

    with pytest.raises(RuntimeError):
        await db(service)()

    assert await received(layer, channel, 1) == [1]
    with pytest.raises(asyncio.TimeoutError):
        await asyncio.wait_for(layer.receive(channel), 0.5)


async def test_a_layer_failure_is_logged_and_the_service_result_still_returned(monkeypatch, caplog):
    class BrokenLayer:
        async def group_send(self, group, event):
            raise ConnectionError("layer down")

    monkeypatch.setattr(realtime, "get_channel_layer", lambda: BrokenLayer())

    with caplog.at_level(logging.ERROR, logger="config.realtime"):
        assert await db(lambda: commit_events(1) or "stored")() == "stored"

    assert "broadcast of test.event to test.realtime failed" in caplog.text


async def test_outside_a_consumer_events_are_sent_at_commit():
    layer, channel = await listener()

    # As an HTTP view or a management command runs a service: no consumer holds the events.
    await sync_to_async(commit_events)(7)

    assert await received(layer, channel, 1) == [7]
