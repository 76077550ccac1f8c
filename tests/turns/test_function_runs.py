"""Function calling through the real run and `turns.services.turn_results`: an answer that calls
functions is saved with its calls (text or not), its stream ends with the whole fragment, the
results are a message after it and the turn goes on with the same model and options; every
refusal names its limit; a message written instead of the results sends the calls as text."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from asgiref.sync import sync_to_async

from chatapp.core.errors import ServiceError, TurnConflict
from chatapp.models import Message
from chatapp.providers import functions
from chatapp.turns.fragments import stream_end
from chatapp.turns.manager import manager
from chatapp.turns.requests import turn_request
from chatapp.turns.services import turn_results
from chatapp.turns.workers import WORKER_ID
from tests.conftest import reload_message, start_turn, wait_for_run
from tests.fakes import upstream as up

pytestmark = [pytest.mark.django_db(transaction=True)]

MODEL = "aimlapi:google/gemini-2.5-flash"
DECLARED = (
    '[{"name": "get_weather", "parameters": {"type": "object"}},'
    ' {"name": "get_time", "parameters": {"type": "object"}}]'
)
OPTIONS = {"functions": DECLARED, "tool_choice": "auto"}


def two_calls(suffix: str = "1") -> up.Reply:
    return up.Reply(
        [
            up.Call("get_weather", '{"city": "Bern"}', id=f"w{suffix}", call=0),
            up.Call("get_time", "{}", id=f"t{suffix}", call=1),
        ],
        finish="tool_calls",
    )


async def calls_answer(aimlapi: up.FakeUpstream, user: Any) -> Message:
    aimlapi.enqueue(two_calls())
    turn = await start_turn(user, "Weather and time?", model_key=MODEL, options=OPTIONS)
    await wait_for_run(turn.assistant_message.id)
    return await reload_message(turn.assistant_message.id)


async def send_results(message: Message, *results: str) -> Message:
    turn = await sync_to_async(turn_results)(
        message=message,
        results=list(results),
        idempotency_key=uuid.uuid5(message.pk, "function-results"),
        worker_id=WORKER_ID,
    )
    answer = turn.assistant_message
    request = await sync_to_async(turn_request)(message=answer)
    await manager().launch(message_id=answer.id, route=answer.route, request=request)
    await wait_for_run(answer.id)
    return await reload_message(answer.id)


async def test_an_answer_that_calls_functions_keeps_its_calls_and_ends_with_the_whole_fragment(
    aimlapi, run_manager, user
) -> None:
    message = await calls_answer(aimlapi, user)
    assert (message.status, message.finish_reason, message.content) == (
        "complete",
        "tool_calls",
        "",
    )
    assert [c["name"] for c in message.provider_extras[functions.CALLS_KEY]] == [
        "get_weather",
        "get_time",
    ]
    end = await sync_to_async(stream_end)(message)
    assert end["shell"] == ""
    assert "Function call: <code>get_weather</code>" in end["html"]
    assert 'name="result"' in end["html"]
    assert "Send results" in end["html"]


async def test_results_continue_the_turn_with_the_same_model_and_options_for_several_rounds(
    aimlapi, run_manager, user
) -> None:
    first = await calls_answer(aimlapi, user)
    aimlapi.enqueue(two_calls("2"), up.Reply.text("Sunny, 14:05."))
    second = await send_results(first, '{"temp": 21}', "14:05")
    assert (second.route, second.model) == (first.route, first.model)
    assert second.request_options == first.request_options
    assert [c["id"] for c in second.provider_extras[functions.CALLS_KEY]] == ["w2", "t2"]
    results = await sync_to_async(Message.objects.get)(pk=second.parent_id)
    assert results.role == "user"
    assert results.parent_id == first.pk
    assert results.provider_extras == {
        functions.RESULTS_KEY: [
            {"id": "w1", "name": "get_weather", "content": '{"temp": 21}'},
            {"id": "t1", "name": "get_time", "content": "14:05"},
        ]
    }
    # What search finds the exchange by: names, arguments, results.
    assert results.content == (
        'Result for get_weather (called with {"city": "Bern"}):\n{"temp": 21}\n\n'
        "Result for get_time (called with {}):\n14:05"
    )
    third = await send_results(second, '{"temp": 19}', "14:06")
    assert third.content == "Sunny, 14:05."
    roles = [m["role"] for m in aimlapi.last_request.json["messages"]]
    assert roles == ["user", "assistant", "tool", "tool", "assistant", "tool", "tool"]


async def test_results_are_refused_naming_the_limit(aimlapi, run_manager, user) -> None:
    message = await calls_answer(aimlapi, user)
    key = uuid.uuid4()
    with pytest.raises(ServiceError, match=r"a result for each of the 2 calls \(got 1\)"):
        await sync_to_async(turn_results)(
            message=message, results=["x"], idempotency_key=key, worker_id=WORKER_ID
        )
    too_long = "x" * (functions.RESULT_MAX_CHARS + 1)
    with pytest.raises(ServiceError, match="get_time can be at most 32,000 characters"):
        await sync_to_async(turn_results)(
            message=message, results=["ok", too_long], idempotency_key=key, worker_id=WORKER_ID
        )
    question = await sync_to_async(Message.objects.get)(pk=message.parent_id)
    with pytest.raises(TurnConflict, match="Only an answer that called functions"):
        await sync_to_async(turn_results)(
            message=question, results=[], idempotency_key=key, worker_id=WORKER_ID
        )
    aimlapi.enqueue(up.Reply.text("Done."))
    await send_results(message, "a", "b")
    # Once: a double submit finds the first; other results for the same calls are refused.
    again = await sync_to_async(turn_results)(
        message=message,
        results=["a", "b"],
        idempotency_key=uuid.uuid5(message.pk, "function-results"),
        worker_id=WORKER_ID,
    )
    assert again.created is False
    with pytest.raises(TurnConflict, match="already have their results"):
        await sync_to_async(turn_results)(
            message=message, results=["c", "d"], idempotency_key=key, worker_id=WORKER_ID
        )


async def test_a_message_written_instead_of_the_results_sends_the_calls_as_text(
    aimlapi, run_manager, user
) -> None:
    message = await calls_answer(aimlapi, user)
    aimlapi.enqueue(up.Reply.text("Fine."))
    turn = await start_turn(
        user,
        "Never mind.",
        model_key=MODEL,
        options=OPTIONS,
        conversation_id=message.conversation_id,
    )
    await wait_for_run(turn.assistant_message.id)
    messages = aimlapi.last_request.json["messages"]
    assert messages[1] == {
        "role": "assistant",
        "content": "(Called get_weather, get_time; no results were given.)",
    }
    assert messages[2] == {"role": "user", "content": "Never mind."}
