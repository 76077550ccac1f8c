"""Writes of keys: a person saves or removes their key for a route; a run marks a key the
upstream refused; the route's last error with the server's key; rotation of the encryption.
Each refusal is a `ServiceError` naming what is wrong (never the key)."""

from __future__ import annotations

import re
from datetime import datetime

from django.db import transaction
from django.utils import timezone

from chatapp.core.errors import ServiceError
from chatapp.providers import catalog
from chatapp.providers.errors import redact

from . import crypto
from .models import PersonKey, RouteFailure
from .selectors import KEY_ROUTES

KEY_MIN_CHARS = 8
KEY_MAX_CHARS = 512
# A key travels in an HTTP header (or a URL's query on Google): printable ASCII, no spaces.
_KEY_CHARS = re.compile(r"[!-~]+")
MESSAGE_MAX_CHARS = 300


def key_save(*, owner_id: int, route: str, api_key: str) -> PersonKey:
    """Save (or replace) the person's key for a route, encrypted; a replaced key's rejection
    mark goes with it."""
    if route not in KEY_ROUTES:
        raise ServiceError("There is no such route.")
    label = catalog.ROUTE_LABELS[route]
    api_key = api_key.strip()
    if not api_key:
        raise ServiceError(f"Paste your {label} API key first.")
    if not KEY_MIN_CHARS <= len(api_key) <= KEY_MAX_CHARS:
        raise ServiceError(
            f"That is not a {label} API key: a key is {KEY_MIN_CHARS} to {KEY_MAX_CHARS} "
            f"characters long, and this one is {len(api_key):,}."
        )
    if not _KEY_CHARS.fullmatch(api_key):
        raise ServiceError(
            f"That is not a {label} API key: a key has no spaces, line breaks or characters "
            "other than printable ASCII."
        )
    now = timezone.now()
    with transaction.atomic():
        key, _ = PersonKey.objects.select_for_update().get_or_create(
            owner_id=owner_id,
            route=route,
            defaults={"secret": b"", "last_four": "", "created_at": now},
        )
        key.secret = crypto.encrypt(api_key)
        key.last_four = api_key[-4:]
        key.updated_at = now
        key.rejected_at = None
        key.rejected_message = ""
        key.save()
    return key


def key_remove(*, owner_id: int, route: str) -> bool:
    """Remove the person's key for a route; False when there was none."""
    deleted, _ = PersonKey.objects.filter(owner_id=owner_id, route=route).delete()
    return bool(deleted)


def key_mark_rejected(
    *, owner_id: int, route: str, saved_at: datetime, message: str, api_key: str
) -> None:
    """The upstream refused the person's key: mark it, unless it was replaced since the turn
    began (`saved_at`). The message is the upstream's, with the key taken out."""
    PersonKey.objects.filter(owner_id=owner_id, route=route, updated_at=saved_at).update(
        rejected_at=timezone.now(), rejected_message=redact(message, api_key)[:MESSAGE_MAX_CHARS]
    )


def route_failure_record(*, route: str, code: str, message: str, api_key: str) -> None:
    """The route's last error with the server's key (one row per route)."""
    RouteFailure.objects.update_or_create(
        route=route,
        defaults={
            "at": timezone.now(),
            "code": code[:40],
            "message": redact(message, api_key)[:MESSAGE_MAX_CHARS],
        },
    )


def keys_rotate() -> tuple[int, int]:
    """Re-encrypt every stored key with the first configured encryption key. Returns (keys
    re-encrypted, keys no configured key opens: left as they are, shown to their owners as
    needing to be entered again)."""
    rotated = unreadable = 0
    for key in PersonKey.objects.only("pk", "secret").iterator():
        try:
            token = crypto.rotate(key.secret)
        except crypto.InvalidToken:
            unreadable += 1
            continue
        PersonKey.objects.filter(pk=key.pk).update(secret=token)
        rotated += 1
    return rotated, unreadable
