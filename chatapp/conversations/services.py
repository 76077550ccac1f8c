"""Writes of a conversation outside its turns: its settings, its pin, its deletion."""

from __future__ import annotations

from django.db import transaction

from chatapp.attachments.models import MessageAttachment
from chatapp.attachments.services import attachments_delete_unlinked
from chatapp.core.errors import TurnConflict

from .chat_settings import ChatSettings
from .models import Conversation, Message

# The conversation's columns its settings fill.
SETTINGS_FIELDS = ("route", "model", "system_prompt", "settings")


def conversation_settings_apply(*, conversation: Conversation, chat_settings: ChatSettings) -> None:
    """Set the settings on the row, unsaved (a turn saves them with its other changes)."""
    conversation.route = chat_settings.spec.route
    conversation.model = chat_settings.spec.id
    conversation.system_prompt = chat_settings.system_prompt
    conversation.settings = chat_settings.options


def conversation_settings_update(
    *, conversation: Conversation, chat_settings: ChatSettings
) -> Conversation:
    conversation_settings_apply(conversation=conversation, chat_settings=chat_settings)
    conversation.save(update_fields=SETTINGS_FIELDS)
    return conversation


def conversation_pin(*, conversation: Conversation, pinned: bool) -> Conversation:
    conversation.pinned = pinned
    conversation.save(update_fields=["pinned"])
    return conversation


def conversation_delete(*, conversation: Conversation) -> None:
    """Delete a conversation with its messages, and the images only it referred to (an image
    also sent in another conversation stays)."""
    if conversation.messages.filter(status__in=Message.ACTIVE_STATUSES).exists():
        raise TurnConflict("An answer is still being written here. Press Stop first, then delete.")
    with transaction.atomic():
        attachment_ids = set(
            MessageAttachment.objects.filter(message__conversation=conversation).values_list(
                "attachment_id", flat=True
            )
        )
        conversation.delete()
        attachments_delete_unlinked(attachment_ids=attachment_ids)
