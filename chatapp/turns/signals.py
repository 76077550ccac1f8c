"""Logging out ends that session's open streams (docs/SECURITY.md rule 11)."""

from __future__ import annotations

import logging
from typing import Any

from django.contrib.auth.signals import user_logged_out
from django.dispatch import receiver
from django.http import HttpRequest

from . import manager
from .protocol import SessionEnded, session_group

log = logging.getLogger(__name__)


@receiver(user_logged_out)
def end_session_streams(sender: Any, request: HttpRequest | None, **kwargs: Any) -> None:
    session = getattr(request, "session", None)
    session_key = getattr(session, "session_key", None)
    if not session_key:
        return
    ended: SessionEnded = {"type": "session.ended"}
    try:
        # On the server's event loop, where the streams are (`manager.group_send`).
        manager.group_send(session_group(session_key), ended)
    except Exception:
        # Logging out must work even if the channel layer is down; streams then end when
        # their answer does.
        log.exception("could not end the streams of a logged-out session")
