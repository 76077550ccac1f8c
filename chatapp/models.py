"""Every model of the app, for Django: each is defined in its domain's own `models.py`."""

from __future__ import annotations

from chatapp.accounts.models import Membership
from chatapp.attachments.models import Attachment, MessageAttachment, UploadAttempt
from chatapp.conversations.models import Conversation, Message, Preset, SavedSchema
from chatapp.credentials.models import PersonKey, RouteFailure
from chatapp.turns.models import Worker

__all__ = [
    "Attachment",
    "Conversation",
    "Membership",
    "Message",
    "MessageAttachment",
    "PersonKey",
    "Preset",
    "RouteFailure",
    "SavedSchema",
    "UploadAttempt",
    "Worker",
]
