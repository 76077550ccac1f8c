"""Writes of a conversation outside its turns: its settings, the branch it shows, its name,
its pin, archiving it, its deletion; a person's presets (their defaults for new chats among them)
and their saved JSON schemas."""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.db import transaction
from django.utils import timezone

from chatapp.attachments.models import MessageAttachment
from chatapp.attachments.services import attachments_delete_unlinked
from chatapp.core.errors import InvalidSettings, ServiceError, TurnConflict
from chatapp.providers.structured import check_schema

from . import tree
from .chat_settings import ChatSettings
from .models import Conversation, Message, Preset, SavedSchema
from .titles import plain_title

if TYPE_CHECKING:
    from django.contrib.auth.models import User

# The conversation's columns its settings fill.
SETTINGS_FIELDS = ("route", "model", "system_prompt", "settings")


def conversation_settings_apply(*, conversation: Conversation, chat_settings: ChatSettings) -> None:
    """Set the settings on the row, unsaved (a turn saves them with its other changes)."""
    conversation.route = chat_settings.spec.route
    conversation.model = chat_settings.spec.id
    conversation.system_prompt = chat_settings.system_prompt
    conversation.settings = chat_settings.stored


def conversation_settings_update(
    *, conversation: Conversation, chat_settings: ChatSettings
) -> Conversation:
    conversation_settings_apply(conversation=conversation, chat_settings=chat_settings)
    conversation.save(update_fields=SETTINGS_FIELDS)
    return conversation


def branch_show(*, conversation: Conversation, message: Message) -> Conversation:
    """Show the version `message` (one of its siblings' places) and the branch under it: the
    conversation's current leaf becomes the end of the branch most recently written there, so
    the next message sent follows it. An answer being written elsewhere goes on."""
    conversation.current_leaf_id = tree.newest_leaf(
        conversation_id=conversation.id, under_id=message.pk
    )
    conversation.save(update_fields=["current_leaf"])
    return conversation


# Titles are plain text of at most this many characters (a rename, an automatic title).
TITLE_MAX_CHARS = 80


def conversation_rename(*, conversation: Conversation, title: str) -> Conversation:
    """Name a conversation: plain text (control and format characters removed), at most
    TITLE_MAX_CHARS; no automatic title replaces it afterwards."""
    clean = plain_title(title).strip()
    if not clean:
        raise ServiceError("Give the conversation a name (letters or digits).")
    if len(clean) > TITLE_MAX_CHARS:
        raise ServiceError(
            f"The name is {len(clean)} characters; a name has at most {TITLE_MAX_CHARS}."
        )
    conversation.title = clean
    conversation.title_locked = True
    conversation.save(update_fields=["title", "title_locked"])
    return conversation


def conversation_archive(*, conversation: Conversation, archived: bool) -> Conversation:
    """Out of the sidebar and into the Archived list (search still finds it), or back."""
    conversation.archived = archived
    conversation.save(update_fields=["archived"])
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


# How many named presets one person keeps (docs/SECURITY.md rule 14: every per-person resource
# is bounded).
PRESETS_PER_PERSON = 50


def preset_save(*, owner: User, name: str, chat_settings: ChatSettings) -> Preset:
    """Save settings under a name (over a preset of that name), or as the person's defaults
    for new chats when the name is `Preset.DEFAULTS`. Names are plain text, trimmed."""
    clean = plain_title(name)[: Preset.NAME_MAX_CHARS].strip()
    if name.strip() and not clean:
        raise InvalidSettings("Give the preset a name.", {"preset_name": "Give it a name."})
    fields = {
        "route": chat_settings.spec.route,
        "model": chat_settings.spec.id,
        "system_prompt": chat_settings.system_prompt,
        "settings": chat_settings.stored,
        "updated_at": timezone.now(),
    }
    with transaction.atomic():
        exists = Preset.objects.filter(owner=owner, name=clean).exists()
        if (
            clean
            and not exists
            and (
                Preset.objects.filter(owner=owner).exclude(name=Preset.DEFAULTS).count()
                >= PRESETS_PER_PERSON
            )
        ):
            raise InvalidSettings(
                f"You have {PRESETS_PER_PERSON} presets, the most one person can keep; "
                "delete one first.",
                {"preset_name": f"At most {PRESETS_PER_PERSON} presets."},
            )
        preset, _ = Preset.objects.update_or_create(owner=owner, name=clean, defaults=fields)
    return preset


def preset_delete(*, preset: Preset) -> None:
    preset.delete()


# How many named schemas one person keeps (docs/SECURITY.md rule 14: every per-person resource
# is bounded); each is at most structured.SCHEMA_MAX_CHARS.
SCHEMAS_PER_PERSON = 50


def schema_save(*, owner: User, name: str, text: str) -> SavedSchema:
    """Keep a JSON Schema under a name (over a schema of that name), checked exactly as the
    panel checks one it sends, so a saved schema can always be used. Raises InvalidSettings
    naming the field and the limit."""
    clean = plain_title(name)[: SavedSchema.NAME_MAX_CHARS].strip()
    if not clean:
        raise InvalidSettings("Give the schema a name.", {"schema_name": "Give it a name."})
    if not text.strip():
        raise InvalidSettings(
            "Write a schema in the JSON schema box first.",
            {"schema_name": "The JSON schema box is empty."},
        )
    try:
        check_schema(text)
    except ValueError as exc:
        raise InvalidSettings(str(exc), {"schema_name": str(exc)}) from None
    with transaction.atomic():
        mine = SavedSchema.objects.filter(owner=owner)
        if not mine.filter(name=clean).exists() and mine.count() >= SCHEMAS_PER_PERSON:
            message = (
                f"You have {SCHEMAS_PER_PERSON} saved schemas, the most one person can keep; "
                "delete one first."
            )
            raise InvalidSettings(message, {"schema_name": message})
        schema, _ = SavedSchema.objects.update_or_create(
            owner=owner, name=clean, defaults={"text": text, "updated_at": timezone.now()}
        )
    return schema


def schema_delete(*, schema: SavedSchema) -> None:
    schema.delete()
