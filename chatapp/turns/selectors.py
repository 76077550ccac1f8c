"""Reads for turns in progress: the answer being written in a conversation, a person's answers
being written, and what the SSE consumer needs to know about the message a browser asks to
watch."""

from __future__ import annotations

import uuid

from chatapp.conversations.models import Conversation, Message


def active_message(*, conversation: Conversation) -> Message | None:
    return conversation.messages.filter(status__in=Message.ACTIVE_STATUSES).first()


def active_answer_ids(*, owner_id: int) -> list[uuid.UUID]:
    """The answers being written for person `owner_id`, in any of their conversations (a
    disabled person's are stopped, web/views/people.py). Over the partial index of active
    messages, as `turns.limits.check_rate` counts them."""
    return list(
        Message.objects.filter(
            status__in=Message.ACTIVE_STATUSES, conversation__owner_id=owner_id
        ).values_list("id", flat=True)
    )


def stream_state(*, owner_id: int, message_id: uuid.UUID) -> Message | None:
    """The answer if person `owner_id` may watch it, else None (missing and someone else's
    alike)."""
    return (
        Message.objects.select_related("conversation")
        .filter(pk=message_id, role=Message.Role.ASSISTANT, conversation__owner_id=owner_id)
        .first()
    )
