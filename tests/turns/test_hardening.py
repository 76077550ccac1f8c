"""No answer can wedge its conversation: whatever an upstream sends and whatever fails in a
run's last steps, the message ends in a final state, its stream ends, and the conversation
takes the next message. Values from an upstream are made storable first (docs/SECURITY.md
rule 15)."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer

from chatapp.models import Conversation, Message
from chatapp.turns import run as run_module
from chatapp.turns.protocol import StreamSnapshot, control_group
from chatapp.turns.workers import WORKER_ID
from tests.conftest import open_stream, reload_message, start_turn, wait_for_run
from tests.fakes.upstream import ErrorReply, Reply, Text

pytestmark = [pytest.mark.django_db(transaction=True)]

HUGE = 9223372036854775813  # what one upstream reported as prompt tokens
MODELS = {
    "aimlapi": "aimlapi:google/gemini-2.5-flash",
    "gemini": "gemini:gemini-2.5-flash",
    "segmind": "segmind:gemini-2.5-flash",
}


def gemini_body(text: str, **candidate: Any) -> dict[str, Any]:
    return {
        "candidates": [
            {
                "content": {"role": "model", "parts": [{"text": text}]},
                "finishReason": "STOP",
                "index": 0,
                **candidate,
            }
        ]
    }


def answer_with(route: str, text: str, *, usage: dict[str, Any], **candidate: Any) -> ErrorReply:
    """A whole successful JSON answer in the route's own shape (every adapter reads one)."""
    if route == "aimlapi":
        body: dict[str, Any] = {
            "id": "c1",
            "object": "chat.completion",
            "model": "google/gemini-2.5-flash",
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": text},
                    "finish_reason": "stop",
                }
            ],
            "usage": usage,
        }
    else:
        body = {**gemini_body(text, **candidate), "usageMetadata": usage}
    return ErrorReply(200, body)


OUT_OF_RANGE = {
    "aimlapi": {
        "prompt_tokens": HUGE,
        "completion_tokens": -3,
        "total_tokens": 2**40,
        "completion_tokens_details": {"reasoning_tokens": HUGE},
    },
    "gemini": {"promptTokenCount": HUGE, "candidatesTokenCount": 2**64, "totalTokenCount": -1},
    "segmind": {"promptTokenCount": 2**64, "candidatesTokenCount": HUGE},
}


@pytest.mark.parametrize("route", list(MODELS))
async def test_an_out_of_range_usage_figure_is_dropped_and_the_answer_completes(
    all_routes, run_manager, user, cookie, route
):
    all_routes.enqueue(answer_with(route, "Fine.", usage=OUT_OF_RANGE[route]))
    turn = await start_turn(user, "Hi", model_key=MODELS[route])
    await wait_for_run(turn.assistant_message.id)
    message = await reload_message(turn.assistant_message.id)
    assert message.status == Message.Status.COMPLETE
    assert message.content == "Fine."
    assert (message.prompt_tokens, message.completion_tokens, message.total_tokens) == (
        None,
        None,
        None,
    )
    stream = open_stream(message.id, cookie=cookie)
    await stream.start()
    _, end = await stream.read_until_terminal()
    assert end.event == "done"
    # The conversation takes the next message: nothing is left active.
    all_routes.enqueue(Reply([Text("Again.")]))
    second = await start_turn(
        user, "Again", model_key=MODELS[route], conversation_id=turn.conversation.id
    )
    await wait_for_run(second.assistant_message.id)
    assert (await reload_message(second.assistant_message.id)).content == "Again."


async def test_a_nul_character_from_an_upstream_is_stored_as_a_replacement_character(
    aimlapi, run_manager, user
):
    """PostgreSQL refuses NUL in text and in jsonb; one character for one keeps offsets."""
    aimlapi.enqueue(Reply([Text("a\x00b")]))
    turn = await start_turn(user, "Hi")
    await wait_for_run(turn.assistant_message.id)
    message = await reload_message(turn.assistant_message.id)
    assert (message.status, message.content) == (Message.Status.COMPLETE, "a\ufffdb")


async def test_any_failure_of_the_final_save_leaves_the_answer_failed_with_its_text(
    aimlapi, run_manager, user, cookie, monkeypatch
):
    real = run_module.message_finish
    calls: list[str] = []

    def refuses_once(*, message_id: uuid.UUID, outcome: Any) -> bool:
        calls.append(outcome.status)
        if len(calls) == 1:
            raise OverflowError("Python int too large to convert to SQLite INTEGER")
        return real(message_id=message_id, outcome=outcome)

    monkeypatch.setattr(run_module, "message_finish", refuses_once)
    aimlapi.enqueue(Reply([Text("Half "), Text("said.")]))
    turn = await start_turn(user, "Hi")
    await wait_for_run(turn.assistant_message.id)

    message = await reload_message(turn.assistant_message.id)
    assert calls == ["complete", "failed"]
    assert message.status == Message.Status.FAILED
    assert message.content == "Half said."
    assert message.error_code == "internal"
    assert "text it had is kept" in message.error_message
    stream = open_stream(message.id, cookie=cookie)
    await stream.start()
    _, end = await stream.read_until_terminal()
    assert end.event == "error"
    assert "Half said." in end.data


async def test_a_watcher_whose_end_frame_was_lost_ends_at_the_next_quiet_heartbeat(
    run_manager, user, cookie, settings
):
    settings.SSE_HEARTBEAT_SECONDS = 0.2
    conversation = await Conversation.objects.acreate(owner=user, route="aimlapi", model="x")
    message = await Message.objects.acreate(
        conversation=conversation,
        role="assistant",
        status=Message.Status.STREAMING,
        content="Hello",
        worker_id=WORKER_ID,
    )
    layer = get_channel_layer()
    control = await layer.new_channel()
    await layer.group_add(control_group(message.id), control)
    stream = open_stream(message.id, cookie=cookie)
    await stream.start()
    await stream.attached()
    # Answer the watcher's snapshot request as the run would: it is caught up, not waiting.
    request = await layer.receive(control)
    snapshot: StreamSnapshot = {"type": "stream.snapshot", "o": 0, "t": "Hello", "status": ""}
    await layer.send(request["reply_to"], snapshot)
    delta = await stream.next_event()
    assert delta is not None
    assert delta.event == "delta"
    # The run saves its end; the frame announcing it never comes.
    await sync_to_async(Message.objects.filter(pk=message.id).update)(
        status=Message.Status.COMPLETE, content="Hello, world", finish_reason="stop"
    )
    done = await stream.next_event()
    assert done is not None
    assert done.event == "done"
    assert "Hello, world" in done.data
