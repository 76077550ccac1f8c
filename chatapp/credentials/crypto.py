"""Encryption of each person's API keys at rest: `cryptography`'s Fernet (AES-128-CBC with an
HMAC-SHA256, a timestamp in each token) behind a MultiFernet, so keys can be rotated.

The encryption keys come from `CHAT_KEY_ENCRYPTION_KEYS`, newest first: the first encrypts,
every one decrypts, and `manage.py rotate_api_keys` re-encrypts every stored key with the
first. Never `SECRET_KEY`: a leaked secret key must not open people's API keys. Without the
variable (a first run on one machine), one key is generated once into
`CHAT_VAR_DIR/api_key_encryption_key`, readable by its owner only; a server that sets the
variable later lists that key last in it (or its people enter their keys again; a key no
configured key opens is shown as needing that, never an error). Rotation: docs/SECURITY.md
rule 12.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

__all__ = ["InvalidToken", "decrypt", "encrypt", "fernet", "local_key_path", "rotate"]


def local_key_path() -> Path:
    return Path(settings.VAR_DIR) / "api_key_encryption_key"


def _local_key() -> str:
    """The generated key of a server without `CHAT_KEY_ENCRYPTION_KEYS`, made once (O_EXCL:
    two processes starting at once agree on the first one written)."""
    path = local_key_path()
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_text().strip()
    key = Fernet.generate_key().decode()
    with os.fdopen(fd, "w") as fh:
        fh.write(key)
    return key


@lru_cache(maxsize=4)
def _fernet(configured: tuple[str, ...]) -> MultiFernet:
    try:
        return MultiFernet([Fernet(key.encode()) for key in configured])
    except ValueError as exc:
        raise ImproperlyConfigured(
            "CHAT_KEY_ENCRYPTION_KEYS must be Fernet keys (32 url-safe base64-encoded bytes "
            'each, e.g. from python -c "from cryptography.fernet import Fernet; '
            'print(Fernet.generate_key().decode())"), separated by commas'
        ) from exc


def fernet() -> MultiFernet:
    configured = tuple(settings.CHAT_KEY_ENCRYPTION_KEYS) or (_local_key(),)
    return _fernet(configured)


def encrypt(plain: str) -> bytes:
    return fernet().encrypt(plain.encode())


def decrypt(token: bytes) -> str | None:
    """The key, or None when no configured key opens the token (they were rotated away)."""
    try:
        return fernet().decrypt(bytes(token)).decode()
    except InvalidToken:
        return None


def rotate(token: bytes) -> bytes:
    """The token re-encrypted with the first key (InvalidToken if none opens it)."""
    return fernet().rotate(bytes(token))
