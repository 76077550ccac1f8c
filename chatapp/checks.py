"""System checks that catch a misconfigured deployment at start-up."""

from __future__ import annotations

from django.conf import settings
from django.core.checks import Warning, register


@register(deploy=True)
def shared_channel_layer(app_configs, **kwargs):
    if not settings.REDIS_URL and settings.DATABASE_URL:
        return [
            Warning(
                "DATABASE_URL is set but REDIS_URL is not: streams work within one server "
                "process only.",
                hint="Set REDIS_URL when running more than one worker.",
                id="chatapp.W001",
            )
        ]
    return []
