"""A turn whose answer has no text does not travel with later turns, end to end on every route.

Each test sends its messages through the real view (`turn-create`), the real run and the real
provider adapter, over a loopback socket, to the fake upstream, on AI/ML API (the OpenAI
format), Google's Gemini API and Segmind (both Gemini-native). The first answer fails or ends
without text: an HTTP 403, a prompt blocked by Gemini's `promptFeedback.blockReason`, or an
answer that ended by SAFETY (AI/ML API's `content_filter`) before any text. The next message
must then get its answer, and the request that carries it must hold that message as its one
user turn: no trace of the prompt that got no answer, and on the Gemini-native routes never two
`contents` of the same role in a row (docs/ARCHITECTURE.md, "The message tree";
`chatapp.turns.requests._answered`).

Also covered: an answered turn before the failure still travels; two failures in a row are
both left out; Retry sends the failed prompt again, and the page says the failed turn "is not
sent with later ones".
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from django.test import AsyncClient
from django.urls import reverse

from chatapp.models import Message
from tests.conftest import reload_message, wait_for_run
from tests.fakes.gemini_schema import validate_recorded
from tests.fakes.openapi import validate_chat_request
from tests.fakes.upstream import ErrorReply, FakeUpstream, RecordedRequest, Reply, Text

pytestmark = [pytest.mark.django_db(transaction=True)]

# One model per route, as the composer's model menu sends it.
MODELS = {
    "aimlapi": "aimlapi:google/gemini-2.5-flash",
    "gemini": "gemini:gemini-2.5-flash",
    "segmind": "segmind:gemini-2.5-flash",
}
ROUTES = list(MODELS)
GEMINI_FORMAT = {"gemini", "segmind"}

RATINGS = [{"category": "HARM_CATEGORY_DANGEROUS_CONTENT", "probability": "HIGH", "blocked": True}]


# --- The failures, as each route's upstream sends them --------------------------------------


def forbidden(route: str) -> ErrorReply:
    """An HTTP 403 in the route's own error shape."""
    if route == "aimlapi":
        return ErrorReply.out_of_credits()
    if route == "gemini":
        return ErrorReply.google(403, "The caller does not have permission", "PERMISSION_DENIED")
    return ErrorReply.segmind(403, "Forbidden")


def blocked_prompt(route: str) -> Reply:
    """HTTP 200, no candidates, `promptFeedback.blockReason` (Gemini-native routes only)."""
    assert route in GEMINI_FORMAT
    return Reply(blocked="SAFETY", safety_ratings=RATINGS)


def safety_without_text(route: str) -> Reply:
    """An answer that ended by SAFETY before any text: Gemini's finishReason SAFETY with no
    parts, or the OpenAI format's `content_filter` finish with no content."""
    if route == "aimlapi":
        return Reply(finish="content_filter")
    return Reply(finish="SAFETY", safety_ratings=RATINGS)


NO_BLOCKED_PROMPT_ON_AIMLAPI = pytest.mark.skip(
    reason="AI/ML API speaks the OpenAI format, which has no blocked-prompt signal (no "
    "promptFeedback); its no-text content_filter finish is covered by the SAFETY tests"
)


# --- Helpers ---------------------------------------------------------------------------------


@pytest.fixture
async def async_client(user: Any) -> AsyncClient:
    client = AsyncClient()
    await sync_to_async(client.force_login)(user)
    return client


@pytest.fixture
def routes(all_routes: FakeUpstream) -> FakeUpstream:
    """All three routes on the fake upstream; every request the app sent is checked against
    its protocol's schema (the OpenAI format with `validate_chat_request`)."""
    yield all_routes
    for record in all_routes.chat_requests:
        validate_wire(record)


def validate_wire(record: RecordedRequest) -> None:
    if is_openai(record):
        validate_chat_request(record.json)
    else:
        validate_recorded(record)


def is_openai(record: RecordedRequest) -> bool:
    return record.path == "/v1/chat/completions"


def unique(label: str) -> str:
    """A prompt no other text in a request could contain by chance."""
    return f"{label} {uuid.uuid4().hex}"


async def send(client: AsyncClient, conversation_id: uuid.UUID, text: str, route: str) -> Message:
    """Send `text` in the conversation through the view, wait for its run, and return the
    answer as saved."""
    form = {"text": text, "idempotency_key": str(uuid.uuid4()), "model": MODELS[route]}
    response = await client.post(reverse("turn-create", args=[conversation_id]), form)
    assert response.status_code == 200, response.content.decode()
    user_id, answer_id = re.findall(r'id="m-([0-9a-f-]+)"', response.content.decode())
    assert (await reload_message(uuid.UUID(user_id))).content == text
    await wait_for_run(uuid.UUID(answer_id))
    answer = await reload_message(uuid.UUID(answer_id))
    assert answer.role == Message.Role.ASSISTANT
    return answer


def wire_turns(record: RecordedRequest) -> list[tuple[str, str]]:
    """The conversation a request carried, as (role, text) pairs in the wire's own roles
    (the system prompt left aside)."""
    if is_openai(record):
        turns = []
        for message in record.json["messages"]:
            if message["role"] == "system":
                continue
            content = message.get("content")
            if isinstance(content, list):
                content = "".join(p.get("text", "") for p in content if p.get("type") == "text")
            turns.append((message["role"], content or ""))
        return turns
    body = record.json if record.path.startswith("/v1beta/") else record.json["messages"]
    turns = []
    for content in body["contents"]:
        parts = content.get("parts", [])
        parts = [parts] if isinstance(parts, dict) else parts
        text = "".join(p.get("text", "") for p in parts if not p.get("thought"))
        turns.append((content.get("role", "user"), text))
    return turns


def assert_alternates(record: RecordedRequest) -> None:
    """Gemini-native requests never hold two `contents` of the same role in a row."""
    if is_openai(record):
        return
    roles = [role for role, _ in wire_turns(record)]
    repeated = [i for i in range(1, len(roles)) if roles[i] == roles[i - 1]]
    assert not repeated, f"consecutive contents with the same role: {roles}"


def assert_carries_only(record: RecordedRequest, prompt: str, *gone: str) -> None:
    """The request holds `prompt` as its one and only turn, and nothing of `gone`."""
    assert wire_turns(record) == [("user", prompt)]
    for text in gone:
        assert text not in record.text, f"{text!r} travelled in {record.path}"
    assert_alternates(record)


def assert_no_answer(answer: Message, failure: str) -> None:
    assert answer.content == ""
    if failure == "safety":
        assert answer.status == Message.Status.COMPLETE
        assert answer.finish_reason in ("safety", "content_filter")
    else:
        assert answer.status == Message.Status.FAILED
        if failure == "blocked":
            assert answer.error_code == "prompt_blocked"


def article(html: str, message_id: uuid.UUID) -> str:
    """The `<article>` of one message on a page."""
    match = re.search(rf'<article[^>]*id="m-{message_id}".*?</article>', html, re.S)
    assert match is not None, f"message {message_id} is not on the page"
    return match.group(0)


FAILURES: dict[str, Callable[[str], Reply | ErrorReply]] = {
    "403": forbidden,
    "blocked": blocked_prompt,
    "safety": safety_without_text,
}


async def fail_then_answer(
    routes: FakeUpstream, client: AsyncClient, route: str, failure: str
) -> None:
    """The shared scenario: a first message that gets no answer text, then a second that
    must get its answer without the first prompt travelling."""
    conversation_id = uuid.uuid4()
    first, second = unique("First prompt"), unique("Second prompt")

    routes.enqueue(FAILURES[failure](route))
    failed = await send(client, conversation_id, first, route)
    assert_no_answer(failed, failure)
    assert len(routes.chat_requests) == 1  # a 403, a block or a SAFETY end is not retried

    routes.enqueue(Reply([Text("The second "), Text("answer.")]))
    answer = await send(client, conversation_id, second, route)
    assert (answer.status, answer.content) == (Message.Status.COMPLETE, "The second answer.")

    _, request = routes.chat_requests
    assert_carries_only(request, second, first)


# --- One failure, then the next message ------------------------------------------------------


@pytest.mark.parametrize("route", ROUTES)
async def test_after_a_403_the_next_message_gets_an_answer_without_the_refused_prompt(
    routes, run_manager, async_client, route
):
    await fail_then_answer(routes, async_client, route, "403")


@pytest.mark.parametrize(
    "route",
    [pytest.param("aimlapi", marks=NO_BLOCKED_PROMPT_ON_AIMLAPI), "gemini", "segmind"],
)
async def test_after_a_blocked_prompt_the_next_message_gets_an_answer_without_it(
    routes, run_manager, async_client, route
):
    await fail_then_answer(routes, async_client, route, "blocked")


@pytest.mark.parametrize("route", ROUTES)
async def test_after_a_safety_ending_with_no_text_the_next_message_gets_an_answer_alone(
    routes, run_manager, async_client, route
):
    await fail_then_answer(routes, async_client, route, "safety")


# --- What else travels -----------------------------------------------------------------------


@pytest.mark.parametrize("route", ROUTES)
async def test_an_answered_turn_before_the_failure_still_travels(
    routes, run_manager, async_client, route
):
    conversation_id = uuid.uuid4()
    one, two, three = unique("One"), unique("Two"), unique("Three")
    routes.enqueue(Reply([Text("Answer one.")]), forbidden(route), Reply([Text("Answer three.")]))

    assert (await send(async_client, conversation_id, one, route)).content == "Answer one."
    assert (await send(async_client, conversation_id, two, route)).status == "failed"
    answer = await send(async_client, conversation_id, three, route)
    assert (answer.status, answer.content) == (Message.Status.COMPLETE, "Answer three.")

    request = routes.chat_requests[-1]
    model_role = "assistant" if route == "aimlapi" else "model"
    assert wire_turns(request) == [("user", one), (model_role, "Answer one."), ("user", three)]
    assert two not in request.text
    assert_alternates(request)


@pytest.mark.parametrize("route", ROUTES)
async def test_two_failed_turns_in_a_row_are_both_left_out(
    routes, run_manager, async_client, route
):
    conversation_id = uuid.uuid4()
    one, two, three = unique("One"), unique("Two"), unique("Three")
    routes.enqueue(forbidden(route), safety_without_text(route), Reply([Text("At last.")]))

    assert_no_answer(await send(async_client, conversation_id, one, route), "403")
    assert_no_answer(await send(async_client, conversation_id, two, route), "safety")
    answer = await send(async_client, conversation_id, three, route)
    assert (answer.status, answer.content) == (Message.Status.COMPLETE, "At last.")

    _, second, third = routes.chat_requests
    assert_carries_only(second, two, one)
    assert_carries_only(third, three, one, two)


# --- Retry, and what the page says -----------------------------------------------------------


@pytest.mark.parametrize("route", ROUTES)
async def test_retry_sends_the_failed_prompt_again_and_the_page_says_it_does_not_travel(
    routes, run_manager, async_client, route
):
    conversation_id = uuid.uuid4()
    first, second = unique("First prompt"), unique("Second prompt")
    routes.enqueue(forbidden(route), Reply([Text("Second answer.")]))
    failed = await send(async_client, conversation_id, first, route)
    assert failed.status == Message.Status.FAILED
    answered = await send(async_client, conversation_id, second, route)
    assert answered.content == "Second answer."
    assert_carries_only(routes.chat_requests[1], second, first)

    page = await async_client.get(reverse("conversation-detail", args=[conversation_id]))
    assert page.status_code == 200
    html = page.content.decode()
    failed_html = article(html, failed.id)
    assert "msg-untravelled" in failed_html
    assert "is not sent with later ones" in failed_html
    retry_url = reverse("message-regenerate", args=[conversation_id, failed.id])
    assert re.search(rf'class="retry" hx-post="{retry_url}"[^>]*>Retry</button>', failed_html)
    assert "is not sent with later ones" not in article(html, answered.id)

    routes.enqueue(Reply([Text("Answered on retry.")]))
    response = await async_client.post(retry_url)
    assert response.status_code == 200, response.content.decode()
    retried = await Message.objects.exclude(pk=failed.pk).aget(
        parent_id=failed.parent_id, role=Message.Role.ASSISTANT
    )
    await wait_for_run(retried.id)
    retried = await reload_message(retried.id)
    assert (retried.status, retried.content) == (Message.Status.COMPLETE, "Answered on retry.")

    # The person asked for it: the failed prompt travels, alone (the second turn is on the
    # branch the retry left).
    assert len(routes.chat_requests) == 3
    assert_carries_only(routes.chat_requests[2], first, second)

    page = await async_client.get(reverse("conversation-detail", args=[conversation_id]))
    html = page.content.decode()
    assert "Answered on retry." in html
    assert "is not sent with later ones" not in article(html, retried.id)
