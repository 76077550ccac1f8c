"""docs/SECURITY.md rule 12: the API key never reaches a browser or a log line, even when an upstream
echoes it back in an error."""

from __future__ import annotations

import io
import logging
import uuid

import pytest
from asgiref.sync import sync_to_async
from django.test import AsyncClient
from django.urls import reverse

from chatapp.core.logging import RedactSecretsFilter
from tests.conftest import API_KEY, open_stream, wait_for_run
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
    from chatapp.models import Message

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
