"""The in-memory layer sweeps expired messages and memberships once per interval, not on
every send and receive, and still sweeps them."""

import asyncio

import pytest
from channels.layers import InMemoryChannelLayer

from config.layers import SweepingInMemoryChannelLayer

pytestmark = pytest.mark.asyncio


async def test_a_burst_of_sends_and_receives_sweeps_once(monkeypatch):
    sweeps = []
    original = InMemoryChannelLayer._clean_expired
    monkeypatch.setattr(InMemoryChannelLayer, "_clean_expired", lambda layer: sweeps.append(1) or original(layer))
    layer = SweepingInMemoryChannelLayer(expiry=60)
    layer.sweep_interval_seconds = 3600
    channels = [await layer.new_channel() for _ in range(50)]
    for channel in channels:
        await layer.group_add("busy", channel)

    for n in range(20):
        await layer.group_send("busy", {"type": "note", "n": n})
    received = [await layer.receive(channel) for channel in channels for _ in range(20)]

    assert len(received) == 50 * 20
    assert [message["n"] for message in received[:20]] == list(range(20))
    assert len(sweeps) == 1


async def test_expired_messages_and_memberships_are_still_swept():
    layer = SweepingInMemoryChannelLayer(expiry=0.05)
    layer.sweep_interval_seconds = 0
    stale, fresh = await layer.new_channel(), await layer.new_channel()
    await layer.group_add("group", stale)
    await layer.send(stale, {"type": "old"})
    await asyncio.sleep(0.1)

    await layer.send(fresh, {"type": "new"})

    assert (await layer.receive(fresh))["type"] == "new"  # the receive that swept
    assert stale not in layer.channels
    assert stale not in layer.groups.get("group", {})
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(layer.receive(stale), 0.2)
