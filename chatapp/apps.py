from __future__ import annotations

from django.apps import AppConfig


class ChatappConfig(AppConfig):
    name = "chatapp"
    verbose_name = "Chat"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Registers the system checks and the signal receivers.
        from . import checks  # noqa: F401
        from .attachments import signals as attachment_signals  # noqa: F401
        from .turns import signals as turn_signals  # noqa: F401
