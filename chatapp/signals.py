"""Receivers: logging out ends that session's open streams (SECURITY 11); an attachment's
files go with its row."""

from __future__ import annotations

import logging

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.contrib.auth.signals import user_logged_out
from django.db import transaction
from django.db.models.signals import post_delete
from django.dispatch import receiver

from .models import Attachment

log = logging.getLogger(__name__)


@receiver(user_logged_out)
def end_session_streams(sender, request, user, **kwargs) -> None:
    session_key = getattr(getattr(request, "session", None), "session_key", None)
    if not session_key:
        return
    from .consumers import session_group

    try:
        async_to_sync(get_channel_layer().group_send)(
            session_group(session_key), {"type": "session.ended"}
        )
    except Exception:
        # Logging out must work even if the channel layer is down; streams then end when
        # their answer does.
        log.exception("could not end the streams of a logged-out session")


@receiver(post_delete, sender=Attachment)
def attachment_files_cleanup(sender, instance: Attachment, **kwargs) -> None:
    """However a row goes (its conversation deleted, never sent, its owner deleted), its files
    go too - after the commit, so a rolled-back delete keeps them."""
    from .services import attachment_files_delete

    names = [instance.file_name, instance.thumbnail_name]
    transaction.on_commit(lambda: attachment_files_delete(names=names))
