"""docs/SECURITY.md rule 12: the API key never reaches a browser or a log line, even when an upstream
echoes it back in an error."""

from __future__ import annotations

import io
import json
import logging
import uuid

import pytest
from asgiref.sync import sync_to_async
from django.test import AsyncClient
from django.urls import reverse

from chatapp.core.logging import RedactSecretsFilter
from chatapp.models import Message
from tests.conftest import API_KEY, open_stream, start_turn, wait_for_run
from tests.fakes.upstream import ECHO_KEY, ErrorReply

pytestmark = [pytest.mark.django_db(transaction=True)]


@pytest.fixture
def console_output():
    """What the configured console handler writes (the redacting filter included)."""
    handlers = [
        h
        for h in logging.getLogger().handlers
        if any(isinstance(f, RedactSecretsFilter) for f in h.filters)
    ]
    assert handlers, "the console log handler lost its redacting filter"
    buffer = io.StringIO()
    old = [h.setStream(buffer) for h in handlers]
    try:
        yield buffer
    finally:
        for handler, stream in zip(handlers, old, strict=True):
            handler.setStream(stream)


@pytest.mark.parametrize(
    "reply",
    [
        ErrorReply.unauthorized(f"Invalid API key {ECHO_KEY}"),
        ErrorReply.bad_request(f"Bad request for key {ECHO_KEY}"),
        ErrorReply.internal_error(f"500 upstream exploded with {ECHO_KEY}"),
    ],
)
async def test_key_absent_from_responses_and_logs_during_a_failing_call(
    aimlapi, run_manager, user, cookie, console_output, fast_runs, reply
):
    for _ in range(3):
        aimlapi.enqueue(reply)
    client = AsyncClient()
    await sync_to_async(client.force_login)(user)
    conversation_id = uuid.uuid4()
    responses = [
        await client.post(
            reverse("turn-create", args=[conversation_id]),
            {
                "text": "hi",
                "idempotency_key": str(uuid.uuid4()),
                "model": "aimlapi:google/gemini-2.5-flash",
            },
        )
    ]
    message = await Message.objects.aget(conversation_id=conversation_id, role="assistant")
    await wait_for_run(message.id)
    stream = open_stream(message.id, cookie=cookie)
    await stream.start()
    await stream.read_until_terminal()
    responses.append(await client.get(reverse("conversation-detail", args=[conversation_id])))
    responses.append(await client.get(reverse("chat-home")))
    logging.getLogger("chatapp.test").warning("a line mentioning %s", API_KEY)

    assert aimlapi.requests[0].bearer == API_KEY  # the upstream did get (and echo) the key
    bodies = [r.content.decode() + str(r.headers) for r in responses] + [stream.body.decode()]
    for body in bodies:
        assert API_KEY not in body
        assert API_KEY[-8:] not in body
    await message.arefresh_from_db()
    assert API_KEY not in message.error_message
    logs = console_output.getvalue()
    assert "[redacted]" in logs
    assert API_KEY not in logs


def echoing_answer(route: str) -> ErrorReply:
    """A successful whole answer that echoes the key in every string field it has."""
    if route == "aimlapi":
        return ErrorReply(
            200,
            {
                "id": f"chatcmpl-{ECHO_KEY}",
                "object": "chat.completion",
                "model": f"google/gemini-2.5-flash {ECHO_KEY}",
                "choices": [
                    {
                        "index": 0,
                        "message": {
                            "role": "assistant",
                            "content": "An answer.",
                            "extra_content": {"google": {"thought_signature": ECHO_KEY}},
                        },
                        "finish_reason": ECHO_KEY,
                    }
                ],
            },
        )
    rating = {"category": f"HARM_CATEGORY_{ECHO_KEY}", "probability": ECHO_KEY}
    return ErrorReply(
        200,
        {
            "candidates": [
                {
                    "content": {"role": "model", "parts": [{"text": "An answer."}]},
                    "finishReason": "OTHER",
                    "finishMessage": f"Stopped for {ECHO_KEY}",
                    "safetyRatings": [rating],
                    "citationMetadata": {"citationSources": [{"uri": f"https://x/{ECHO_KEY}"}]},
                    "index": 0,
                }
            ],
            "promptFeedback": {"safetyRatings": [rating]},
            "modelVersion": f"gemini-2.5-flash-{ECHO_KEY}",
            "responseId": ECHO_KEY,
        },
        headers={"x-request-id": ECHO_KEY},
    )


@pytest.mark.parametrize(
    ("route", "model"),
    [
        ("aimlapi", "aimlapi:google/gemini-2.5-flash"),
        ("gemini", "gemini:gemini-2.5-flash"),
        ("segmind", "segmind:gemini-2.5-flash"),
    ],
)
async def test_a_successful_answer_echoing_the_key_never_shows_or_stores_it(
    all_routes, run_manager, user, cookie, route, model, django_user_model
):
    """Every string an upstream sends is redacted before it is stored, framed or shown: ids,
    model names, finish reasons and messages, safety ratings, citations, prompt feedback."""
    all_routes.enqueue(echoing_answer(route))
    turn = await start_turn(user, "hi", model_key=model)
    await wait_for_run(turn.assistant_message.id)
    assert all_routes.requests[-1].api_key == API_KEY  # the upstream got the key, and echoed it
    message = await Message.objects.aget(pk=turn.assistant_message.id)
    assert message.content == "An answer."
    stored = json.dumps(
        {field.name: str(getattr(message, field.attname)) for field in Message._meta.fields}
    ) + json.dumps(message.provider_extras)
    assert "[redacted]" in stored
    assert API_KEY not in stored

    stream = open_stream(message.id, cookie=cookie)
    await stream.start()
    await stream.read_until_terminal()
    client = AsyncClient()
    await sync_to_async(client.force_login)(user)
    page = await client.get(reverse("conversation-detail", args=[turn.conversation.id]))
    admin = await sync_to_async(django_user_model.objects.create_superuser)(
        username="root", password="pw-root-123!"
    )
    admin_client = AsyncClient()
    await sync_to_async(admin_client.force_login)(admin)
    # Django's admin lists no messages any more (tests/web/test_admin_page.py); neither it nor
    # the app's Admin page, which says which routes have a key, shows one.
    listed = await admin_client.get(reverse("admin:index"))
    shown = await admin_client.get(reverse("admin-home"))
    for body in (stream.body.decode(), page.content.decode(), listed.content.decode()):
        assert API_KEY not in body
    assert shown.status_code == 200
    assert API_KEY not in shown.content.decode()


PERSON_KEY = "AIzaSy-person-own-key-7f3e1c9b2a6d"


@pytest.mark.parametrize(
    ("route", "model"),
    [
        ("aimlapi", "aimlapi:google/gemini-2.5-flash"),
        ("gemini", "gemini:gemini-2.5-flash"),
        ("segmind", "segmind:gemini-2.5-flash"),
    ],
)
async def test_a_persons_own_key_never_shows_is_never_logged_or_exported_even_when_echoed(
    all_routes, run_manager, user, cookie, console_output, fast_runs, route, model
):
    """Rule 12 for the keys people save (chatapp/credentials): stored only encrypted, and
    neither an answer that echoes it nor an error that quotes it brings it to a page, an SSE
    frame, an export, the database or a log line."""
    from chatapp.credentials import services
    from chatapp.credentials.models import PersonKey

    await sync_to_async(services.key_save)(owner_id=user.pk, route=route, api_key=PERSON_KEY)
    all_routes.enqueue(echoing_answer(route), ErrorReply.unauthorized(f"Bad key {ECHO_KEY}"))
    client = AsyncClient()
    await sync_to_async(client.force_login)(user)
    bodies, messages = [], []
    conversation_id = uuid.uuid4()
    for _ in range(2):
        sent = await client.post(
            reverse("turn-create", args=[conversation_id]),
            {"text": "hi", "idempotency_key": str(uuid.uuid4()), "model": model},
        )
        bodies.append(sent.content.decode())
        message = await Message.objects.filter(
            conversation_id=conversation_id, role="assistant"
        ).alatest("created_at")
        await wait_for_run(message.id)
        stream = open_stream(message.id, cookie=cookie)
        await stream.start()
        await stream.read_until_terminal()
        bodies.append(stream.body.decode())
        messages.append(await Message.objects.aget(pk=message.id))

    assert [r.api_key for r in all_routes.requests[-2:]] == [PERSON_KEY, PERSON_KEY]
    assert messages[0].content == "An answer."
    assert messages[1].status == "failed"
    for name in ("conversation-detail", "conversation-export-json", "conversation-export-markdown"):
        response = await client.get(reverse(name, args=[conversation_id]))
        assert response.status_code == 200
        if response.streaming:  # the export reads the database as it streams
            content = await sync_to_async(lambda r=response: b"".join(r.streaming_content))()
        else:
            content = response.content
        bodies.append(content.decode("utf-8", "replace"))
    bodies.append((await client.get(reverse("api-keys"))).content.decode())
    for body in bodies:
        assert PERSON_KEY not in body
        assert PERSON_KEY[:-4] not in body
    for message in messages:
        stored = json.dumps(
            {field.name: str(getattr(message, field.attname)) for field in Message._meta.fields}
        ) + json.dumps(message.provider_extras)
        assert PERSON_KEY not in stored
    row = await PersonKey.objects.aget(owner=user, route=route)
    assert PERSON_KEY.encode() not in bytes(row.secret)
    assert PERSON_KEY not in row.rejected_message
    logs = console_output.getvalue()
    assert "Bad key [redacted]" in logs  # the failure's log line quoted the upstream
    assert PERSON_KEY not in logs


def test_a_persons_key_is_redacted_from_every_log_line_while_a_run_holds_it(console_output):
    """A traceback or a library's log line in the middle of a run (the run enters
    `secret_in_use` with the key it read) cannot print a person's key."""
    from chatapp.core.logging import secret_in_use

    with secret_in_use(PERSON_KEY), secret_in_use(PERSON_KEY):  # two runs of one person
        logging.getLogger("chatapp.test").warning("during: %s", PERSON_KEY)
    try:
        with secret_in_use(PERSON_KEY):
            raise RuntimeError(f"boom {PERSON_KEY}")
    except RuntimeError:
        with secret_in_use(PERSON_KEY):
            logging.getLogger("chatapp.test").exception("crashed")
    logs = console_output.getvalue()
    assert "during: [redacted]" in logs
    assert "boom [redacted]" in logs
    assert PERSON_KEY not in logs
    logging.getLogger("chatapp.test").warning("after: %s", PERSON_KEY)  # no run holds it now
    assert f"after: {PERSON_KEY}" in console_output.getvalue()
