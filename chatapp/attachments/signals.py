"""An attachment's files go with its row, however the row goes."""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.db.models.signals import post_delete
from django.dispatch import receiver

from .models import Attachment
from .services import attachment_files_delete


@receiver(post_delete, sender=Attachment)
def attachment_files_cleanup(sender: type[Attachment], instance: Attachment, **kwargs: Any) -> None:
    """Its conversation deleted, never sent, its owner deleted: the files go too - after the
    commit, so a rolled-back delete keeps them."""
    names = [instance.file_name, instance.thumbnail_name]
    transaction.on_commit(lambda: attachment_files_delete(names=names))
