"""`manage.py rotate_api_keys`: re-encrypt every person's stored API key with the first key of
`CHAT_KEY_ENCRYPTION_KEYS` (docs/SECURITY.md rule 12, how to rotate)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from chatapp.credentials import services


class Command(BaseCommand):
    help = (
        "Re-encrypt every stored API key with the first key of CHAT_KEY_ENCRYPTION_KEYS; "
        "then the older keys can be removed from it."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        rotated, unreadable = services.keys_rotate()
        self.stdout.write(f"Re-encrypted {rotated} key(s) with the first encryption key.")
        if unreadable:
            self.stdout.write(
                f"{unreadable} key(s) could not be opened with any configured encryption key; "
                "they are left as they are and their owners are asked to enter them again."
            )
