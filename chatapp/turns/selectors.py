"""Reads for turns in progress: the answer being written in a conversation, and what the SSE
consumer needs to know about the message a browser asks to watch."""

from __future__ import annotations

import uuid

from chatapp.conversations.models import Conversation, Message


def active_message(*, conversation: Conversation) -> Message | None:
    return conversation.messages.filter(status__in=Message.ACTIVE_STATUSES).first()


def stream_state(*, owner_id: int, message_id: uuid.UUID) -> Message | None:
    """The answer if person `owner_id` may watch it, else None (missing and someone else's
    alike)."""
    return (
        Message.objects.select_related("conversation")
        .filter(pk=message_id, role=Message.Role.ASSISTANT, conversation__owner_id=owner_id)
        .first()
    )
