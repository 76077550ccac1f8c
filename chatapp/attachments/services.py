"""Writes of attachments: store an upload, delete files, prune images never sent."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterable
from datetime import timedelta
from typing import IO, TYPE_CHECKING

from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import IntegrityError, transaction
from django.utils import timezone

from chatapp.core.errors import LimitExceeded, UploadRejected

from . import images
from .models import Attachment

if TYPE_CHECKING:
    from django.contrib.auth.models import User

log = logging.getLogger(__name__)


def attachment_create(*, owner: User, upload: IO[bytes]) -> Attachment:
    """Validate and normalise an uploaded image (`images.normalise`) and store it, once per
    owner and content: uploading the same image again returns the first attachment.

    Nothing is saved unless the whole image is acceptable; the files are written before the
    row and removed again if the row cannot be saved. Raises LimitExceeded or UploadRejected.
    """
    _check_upload_rate(owner)
    try:
        image = images.normalise(upload)
    except images.ImageRejected as exc:
        raise UploadRejected(exc.message, exc.status) from None
    existing = Attachment.objects.filter(owner=owner, sha256=image.sha256).first()
    if existing is not None:
        return existing
    attachment_id = uuid.uuid4()
    stem = f"attachments/{attachment_id.hex[:2]}/{attachment_id.hex}"
    names: list[str] = []
    try:
        names.append(default_storage.save(f"{stem}.{image.extension}", ContentFile(image.data)))
        names.append(
            default_storage.save(
                f"{stem}.thumb.{image.thumbnail_extension}", ContentFile(image.thumbnail)
            )
        )
        with transaction.atomic():
            attachment = Attachment.objects.create(
                id=attachment_id,
                owner=owner,
                sha256=image.sha256,
                file_name=names[0],
                thumbnail_name=names[1],
                mime_type=image.mime_type,
                width=image.width,
                height=image.height,
                byte_size=len(image.data),
            )
    except IntegrityError:
        # The same image uploaded twice at once: keep the one that won.
        attachment_files_delete(names=names)
        return Attachment.objects.get(owner=owner, sha256=image.sha256)
    except BaseException:
        attachment_files_delete(names=names)
        raise
    _attachments_prune_unsent(owner)
    return attachment


def attachment_files_delete(*, names: Iterable[str]) -> None:
    """Remove stored files; a file already gone is not an error."""
    for name in names:
        if not name:
            continue
        try:
            default_storage.delete(name)
        except Exception:
            # The row is gone either way; a file left behind is logged, not fatal.
            log.exception("could not delete the stored file %s", name)


def attachments_delete_unlinked(*, attachment_ids: Iterable[uuid.UUID]) -> None:
    """Delete those of these attachments that no message refers to any more (their files go
    when the rows do, once committed: `signals.attachment_files_cleanup`)."""
    Attachment.objects.filter(pk__in=list(attachment_ids), message_links__isnull=True).delete()


def _attachments_prune_unsent(owner: User) -> None:
    """Images uploaded but never sent (the tab was closed, the image removed before sending)
    are deleted after a while."""
    hours = settings.CHAT_IMAGE_LIMITS["unsent_ttl_hours"]
    cutoff = timezone.now() - timedelta(hours=hours)
    Attachment.objects.filter(
        owner=owner, created_at__lt=cutoff, message_links__isnull=True
    ).delete()


def _check_upload_rate(owner: User) -> None:
    per_minute = settings.CHAT_LIMITS["uploads_per_minute"]
    since = timezone.now() - timedelta(minutes=1)
    uploaded = Attachment.objects.filter(owner=owner, created_at__gte=since).count()
    if uploaded >= per_minute:
        raise LimitExceeded(
            f"You have uploaded {uploaded} images in the last minute; the limit is {per_minute} "
            "per minute. Wait a moment and attach again."
        )
