"""Logging filter that keeps API keys out of every log line (docs/SECURITY.md rule 12)."""

from __future__ import annotations

import contextlib
import logging
from collections import Counter
from collections.abc import Iterator

from django.conf import settings

# People's own keys while a run of this process uses them (chatapp/credentials): a line
# logged meanwhile, a traceback above all, is redacted of them too.
_in_use: Counter[str] = Counter()


@contextlib.contextmanager
def secret_in_use(secret: str | None) -> Iterator[None]:
    if not secret:
        yield
        return
    _in_use[secret] += 1
    try:
        yield
    finally:
        _in_use[secret] -= 1
        if not _in_use[secret]:
            del _in_use[secret]


def configured_secrets() -> list[str]:
    secrets = [secret for secret in _in_use if len(secret) >= 4]
    for config in getattr(settings, "PROVIDERS", {}).values():
        key = config.get("OPTIONS", {}).get("api_key")
        if key:
            secrets.append(key)
    return secrets


class RedactSecretsFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        secrets = configured_secrets()
        if not secrets:
            return True
        message = record.getMessage()
        redacted = message
        for secret in secrets:
            redacted = redacted.replace(secret, "[redacted]")
        if record.exc_info and record.exc_info[1] is not None:
            # Render the traceback now, redacted, so the handler prints no raw key.
            text = logging.Formatter().formatException(record.exc_info)
            for secret in secrets:
                text = text.replace(secret, "[redacted]")
            record.exc_text = text
            record.exc_info = None
        if redacted != message:
            record.msg, record.args = redacted, None
        return True
