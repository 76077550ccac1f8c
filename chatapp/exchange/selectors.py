"""Reads of an export, every one scoped to its owner and bounded in memory: rows come in
chunks (`iterator(chunk_size=...)`), never a whole table at once."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from django.db.models import Prefetch, prefetch_related_objects

from chatapp.attachments.models import MessageAttachment
from chatapp.conversations import tree
from chatapp.conversations.models import Conversation, Message

if TYPE_CHECKING:
    from django.contrib.auth.models import User

CONVERSATIONS_PER_CHUNK = 100
MESSAGES_PER_CHUNK = 1000
# What an export writes of a message (its HTML is made again from the text on import).
MESSAGE_FIELDS = (
    "id",
    "conversation_id",
    "parent_id",
    "role",
    "content",
    "reasoning",
    "status",
    "error_code",
    "error_message",
    "finish_reason",
    "route",
    "model",
    "request_options",
    "model_reported",
    "upstream_request_id",
    "upstream_response_id",
    "prompt_tokens",
    "completion_tokens",
    "reasoning_tokens",
    "total_tokens",
    "credits_used",
    "usd_spent",
    "ttft_ms",
    "duration_ms",
    "provider_extras",
    "created_at",
    "finished_at",
)

# Each message's images with it, one query per chunk of messages.
_IMAGES = Prefetch(
    "attachment_links",
    queryset=MessageAttachment.objects.select_related("attachment").order_by("position"),
    to_attr="image_links",
)


def conversations_for_export(*, owner: User) -> Iterator[Conversation]:
    """All of the person's conversations, oldest first."""
    return (
        Conversation.objects.filter(owner=owner)
        .order_by("created_at", "id")
        .iterator(chunk_size=CONVERSATIONS_PER_CHUNK)
    )


def messages_for_export(*, conversation: Conversation) -> Iterator[Message]:
    """Every message of the conversation, on every branch, each after the one it follows (a
    message is always newer than its parent), with its images."""
    rows = (
        Message.objects.filter(conversation=conversation)
        .order_by("created_at", "id")
        .only(*MESSAGE_FIELDS)
        .iterator(chunk_size=MESSAGES_PER_CHUNK)
    )
    chunk: list[Message] = []
    for row in rows:
        chunk.append(row)
        if len(chunk) == MESSAGES_PER_CHUNK:
            yield from _with_images(chunk)
            chunk = []
    yield from _with_images(chunk)


def _with_images(chunk: list[Message]) -> list[Message]:
    prefetch_related_objects(chunk, _IMAGES)
    return chunk


def branch_for_export(*, conversation: Conversation) -> Iterator[Message]:
    """The branch shown, root first, with images: its ids in one walk up the tree, then the
    messages a chunk at a time."""
    if conversation.current_leaf_id is None:
        return
    ids = [
        row.pk
        for row in tree.path(
            conversation_id=conversation.id,
            leaf_id=conversation.current_leaf_id,
            fields=["parent"],
        )
    ]
    for start in range(0, len(ids), MESSAGES_PER_CHUNK):
        chunk = ids[start : start + MESSAGES_PER_CHUNK]
        rows = (
            Message.objects.filter(conversation=conversation, pk__in=chunk)
            .only(*MESSAGE_FIELDS)
            .in_bulk()
        )
        yield from _with_images([rows[i] for i in chunk if i in rows])
