"""Several candidates of one turn, end to end: the real adapters over a real socket to the fake
upstream, the real run and its final save, the real consumer. The first candidate streams as
the answer; each other one is saved beside it as a version (a sibling under the same
message), with its own finish reason and no usage of its own, and the stream's end already
shows "1 / n". Stop, a failure and Continue keep or leave out what they should; token
probabilities are kept with each answer, bounded."""

from __future__ import annotations

import json
import uuid

import pytest
from asgiref.sync import sync_to_async

from chatapp.conversations import tree
from chatapp.models import Message
from chatapp.turns.requests import continuation_request, turn_request
from chatapp.turns.services import turn_continue, turn_regenerate
from chatapp.turns.workers import WORKER_ID
from tests.conftest import SSEStream, open_stream, reload_message, start_turn, wait_for_run
from tests.fakes.upstream import Data, Drop, Gate, Reply, Text, Usage

pytestmark = [pytest.mark.django_db(transaction=True)]


def versions_of(answer: Message) -> list[Message]:
    """The answer and its siblings, in the switcher's order."""
    return list(
        Message.objects.filter(parent_id=answer.parent_id, role=Message.Role.ASSISTANT).order_by(
            "created_at", "id"
        )
    )


async def versions(message_id: uuid.UUID) -> list[Message]:
    answer = await reload_message(message_id)
    return await sync_to_async(versions_of)(answer)


async def until_shown(stream: SSEStream, text: str) -> None:
    """Read the answer's stream until the page would show `text`: the run has then read every
    chunk the upstream sent before it (the other candidates' ones included), so a Stop sent
    next finds them all."""
    shown = ""
    while shown != text:
        event = await stream.next_event()
        assert event is not None, f"the stream ended at {shown!r}"
        if event.event == "delta":
            piece = json.loads(event.data)
            shown = shown[: piece["o"]] + piece["t"]


def finish_chunk(index: int, reason: str) -> Data:
    """One choice's finish, mid-stream, as AI/ML API sends it."""
    return Data(
        {
            "id": "chatcmpl-x",
            "object": "chat.completion.chunk",
            "created": 1,
            "model": "google/gemini-2.5-flash",
            "choices": [{"index": index, "delta": {}, "finish_reason": reason}],
        }
    )


async def test_each_candidate_becomes_a_version_and_the_end_of_the_stream_shows_1_of_2(
    aimlapi, run_manager, user, cookie
):
    aimlapi.enqueue(
        Reply.candidates(
            "The first answer, streamed.",
            "The second answer, saved beside it.",
            finishes={1: "length"},
            usage=Usage(prompt_tokens=5, completion_tokens=12, total_tokens=17, usd_spent=0.002),
        )
    )
    turn = await start_turn(user, "Hello", options={"candidate_count": "2"})
    stream = open_stream(turn.assistant_message.id, cookie=cookie)
    await stream.start()
    text, terminal = await stream.read_until_terminal()
    await wait_for_run(turn.assistant_message.id)

    assert text == "The first answer, streamed."  # never mixed with the other candidate
    assert terminal.event == "done"
    assert '<span class="version-count">1 / 2</span>' in terminal.data
    first, second = await versions(turn.assistant_message.id)
    assert first.id == turn.assistant_message.id
    assert (first.status, first.content, first.finish_reason) == (
        Message.Status.COMPLETE,
        "The first answer, streamed.",
        "stop",
    )
    assert (second.status, second.content, second.finish_reason) == (
        Message.Status.COMPLETE,
        "The second answer, saved beside it.",
        "length",
    )
    assert second.provider_extras["finish_reason"] == "length"
    assert "second answer" in second.content_html
    # Usage is the whole request's, recorded once, on the streamed answer: a budget counts it once.
    assert (first.prompt_tokens, first.completion_tokens, float(first.usd_spent)) == (5, 12, 0.002)
    assert (second.prompt_tokens, second.completion_tokens, second.usd_spent) == (None, None, None)
    assert first.provider_extras["candidate"] == {"index": 0, "of": 2}
    assert second.provider_extras["candidate"] == {"index": 1, "of": 2}
    assert (second.route, second.model, second.request_options) == (
        first.route,
        first.model,
        first.request_options,
    )
    assert second.upstream_request_id == first.upstream_request_id
    assert aimlapi.requests[0].json["n"] == 2
    # The branch shown stays on the streamed answer; the other is one click away.
    conversation = await sync_to_async(lambda: Message.objects.get(pk=first.id).conversation)()
    assert conversation.current_leaf_id == first.id
    page = await sync_to_async(tree.path)(
        conversation_id=conversation.id, leaf_id=second.id, versions=True
    )
    assert (page[-1].versions.position, page[-1].versions.count) == (2, 2)


async def test_stop_keeps_every_candidate_with_what_it_had(aimlapi, run_manager, user, cookie):
    aimlapi.enqueue(
        Reply(
            [
                Text("First, "),
                Text("done already.", index=1),
                finish_chunk(1, "stop"),
                Text("Third, part", index=2),
                Text("way"),
                Gate("never"),
                Text(" lost"),
            ]
        )
    )
    turn = await start_turn(user, "Hello", options={"candidate_count": "3"})
    message_id = turn.assistant_message.id
    stream = open_stream(message_id, cookie=cookie)
    await stream.start()
    await until_shown(stream, "First, way")
    await run_manager.request_stop(message_id)
    _, terminal = await stream.read_until_terminal()
    await wait_for_run(message_id)

    assert '<span class="version-count">1 / 3</span>' in terminal.data
    first, second, third = await versions(message_id)
    assert [(m.status, m.content, m.finish_reason) for m in (first, second, third)] == [
        (Message.Status.STOPPED, "First, way", "stopped"),
        # It had finished before Stop: complete, with its own reason.
        (Message.Status.COMPLETE, "done already.", "stop"),
        # Cut short with the answer: stopped too, its partial text kept.
        (Message.Status.STOPPED, "Third, part", "stopped"),
    ]


async def test_a_failure_mid_stream_keeps_each_candidates_text_with_the_error(
    aimlapi, run_manager, user
):
    aimlapi.enqueue(Reply([Text("Half of one"), Text("half of two", index=1), Drop()]))
    turn = await start_turn(user, "Hello", options={"candidate_count": "2"})
    await wait_for_run(turn.assistant_message.id)

    first, second = await versions(turn.assistant_message.id)
    assert (first.status, first.content) == (Message.Status.FAILED, "Half of one")
    assert (second.status, second.content) == (Message.Status.FAILED, "half of two")
    assert second.error_message == first.error_message != ""


async def test_a_candidate_that_sent_nothing_is_not_saved(aimlapi, run_manager, user, cookie):
    aimlapi.enqueue(Reply([Text("Only one came"), Gate("never")]))
    turn = await start_turn(user, "Hello", options={"candidate_count": "2"})
    stream = open_stream(turn.assistant_message.id, cookie=cookie)
    await stream.start()
    await until_shown(stream, "Only one came")
    await run_manager.request_stop(turn.assistant_message.id)
    await wait_for_run(turn.assistant_message.id)

    (only,) = await versions(turn.assistant_message.id)
    assert (only.status, only.content) == (Message.Status.STOPPED, "Only one came")
    assert "candidate" not in only.provider_extras


async def test_a_turn_with_candidates_adds_one_insert_and_one_without_adds_none(
    aimlapi, run_manager, user, statement_log
):
    aimlapi.enqueue(Reply.candidates("One.", "Two.", "Three."))
    turn = await start_turn(user, "Hello", options={"candidate_count": "3"})
    statement_log.clear()
    await wait_for_run(turn.assistant_message.id)
    inserts = [
        s
        for s in statement_log.writes("chatapp_message")
        if s.lstrip().upper().startswith("INSERT")
    ]
    assert len(inserts) == 1  # both other candidates in one statement

    aimlapi.enqueue(Reply.text("Plain."))
    plain = await start_turn(user, "Hello again")
    statement_log.clear()
    await wait_for_run(plain.assistant_message.id)
    writes = statement_log.writes("chatapp_message")
    assert not [s for s in writes if s.lstrip().upper().startswith("INSERT")]


async def test_continue_sends_one_answer_on_and_keeps_its_token_probabilities(
    aimlapi, run_manager, user, cookie
):
    aimlapi.enqueue(
        Reply(
            [
                Text("Start", logprobs=[("Start", -0.1, [("Begin", -2.0)])]),
                Text("Other", index=1),
                Gate("never"),
            ]
        )
    )
    turn = await start_turn(
        user, "Hello", options={"candidate_count": "2", "logprobs": "on", "top_logprobs": "1"}
    )
    message_id = turn.assistant_message.id
    stream = open_stream(message_id, cookie=cookie)
    await stream.start()
    await until_shown(stream, "Start")
    await run_manager.request_stop(message_id)
    await wait_for_run(message_id)
    stopped = await reload_message(message_id)
    assert stopped.provider_extras["logprobs"] == {
        "tokens": [["Start", -0.1, [["Begin", -2.0]]]],
        "dropped": 0,
    }

    def _continue() -> object:
        message = Message.objects.select_related("conversation").get(pk=message_id)
        continued = turn_continue(message=message, worker_id=WORKER_ID)
        return continuation_request(message=continued)

    request = await sync_to_async(_continue)()
    assert {"candidate_count", "logprobs", "top_logprobs"}.isdisjoint(request.options)
    assert request.candidates == 1


async def test_gemini_candidates_and_token_probabilities_are_saved_with_each_version(
    all_routes, run_manager, user
):
    all_routes.enqueue(
        Reply(
            [
                Text("Hel", logprobs=[("Hel", -0.05, [("Hel", -0.05), ("Hi", -3.2)])]),
                Text("Yo", index=1, logprobs=[("Yo", -0.7, [])]),
                Text("lo", logprobs=[("lo", -0.01, [])]),
            ]
        )
    )
    turn = await start_turn(
        user,
        "Hello",
        model_key="gemini:gemini-2.5-flash",
        options={"candidate_count": "2", "logprobs": "on", "top_logprobs": "2"},
    )
    await wait_for_run(turn.assistant_message.id)

    first, second = await versions(turn.assistant_message.id)
    assert (first.content, second.content) == ("Hello", "Yo")
    assert first.provider_extras["logprobs"]["tokens"] == [
        ["Hel", -0.05, [["Hel", -0.05], ["Hi", -3.2]]],
        ["lo", -0.01, []],
    ]
    assert second.provider_extras["logprobs"]["tokens"] == [["Yo", -0.7, []]]
    config = all_routes.requests[0].json["generationConfig"]
    assert (config["candidateCount"], config["responseLogprobs"], config["logprobs"]) == (
        2,
        True,
        2,
    )


async def test_a_drop_is_not_retried_once_another_candidate_has_text(
    aimlapi, run_manager, user, fast_runs
):
    aimlapi.enqueue(Reply([Text("Only the second had begun", index=1), Drop()]))
    aimlapi.enqueue(Reply.candidates("A retry would drop what was billed.", "No."))
    turn = await start_turn(user, "Hello", options={"candidate_count": "2"})
    await wait_for_run(turn.assistant_message.id)

    first, second = await versions(turn.assistant_message.id)
    assert len(aimlapi.requests) == 1
    assert (first.status, first.content) == (Message.Status.FAILED, "")
    assert (second.status, second.content) == (Message.Status.FAILED, "Only the second had begun")


async def test_regenerate_asks_for_the_candidates_again_each_a_new_version(
    aimlapi, run_manager, user
):
    aimlapi.enqueue(Reply.candidates("One.", "Two."), Reply.candidates("Three.", "Four."))
    turn = await start_turn(user, "Hello", options={"candidate_count": "2"})
    await wait_for_run(turn.assistant_message.id)

    answer, request = await sync_to_async(_regenerated)(turn.assistant_message.id)
    await run_manager.launch(message_id=answer.id, route=answer.route, request=request)
    await wait_for_run(answer.id)

    assert [m.content for m in await versions(answer.id)] == ["One.", "Two.", "Three.", "Four."]
    assert aimlapi.requests[1].json["n"] == 2


async def test_a_new_answers_end_reads_no_versions_and_a_regenerated_ones_shows_2_of_2(
    aimlapi, run_manager, user, cookie, statement_log
):
    """A new answer to a new message has no siblings until it ends, so its end does not ask
    (Message.versions_known); an answer regenerated beside another still reads them."""
    aimlapi.enqueue(Reply.text("First."), Reply.text("Second."))
    turn = await start_turn(user, "Hello", launch=False)
    answer = turn.assistant_message
    assert answer.versions_known
    statement_log.clear()
    await _launch_with_row(run_manager, answer)
    stream = open_stream(answer.id, cookie=cookie)
    await stream.start()
    _, terminal = await stream.read_until_terminal()
    await wait_for_run(answer.id)
    assert terminal.event == "done"
    assert "version-count" not in terminal.data
    assert not [s for s in statement_log.statements if "v_count" in s]

    again, request = await sync_to_async(_regenerated)(answer.id)
    assert not again.versions_known
    await run_manager.launch(message_id=again.id, route=again.route, request=request, message=again)
    stream = open_stream(again.id, cookie=cookie)
    await stream.start()
    _, terminal = await stream.read_until_terminal()
    assert '<span class="version-count">2 / 2</span>' in terminal.data


async def test_a_new_answer_with_candidates_reads_its_versions_at_its_end(
    aimlapi, run_manager, user, cookie
):
    """Launched with its row, as the view launches it: the candidates saved beside it are
    versions by its end, so it shows "1 / 2" though it began as the only one."""
    aimlapi.enqueue(Reply.candidates("One.", "Two."))
    turn = await start_turn(user, "Hello", options={"candidate_count": "2"}, launch=False)
    answer = turn.assistant_message
    await _launch_with_row(run_manager, answer)
    stream = open_stream(answer.id, cookie=cookie)
    await stream.start()
    _, terminal = await stream.read_until_terminal()
    assert '<span class="version-count">1 / 2</span>' in terminal.data


async def _launch_with_row(run_manager, answer: Message) -> None:
    """Launch a saved answer's run with its row, as the send view does."""
    request = await sync_to_async(turn_request)(message=answer)
    await run_manager.launch(
        message_id=answer.id, route=answer.route, request=request, message=answer
    )


def _regenerated(answer_id: uuid.UUID) -> tuple[Message, object]:
    """A new version of the answer, as Regenerate makes it, and its request."""
    old = Message.objects.select_related("conversation").get(pk=answer_id)
    again = turn_regenerate(message=old, worker_id=WORKER_ID)
    return again, turn_request(message=again)
