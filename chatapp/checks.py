"""System checks that catch a misconfigured deployment at start-up."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.apps import AppConfig
from django.conf import settings
from django.core.checks import CheckMessage, Error, Warning, register


@register(deploy=True)
def shared_channel_layer(
    app_configs: Sequence[AppConfig] | None, **kwargs: Any
) -> list[CheckMessage]:
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


@register(deploy=True)
def key_encryption_keys(
    app_configs: Sequence[AppConfig] | None, **kwargs: Any
) -> list[CheckMessage]:
    """People's own API keys are encrypted with a key generated into CHAT_VAR_DIR when none
    is configured: fine on one machine, but workers elsewhere (or a fresh container) would
    have another and could not read them."""
    if settings.CHAT_KEY_ENCRYPTION_KEYS:
        return []
    return [
        Warning(
            "CHAT_KEY_ENCRYPTION_KEYS is not set: people's own API keys are encrypted with a "
            "key generated into CHAT_VAR_DIR, which other hosts and fresh containers lack.",
            hint='Set it to a key from python -c "from cryptography.fernet import Fernet; '
            'print(Fernet.generate_key().decode())" (README, Configuration).',
            id="chatapp.W002",
        )
    ]


@register()
def s3_storage_installed(
    app_configs: Sequence[AppConfig] | None, **kwargs: Any
) -> list[CheckMessage]:
    """A bucket configured without the optional packages would fail only at the first
    upload; say so at start-up instead."""
    if not settings.AWS_STORAGE_BUCKET_NAME:
        return []
    try:
        import boto3  # noqa: F401
        import storages  # noqa: F401
    except ImportError:
        return [
            Error(
                "AWS_STORAGE_BUCKET_NAME is set but django-storages and boto3 are not installed.",
                hint="Install them with: pip install '.[s3]'",
                id="chatapp.E001",
            )
        ]
    return []
