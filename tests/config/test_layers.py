"""The in-memory layer sweeps expired messages and memberships once per interval, not on
every group send and receive, and still sweeps them."""

import asyncio

import pytest
from channels.layers import InMemoryChannelLayer

from config import layers
from config.layers import SweepingInMemoryChannelLayer

pytestmark = pytest.mark.asyncio


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def monotonic(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch):
    clock = Clock()
    monkeypatch.setattr(layers, "monotonic", clock.monotonic)
    return clock


@pytest.fixture
def sweeps(monkeypatch):
    counted = []
    original = InMemoryChannelLayer._clean_expired
    monkeypatch.setattr(InMemoryChannelLayer, "_clean_expired", lambda layer: counted.append(1) or original(layer))
    return counted


async def receive(layer, channel):
    return await asyncio.wait_for(layer.receive(channel), 5)


async def test_a_burst_sweeps_once_and_the_next_interval_sweeps_again(clock, sweeps):
    layer = SweepingInMemoryChannelLayer(expiry=60)
    channels = [await layer.new_channel() for _ in range(50)]
    for channel in channels:
        await layer.group_add("busy", channel)

    for n in range(20):
        await layer.group_send("busy", {"type": "note", "n": n})
    received = [await receive(layer, channel) for channel in channels for _ in range(20)]

    assert len(received) == 50 * 20
    assert [message["n"] for message in received[:20]] == list(range(20))
    assert len(sweeps) == 1

    clock.now += layer.sweep_interval_seconds
    await layer.group_send("busy", {"type": "note", "n": 20})
    await layer.group_send("busy", {"type": "note", "n": 21})
    assert len(sweeps) == 2


async def test_expired_messages_and_memberships_are_still_swept(clock):
    layer = SweepingInMemoryChannelLayer(expiry=60)
    stale, fresh, member = await layer.new_channel(), await layer.new_channel(), await layer.new_channel()
    await layer.group_add("stale", stale)
    await layer.group_add("members", member)
    await layer.group_send("nobody", {"type": "none"})  # the first sweep: nothing expired yet
    layer.expiry = -1
    await layer.send(stale, {"type": "expired on arrival"})
    layer.expiry = 60
    await layer.send(fresh, {"type": "new"})
    layer.group_expiry = -10  # every membership is now past its expiry

    clock.now += layer.sweep_interval_seconds
    assert (await receive(layer, fresh))["type"] == "new"  # the receive that swept

    # A channel whose oldest message expired is dropped with its queue and memberships.
    assert stale not in layer.channels
    assert stale not in layer.groups.get("stale", {})
    assert member not in layer.groups.get("members", {})
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(layer.receive(stale), 0.2)


async def test_a_sweep_holds_the_loop_at_most_once_in_ten_seconds(clock, sweeps):
    # Each sweep stops every socket of the process (about a millisecond at 100
    # conversations); once a second that was one message in forty at the realistic rate.
    layer = SweepingInMemoryChannelLayer(expiry=60)
    channel = await layer.new_channel()
    await layer.group_add("room", channel)
    first_sweep_at = clock.now

    for _ in range(99):
        await layer.group_send("room", {"type": "note"})
        await receive(layer, channel)
        clock.now += 0.1
    assert len(sweeps) == 1

    clock.now = first_sweep_at + 10
    await layer.group_send("room", {"type": "note"})
    assert len(sweeps) == 2
