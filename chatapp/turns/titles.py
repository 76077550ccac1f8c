"""A conversation's title, written by a model after its first answer (docs/ARCHITECTURE.md,
"Keeping conversations"). In the background: the answer has been saved and its stream ended
before anything here starts, so nothing waits for it. Which model is `CHAT_TITLE_MODEL` (by
default the first of TITLE_MODELS on a configured route); the offline demo, and a server with
no model to ask, keep the first line of the first message (or of the answer, when the message
was only images). Never over a name the person chose (Rename), nor over a title written since.
"""

from __future__ import annotations

import asyncio
import logging
import re
import uuid
from dataclasses import dataclass
from typing import Any

import httpx
from channels.layers import get_channel_layer
from django.conf import settings

from chatapp.conversations.models import Conversation, Message
from chatapp.conversations.services import TITLE_MAX_CHARS
from chatapp.conversations.titles import plain_title, title_from_text
from chatapp.core.db import db
from chatapp.providers import catalog, provider_for
from chatapp.providers.errors import ProviderError
from chatapp.providers.types import ChatMessage, ChatRequest, TextDelta

from .protocol import ConversationTitle, conversation_group

log = logging.getLogger(__name__)

# Fast, cheap models that write a good short title, best first.
TITLE_MODELS = (
    "gemini:gemini-2.5-flash-lite",
    "segmind:gemini-2.5-flash-lite",
    "aimlapi:google/gemini-2.5-flash",
)
TITLE_SYSTEM = (
    "You name conversations. Reply with a title of two to six words, in the language of the "
    "conversation, that says what it is about. The title only: no quotes, no full stop."
)
# What of the first turn the model reads, and how long it may take.
QUESTION_CHARS = 2_000
ANSWER_CHARS = 1_000
TIMEOUT_SECONDS = 20.0
_QUOTES = re.compile(r"^[\s\"'“”‘’«»*#`]+|[\s\"'“”‘’«»*`.!。]+$")


def title_spec() -> catalog.ModelSpec | None:
    """The model that writes titles here, or None (the first line is kept)."""
    key = settings.CHAT_TITLE_MODEL
    if key == "off":
        return None
    for candidate in (key,) if key else TITLE_MODELS:
        spec = catalog.get_model_by_key(candidate)
        if spec is not None and spec.route != "demo":
            return spec
    return None


@dataclass(frozen=True, slots=True)
class FirstTurn:
    conversation_id: uuid.UUID
    title: str  # as it is now: the title written will replace only this one
    question: str
    answer: str


def first_turn(message_id: uuid.UUID) -> FirstTurn | None:
    """The first turn this answer completes, if its conversation still has the title its
    first message gave it (not renamed, not titled by a model since)."""
    answer = (
        Message.objects.select_related("parent", "conversation")
        .filter(pk=message_id, role=Message.Role.ASSISTANT, status=Message.Status.COMPLETE)
        .first()
    )
    if answer is None or not answer.content or answer.parent is None:
        return None
    question, conversation = answer.parent, answer.conversation
    if question.parent_id is not None or conversation.title_locked:
        return None
    automatic = title_from_text(question.content) if question.content.strip() else "Image"
    if conversation.title != automatic:
        return None
    return FirstTurn(conversation.pk, conversation.title, question.content, answer.content)


def clean(text: str) -> str:
    """A model's reply as a title: its first line, without quotes and markup, plain text, at
    most TITLE_MAX_CHARS, or "" if nothing is left."""
    line = next((line for line in text.splitlines() if line.strip()), "")
    if not plain_title(_QUOTES.sub("", line)):
        return ""
    # Markdown first (paired markers), then what is left of quotes around it; a cut one ends
    # with "…", within the limit.
    return _QUOTES.sub("", title_from_text(line, limit=TITLE_MAX_CHARS - 1)).strip()


def save(turn: FirstTurn, title: str) -> bool:
    """Write the title unless the person renamed the conversation (or anything retitled it)
    meanwhile: one conditional UPDATE."""
    return bool(
        Conversation.objects.filter(
            pk=turn.conversation_id, title=turn.title, title_locked=False
        ).update(title=title)
    )


async def write_title(*, message_id: uuid.UUID, client: httpx.AsyncClient) -> None:
    """After a first answer: ask the title model, save its title, tell the open pages."""
    turn = await db(first_turn, message_id)
    if turn is None:
        return
    spec = title_spec()
    title = ""
    if spec is not None:
        try:
            title = await asyncio.wait_for(_ask(spec, turn, client), TIMEOUT_SECONDS)
        except (ProviderError, TimeoutError) as exc:
            log.info("no title for %s from %s: %s", turn.conversation_id, spec.key, exc)
    if not title and not turn.question.strip():
        title = title_from_text(turn.answer, limit=TITLE_MAX_CHARS)  # images alone: the answer
    if not title or title == turn.title or not await db(save, turn, title):
        return
    frame: ConversationTitle = {"type": "conversation.title", "title": title}
    await get_channel_layer().group_send(conversation_group(turn.conversation_id), frame)


async def _ask(spec: catalog.ModelSpec, turn: FirstTurn, client: httpx.AsyncClient) -> str:
    prompt = (
        f"First message:\n{turn.question[:QUESTION_CHARS]}\n\nAnswer:\n{turn.answer[:ANSWER_CHARS]}"
    )
    request = ChatRequest(
        model=spec.id,
        messages=(ChatMessage.of_text("user", prompt),),
        system=TITLE_SYSTEM,
        options=catalog.options_to_send(spec, _options(spec)),
        request_id=uuid.uuid4().hex,
    )
    provider = provider_for(spec.route, client=client)
    text: list[str] = []
    async for event in provider.stream(request):
        if isinstance(event, TextDelta):
            text.append(event.text)
            if sum(map(len, text)) > 4 * TITLE_MAX_CHARS:
                break  # a title, not an essay
    return clean(provider.redact("".join(text)))


def _options(spec: catalog.ModelSpec) -> dict[str, Any]:
    options: dict[str, Any] = {}
    if "max_tokens" in spec.ranges:
        options["max_tokens"] = 48
    if "temperature" in spec.ranges:
        options["temperature"] = 0.3
    return options
