"""Events a service commits while a consumer runs it are sent by the consumer's event loop as
each commit happens, in commit order, even if the consumer is cancelled meanwhile; nothing
rolled back is ever sent."""

import asyncio
import logging
import threading

import pytest
from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer
from django.core.exceptions import ValidationError
from django.db import transaction

from config import realtime
from config.async_db import db

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.asyncio]

GROUP = "test.realtime"


async def listener():
    layer = get_channel_layer()
    channel = await layer.new_channel()
    await layer.group_add(GROUP, channel)
    return layer, channel


async def received(layer, channel, count: int) -> list[int]:
    return [(await asyncio.wait_for(layer.receive(channel), 10))["n"] for _ in range(count)]


async def nothing_more(layer, channel) -> bool:
    try:
        await asyncio.wait_for(layer.receive(channel), 0.5)
    except TimeoutError:
        return True
    return False


async def shielded_work_finished() -> None:
    """Wait until the work a cancelled caller left running has finished and been seen to."""
    for _ in range(200):
        running = [task for task in asyncio.all_tasks() if "run_sending_from_loop" in task.get_coro().__qualname__]
        if not running:
            await asyncio.sleep(0)  # its done-callbacks run on the next turn of the loop
            return
        await asyncio.sleep(0.05)
    raise AssertionError("the shielded work did not finish")


def commit_events(*numbers: int) -> None:
    for number in numbers:
        with transaction.atomic():
            realtime.broadcast(groups=[GROUP], event_type="test.event", n=number)


async def test_committed_events_are_sent_in_commit_order():
    layer, channel = await listener()

    assert await db(lambda: commit_events(1, 2, 3) or "done")() == "done"

    assert await received(layer, channel, 3) == [1, 2, 3]


async def test_an_event_is_sent_at_its_commit_while_the_service_is_still_working():
    layer, channel = await listener()
    may_finish = threading.Event()

    def service():
        commit_events(1)
        # Slow work after the commit (a transcript email, say) must not hold the event back.
        assert may_finish.wait(10)
        commit_events(2)

    call = asyncio.ensure_future(db(service)())
    assert await received(layer, channel, 1) == [1]
    assert not call.done()
    may_finish.set()
    await call
    assert await received(layer, channel, 1) == [2]


async def test_a_cancelled_caller_still_has_what_the_service_commits_sent():
    layer, channel = await listener()
    started, may_commit = threading.Event(), threading.Event()

    def service():
        started.set()
        assert may_commit.wait(10)
        commit_events(1)

    call = asyncio.ensure_future(db(service)())
    await sync_to_async(started.wait)(10)
    call.cancel()
    with pytest.raises(asyncio.CancelledError):
        await call
    may_commit.set()

    assert await received(layer, channel, 1) == [1]


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
    assert await nothing_more(layer, channel)


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

    # As an HTTP view or a management command runs a service: no consumer's loop sends for it.
    await sync_to_async(commit_events)(7)

    assert await received(layer, channel, 1) == [7]


@pytest.mark.parametrize(("failure", "logged"), [(RuntimeError("broken"), True), (ValidationError("no"), False)])
async def test_a_cancelled_callers_work_that_fails_is_logged_unless_it_was_a_refusal(caplog, failure, logged):
    started, may_fail = threading.Event(), threading.Event()

    def service():
        started.set()
        assert may_fail.wait(10)
        raise failure

    call = asyncio.ensure_future(db(service)())
    await sync_to_async(started.wait)(10)
    call.cancel()
    with pytest.raises(asyncio.CancelledError):
        await call
    with caplog.at_level(logging.ERROR, logger="config.realtime"):
        may_fail.set()
        await shielded_work_finished()

    assert ("work of a cancelled caller failed" in caplog.text) is logged
