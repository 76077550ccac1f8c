"""The SSE consumer on its own: a watcher that joins a running answer whose run never answers
the snapshot request falls back to the saved text, then relays live frames (or the final
state), with no gap and no repeat."""

from __future__ import annotations

import asyncio
import gc
import json
import threading
import weakref

import pytest
from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer

from chatapp.conversations.models import Conversation, Message
from chatapp.turns.consumer import MessageStreamConsumer
from chatapp.turns.protocol import StreamDelta, StreamEnd, control_group, stream_group
from chatapp.turns.workers import WORKER_ID
from tests.conftest import add_message, open_stream

pytestmark = [pytest.mark.django_db(transaction=True)]

SAVED = "Hello, "


@pytest.fixture
def silent_run(settings, user) -> Message:
    """An answer this worker is writing (so the reaper leaves it alone) with its first
    checkpoint saved, but no run in this process: a snapshot request reaches nobody."""
    settings.CHAT_RUN = {**settings.CHAT_RUN, "snapshot_timeout": 0.2}
    conversation = Conversation.objects.create(owner=user, route="aimlapi", model="x")
    add_message(conversation, role="user", content="Hi")
    return add_message(
        conversation,
        role="assistant",
        status=Message.Status.STREAMING,
        content=SAVED,
        route="aimlapi",
        model="x",
        worker_id=WORKER_ID,
    )


async def test_a_watcher_whose_run_is_silent_gets_the_saved_text_then_live_frames(
    run_manager, silent_run, cookie
):
    stream = open_stream(silent_run.id, cookie=cookie)
    await stream.start()
    await stream.attached()
    assert silent_run.id not in run_manager.runs

    saved = await stream.next_event()
    assert saved is not None
    assert (saved.event, json.loads(saved.data), saved.id) == ("delta", {"o": 0, "t": SAVED}, "0.7")

    layer = get_channel_layer()
    # The run's next frame overlaps what was saved: only the new part is sent.
    overlap: StreamDelta = {"type": "stream.delta", "o": 3, "t": "lo, world"}
    await layer.group_send(stream_group(silent_run.id), overlap)
    live = await stream.next_event()
    assert live is not None
    assert (live.event, json.loads(live.data), live.id) == ("delta", {"o": 7, "t": "world"}, "0.12")

    end: StreamEnd = {
        "type": "stream.end",
        "event": "done",
        "html": "<article></article>",
        "end": 12,
    }
    await layer.group_send(stream_group(silent_run.id), end)
    done = await stream.next_event()
    assert done is not None
    assert (done.event, done.data) == ("done", "<article></article>")
    assert await stream.next_event() is None


async def test_a_watcher_whose_run_ended_silently_gets_the_final_state(
    run_manager, silent_run, cookie, settings
):
    settings.CHAT_RUN = {**settings.CHAT_RUN, "snapshot_timeout": 1.0}
    layer = get_channel_layer()
    # Listen where the run would: the snapshot request arrives, and nobody answers it.
    control = await layer.new_channel()
    await layer.group_add(control_group(silent_run.id), control)
    stream = open_stream(silent_run.id, cookie=cookie, after=len(SAVED))
    await stream.start()
    await stream.attached()
    request = await asyncio.wait_for(layer.receive(control), 5)
    assert (request["type"], request["after"]) == ("run.sync", len(SAVED))
    # The run's worker saved the final answer, but its end never reached this watcher.
    await Message.objects.filter(pk=silent_run.id).aupdate(
        status=Message.Status.COMPLETE, content=SAVED + "world", finish_reason="stop"
    )

    done = await stream.next_event()
    assert done is not None
    assert done.event == "done"
    assert done.id == str(len(SAVED + "world"))
    assert "Hello, world" in done.data
    assert await stream.next_event() is None


async def test_a_frame_beyond_the_saved_text_waits_for_the_gap_to_fill(
    run_manager, silent_run, cookie
):
    """The saved text lags the run by up to a checkpoint: a live frame past it is held until a
    later checkpoint (or snapshot) fills the gap, then sent - never a hole in the answer."""
    stream = open_stream(silent_run.id, cookie=cookie)
    await stream.start()
    await stream.attached()
    layer = get_channel_layer()
    ahead: StreamDelta = {"type": "stream.delta", "o": 12, "t": "!"}
    await layer.group_send(stream_group(silent_run.id), ahead)

    saved = await stream.next_event()
    assert saved is not None
    assert json.loads(saved.data) == {"o": 0, "t": SAVED}
    # The next checkpoint brings the missing characters; the held frame follows them.
    await sync_to_async(Message.objects.filter(pk=silent_run.id).update)(content=SAVED + "world")
    gap = await stream.next_event()
    held = await stream.next_event()
    assert gap is not None
    assert held is not None
    assert json.loads(gap.data) == {"o": 7, "t": "world"}
    assert (json.loads(held.data), held.id) == ({"o": 12, "t": "!"}, "0.13")


def _end(end: int, shell: str = "<article><div class='msg-body' data-shell></div></article>"):
    frame: StreamEnd = {
        "type": "stream.end",
        "event": "done",
        "html": "<article>the whole answer</article>",
        "shell": shell,
        "end": end,
    }
    return frame


async def test_a_watcher_with_every_character_gets_the_last_block_then_the_shell(
    run_manager, silent_run, cookie
):
    """The page already shows every block but the last: it gets that one, then the final
    fragment without its body (the page keeps the blocks it shows), not the answer again."""
    stream = open_stream(silent_run.id, cookie=cookie)
    await stream.start()
    await stream.attached()
    saved = await stream.next_event()
    assert saved is not None
    assert json.loads(saved.data) == {"o": 0, "t": SAVED}
    await get_channel_layer().group_send(stream_group(silent_run.id), _end(len(SAVED)))
    last = await stream.next_event()
    assert last is not None
    assert last.event == "blocks"
    assert json.loads(last.data) == {"h": "<p>Hello,</p>\n", "o": 0, "e": 7, "t": "", "n": 7}
    done = await stream.next_event()
    assert done is not None
    assert (done.event, done.data) == (
        "done",
        "<article><div class='msg-body' data-shell></div></article>",
    )


async def test_the_stream_opens_with_its_first_frame_and_ends_in_one_write(
    run_manager, silent_run, cookie
):
    """Each write wakes the reader: the opening comment goes out with the first frame, and
    the last block, the final fragment and the end of the body go out together."""
    bodies: list[dict] = []

    async def record(message: dict) -> None:
        if message["type"] == "http.response.body":
            bodies.append(message)

    stream = open_stream(silent_run.id, cookie=cookie, send_through=record)
    await stream.start()
    await stream.attached()
    assert await stream.next_event() is not None  # the saved text
    await get_channel_layer().group_send(stream_group(silent_run.id), _end(len(SAVED)))
    events = [await stream.next_event(), await stream.next_event()]
    assert [e.event for e in events if e is not None] == ["blocks", "done"]
    assert await stream.next_event() is None

    assert bodies[0]["body"].startswith(b"retry: 2000\n: stream open\n\n: live\n\n")
    last = bodies[-1]
    assert last["more_body"] is False
    assert last["body"].index(b"event: blocks") < last["body"].index(b"event: done")
    assert all(body["more_body"] for body in bodies[:-1])


@pytest.mark.parametrize("shell", ["", "<article data-shell></article>"], ids=["none", "behind"])
async def test_a_watcher_behind_the_end_or_without_a_shell_gets_the_whole_fragment(
    run_manager, silent_run, cookie, shell
):
    stream = open_stream(silent_run.id, cookie=cookie)
    await stream.start()
    await stream.attached()
    assert await stream.next_event() is not None  # the saved text
    # The answer ended with characters this watcher never got (or has no shell to offer).
    end = len(SAVED) + (5 if shell else 0)
    await get_channel_layer().group_send(stream_group(silent_run.id), _end(end, shell))
    done = await stream.next_event()
    assert done is not None
    assert (done.event, done.data) == ("done", "<article>the whole answer</article>")


async def test_a_slow_socket_keeps_its_frames_in_order_and_the_publisher_never_waits(
    run_manager, silent_run, cookie
):
    socket_free = asyncio.Event()

    async def slow_for_a(message: dict) -> None:
        # The socket's buffer is full when frame "A" goes: its handler has to wait.
        if b'"t":"A"' in message.get("body", b""):
            await socket_free.wait()

    stream = open_stream(silent_run.id, cookie=cookie, send_through=slow_for_a)
    await stream.start()
    await stream.attached()
    saved = await stream.next_event()
    assert saved is not None
    assert json.loads(saved.data)["t"] == SAVED

    layer = get_channel_layer()
    group = stream_group(silent_run.id)
    for offset, text in ((7, "A"), (8, "B"), (9, "C")):
        frame: StreamDelta = {"type": "stream.delta", "o": offset, "t": text}
        # Returns at once although "A" is stuck at the socket: B and C wait behind it.
        await asyncio.wait_for(layer.group_send(group, frame), 1)
    assert stream.communicator.output_queue.empty()  # nothing overtook "A"
    socket_free.set()
    texts = [json.loads((await stream.next_event()).data)["t"] for _ in range(3)]
    assert texts == ["A", "B", "C"]


async def test_a_watcher_whose_socket_fails_ends_alone(run_manager, silent_run, cookie):
    async def broken_on_b(message: dict) -> None:
        if b'"t":"B"' in message.get("body", b""):
            raise OSError("connection reset")

    broken = open_stream(silent_run.id, cookie=cookie, send_through=broken_on_b)
    healthy = open_stream(silent_run.id, cookie=cookie)
    for stream in (broken, healthy):
        await stream.start()
        await stream.attached()
        assert (await stream.next_event()) is not None  # the saved text

    layer = get_channel_layer()
    group = stream_group(silent_run.id)
    for offset, text in ((7, "A"), (8, "B"), (9, "C")):
        frame: StreamDelta = {"type": "stream.delta", "o": offset, "t": text}
        await layer.group_send(group, frame)  # the failure does not reach the publisher
    texts = [json.loads((await healthy.next_event()).data)["t"] for _ in range(3)]
    assert texts == ["A", "B", "C"]
    # The broken one's consumer returned (it left its groups) after its "A".
    await asyncio.wait_for(asyncio.shield(broken.communicator.future), 5)
    assert json.loads((await broken.next_event()).data)["t"] == "A"


async def test_the_piece_that_closes_a_block_is_sent_before_the_block_is_rendered(
    run_manager, silent_run, cookie, monkeypatch
):
    """The text goes out first: a page must not wait for a paragraph's HTML to see the last
    words of it (one chunk a paragraph was the one-stream p99, bench "peers")."""
    from chatapp.rendering import StreamRenderer
    from chatapp.turns.consumer import RENDER_IN_THREAD_CHARS

    rendered = threading.Event()
    feed = StreamRenderer.feed

    def slow_feed(self, text: str):
        # The long block goes to a thread (RENDER_IN_THREAD_CHARS): hold it there.
        if len(text) > RENDER_IN_THREAD_CHARS:
            assert rendered.wait(5)
        return feed(self, text)

    monkeypatch.setattr(StreamRenderer, "feed", slow_feed)
    stream = open_stream(silent_run.id, cookie=cookie)
    await stream.start()
    await stream.attached()
    assert await stream.next_event() is not None  # the saved text
    long = "x" * (RENDER_IN_THREAD_CHARS + 1) + "\n\nnext"
    frame: StreamDelta = {"type": "stream.delta", "o": len(SAVED), "t": long}
    await get_channel_layer().group_send(stream_group(silent_run.id), frame)
    try:
        delta = await asyncio.wait_for(stream.next_event(), 5)
    finally:
        rendered.set()
    assert delta is not None
    assert delta.event == "delta"
    assert json.loads(delta.data)["t"] == long
    blocks = await stream.next_event()
    assert blocks is not None
    assert blocks.event == "blocks"


async def test_a_stream_that_ended_is_freed_without_the_garbage_collector(
    run_manager, silent_run, cookie, monkeypatch
):
    """The consumer, its renderer and the connection's objects go with the stream: its
    heartbeat task, cancelled at the end, keeps a traceback that holds the consumer."""
    consumers: list[weakref.ref[MessageStreamConsumer]] = []
    real_init = MessageStreamConsumer.__init__

    def init(self: MessageStreamConsumer, *args, **kwargs) -> None:
        real_init(self, *args, **kwargs)
        consumers.append(weakref.ref(self))

    monkeypatch.setattr(MessageStreamConsumer, "__init__", init)
    gc.collect()
    gc.disable()
    try:
        stream = open_stream(silent_run.id, cookie=cookie)
        await stream.start()
        await stream.attached()
        assert await stream.next_event() is not None  # the saved text
        consumer = consumers[0]()
        assert consumer is not None
        assert consumer.ticker is not None
        heartbeat = consumer.ticker
        del consumer
        await get_channel_layer().group_send(stream_group(silent_run.id), _end(len(SAVED)))
        while await stream.next_event() is not None:
            pass
        await stream.communicator.wait(5)
        await asyncio.wait([heartbeat])  # cancelled at the end
        del heartbeat, stream
        assert len(consumers) == 1
        assert consumers[0]() is None
    finally:
        gc.enable()
