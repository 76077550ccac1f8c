"""The request builder: the neutral `ChatRequest` of an assistant message - the path of the
tree it answers (text and images), the conversation's system prompt, the options frozen on the
message when its turn started. Reads only; adapters turn the request into their wire format."""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Callable
from typing import Any, NamedTuple

from chatapp.attachments import images
from chatapp.attachments.models import MessageAttachment
from chatapp.attachments.selectors import image_part
from chatapp.conversations import tree
from chatapp.conversations.models import Message
from chatapp.providers import functions
from chatapp.providers.types import ChatMessage, ChatRequest, Part, TextPart

from .services import Turn


def turn_request(*, message: Message) -> ChatRequest:
    """The neutral request for an assistant message: the path it answers (its branch, up to
    the message it follows), the conversation's system prompt, and the options frozen on the
    message at turn start.

    A turn whose answer has no text (it failed, was blocked, stopped before the first token)
    is left out, prompt and all: it never travels with later turns, so one failed or blocked
    prompt cannot fail every message after it, and two prompts are never sent as one user
    turn. Regenerating or editing it is how it is sent again. Provider extras (Gemini's
    thought signatures) go back only to the route and model that wrote them.
    """
    conversation = message.conversation
    if message.parent_id is None:
        path = []
    else:
        path = [
            PathRow(*values)
            for values in tree.path_values(
                conversation_id=conversation.id,
                leaf_id=message.parent_id,
                fields=PathRow._fields,
            )
        ]
    image_parts = _thread_images(message, {row.id for row in path})
    history: list[ChatMessage] = []
    for row in _answered(path):
        if row.role == Message.Role.USER and functions.RESULTS_KEY in row.provider_extras:
            # The results typed for the calls before it (docs/ARCHITECTURE.md, "Function
            # calling"): each adapter sends them in its own form.
            results = functions.results_of(row.provider_extras)
            history.append(
                ChatMessage(
                    role="tool",
                    parts=(TextPart(row.content),),
                    extras={functions.RESULTS_KEY: results},
                )
            )
            continue
        parts: list[Part] = list(image_parts.get(row.id, ()))
        if row.content or not parts:
            parts.append(TextPart(row.content))
        same_model = row.route == message.route and row.model == message.model
        extras: dict[str, Any] = {}
        if row.role == Message.Role.ASSISTANT:
            if same_model:
                extras = row.provider_extras
            elif functions.CALLS_KEY in row.provider_extras:
                # The calls go to any model, their signatures only to the one that made them.
                extras = {functions.CALLS_KEY: _unsigned(row.provider_extras)}
        history.append(
            ChatMessage(
                role="assistant" if row.role == Message.Role.ASSISTANT else "user",
                parts=tuple(parts),
                extras=extras,
            )
        )
    return ChatRequest(
        model=message.model,
        messages=_with_results(history),
        system=conversation.system_prompt,
        options=dict(message.request_options),
        request_id=message.id.hex,
    )


class PathRow(NamedTuple):
    """What a request needs of each message on the path it answers."""

    id: uuid.UUID
    role: str
    content: str
    provider_extras: dict[str, Any]
    route: str
    model: str


def _with_results(history: list[ChatMessage]) -> tuple[ChatMessage, ...]:
    """The history with calls only where their results follow: a person may write a message
    instead of the results, and both formats refuse calls left without them. Such an answer
    goes as text (saying which functions it called, if it has none)."""
    kept = list(history)
    for i, item in enumerate(kept):
        if item.role != "assistant" or functions.CALLS_KEY not in item.extras:
            continue
        if i + 1 < len(kept) and kept[i + 1].role == "tool":
            continue
        names = ", ".join(c["name"] for c in functions.calls_of(item.extras))
        text = item.text or f"(Called {names}; no results were given.)"
        extras = {k: v for k, v in item.extras.items() if k != functions.CALLS_KEY}
        kept[i] = ChatMessage(role="assistant", parts=(TextPart(text),), extras=extras)
    return tuple(kept)


def _unsigned(extras: dict[str, Any]) -> list[functions.Call]:
    return [
        {"id": c["id"], "name": c["name"], "arguments": c["arguments"]}
        for c in functions.calls_of(extras)
    ]


def _answered(path: list[PathRow]) -> list[PathRow]:
    """The path without its turns that have no answer text: each such answer and the prompt
    it answered (the prompt that starts this turn, last on the path, stays). An answer that
    called functions is an answer, text or not."""
    kept: list[PathRow] = []
    for row in path:
        if (
            row.role == Message.Role.ASSISTANT
            and not row.content
            and not functions.calls_of(row.provider_extras)
        ):
            if kept and kept[-1].role == Message.Role.USER:
                kept.pop()
            continue
        if row.role == Message.Role.USER and kept and kept[-1].role == Message.Role.USER:
            kept.pop()  # a prompt left without an answer: never two user turns in a row
        kept.append(row)
    return kept


# Sent after a partial answer to pick it up where it stopped; not shown in the conversation.
CONTINUE_INSTRUCTION = (
    "Continue your previous answer exactly where it stopped. Do not repeat anything already "
    "written and do not comment on the interruption."
)


# Not sent to continue an answer: one answer goes on (its other candidates are versions of
# their own, each continued alone), and it keeps the token probabilities of its first part.
NOT_CONTINUED = frozenset({"candidate_count", "logprobs", "top_logprobs"})


def continuation_request(*, message: Message) -> ChatRequest:
    """The request that continues a partial answer: the thread, the partial answer as the
    model's own turn, and a short instruction. The run appends what comes back to it."""
    request = turn_request(message=message)
    partial = ChatMessage(
        role="assistant", parts=(TextPart(message.content),), extras=message.provider_extras
    )
    instruction = ChatMessage.of_text("user", CONTINUE_INSTRUCTION)
    options = {k: v for k, v in request.options.items() if k not in NOT_CONTINUED}
    return dataclasses.replace(
        request, messages=(*request.messages, partial, instruction), options=options
    )


def first_turn_source(*, turn: Turn) -> ChatRequest | Callable[[], ChatRequest]:
    """What a new conversation's run is launched with: its request, built now when that reads
    nothing (no images: the rows just saved hold it all), so that the run needs no database
    thread before it calls the upstream (`manager.launch`); with images, the function that
    builds it, which the run calls on a database thread: reading and scaling them must not
    hold up the send's response."""
    if turn.user_message.image_links:
        return lambda: first_turn_request(turn=turn)
    return first_turn_request(turn=turn)


def first_turn_request(*, turn: Turn) -> ChatRequest:
    """The request of a new conversation's first turn, built from the rows just saved:
    there is no earlier thread to read (this is on the path to the first token)."""
    message = turn.assistant_message
    longest_side = images.route_limits(message.route)["longest_side"]
    parts: list[Part] = [
        image_part(link.attachment, longest_side=longest_side)
        for link in turn.user_message.image_links
    ]
    if turn.user_message.content or not parts:
        parts.append(TextPart(turn.user_message.content))
    return ChatRequest(
        model=message.model,
        messages=(ChatMessage(role="user", parts=tuple(parts)),),
        system=turn.conversation.system_prompt,
        options=dict(message.request_options),
        request_id=message.id.hex,
    )


def _thread_images(message: Message, on_path: set[uuid.UUID]) -> dict[uuid.UUID, list[Part]]:
    """The images of the path before `message`, as neutral parts by message id: one query for
    the conversation's attachment links (images on other branches are skipped before any file
    is read), each file read once, scaled down where the route takes smaller images than the
    ones stored. Images come before the text they go with."""
    if not on_path or not tree.has_images(message.conversation_id):
        return {}
    links = (
        MessageAttachment.objects.filter(
            message__conversation_id=message.conversation_id,
            message__created_at__lt=message.created_at,
        )
        .select_related("attachment")
        .order_by("message_id", "position")
    )
    longest_side = images.route_limits(message.route)["longest_side"]
    loaded: dict[uuid.UUID, Part] = {}
    parts: dict[uuid.UUID, list[Part]] = {}
    for link in links:
        if link.message_id not in on_path:
            continue
        attachment = link.attachment
        if attachment.pk not in loaded:
            loaded[attachment.pk] = image_part(attachment, longest_side=longest_side)
        parts.setdefault(link.message_id, []).append(loaded[attachment.pk])
    return parts
