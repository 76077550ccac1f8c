"""The single-process channel layer keeps Channels' semantics at a fraction of the cost."""

from __future__ import annotations

import pytest
from channels.exceptions import ChannelFull

from chatapp.core import layers
from chatapp.core.layers import InMemoryChannelLayer


async def test_group_messages_reach_every_member_in_order():
    layer = InMemoryChannelLayer(capacity=10)
    a, b = await layer.new_channel(), await layer.new_channel()
    await layer.group_add("g", a)
    await layer.group_add("g", b)
    for i in range(3):
        await layer.group_send("g", {"type": "x", "i": i})
    assert [(await layer.receive(a))["i"] for _ in range(3)] == [0, 1, 2]
    assert [(await layer.receive(b))["i"] for _ in range(3)] == [0, 1, 2]


async def test_members_get_copies_not_the_senders_dict():
    layer = InMemoryChannelLayer()
    a = await layer.new_channel()
    await layer.group_add("g", a)
    sent = {"type": "x", "t": "text"}
    await layer.group_send("g", sent)
    sent["t"] = "changed after sending"
    assert (await layer.receive(a))["t"] == "text"


async def test_a_full_member_loses_the_message_and_others_still_get_it():
    layer = InMemoryChannelLayer(capacity=1)
    full, ok = await layer.new_channel(), await layer.new_channel()
    await layer.group_add("g", full)
    await layer.send(full, {"type": "x"})
    await layer.group_add("g", ok)
    await layer.group_send("g", {"type": "y"})
    assert (await layer.receive(ok))["type"] == "y"
    with pytest.raises(ChannelFull):
        await layer.send(full, {"type": "z"})


async def test_expired_messages_are_swept_and_their_channel_leaves_its_groups(monkeypatch):
    layer = InMemoryChannelLayer(expiry=1)
    stale, fresh = await layer.new_channel(), await layer.new_channel()
    await layer.group_add("g", stale)
    await layer.send(stale, {"type": "old"})
    now = __import__("time").time()
    monkeypatch.setattr(layers.time, "time", lambda: now + 5)  # past expiry and the sweep interval
    await layer.send(fresh, {"type": "new"})
    await layer.group_send("g", {"type": "after"})
    assert stale not in layer.groups.get("g", {})
    assert stale not in layer.channels


async def test_a_channel_someone_is_receiving_on_survives_leaving_its_groups():
    """The run manager's control channel leaves a run's group when the run ends, while its
    loop waits on it: messages sent afterwards must still reach that loop."""
    import asyncio

    layer = InMemoryChannelLayer()
    control = await layer.new_channel()
    await layer.group_add("run.x", control)
    waiting = asyncio.create_task(layer.receive(control))
    await asyncio.sleep(0)  # the receiver is now waiting on the channel's queue
    await layer.group_discard("run.x", control)
    await layer.send(control, {"type": "manager.close"})
    assert (await asyncio.wait_for(waiting, 1))["type"] == "manager.close"


async def test_an_abandoned_channel_is_forgotten_when_it_leaves_its_last_group():
    layer = InMemoryChannelLayer()
    gone = await layer.new_channel()
    await layer.group_add("a", gone)
    await layer.group_send("a", {"type": "x"})
    await layer.receive(gone)
    await layer.group_discard("a", gone)
    assert gone not in layer.channels


async def test_an_attached_sink_gets_each_message_in_the_senders_call():
    layer = InMemoryChannelLayer(capacity=10)
    a, b = await layer.new_channel(), await layer.new_channel()
    await layer.group_add("g", a)
    await layer.group_add("g", b)
    got: list[int] = []
    layer.attach(a, lambda message: got.append(message["i"]) is None)
    await layer.group_send("g", {"type": "x", "i": 1})
    await layer.send(a, {"type": "x", "i": 2})
    assert got == [1, 2]  # already there: no receive, no task switch
    assert (await layer.receive(b))["i"] == 1  # the other member still queues


async def test_attaching_hands_the_sink_what_was_queued_first():
    layer = InMemoryChannelLayer(capacity=10)
    a = await layer.new_channel()
    await layer.send(a, {"type": "x", "i": 0})
    got: list[int] = []
    layer.attach(a, lambda message: got.append(message["i"]) is None)
    await layer.send(a, {"type": "x", "i": 1})
    assert got == [0, 1]


async def test_a_sink_without_room_is_a_full_channel_and_detaching_queues_again():
    layer = InMemoryChannelLayer(capacity=10)
    a = await layer.new_channel()
    await layer.group_add("g", a)
    layer.attach(a, lambda message: False)
    await layer.group_send("g", {"type": "x"})  # a group message is lost, as when full
    with pytest.raises(ChannelFull):
        await layer.send(a, {"type": "x"})
    layer.detach(a)
    await layer.send(a, {"type": "y"})
    assert (await layer.receive(a))["type"] == "y"
