"""Writes of attachments: store an upload, delete files, prune images never sent."""

from __future__ import annotations

import contextlib
import logging
import threading
import uuid
from collections.abc import Iterable, Iterator
from datetime import timedelta
from typing import IO, TYPE_CHECKING

from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import IntegrityError, transaction
from django.utils import timezone

from chatapp.core.errors import LimitExceeded, UploadRejected
from chatapp.core.locks import lock_person

from . import images
from .models import Attachment, UploadAttempt

if TYPE_CHECKING:
    from django.contrib.auth.models import User

log = logging.getLogger(__name__)


def attachment_create(*, owner: User, upload: IO[bytes]) -> Attachment:
    """Validate and normalise an uploaded image (`images.normalise_bytes`) and store it, once
    per owner and content: uploading the same image again returns the first attachment, found
    by the hash of the bytes sent, before anything is decoded.

    Every attempt counts against the per-minute limit, the same image sent again included, and
    one person has at most UPLOADS_AT_ONCE being decoded at a time in this process (the page
    sends them one after another; an upload past it is refused at once, not queued behind the
    others, so nobody waits for one person's burst). Nothing is saved unless the whole image
    is acceptable; the files are written before the row and removed again if the row cannot be
    saved. Raises LimitExceeded or UploadRejected.
    """
    _count_attempt(owner)
    with _upload_slot(owner):
        try:
            raw = images.read_upload(upload)
            digest = images.upload_digest(raw)
            existing = Attachment.objects.filter(owner=owner, upload_sha256=digest).first()
            if existing is not None:
                return existing
            image = images.normalise_bytes(raw)
        except images.ImageRejected as exc:
            raise UploadRejected(exc.message, exc.status) from None
        del raw
        existing = Attachment.objects.filter(owner=owner, sha256=image.sha256).first()
        if existing is not None:
            return existing
        return _store(owner, image, digest)


def attachment_store(*, owner: User, image: images.NormalisedImage, digest: str) -> Attachment:
    """Store an image already normalised by `images.normalise_bytes`, once per owner and
    content: for an import (chatapp.exchange), which decodes its images before its
    transaction and is bounded by the import's own limits rather than the per-minute one. Its
    files are written at once: a caller whose transaction rolls back removes those of the rows
    that are gone (`attachment_files_delete`)."""
    existing = Attachment.objects.filter(owner=owner, sha256=image.sha256).first()
    if existing is not None:
        return existing
    return _store(owner, image, digest)


def _store(owner: User, image: images.NormalisedImage, digest: str) -> Attachment:
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
                upload_sha256=digest,
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


# One person's uploads being decoded at once in this process. The page sends two at a time.
UPLOADS_AT_ONCE = 2
_in_flight: dict[int, int] = {}
_in_flight_lock = threading.Lock()


@contextlib.contextmanager
def _upload_slot(owner: User) -> Iterator[None]:
    with _in_flight_lock:
        busy = _in_flight.get(owner.pk, 0)
        if busy >= UPLOADS_AT_ONCE:
            raise LimitExceeded(
                f"{busy} of your images are being processed; the limit is {UPLOADS_AT_ONCE} at "
                "a time. Attach this one again when they are done."
            )
        _in_flight[owner.pk] = busy + 1
    try:
        yield
    finally:
        with _in_flight_lock:
            left = _in_flight[owner.pk] - 1
            if left:
                _in_flight[owner.pk] = left
            else:
                del _in_flight[owner.pk]


def _count_attempt(owner: User) -> None:
    """Count this upload against the per-minute limit, or refuse it: every attempt counts, in
    one transaction with the person's row locked, so a burst at once cannot slip past."""
    per_minute = settings.CHAT_LIMITS["uploads_per_minute"]
    since = timezone.now() - timedelta(minutes=1)
    with transaction.atomic():
        lock_person(owner.pk)
        recent = UploadAttempt.objects.filter(owner=owner, created_at__gte=since)
        uploaded = recent.count()
        if uploaded >= per_minute:
            raise LimitExceeded(
                f"You have uploaded {uploaded} images in the last minute; the limit is "
                f"{per_minute} per minute. Wait a moment and attach again."
            )
        UploadAttempt.objects.filter(owner=owner, created_at__lt=since).delete()
        UploadAttempt.objects.create(owner=owner)
