"""`manage.py rotate_api_keys`: re-encrypt every person's stored API key with the first key of
`CHAT_KEY_ENCRYPTION_KEYS` (docs/SECURITY.md rule 15, how to rotate)."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser

from chatapp.credentials import crypto, services


class Command(BaseCommand):
    help = (
        "Re-encrypt every stored API key with the first key of CHAT_KEY_ENCRYPTION_KEYS; "
        "then the older keys can be removed from it."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--print-derived-key",
            action="store_true",
            help="Print the key derived from the secret key (used while "
            "CHAT_KEY_ENCRYPTION_KEYS is unset), to list it last when setting the variable.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if options["print_derived_key"]:
            self.stdout.write(crypto.derived_key(settings.SECRET_KEY).decode())
            return
        rotated, unreadable = services.keys_rotate()
        self.stdout.write(f"Re-encrypted {rotated} key(s) with the first encryption key.")
        if unreadable:
            self.stdout.write(
                f"{unreadable} key(s) could not be opened with any configured encryption key; "
                "they are left as they are and their owners are asked to enter them again."
            )
