"""Reads. Every read of a person's data goes through here and is scoped to its owner."""

from __future__ import annotations

import dataclasses
import logging
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.contrib.auth.base_user import AbstractBaseUser
from django.core.files.storage import default_storage
from django.db.models import Prefetch, Q
from django.http import Http404

from . import images
from .models import Attachment, Conversation, Message, MessageAttachment
from .providers import catalog
from .providers.types import ChatMessage, ChatRequest, ImagePart, Part, TextPart

log = logging.getLogger(__name__)

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


SIDEBAR_PAGE_SIZE = 50


@dataclass(frozen=True, slots=True)
class SidebarPage:
    conversations: list[Conversation]
    # The cursor for the next (older) page, or None when there is no more.
    more_cursor: str | None


def sidebar_page(
    *, owner: AbstractBaseUser, before: str | None = None, limit: int = SIDEBAR_PAGE_SIZE
) -> SidebarPage:
    """The person's conversations for the sidebar: pinned ones first (first page only), then
    the others by last activity, newest first, `limit` at a time.

    Keyset pagination and only the columns the sidebar shows: a person with thousands of
    conversations gets the same small page (measured in bench/, S8).
    """
    rows = Conversation.objects.filter(owner=owner).only("id", "title", "pinned", "updated_at")
    pinned: list[Conversation] = []
    if before:
        updated_at, conversation_id = _parse_cursor(before)
        rows = rows.filter(
            Q(updated_at__lt=updated_at) | Q(updated_at=updated_at, id__lt=conversation_id)
        )
    else:
        pinned = list(rows.filter(pinned=True).order_by("-updated_at", "-id")[:limit])
    recent = list(rows.filter(pinned=False).order_by("-updated_at", "-id")[: limit + 1])
    more = len(recent) > limit
    recent = recent[:limit]
    cursor = _cursor(recent[-1].updated_at, recent[-1].id) if more else None
    return SidebarPage(conversations=pinned + recent, more_cursor=cursor)


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
    page = list(rows.prefetch_related(_IMAGE_LINKS).order_by("-created_at", "-id")[: limit + 1])
    has_older = len(page) > limit
    page = page[:limit]
    page.reverse()
    if page and not before:
        page[-1].is_last = True
    cursor = _cursor(page[0].created_at, page[0].id) if has_older and page else None
    return ThreadPage(messages=page, older_cursor=cursor)


# The images of every message of a page in one query (Message.images reads `image_links`).
_IMAGE_LINKS = Prefetch(
    "attachment_links",
    queryset=MessageAttachment.objects.select_related("attachment").order_by("position"),
    to_attr="image_links",
)


def attachment_for_owner(*, owner: AbstractBaseUser, attachment_id: uuid.UUID) -> Attachment:
    """The attachment, or 404 - the same 404 whether it does not exist or is someone else's."""
    attachment = Attachment.objects.filter(pk=attachment_id, owner=owner).first()
    if attachment is None:
        raise Http404("No such image.")
    return attachment


def attachment_bytes(*, attachment: Attachment, thumbnail: bool = False) -> bytes:
    with default_storage.open(
        attachment.thumbnail_name if thumbnail else attachment.file_name, "rb"
    ) as fh:
        return fh.read()


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
    image_parts = _thread_images(message)
    history: list[ChatMessage] = []
    for row in earlier:
        if row.role == Message.Role.ASSISTANT and not row.content:
            # A failed or stopped answer with no text: the model never said anything.
            continue
        parts: list[Part] = list(image_parts.get(row.pk, ()))
        if row.content or not parts:
            parts.append(TextPart(row.content))
        history.append(
            ChatMessage(
                role=row.role,  # type: ignore[arg-type]
                parts=tuple(parts),
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


# Sent after a partial answer to pick it up where it stopped; not shown in the conversation.
CONTINUE_INSTRUCTION = (
    "Continue your previous answer exactly where it stopped. Do not repeat anything already "
    "written and do not comment on the interruption."
)


def continuation_request(*, message: Message) -> ChatRequest:
    """The request that continues a partial answer: the thread, the partial answer as the
    model's own turn, and a short instruction. The run appends what comes back to it."""
    request = turn_request(message=message)
    partial = ChatMessage(
        role="assistant", parts=(TextPart(message.content),), extras=message.provider_extras
    )
    instruction = ChatMessage.of_text("user", CONTINUE_INSTRUCTION)
    return dataclasses.replace(request, messages=(*request.messages, partial, instruction))


def first_turn_request(*, turn: Any) -> ChatRequest:
    """The request of a new conversation's first turn, built from the rows just saved:
    there is no earlier thread to read (this is on the path to the first token)."""
    message = turn.assistant_message
    longest_side = images.route_limits(message.route)["longest_side"]
    parts: list[Part] = [
        _image_part(link.attachment, longest_side) for link in turn.user_message.image_links
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


def _thread_images(message: Message) -> dict[uuid.UUID, list[Part]]:
    """The images of the thread before `message`, as neutral parts by message id: one query
    for every attachment of the thread, each file read once, scaled down where the route takes
    smaller images than the ones stored. Images come before the text they go with."""
    links = (
        MessageAttachment.objects.filter(
            message__conversation_id=message.conversation_id,
            message__superseded=False,
            message__created_at__lt=message.created_at,
        )
        .select_related("attachment")
        .order_by("message_id", "position")
    )
    longest_side = images.route_limits(message.route)["longest_side"]
    loaded: dict[uuid.UUID, Part] = {}
    parts: dict[uuid.UUID, list[Part]] = {}
    for link in links:
        attachment = link.attachment
        if attachment.pk not in loaded:
            loaded[attachment.pk] = _image_part(attachment, longest_side)
        parts.setdefault(link.message_id, []).append(loaded[attachment.pk])
    return parts


def _image_part(attachment: Attachment, longest_side: int) -> Part:
    try:
        data = attachment_bytes(attachment=attachment)
    except Exception:
        # Storage lost the file (restored from an old backup, a bucket emptied): the turn still
        # goes ahead, and the model is told an image was there.
        log.exception("attachment %s: stored file missing", attachment.pk)
        return TextPart("[An image was attached here, but it is no longer available.]")
    width, height = attachment.width, attachment.height
    if max(width, height) > longest_side:
        data, width, height = images.fit(data, attachment.mime_type, longest_side)
    return ImagePart(mime_type=attachment.mime_type, data=data, width=width, height=height)


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


def _cursor(stamp: datetime, row_id: uuid.UUID) -> str:
    return f"{stamp.isoformat()}_{row_id.hex}"


def _parse_cursor(cursor: str) -> tuple[datetime, uuid.UUID]:
    try:
        stamp, _, hex_id = cursor.rpartition("_")
        return datetime.fromisoformat(stamp), uuid.UUID(hex_id)
    except ValueError:
        raise Http404("Bad page cursor.") from None
