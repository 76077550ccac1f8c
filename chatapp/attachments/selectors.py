"""Reads of attachments, scoped to their owner, and their bytes as provider-neutral parts."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from typing import TYPE_CHECKING

from django.conf import settings
from django.core.files.storage import default_storage
from django.http import Http404

from chatapp.core.errors import NotFound, ServiceError
from chatapp.providers.types import ImagePart, Part, TextPart

from . import images
from .models import Attachment

if TYPE_CHECKING:
    from django.contrib.auth.models import User

log = logging.getLogger(__name__)


def attachment_for_owner(*, owner: User, attachment_id: uuid.UUID) -> Attachment:
    """The attachment, or 404 - the same 404 whether it does not exist or is someone else's."""
    attachment = Attachment.objects.filter(pk=attachment_id, owner=owner).first()
    if attachment is None:
        raise Http404("No such image.")
    return attachment


def attachments_for_message(
    *, owner: User, attachment_ids: Sequence[uuid.UUID]
) -> list[Attachment]:
    """The person's own attachments to send with a message, in the order given, within the
    per-message limit. Someone else's id is treated exactly like an id that does not exist
    (docs/SECURITY.md rule 9)."""
    ids = list(dict.fromkeys(attachment_ids))
    if not ids:
        return []
    limit = settings.CHAT_LIMITS["images_per_message"]
    if len(ids) > limit:
        raise ServiceError(f"You attached {len(ids)} images; the limit is {limit} per message.")
    found = {a.pk: a for a in Attachment.objects.filter(owner=owner, pk__in=ids)}
    if len(found) != len(ids):
        raise NotFound(
            "An attached image is no longer available (it may have been deleted with its "
            "conversation). Remove it and attach it again."
        )
    return [found[i] for i in ids]


def attachment_bytes(*, attachment: Attachment, thumbnail: bool = False) -> bytes:
    with default_storage.open(
        attachment.thumbnail_name if thumbnail else attachment.file_name, "rb"
    ) as fh:
        data: bytes = fh.read()
        return data


def image_part(attachment: Attachment, *, longest_side: int) -> Part:
    """The stored image as a request part, scaled down where the route takes smaller images
    than the ones stored."""
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
