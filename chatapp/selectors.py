"""Reads. Every read of a person's data goes through here and is scoped to its owner."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from django.contrib.auth.base_user import AbstractBaseUser
from django.db.models import Q, QuerySet
from django.http import Http404

from .models import Conversation, Message
from .providers import catalog
from .providers.types import ChatMessage, ChatRequest, TextPart

THREAD_PAGE_SIZE = 50


def conversation_for_owner(*, owner: AbstractBaseUser, conversation_id: uuid.UUID) -> Conversation:
    """The conversation, or 404 - the same 404 whether it does not exist or is someone else's."""
    conversation = Conversation.objects.filter(pk=conversation_id, owner=owner).first()
    if conversation is None:
        raise Http404("No such conversation.")
    return conversation


def message_for_owner(
    *, owner: AbstractBaseUser, conversation_id: uuid.UUID, message_id: uuid.UUID
) -> Message:
    message = (
        Message.objects.select_related("conversation")
        .filter(pk=message_id, conversation_id=conversation_id, conversation__owner=owner)
        .first()
    )
    if message is None:
        raise Http404("No such message.")
    return message


def sidebar_conversations(*, owner: AbstractBaseUser) -> QuerySet[Conversation]:
    """The person's conversations, pinned first, then by last activity (newest first).

    Only the columns the sidebar shows are loaded, so a long history stays cheap.
    """
    return (
        Conversation.objects.filter(owner=owner)
        .order_by("-pinned", "-updated_at")
        .only("id", "title", "pinned", "updated_at")
    )


@dataclass(frozen=True, slots=True)
class ThreadPage:
    messages: list[Message]
    # The cursor for the next older page, or None when this page reaches the start.
    older_cursor: str | None


def thread_page(
    *, conversation: Conversation, before: str | None = None, limit: int = THREAD_PAGE_SIZE
) -> ThreadPage:
    """The newest `limit` visible messages (or those before `before`), oldest first.

    Keyset pagination on (created_at, id): the cost of a page does not grow with the length
    of the conversation.
    """
    rows = Message.objects.filter(conversation=conversation, superseded=False)
    if before:
        created_at, message_id = _parse_cursor(before)
        rows = rows.filter(
            Q(created_at__lt=created_at) | Q(created_at=created_at, id__lt=message_id)
        )
    page = list(rows.order_by("-created_at", "-id")[: limit + 1])
    has_older = len(page) > limit
    page = page[:limit]
    page.reverse()
    if page and not before:
        page[-1].is_last = True
    cursor = _cursor(page[0]) if has_older and page else None
    return ThreadPage(messages=page, older_cursor=cursor)


def active_message(*, conversation: Conversation) -> Message | None:
    return conversation.messages.filter(status__in=Message.ACTIVE_STATUSES).first()


def stream_state(*, owner: AbstractBaseUser, message_id: uuid.UUID) -> Message | None:
    """What the SSE consumer needs: the message if `owner` may watch it, else None."""
    return (
        Message.objects.select_related("conversation")
        .filter(pk=message_id, role=Message.Role.ASSISTANT, conversation__owner=owner)
        .first()
    )


def turn_request(*, message: Message) -> ChatRequest:
    """The neutral request for an assistant message: the visible thread before it, the
    conversation's system prompt, and the options frozen on the message at turn start."""
    conversation = message.conversation
    earlier = (
        Message.objects.filter(
            conversation=conversation, superseded=False, created_at__lt=message.created_at
        )
        .exclude(pk=message.pk)
        .order_by("created_at", "id")
        .only("role", "content", "status", "provider_extras")
    )
    history: list[ChatMessage] = []
    for row in earlier:
        if row.role == Message.Role.ASSISTANT and not row.content:
            # A failed or stopped answer with no text: the model never said anything.
            continue
        history.append(
            ChatMessage(
                role=row.role,  # type: ignore[arg-type]
                parts=(TextPart(row.content),),
                extras=row.provider_extras if row.role == Message.Role.ASSISTANT else {},
            )
        )
    return ChatRequest(
        model=message.model,
        messages=tuple(history),
        system=conversation.system_prompt,
        options=dict(message.request_options),
        request_id=message.id.hex,
    )


def chat_settings_initial(*, owner: AbstractBaseUser) -> tuple[catalog.ModelSpec, str, dict]:
    """Defaults for a new chat: the model and settings of the person's latest conversation
    (if that model is still offered), else the catalog's first model."""
    latest = (
        Conversation.objects.filter(owner=owner)
        .order_by("-updated_at")
        .only("route", "model", "system_prompt", "settings")
        .first()
    )
    if latest is not None:
        spec = catalog.get_model(latest.route, latest.model)
        if spec is not None:
            return spec, latest.system_prompt, dict(latest.settings)
    return catalog.default_model(), "", {}


def _cursor(message: Message) -> str:
    return f"{message.created_at.isoformat()}_{message.id.hex}"


def _parse_cursor(cursor: str) -> tuple[datetime, uuid.UUID]:
    try:
        stamp, _, hex_id = cursor.rpartition("_")
        return datetime.fromisoformat(stamp), uuid.UUID(hex_id)
    except ValueError:
        raise Http404("Bad page cursor.") from None
