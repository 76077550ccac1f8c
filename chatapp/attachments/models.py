"""Uploaded images and their ordered links to the messages that carry them."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.utils import timezone

from .images import thumbnail_size


class Attachment(models.Model):
    """An uploaded image, validated and re-encoded by `attachments.images`, stored through
    `STORAGES["default"]` under a UUID name. Rows hold only metadata: the bytes live in the
    storage, never in the database. One row per owner and image content (sha256 of the
    normalised bytes), however often it is attached."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="attachments"
    )
    sha256 = models.CharField(max_length=64)
    # The sha256 of the bytes as uploaded: the same file sent again is found without decoding
    # it (blank for images stored before this was kept).
    upload_sha256 = models.CharField(max_length=64, blank=True)
    # Storage names, e.g. "attachments/3f/3f2c...e1.jpg": a UUID and the extension of the
    # format we encoded, never anything the client sent.
    file_name = models.CharField(max_length=255)
    thumbnail_name = models.CharField(max_length=255)
    mime_type = models.CharField(max_length=32)
    width = models.PositiveIntegerField()
    height = models.PositiveIntegerField()
    byte_size = models.PositiveIntegerField()
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["owner", "sha256"], name="one_attachment_per_owner_and_content"
            )
        ]
        indexes = [
            models.Index(fields=["owner", "created_at"], name="attachment_owner_created"),
            models.Index(fields=["owner", "upload_sha256"], name="attachment_owner_upload"),
        ]

    def __str__(self) -> str:
        return f"{self.id} ({self.mime_type}, {self.width}×{self.height})"

    @property
    def thumbnail_width(self) -> int:
        return thumbnail_size(self.width, self.height)[0]

    @property
    def thumbnail_height(self) -> int:
        return thumbnail_size(self.width, self.height)[1]


class MessageAttachment(models.Model):
    """The ordered link between a message and its images (one attachment may be in several
    messages: the same image sent twice is stored once)."""

    message = models.ForeignKey(
        "chatapp.Message", on_delete=models.CASCADE, related_name="attachment_links"
    )
    # RESTRICT: an attachment goes only once no message refers to it (services), or with
    # its owner (whose messages go in the same deletion).
    attachment = models.ForeignKey(
        Attachment, on_delete=models.RESTRICT, related_name="message_links"
    )
    position = models.PositiveSmallIntegerField()

    class Meta:
        ordering = ["message", "position"]
        constraints = [
            models.UniqueConstraint(
                fields=["message", "position"], name="one_attachment_per_message_position"
            )
        ]

    def __str__(self) -> str:
        return f"{self.message_id} #{self.position}: {self.attachment_id}"


class UploadAttempt(models.Model):
    """One upload a person made, accepted or not: the per-minute limit counts these, not the
    images stored (the same image sent again stores nothing, and was never counted)."""

    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="upload_attempts"
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        indexes = [models.Index(fields=["owner", "created_at"], name="upload_attempt_owner")]

    def __str__(self) -> str:
        return f"{self.owner_id} at {self.created_at:%H:%M:%S}"
